"""One credentials policy (``losslab.secrets``): a password inside a URL (``s3://user:pass@bucket/x.csv`` as a data
path, ``http://user:pass@host:5000`` as ``tracking.uri``) and a secret key's value are masked wherever they would
be written: MLflow params and tags, ``error``, ``error.txt``, ``config/config.yaml``, Hydra's ``.hydra/`` files and
``multirun.yaml``, log files and the console.

The policy on many URL shapes; each place it is applied, in this process; and ``train.py`` for real: a sweep
whose second job reads a data file through a URL with a password (and fails: there is no such file), after
which ``hunter2`` is nowhere: not in the output, not in any file under the output dir (the sqlite store's bytes
included), not in a tag or a param."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from conftest import PYTHONPATH, ROOT, run_train, runs, store_uri
from losslab import secrets
from losslab.secrets import mask_override, mask_text, mask_tree, without_credentials

SECRET = "hunter2"


# ------------------------------------------------------------------ the policy
@pytest.mark.parametrize("text,masked", [
    ("s3://user:hunter2@bucket/x.csv", "s3://***@bucket/x.csv"),
    ("http://user:hunter2@host:5000", "http://***@host:5000"),
    ("https://user:hunter2@host:5000/path?x=1#f", "https://***@host:5000/path?x=1#f"),
    ("postgresql+psycopg2://mlflow:hunter2@db.local:5432/mlflow", "postgresql+psycopg2://***@db.local:5432/mlflow"),
    ("http://user:hunter2@[::1]:5000/x", "http://***@[::1]:5000/x"),  # IPv6 host
    ("http://user:hunter2@[2001:db8::7]/x", "http://***@[2001:db8::7]/x"),
    ("https://hunter2@github.com/me/repo.git", "https://***@github.com/me/repo.git"),  # a token as the user
    ("s3://user:hun@ter2@bucket/x.csv", "s3://***@bucket/x.csv"),  # an unencoded @ in the password
    ("s3://AKIA:hunter2/abc@bucket/x.csv", "s3://***@bucket/x.csv"),  # an unencoded / in the password
    ("s3://user:hunter2?x@bucket/x.csv", "s3://***@bucket/x.csv"),  # an unencoded ? in the password
    ("hf://user:hunter2@datasets/x", "hf://***@datasets/x"),
    # Hydra escapes a sweep job's override: s3\://user\:pass@bucket
    (r"task.data.train=s3\://user\:hunter2@bucket/x.csv", r"task.data.train=s3\://***@bucket/x.csv"),
    # in a command line, a list, a sentence, a comma-joined sweep value
    ("task.data.train=s3://user:hunter2@bucket/x.csv loss=mse", "task.data.train=s3://***@bucket/x.csv loss=mse"),
    ("['a=s3://u:hunter2@b/x.csv', 'b=1']", "['a=s3://***@b/x.csv', 'b=1']"),
    ("the files (train: s3://u:hunter2@b/x.csv, test: /tmp/t.csv)", "the files (train: s3://***@b/x.csv, test: /tmp/t.csv)"),
    ("d=/tmp/a.csv,s3://u:hunter2@b/x.csv,http://v:hunter2@c/y", "d=/tmp/a.csv,s3://***@b/x.csv,http://***@c/y"),
    ("https://h/login?next=https://u:hunter2@x/y", "https://h/login?next=https://***@x/y"),  # a URL in a URL
    # query tokens
    ("https://h/x.csv?token=hunter2&rows=10", "https://h/x.csv?token=***&rows=10"),
    ("https://h/x?api_key=hunter2", "https://h/x?api_key=***"),
    ("https://b.s3.amazonaws.com/x?X-Amz-Credential=AKIA%2Fhunter2&X-Amz-Signature=hunter2&X-Amz-Expires=60",
     "https://b.s3.amazonaws.com/x?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Expires=60"),
    ("https://acct.blob.core.windows.net/c/x.csv?sv=2022&sig=hunter2", "https://acct.blob.core.windows.net/c/x.csv?sv=2022&sig=***"),
    # secret keys in free text
    ("+tracking.password=hunter2 loss=mse", "+tracking.password=*** loss=mse"),
    ("--hub_token=hunter2", "--hub_token=***"),
])
def test_credentials_are_masked(text, masked):
    assert mask_text(text) == masked
    assert SECRET not in mask_text(text)


@pytest.mark.parametrize("text", [
    "http://host/a@b",  # an @ in the path is not a credential
    "http://host:5000/a@b",
    "http://[::1]:5000/a@b",
    "https://h/x.csv?rows=10&user=me",
    "sqlite:////tmp/out/mlflow.db",
    "file:///tmp/x.csv",
    "/tmp/data/me@home.csv",
    "me@example.org",
    "mailto:me@example.org",
    "pad_token=[PAD] metric_key_prefix=eval tokenizer=pkg:x",
    "loss=huber trainer.max_steps=6",
    "",
])
def test_what_holds_no_credential_is_left_as_it_is(text):
    assert mask_text(text) == text


def test_a_usable_uri_is_stripped_of_its_credentials():
    assert without_credentials("http://user:hunter2@host:5000") == "http://host:5000"
    assert without_credentials("https://hunter2@host/x?token=hunter2") == "https://host/x?token=***"
    assert without_credentials("sqlite:////tmp/x/mlflow.db") == "sqlite:////tmp/x/mlflow.db"


def test_overrides_and_config_trees():
    assert mask_override("+tracking.password=hun ter2") == "+tracking.password=***"
    assert mask_override("task.data.train=s3://u:hunter2@b/x.csv") == "task.data.train=s3://***@b/x.csv"
    assert mask_override("tracking.uri=http://u:hunter2@h:5000") == "tracking.uri=http://***@h:5000"
    tree = {"tracking": {"uri": "http://u:hunter2@h:5000", "password": "hunter2", "busy_wait": 30},
            "task": {"data": {"train": "s3://u:hunter2@b/x.csv", "files": ["https://u:hunter2@h/a.csv", None]}},
            "model": {"pad_token": "[PAD]"}}
    masked = mask_tree(tree)
    assert masked == {"tracking": {"uri": "http://***@h:5000", "password": "***", "busy_wait": 30},
                      "task": {"data": {"train": "s3://***@b/x.csv", "files": ["https://***@h/a.csv", None]}},
                      "model": {"pad_token": "[PAD]"}}


# ------------------------------------------------------------------ every place it is applied (in this process)
def _cfg():
    return OmegaConf.create({"seed": 1, "tracking": {"uri": "http://u:hunter2@h:5000"},
                             "task": {"data": {"train": "s3://u:hunter2@b/x.csv"}}})


def test_params_and_the_saved_config():
    from losslab.tracking import config_yaml, flatten

    params = flatten(_cfg())
    assert params["tracking.uri"] == "http://***@h:5000" and params["task.data.train"] == "s3://***@b/x.csv"
    assert SECRET not in config_yaml(_cfg()) and "s3://***@b/x.csv" in config_yaml(_cfg())


def test_errors_their_tag_and_error_txt(tmp_path):
    import mlflow

    from losslab import tracking
    from losslab.cluster import shown
    from losslab.errors import ConfigError, DataError

    assert str(DataError("the train file s3://u:hunter2@b/x.csv does not exist")) == \
        "the train file s3://***@b/x.csv does not exist"
    assert shown("http://u:hunter2@h:5000") == "http://***@h:5000"
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    for exc in (FileNotFoundError(2, "No such file or directory", "s3://u:hunter2@b/x.csv"),
                ConfigError("tracking.uri=http://u:hunter2@h:5000: no MLflow server answers there")):
        try:
            raise exc
        except Exception as err:  # a real traceback, as the run records it
            with mlflow.start_run() as run:
                tracking._record_error(err)
        logged = MlflowClient().get_run(run.info.run_id)
        error_txt = Path(MlflowClient().download_artifacts(run.info.run_id, "error.txt", str(tmp_path))).read_text()
        assert "***@" in logged.data.tags["error"] and "***@" in error_txt
        assert SECRET not in logged.data.tags["error"] + error_txt
    assert SECRET not in tracking.ui_command("http://u:hunter2@h:5000")


def test_hydra_files_are_rewritten_masked(tmp_path):
    from losslab.hydra_callbacks import mask_yaml_file

    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(OmegaConf.to_yaml(OmegaConf.create(
        ["task.data.train=s3\\://u\\:hunter2@b/x.csv", "+tracking.password=hunter2", "loss=mse"])))
    config = tmp_path / "config.yaml"
    config.write_text("paths:\n  output_dir: ${paths.root}/outputs\ntask:\n  data:\n    train: s3://u:hunter2@b/x.csv\n")
    untouched = tmp_path / "plain.yaml"
    untouched.write_text("loss:\n  _target_: losslab.losses.MSE\n")
    assert mask_yaml_file(overrides) and mask_yaml_file(config) and not mask_yaml_file(untouched)
    assert OmegaConf.to_container(OmegaConf.load(overrides)) == [
        "task.data.train=s3\\://***@b/x.csv", "+tracking.password=***", "loss=mse"]
    assert OmegaConf.load(config).task.data.train == "s3://***@b/x.csv"
    assert "${paths.root}/outputs" in config.read_text()  # interpolations kept as written
    assert not mask_yaml_file(tmp_path / "absent.yaml")


def test_the_console_and_log_records_of_a_process_are_masked(tmp_path):
    """``mask_console`` (``train.py`` calls it first): prints, direct writes (Hydra's ``Error executing job``,
    MLflow's ``View run ... at``), log records and their tracebacks, and an uncaught exception's traceback."""
    log = tmp_path / "job.log"
    code = f"""
import logging, sys
from losslab.secrets import mask_console
mask_console()
logging.basicConfig(handlers=[logging.FileHandler({str(log)!r}), logging.StreamHandler(sys.stderr)])
print("uri http://u:hunter2@h:5000")
sys.stdout.write("View run x at: http://u:hunter2@h:5000/#/runs\\n")
sys.stderr.write("Error executing job with overrides: ['task.data.train=s3\\\\://u\\\\:hunter2@b/x.csv']\\n")
logging.getLogger("x").warning("reading %s", "s3://u:hunter2@b/x.csv")
try:
    open("s3://u:hunter2@b/x.csv")
except OSError:
    logging.getLogger("x").exception("failed")
raise FileNotFoundError(2, "No such file", "s3://u:hunter2@b/x.csv")
"""
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": PYTHONPATH}, capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 1
    text = out.stdout + out.stderr + log.read_text()
    assert SECRET not in text, text
    assert text.count("***@") >= 7 and "Traceback" in text


# ------------------------------------------------------------------ train.py for real
def _csv(path: Path, rows) -> Path:
    path.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    return path


def _nowhere(out: Path, *texts: str) -> None:
    for text in texts:
        assert SECRET not in text, text[-3000:]
    leaked = [p for p in out.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == [], leaked  # .hydra/, multirun.yaml, *.log, the sqlite store's bytes, artifacts, ...


@pytest.mark.slow  # its first job trains (2 steps)
def test_a_password_in_a_data_url_is_written_nowhere(tmp_path):
    rows = [("a fine film", "pos"), ("a dull film", "neg"), ("great acting", "pos"), ("weak plot", "neg")]
    train, validation = _csv(tmp_path / "train.csv", rows), _csv(tmp_path / "validation.csv", rows)
    test = _csv(tmp_path / "test.csv", [("another film", "pos"), ("another plot", "neg")])
    bad = f"s3://user:{SECRET}@bucket/x.csv"  # no such bucket (and no s3fs): the job fails, naming the file
    out = run_train(["-m", "task=csv_classification", f"task.data.train={train},{bad}",
                     f"+task.data.mirror=https://user:{SECRET}@example.org/x.csv",
                     f"task.data.validation={validation}", f"task.data.test={test}", "debug=quick",
                     "trainer.max_steps=2"], tmp_path)
    assert out.returncode == 1, out.stderr[-3000:]  # the sweep ends with a failed job
    _nowhere(tmp_path, out.stdout, out.stderr)
    assert "s3://***@bucket/x.csv" in out.stderr  # the error line names the file, masked

    client = MlflowClient(store_uri(tmp_path))
    children = [r for r in runs(tmp_path) if "mlflow.parentRunId" in r.data.tags]
    [parent] = [r for r in runs(tmp_path) if "mlflow.parentRunId" not in r.data.tags]
    [done] = [r for r in children if r.info.status == "FINISHED"]
    [failed] = [r for r in children if r.info.status == "FAILED"]
    assert "s3://***@bucket/x.csv" in parent.data.tags["losslab.command"]
    assert "https://***@example.org/x.csv" in parent.data.tags["losslab.overrides"]
    assert "s3\\://***@bucket/x.csv" in failed.data.tags["losslab.overrides"]  # the job's own, as Hydra escapes it
    assert "s3://***@bucket/x.csv" in failed.data.tags["error"]
    assert done.data.params["task.data.mirror"] == "https://***@example.org/x.csv"
    config = Path(client.download_artifacts(done.info.run_id, "config/config.yaml", str(tmp_path / "dl"))).read_text()
    assert "https://***@example.org/x.csv" in config
    for run in runs(tmp_path):
        assert not any(SECRET in str(v) for v in [*run.data.tags.values(), *run.data.params.values(),
                                                   run.info.run_name])
    [job] = [p for p in tmp_path.glob("multiruns/*/*/1/.hydra")]
    assert "s3\\://***@bucket/x.csv" in (job / "overrides.yaml").read_text()
    _nowhere(tmp_path)  # again, with the downloaded artifacts


def test_a_password_in_the_tracking_uri_is_written_nowhere(tmp_path):
    """An http store that does not answer is refused before anything loads; the line names it masked."""
    out = run_train(["debug=quick", f"tracking.uri=http://user:{SECRET}@127.0.0.1:9/"], tmp_path)
    assert out.returncode == 2, out.stderr[-3000:]
    assert "losslab: error: tracking.uri=http://***@127.0.0.1:9/: no MLflow server answers there" in out.stderr
    _nowhere(tmp_path, out.stdout, out.stderr)
    [overrides] = tmp_path.glob("runs/*/*/.hydra/overrides.yaml")
    assert "tracking.uri=http://***@127.0.0.1:9/" in overrides.read_text()


def test_secrets_module_is_the_one_policy():
    """dataset_inputs and cluster mask through losslab.secrets: no second implementation."""
    import inspect

    from losslab import cluster, dataset_inputs

    assert not hasattr(dataset_inputs, "_no_userinfo") and "mask_text" in inspect.getsource(dataset_inputs.source)
    assert "mask_text" in inspect.getsource(cluster.shown)
    assert secrets.MASK == "***"
