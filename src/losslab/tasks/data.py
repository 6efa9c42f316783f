"""Load a task's splits through ``datasets`` and turn them into model inputs.

Errors about the data stop the run before any training, naming the split, the file and the column.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from losslab.errors import DataError
from losslab.kinds import CAUSAL_LM, IGNORE_INDEX, MULTI_LABEL, REGRESSION, SEQ2SEQ, SINGLE_LABEL, TOKEN
from losslab.tasks.splits import SPLITS

BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
COMPRESSION = (".gz", ".bz2", ".xz", ".zst", ".zip")


def _builder(files: dict[str, str]) -> str:
    """The ``datasets`` builder for local files, from their extension (``.jsonl.gz`` -> json)."""
    kinds = set()
    for split, f in files.items():
        name = str(f).lower()
        for ext in COMPRESSION:
            name = name.removesuffix(ext)
        builder = BUILDERS.get(Path(name).suffix)
        if builder is None:
            raise DataError(f"task data: cannot tell the format of the {split} file {f} from its extension "
                            f"({', '.join(BUILDERS)}); set task.data.path=csv|json|parquet")
        kinds.add(builder)
    if len(kinds) > 1:
        raise DataError(f"task data: the split files are in different formats ({', '.join(sorted(kinds))}); "
                        "use one format or set task.data.path")
    return kinds.pop()


def _files(data) -> dict[str, str]:
    files = {s: str(data[s]) for s in SPLITS if data.get(s)}
    for split, f in files.items():
        if "://" not in f and not Path(f).exists():
            raise DataError(f"task data: the {split} file {f} does not exist (task.data.{split})")
        if "://" not in f and Path(f).stat().st_size == 0:
            raise DataError(f"task data: the {split} split ({f}) is empty (task.data.{split})")
    return files


def load_splits(task, seed: int | None = None) -> tuple["datasets.DatasetDict", list[str] | None]:
    """The task's train / validation / test splits, prepared and checked, and the class names if any.

    Local files: ``task.data.{train,validation,test}`` (csv, json/jsonl, parquet; compressed too; the format
    from the extension unless ``task.data.path`` names it). A hub data set: ``task.data.path=glue
    task.data.name=sst2`` (needs the network). Every check runs here, before any model loads.
    """
    import datasets
    from hydra.utils import instantiate

    from losslab.tasks import validate  # bad files, text cells, one class, duplicates: one line each

    data = task.data
    files = _files(data)
    if data.get("loader"):  # a function that builds the splits itself (e.g. the NER corpus from its package)
        ds = instantiate(data.loader)
    elif files:
        missing = [s for s in SPLITS if s not in files]
        if missing and not data.get("path"):
            raise DataError(f"task data: no file for the {', '.join(missing)} split (task.data.{missing[0]}=...)")
        ds = validate.load_files(data.get("path") or _builder(files), data.get("name"), files, data.get("encoding"))
    elif data.get("path"):
        ds = datasets.load_dataset(data.path, data.get("name"))
    else:
        raise DataError("task data: set task.data.train/validation/test (local files) or task.data.path (hub)")
    missing = [s for s in SPLITS if s not in ds]
    if missing:
        raise DataError(f"task data {data.get('path') or ''}: no {', '.join(missing)} split (found: {', '.join(ds)})")
    ds = datasets.DatasetDict({s: ds[s] for s in SPLITS})
    if task.get("prepare"):
        ds = instantiate(task.prepare)(ds)
    for split in SPLITS:
        where = files.get(split, data.get("path"))
        for role in ("text_column", "text_pair_column", "label_column"):
            column = task.get(role)
            if column and column not in ds[split].column_names:
                raise DataError(
                    f"task data: the {split} split ({where}) has no column {column!r} (task.{role}); "
                    f"its columns: {', '.join(ds[split].column_names)}"
                )
        if len(ds[split]) == 0:
            raise DataError(f"task data: the {split} split ({where}) is empty")
    validate.check_text(ds, task, files)
    ds, names = _labels(ds, task, files)
    validate.check_classes(task, names)
    for split, limit in (("train", task.max_train_samples), ("validation", task.max_eval_samples),
                         ("test", task.get("max_test_samples", task.max_eval_samples))):
        if limit is not None:
            ds[split] = ds[split].select(range(min(int(limit), len(ds[split]))))
    validate.warn_duplicates(ds, task)
    from losslab.tasks import noise  # task.label_noise: a seeded share of the train targets (never val/test)

    return noise.apply(ds, task, seed, names), names


def _convert(ds, column: str, fn, desc: str):
    """``column`` replaced by ``fn(value)`` with the new values' type: ``map`` into an existing column would keep
    the old type (class names stay strings, integer targets stay integers)."""
    ds = ds.map(lambda r: {"__converted": fn(r[column])}, remove_columns=[column], desc=desc)
    return ds.rename_column("__converted", column)


def _labels(ds, task, files):
    """Check every label and bring it to its kind's type; map string class names to ids.

    Returns the splits and the class names (from ``task.labels``, or the sorted names found in train).
    """
    column, kind, names = task.label_column, task.kind, task.get("labels")
    names = list(names) if names else None

    def fail(split, row, value, why):
        where = files.get(split, task.data.get("path"))
        raise DataError(f"task data: {split} row {row} ({where}), column {column!r}: label {value!r} {why}")

    if kind == SINGLE_LABEL and task.get("targets") == "distribution":
        k = task.get("num_labels")
        for split in SPLITS:
            for row, v in enumerate(ds[split][column]):
                if not isinstance(v, (list, tuple)) or len(v) != k or min(v) < 0 or abs(sum(v) - 1) > 1e-4:
                    fail(split, row, v, f"is not a distribution over {k} classes (task.targets=distribution)")
    elif kind == SINGLE_LABEL:
        values = {s: ds[s][column] for s in SPLITS}
        if any(isinstance(v, str) for v in values["train"]):
            names = names or sorted({v for v in values["train"] if v is not None})
            index = {n: i for i, n in enumerate(names)}
            for split in SPLITS:
                for row, v in enumerate(values[split]):
                    if v not in index:
                        fail(split, row, v, f"is not one of the classes {names} (task.labels, or the train split's)")
            ds = _convert(ds, column, lambda v: index[v], "class ids")
        else:
            k = task.get("num_labels") or (len(names) if names else None)
            for split in SPLITS:
                for row, v in enumerate(values[split]):
                    if not isinstance(v, int) or isinstance(v, bool) or v < 0 or (k is not None and v >= k):
                        fail(split, row, v, f"is not a class id in 0..{(k or 1) - 1} (task.num_labels={k})")
            if names is None and k is None:
                names = [str(i) for i in range(max(max(values[s]) for s in SPLITS) + 1)]
    elif kind == REGRESSION:
        for split in SPLITS:
            for row, v in enumerate(ds[split][column]):
                if v is None:
                    fail(split, row, v, "is empty or marked missing (NA, n/a, ... in a CSV file)")
                try:
                    if v is None or isinstance(v, bool) or float(v) != float(v):
                        raise ValueError
                except (TypeError, ValueError):
                    fail(split, row, v, "is not a number")
    elif kind == TOKEN:
        values = {s: ds[s][column] for s in SPLITS}
        if any(isinstance(v, str) for row in values["train"] for v in row):
            names = names or sorted({v for row in values["train"] for v in row})
            index = {n: i for i, n in enumerate(names)}
            for split in SPLITS:
                for row, tags in enumerate(values[split]):
                    unknown = [t for t in tags if t not in index]
                    if unknown:
                        fail(split, row, unknown[0], f"is not one of the tags {names} (task.labels, or train's)")
            ds = _convert(ds, column, lambda tags: [index[t] for t in tags], "tag ids")
    elif kind == MULTI_LABEL:
        k = task.get("num_labels") or (len(names) if names else None)
        for split in SPLITS:
            for row, v in enumerate(ds[split][column]):
                if not isinstance(v, (list, tuple)) or (k is not None and len(v) != k) or \
                        any(x not in (0, 1, -100) for x in v):
                    fail(split, row, v, f"is not a list of {k} values in {{0, 1}} (task.num_labels={k})")
        ds = _convert(ds, column, lambda v: [float(x) for x in v], "float targets")  # BCE needs floats
    elif kind == SEQ2SEQ:
        for split in SPLITS:
            for row, v in enumerate(ds[split][column]):
                if not isinstance(v, str) or not v.strip():
                    fail(split, row, v, "is not a non-empty target text")
    elif kind != CAUSAL_LM:  # a language model's labels are its own tokens
        raise DataError(f"task.kind={kind!r} is not a known problem kind")
    return ds, names


_SHARED: dict = {}


def shared(key: tuple, build):
    """``build()``, once per process for each ``key``: the jobs of a sweep that run in one process (Hydra's basic
    launcher) share their loaded and tokenized splits instead of reading and tokenizing them again.
    Callers must not modify what they get."""
    if key not in _SHARED:
        _SHARED[key] = build()
    return _SHARED[key]


def tokenizer_id(tokenizer) -> str:
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


LENGTH = "length"  # tokens per row: the Trainer's train_sampling_strategy=group_by_length reads this column
ITEM = "item"  # a row's index within its split as loaded, kept when a split is put in length order


def _with_length(enc):
    enc[LENGTH] = [len(ids) for ids in enc["input_ids"]]
    return enc


def in_length_order(split):
    """The split with each row's index as ``item``, sorted by length: evaluated in this order, batches are
    padded to almost nothing (the metric suites do not depend on the order; ``item`` maps rows back)."""
    return split.add_column(ITEM, list(range(len(split)))).sort(LENGTH)  # a stable sort


def encode(ds, tokenizer, task, eval_in_length_order: bool = False) -> "datasets.DatasetDict":
    """Tokenize every split into ``input_ids``/``attention_mask``/``labels`` and each row's ``length`` (cached
    by ``datasets``).

    The cache key is the split's fingerprint plus the tokenizer's content and the encoding settings, so a
    second run with the same data and tokenizer reads the cached Arrow file instead of tokenizing again.
    """
    from datasets.fingerprint import Hasher

    text, pair, label, kind = task.text_column, task.get("text_pair_column"), task.label_column, task.kind
    max_length = int(task.max_length)
    convert = {REGRESSION: float, SINGLE_LABEL: int, MULTI_LABEL: lambda v: [float(x) for x in v]}.get(kind)
    if task.get("targets") == "distribution":
        convert = lambda v: [float(x) for x in v]  # noqa: E731
    if convert is None and kind not in (TOKEN, CAUSAL_LM, SEQ2SEQ):
        raise DataError(f"task.kind={kind!r} is not a known problem kind")

    def tokenize(batch):
        enc = tokenizer(batch[text], batch[pair] if pair else None, truncation=True, max_length=max_length)
        # causal LM: the labels are the tokens (the loss shifts them); padding becomes -100 in the collator
        enc["labels"] = [list(ids) for ids in enc["input_ids"]] if kind == CAUSAL_LM else \
            [convert(v) for v in batch[label]]
        return _with_length(enc)

    def tokenize_pairs(batch):
        """Source text in, target text out: the target's tokens without its leading [CLS] (the decoder starts
        from it) and with its closing [SEP] (where generation stops)."""
        enc = tokenizer(batch[text], truncation=True, max_length=max_length)
        target = tokenizer(text_target=batch[label], truncation=True, max_length=int(task.max_target_length) + 1)
        first = tokenizer.cls_token_id
        enc["labels"] = [ids[1:] if first is not None and ids and ids[0] == first else ids
                         for ids in target["input_ids"]]
        return _with_length(enc)

    def tokenize_words(batch):
        """Words split into word pieces: a word's tag goes on its first piece; the other pieces and the special
        tokens get -100, so they are neither trained on nor counted in num_items_in_batch."""
        enc = tokenizer(batch[text], truncation=True, max_length=max_length, is_split_into_words=True)
        enc["labels"] = []
        for i, tags in enumerate(batch[label]):
            previous, aligned = None, []
            for word in enc.word_ids(i):
                aligned.append(IGNORE_INDEX if word is None or word == previous else int(tags[word]))
                previous = word
            enc["labels"].append(aligned)
        return _with_length(enc)

    tok_id = tokenizer_id(tokenizer)
    out = {}
    for split, part in ds.items():
        fingerprint = Hasher.hash([part._fingerprint, tok_id, max_length, text, pair, label, kind,
                                   task.get("max_target_length"), "v2"])
        out[split] = part.map(
            tokenize_words if kind == TOKEN else tokenize_pairs if kind == SEQ2SEQ else tokenize, batched=True, remove_columns=part.column_names,
            new_fingerprint=fingerprint, desc=f"tokenize {split}",
        )
    if eval_in_length_order:  # evaluated in length order: batches padded to almost nothing
        for split in ("validation", "test"):
            out[split] = in_length_order(out[split])
    import datasets

    return datasets.DatasetDict(out)


def collator(kind: str, tokenizer, on_gpu: bool = False, model=None):
    """Pads a batch: labels of token tasks are padded with -100 along with the tokens; for seq2seq the
    model also makes ``decoder_input_ids`` (the labels shifted right), since the loss takes the labels away."""
    from transformers import DataCollatorForSeq2Seq, DataCollatorForTokenClassification, DataCollatorWithPadding

    if kind == SEQ2SEQ:
        return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=IGNORE_INDEX,
                                      pad_to_multiple_of=8 if on_gpu else None)
    cls = DataCollatorForTokenClassification if kind in (TOKEN, CAUSAL_LM) else DataCollatorWithPadding
    return cls(tokenizer, pad_to_multiple_of=8 if on_gpu else None)
