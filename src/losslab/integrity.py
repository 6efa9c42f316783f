"""Results that can be trusted: a checkpoint belongs to one job, it holds finite weights, and every training
step's loss is finite.

**Ownership.** A job writes ``losslab_job.json`` (its identity, and its overrides for people to read) into its
run dir, its checkpoint folder (``trainer.output_dir``) and every checkpoint before the Trainer writes it. Before
its MLflow run starts (:func:`claim`), a job refuses, in one line (exit 2):

- a run dir whose marker names another job (Hydra's ``on_run_start`` checks it too, before Hydra writes its
  ``.hydra/`` files there);
- a checkpoint folder holding a complete checkpoint (one with ``trainer_state.json``) that is not its own: one
  with another job's marker, or none (an older losslab's, another program's).

It resumes only a checkpoint of its own (:func:`resumable`). A folder whose marker names another job but holds
none of its checkpoints (that job failed before its first save) protects nothing and is taken over; a partial
checkpoint (no ``trainer_state.json``) is never resumed and never blocks.

**Finiteness.** :class:`FiniteTraining`, a Trainer mixin, checks each training micro-batch's loss (one
``torch.isfinite`` and a device sync per micro-batch) and stops the run at the first non-finite one, before
that step's optimizer update; it never saves a checkpoint whose weights are not finite (a finite loss can
still blow the weights up). A checkpoint holding non-finite weights (left by an older losslab) is never
resumed: it is set aside as ``nonfinite-checkpoint-N`` and the newest finite one is resumed, or the job starts
over, saying so.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

from losslab import identity
from losslab.errors import UsageError
from losslab.secrets import mask_overrides

# torch, safetensors and losslab.callbacks (transformers) are imported inside functions: the sweep's Hydra
# callbacks use this module in a process that loads no model, and run.py imports it before preflight has run

MARKER = "losslab_job.json"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


class OtherJob(UsageError):
    """A run dir or a checkpoint folder holds another job's files."""


# --------------------------------------------------------------------------------------------- the marker

def composed_key(cfg) -> str:
    """The job's identity as composed, before anything is filled in from its data (``task.num_labels``): its
    config less where it writes, its data by content, and the losslab version. Hydra's ``on_run_start`` can
    compute it as the job does."""
    return identity.digest({"job": identity.digest(identity.computed(cfg)), "losslab": identity.version()})


def record(composed: str, job) -> dict:
    """What a marker holds: ``composed`` (:func:`composed_key`), ``job``'s hashes, and the command-line
    overrides (secrets masked) so that a refusal can say whose files they are."""
    overrides = None
    try:
        if HydraConfig.initialized():
            overrides = " ".join(mask_overrides(HydraConfig.get().overrides.task))
    except Exception:  # outside Hydra: no overrides to show
        pass
    return {"composed": composed, "config_hash": job.config_hash, "job_key": job.job_key, "version": job.version,
            "overrides": overrides}


def read(folder: str | Path) -> dict | None:
    """The marker in ``folder``, None when there is none; an unreadable one is ``{}`` (nobody's)."""
    path = Path(folder) / MARKER
    if not path.is_file():
        return None
    try:
        found = json.loads(path.read_text())
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


def write(folder: str | Path, rec: dict) -> None:
    """Write ``rec`` as ``folder``'s marker (a temporary file renamed: never half a marker)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{MARKER}.{os.getpid()}"
    tmp.write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
    tmp.replace(folder / MARKER)


def describe(rec: dict | None) -> str:
    """Whose files a marker says they are, for a message."""
    if not rec:
        return f"no {MARKER}: written by an earlier losslab or another program"
    parts = [rec.get("overrides") or "no overrides", f"losslab {rec.get('version', '?')}",
             f"config_hash {rec.get('config_hash', '?')}"]
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------- ownership

def complete_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """The ``checkpoint-N`` folders the Trainer finished writing (``trainer_state.json``, written last, parses),
    newest first."""
    found = []
    folder = Path(folder)
    if not folder.is_dir():
        return found
    for child in folder.iterdir():
        m = _CHECKPOINT.fullmatch(child.name)
        if m and child.is_dir() and (child / "trainer_state.json").is_file():
            try:
                json.loads((child / "trainer_state.json").read_text())
            except (OSError, ValueError):  # cut short
                continue
            found.append((int(m.group(1)), child))
    return sorted(found, reverse=True)


def owns(rec: dict | None, config_hash: str) -> bool:
    return bool(rec) and rec.get("config_hash") == config_hash


def check_run_dir(run_dir: str | Path, *, config_hash: str | None = None, composed: str | None = None) -> None:
    """Refuse a run dir whose marker names another job (by ``config_hash``, or by ``composed`` key)."""
    rec = read(run_dir)
    if rec is None:
        return
    mine = rec.get("config_hash") == config_hash if config_hash is not None else rec.get("composed") == composed
    if not mine:
        raise OtherJob(f"{run_dir} holds the files of another job ({describe(rec)}): this run would overwrite "
                       "them; choose another hydra.run.dir (hydra.sweep.dir in a sweep) or remove it")


def check_checkpoints(folder: str | Path, config_hash: str) -> None:
    """Refuse a checkpoint folder holding a complete checkpoint that is not this job's."""
    for _, checkpoint in complete_checkpoints(folder):
        rec = read(checkpoint)
        if not owns(rec, config_hash):
            raise OtherJob(f"{folder} holds checkpoints of another job ({checkpoint.name}: {describe(rec)}): this "
                           "job would resume or overwrite them; choose another trainer.output_dir or remove it")


def claim(cfg, rec: dict) -> list[Path]:
    """Check that this job (its marker ``rec``) may write its run dir and its checkpoint folder (raise
    :class:`OtherJob` if not); return the folders to mark once its run has started (:func:`mark`)."""
    folders = []
    run_dir = _run_dir()
    if run_dir is not None:
        check_run_dir(run_dir, config_hash=rec["config_hash"])
        folders.append(Path(run_dir))
    out = Path(str(cfg.trainer.output_dir))
    check_checkpoints(out, rec["config_hash"])
    folders.append(out)
    return folders


def mark(folders, rec: dict) -> None:
    for folder in dict.fromkeys(Path(f).resolve() for f in folders):
        write(folder, rec)


def _run_dir() -> str | None:
    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().runtime.get("output_dir")


# --------------------------------------------------------------------------------------------- finiteness

def nonfinite(tensors) -> str | None:
    """``'nan'``, ``'inf'`` or None: whether any floating-point tensor among ``tensors`` is not finite (one
    device sync for all of them)."""
    import torch

    tensors = [t.detach() for t in tensors if t.is_floating_point()]
    if not tensors:
        return None
    if bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
        return None
    return "nan" if any(bool(torch.isnan(t).any()) for t in tensors) else "inf"


def nonfinite_checkpoint(checkpoint: str | Path) -> str | None:
    """Whether the weights saved in ``checkpoint`` (``*.safetensors``, else ``pytorch_model*.bin``) are finite:
    None, or ``'nan'`` / ``'inf'``."""
    import torch

    checkpoint = Path(checkpoint)
    for f in sorted(checkpoint.glob("*.safetensors")):
        from safetensors import safe_open

        with safe_open(str(f), framework="pt") as fh:
            bad = nonfinite(fh.get_tensor(name) for name in fh.keys())
        if bad:
            return bad
    for f in sorted(checkpoint.glob("pytorch_model*.bin")):
        state = torch.load(f, map_location="cpu", weights_only=True)
        bad = nonfinite(v for v in state.values() if isinstance(v, torch.Tensor))
        if bad:
            return bad
    return None


def resumable(folder: str | Path, config_hash: str | None = None) -> str | None:
    """The newest complete checkpoint in ``folder`` that belongs to the job ``config_hash`` (None: any) and holds
    finite weights. One with non-finite weights is renamed ``nonfinite-checkpoint-N`` (never resumed, and out of
    the Trainer's rotation), and the line says so."""
    chosen, set_aside = None, []
    for _, checkpoint in complete_checkpoints(folder):
        if config_hash is not None and not owns(read(checkpoint), config_hash):
            continue  # another job's: claim() refuses the folder
        bad = nonfinite_checkpoint(checkpoint)
        if bad is None:
            chosen = str(checkpoint)
            break
        aside = checkpoint.with_name(f"nonfinite-{checkpoint.name}")
        checkpoint.rename(aside)
        set_aside.append((checkpoint, aside, bad))
    then = f"resuming from {Path(chosen).name} instead" if chosen else "starting over"
    for checkpoint, aside, bad in set_aside:
        print(f"losslab: {checkpoint} holds non-finite weights ({bad}): not resumed (moved to {aside.name}); "
              f"{then}", file=sys.stderr, flush=True)
    return chosen


class FiniteTraining:
    """A Trainer mixin: a non-finite training loss stops the run at its step, before the update; a checkpoint
    of non-finite weights is never saved; every checkpoint carries the job's marker (``losslab_marker``)."""

    losslab_marker: dict | None = None

    def training_step(self, model, inputs, *args, **kwargs):
        import torch

        loss = super().training_step(model, inputs, *args, **kwargs)
        if not bool(torch.isfinite(loss).all()):  # one sync per micro-batch
            from losslab.callbacks import NonFiniteLossError

            value = float(loss.detach().float().reshape(-1)[0]) if loss.numel() else float("nan")
            raise NonFiniteLossError(
                f"the loss became non-finite ({value}) at step {self.state.global_step + 1} (training stopped "
                "before that step's update; no checkpoint holds it); lower trainer.learning_rate, check the "
                "labels' scale, or use hardware.precision=fp32")
        return loss

    def _save_checkpoint(self, model, trial):
        bad = nonfinite(self.model.parameters())
        if bad:
            from losslab.callbacks import NonFiniteLossError

            raise NonFiniteLossError(
                f"the model's weights became non-finite ({bad}) at step {self.state.global_step} although the "
                "loss was finite; no checkpoint of them is saved; lower trainer.learning_rate or "
                "trainer.max_grad_norm")
        if self.losslab_marker and self.args.should_save:  # before the Trainer writes: a complete one has it
            write(Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}",
                  self.losslab_marker)
        return super()._save_checkpoint(model, trial)
