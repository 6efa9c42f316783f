"""One source of truth for a metric's direction: the metric suites (losslab.metrics). The Trainer's
greater_is_better, the task's, the Optuna sweepers' direction and the report follow it; a setting against it
is refused before anything loads."""

from __future__ import annotations

import pytest

from conftest import compose, options
from losslab import metrics, preflight


def test_every_metric_a_suite_reports_has_a_declared_direction():
    for task in options("task"):
        cfg = compose([f"task={task}"]).task
        for m in metrics.get(cfg.metrics).names(cfg.get("num_labels"), cfg.get("labels")):
            assert metrics.has_direction(m), (task, m)


@pytest.mark.parametrize("objective, up", [("mae", False), ("pearson", True), ("mse", False)])
def test_trainer_task_and_sweeper_follow_the_objective(objective, up):
    cfg = compose(["task=regression", f"task.objective={objective}"])
    assert cfg.task.greater_is_better is up and cfg.trainer.greater_is_better is up
    preflight.check_direction(cfg)  # consistent: no error
    hydra = compose(["hparams_search=huber_delta", f"task.objective={objective}"], hydra=True)
    assert hydra.hydra.sweeper.direction == ("maximize" if up else "minimize")


def test_each_task_defaults_follow_the_suite():
    for task in options("task"):
        cfg = compose([f"task={task}"])
        assert cfg.trainer.greater_is_better is metrics.greater_is_better(cfg.task.objective), task
    assert compose(["task=rating_dist"]).task.greater_is_better is False  # kl: lower is better
    assert compose(["task=lm"]).trainer.greater_is_better is False  # perplexity


def test_a_direction_set_against_the_suite_is_refused_in_one_line():
    cfg = compose(["task=regression", "task.objective=mae", "task.greater_is_better=true"])
    with pytest.raises(preflight.ConfigError) as err:
        preflight.check_direction(cfg)
    assert str(err.value) == ("task.greater_is_better=true contradicts the metric suite: mae is better when lower; "
                              "leave task.greater_is_better out (it follows from the metric)")
    with pytest.raises(preflight.ConfigError, match="trainer.greater_is_better=false contradicts"):
        preflight.check_direction(compose(["task=regression", "trainer.greater_is_better=false"]))
    # the checkpoint metric decides the Trainer's direction, even when it is not the objective
    cfg = compose(["task=regression", "trainer.metric_for_best_model=eval_mae"])
    assert cfg.trainer.greater_is_better is False
    preflight.check_direction(cfg)


@pytest.mark.slow
def test_objective_mae_keeps_the_lowest_mae_checkpoint_and_the_report_agrees(tmp_path):
    from mlflow.tracking import MlflowClient

    from conftest import run_train, runs, store_uri
    from losslab.report import sweep as report

    out = run_train(["-m", "task=regression", "task.objective=mae", "loss=mse,mae", "debug=quick"], tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    children = [r for r in runs(tmp_path) if "mlflow.parentRunId" in r.data.tags]
    client = MlflowClient(store_uri(tmp_path))
    for child in children:
        assert child.data.params["trainer.greater_is_better"] == "False"
        maes = [m.value for m in client.get_metric_history(child.info.run_id, "eval_mae")]
        assert len(maes) >= 2 and child.data.metrics["objective"] == pytest.approx(min(maes))  # the lowest kept
    built = report.build(store_uri(tmp_path), children[0].data.tags["mlflow.parentRunId"], resamples=50)
    ranked = sorted((r for r in built.rows if r.label not in built.flags), key=lambda r: r.mean("mae"))
    assert built.objective == "mae" and (not ranked or built.best("mae") == ranked[0].label)
    assert "mae ↓" in report.table(built)
