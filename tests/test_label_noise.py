"""``task.label_noise``: a seeded share of the TRAINING targets corrupted; validation and test never touched."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import compose
from omegaconf import OmegaConf

from losslab import identity
from losslab.errors import UsageError
from losslab.tasks import data, noise


def _task(kind="regression", share=0.2, num_labels=None, column="y"):
    return OmegaConf.create({"name": "t", "kind": kind, "label_column": column, "label_noise": share,
                             "num_labels": num_labels})


def _splits(n=1000, kind="regression", classes=4):
    import datasets

    rng = np.random.default_rng(7)
    def part(m, offset):
        y = (rng.permutation(m) + offset + 0.5).tolist() if kind == "regression" else \
            rng.integers(0, classes, size=m).tolist()
        return datasets.Dataset.from_dict({"text": [f"row {offset + i}" for i in range(m)], "y": y})
    return datasets.DatasetDict({"train": part(n, 0), "validation": part(200, 10_000), "test": part(200, 20_000)})


def _changed(a, b):
    return np.flatnonzero(np.asarray(a["train"]["y"]) != np.asarray(b["train"]["y"]))


@pytest.mark.parametrize("share", [0.2, 0.4, 0.05])
def test_regression_corrupts_exactly_the_share_and_keeps_the_distribution(share):
    clean = _splits()  # distinct targets: every corrupted row changes value
    noisy = noise.apply(clean, _task(share=share), seed=3)
    changed = _changed(clean, noisy)
    assert len(changed) == round(share * 1000)
    assert sorted(changed) == sorted(noise.chosen_rows(1000, share, 3))
    assert sorted(noisy["train"]["y"]) == sorted(clean["train"]["y"])  # a permutation: same values, same marginal
    assert noisy["train"]["text"] == clean["train"]["text"]
    assert noisy["train"].features == clean["train"].features  # float targets stay float
    for split in ("validation", "test"):
        assert noisy[split]["y"] == clean[split]["y"] and noisy[split] is clean[split]


def test_classification_flips_exactly_the_share_to_other_classes_uniformly():
    clean = _splits(4000, "single_label", classes=4)
    noisy = noise.apply(clean, _task("single_label", 0.4, num_labels=4), seed=11)
    changed = _changed(clean, noisy)
    assert len(changed) == 1600  # every chosen row gets another class
    before, after = np.asarray(clean["train"]["y"])[changed], np.asarray(noisy["train"]["y"])[changed]
    assert set(after.tolist()) <= {0, 1, 2, 3}
    offsets = np.bincount((after - before) % 4, minlength=4)
    assert offsets[0] == 0 and all(abs(c - 1600 / 3) < 80 for c in offsets[1:])  # uniform over the 3 others
    assert noisy["train"].features == clean["train"].features  # int ids stay int
    assert noisy["validation"]["y"] == clean["validation"]["y"] and noisy["test"]["y"] == clean["test"]["y"]


def test_same_seed_same_rows_other_seed_other_rows_and_nested_shares():
    clean = _splits()
    a = _changed(clean, noise.apply(clean, _task(share=0.2), seed=1))
    again = noise.apply(clean, _task(share=0.2), seed=1)
    assert np.array_equal(a, _changed(clean, again))
    assert again["train"]["y"] == noise.apply(clean, _task(share=0.2), seed=1)["train"]["y"]  # same values too
    b = _changed(clean, noise.apply(clean, _task(share=0.2), seed=2))
    assert len(set(a) & set(b)) < 0.5 * len(a)  # ~20% overlap expected by chance, not the same rows
    wider = _changed(clean, noise.apply(clean, _task(share=0.4), seed=1))
    assert set(noise.chosen_rows(1000, 0.2, 1)) <= set(noise.chosen_rows(1000, 0.4, 1)) and len(wider) == 400


def test_zero_is_the_data_itself():
    clean = _splits()
    for zero in (0, 0.0, None):
        assert noise.apply(clean, _task(share=zero), seed=5) is clean
    assert noise.apply(clean, OmegaConf.create({"kind": "regression", "label_column": "y"}), seed=5) is clean


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, "lots", True])
def test_out_of_range_is_refused_naming_the_knob(bad):
    with pytest.raises(UsageError, match=r"task\.label_noise.*0 <= task\.label_noise < 1"):
        noise.apply(_splits(50), _task(share=bad), seed=1)


def test_kinds_it_cannot_corrupt_are_refused_and_a_seed_is_required():
    with pytest.raises(UsageError, match=r"task\.label_noise=0\.2 corrupts regression .* task\.kind='multi_label'"):
        noise.apply(_splits(50), _task("multi_label"), seed=1)
    soft = _task("single_label", num_labels=4)
    soft.targets = "distribution"
    with pytest.raises(UsageError, match="soft targets"):
        noise.apply(_splits(50, "single_label"), soft, seed=1)
    with pytest.raises(ValueError, match="seed"):
        noise.apply(_splits(50), _task(), seed=None)


def test_real_vader_regression_train_only_and_seeded():
    common = ["task=regression", "task.max_train_samples=400", "task.max_eval_samples=100"]
    clean, _ = data.load_splits(compose(common).task)
    task = compose([*common, "task.label_noise=0.25"]).task
    noisy, _ = data.load_splits(task, seed=42)
    chosen = set(noise.chosen_rows(400, 0.25, 42).tolist())
    changed = set(np.flatnonzero(np.asarray(clean["train"]["rating"]) != np.asarray(noisy["train"]["rating"])).tolist())
    assert changed <= chosen and len(changed) >= 0.8 * len(chosen) == 80  # ties in the mean ratings keep a few
    assert sorted(noisy["train"]["rating"]) == sorted(clean["train"]["rating"])
    assert noisy["train"]["text"] == clean["train"]["text"]
    for split in ("validation", "test"):
        assert noisy[split]["rating"] == clean[split]["rating"] and noisy[split]["text"] == clean[split]["text"]
    assert data.load_splits(task, seed=42)[0]["train"]["rating"] == noisy["train"]["rating"]
    assert data.load_splits(task, seed=43)[0]["train"]["rating"] != noisy["train"]["rating"]


def test_real_sentiment_flips_exactly_the_share():
    common = ["task=sentiment", "task.max_train_samples=300", "task.max_eval_samples=50"]
    clean, _ = data.load_splits(compose(common).task)
    noisy, _ = data.load_splits(compose([*common, "task.label_noise=0.2"]).task, seed=1)
    flips = np.asarray(clean["train"]["label"]) != np.asarray(noisy["train"]["label"])
    assert flips.sum() == 60 and set(np.flatnonzero(flips)) == set(noise.chosen_rows(300, 0.2, 1).tolist())
    assert noisy["validation"]["label"] == clean["validation"]["label"]


def test_config_hash_of_a_job_without_noise_is_unchanged_by_the_knob():
    job = ["task=regression", "loss=huber", "seed=3", "trainer.output_dir=x", "tracking.run_name=x"]  # no Hydra run
    cfg = compose(job)
    before = OmegaConf.to_container(cfg)  # the same job as composed before task.label_noise existed
    del before["task"]["label_noise"]
    assert identity.config_hash(cfg) == identity.config_hash(OmegaConf.create(before))
    noisy = compose([*job, "task.label_noise=0.2"])
    assert identity.config_hash(noisy) != identity.config_hash(cfg)
    assert identity.config_hash(noisy) != identity.config_hash(compose([*job, "task.label_noise=0.4"]))


def test_the_per_process_splits_cache_is_keyed_by_the_seed_only_under_noise():
    # run.train keys its shared (per-process) splits by the task's YAML + noise.cache_salt: a sweep's seeds
    # share one clean copy, but each seed gets its own corrupted copy
    assert noise.cache_salt(compose(["seed=1"])) == noise.cache_salt(compose(["seed=2"])) == ""
    assert noise.cache_salt(compose(["seed=1", "task.label_noise=0.2"])) != \
        noise.cache_salt(compose(["seed=2", "task.label_noise=0.2"]))
    with pytest.raises(UsageError, match=r"task\.label_noise"):
        noise.cache_salt(compose(["task.label_noise=1"]))
