"""Load a task's splits through ``datasets`` and turn them into model inputs.

Errors about the data stop the run before any training, naming the split, the file and the column.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from losslab.errors import UsageError
from losslab.losses.base import REGRESSION, SINGLE_LABEL

SPLITS = ("train", "validation", "test")


class DataError(UsageError):
    """The task's data cannot be used as configured."""


def _check_files(data_files) -> None:
    for split, files in data_files.items():
        for f in [files] if isinstance(files, str) else list(files):
            if "://" not in str(f) and not Path(f).exists():
                raise DataError(f"task data: the {split} file {f} does not exist (task.data.data_files.{split})")


def load_splits(task) -> "datasets.DatasetDict":
    """The task's train / validation / test splits, prepared and checked, before any tokenization."""
    import datasets
    from hydra.utils import instantiate

    data = task.data
    data_files = dict(data.data_files) if data.get("data_files") else None
    if data_files:
        _check_files(data_files)
    ds = datasets.load_dataset(data.path, data.get("name"), data_files=data_files)
    missing = [s for s in SPLITS if s not in ds]
    if missing:
        raise DataError(f"task data {data.path}: no {', '.join(missing)} split (found: {', '.join(ds)})")
    ds = datasets.DatasetDict({s: ds[s] for s in SPLITS})
    if task.get("prepare"):
        ds = instantiate(task.prepare)(ds)
    for split in SPLITS:
        where = (data_files or {}).get(split, data.path)
        for role in ("text_column", "text_pair_column", "label_column"):
            column = task.get(role)
            if column and column not in ds[split].column_names:
                raise DataError(
                    f"task data: the {split} split ({where}) has no column {column!r} (task.{role}); "
                    f"its columns: {', '.join(ds[split].column_names)}"
                )
        if len(ds[split]) == 0:
            raise DataError(f"task data: the {split} split ({where}) is empty")
    for split, limit in (("train", task.max_train_samples), ("validation", task.max_eval_samples),
                         ("test", task.max_eval_samples)):
        if limit is not None:
            ds[split] = ds[split].select(range(min(int(limit), len(ds[split]))))
    return ds


def _tokenizer_id(tokenizer) -> str:
    """A content hash of the tokenizer, so the tokenized-data cache is keyed on what the tokenizer does.

    A fast tokenizer's serialized state records the truncation/padding of its last call, so hashing it as
    is gives a different key after the first use and the cache is never hit. Both are cleared first (the
    tokenizer sets them again on every call).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend.no_truncation()
        backend.no_padding()
        blob = backend.to_str()
    else:
        blob = repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(f"{type(tokenizer).__name__}:{blob}".encode()).hexdigest()[:16]


def encode(ds, tokenizer, task) -> "datasets.DatasetDict":
    """Tokenize every split into ``input_ids``/``attention_mask``/``labels`` (cached by ``datasets``).

    The cache key is the split's fingerprint plus the tokenizer's content and the encoding settings, so a
    second run with the same data and tokenizer reads the cached Arrow file instead of tokenizing again.
    """
    from datasets.fingerprint import Hasher

    text, pair, label, kind = task.text_column, task.get("text_pair_column"), task.label_column, task.kind
    max_length = int(task.max_length)
    if kind == REGRESSION:
        convert = float
    elif kind == SINGLE_LABEL:
        convert = int
    else:
        raise DataError(f"task.kind={kind!r} is not a known problem kind")
    num_labels = int(task.num_labels)

    def tokenize(batch):
        enc = tokenizer(batch[text], batch[pair] if pair else None, truncation=True, max_length=max_length)
        enc["labels"] = [convert(v) for v in batch[label]]
        return enc

    tok_id = _tokenizer_id(tokenizer)
    out = {}
    for split, part in ds.items():
        if kind == SINGLE_LABEL:
            bad = [i for i, v in enumerate(part[label]) if v is None or not 0 <= int(v) < num_labels]
            if bad:
                raise DataError(
                    f"task data: {split} row {bad[0]} has label {part[label][bad[0]]!r} in column {label!r}, "
                    f"outside 0..{num_labels - 1} (task.num_labels={num_labels})"
                )
        fingerprint = Hasher.hash([part._fingerprint, tok_id, max_length, text, pair, label, kind, "v1"])
        out[split] = part.map(
            tokenize, batched=True, remove_columns=part.column_names,
            new_fingerprint=fingerprint, desc=f"tokenize {split}",
        )
    import datasets

    return datasets.DatasetDict(out)
