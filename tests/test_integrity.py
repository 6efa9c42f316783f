"""Wrong or stuck results, for real (issue #30): a checkpoint belongs to one job, a non-finite step stops the run at
that step and is never saved or resumed, labels on which the results would be meaningless are refused, a deleted
experiment is refused before any job, a sweep's parent ends only after its whole report, a run dir is one job's,
and the version a job runs under is its code's hash. train.py runs for real with ``debug=quick``; each refusal is
one line, its exit code, and what the store holds after it.

docs/tracking-and-faults.md's "What happens when…" table lists the same cases."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import TESTS, run_train, runs, store_uri

SEARCH = f"hydra.searchpath=[file://{TESTS}/conf]"


def error_lines(text: str) -> list[str]:
    """losslab's one-line messages (a progress bar may precede one on its line)."""
    return [line[line.index("losslab: error:"):] for line in text.splitlines() if "losslab: error:" in line]


def refused(out: subprocess.CompletedProcess, code: int, *parts: str) -> str:
    [line] = error_lines(out.stderr)
    assert out.returncode == code, out.stderr[-3000:]
    for part in parts:
        assert part in line, (part, line)
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    return line


def steps(out: Path, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in MlflowClient(store_uri(out)).get_metric_history(run_id, key))


# 1. a checkpoint folder, and a run dir, belong to one job -------------------------------------------------

@pytest.mark.slow  # trains a model (twice: killed, then resumed)
def test_another_jobs_checkpoints_or_run_dir_are_refused_and_the_job_resumes_its_own(tmp_path):
    run_dir = tmp_path / "a"
    a = [SEARCH, "debug=quick", "loss=dies_once", f"loss.marker={tmp_path}/killed", f"hydra.run.dir={run_dir}"]
    first = run_train(a, tmp_path)  # SIGKILLs itself in step 5: checkpoint-3 is complete
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    folder = run_dir / "checkpoints"
    assert (folder / "checkpoint-3" / "trainer_state.json").is_file()
    [killed] = runs(tmp_path)

    # another config (seed=7) pointed at A's checkpoints: refused before its run starts, nothing written there
    b = [SEARCH, "debug=quick", "loss=dies_once", f"loss.marker={tmp_path}/killed", "seed=7"]
    before = sorted(p.name for p in folder.iterdir())
    out = run_train([*b, f"trainer.output_dir={folder}"], tmp_path)
    refused(out, 2, f"losslab: error: {folder} holds checkpoints of another job (checkpoint-3: debug=quick "
                    "loss=dies_once", "choose another trainer.output_dir or remove it")
    assert sorted(p.name for p in folder.iterdir()) == before
    assert [r.info.run_id for r in runs(tmp_path)] == [killed.info.run_id]  # no run left behind

    # another config in A's run dir: refused before Hydra writes its files there
    overrides = (run_dir / ".hydra" / "overrides.yaml").read_text()
    out = run_train([*b, f"hydra.run.dir={run_dir}"], tmp_path)
    refused(out, 2, f"losslab: error: {run_dir} holds the files of another job (", "choose another hydra.run.dir")
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == overrides
    assert len(runs(tmp_path)) == 1

    # A itself, the same command: resumes its own checkpoint into its own run and finishes
    again = run_train(a, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    [run] = runs(tmp_path)
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    assert run.data.tags["losslab.resumed_from"] == str(folder / "checkpoint-3")
    assert steps(tmp_path, run.info.run_id, "loss") == [2, 4, 6]
    marks = [json_of(p) for p in [run_dir, folder, *folder.glob("checkpoint-*")]]
    assert {m["config_hash"] for m in marks} == {run.data.tags["losslab.config_hash"]}


def json_of(folder: Path) -> dict:
    import json

    return json.loads((folder / "losslab_job.json").read_text())


def _checkpoint(folder: Path, step: int, owner: str | None, value: float = 0.5, complete: bool = True) -> Path:
    """A checkpoint as the Trainer leaves it (weights, trainer_state.json), marked as ``owner``'s."""
    import torch
    from safetensors.torch import save_file

    from losslab import integrity

    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    save_file({"w": torch.full((3, 2), value), "step": torch.tensor([step])}, str(path / "model.safetensors"))
    if complete:
        (path / "trainer_state.json").write_text('{"global_step": %d}' % step)
    if owner:
        integrity.write(path, {"config_hash": owner, "overrides": f"job {owner}", "version": "v"})
    return path


def test_only_the_jobs_own_finite_checkpoints_are_resumed_and_anyone_elses_block(tmp_path, capsys):
    from losslab import integrity

    folder = tmp_path / "checkpoints"
    _checkpoint(folder, 2, "A")
    _checkpoint(folder, 4, "A", value=float("nan"))  # left by an older losslab
    _checkpoint(folder, 6, None, complete=False)       # cut short by a kill: nobody's, never resumed
    integrity.check_checkpoints(folder, "A")          # none of another job's
    assert integrity.resumable(folder, "A") == str(folder / "checkpoint-2")
    assert (folder / "nonfinite-checkpoint-4").is_dir() and not (folder / "checkpoint-4").exists()
    assert (f"losslab: {folder / 'checkpoint-4'} holds non-finite weights (nan): not resumed (moved to "
            "nonfinite-checkpoint-4); resuming from checkpoint-2 instead") in capsys.readouterr().err

    _checkpoint(folder, 8, "B")  # another job's: never resumed, and the folder is refused
    assert integrity.resumable(folder, "A") == str(folder / "checkpoint-2")
    with pytest.raises(integrity.OtherJob, match=re.escape(f"{folder} holds checkpoints of another job "
                                                           "(checkpoint-8: job B; losslab v; config_hash B)")):
        integrity.check_checkpoints(folder, "A")
    _checkpoint(folder, 10, None)  # complete and unmarked: whose it is cannot be told
    with pytest.raises(integrity.OtherJob, match="checkpoint-10: no losslab_job.json"):
        integrity.check_checkpoints(folder, "B")

    only_nan = tmp_path / "only"
    _checkpoint(only_nan, 3, "A", value=float("inf"))
    assert integrity.resumable(only_nan, "A") is None
    err = capsys.readouterr().err
    assert "checkpoint-3 holds non-finite weights (inf)" in err and err.rstrip().endswith("; starting over")


# 2. a non-finite step ----------------------------------------------------------------------------------------

@pytest.mark.slow  # trains a model (twice)
def test_a_nan_step_stops_the_run_at_that_step_and_a_nonfinite_checkpoint_is_never_resumed(tmp_path):
    run_dir = tmp_path / "run"
    args = [SEARCH, "debug=quick", "loss=nan_once", "loss.at=5", f"loss.marker={tmp_path}/nan",
            "trainer.save_steps=2", "trainer.eval_steps=2", "trainer.save_total_limit=null", "trainer.logging_steps=1",
            f"hydra.run.dir={run_dir}"]
    first = run_train(args, tmp_path)  # NaN at step 5: after checkpoint-4, before the end (the last log)
    refused(first, 1, "losslab: error: the loss became non-finite (nan) at step 5 (training stopped before that "
                      "step's update")
    [run] = runs(tmp_path)
    assert run.info.status == "FAILED"
    assert run.data.tags["error"].startswith("NonFiniteLossError: the loss became non-finite (nan) at step 5")
    folder = run_dir / "checkpoints"
    assert sorted(p.name for p in folder.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]  # none after it
    assert steps(tmp_path, run.info.run_id, "loss") == [1, 2, 3, 4]

    # checkpoint-4 as an older losslab could have left it (NaN weights): never resumed, set aside, said
    from safetensors.torch import load_file, save_file

    weights = folder / "checkpoint-4" / "model.safetensors"
    state = load_file(str(weights))
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name][0] = float("nan")
    save_file(state, str(weights), metadata={"format": "pt"})
    again = run_train(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (f"losslab: {folder / 'checkpoint-4'} holds non-finite weights (nan): not resumed (moved to "
            "nonfinite-checkpoint-4); resuming from checkpoint-2 instead") in again.stderr
    [run] = runs(tmp_path)
    assert run.info.status == "FINISHED" and run.data.tags["losslab.resumed_from"] == str(folder / "checkpoint-2")
    assert steps(tmp_path, run.info.run_id, "loss") == [1, 2, 3, 4, 5, 6]
    history = MlflowClient(store_uri(tmp_path)).get_metric_history(run.info.run_id, "loss")
    assert all(m.value == m.value for m in history if m.step > 4)  # the steps after the resume are finite


def test_a_checkpoint_of_nonfinite_weights_is_never_saved(tmp_path):
    import torch
    from transformers import Trainer, TrainingArguments

    from losslab import integrity
    from losslab.callbacks import NonFiniteLossError

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(2, 1)

    cls = type("Trainer", (integrity.FiniteTraining, Trainer), {})
    trainer = cls(model=Model(), args=TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True,
                                                        save_only_model=True))
    trainer.losslab_marker = {"config_hash": "A"}
    trainer.state.global_step = 3
    trainer._save_checkpoint(trainer.model, None)  # finite: saved, marked
    assert integrity.read(tmp_path / "checkpoint-3") == {"config_hash": "A"}
    assert (tmp_path / "checkpoint-3" / "trainer_state.json").is_file()
    with torch.no_grad():
        trainer.model.w.weight[0, 0] = float("inf")
    trainer.state.global_step = 4
    with pytest.raises(NonFiniteLossError, match=r"the model's weights became non-finite \(inf\) at step 4"):
        trainer._save_checkpoint(trainer.model, None)
    assert not (tmp_path / "checkpoint-4").exists()


# 3. labels on which the results mean nothing --------------------------------------------------------------

def _files(tmp_path, rows: dict[str, list[tuple[str, object]]]) -> list[str]:
    out = []
    for split, split_rows in rows.items():
        path = tmp_path / f"{split}.csv"
        path.write_text("\n".join(["text,label", *(f"{t},{v}" for t, v in split_rows)]) + "\n")
        out.append(f"task.data.{split}={path}")
    return out


TEXTS = ["a fine film", "a dull film", "great acting", "weak plot", "lovely score", "flat ending"]


def test_an_integer_class_id_only_in_validation_is_refused(tmp_path):
    rows = {"train": [(t, i % 2) for i, t in enumerate(TEXTS)],
            "validation": [("another film", 0), ("a new plot", 2)],
            "test": [("one more film", 1), ("one more plot", 0)]}
    out = run_train(["task=csv_classification", "debug=quick", *_files(tmp_path, rows)], tmp_path)
    refused(out, 2, f"losslab: error: task data: validation row 1 ({tmp_path / 'validation.csv'}), column 'label': "
                    "label 2 is not a class id of the train split (0..1)", "task.num_labels")
    assert runs(tmp_path) == []


@pytest.mark.parametrize("split, row, value", [("test", 1, "inf"), ("train", 2, "-inf")])
def test_a_non_finite_label_is_refused_with_its_row(tmp_path, split, row, value):
    rows = {s: [(f"{t} {s}", 1.0 + i) for i, t in enumerate(TEXTS)] for s in ("train", "validation", "test")}
    rows[split][row] = (rows[split][row][0], value)
    out = run_train(["task=csv_regression", "debug=quick", *_files(tmp_path, rows)], tmp_path)
    refused(out, 2, f"task data: {split} row {row} ({tmp_path / f'{split}.csv'}), column 'label': label "
                    f"{float(value)!r} is not a finite number")
    assert runs(tmp_path) == []


def test_constant_validation_labels_are_refused_for_a_correlation_objective(tmp_path):
    rows = {s: [(f"{t} {s}", 1.0 + i) for i, t in enumerate(TEXTS)] for s in ("train", "test")}
    rows["validation"] = [(f"{t} v", 2.5) for t in TEXTS]
    out = run_train(["task=csv_regression", "debug=quick", *_files(tmp_path, rows)], tmp_path)
    refused(out, 2, f"task data: the validation split ({tmp_path / 'validation.csv'}), column 'label': all 6 rows "
                    "have the label 2.5, and task.objective=pearson is undefined on constant labels")
    assert runs(tmp_path) == []


# 4. a deleted experiment -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("sweep", [False, True])
def test_a_deleted_experiment_is_refused_before_any_job_runs(tmp_path, sweep):
    from mlflow.entities import ViewType

    from losslab import tracking

    uri = store_uri(tmp_path)
    exp = tracking.ensure_experiment(uri, "losslab")
    client = MlflowClient(uri)
    client.delete_experiment(exp)
    args = ["-m", "loss=mse,mae"] if sweep else []
    out = run_train([*args, "debug=quick"], tmp_path)
    refused(out, 2, f"losslab: error: the MLflow experiment 'losslab' (id {exp}) in {uri} is deleted; restore it "
                    f"with MLFLOW_TRACKING_URI={uri} mlflow experiments restore --experiment-id {exp}, or choose "
                    "another tracking.experiment")
    assert client.search_runs([exp], run_view_type=ViewType.ALL) == []
    assert not list(tmp_path.glob("multiruns/*/*/0"))  # no job started
    assert client.get_experiment(exp).lifecycle_stage == "deleted"


# 5. a sweep's parent ends after its whole report; a sweep dir is one sweep's -----------------------------------

def test_a_sweep_stopped_while_its_report_is_written_never_ends_finished(tmp_path, monkeypatch, capsys):
    from omegaconf import OmegaConf

    from losslab import faults, hydra_callbacks, identity, tracking
    from losslab.report import sweep as reports

    uri = store_uri(tmp_path)
    exp = tracking.ensure_experiment(uri, "losslab")
    client = MlflowClient(uri)
    parent = client.create_run(exp, run_name="sweep").info.run_id
    child = client.create_run(exp, tags={"mlflow.parentRunId": parent, identity.CONFIG_HASH_TAG: "x"}).info.run_id
    client.set_terminated(child, "FINISHED")
    sweep_dir = tmp_path / "sweep"
    (sweep_dir / "report").mkdir(parents=True)
    (sweep_dir / "report" / "report.md").write_text("the earlier attempt's report\n")
    seen = {}

    def write(uri_, parent_id, out, *args, **kwargs):  # two of its files written, then SIGTERM
        seen["status"] = client.get_run(parent_id).info.status
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "table.md").write_text("| half |\n")
        (Path(out) / "report.md").write_text("half a report\n")
        raise faults.Terminated(signal.SIGTERM)

    monkeypatch.setattr(reports, "write", write)
    sweep = hydra_callbacks.MLflowSweep()
    sweep.run_id = parent
    config = OmegaConf.create({"tracking": {"uri": uri}, "hydra": {"sweep": {"dir": str(sweep_dir)}}})
    with pytest.raises(SystemExit) as stopped:
        sweep.on_multirun_end(config)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert (f"losslab: stopped by SIGTERM while the sweep's report was written: its parent MLflow run {parent} is "
            "KILLED; run the same command again to write it") in capsys.readouterr().err
    assert seen["status"] == "RUNNING"  # not FINISHED while its report is written
    run = client.get_run(parent)
    assert run.info.status == "KILLED"
    assert run.data.tags["error"] == ("the sweep was stopped by SIGTERM while its report was written; run the same "
                                      "command again to write it")
    assert sorted(p.name for p in sweep_dir.iterdir()) == ["report"]  # no partial folder left
    assert sorted(p.name for p in (sweep_dir / "report").iterdir()) == ["report.md"]
    assert (sweep_dir / "report" / "report.md").read_text() == "the earlier attempt's report\n"


@pytest.mark.slow  # trains a model (one job of 2 steps)
def test_a_sweep_ends_finished_after_its_report_and_its_dir_is_not_another_sweeps(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "debug=quick", "trainer.max_steps=2", "trainer.eval_steps=2", "trainer.save_steps=2",
            f"hydra.sweep.dir={sweep_dir}"]
    out = run_train([*args, "loss=mse"], tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    [parent] = [r for r in runs(tmp_path) if "mlflow.parentRunId" not in r.data.tags]
    files = sorted((sweep_dir / "report").iterdir())
    assert {"report.md", "table.md"} <= {f.name for f in files} and len(files) == 5
    assert parent.info.status == "FINISHED"
    assert parent.info.end_time >= max(int(f.stat().st_mtime * 1000) for f in files)  # ended after the last file
    assert not [p for p in sweep_dir.iterdir() if p.name.startswith(".report")]

    again = run_train([*args, "loss=mse"], tmp_path, timeout=900)  # the same sweep: resumed (nothing to rerun)
    assert again.returncode == 0 and "already finished as MLflow run" in again.stdout, again.stderr[-3000:]
    stamps = {f.name: f.stat().st_mtime_ns for f in (sweep_dir / "report").iterdir()}
    before = len(runs(tmp_path))
    other = run_train([*args, "loss=mae"], tmp_path, timeout=900)  # another sweep, the same folder
    refused(other, 2, f"losslab: error: {sweep_dir} holds the files of another sweep (parent MLflow run "
                      f"{parent.info.run_id} in ", "choose another hydra.sweep.dir or remove it")
    assert len(runs(tmp_path)) == before
    assert {f.name: f.stat().st_mtime_ns for f in (sweep_dir / "report").iterdir()} == stamps


# 6. the version is the code's ----------------------------------------------------------------------------------

def test_the_version_is_a_hash_of_the_code_that_decides_results(tmp_path, monkeypatch):
    import shutil

    import losslab
    from losslab import identity

    package = Path(identity.__file__).resolve().parent
    assert re.fullmatch(rf"{re.escape(losslab.__version__)}\+[0-9a-f]{{12}}", identity.version())
    copy = tmp_path / "losslab"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "resources"))
    assert identity.source_digest(copy) == identity.source_digest(package)  # by content, not by place
    (copy / "notes.txt").write_text("not code\n")
    unchanged = identity.source_digest(copy)
    assert unchanged == identity.source_digest(package)
    metric = copy / "metrics" / "regression" / "regression.py"
    metric.write_text(metric.read_text() + "\n")  # one byte in a metric module
    assert identity.source_digest(copy) != unchanged
    loss = copy / "losses" / "regression.py"
    loss.write_text(loss.read_text().replace("mean", "sum", 1))
    assert len({unchanged, identity.source_digest(copy)}) == 2

    first = identity.version()  # once per process: no file is read again
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(AssertionError("read again")))
    assert identity.version() == first
