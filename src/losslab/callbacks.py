"""Trainer callbacks of losslab."""

from __future__ import annotations

import math

from transformers import TrainerCallback


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(TrainerCallback):
    """Stop the run the first time a logged training loss is NaN or inf (the run then ends FAILED).

    Needs ``logging_nan_inf_filter=False`` (losslab's default): with the filter on, the Trainer replaces
    non-finite step losses in the logs by the running mean and a diverged run would look healthy.
    """

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise NonFiniteLossError(
                f"the training loss became {loss} at step {state.global_step}; the run is stopped. "
                "Lower trainer.learning_rate, check the labels' scale, or use hardware.precision=fp32."
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
