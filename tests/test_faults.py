"""Faults, for real: a twin process on the same config, signals to a live job, a full disk (a size-limited
tmpfs), parallel writers on a fresh store, a store another process holds locked, bad config values, bad data,
model paths, secrets in the config, and how fast a refusal is. Each asserts the one-line message, the exit
code, what the MLflow store holds, and that nothing that existed before was lost.

docs/tracking-and-faults.md's "What happens when…" table lists the same cases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import PYTHONPATH, ROOT, TESTS, run_train, runs, store_uri

GATED = [f"hydra.searchpath=[file://{TESTS}/conf]", "task=regression", "loss=gated", "model=tiny",
         "trainer.max_steps=12", "trainer.save_steps=4", "trainer.eval_steps=4", "trainer.logging_steps=1",
         "trainer.per_device_train_batch_size=8", "task.max_train_samples=128", "task.max_eval_samples=32"]


def _env():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": PYTHONPATH, "TOKENIZERS_PARALLELISM": "false"}
    env.pop("LOSSLAB_PARENT_RUN_ID", None)
    return env


def _default_sigint() -> None:
    """In the child before exec: SIGINT back to its default. A test run started in the background of a
    non-interactive shell (``make test &``) inherits SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler, so a Ctrl-C test would wait forever."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args: list[str], out: Path, log: Path) -> subprocess.Popen:
    """``train.py ARGS`` as a child process of its own (stdout and stderr into ``log``), Ctrl-C as a terminal's."""
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args, f"paths.output_dir={out}"],
                            cwd=ROOT, env=_env(), stdout=log.open("w"), stderr=subprocess.STDOUT,
                            preexec_fn=_default_sigint)


def stop(proc: subprocess.Popen) -> None:
    """Stop a child this test started, by its id, if it still runs."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def wait_for(path: Path, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the job ended early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{path} never appeared:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


def error_lines(text: str) -> list[str]:
    """losslab's one-line messages (a progress bar may precede one on its line)."""
    marks = ("losslab: error:", "losslab: stopped")
    return [line[min(line.index(m) for m in marks if m in line):] for line in text.splitlines()
            if any(m in line for m in marks)]


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text[-3000:]


def steps(out: Path, run_id: str, key: str) -> list[int]:
    return [m.step for m in MlflowClient(store_uri(out)).get_metric_history(run_id, key)]


# 1. two runs of the same config ----------------------------------------------------------------------------

@pytest.mark.slow  # trains a model
def test_a_second_job_on_the_same_config_never_takes_over_a_live_one(tmp_path):
    gate = tmp_path / "gate"
    gate.touch()
    args = [*GATED, f"loss.gate={gate}"]
    first = start([*args, f"hydra.run.dir={tmp_path}/first"], tmp_path, tmp_path / "first.log")
    try:
        wait_for(Path(f"{gate}.reached"), first, tmp_path / "first.log")  # at step 6: checkpoint-4 is there
        assert (tmp_path / "first/checkpoints/checkpoint-4/trainer_state.json").is_file()
        second = run_train([*args, f"hydra.run.dir={tmp_path}/second"], tmp_path)
        [line] = error_lines(second.stderr)
        assert second.returncode == 1, second.stderr[-3000:]
        assert "is already running as MLflow run" in line and "not started twice" in line
        no_traceback(second.stderr)
        assert not (tmp_path / "second/checkpoints").exists()
        gate.unlink()
        assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()[-3000:]
    finally:
        stop(first)
    [run] = runs(tmp_path)  # one run: the first job's, finished, every step once
    assert run.info.status == "FINISHED" and run.info.run_id in line
    assert steps(tmp_path, run.info.run_id, "loss") == list(range(1, 13))
    assert steps(tmp_path, run.info.run_id, "test_pearson") == [12]


# 3. SIGTERM / SIGINT ---------------------------------------------------------------------------------------

@pytest.mark.slow  # trains a model
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_run_killed_keeps_the_checkpoint_and_a_rerun_resumes_it_clean(tmp_path, sig):
    gate = tmp_path / "gate"
    gate.touch()
    args = [*GATED, f"loss.gate={gate}", f"hydra.run.dir={tmp_path}/run"]
    log = tmp_path / "first.log"
    first = start(args, tmp_path, log)
    try:
        wait_for(Path(f"{gate}.reached"), first, log)
        os.kill(first.pid, sig)
        code = first.wait(timeout=120)
    finally:
        stop(first)
    text = log.read_text()
    assert code == 128 + sig, text[-3000:]
    [line] = [ln for ln in error_lines(text) if "stopped by" in ln]
    assert f"stopped by {'SIGTERM' if sig == signal.SIGTERM else 'SIGINT'}" in line and "is KILLED" in line
    no_traceback(text)
    [run] = runs(tmp_path)
    assert run.info.status == "KILLED" and run.info.run_id in line
    assert "error" in run.data.tags
    checkpoint = tmp_path / "run/checkpoints/checkpoint-4"
    assert (checkpoint / "trainer_state.json").is_file()  # kept

    gate.unlink()
    again = run_train(args, tmp_path)  # the same command: resumes into the same run, and finishes
    assert again.returncode == 0, again.stderr[-3000:]
    [run] = runs(tmp_path)
    assert run.info.status == "FINISHED" and run.data.tags["losslab.resumed_from"].endswith("checkpoint-4")
    assert "error" not in run.data.tags  # the old attempt's error is gone ...
    client = MlflowClient(store_uri(tmp_path))
    assert "error.txt" not in {a.path for a in client.list_artifacts(run.info.run_id)}  # ... with its error.txt
    assert steps(tmp_path, run.info.run_id, "loss") == list(range(1, 13))


# 2. a full disk --------------------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 20 MiB tmpfs: room for one checkpoint of model=tiny (~12 MiB), not two. Unmounted after."""
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(where)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true, but a tmpfs cannot be mounted here: {done.stderr.strip()}")
        pytest.skip(f"mounting a tmpfs is not allowed here ({done.stderr.strip() or 'not root'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.slow  # trains a model
def test_a_full_disk_says_so_in_one_line_and_the_rerun_resumes_from_the_last_complete_checkpoint(
        tmp_path, small_disk):
    gate = tmp_path / "gate"  # never created: the gated loss is plain MSE here
    args = [*GATED, f"loss.gate={gate}", f"hydra.run.dir={small_disk}/run"]
    first = run_train(args, tmp_path)
    assert first.returncode == 1, first.stderr[-3000:]
    [line] = error_lines(first.stderr)
    folder = small_disk / "run" / "checkpoints"
    assert line.startswith(f"losslab: error: no space left on {folder}"), line
    no_traceback(first.stderr)
    assert (folder / "checkpoint-4" / "trainer_state.json").is_file()  # the complete one is kept
    assert (folder / "checkpoint-8").is_dir() and not (folder / "checkpoint-8" / "trainer_state.json").exists()
    [run] = runs(tmp_path)
    assert run.info.status == "FAILED" and run.data.tags["error"].startswith("NoSpace: no space left on")

    subprocess.run(["mount", "-o", "remount,size=200m", str(small_disk)], check=True)
    again = run_train(args, tmp_path)  # not from the partial checkpoint-8: from checkpoint-4
    assert again.returncode == 0, again.stderr[-3000:]
    [run] = runs(tmp_path)
    assert run.info.status == "FINISHED" and run.data.tags["losslab.resumed_from"] == str(folder / "checkpoint-4")
    assert "error" not in run.data.tags
    assert steps(tmp_path, run.info.run_id, "loss") == list(range(1, 13))


# 4. parallel writers on a fresh store ----------------------------------------------------------------------

WRITER = """
import sys
from losslab import tracking
from losslab.store import Store
uri = sys.argv[1]
exp = tracking.ensure_experiment(uri, "losslab")
Store(uri).create_run(exp, run_name=sys.argv[2])
"""


def test_parallel_writers_on_a_fresh_store_all_land(tmp_path):
    for round_ in range(3):
        out = tmp_path / f"round{round_}"
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, store_uri(out), f"w{i}"], env=_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(4)]
        try:
            outputs = [p.communicate(timeout=300)[0] for p in procs]
        finally:
            for p in procs:
                stop(p)
        assert [p.returncode for p in procs] == [0] * 4, "\n".join(outputs)[-3000:]
        assert sorted(r.info.run_name for r in runs(out)) == ["w0", "w1", "w2", "w3"]


# 5. a busy, read-only or impossible store ------------------------------------------------------------------

def _existing_run(out: Path) -> str:
    """A finished run already in the store (what must not be lost)."""
    from losslab import tracking

    uri = store_uri(out)
    exp = tracking.ensure_experiment(uri, "losslab")
    client = MlflowClient(uri)
    run = client.create_run(exp, run_name="earlier")
    client.log_metric(run.info.run_id, "test_pearson", 0.5, step=1)
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


HOLDER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("ROLLBACK")
"""


def _hold(db: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_store_locked_past_the_wait_is_refused_in_one_line_before_anything_loads(tmp_path):
    earlier = _existing_run(tmp_path)
    holder = _hold(tmp_path / "mlflow.db", 120)
    try:
        started = time.monotonic()
        out = run_train(["debug=quick", "tracking.busy_wait=2"], tmp_path)
        took = time.monotonic() - started
    finally:
        stop(holder)
    [line] = error_lines(out.stderr)
    assert out.returncode == 1 and "is locked by another writer" in line and "after 2 s" in line, out.stderr
    no_traceback(out.stderr)
    assert "Loading" not in out.stderr and took < 60
    [run] = runs(tmp_path)
    assert run.info.run_id == earlier and run.info.status == "FINISHED"  # nothing lost, nothing added


def test_a_store_busy_for_a_moment_is_waited_for(tmp_path):
    _existing_run(tmp_path)
    holder = _hold(tmp_path / "mlflow.db", 4)
    try:  # past the store check, the next fault is the missing data file: the wait was over by then
        out = run_train(["debug=quick", "tracking.busy_wait=60", f"task.data.train={tmp_path}/none.jsonl"], tmp_path)
    finally:
        stop(holder)
    [line] = error_lines(out.stderr)
    assert out.returncode == 2 and "the train file" in line and "does not exist" in line, out.stderr[-3000:]


def test_a_store_under_a_file_is_refused_in_one_line(tmp_path):
    (tmp_path / "afile").write_text("keep me\n")
    out = run_train(["debug=quick", f"tracking.uri=sqlite:///{tmp_path}/afile/mlflow.db"], tmp_path)
    [line] = error_lines(out.stderr)
    assert out.returncode == 1 and f"{tmp_path / 'afile'} is a file, not a folder" in line, out.stderr[-3000:]
    no_traceback(out.stderr)
    assert (tmp_path / "afile").read_text() == "keep me\n"


def test_a_read_only_store_is_refused_in_one_line_before_anything_loads(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    earlier = _existing_run(store)
    bound = subprocess.run(["mount", "--bind", str(store), str(store)], capture_output=True, text=True)
    if bound.returncode != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true, but a read-only bind mount cannot be made here: {bound.stderr.strip()}")
        pytest.skip(f"a read-only bind mount is not allowed here ({bound.stderr.strip() or 'not root'})")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(store)], check=True)
        out = run_train(["debug=quick", f"tracking.uri={store_uri(store)}"], tmp_path)
    finally:
        subprocess.run(["umount", "-l", str(store)], check=False)
    [line] = error_lines(out.stderr)
    assert out.returncode == 1 and "is read-only" in line, out.stderr[-3000:]
    no_traceback(out.stderr)
    assert "Loading" not in out.stderr
    [run] = runs(store)
    assert run.info.run_id == earlier


# 7. config values, 8. model paths: refused in preflight, one line, no run --------------------------------

@pytest.mark.parametrize("args, message", [
    (["trainer.max_steps=abc"], "trainer.max_steps='abc' is not an integer (transformers.TrainingArguments.max_steps)"),
    (["seed=-1"], "seed=-1 must be an integer in 0..4294967295"),
    (["loss=huber", "loss.delta=abc"], "loss.delta='abc' is not a number (huber's delta"),
    (["task.max_train_samples=0"], "task.max_train_samples=0 must be null (all rows) or a whole number >= 1"),
    (["trainer.per_device_train_batch_size=0"], "trainer.per_device_train_batch_size=0 must be at least 1"),
    (["model=minilm", "model.name_or_path=/nonexistent/folder"],
     "model.name_or_path=/nonexistent/folder: no such folder"),
    (["model=minilm", "model.name_or_path=google-bert/bert-base-uncased"],
     "model.name_or_path=google-bert/bert-base-uncased: not in the local cache and HF_HUB_OFFLINE=1"),
])
def test_a_bad_value_or_model_path_is_refused_before_loading_and_leaves_no_run(tmp_path, args, message):
    out = run_train(["debug=quick", *args], tmp_path)
    [line] = error_lines(out.stderr)
    assert out.returncode == 2 and message in line, out.stderr[-3000:]
    no_traceback(out.stderr)
    assert "Loading" not in out.stderr and runs(tmp_path) == []


# 9. secrets ------------------------------------------------------------------------------------------------

def test_secret_keys_are_masked_and_others_are_not():
    from losslab.secrets import is_secret, mask_override

    for key in ("tracking.password", "db_password", "trainer.hub_token", "api_key", "apiKey", "aws.secret",
                "client_secret_id", "credentials", "x.access_key", "token", "key"):
        assert is_secret(key), key
    for key in ("monkey", "model.tokenizer", "max_new_tokens", "pad_token", "loss.keys_weight", "turkey_count",
                "metric_key_prefix", "task.label_column", "tokenization", "keyword"):
        assert not is_secret(key), key
    assert mask_override("+tracking.password=hunter2") == "+tracking.password=***"
    assert mask_override("loss=huber") == "loss=huber"


@pytest.mark.slow  # trains a model
def test_a_secret_in_the_config_is_logged_nowhere(tmp_path):
    out = run_train(["debug=quick", "+tracking.password=hunter2", "+model.api_key=sk-abc123"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = runs(tmp_path)
    client = MlflowClient(store_uri(tmp_path))
    logged = [*run.data.params.values(), *run.data.tags.values(),
              Path(client.download_artifacts(run.info.run_id, "config/config.yaml", str(tmp_path))).read_text()]
    for secret in ("hunter2", "sk-abc123"):
        assert not any(secret in text for text in logged), secret
    assert run.data.params["tracking.password"] == "***" and run.data.params["model.api_key"] == "***"
    assert "+tracking.password=***" in run.data.tags["losslab.overrides"]
    assert run.data.params["model.tokenizer"].startswith("pkg:")  # not a secret: logged as it is


# 6. bad data: one line naming split, file, column and row -------------------------------------------------

GOOD_ROWS = [("a fine film", "pos"), ("a dull film", "neg"), ("great acting", "pos"), ("weak plot", "neg")]


def _csv(path: Path, rows, header="text,label") -> Path:
    path.write_text("\n".join([header, *(f"{t},{lab}" for t, lab in rows)]) + "\n")
    return path


def _classification(tmp_path, train: Path, validation: Path | None = None, test: Path | None = None):
    validation = validation or _csv(tmp_path / "validation.csv", GOOD_ROWS)
    test = test or _csv(tmp_path / "test.csv", [("another film", "pos"), ("another plot", "neg")])
    return ["task=csv_classification", f"task.data.train={train}", f"task.data.validation={validation}",
            f"task.data.test={test}", "debug=quick"]


def _refused(tmp_path, args, *parts):
    before = {p: p.read_bytes() for p in tmp_path.glob("*.*") if p.is_file()}
    out = run_train(args, tmp_path)
    [line] = error_lines(out.stderr)
    assert out.returncode == 2, out.stderr[-3000:]
    for part in parts:
        assert part in line, (part, line)
    no_traceback(out.stderr)
    assert runs(tmp_path) == []
    assert all(p.read_bytes() == b for p, b in before.items())  # the files are as they were
    return line


def test_bad_data_header_only_csv(tmp_path):
    train = _csv(tmp_path / "train.csv", [])
    _refused(tmp_path, _classification(tmp_path, train), f"the train file {train} has a header and no rows")


@pytest.mark.slow  # trains a model
def test_bad_data_a_byte_that_is_not_utf8_names_its_offset_and_the_encoding_knob(tmp_path):
    train = tmp_path / "train.csv"
    train.write_bytes(b"text,label\na fine film,pos\ncaf\xe9 noir,neg\n")
    _refused(tmp_path, _classification(tmp_path, train), f"the train file {train} is not valid utf-8 at byte 30",
             "line 3, data row 2", "0xe9", "task.data.encoding=")
    ok = run_train([*_classification(tmp_path, train), "task.data.encoding=latin-1", "trainer.max_steps=2"],
                   tmp_path)
    assert ok.returncode == 0, ok.stderr[-3000:]


def test_bad_data_a_malformed_json_line_names_its_line(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text('{"text": "a fine film", "label": "pos"}\n{"text": "a dull film", "label": "neg"}\n'
                     '{"text": "oops", label: neg}\n')
    _refused(tmp_path, _classification(tmp_path, train, tmp_path / "train.jsonl", tmp_path / "train.jsonl"),
             f"the train file {train}, line 3: not valid JSON")


def test_bad_data_a_parquet_text_column_of_integers(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {}
    for split in ("train", "validation", "test"):
        paths[split] = tmp_path / f"{split}.parquet"
        pq.write_table(pa.table({"text": [1, 2, 3, 4], "label": ["pos", "neg", "pos", "neg"]}), paths[split])
    _refused(tmp_path, _classification(tmp_path, paths["train"], paths["validation"], paths["test"]),
             f"the train split ({paths['train']}), column 'text' (task.text_column) holds int64, not text")


def test_bad_data_an_empty_text_cell_names_its_row(tmp_path):
    train = _csv(tmp_path / "train.csv", [*GOOD_ROWS, ("", "pos")])
    _refused(tmp_path, _classification(tmp_path, train), f"train row 4 ({train}), column 'text'", "the text is empty")


def test_bad_data_a_single_class_across_all_splits(tmp_path):
    rows = [("a fine film", "pos"), ("great acting", "pos")]
    train, val, test = (_csv(tmp_path / f"{s}.csv", rows) for s in ("train", "validation", "test"))
    _refused(tmp_path, _classification(tmp_path, train, val, test), "column 'label' (task.label_column) has a "
             "single class ('pos') across all splits")


@pytest.mark.slow  # trains a model
def test_rows_duplicated_between_train_and_test_are_counted_in_a_warning(tmp_path):
    train = _csv(tmp_path / "train.csv", GOOD_ROWS)
    test = _csv(tmp_path / "test.csv", [GOOD_ROWS[0], GOOD_ROWS[1], ("something new", "pos")])
    out = run_train([*_classification(tmp_path, train, test=test), "trainer.max_steps=2"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "task data: 2 of 3 test rows (66.7%) have the same text as a train row" in out.stdout + out.stderr
