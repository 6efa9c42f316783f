"""Gradient-accumulation invariance: one optimizer step on the same 16 examples as 16 x 1 and as 4 x 4.

Plain SGD (Adam would hide a scaled gradient), no dropout, the real Trainer and the real VADER rows.
Every losslab loss must give the same parameter update (1e-6) and the same logged loss. ``loss=model_loss``
is the model head's own loss: BERT's head returns a micro-batch mean and ignores ``num_items_in_batch``, so
its loss is k times too large under accumulation k for every problem type -- asserted here so that the
documented caveat stays true (this test fails, on purpose, the day transformers fixes it).
"""

from __future__ import annotations

import pytest
import torch
from conftest import CONF, compose, one_step_arguments, options
from hydra.utils import instantiate
from transformers import Trainer

from losslab import models
from losslab.losses.catalog import aliases
from losslab.run import compute_loss_func
from losslab.preflight import declared_kinds
from losslab.tasks import data, encoding

TASK_OF_KIND = {"regression": "regression", "single_label": "sentiment", "multi_label": "multilabel",
                "token_classification": "ner", "causal_lm": "lm", "ordinal": "rating_dist"}
NO_DROPOUT = ["+model.architecture.hidden_dropout_prob=0.0", "+model.architecture.attention_probs_dropout_prob=0.0"]


def one_step(task: str, loss_name: str, batch: int, accum: int, tmp_path):
    cfg = compose([f"task={task}", f"loss={loss_name}", "model=tiny", "task.max_train_samples=16", *NO_DROPOUT])
    loss = instantiate(cfg.loss)
    torch.manual_seed(0)
    model, tok = models.build(cfg.model, cfg.task, width=models.head_width(loss, cfg.task), loss=loss)
    encoded = encoding.encode(data.load_splits(cfg.task)[0], tok, cfg.task)
    if getattr(loss, "needs_train_labels", False):
        loss.fit(encoded["train"]["labels"])
    if hasattr(loss, "attach"):
        loss.attach(model)
    args = one_step_arguments(tmp_path / f"{loss_name}-{batch}x{accum}", batch, accum)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = Trainer(
        model=model, args=args, train_dataset=encoded["train"], data_collator=encoding.collator(cfg.task.kind, tok),
        compute_loss_func=compute_loss_func(cfg, loss),
    )
    trainer.train()
    update = {n: (p.detach() - before[n]) for n, p in model.named_parameters()}
    logged = next(h["loss"] for h in trainer.state.log_history if "loss" in h)
    return update, logged


# Aliases (Keras' names) compose exactly their real option (tests/test_names.py): not run twice here.
ALL_CASES = [(o, k) for o in options("loss") if o not in aliases(CONF)
             for k in (declared_kinds(compose([f"loss={o}"]).loss) or ())]
CASES = [(o, k) for o, k in ALL_CASES if k in TASK_OF_KIND]  # kinds that have a task: through the Trainer


@pytest.mark.slow  # one real Trainer step per case, twice
@pytest.mark.parametrize("loss_name,kind", CASES)
def test_update_is_invariant_to_accumulation(loss_name, kind, tmp_path):
    exact = _exact(instantiate(compose([f"loss={loss_name}"]).loss))
    task = TASK_OF_KIND[kind]
    full, logged_full = one_step(task, loss_name, 16, 1, tmp_path)
    accum, logged_accum = one_step(task, loss_name, 4, 4, tmp_path)
    biggest = max(v.abs().max().item() for v in full.values())
    assert biggest > 1e-6, "the step changed nothing: the test would not see a wrong scale"
    atol = min(1e-6, biggest * 1e-2)  # far below what a k-times-wrong scale would change
    if not exact:  # what it declares is true: accumulation changes its update
        assert any(not torch.allclose(accum[n], full[n], atol=atol, rtol=0) for n in full), loss_name
        return
    if loss_name == "model_loss" and kind != "causal_lm":  # the causal-LM head's ForCausalLMLoss is exact
        # The documented caveat: BERT's head ignores num_items_in_batch. Per token, each micro-batch is a mean
        # over its own number of tokens, so the error is about, not exactly, 4x.
        assert logged_accum == pytest.approx(4 * logged_full, rel=1e-4 if kind != "token_classification" else 0.02)
        return
    for name in full:
        torch.testing.assert_close(accum[name], full[name], atol=atol, rtol=0, msg=f"{loss_name}: {name}")
    assert logged_accum == pytest.approx(logged_full, rel=1e-5)


def _exact(loss) -> bool:
    """Whether the loss is a sum over items. ``dice_batch`` (a dice over each micro-batch) declares it is not:
    these tests then check that the declaration is true (accumulation does change it), and
    tests/test_loss_fixes.py that accumulation gives what its docstring says (the item-weighted mean of the
    micro-batches' dice)."""
    return bool(getattr(loss, "exact_under_accumulation", True))


# ------------------------------------------------------------------ every loss, on tensors
# The Trainer's arithmetic without the Trainer, so losses whose task kind has no task yet are covered too:
# num_items_in_batch = label elements != -100 over the whole step (shifted for causal LM), one backward per
# micro-batch, gradients summed. 16 items as 16 x 1 and as 4 x 4 must give the same gradient.
LABELS = {
    "regression": lambda g: torch.randn(16, generator=g),
    "single_label": lambda g: torch.randint(0, 5, (16,), generator=g).masked_fill(torch.arange(16) % 7 == 3, -100),
    "multi_label": lambda g: torch.randint(0, 2, (16, 5), generator=g).float(),
    "ordinal": lambda g: torch.randint(0, 6, (16,), generator=g),
    "token_classification": lambda g: torch.randint(0, 5, (16, 6), generator=g).masked_fill(
        torch.rand(16, 6, generator=g) < 0.3, -100),
    "causal_lm": lambda g: torch.randint(0, 5, (16, 6), generator=g).masked_fill(torch.rand(16, 6, generator=g) < 0.2, -100),
}
WIDTH = {"regression": 1, "single_label": 5, "multi_label": 5, "ordinal": 5, "token_classification": 5, "causal_lm": 5}


def _count(kind, labels):
    return (labels[:, 1:] if kind == "causal_lm" else labels).ne(-100).sum()


def _grad(loss, kind, x, labels, weight, micro):
    weight.grad = None
    n = _count(kind, labels)
    for xs, ys in zip(x.chunk(micro), labels.chunk(micro)):
        if getattr(loss, "needs_output_embeddings", False):
            out = {"hidden_states": (xs,)}
        else:
            out = {"logits": xs @ weight.T}
        loss(out, ys, num_items_in_batch=n).backward()
    return weight.grad.clone()


TENSOR_CASES = [(o, k) for o, k in ALL_CASES if o != "model_loss"]


@pytest.mark.parametrize("loss_name,kind", TENSOR_CASES)
def test_every_loss_is_invariant_to_accumulation_on_tensors(loss_name, kind):
    g = torch.Generator().manual_seed(0)
    loss = instantiate(compose([f"loss={loss_name}"]).loss)
    exact = _exact(loss)
    labels = LABELS[kind](g)
    if getattr(loss, "needs_train_labels", False):
        loss.fit(labels.numpy())
    width = loss.head_width(WIDTH[kind]) if hasattr(loss, "head_width") else WIDTH[kind]
    weight = torch.randn(width, 8, generator=g, requires_grad=True)
    x = torch.randn(16, 6, 8, generator=g) if labels.dim() == 2 and kind != "multi_label" else torch.randn(16, 8, generator=g)
    if getattr(loss, "needs_output_embeddings", False):
        head = torch.nn.Linear(8, width, bias=False)
        head.weight = torch.nn.Parameter(weight.detach().clone())
        loss.bind(head)
        weight = head.weight
    full = _grad(loss, kind, x, labels, weight, 1)
    accum = _grad(loss, kind, x, labels, weight, 4)
    assert full.abs().max() > 1e-4
    if not exact:  # what it declares is true: accumulation changes its gradient
        assert not torch.allclose(accum, full, atol=1e-6, rtol=1e-5), loss_name
        return
    torch.testing.assert_close(accum, full, atol=1e-6, rtol=1e-5)
