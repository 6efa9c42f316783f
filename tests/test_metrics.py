"""The metric suites (``evaluate`` modules loaded by local path) against scikit-learn and SciPy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from losslab import metrics

rng = np.random.default_rng(1)


def test_suites_load_offline_by_local_path():
    assert {"regression", "classification"} <= set(metrics.suites())
    with pytest.raises(ValueError, match="choose one of"):
        metrics.load("nope")


def test_regression_suite():
    y = rng.normal(size=200)
    p = y + rng.normal(size=200) * 0.5
    got = metrics.load("regression").compute(predictions=p, references=y)
    mse = skm.mean_squared_error(y, p)
    assert got["mse"] == pytest.approx(mse)
    assert got["rmse"] == pytest.approx(np.sqrt(mse))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert got["r2"] == pytest.approx(skm.r2_score(y, p))
    assert got["pearson"] == pytest.approx(stats.pearsonr(p, y)[0])
    assert got["spearman"] == pytest.approx(stats.spearmanr(p, y)[0])


def test_regression_suite_constant_predictions_give_nan_correlation():
    got = metrics.load("regression").compute(predictions=[0.0] * 5, references=[1, 2, 3, 4, 5])
    assert np.isnan(got["pearson"]) and got["mse"] == pytest.approx(11.0)


def test_classification_suite():
    logits = rng.normal(size=(300, 3)) * 2
    y = rng.integers(0, 3, size=300)
    got = metrics.load("classification").compute(predictions=logits, references=y)
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, prob.argmax(1)))
    assert got["macro_f1"] == pytest.approx(skm.f1_score(y, prob.argmax(1), average="macro"))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, prob, labels=[0, 1, 2]))


def test_expected_calibration_error_by_hand():
    # two bins used: confidence 0.9 (4 items, 3 right) and 0.6 (2 items, 2 right)
    conf = np.array([0.9, 0.9, 0.9, 0.9, 0.6, 0.6])
    correct = np.array([1, 1, 1, 0, 1, 1], dtype=float)
    from importlib import util

    spec = util.spec_from_file_location("cls", metrics.SUITES_DIR / "classification" / "classification.py")
    mod = util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    expected = 4 / 6 * abs(0.75 - 0.9) + 2 / 6 * abs(1.0 - 0.6)
    assert mod.expected_calibration_error(conf, correct) == pytest.approx(expected)


def test_every_task_objective_is_a_metric_its_suite_reports():
    from conftest import compose, options

    for task in options("task"):
        cfg = compose([f"task={task}"]).task
        assert cfg.objective in metrics.get(cfg.metrics).names(cfg.get("num_labels"), cfg.get("labels")), task


def test_each_suite_declares_the_direction_of_what_it_reports():
    for name in metrics.suites():
        suite = metrics.get(name)
        reported = set(suite.names(3)) - {m for m in suite.names(3) if m.startswith(("f1_", "ap_"))}
        assert reported and reported <= suite.lower | suite.higher, name
        assert not suite.lower & suite.higher, name
