"""Trainer callbacks of losslab."""

from __future__ import annotations

import math

from transformers import TrainerCallback
from transformers.integrations import MLflowCallback

from losslab.errors import UsageError


class NonFiniteLossError(UsageError):
    """The training loss (or the weights) became NaN or infinite: one line, the run FAILED, exit 1."""

    exit_code = 1


class StopOnNonFiniteLoss(TrainerCallback):
    """Stop the run the first time a logged training loss is NaN or inf (the run then ends FAILED).

    A second line of defence: each step's loss is already checked as it is computed
    (:class:`losslab.integrity.FiniteTraining`). Needs ``logging_nan_inf_filter=False`` (losslab's default):
    with the filter on, the Trainer replaces non-finite step losses in the logs by the running mean.
    """

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise NonFiniteLossError(
                f"the loss became non-finite ({loss}) at step {state.global_step} (as logged); the run is "
                "stopped; lower trainer.learning_rate, check the labels' scale, or use hardware.precision=fp32"
            )


class EvaluateAtEnd(TrainerCallback):
    """Evaluate (and save) at the last step too, so the end of training is on the validation curve and can
    be chosen as the best model; with ``eval_strategy=steps`` the Trainer only evaluates every eval_steps."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps and args.eval_strategy != "no":
            control.should_evaluate = True
            if args.save_strategy != "no":
                control.should_save = True
        return control


class LossComponents(TrainerCallback):
    """Logs the named components a loss reports (``loss.last_components``) next to the total loss.

    Training: summed over the micro-batches of a step (each is already normalized by the step's item count,
    like the loss), averaged over the steps of the logging window, logged as ``train/loss/<name>`` at the
    step the Trainer logs ``loss``. Evaluation: averaged over the evaluation batches, logged as
    ``eval/loss/<name>`` (``test/loss/<name>`` for the test split). ``log(metrics, step)`` does the writing,
    so this callback knows neither the loss nor the tracker.
    """

    def __init__(self, loss, log):
        self.loss, self.log = loss, log
        self._step: dict[str, float] = {}
        self._window: dict[str, float] = {}
        self._steps = 0
        self._eval: dict[str, float] = {}
        self._eval_batches = 0

    def _components(self) -> dict[str, float]:
        comps = getattr(self.loss, "last_components", None) or {}
        self.loss.last_components = {}
        return {k: float(v) for k, v in comps.items()}

    def on_substep_end(self, args, state, control, **kwargs):
        for k, v in self._components().items():
            self._step[k] = self._step.get(k, 0.0) + v

    def on_step_end(self, args, state, control, **kwargs):
        self.on_substep_end(args, state, control)
        if self._step:
            for k, v in self._step.items():
                self._window[k] = self._window.get(k, 0.0) + v
            self._steps += 1
            self._step = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if "loss" in (logs or {}) and self._steps:
            self.log({f"train/loss/{k}": v / self._steps for k, v in self._window.items()}, state.global_step)
            self._window, self._steps = {}, 0

    def on_prediction_step(self, args, state, control, **kwargs):
        comps = self._components()
        if comps:
            for k, v in comps.items():
                self._eval[k] = self._eval.get(k, 0.0) + v
            self._eval_batches += 1

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self._eval_batches:
            split = "test" if any(k.startswith("test_") for k in (metrics or {})) else "eval"
            self.log({f"{split}/loss/{k}": v / self._eval_batches for k, v in self._eval.items()},
                     state.global_step)
        self._eval, self._eval_batches = {}, 0


class MLflowLogger(MLflowCallback):
    """The Trainer's own MLflow callback, but a job resumed from a checkpoint does not log again the points
    its run already has (the steps between that checkpoint and the interruption): no duplicate steps.

    ``logged`` says which steps the run holds (:class:`losslab.resume.LoggedSteps`; None: a new run)."""

    def __init__(self, logged=None):
        super().__init__()
        self.logged = logged

    def on_log(self, args, state, control, logs, model=None, **kwargs):
        from losslab.faults import check_store

        check_store()  # the store deleted while the job ran: one line now, not a traceback per write
        fresh = dict(logs or {})
        if self.logged is not None:
            fresh = self.logged.new(fresh, state.global_step)
        if fresh:
            super().on_log(args, state, control, fresh, model=model, **kwargs)
