"""task.split_seed: the salt of the VADER and NER hash splits (0 keeps the shipped split), so a study can sweep
splits as well as seeds."""

from __future__ import annotations

import hashlib

from conftest import compose
from losslab.tasks import splits, vader


def _legacy(text: str) -> str:  # the split before task.split_seed existed
    key = " ".join(text.lower().split()).encode("utf-8")
    bucket = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % 100
    return "train" if bucket < 80 else "validation" if bucket < 90 else "test"


def test_split_seed_zero_is_the_shipped_split_and_another_seed_another_split():
    texts = [f"sentence number {i} of the corpus" for i in range(5000)]
    assert all(splits.split_of(t) == splits.split_of(t, 0) == _legacy(t) for t in texts)
    other = [splits.split_of(t, 1) for t in texts]
    moved = sum(a != b for a, b in zip(other, (splits.split_of(t) for t in texts)))
    assert moved > 1000  # about 1 - (0.8² + 0.1² + 0.1²) = 34% of the sentences change split
    assert abs(other.count("test") / len(texts) - 0.10) < 0.02
    assert splits.split_of("A  Duplicate sentence", 7) == splits.split_of("a duplicate   sentence", 7)  # together


def test_vader_loader_resplits_every_sentence_once():
    cfg = compose(["task=regression", "task.split_seed=2"]).task
    data = cfg.data
    ds = vader.load(data.train, data.validation, data.test, split_seed=cfg.split_seed)
    base = vader.load(data.train, data.validation, data.test)
    assert sum(len(ds[s]) for s in ds) == sum(len(base[s]) for s in base) == 23703
    assert set(ds["test"]["id"]) != set(base["test"]["id"])
    assert all(splits.split_of(t, 2) == "test" for t in ds["test"]["text"][:200])
    assert ds["test"].features == base["test"].features


def test_ner_split_seed_reaches_the_loader():
    from hydra.utils import instantiate

    loader = compose(["task=ner", "task.split_seed=1"]).task.data.loader
    assert loader.split_seed == 1
    ds = instantiate(loader)
    assert (len(ds["validation"]), len(ds["test"])) == (229, 243)
    default = instantiate(compose(["task=ner"]).task.data.loader)
    assert (len(default["validation"]), len(default["test"])) == (240, 226)
