"""The names users already know: Keras' loss names as aliases, hinge, and "did you mean" for any option."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import CONF, ROOT, TESTS, compose, options, run_train, runs
from omegaconf import OmegaConf

from losslab.losses.catalog import aliases
from losslab.overrides import problems

TRAIN_PY = ROOT / "train.py"

# Keras' (and TensorFlow's) names for losses losslab has: the alias must compose exactly the real option.
KERAS = {
    "sparse_categorical_crossentropy": "cross_entropy",
    "categorical_crossentropy": "soft_cross_entropy",
    "binary_crossentropy": "bce",
    "mean_squared_error": "mse",
    "mean_absolute_error": "mae",
    "logcosh": "log_cosh",
    "huber_loss": "huber",
}


def test_the_keras_names_are_aliases_and_nothing_else_is():
    assert aliases(CONF) == KERAS


@pytest.mark.parametrize("alias,real", sorted(KERAS.items()))
def test_alias_composes_the_real_option_without_copying_it(alias, real):
    composed = OmegaConf.to_container(compose([f"loss={alias}"]).loss)
    assert composed == OmegaConf.to_container(compose([f"loss={real}"]).loss)
    own = OmegaConf.load(CONF / "loss" / f"{alias}.yaml")
    assert OmegaConf.to_container(own) == {"defaults": [real]}  # one defaults entry: no copied keys
    cfg = compose([f"loss={alias}"], hydra=True)
    assert cfg.hydra.runtime.choices.loss == alias  # runs are tagged with the name the user typed


def test_alias_takes_the_real_options_knobs():
    assert compose(["loss=huber_loss", "loss.delta=0.25"]).loss == compose(["loss=huber", "loss.delta=0.25"]).loss
    assert compose(["loss=binary_crossentropy", "loss.pos_weight=balanced"]).loss.pos_weight == "balanced"


def test_docs_list_each_alias_under_its_real_name():
    text = (ROOT / "docs" / "losses.md").read_text()
    for alias, real in KERAS.items():
        row = next(ln for ln in text.splitlines() if ln.startswith(f"| `{real}`"))
        assert f"alias `{alias}`" in row
        assert not any(ln.startswith(f"| `{alias}`") for ln in text.splitlines())


# ------------------------------------------------------------------ did you mean


def _problems(*argv):
    return problems(list(argv), TRAIN_PY)


@pytest.mark.parametrize("override,group,suggestion", [
    ("loss=hubber", "loss", "huber"),
    ("task=regresion", "task", "regression"),
    ("model=minilm6", "model", "minilm"),
    ("loss=MSE", "loss", "mse"),
    ("loss=CrossEntropyLoss", "loss", "cross_entropy"),
    ("+experiment=regression_lossess", "experiment", "regression_losses"),
    ("hydra/launcher=jobli", "hydra/launcher", "joblib"),
])
def test_unknown_option_names_the_closest_first_then_all(override, group, suggestion):
    [message] = _problems(override)
    assert message.startswith(f"{override}: no option ")
    hint, listing = message.split(f" All options of {group}: ")
    assert hint.split("Did you mean ")[1].startswith(suggestion)
    assert suggestion in listing.split(", ")
    if group in ("loss", "task", "model", "experiment"):
        assert sorted(listing.split(", ")) == options(group)


def test_a_renamed_option_is_refused_with_its_new_name_not_aliased():
    assert _problems("loss=default") == ["loss=default is now loss=model_loss"]
    assert _problems("-m", "loss=mse,default") == ["loss=mse,default: loss=default is now loss=model_loss"]
    [message] = _problems("-m", "loss=default,hubber")
    assert message.startswith("loss=default,hubber: loss=default is now loss=model_loss; no option 'hubber'")
    assert _problems("loss=model_loss") == []


def test_sweeps_are_checked_value_by_value():
    [message] = _problems("-m", "loss=mse,hubber,maee", "seed=1,2")
    assert "no options 'hubber', 'maee' in group loss" in message and "Did you mean huber" in message
    [message] = _problems("-m", "loss=choice(mse,hubber)")
    assert "'hubber'" in message
    assert _problems("-m", "loss=glob(*)", "seed=1,2") == []
    assert _problems("-m", "loss=glob(*,exclude=[model_loss,composite])") == []
    [message] = _problems("-m", "loss=glob(hubb*)")
    assert message.startswith("loss=glob(hubb*): the glob matches no option of loss")


def test_a_user_config_dir_on_the_search_path_is_honoured():
    assert "'diverging'" in _problems("loss=diverging")[0]
    assert _problems(f"hydra.searchpath=[file://{TESTS}/conf]", "loss=diverging") == []
    assert _problems("--config-dir", str(TESTS / "conf"), "loss=diverging") == []
    [message] = _problems(f"hydra.searchpath=[file://{TESTS}/conf]", "loss=diverginng")
    assert "Did you mean diverging?" in message


def test_valid_commands_and_other_syntax_are_left_alone():
    for argv in (["loss=huber", "task=regression", "loss.delta=0.5", "seed=3", "trainer.max_steps=5"],
                 ["~loss"], ["loss=hinge", "task=sentiment"], ["+experiment=regression_losses"],
                 ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], ["--cfg", "job"], ["experiment=null"],
                 ["+new_key=1"], ["loss=sparse_categorical_crossentropy"], ["loss=[mse]"]):
        assert _problems(*argv) == [], argv


def test_a_misspelt_group_is_answered_too():
    [message] = _problems("los=huber")
    assert message.startswith("los=huber: los is not a config group. Did you mean loss?")


def test_a_primary_config_in_the_config_dir_brings_its_search_path(tmp_path):
    (tmp_path / "extra" / "loss").mkdir(parents=True)
    (tmp_path / "extra" / "loss" / "mine_only.yaml").write_text("{}\n")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "study.yaml").write_text(f"hydra:\n  searchpath: [file://{tmp_path / 'extra'}]\n")
    assert _problems("--config-dir", str(tmp_path / "mine"), "--config-name", "study", "loss=mine_only") == []
    assert "'mine_only'" in _problems("--config-dir", str(tmp_path / "mine"), "loss=mine_only")[0]  # train's path


def test_the_check_leaves_hydra_as_it_found_it():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    assert _problems("loss=hubber") and not GlobalHydra.instance().is_initialized()  # @hydra.main starts next
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        outer = GlobalHydra.instance().hydra
        assert _problems("loss=hubber") and GlobalHydra.instance().hydra is outer
        assert compose("train", overrides=["loss=huber"]).loss


def _train_py(*args, code_after="", timeout=120):
    """train.py in a subprocess through runpy, reporting its exit code and whether heavy modules were imported."""
    code = (
        "import runpy, sys, time\n"
        f"sys.argv = ['train.py', *{list(args)!r}]\n"
        "start = time.perf_counter()\n"
        "try:\n"
        f"    runpy.run_path({str(TRAIN_PY)!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    print('EXIT', e.code)\n"
        "print('SECONDS', time.perf_counter() - start)\n"
        "print('HEAVY', [m for m in ('torch', 'transformers', 'datasets', 'mlflow') if m in sys.modules])\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_train_py_answers_did_you_mean_in_one_line_exit_2_and_no_torch():
    out = _train_py("loss=hubber")
    assert "EXIT 2" in out.stdout, out.stdout + out.stderr[-2000:]
    [line] = out.stderr.strip().splitlines()  # one message, no traceback, no Hydra dump of the search path
    assert line.startswith("losslab: error: loss=hubber: no option 'hubber' in group loss. Did you mean huber")
    assert "HEAVY []" in out.stdout  # instant: nothing heavy on this path
    seconds = float(out.stdout.split("SECONDS ")[1].split()[0])
    assert seconds < 10, f"did-you-mean took {seconds:.1f} s"


def test_a_misspelt_sweep_is_refused_before_any_job_or_run(tmp_path):
    out = run_train(["-m", "loss=mse,hubber", "debug=quick"], tmp_path, timeout=120)
    assert out.returncode == 2 and "Did you mean huber" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "multiruns").exists()


# ------------------------------------------------------------------ refused like any loss, and trained


@pytest.mark.parametrize("loss,task,serves", [
    ("mean_squared_error", "sentiment", "regression"),
    ("binary_crossentropy", "sentiment", "multi_label"),
    ("hinge", "regression", "single_label"),
    ("squared_hinge", "multilabel", "single_label"),
])
def test_aliases_and_hinge_are_refused_by_preflight_on_tasks_they_do_not_serve(loss, task, serves):
    from losslab.preflight import ConfigError, check_loss

    with pytest.raises(ConfigError, match=f"cannot serve task={task}: .* serves {serves}"):
        check_loss(compose([f"loss={loss}", f"task={task}"]))


@pytest.mark.parametrize("loss,task", [
    ("hinge", "domain"), ("squared_hinge", "ner"), ("categorical_crossentropy", "rating_dist"),
    ("binary_crossentropy", "multilabel"), ("logcosh", "regression"),
])
def test_aliases_and_hinge_pass_preflight_on_tasks_they_serve(loss, task):
    from losslab.preflight import check_loss

    check_loss(compose([f"loss={loss}", f"task={task}"]))


@pytest.mark.slow
def test_an_alias_is_refused_by_its_own_name_before_anything_loads(tmp_path):
    out = run_train(["loss=sparse_categorical_crossentropy", "task=regression", "debug=quick"], tmp_path, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    [line] = [ln for ln in out.stderr.splitlines() if ln.startswith("losslab: error:")]
    assert line.startswith("losslab: error: loss=sparse_categorical_crossentropy cannot serve task=regression: "
                           "the task's kind is 'regression' and sparse_categorical_crossentropy serves single_label")
    assert "Traceback" not in out.stderr and runs(tmp_path) == []


@pytest.mark.slow
def test_hinge_and_a_keras_alias_train_on_sentiment(tmp_path):
    args = ["-m", "task=sentiment", "loss=hinge,sparse_categorical_crossentropy", "debug=quick"]
    out = run_train(args, tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    children = {r.data.tags["choice.loss"]: r for r in runs(tmp_path) if "mlflow.parentRunId" in r.data.tags}
    assert set(children) == {"hinge", "sparse_categorical_crossentropy"}
    assert children["hinge"].data.params["loss._target_"] == "losslab.losses.Hinge"
    assert children["sparse_categorical_crossentropy"].data.params["loss._target_"] == "losslab.losses.CrossEntropy"
    for run in children.values():
        assert run.info.status == "FINISHED"
        assert {"test_macro_f1", "test_accuracy", "loss"} <= set(run.data.metrics)
    # a fresh head: hinge starts near its margin (1), cross-entropy near log 2
    assert children["hinge"].data.metrics["train_loss"] != pytest.approx(
        children["sparse_categorical_crossentropy"].data.metrics["train_loss"], rel=1e-3)
