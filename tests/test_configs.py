"""Every option of every config group composes; losses instantiate; config-only commands stay light."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import CONF, ROOT, compose, options
from hydra.utils import instantiate
from omegaconf import OmegaConf

from losslab.preflight import declared_kinds

GROUPS = ["task", "model", "loss", "hardware", "trainer", "tracking", "experiment", "debug"]


def test_every_group_has_options_with_a_header_comment():
    for group in GROUPS:
        files = sorted((CONF / group).glob("*.yaml"))
        assert files, f"conf/{group} has no options"
        for f in files:
            lines = [ln for ln in f.read_text().splitlines() if not ln.startswith("# @package")]
            assert lines[0].startswith(f"# {group}={f.stem} — "), f"{f} must open with '# {group}={f.stem} — ...'"


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_option_composes(group, option):
    cfg = compose([f"{group}={option}"], hydra=True)
    assert cfg.hydra.runtime.choices[group] == option
    OmegaConf.to_container(cfg.task, resolve=True, throw_on_missing=False)  # task paths resolve


@pytest.mark.parametrize("option", options("loss"))
def test_loss_instantiates_and_declares_kinds(option):
    cfg = compose([f"loss={option}"])
    loss = instantiate(cfg.loss)
    kinds = declared_kinds(cfg.loss)
    assert kinds, f"loss={option} declares no task kinds"
    assert set(kinds) <= KINDS, f"loss={option} declares kinds no task has: {set(kinds) - KINDS}"
    assert loss is not None


# The problem kinds, written out here (not read from losslab): a misspelt or new kind in a loss is caught.
KINDS = {"regression", "single_label", "multi_label", "token_classification", "ordinal", "causal_lm", "seq2seq"}


def _readme_task_table() -> dict[str, tuple[str, list[str]]]:
    """docs/configuration.md's Tasks table: task -> (its kind, the losses it suggests sweeping), as written by hand."""
    rows = {}
    text = (ROOT / "docs" / "configuration.md").read_text().split("## Tasks", 1)[1]
    for line in text.split("| task |", 1)[1].splitlines()[2:]:
        if not line.startswith("| `"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        kind = cells[1].split()[0]
        losses = [w for w in cells[-1].replace(" vs ", ", ").split(", ") if w.replace("_", "").isalnum()]
        rows[cells[0].strip("`")] = (kind, losses)
    return rows


def test_the_readme_tasks_table_names_losses_that_declare_the_tasks_kind():
    table = _readme_task_table()
    assert {"regression", "sentiment", "ner", "lm", "seq2seq", "multilabel", "rating_dist"} <= set(table)
    checked = 0
    for task, (kind, losses) in table.items():
        cfg = compose([f"task={task}"])
        assert cfg.task.kind == kind, (task, cfg.task.kind, kind)
        served = {cfg.task.kind, *(cfg.task.get("also_kinds") or ())}
        for name in losses:
            kinds = set(declared_kinds(compose([f"task={task}", f"loss={name}"]).loss))
            assert kinds & served, f"docs/configuration.md suggests loss={name} for task={task} ({kind}); it declares {kinds}"
            checked += 1
    assert checked >= 25


def test_debug_quick_is_a_tiny_short_run_and_the_command_line_beats_it():
    quick = compose(["debug=quick"], hydra=True)
    assert quick.hydra.runtime.choices["model"] == "tiny" and quick.model.architecture.hidden_size == 32
    assert (quick.trainer.max_steps, quick.trainer.logging_steps, quick.trainer.eval_steps, quick.trainer.save_steps,
            quick.trainer.per_device_train_batch_size) == (6, 2, 3, 3, 8)
    assert (quick.task.max_train_samples, quick.task.max_eval_samples) == (64, 32)
    default = compose([], hydra=True)  # off by default: nothing changed
    assert default.hydra.runtime.choices["debug"] is None and default.trainer.max_steps == -1
    # it comes after the presets (a preset's budget is cut), and whatever the command line says wins
    preset = compose(["hparams_search=huber_delta", "debug=quick"])
    assert preset.trainer.max_steps == 6 and preset.task.max_eval_samples == 32
    varied = compose(["debug=quick", "trainer.max_steps=7", "model=gpt_small", "task=lm"], hydra=True)
    assert varied.trainer.max_steps == 7 and varied.hydra.runtime.choices["model"] == "gpt_small"


@pytest.mark.parametrize("task", options("task"))
def test_each_task_default_loss_serves_it(task):
    cfg = compose([f"task={task}"])
    assert {cfg.task.kind, *(cfg.task.get("also_kinds") or ())} & set(declared_kinds(cfg.loss))


def test_command_line_loss_beats_task_default():
    assert compose(["task=sentiment"]).loss._target_.endswith("CrossEntropy")
    assert compose(["task=sentiment", "loss=model_loss"]).loss._target_.endswith("ModelDefault")
    assert compose(["loss=huber", "task=regression"]).loss._target_.endswith("Huber")


def test_trainer_accepts_any_field_without_plus():
    cfg = compose(["trainer.adam_beta2=0.98", "trainer.max_steps=7"])
    assert cfg.trainer.adam_beta2 == 0.98 and cfg.trainer.max_steps == 7


def _train_py(*args):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cfg_job_imports_nothing_heavy():
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['train.py', '--cfg', 'job']\n"
        "try:\n"
        f"    runpy.run_path({str(ROOT / 'train.py')!r}, run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'mlflow', 'evaluate') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "loss:" in out.stdout and "task:" in out.stdout
    assert "HEAVY []" in out.stdout, out.stdout[-500:] + out.stderr[-2000:]


def test_help_lists_groups_and_options():
    out = _train_py("--help")
    assert out.returncode == 0
    for group in GROUPS:
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith(f"{group}: "))
        assert set(line.split(": ", 1)[1].split(", ")) == set(options(group))


def test_docs_losses_table_is_generated_and_current():
    from losslab.losses import catalog

    text = catalog.render(CONF)
    assert (ROOT / "docs" / "losses.md").read_text() == text, "stale: run python -m losslab.losses.catalog"
    other_names = catalog.aliases(CONF)  # listed in their real option's row (tests/test_names.py)
    for option in options("loss"):
        if option not in other_names:
            assert f"| `{option}` |" in text or f"| `{option}`, alias" in text
