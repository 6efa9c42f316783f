"""The MLflow UI for real: a short sweep's store served by ``mlflow server`` on 127.0.0.1 and read in headless
Chromium. The experiment page lists the sweep's parent with its children nested under it; a child's page
plots its loss curve."""

from __future__ import annotations

import os

import pytest
from mlflow.tracking import MlflowClient

from conftest import QUICK, run_train, store_uri
from mlflow_ui import CHROMEDRIVER, CHROMIUM, browser, experiment_page, loss_chart, mlflow_server

try:
    import selenium  # noqa: F401
    MISSING = [name for name, found in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not found]
except ImportError:
    MISSING = ["selenium"]

if MISSING and os.environ.get("CI"):  # `make test` installs them: in CI their absence is a failure
    raise RuntimeError(f"the MLflow UI test needs {', '.join(MISSING)}; `make test` installs them")
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"missing {', '.join(MISSING)} (make test installs them)")


def test_experiment_page_lists_parent_and_children_and_run_page_plots_the_loss(tmp_path):
    out = run_train(["-m", "task=regression", "loss=mse,huber", *QUICK, "trainer.logging_steps=1"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    client = MlflowClient(store_uri(tmp_path))
    exp = client.get_experiment_by_name("losslab").experiment_id
    runs = client.search_runs([exp])
    [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]

    with mlflow_server(store_uri(tmp_path), tmp_path / "server.log") as base, browser() as driver:
        text = experiment_page(driver, base, exp, parent.info.run_name, ["mse", "huber"])
        assert "3 matching runs" in text  # the parent and its two children
        points = loss_chart(driver, base, exp, children[0].info.run_id)
    assert points == 6  # trainer.logging_steps=1 over 6 steps: the whole curve is drawn
