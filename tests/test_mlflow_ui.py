"""The MLflow UI for real: a short sweep's store served by ``mlflow server`` on 127.0.0.1 and read in headless
Chromium. The experiment page lists the sweep's parent with its children nested under it, each named by its loss
and seed, each with its data in the Dataset column; the parent's page shows the report's answer; a child's page
plots its loss curve (issue 16)."""

from __future__ import annotations

import os

import pytest
from mlflow.tracking import MlflowClient

from conftest import run_train, store_uri
from mlflow_ui import (CHROMEDRIVER, CHROMIUM, browser, experiment_page, grouped_charts, loss_chart,
                       mlflow_server, plain, run_overview)

try:
    import selenium  # noqa: F401
    MISSING = [name for name, found in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not found]
except ImportError:
    MISSING = ["selenium"]

if MISSING and os.environ.get("CI"):  # `make test` installs them: in CI their absence is a failure
    raise RuntimeError(f"the MLflow UI test needs {', '.join(MISSING)}; `make test` installs them")
pytestmark = [pytest.mark.slow,  # trains a sweep first
              pytest.mark.skipif(bool(MISSING), reason=f"missing {', '.join(MISSING)} (make test installs them)")]


def test_sweep_in_the_ui_names_children_shows_the_answer_and_the_datasets(tmp_path):
    from losslab.report import sweep as report

    out = run_train(["-m", "task=regression", "loss=mse,huber", "seed=1,2", "debug=quick", "trainer.logging_steps=1"],
                    tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(store_uri(tmp_path))
    exp = client.get_experiment_by_name("losslab").experiment_id
    runs = client.search_runs([exp])
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    names = ["huber · seed=1", "huber · seed=2", "mse · seed=1", "mse · seed=2"]
    assert sorted(r.info.run_name for r in children) == names  # the loss and the seed: what differs
    for child in children:  # judging metrics and a one-line description on every child
        assert {"objective/test_pearson", "objective/validation_pearson"} <= set(child.data.metrics)
        assert child.data.metrics["objective/test_pearson"] == child.data.metrics["test_pearson"]
        note = child.data.tags["mlflow.note.content"]
        assert "regression" in note and child.data.tags["choice.loss"] in note and "test pearson" in note
        assert sorted(i.dataset.name for i in child.inputs.dataset_inputs) == \
            ["regression/test", "regression/train", "regression/validation"]
    train = {i.dataset.digest for c in children for i in c.inputs.dataset_inputs if i.dataset.name.endswith("train")}
    assert len(train) == 1  # the same rows in every job, the same digest
    assert "regression/train" in {i.dataset.name for i in parent.inputs.dataset_inputs}
    assert len(client.get_metric_history(children[0].info.run_id, "loss")) == 6  # what the chart must draw
    answer = report.answer(report.build(store_uri(tmp_path), parent.info.run_id))  # as the sweep built it
    assert answer in parent.data.tags["mlflow.note.content"]

    with mlflow_server(store_uri(tmp_path), tmp_path / "server.log") as base, browser() as driver:
        text = experiment_page(driver, base, exp, parent.info.run_name, names)
        assert "5 matching runs" in text  # the parent and its four children
        assert f"regression/train ({next(iter(train))[:8]}" in text  # the Dataset column names the data
        page = run_overview(driver, base, exp, parent.info.run_id, plain(answer)[:60])
        assert "test pearson" in page  # the report's table below the answer
        legends = grouped_charts(driver, base, exp, parent.info.run_name, names, "choice.loss", "objective/")
        assert any(t.startswith("huber (objective/test_pearson") for t in legends), legends
        points = loss_chart(driver, base, exp, children[0].info.run_id)
    assert points == 6  # trainer.logging_steps=1 over 6 steps: the whole curve is drawn
