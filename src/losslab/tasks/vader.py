"""The VADER sentiment corpus (Hutto & Gilbert, ICWSM 2014; MIT license).

23,703 sentences from four sources (tweets, movie-review snippets, NYT editorial snippets, Amazon review
snippets), each with the mean of ~20 human sentiment ratings in [-4, 4] and every rater's raw rating.

The corpus ships inside losslab as three gzipped JSON-lines files (``resources/vader/{train,validation,test}
.jsonl.gz``) built from ``additional_resources/hutto_ICWSM_2014.tar.gz`` of the ``vaderSentiment==3.3.2``
source distribution by :func:`build`:

    python -m losslab.tasks.vader <vaderSentiment-3.3.2.tar.gz or hutto_ICWSM_2014.tar.gz> [out_dir]

The split is a pure function of the sentence text (SHA-256 of the whitespace-normalised, lower-cased text,
80 / 10 / 10, :func:`losslab.tasks.splits.split_of`; ``task.split_seed`` salts it for another split, see
:func:`load`), so it never changes between
runs, machines or library versions, and the 84 sentences that
occur twice in the corpus always fall into the same split (no train/test leakage). Within a split the rows
are in a fixed pseudo-random order (SHA-256 of the id), so any first N rows mix all four sources.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

from losslab.tasks.splits import SPLITS, split_of

SOURCES = ("tweets", "movieReviewSnippets", "nytEditorialSnippets", "amazonReviewSnippets")
_CORPUS_TAR = "additional_resources/hutto_ICWSM_2014.tar.gz"


def _corpus_members(archive: Path) -> dict[str, bytes]:
    """Files of the ICWSM 2014 corpus by base name, from the corpus tarball or the vaderSentiment sdist."""
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        inner = [n for n in names if n.endswith(_CORPUS_TAR)]
        if inner:  # the sdist: the corpus is a tarball inside it
            data = tar.extractfile(inner[0]).read()
            tar = tarfile.open(fileobj=io.BytesIO(data))
        return {Path(m.name).name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _rows(raw: bytes) -> list[list[str]]:
    # The files are UTF-8 with CRLF line ends; one of them opens with a byte-order mark.
    text = raw.decode("utf-8-sig")
    return [line.split("\t") for line in text.splitlines() if line.strip()]


def read_corpus(archive: str | Path) -> list[dict]:
    """All 23,703 sentences with their source, mean rating, rating std and raw ratings."""
    files = _corpus_members(Path(archive))
    records = []
    for source in SOURCES:
        truth = _rows(files[f"{source}_GroundTruth.txt"])
        raters = {row[0]: row for row in _rows(files[f"{source}_anonDataRatings.txt"])}
        for sid, mean, text in (row[:3] for row in truth):
            _, _, std, raw = raters[sid]  # joined on id: the two files are not in the same order
            records.append(
                {
                    "id": f"{source}/{sid}",
                    "source": source,
                    "text": text.strip(),
                    # The paper's ground truth. For 199 tweets it differs from the mean of the raw ratings
                    # below (the ground truth was computed over a different pool of raters).
                    "rating": float(mean),
                    "rating_std": float(std),
                    "ratings": [int(r) for r in ast.literal_eval(raw)],
                    "split": split_of(text),
                }
            )
    return records


def build(archive: str | Path, out_dir: str | Path) -> dict[str, int]:
    """Write ``{train,validation,test}.jsonl.gz`` into ``out_dir``; returns the row count of each split."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = read_corpus(archive)
    counts = {}
    for split in SPLITS:
        # A fixed pseudo-random order (by a hash of the id), not grouped by source: the first N rows, which
        # task.max_train_samples / max_eval_samples keep, are then a fair sample of every source.
        rows = sorted((r for r in records if r["split"] == split),
                      key=lambda r: hashlib.sha256(r["id"].encode("utf-8")).digest())
        counts[split] = len(rows)
        # mtime=0 and a fixed key order make the files byte-identical on every rebuild.
        with open(out / f"{split}.jsonl.gz", "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
            for r in rows:
                gz.write((json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
    return counts


def load(train: str, validation: str, test: str, split_seed: int = 0):
    """The shipped splits as a ``DatasetDict`` (``task.data.loader``); with a ``split_seed`` other than 0 the
    23,703 sentences are split again by the salted hash, each split in the same fixed pseudo-random order."""
    import datasets

    files = {"train": str(train), "validation": str(validation), "test": str(test)}
    ds = datasets.load_dataset("json", data_files=files)
    if not split_seed:
        return ds
    rows = [r for split in SPLITS for r in ds[split]]
    out = {}
    for split in SPLITS:
        part = sorted((r for r in rows if split_of(r["text"], split_seed) == split),
                      key=lambda r: hashlib.sha256(r["id"].encode("utf-8")).digest())
        for r in part:
            r["split"] = split
        out[split] = datasets.Dataset.from_list(part, features=ds["train"].features)
    return datasets.DatasetDict(out)


def polarity(data, threshold: float = 0.5, source_column: str = "rating", label_column: str = "label"):
    """Binary sentiment from the mean rating: positive (1) if >= threshold, negative (0) if <= -threshold.

    Sentences in the near-neutral band (-threshold, threshold) are left out of every split.
    """
    kept = data.filter(lambda r: abs(r[source_column]) >= threshold, desc="drop near-neutral")
    return kept.map(lambda r: {label_column: int(r[source_column] > 0)}, desc="polarity labels")


def source_label(data, label_column: str = "label"):
    """4-class label: which source a sentence comes from, in the order of SOURCES."""
    index = {s: i for i, s in enumerate(SOURCES)}
    return data.map(lambda r: {label_column: index[r["source"]]}, desc="source labels")


REACTIONS = ("negative", "neutral", "positive", "intense")


def rater_reactions(data, threshold: float = 0.2, intense: int = 3, label_column: str = "labels"):
    """Multi-label reactions of the raters: negative (rating < 0), neutral (= 0), positive (> 0) and intense
    (|rating| >= intense); each label is on when at least ``threshold`` of a sentence's raters gave it."""

    def reactions(r):
        ratings = r["ratings"]
        n = len(ratings)
        shares = (
            sum(v < 0 for v in ratings) / n,
            sum(v == 0 for v in ratings) / n,
            sum(v > 0 for v in ratings) / n,
            sum(abs(v) >= intense for v in ratings) / n,
        )
        return {label_column: [int(s >= threshold) for s in shares]}

    return data.map(reactions, desc="rater reactions")


LEVELS = tuple(range(-4, 5))


def rating_distribution(data, label_column: str = "distribution"):
    """The share of a sentence's raters who gave each of the nine ratings -4..4 (a soft label)."""

    def shares(r):
        n = len(r["ratings"])
        return {label_column: [sum(v == level for v in r["ratings"]) / n for level in LEVELS]}

    return data.map(shares, desc="rating distributions")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(f"usage: python -m losslab.tasks.vader ARCHIVE [OUT_DIR]\n{__doc__}")
    default_out = Path(__file__).resolve().parents[1] / "resources" / "vader"
    print(build(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else default_out))
