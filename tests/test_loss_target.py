"""Only a loss is instantiated as one: every ``_target_`` of the loss config (nested ones included) is imported,
never called, and checked against the forms docs/configuration.md's *Add your own loss* describes, before anything is built
and before any MLflow run starts. ``loss._target_=builtins.open +loss.file=X +loss.mode=w`` once truncated X."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from conftest import run_train, runs
from losslab.errors import ConfigError
from losslab.losses.targets import check_targets


@pytest.mark.parametrize("loss", [
    {"_target_": "losslab.losses.Huber", "delta": 0.5},  # a losslab Loss
    {"_target_": "losslab.losses.ModelDefault"},  # a losslab.losses class that is no Module
    {"_target_": "losslab.losses.trainer_loss.TrainerLoss", "trainer_class": "user_losses.SmoothedLossTrainer"},
    {"_target_": "torch.nn.SmoothL1Loss", "beta": 0.5},  # a torch.nn loss
    {"_target_": "user_losses.CustomMSELoss"},  # a tutorial module
    {"_target_": "user_losses.nan_loss", "_partial_": True},  # a function with the Trainer's signature
    {"_target_": "user_losses.DiesOnce", "at_call": 6, "marker": "???"},  # a missing value: not read here
    {"_target_": "losslab.losses.Composite", "_convert_": "all",
     "terms": {"ce": {"weight": 1.0, "loss": {"_target_": "losslab.losses.CrossEntropy"}}}},
])
def test_the_documented_forms_are_losses(loss):
    check_targets(OmegaConf.create(loss))


@pytest.mark.parametrize("loss,where,why", [
    ({"_target_": "builtins.open", "file": "x", "mode": "w"}, "loss._target_=builtins.open", "builtin function"),
    ({"_target_": "builtins.open", "_partial_": True}, "loss._target_=builtins.open", "builtin function"),
    ({"_target_": "os.remove", "path": "x"}, "loss._target_=os.remove", "builtin function"),
    ({"_target_": "shutil.rmtree", "_partial_": True}, "loss._target_=shutil.rmtree", "standard library"),
    ({"_target_": "subprocess.Popen", "args": "x"}, "loss._target_=subprocess.Popen", "standard library"),
    ({"_target_": "pathlib.Path.write_text", "_partial_": True}, "loss._target_=pathlib.Path.write_text",
     "standard library"),
    ({"_target_": "os"}, "loss._target_=os", "a module"),
    ({"_target_": "transformers.Trainer"}, "loss._target_=transformers.Trainer", "not callable"),
    ({"_target_": "user_losses.nan_loss"}, "loss._target_=user_losses.nan_loss", "only with _partial_: true"),
    ({"_target_": "losslab.losses.Composite", "terms": {"ce": {"weight": 1.0, "loss": {
        "_target_": "builtins.open", "file": "x", "mode": "w"}}}}, "loss.terms.ce.loss._target_=builtins.open",
     "builtin function"),  # nested: Hydra would call it first
    ({"_target_": "losslab.losses.Huber", "extra": [{"_target_": "os.remove", "path": "x"}]},
     "loss.extra[0]._target_=os.remove", "builtin function"),
])
def test_anything_else_is_refused_in_one_line(loss, where, why):
    with pytest.raises(ConfigError) as err:
        check_targets(OmegaConf.create(loss))
    message = str(err.value)
    assert message.startswith(f"{where} is not a loss: ") and why in message and "\n" not in message


def test_a_target_that_does_not_import_is_one_line():
    with pytest.raises(ConfigError, match=r"^loss: cannot import _target_ 'nope.Nope': [^\n]*No module named"):
        check_targets(OmegaConf.create({"_target_": "nope.Nope"}))


def _assert_refused(out, victim, tmp_path):
    assert out.returncode == 2, out.stderr[-3000:]
    lines = [line for line in out.stderr.splitlines() if "losslab: error:" in line]
    assert len(lines) == 1 and lines[0].startswith("losslab: error: loss._target_=builtins.open is not a loss: ")
    assert "Traceback" not in out.stderr
    assert victim.read_text() == "precious\n"  # not truncated
    assert runs(tmp_path) == []  # no MLflow run (no store written at all)
    assert not (tmp_path / "mlflow.db").exists()


def test_builtins_open_as_a_loss_is_refused_before_anything_is_called(tmp_path):
    victim = tmp_path / "X.txt"
    victim.write_text("precious\n")
    out = run_train(["debug=quick", "loss._target_=builtins.open", f"+loss.file={victim}", "+loss.mode=w"],
                    tmp_path)
    _assert_refused(out, victim, tmp_path)


def test_a_sweep_refuses_it_before_its_parent_run(tmp_path):
    victim = tmp_path / "X.txt"
    victim.write_text("precious\n")
    out = run_train(["-m", "debug=quick", "loss._target_=builtins.open", f"+loss.file={victim}", "+loss.mode=w"],
                    tmp_path)
    _assert_refused(out, victim, tmp_path)

