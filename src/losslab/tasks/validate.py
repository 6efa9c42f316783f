"""Bad data files, said in one line naming the split, the file, the column and the row (or line, or byte).

:func:`load_files` reads local files through ``datasets`` (with ``task.data.encoding`` when set) and, when that
fails, reads each file itself to say where: a byte that is not in the encoding, a JSON line that does not
parse, a CSV with a header and no rows. :func:`check_text` refuses a text column that is not text or has an
empty cell; :func:`check_classes` a classifier's labels with a single class; :func:`warn_duplicates` counts
evaluation rows whose text is also in train.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import logging
import lzma
import zlib
from collections import Counter
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.compute as pc

from losslab import kinds
from losslab.errors import DataError
from losslab.kinds import SINGLE_LABEL
from losslab.tasks.splits import SPLITS

log = logging.getLogger("losslab")

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _error(message: str):
    return DataError(f"task data: {message}")


def _raw(split: str, f: str) -> bytes | None:
    """The file's bytes, decompressed; a compressed file that ends early or does not decompress is a
    DataError naming it."""
    path = Path(f)
    opener = _OPENERS.get(path.suffix.lower())
    try:
        if opener:
            with opener(path, "rb") as fh:
                return fh.read()
        if path.suffix.lower() in (".zst", ".zip", ".parquet"):
            return None
        return path.read_bytes()
    except (EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        if not opener or (isinstance(exc, OSError) and exc.errno is not None):  # unreadable, not corrupt
            return None
        raise _error(f"the {split} file {f} is truncated or corrupt: it does not decompress as "
                     f"{path.suffix.lstrip('.')} ({type(exc).__name__}: {exc}); copy or download it again "
                     f"(task.data.{split})") from None


def _kind(f: str) -> str:
    name = str(f).lower()
    for ext in (".gz", ".bz2", ".xz", ".zst", ".zip"):
        name = name.removesuffix(ext)
    return Path(name).suffix.lstrip(".")


def diagnose(split: str, f: str, encoding: str) -> None:
    """Raise a DataError saying what is wrong with one local file, if this reading finds it."""
    raw = _raw(split, f)
    if raw is None:
        return
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise _error(f"the {split} file {f} is not valid {encoding} at byte {exc.start} (line {line}"
                     f"{', data row ' + str(line - 1) if _kind(f) == 'csv' and line > 1 else ''}): byte "
                     f"0x{raw[exc.start]:02x}; set task.data.encoding=<the file's encoding> (e.g. latin-1, cp1252)"
                     ) from None
    except LookupError:
        raise _error(f"task.data.encoding={encoding!r} is not an encoding Python knows") from None
    kind = _kind(f)
    if kind == "csv":
        rows = [r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r)]
        if len(rows) <= 1:
            raise _error(f"the {split} file {f} has {'a header and ' if rows else ''}no rows (task.data.{split})")
    elif kind in ("json", "jsonl"):
        stripped = text.lstrip()
        if stripped.startswith("["):
            try:
                json.loads(stripped)
            except ValueError as exc:
                raise _error(f"the {split} file {f} is not valid JSON: {exc}") from None
            return
        lines = 0
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            lines += 1
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise _error(f"the {split} file {f}, line {n}: not valid JSON ({exc}); one JSON object per "
                             "line") from None
            if not isinstance(row, dict):
                raise _error(f"the {split} file {f}, line {n}: a JSON {type(row).__name__}, not an object "
                             "({\"column\": value, ...}); one JSON object per line")
        if not lines:
            raise _error(f"the {split} file {f} has no rows (task.data.{split})")


def diagnose_files(files: dict[str, str], encoding: str | None) -> None:
    """:func:`diagnose` each local file (``files``: split -> path)."""
    for split, f in files.items():
        if "://" not in f:
            diagnose(split, f, encoding or "utf-8")


def check_csv_header(split: str, f: str, encoding: str | None) -> None:
    """A CSV header names each column once (pandas would rename the second ``text`` to ``text.1`` and go on
    with the first)."""
    path = Path(f)
    opener = _OPENERS.get(path.suffix.lower(), open) if path.suffix.lower() not in (".zst", ".zip") else None
    if opener is None:
        return
    try:
        with opener(path, "rt", encoding=encoding or "utf-8", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, EOFError, UnicodeDecodeError, ValueError, lzma.LZMAError, csv.Error):
        return  # unreadable: load_files' diagnosis says why
    names = [h.strip() for h in header]
    twice = [c for c, n in Counter(names).items() if n > 1]
    if twice:
        where = ", ".join(str(i + 1) for i, h in enumerate(names) if h == twice[0])
        raise _error(f"the {split} file {f} has the column {twice[0]!r} more than once in its header (columns "
                     f"{where}); give each column its own name")


def load_files(builder: str, name, files: dict[str, str], encoding: str | None):
    """``datasets.load_dataset`` on local files; a failure is diagnosed file by file in one line."""
    if builder == "csv":
        for split, f in files.items():
            if "://" not in f:
                check_csv_header(split, f, encoding)
    kwargs = {"encoding": encoding} if encoding and builder in ("csv", "json") else {}
    try:
        return datasets.load_dataset(builder, name, data_files=files, **kwargs)
    except Exception as exc:
        diagnose_files(files, encoding)
        cause = exc.__cause__ or exc.__context__ or exc
        raise _error(f"the files ({', '.join(f'{s}: {f}' for s, f in files.items())}) could not be read as "
                     f"{builder}: {type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
                     ) from exc


def check_text(ds, task, files) -> None:
    """Each text column holds text, and no cell of it is empty."""
    if kinds.get(task.kind).tokenize == "words":  # lists of strings, checked by the tagging code
        return
    for role in ("text_column", "text_pair_column"):
        column = task.get(role)
        if not column:
            continue
        for split in SPLITS:
            where = files.get(split, task.data.get("path"))
            feature = ds[split].features.get(column)
            dtype = getattr(feature, "dtype", None)
            if not isinstance(feature, datasets.Value):  # a list, a struct, JSON: the Arrow type names it
                dtype = str(ds[split].data.schema.field(column).type)
            if dtype is not None and dtype not in ("string", "large_string", "null"):
                first = ds[split][0][column] if len(ds[split]) else None
                raise _error(f"the {split} split ({where}), column {column!r} (task.{role}) holds {dtype}, not "
                             f"text (row 0: {first!r})")
            row = _first_blank(ds[split], column)
            if row is not None:
                raise _error(f"{split} row {row} ({where}), column {column!r} (task.{role}): the text is "
                             "empty; fill it or drop the row")


def _first_blank(split, column: str) -> int | None:
    """The first row whose text is missing or only whitespace, or None; in Arrow (a Python loop over the VADER
    splits took ~1 s a job under cProfile)."""
    values = split.with_format("arrow")[column]
    if pa.types.is_null(values.type):
        return 0 if len(values) else None
    blank = pc.or_kleene(pc.is_null(values), pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(values)), 0))
    row = pc.index(pc.fill_null(blank, True), True).as_py()
    return None if row < 0 else row


def check_classes(task, names) -> None:
    """A classifier needs two classes at least."""
    if task.kind != SINGLE_LABEL or task.get("targets") == "distribution" or task.get("num_labels"):
        return
    if names is not None and len(names) < 2:
        raise _error(f"column {task.label_column!r} (task.label_column) has a single class "
                     f"({names[0] if names else 'none'!r}) across all splits; a classifier needs two at least")


def warn_duplicates(ds, task) -> dict[str, int]:
    """Warn when validation or test rows have the same text as a train row; returns the counts."""
    columns = [c for c in (task.get("text_column"), task.get("text_pair_column")) if c]
    if not columns or any(c not in ds["train"].column_names for c in columns):
        return {}

    def keys(split):
        cols = [ds[split][c] for c in columns]
        return [json.dumps(v, sort_keys=True, default=str) for v in zip(*cols)]

    train = set(keys("train"))
    counts = {}
    for split in SPLITS[1:]:
        k = keys(split)
        counts[split] = sum(x in train for x in k)
        if counts[split]:
            log.warning("task data: %d of %d %s rows (%.1f%%) have the same text as a train row; their "
                        "scores overstate how well the model generalizes", counts[split], len(k), split,
                        100 * counts[split] / len(k))
    return counts
