"""``loss=model_loss``: the model head's own loss, exactly as transformers chooses it.

The head picks by ``config.problem_type``: ``regression`` → MSE, ``single_label_classification`` →
cross-entropy, ``multi_label_classification`` → BCE-with-logits. losslab then passes *no*
``compute_loss_func`` to the Trainer, so the model computes its loss from the labels itself.

Gradient-accumulation caveat (measured with transformers 5.24, see tests/test_grad_accum.py): BERT's
heads compute a plain micro-batch mean (``MSELoss()``, ``CrossEntropyLoss()``, ``BCEWithLogitsLoss()``, and
the token head's cross-entropy) and ignore ``num_items_in_batch``, while their ``forward`` accepts
``**kwargs``, so the Trainer treats the loss as already normalised over the accumulated batch and does not
divide by the accumulation steps. With ``gradient_accumulation_steps = k > 1`` the gradient and the logged
loss come out k times too large, for every problem type (transformers#47688 reports the regression case);
per token it is about k times and also weights micro-batches with few tokens too much. losslab warns when
that happens; ``mse``, ``cross_entropy`` and ``bce`` are the same losses, normalised correctly. Causal LM
heads are the exception: their ``ForCausalLMLoss`` divides by ``num_items_in_batch`` and is exact.
"""

from __future__ import annotations

from losslab.kinds import CAUSAL_LM, MULTI_LABEL, REGRESSION, SINGLE_LABEL, TOKEN


class ModelDefault:
    """Marker: let the model compute its own loss (no ``compute_loss_func``)."""

    task_kinds = (REGRESSION, SINGLE_LABEL, MULTI_LABEL, TOKEN, CAUSAL_LM)
    uses_model_loss = True
    #: kinds whose BERT-style head ignores num_items_in_batch (measured; the causal-LM head does not)
    unnormalized_kinds = (REGRESSION, SINGLE_LABEL, MULTI_LABEL, TOKEN)
    formula = "the head's own: MSE (regression), CE (single-label), BCE-with-logits (multi-label)"
    reference = "the model's loss computed from labels; k× caveat under accumulation asserted"

    def __repr__(self) -> str:
        return "ModelDefault()"
