"""The run wiring: check, load, build the Trainer with the chosen loss, train, evaluate, report.

Everything that can be checked without data or a model is checked first (``preflight``); the data and the
model load next; the MLflow run starts only once all of that has worked, so a bad command leaves no run.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
import time

import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from losslab import (distributed, faults, hardware, identity, integrity, kinds, metrics, models, predictions,
                     preflight, resume, tracking, ui)
from losslab.checks import check_class_options
from losslab.errors import UsageError
from losslab.evaluation import ValidationPredictions, predict, trainer_class
from losslab.integrity import FiniteTraining
from losslab.losses.adapt import as_compute_loss_func
from losslab.losses.base import fit_to_train
from losslab.losses.targets import check_targets
from losslab.secrets import mask_overrides, mask_text
from losslab.tasks import encoding, noise
from losslab.tasks.encoding import ITEM
from losslab.tasks.labels import LevelsFromDistribution

# transformers (its Trainer), losslab.callbacks and losslab.tasks.data (datasets) are imported inside functions:
# preflight refuses a bad config before any of them loads (test_bad_input: the refusal path imports no Trainer,
# evaluate, datasets or MLflow)

log = logging.getLogger("losslab")


def training_arguments(cfg: DictConfig, hardware_kwargs: dict | None = None):
    """``TrainingArguments`` from ``cfg.trainer`` and the hardware (``hardware_kwargs``: as preflight resolved
    them); ``Seq2SeqTrainingArguments`` for a seq2seq task, which is evaluated on generated text
    (``predict_with_generate``)."""
    from transformers import Seq2SeqTrainingArguments, TrainingArguments

    args = OmegaConf.to_container(cfg.trainer, resolve=True)
    args.update(hardware.training_kwargs(cfg.hardware) if hardware_kwargs is None else hardware_kwargs)
    if kinds.get(cfg.task.kind).generates:
        return Seq2SeqTrainingArguments(**{"predict_with_generate": True, **args})
    return TrainingArguments(**args)


def build_trainer(cfg: DictConfig, loss_fn, model, tokenizer, encoded, args, extra_callbacks=(), label_names=None,
                  logged=None, suite=None):
    """A plain ``transformers.Trainer``: losslab's loss is its ``compute_loss_func``. ``logged``: the metric
    points a resumed run already holds (:class:`losslab.resume.LoggedSteps`), which its MLflow callback skips;
    ``suite``: the task's metric suite as preflight loaded it."""
    from transformers import Seq2SeqTrainer, Trainer

    from losslab.callbacks import EvaluateAtEnd, MLflowLogger, StopOnNonFiniteLoss

    suite = suite or metrics.get(cfg.task.metrics)
    generates = kinds.get(cfg.task.kind).generates
    if hasattr(loss_fn, "attach"):  # a loss that needs more of the model (chunked_cross_entropy: its head)
        loss_fn.attach(model)
    trackers = []
    if "mlflow" in args.report_to:  # the Trainer's MLflow callback, made resume-aware (no step logged twice)
        args.report_to = [r for r in args.report_to if r != "mlflow"]
        trackers = [MLflowLogger(logged)]  # first: a NaN loss is logged before StopOnNonFiniteLoss stops the run

    validation = ValidationPredictions(suite.compute_metrics(label_names, tokenizer))

    # a user's Trainer subclass that computes the loss itself (loss: losslab.losses.trainer_loss.TrainerLoss)
    own = getattr(loss_fn, "trainer_class", None)

    base = trainer_class(own or (Seq2SeqTrainer if generates else Trainer))
    # every step's loss checked, never a checkpoint of non-finite weights, each checkpoint marked with its job
    trainer = type(base.__name__, (FiniteTraining, base), {"__module__": base.__module__})(
        model=model,
        args=args,
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        processing_class=tokenizer,
        data_collator=encoding.collator(cfg.task.kind, tokenizer, on_gpu=not args.use_cpu, model=model),
        compute_metrics=validation,
        compute_loss_func=None if own else loss_fn,
        preprocess_logits_for_metrics=suite.preprocess_logits(loss_fn),
        callbacks=[*trackers, StopOnNonFiniteLoss(), EvaluateAtEnd(), validation.callback(), *extra_callbacks],
    )
    trainer.validation_predictions = validation  # the final model's validation predictions, without a pass
    return trainer


def keep_predictions(trainer, encoded, cfg: DictConfig, tokenizer) -> dict:
    """Test the final model (its metrics logged as ``test_<metric>``) and keep its per-item predictions on
    validation and test as the run's ``predictions/<split>.parquet`` artifacts; returns the test metrics."""
    decode = None
    if kinds.get(cfg.task.kind).generates:  # generated token ids: kept as texts

        def decode(ids):
            ids = np.where(np.asarray(ids) < 0, tokenizer.pad_token_id, ids)
            return tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)

    test = predict(trainer, encoded["test"], "test")
    kept = {"test": (test.predictions, test.label_ids),
            "validation": trainer.validation_predictions.final(trainer)}
    if kept["validation"] is None:  # its evaluation ran before a resume: one more pass (every rank takes part)
        out = trainer.predict(encoded["validation"], metric_key_prefix="eval")
        kept["validation"] = (out.predictions, out.label_ids)
    if trainer.is_world_process_zero():
        with tempfile.TemporaryDirectory() as tmp:
            for split, (preds, labels) in kept.items():
                path = f"{tmp}/{split}.parquet"
                predictions.write(path, preds, labels, encoded[split][ITEM], decode)
                tracking.log_file(path, predictions.ARTIFACT_DIR)
    return test.metrics


def compute_loss_func(cfg: DictConfig, loss):
    """The Trainer's ``compute_loss_func`` for this loss on this task (None: the model's own loss)."""
    loss_fn = as_compute_loss_func(
        loss, cfg.task.kind, int(cfg.trainer.get("gradient_accumulation_steps") or 1),
        int(os.environ.get("WORLD_SIZE", "1")), name=_loss_name(cfg), width=_head_width(cfg, loss),
    )
    if cfg.task.get("targets") == "distribution" and not getattr(loss, "takes_distributions", False):
        loss_fn = LevelsFromDistribution(loss_fn, int(cfg.task.num_labels))
    return loss_fn


def _head_width(cfg: DictConfig, loss) -> int:
    return models.head_width(loss, cfg.task)


def _warn_model_loss_under_accumulation(cfg, loss) -> None:
    steps = int(cfg.trainer.get("gradient_accumulation_steps") or 1)
    if steps > 1 and cfg.task.kind in getattr(loss, "unnormalized_kinds", ()):
        log.warning(
            "loss=model_loss with gradient_accumulation_steps=%d: BERT-style heads return a per-micro-batch mean "
            "and ignore num_items_in_batch, so the gradient and the logged loss are %dx too large "
            "(see losslab/losses/default.py). loss=mse / loss=cross_entropy are the same losses, normalized "
            "correctly.", steps, steps,
        )


def _loss_name(cfg: DictConfig) -> str:
    return HydraConfig.get().runtime.choices.get("loss") if HydraConfig.initialized() else cfg.loss._target_


def summary(cfg: DictConfig, run_id: str, test: dict, seconds: float) -> str:
    loss = _loss_name(cfg)
    suite = " · ".join(f"{k[len('test_'):]} {v:.4f}" for k, v in test.items()
                       if k.startswith("test_") and isinstance(v, float)
                       and k != "test_loss" and not k.endswith(("runtime", "per_second")))
    # test_loss is left out: it is in the chosen loss's units, so it does not compare across losses
    return (
        f"\nlosslab · task={cfg.task.name} · loss={loss} · {seconds / 60:.1f} min\n"
        f"  test: {suite}\n"
        f"  MLflow run {run_id} (experiment {cfg.tracking.experiment!r}); see it with:\n"
        f"    {tracking.ui_command(cfg.tracking.uri)}\n"  # the URI's password masked
    )


def _in_sweep() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def train(cfg: DictConfig) -> float:
    """Fine-tune with ``cfg.loss`` on ``cfg.task``; return the validation objective of the final model.

    An earlier attempt at the same job (same composed config) is looked up in the MLflow store first: in a
    sweep, a finished one is not run again; an interrupted one with a checkpoint is resumed into its run.
    """
    started = time.time()
    resolved = preflight.check(cfg)  # no data, no model yet

    composed = integrity.composed_key(cfg)  # the job as composed: what Hydra's on_run_start checks a run dir by
    from losslab.tasks import data

    # the per-process key of the loaded splits: the task as composed; with task.label_noise > 0 the train
    # targets depend on the seed too
    task_key = OmegaConf.to_yaml(cfg.task, resolve=True) + noise.cache_salt(cfg)

    def load_splits():
        return data.shared(("splits", task_key), lambda: data.load_splits(cfg.task, seed=cfg.seed))

    if cfg.task.get("num_labels") is None:  # bring-your-own data: the classes found in train, filled in before
        _, found = load_splits()            # the loss, the head and the job's identity are made from the config
        if found:
            with open_dict(cfg):
                cfg.task.num_labels = len(found)

            check_class_options(cfg)  # loss.weights=[...]: one per class found in train

    check_targets(cfg.loss)  # only a loss is ever instantiated as one (preflight checked it too)
    loss = instantiate(cfg.loss)
    _warn_model_loss_under_accumulation(cfg, loss)
    loss_fn = compute_loss_func(cfg, loss)

    job = identity.of(cfg)  # the config is not changed after this, but for where the job writes

    distributed.init(cfg.hardware)
    lookup = cfg.tracking.get("resume", True) and distributed.is_main()
    previous = resume.previous_attempt(cfg, job) if lookup else resume.Previous()
    if previous.version_note(job.version):
        print(f"losslab: {previous.version_note(job.version)}", flush=True)
    skip, previous.checkpoint, out_dir = distributed.from_main(
        (previous.finished is not None and _in_sweep(), previous.checkpoint, cfg.trainer.output_dir))
    with open_dict(cfg):
        cfg.trainer.output_dir = out_dir  # rank 0's: one checkpoint dir per job (hydra#2070)
    if skip and not distributed.is_main():
        return float("nan")
    if skip:
        done = previous.finished
        resume.reuse_in_sweep(cfg.tracking.uri, done)
        print(f"losslab: this job already finished as MLflow run {done.info.run_id} (same composed config); "
              "not run again (tracking.resume=false to rerun)", flush=True)
        return float(done.data.metrics.get("objective", float("nan")))
    if previous.checkpoint:
        log.warning("resuming %s from %s into MLflow run %s", _loss_name(cfg), previous.checkpoint,
                    previous.unfinished.info.run_id if previous.unfinished else "(rank 0's)")
        with open_dict(cfg):
            cfg.trainer.output_dir = os.path.dirname(previous.checkpoint)
    owner = integrity.record(composed, job)  # its losslab_job.json; another job's run dir or checkpoints: refused
    claimed = integrity.claim(cfg, owner) if distributed.is_main() else []

    from transformers import set_seed

    from losslab.callbacks import LossComponents

    hardware.set_threads(cfg.hardware)
    set_seed(int(cfg.seed))
    splits, label_names = load_splits()
    model, tokenizer = models.build(cfg.model, cfg.task, width=models.head_width(loss, cfg.task), loss=loss,
                                    label_names=label_names)
    encoded = data.shared(("encoded", task_key, encoding.tokenizer_id(tokenizer)),
                          lambda: encoding.encode(splits, tokenizer, cfg.task, eval_in_length_order=True))

    classes = len(label_names) if label_names else getattr(model.config, "num_labels", None)
    fitted = fit_to_train(loss, encoded["train"]["labels"], classes)  # balanced weights over the task's classes
    args = training_arguments(cfg, resolved.training_kwargs)
    logged = previous.logged  # the points a resumed run already holds: none is logged twice
    trainer = build_trainer(cfg, loss_fn, model, tokenizer, encoded, args,
                            [LossComponents(loss, functools.partial(tracking.log_metrics, logged=logged))],
                            label_names, logged, resolved.suite)
    trainer.losslab_marker = owner  # written into each checkpoint

    run_name = str(cfg.tracking.get("run_name") or type(loss).__name__)
    job_run = tracking.job_run(cfg, run_name, job, previous) if distributed.is_main() else distributed.NoRun()
    with job_run as run:
        integrity.mark(claimed, owner)  # the run dir and the checkpoint folder are this job's from now on
        ui.start_job(cfg, splits)  # the run named by what its sweep varies; the splits as dataset inputs
        tracking.log_params({f"loss.fitted.{k}": v for k, v in fitted.items()})
        tracking.log_params({f"task.label.{i}": name for i, name in enumerate(label_names or [])})
        trainer.train(resume_from_checkpoint=previous.checkpoint)
        objective = f"eval_{cfg.task.objective}"
        if args.load_best_model_at_end and trainer.state.best_metric is not None:
            value = float(trainer.state.best_metric)
        else:
            evals = [h for h in trainer.state.log_history if objective in h]
            value = float(evals[-1][objective] if evals else trainer.evaluate()[objective])
        test = keep_predictions(trainer, encoded, cfg, tokenizer)
        tracking.log_metrics({"objective": value}, trainer.state.global_step, logged)  # what a sweeper optimizes
        ui.end_job(cfg, test, value, trainer.state.global_step, logged)  # objective/test_<o>, the run's description
        run_id = run.info.run_id
    if distributed.is_main():
        print(summary(cfg, run_id, test, time.time() - started), flush=True)
    return value


def main(cfg: DictConfig) -> float:
    """``train.py``'s task function: :func:`train`, with a user's mistake shown as one line in a single run.

    In a sweep a failed job does not sink the others: its error is printed and recorded as a FAILED child
    run (if its run had not started yet), and it returns NaN; the sweep's summary names it at the end.
    """
    try:
        return train(cfg)
    except KeyboardInterrupt as err:  # Ctrl-C, or a scheduler's SIGTERM (faults.Terminated): the run is KILLED
        print(f"losslab: {faults.stopped(err, cfg)}", file=sys.stderr, flush=True)
        sys.exit(faults.exit_code(err) if isinstance(err, faults.Terminated) else 130)
    except Exception as err:
        err = faults.explain(err, cfg)  # a full disk: one line, not torch's "unexpected pos"
        if _in_sweep():
            # a user's mistake is one line (the run keeps its traceback in error.txt); anything else, the stack
            log.error("this job failed; the sweep goes on", exc_info=not isinstance(err, UsageError))

            print(mask_text(f"losslab: error: job {_job_label(cfg)}: {type(err).__name__}: {err}"), file=sys.stderr,
                  flush=True)

            if not getattr(err, "losslab_run_id", None) and distributed.is_main():
                tracking.record_failed_job(cfg, _loss_name(cfg), _safe_identity(cfg), err)
            return float("nan")
        if isinstance(err, UsageError):
            print(f"losslab: error: {err}", file=sys.stderr, flush=True)
            sys.exit(faults.exit_code(err))
        raise


def _job_label(cfg: DictConfig) -> str:
    hc = HydraConfig.get()
    return f"#{hc.job.num} ({' '.join(mask_overrides(hc.overrides.task))})"


def _safe_identity(cfg: DictConfig):
    try:
        return identity.of(cfg)
    except Exception:  # an unresolvable config: the job is still recorded, without an identity
        return None
