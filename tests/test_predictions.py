"""Per-item predictions (losslab.predictions), evaluation in length order (losslab.evaluation), the hardware's
precision choice, and the end-to-end promise: a run's artifacts reproduce its logged metrics item by item."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from conftest import run_train, runs, store_uri
from losslab import predictions


def _roundtrip(tmp_path, preds, labels, items):
    path = tmp_path / "p.parquet"
    predictions.write(path, preds, labels, items)
    return predictions.read(path)


def test_regression_rows_round_trip(tmp_path):
    preds = np.array([[0.5], [1.5], [-2.0]], dtype=np.float32)  # one regression output per row
    items, p, y = _roundtrip(tmp_path, preds, np.array([0.4, 1.0, -1.0]), [2, 0, 1])
    assert items.tolist() == [2, 0, 1]
    assert p.shape == (3,) and np.allclose(p, [0.5, 1.5, -2.0]) and np.allclose(y, [0.4, 1.0, -1.0])


def test_token_rows_drop_the_trainers_padding_and_score_the_same(tmp_path):
    # two sentences of different lengths, concatenated by the Trainer with -100 padding
    preds = np.array([[0, 1, 2, 0, -100, -100], [0, 1, 1, 2, 2, 0]])
    labels = np.array([[-100, 1, 2, -100, -100, -100], [-100, 1, 2, 2, 0, -100]])
    items, p, y = _roundtrip(tmp_path, preds, labels, [1, 0])
    assert p.shape == (2, 5) and y.tolist()[0] == [-100, 1, 2, -100, -100]
    names = ["O", "B-x", "I-x"]
    assert predictions.score("entities", p, y, names) == predictions.score("entities", preds, labels, names)


def test_class_scores_round_trip_and_score(tmp_path):
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(20, 3)).astype(np.float32), rng.integers(0, 3, 20)
    _, p, y = _roundtrip(tmp_path, logits, labels, list(range(20)))
    assert np.allclose(p, logits) and (y == labels).all()
    assert predictions.score("classification", p, y) == pytest.approx(predictions.score("classification", logits, labels))


def test_split_in_length_order_keeps_each_rows_index():
    import datasets

    from losslab.tasks import encoding

    split = datasets.Dataset.from_dict({"length": [5, 2, 9, 2, 1], "labels": [0.0, 1.0, 2.0, 3.0, 4.0]})
    ordered = encoding.in_length_order(split)
    assert ordered["length"] == [1, 2, 2, 5, 9]
    assert ordered[encoding.ITEM] == [4, 1, 3, 0, 2]  # ties keep their order (a stable sort)
    assert [split["labels"][i] for i in ordered[encoding.ITEM]] == ordered["labels"]


def test_validation_predictions_keep_the_best_and_the_latest():
    from types import SimpleNamespace

    from losslab.evaluation import ValidationPredictions

    keeper = ValidationPredictions(lambda p: {})
    args = SimpleNamespace(metric_for_best_model="pearson", greater_is_better=True, load_best_model_at_end=True)
    for step, value in ((3, 0.2), (6, 0.5), (9, 0.4), (12, 0.3)):
        keeper(SimpleNamespace(predictions=np.array([step]), label_ids=np.array([0])))
        keeper.file(args, step, {"eval_pearson": value})
    assert sorted(keeper.kept) == [6, 12]  # the best so far and the latest
    keeper(SimpleNamespace(predictions=np.array([99]), label_ids=np.array([0])))
    keeper.file(args, 12, {"test_pearson": 0.9})  # a test evaluation is not validation
    assert keeper.kept[12][0].tolist() == [12]
    trainer = SimpleNamespace(state=SimpleNamespace(best_global_step=6, global_step=12), args=args)
    assert keeper.final(trainer)[0].tolist() == [6]


def test_precision_auto_follows_what_the_cpu_runs_natively():
    from losslab import hardware
    from losslab.errors import ConfigError

    hw = OmegaConf.create({"device": "cpu", "precision": "auto", "dataloader_num_workers": 0})
    native = hardware.cpu_bf16()
    assert hardware.training_kwargs(hw)["bf16"] is native
    hw.precision = "fp32"
    assert hardware.training_kwargs(hw)["bf16"] is False
    hw.precision = "fp16"
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        hardware.training_kwargs(hw)


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_picks_bf16_exactly_when_the_cpu_has_it(monkeypatch, native):
    """Both answers of the CPU probe, whatever this machine's CPU is (the test above sees only its own): auto
    follows it, and an explicit bf16 is refused where it would only be emulated."""
    from losslab import hardware
    from losslab.errors import ConfigError

    monkeypatch.setattr(hardware, "cpu_bf16", lambda: native)
    hw = OmegaConf.create({"device": "cpu", "precision": "auto", "dataloader_num_workers": 0})
    kwargs = hardware.training_kwargs(hw)
    assert kwargs["bf16"] is native and not kwargs.get("fp16")
    assert hardware.precision(hw) == (False, "bf16" if native else "fp32")
    hw.precision = "bf16"
    if native:
        assert hardware.training_kwargs(hw)["bf16"] is True
    else:
        with pytest.raises(ConfigError, match="no native bf16"):
            hardware.training_kwargs(hw)


@pytest.mark.slow
def test_a_runs_predictions_reproduce_its_logged_metrics(tmp_path):
    """Two evaluation batches (200 rows at batch 128), evaluated in length order: the artifacts' items map back
    to the data, and the suite on them gives the logged test metrics and the validation objective."""
    import gzip
    import json

    from mlflow.tracking import MlflowClient

    from losslab.paths import resource

    proc = run_train(["debug=quick", "task.max_eval_samples=200"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = runs(tmp_path)
    client = MlflowClient(store_uri(tmp_path))
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id, "predictions")) == \
        ["predictions/test.parquet", "predictions/validation.parquet"]
    for split, logged in (("test", run.data.metrics["test_pearson"]), ("validation", run.data.metrics["objective"])):
        path = client.download_artifacts(run.info.run_id, f"predictions/{split}.parquet", str(tmp_path))
        items, p, y = predictions.read(path)
        assert len(items) == 200 and sorted(items.tolist()) == list(range(200))
        assert predictions.score("regression", p, y)["pearson"] == pytest.approx(logged, abs=1e-6)
        with gzip.open(resource(f"vader/{split}.jsonl.gz"), "rt") as f:
            ratings = [json.loads(line)["rating"] for _, line in zip(range(200), f)]
        assert np.allclose(np.asarray(ratings)[items], y, atol=1e-5)
