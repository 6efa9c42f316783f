"""Bad input: a clear message, a non-zero exit, and no MLflow run left behind."""

from __future__ import annotations

import pytest
from conftest import run_train, runs


def _fails(args, tmp_path):
    out = run_train(args, tmp_path)
    assert out.returncode != 0
    assert runs(tmp_path) == [], "a refused command must leave no MLflow run"
    return out.stderr


def test_loss_that_cannot_serve_the_task(tmp_path):
    err = _fails(["loss=huber", "task=sentiment", "debug=quick"], tmp_path)
    assert "loss=huber cannot serve task=sentiment" in err
    assert "'single_label'" in err and "huber serves regression" in err
    assert "Losses for single_label: composite, cross_entropy, dice, dice_batch, focal, focal_flsd53, hinge, " \
           "label_smoothing, model_loss, multi_margin, poly1, soft_cross_entropy, square, squared_hinge, " \
           "weighted_cross_entropy" in err
    assert "Loading" not in err and "tokenize" not in err  # refused before any data or model


def test_unknown_loss_lists_the_options(tmp_path):
    err = _fails(["loss=hubber", "debug=quick"], tmp_path)
    assert "loss=hubber: no option 'hubber' in group loss. Did you mean huber" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for name in ("cross_entropy", "huber", "mae", "model_loss", "mse"):
        assert f" {name}," in err


def test_missing_data_file_names_split_and_file(tmp_path):
    missing = tmp_path / "nowhere" / "train.csv"
    err = _fails([f"task.data.train={missing}", "debug=quick"], tmp_path)
    assert f"the train file {missing} does not exist" in err


def test_missing_column_names_split_file_and_column(tmp_path):
    err = _fails(["task.label_column=score", "debug=quick"], tmp_path)
    assert "has no column 'score' (task.label_column)" in err and "train.jsonl.gz" in err


def test_misspelt_trainer_field_suggests_the_real_one(tmp_path):
    err = _fails(["trainer.learning_rat=1e-4", "debug=quick"], tmp_path)
    assert "trainer.learning_rat is not a transformers.TrainingArguments field" in err
    assert "learning_rate" in err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA GPU is here: nothing to refuse")
def test_gpu_asked_for_where_there_is_none(tmp_path):
    err = _fails(["hardware=gpu", "debug=quick"], tmp_path)
    assert "hardware=gpu asks for a CUDA GPU" in err


def test_misspelt_objective_is_refused_before_training(tmp_path):
    err = _fails(["task.objective=pearsn", "debug=quick"], tmp_path)
    assert "task.objective='pearsn' is not reported by the regression suite" in err
    assert "pearson" in err and "spearman" in err


def test_refusing_a_loss_imports_no_metric_suite_and_no_trainer(tmp_path):
    """The refusal path stays light (measured: ~3 s of CPU, mostly importing torch): no evaluate, no Trainer,
    no data library; every loss option is read from its own file, not composed."""
    import subprocess
    import sys

    from conftest import ROOT

    proc = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "train.py"), "loss=huber", "task=sentiment",
                           "model=tiny", f"paths.output_dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert proc.returncode == 2 and "loss=huber cannot serve task=sentiment" in proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" in imported  # the loss classes are imported to read the kinds they declare
    for heavy in ("evaluate", "transformers.trainer", "datasets", "mlflow"):
        assert heavy not in imported, heavy


@pytest.mark.parametrize("args, message", [
    (["task.max_length=abc"], "task.max_length=abc must be a whole number >= 1"),
    (["task.num_labels=two"], "task.num_labels=two must be null (counted in the train split) or a whole number >= 1"),
    (["task.kind=regresion"], "task.kind='regresion' is not a problem kind losslab can train yet; choose one of: "
                              "regression, single_label, multi_label, token_classification, causal_lm, seq2seq"),
])
def test_a_task_value_of_the_wrong_type_is_one_line_naming_the_option(tmp_path, args, message):
    out = run_train(["debug=quick", *args], tmp_path)
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("losslab: error:")]
    assert out.returncode == 2 and lines == [f"losslab: error: {message}"], out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "Loading" not in out.stderr
    assert runs(tmp_path) == []
