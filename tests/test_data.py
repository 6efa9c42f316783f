"""The shipped VADER corpus, its fixed split, the tasks built on it, and the tokenization cache."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter

import pytest
from conftest import compose

from losslab import models
from losslab.paths import resource
from losslab.tasks import data, encoding, splits, vader


def _rows(split):
    with gzip.open(resource(f"vader/{split}.jsonl.gz"), "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def corpus():
    return {s: _rows(s) for s in splits.SPLITS}


def test_corpus_sizes_and_sources(corpus):
    assert {s: len(r) for s, r in corpus.items()} == {"train": 18910, "validation": 2364, "test": 2429}
    sources = Counter(r["source"] for rows in corpus.values() for r in rows)
    assert sources == {"tweets": 4200, "movieReviewSnippets": 10605, "nytEditorialSnippets": 5190,
                       "amazonReviewSnippets": 3708}


def test_split_is_a_function_of_the_text_and_splits_do_not_overlap(corpus):
    texts = {}
    for split, rows in corpus.items():
        for r in rows:
            assert r["split"] == split == splits.split_of(r["text"])
            assert -4 <= r["rating"] <= 4 and r["ratings"] and all(-4 <= v <= 4 for v in r["ratings"])
        texts[split] = {" ".join(r["text"].lower().split()) for r in rows}
    assert not texts["train"] & texts["validation"]
    assert not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]


def test_sentiment_task_drops_the_neutral_band():
    cfg = compose(["task=sentiment"])
    ds, names = data.load_splits(cfg.task)
    assert names == ["negative", "positive"]
    for split in splits.SPLITS:
        labels, ratings = ds[split]["label"], ds[split]["rating"]
        assert all(abs(r) >= 0.5 for r in ratings)
        assert all(lab == int(r > 0) for lab, r in zip(labels, ratings))
    assert sum(len(ds[s]) for s in splits.SPLITS) == 23703 - 4244


def test_second_encode_reads_the_cache_instead_of_tokenizing(tmp_path, monkeypatch):
    import copy

    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path)
    cfg = compose(["task=regression", "model=tiny", "task.max_train_samples=200", "task.max_eval_samples=50"])
    _, tok = models.build(cfg.model, cfg.task)
    first = encoding.encode(data.load_splits(cfg.task)[0], tok, cfg.task)
    assert first["train"].cache_files, "tokenized data must be written to the datasets cache"

    class Refuses(type(tok)):  # same class name and vocabulary: the same cache key
        def __call__(self, *a, **k):
            raise AssertionError("tokenized again instead of reading the cache")

    Refuses.__name__ = type(tok).__name__
    tok = copy.deepcopy(tok)  # the loaded tokenizer is shared within the process (models._tokenizer): not this one
    tok.__class__ = Refuses
    second = encoding.encode(data.load_splits(cfg.task)[0], tok, cfg.task)
    assert second["train"]["input_ids"] == first["train"]["input_ids"]
    assert second["train"].cache_files == first["train"].cache_files


def test_rebuild_from_the_pypi_sdist_is_byte_identical(tmp_path):
    """Provenance: the shipped files are exactly what the builder makes from vaderSentiment 3.3.2."""
    got = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
         "vaderSentiment==3.3.2", "-d", str(tmp_path)], capture_output=True, text=True, timeout=300,
    )
    if got.returncode != 0:
        pytest.skip(f"PyPI unreachable: {got.stderr[-300:]}")
    counts = vader.build(tmp_path / "vaderSentiment-3.3.2.tar.gz", tmp_path / "built")
    assert sum(counts.values()) == 23703
    for split in splits.SPLITS:
        assert (tmp_path / "built" / f"{split}.jsonl.gz").read_bytes() == open(
            resource(f"vader/{split}.jsonl.gz"), "rb").read()


def test_first_rows_of_every_split_mix_all_sources(corpus):
    """task.max_*_samples keep the first N rows: they must be a fair sample, not one source."""
    for rows in corpus.values():
        first = Counter(r["source"] for r in rows[:200])
        assert set(first) == set(vader.SOURCES) and min(first.values()) >= 15
