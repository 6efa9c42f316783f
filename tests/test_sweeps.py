"""Sweeps for real: Hydra multiruns on the basic, joblib, submitit and Optuna plugins, each one MLflow parent
with a child per job and a report at the end; a failed job, a finished sweep run again, a job killed with
SIGKILL and resumed, and the report rebuilt from the store alone."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import TESTS, run_train, runs, store_uri

pytestmark = pytest.mark.slow  # every test here trains (sweeps of debug=quick jobs)

PLOTS = ("loss_curves.png", "validation.png", "test_metrics.png")


def split(out: Path):
    all_runs = runs(out)
    parents = [r for r in all_runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in all_runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def sweep_dirs(out: Path) -> list[Path]:
    return sorted(p.parent for p in out.glob("multiruns/*/*/mlflow_parent.txt"))


def assert_report(out: Path, parent, rows: list[str]) -> str:
    """The report is in the sweep dir and on the parent run; returns report.md."""
    [sweep] = sweep_dirs(out)[-1:]
    folder = sweep / "report"
    for name in (*PLOTS, "report.md", "table.md"):
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, name
    logged = {a.path for a in MlflowClient(store_uri(out)).list_artifacts(parent.info.run_id, "report")}
    assert {f"report/{n}" for n in (*PLOTS, "report.md", "table.md")} <= logged
    table = (folder / "table.md").read_text()
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == rows
    assert "eval_loss" not in table and "| loss ↓" not in table  # losses' own units are never compared
    return (folder / "report.md").read_text()


def test_sweep_ends_with_a_report_and_a_rerun_runs_nothing_finished(tmp_path):
    args = ["-m", "task=regression", "loss=mse,mae", "seed=1,2", "debug=quick"]
    out = run_train(args, tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    [parent], children = split(tmp_path)
    assert parent.info.status == "FINISHED" and parent.data.tags["children.finished"] == "4"
    assert "loss=mse,mae" in parent.data.tags["losslab.command"]
    # named by what the sweep varies (the report's rule), so the seed shows in the UI's runs table
    assert sorted(c.info.run_name for c in children) == ["mae · seed=1", "mae · seed=2", "mse · seed=1", "mse · seed=2"]
    assert all(c.info.status == "FINISHED" and "test_pearson" in c.data.metrics for c in children)
    assert {c.data.tags["choice.loss"] for c in children} == {"mse", "mae"}  # the UI groups by these
    report = assert_report(tmp_path, parent, ["mse", "mae"])
    assert "| mse | 2 |" in report and "**Answer (pearson):**" in report and "## Against the best row" in report
    # both intervals in every cell: over seeds (s) and over test items, from each run's predictions artifact (t)
    first = report.split("| mse | 2 |")[1].split("\n")[0]
    assert "s [" in first and "t [" in first and "built by losslab.report v3" in report
    assert re.search(r"^(`m(se|ae)` has the best pearson|No row can be ranked on pearson|One seed per row)", out.stdout, re.M)
    assert "pearson ↑" in out.stdout and "mse ↓" in out.stdout  # the table, in the terminal too

    # the same command again: every job is found finished by its composed config and skipped
    again = run_train(args, tmp_path, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already finished as MLflow run") == 4
    [parent2], children2 = split(tmp_path)
    assert parent2.info.run_id == parent.info.run_id and parent2.data.tags["losslab.attempts"] == "2"
    assert sorted(c.info.run_id for c in children2) == sorted(c.info.run_id for c in children)

    # the report from the store alone: the sweep dirs are gone
    for folder in sweep_dirs(tmp_path):
        shutil.rmtree(folder)
    rebuilt = tmp_path / "rebuilt"
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "losslab.report", parent.info.run_id, "--uri", store_uri(tmp_path),
                           "--out", str(rebuilt), "--no-log"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (rebuilt / "table.md").read_text().splitlines()[2].startswith("| mse | 2 |")
    assert all((rebuilt / name).is_file() for name in PLOTS)


def test_a_store_carried_through_a_snapshot_onto_a_fresh_disk_reruns_nothing_finished(tmp_path):
    """experiments/snapshot.py: a study longer than one sitting goes on elsewhere. The saved store (the SQLite
    database and the finished runs' artifacts) is restored after the whole output folder is gone; the same
    command then reuses every finished job and reports from the restored predictions."""
    import subprocess
    import sys

    from conftest import ROOT

    out, snap = tmp_path / "store", tmp_path / "snapshot"
    args = ["-m", "task=regression", "loss=mse,mae", "debug=quick"]
    first = run_train(args, out, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    [parent], children = split(out)

    def snapshot(*argv):
        return subprocess.run([sys.executable, str(ROOT / "experiments" / "snapshot.py"), *map(str, argv)],
                              capture_output=True, text=True, timeout=300)

    saved = snapshot("save", out, snap)
    # the 2 jobs and the sweep's parent run
    assert saved.returncode == 0 and "of 3 finished run(s)" in saved.stdout, saved.stderr
    assert len(list((snap / "artifacts").rglob("test.parquet"))) == 2
    shutil.rmtree(out)                                   # a fresh disk: no store, no sweep dir, no checkpoint
    restored = snapshot("restore", snap, out)
    assert restored.returncode == 0 and "(3 finished run(s))" in restored.stdout, restored.stderr
    again = snapshot("restore", snap, out)               # never over a store that is there
    assert again.returncode == 1 and "not overwritten" in again.stderr

    rerun = run_train(args, out, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert rerun.stdout.count("already finished as MLflow run") == 2
    [parent2], children2 = split(out)
    assert parent2.info.run_id == parent.info.run_id
    assert sorted(c.info.run_id for c in children2) == sorted(c.info.run_id for c in children)
    report = (sweep_dirs(out)[-1] / "report" / "report.md").read_text()
    assert "t [" in report                               # the item intervals: the restored predictions were read


def test_a_failed_job_does_not_sink_the_sweep_and_is_retried_on_rerun(tmp_path):
    args = ["-m", f"hydra.searchpath=[file://{TESTS}/conf]", "task=regression", "loss=mse,diverging,cross_entropy",
            "debug=quick"]
    out = run_train(args, tmp_path, timeout=900)
    assert out.returncode == 1  # the sweep finished, but not every job did
    [parent], children = split(tmp_path)
    status = {c.info.run_name: c.info.status for c in children}
    assert status == {"mse": "FINISHED", "diverging": "FAILED", "cross_entropy": "FAILED"}
    assert parent.info.status == "FAILED" and parent.data.tags["children.failed"] == "2"
    errors = {c.info.run_name: c.data.tags.get("error", "") for c in children}
    assert errors["diverging"].startswith("NonFiniteLossError")
    assert errors["cross_entropy"].startswith("ConfigError: loss=cross_entropy cannot serve task=regression")
    client = MlflowClient(store_uri(tmp_path))
    failed = next(c for c in children if c.info.run_name == "diverging")
    assert "error.txt" in {a.path for a in client.list_artifacts(failed.info.run_id)}
    assert "FAILED: diverging" in out.stdout and "FAILED: cross_entropy" in out.stdout
    report = assert_report(tmp_path, parent, ["mse"])
    assert "## Failed jobs" in report and "NonFiniteLossError" in report and "ConfigError" in report

    again = run_train(args, tmp_path, timeout=900)
    assert again.returncode == 1
    assert again.stdout.count("already finished as MLflow run") == 1  # mse is not rerun; the others are
    _, children2 = split(tmp_path)
    assert sorted(c.info.run_name for c in children2) == sorted(
        ["mse", "diverging", "diverging", "cross_entropy", "cross_entropy"])


def test_a_sweep_whose_every_job_is_a_users_mistake_fails_with_one_line_per_job(tmp_path):
    out = run_train(["-m", "task=regression", "loss=cross_entropy,bce", "debug=quick"], tmp_path, timeout=300)
    assert out.returncode == 1, out.stderr[-3000:]  # nothing finished: the sweep did not succeed
    assert "Traceback" not in out.stderr + out.stdout  # a bad option is one line, not a stack
    for num, loss in enumerate(("cross_entropy", "bce")):
        assert f"error: job #{num} (task=regression loss={loss}" in out.stderr
        assert f"FAILED: {loss}" in out.stdout
    [parent], children = split(tmp_path)
    assert parent.info.status == "FAILED" and parent.data.tags["children.finished"] == "0"
    assert sorted(c.info.status for c in children) == ["FAILED", "FAILED"]
    assert not list(tmp_path.glob("multiruns/*/*/report"))  # no report of nothing


def test_a_job_killed_with_sigkill_resumes_from_its_checkpoint_into_the_same_run(tmp_path):
    marker = tmp_path / "killed"
    args = ["-m", f"hydra.searchpath=[file://{TESTS}/conf]", "task=regression", "loss=dies_once",
            f"loss.marker={marker}", "debug=quick", "trainer.max_steps=8", "trainer.logging_steps=1"]
    first = run_train(args, tmp_path)
    assert first.returncode == -9 and marker.read_text() == "killed at call 6\n"  # during step 5
    [_], [killed] = split(tmp_path)
    assert killed.info.status == "RUNNING"  # nobody could close it

    second = run_train(args, tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    [parent], [child] = split(tmp_path)
    assert child.info.run_id == killed.info.run_id and child.info.status == "FINISHED"
    assert child.data.tags["losslab.resumed_from"].endswith("checkpoint-3")
    client = MlflowClient(store_uri(tmp_path))
    steps = {key: [m.step for m in client.get_metric_history(child.info.run_id, key)]
             for key in ("loss", "eval_pearson", "test_pearson", "objective")}
    assert steps["loss"] == list(range(1, 9))  # every step once: none lost, none twice
    assert steps["eval_pearson"] == [3, 6, 8] and steps["test_pearson"] == [8] and steps["objective"] == [8]
    assert parent.info.status == "FINISHED"


def test_joblib_runs_jobs_in_parallel_with_no_lost_run_metric_or_artifact(tmp_path):
    out = run_train(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", "task=regression",
                     "loss=mse,mae,huber,log_cosh", "debug=quick"], tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    [parent], children = split(tmp_path)
    assert sorted(c.info.run_name for c in children) == ["huber", "log_cosh", "mae", "mse"]
    client = MlflowClient(store_uri(tmp_path))
    for child in children:  # four processes wrote to one sqlite store at once
        assert child.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(child.info.run_id, "loss")] == [2, 4, 6]
        assert [m.step for m in client.get_metric_history(child.info.run_id, "eval_pearson")] == [3, 6]
        assert "test_pearson" in child.data.metrics and child.data.params["run.seed"] == "42"
        assert "config/config.yaml" in {a.path for a in client.list_artifacts(child.info.run_id, "config")}
    assert_report(tmp_path, parent, ["mse", "mae", "huber", "log_cosh"])


def test_submitit_local_preset_runs_each_job_in_its_own_process(tmp_path):
    out = run_train(["-m", "hydra/launcher=local", "task=regression", "loss=mse,mae", "debug=quick"], tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    [parent], children = split(tmp_path)
    assert sorted(c.info.run_name for c in children) == ["mae", "mse"]
    assert all(c.info.status == "FINISHED" for c in children)
    [sweep] = sweep_dirs(tmp_path)
    assert list(sweep.glob(".submitit/*/*_result.pkl"))  # submitit ran them
    assert_report(tmp_path, parent, ["mse", "mae"])


def test_optuna_search_tunes_huber_delta_and_reports_a_row_per_setting(tmp_path):
    out = run_train(["hparams_search=huber_delta", "hydra.sweeper.n_trials=2", "debug=quick"], tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    [parent], children = split(tmp_path)
    deltas = sorted(float(c.data.params["loss.delta"]) for c in children)
    assert len(deltas) == 2 and deltas[0] != deltas[1] and all(0.05 <= d <= 5.0 for d in deltas)
    client = MlflowClient(store_uri(tmp_path))
    for child in children:  # what each trial returned to Optuna: its best validation pearson over the run
        history = [m.value for m in client.get_metric_history(child.info.run_id, "eval_pearson")]
        assert len(history) == 2 and child.data.metrics["objective"] == pytest.approx(max(history), abs=1e-9)
    [sweep] = sweep_dirs(tmp_path)
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    best = max(children, key=lambda c: c.data.metrics["objective"])  # pearson: greater is better
    assert results["best_value"] == pytest.approx(best.data.metrics["objective"], abs=1e-9)
    assert float(results["best_params"]["loss.delta"]) == pytest.approx(float(best.data.params["loss.delta"]))
    table = (sweep / "report" / "table.md").read_text()
    assert table.count("| huber · delta=") == 2
