"""End to end: ``train.py`` for real with a tiny model, into a temp dir and a temp MLflow store."""

from __future__ import annotations

import pytest
from conftest import TESTS, run_train, runs, store_uri
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def test_regression_run_is_tracked(tmp_path):
    out = run_train(["task=regression", "loss=huber", "loss.delta=0.5", "seed=3", "trainer.seed=5", "debug=quick"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = runs(tmp_path)
    assert run.info.status == "FINISHED" and run.info.run_name == "huber"
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert tags["choice.loss"] == "huber" and tags["choice.task"] == "regression" and tags["choice.model"] == "tiny"
    assert tags["losslab.task_kind"] == "regression"
    assert params["loss._target_"] == "losslab.losses.Huber" and params["loss.delta"] == "0.5"
    assert params["trainer.max_steps"] == "6" and params["task.name"] == "regression"
    assert params["run.seed"] == "3" and params["trainer.seed"] == "5" and params["seed"] == "5"  # no collision
    client = MlflowClient(store_uri(tmp_path))
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [2, 4, 6]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval_pearson")] == [3, 6]
    for name in ("mse", "rmse", "mae", "pearson", "spearman", "r2"):
        assert f"test_{name}" in metrics and f"eval_{name}" in metrics
    config = client.download_artifacts(run.info.run_id, "config/config.yaml", str(tmp_path))
    assert "delta: 0.5" in open(config).read()
    assert f"MLflow run {run.info.run_id}" in out.stdout
    assert f"mlflow ui --backend-store-uri {store_uri(tmp_path)}" in out.stdout
    assert "test: mse" in out.stdout and "pearson" in out.stdout


def test_sentiment_run_with_classification_suite(tmp_path):
    out = run_train(["task=sentiment", "debug=quick", "trainer.max_steps=7"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = runs(tmp_path)
    history = MlflowClient(store_uri(tmp_path)).get_metric_history(run.info.run_id, "eval_macro_f1")
    assert [m.step for m in history] == [3, 6, 7]  # every eval_steps, and the last step
    assert run.info.status == "FINISHED" and run.data.tags["choice.loss"] == "cross_entropy"
    for name in ("accuracy", "macro_f1", "log_loss", "ece"):
        assert f"test_{name}" in run.data.metrics
    assert 0.0 <= run.data.metrics["test_accuracy"] <= 1.0


def test_nan_loss_stops_the_run_and_marks_it_failed(tmp_path):
    out = run_train([f"hydra.searchpath=[file://{TESTS}/conf]", "loss=diverging", "debug=quick"], tmp_path)
    assert out.returncode != 0
    assert "losslab: error: the loss became non-finite (nan) at step 1 (" in out.stderr
    [run] = runs(tmp_path)
    assert run.info.status == "FAILED"
    assert "NonFiniteLossError" in run.data.tags["error"]
    history = MlflowClient(store_uri(tmp_path)).get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == []  # stopped in step 1 itself, before its update and any logging step


def test_components_and_fitted_class_weights_are_logged(tmp_path):
    out = run_train(["task=sentiment", "loss=composite", "loss.terms.ce.loss._target_=losslab.losses.WeightedCrossEntropy",
                     "+loss.terms.ce.loss.weights=balanced", "debug=quick"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = runs(tmp_path)
    client = MlflowClient(store_uri(tmp_path))
    for split, steps in (("train", [2, 4, 6]), ("eval", [3, 6]), ("test", [6])):
        for term in ("ce", "focal"):
            history = client.get_metric_history(run.info.run_id, f"{split}/loss/{term}")
            assert [m.step for m in history] == steps, (split, term)
    weights = {k: float(v) for k, v in run.data.params.items() if k.startswith("loss.fitted.ce.class_weight.")}
    assert set(weights) == {"loss.fitted.ce.class_weight.0", "loss.fitted.ce.class_weight.1"}
    assert all(w > 0 for w in weights.values())


def test_gaussian_nll_gets_a_two_output_head_and_is_judged_on_its_mean(tmp_path):
    import json
    from pathlib import Path

    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification

    from losslab import predictions
    from losslab.tasks import data, encoding
    from conftest import compose

    out = run_train(["task=regression", "loss=gaussian_nll", "debug=quick", "hardware=cpu"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = runs(tmp_path)
    assert "LABEL_1" in run.data.params["id2label"]  # the head has two outputs: mean and variance
    # the final model, read back from its checkpoint, on the test rows: column 0 (the mean) is what was scored
    folder = Path(run.data.tags["losslab.job_dir"]) / "checkpoints"
    state = json.loads(max(folder.glob("checkpoint-*/trainer_state.json"), key=lambda p: p.stat().st_mtime).read_text())
    model = AutoModelForSequenceClassification.from_pretrained(state["best_model_checkpoint"]).eval()
    cfg = compose(["task=regression", "loss=gaussian_nll", "debug=quick"])
    splits, _ = data.load_splits(cfg.task)
    from losslab import models

    _, tokenizer = models.build(cfg.model, cfg.task)
    test = encoding.encode(splits, tokenizer, cfg.task)["test"]
    batch = tokenizer.pad([{k: r[k] for k in ("input_ids", "attention_mask", "token_type_ids")} for r in test],
                          return_tensors="pt")
    with torch.no_grad():
        head = model(**batch).logits.numpy()
    assert head.shape == (32, 2)
    path = MlflowClient(store_uri(tmp_path)).download_artifacts(run.info.run_id, "predictions/test.parquet",
                                                                str(tmp_path))
    items, kept, labels = predictions.read(path)
    np.testing.assert_allclose(kept, head[items, 0], atol=1e-4)  # the kept predictions are the means
    assert np.abs(head[items, 1] - head[items, 0]).max() > 1e-2  # (which the variance column is not)
    mse = float(np.mean((head[items, 0] - labels) ** 2))
    assert run.data.metrics["test_mse"] == pytest.approx(mse, rel=1e-4)
    assert run.data.metrics["test_pearson"] == pytest.approx(float(np.corrcoef(head[items, 0], labels)[0, 1]), abs=1e-4)

