"""Load a task's splits through ``datasets``, checked (their labels by ``tasks.labels``); ``tasks.encoding``
turns them into model inputs.

Errors about the data stop the run before any training, naming the split, the file and the column.
"""

from __future__ import annotations

from pathlib import Path

from losslab.errors import DataError
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
            _missing(split, f)
        if "://" not in f and Path(f).stat().st_size == 0:
            raise DataError(f"task data: the {split} split ({f}) is empty (task.data.{split})")
    return files


def _missing(split: str, f: str) -> None:
    """Say why a data path cannot be opened: a symlink loop, a link to nothing, or no such file."""
    import errno
    import os

    try:
        os.stat(f)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(f"task data: the {split} file {f} is a symlink loop (its links lead back to "
                            f"themselves, never to a file; task.data.{split})") from None
    if Path(f).is_symlink():
        raise DataError(f"task data: the {split} file {f} is a symlink to {os.readlink(f)}, which does not exist "
                        f"(task.data.{split})")
    raise DataError(f"task data: the {split} file {f} does not exist (task.data.{split})")


def load_splits(task, seed: int | None = None) -> tuple["datasets.DatasetDict", list[str] | None]:
    """The task's train / validation / test splits, prepared and checked, and the class names if any.

    Local files: ``task.data.{train,validation,test}`` (csv, json/jsonl, parquet; compressed too; the format
    from the extension unless ``task.data.path`` names it). A hub data set: ``task.data.path=glue
    task.data.name=sst2`` (needs the network). Every check runs here, before any model loads.
    """
    import datasets
    from hydra.utils import instantiate

    from losslab.tasks import labels, validate  # validate: bad files, text cells, one class, duplicates

    data = task.data
    files = _files(data)
    if data.get("loader"):  # a function that builds the splits itself (e.g. the NER corpus from its package)
        try:
            ds = instantiate(data.loader)
        except Exception:  # a bad file it read (truncated, a line that is not JSON): named, in one line
            validate.diagnose_files(files, data.get("encoding"))
            raise
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
    ds, names = labels.check_and_convert(ds, task, files)
    validate.check_classes(task, names)
    for split, limit in (("train", task.max_train_samples), ("validation", task.max_eval_samples),
                         ("test", task.get("max_test_samples", task.max_eval_samples))):
        if limit is not None:
            ds[split] = ds[split].select(range(min(int(limit), len(ds[split]))))
    labels.check_objective_defined(ds, task, files)  # e.g. pearson on constant validation labels
    validate.warn_duplicates(ds, task)
    from losslab.tasks import noise  # task.label_noise: a seeded share of the train targets (never val/test)

    return noise.apply(ds, task, seed, names), names


_SHARED: dict = {}


def shared(key: tuple, build):
    """``build()``, once per process for each ``key``: the jobs of a sweep that run in one process (Hydra's basic
    launcher) share their loaded and tokenized splits instead of reading and tokenizing them again.
    Callers must not modify what they get."""
    if key not in _SHARED:
        _SHARED[key] = build()
    return _SHARED[key]
