"""Shared helpers: run ``train.py`` for real (a subprocess, a temp output dir and MLflow store)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TESTS = Path(__file__).resolve().parent
# a child train.py imports this checkout's losslab (not whichever one is installed) and the tests' own losses
PYTHONPATH = os.pathsep.join([str(TESTS), str(ROOT / "src")])

# A tiny model and a few steps: tests pass ``debug=quick`` (conf/debug/quick.yaml, shared with users) plus what
# they vary; every piece of the real pipeline runs, in seconds.


def run_train(args: list[str], out: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python train.py ARGS paths.output_dir=OUT``; tests/ is importable so test-only losses resolve.
    Under ``make check`` (``LOSSLAB_CHECK=1``: the 2-minute loop of unit tests) a test that starts train.py is
    skipped there: ``make test`` runs it."""
    if os.environ.get("LOSSLAB_CHECK") == "1":
        pytest.skip("make check starts no train.py (make test does)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": PYTHONPATH, "TOKENIZERS_PARALLELISM": "false"}
    env.pop("LOSSLAB_PARENT_RUN_ID", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args, f"paths.output_dir={out}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
    if done.returncode == 0:
        _must_be_slow("ran train.py to the end (it trained a model)")
    return done


# ``-m "not slow"`` is the fast loop: a test that trains a model (train.py run to the end, or Trainer.train in
# this process) and is not marked slow fails, naming itself.
_CURRENT: list = [None]


def pytest_runtest_setup(item):
    _CURRENT[0] = item


def _must_be_slow(what: str) -> None:
    item = _CURRENT[0]
    if item is not None and item.get_closest_marker("slow") is None:
        pytest.fail(f"{item.nodeid} {what}: mark it @pytest.mark.slow, so that -m 'not slow' stays fast",
                    pytrace=False)


@pytest.fixture(autouse=True)
def _training_is_marked_slow(request, monkeypatch):
    if request.node.get_closest_marker("slow") is None:
        from transformers import trainer

        def train(self, *args, **kwargs):
            _must_be_slow("called Trainer.train")

        monkeypatch.setattr(trainer.Trainer, "train", train)
    yield


def store_uri(out: Path) -> str:
    return f"sqlite:///{out}/mlflow.db"


def runs(out: Path, experiment: str = "losslab"):
    """All runs of the experiment in the store under ``out`` (empty when no store was created)."""
    if not (out / "mlflow.db").exists():
        return []
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store_uri(out))
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


@pytest.fixture(scope="session", autouse=True)
def offline_env():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    yield


def compose(overrides: list[str] | None = None, hydra: bool = False):
    """Compose ``conf/train.yaml`` with overrides, as train.py would."""
    import losslab  # noqa: F401  (resolvers)
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose("train", overrides=overrides or [], return_hydra_config=hydra)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def one_step_arguments(output_dir, batch: int, accum: int):
    """``TrainingArguments`` for one plain SGD step (no clipping, no schedule, no logging to a tracker): the
    parameter update of one step compares losses, accumulation and data parallelism exactly."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output_dir), per_device_train_batch_size=batch, gradient_accumulation_steps=accum,
        max_steps=1, optim="sgd", learning_rate=0.5, lr_scheduler_type="constant", logging_steps=1, report_to=[],
        save_strategy="no", eval_strategy="no", use_cpu=True, seed=0, disable_tqdm=True, max_grad_norm=1e9,
    )
