"""A user's own loss, in the forms people bring: adapted to be exact under accumulation, or refused.

On tensors: what each form is handed and how it is scaled. Through the real Trainer (``run.build_trainer``,
the one losslab trains with): one optimizer step of plain SGD on the same 16 VADER rows, no dropout, and the
parameter update of the user's form compared with the built-in loss's, at accumulation 1 (16 x 1) and 4
(4 x 4, against the built-in at 16 x 1). End to end: ``train.py`` with the forms dropped into a config dir.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch
from conftest import TESTS, compose, one_step_arguments, run_train, runs
from hydra.utils import instantiate
from transformers import Trainer
from user_losses import (CustomLossTrainer, CustomMSELoss, DeclaredMean, SmoothedLossTrainer,
                         SqrtLossTrainer, TutorialMSE, TutorialRMSE)

from losslab.errors import UsageError
from losslab.losses import MSE
from losslab.losses.adapt import BatchMean, SumReduced, as_compute_loss_func, wants_model_output
from losslab.losses.trainer_loss import AdaptedComputeLoss, TrainerLoss, adapt

USER_CONF = [f"hydra.searchpath=[file://{TESTS}/conf]"]


def _grad(fn, x, y, w, micro):
    w.grad = None
    n = torch.tensor(y.numel())
    for xs, ys in zip(x.chunk(micro), y.chunk(micro)):
        fn({"logits": xs @ w.T}, ys, num_items_in_batch=n).backward()
    return w.grad.clone()


def _regression_batch():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, generator=g), torch.randn(16, generator=g)
    return x, y, torch.randn(1, 3, generator=g, requires_grad=True)


# ------------------------------------------------------------------ on tensors
def test_losslab_and_trainer_signature_losses_are_used_as_they_are():
    loss = MSE()
    assert as_compute_loss_func(loss, "regression", accumulation_steps=8) is loss

    def mine(outputs, labels, num_items_in_batch=None):
        return outputs["logits"].sum()

    assert as_compute_loss_func(mine, "regression", accumulation_steps=8) is mine


def test_torch_loss_with_reduction_is_made_exact_under_accumulation():
    fn = as_compute_loss_func(torch.nn.MSELoss(), "regression", accumulation_steps=4)
    assert isinstance(fn, SumReduced)
    x, y, w = _regression_batch()
    torch.testing.assert_close(_grad(fn, x, y, w, 4), _grad(fn, x, y, w, 1), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(_grad(fn, x, y, w, 1), _grad(MSE(), x, y, w, 1), atol=1e-6, rtol=1e-5)
    ce = as_compute_loss_func(torch.nn.CrossEntropyLoss(), "single_label", accumulation_steps=4)
    z, lab = torch.randn(6, 3), torch.tensor([0, 2, -100, 1, 1, -100])
    assert ce({"logits": z}, lab).item() == pytest.approx(torch.nn.functional.cross_entropy(z, lab).item(), rel=1e-6)


def test_tutorial_module_gets_the_model_output_and_labels_shaped_like_its_prediction():
    from transformers.modeling_outputs import SequenceClassifierOutput

    assert wants_model_output(CustomMSELoss(), "regression") is True  # its code reads outputs.logits
    assert wants_model_output(TutorialMSE(), "regression") is False  # its code does tensor arithmetic on it
    fn = as_compute_loss_func(CustomMSELoss(), "regression")
    assert isinstance(fn, BatchMean) and fn.takes_outputs
    pred, y = torch.randn(5, 1), torch.randn(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nn.MSELoss warns when (5, 1) meets (5,) and broadcasts to (5, 5)
        got = fn(SequenceClassifierOutput(logits=pred), y)
    assert got.item() == pytest.approx(((pred[:, 0] - y) ** 2).mean().item(), rel=1e-6)
    broadcast = ((pred - y) ** 2).mean().item()  # what it computed on (batch,) labels: a different number
    assert got.item() != pytest.approx(broadcast, rel=1e-3)


def test_code_that_cannot_be_read_gets_the_model_output_when_it_asks_for_a_field():
    from transformers.modeling_outputs import SequenceClassifierOutput

    namespace = {}
    exec("def mine(outputs, labels):\n    return ((outputs.logits[:, 0] - labels) ** 2).mean()", namespace)
    mine = namespace["mine"]  # no source file: decided by calling it, not by reading its code
    assert wants_model_output(mine, "regression") is True
    fn = as_compute_loss_func(mine, "regression")
    assert fn.takes_outputs is True  # decided when the loss is built, before any batch
    pred, y = torch.randn(5, 1), torch.randn(5)
    assert fn(SequenceClassifierOutput(logits=pred), y).item() == pytest.approx(((pred[:, 0] - y) ** 2).mean().item(), rel=1e-6)
    assert fn.takes_outputs is True


@pytest.mark.parametrize("user", [TutorialMSE, CustomMSELoss, DeclaredMean])
def test_an_item_mean_is_rescaled_and_exact_under_accumulation(user):
    fn = as_compute_loss_func(user(), "regression", accumulation_steps=4, name="mine")
    assert isinstance(fn, BatchMean) and fn.rescale
    x, y, w = _regression_batch()
    if fn.takes_outputs:  # the model output object, as the Trainer hands it
        from transformers.modeling_outputs import SequenceClassifierOutput

        def call(out, labels, num_items_in_batch=None):
            return fn(SequenceClassifierOutput(logits=out["logits"]), labels, num_items_in_batch=num_items_in_batch)
    else:
        call = fn
    reference = _grad(MSE(), x, y, w, 1)
    torch.testing.assert_close(_grad(call, x, y, w, 4), reference, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(_grad(call, x, y, w, 1), reference, atol=1e-6, rtol=1e-5)


def test_a_batch_statistic_is_refused_under_accumulation_and_explained():
    with pytest.raises(UsageError, match=r"loss=rmse \(TutorialRMSE\).*not a mean over its items.*probe batch split "
                                         r"in two.*about 4x too large.*num_items_in_batch.*item_mean = True"):
        as_compute_loss_func(TutorialRMSE(), "regression", accumulation_steps=4, name="rmse")
    with pytest.raises(UsageError, match="2 process"):
        as_compute_loss_func(TutorialRMSE(), "regression", accumulation_steps=1, world_size=2)
    fn = as_compute_loss_func(TutorialRMSE(), "regression", accumulation_steps=1)  # one micro-batch: as it is
    assert isinstance(fn, BatchMean) and not fn.rescale
    pred, y = torch.randn(5, 1), torch.randn(5)
    assert fn({"logits": pred}, y).item() == pytest.approx(((pred[:, 0] - y) ** 2).mean().sqrt().item(), rel=1e-6)


def test_a_declaration_overrides_the_probe():
    rmse = TutorialRMSE()
    rmse.item_mean = True  # the user's word: rescaled without a probe
    assert as_compute_loss_func(rmse, "regression", accumulation_steps=4).rescale
    mean = TutorialMSE()
    mean.item_mean = False
    with pytest.raises(UsageError, match="item_mean = False"):
        as_compute_loss_func(mean, "regression", accumulation_steps=4)


def test_a_mean_that_counts_padding_is_not_an_item_mean():
    def masked_then_mean(logits, labels):  # the classic mistake: padding counted in the divisor
        per = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten().clamp_min(0), reduction="none")
        return (per * labels.flatten().ne(-100)).mean()

    def ignore_index(logits, labels):
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())

    with pytest.raises(UsageError, match="not a mean over its items"):
        as_compute_loss_func(masked_then_mean, "token_classification", accumulation_steps=2, width=5)
    assert as_compute_loss_func(ignore_index, "token_classification", accumulation_steps=2, width=5).rescale


def test_the_probe_gives_each_callable_what_its_code_was_written_for():
    def by_key(outputs, labels):
        return ((outputs["logits"][:, 0] - labels) ** 2).mean()

    def hidden(outputs, labels):  # a field the synthetic output lacks: still the output object
        return outputs.hidden_states[-1].mean() + ((outputs.logits[:, 0] - labels) ** 2).mean()

    def first_row(outputs, labels):  # runs on both: the tensor, as it always was
        return (outputs[0] - labels).abs().mean()

    def wrong_width(logits, labels):  # fails on the probe batch as a tensor, and uses it as one
        return torch.nn.functional.cross_entropy(logits.view(-1, 7), labels)

    def declared(logits, labels):
        return logits.mean()

    declared.takes_outputs = True
    assert wants_model_output(by_key, "regression") is True
    assert wants_model_output(hidden, "regression") is True
    assert wants_model_output(first_row, "regression") is False
    assert wants_model_output(wrong_width, "single_label", width=3) is False
    assert wants_model_output(declared, "regression") is True
    calls = []
    counted = BatchMean(lambda logits, labels: calls.append(1) or logits.mean(), "regression")
    assert counted.takes_outputs is False and len(calls) == 1  # decided once, when built
    counted({"logits": torch.randn(4, 1)}, torch.randn(4))
    counted({"logits": torch.randn(4, 1)}, torch.randn(4))
    assert len(calls) == 3  # then one call per batch


# ------------------------------------------------------------------ the Trainer mixin, method by method
class TinyClassifier(torch.nn.Module):
    """A sequence classifier in a few weights: mean of per-token embeddings."""

    def __init__(self, num_labels=3, vocab_size=50):
        super().__init__()
        self.config = SimpleNamespace(num_labels=num_labels, vocab_size=vocab_size)
        self.emb = torch.nn.Embedding(vocab_size, num_labels)

    def forward(self, input_ids, attention_mask=None, **kwargs):
        from transformers.modeling_outputs import SequenceClassifierOutput

        return SequenceClassifierOutput(logits=self.emb(input_ids).mean(1))


class SumOverItemsTrainer(Trainer):
    """The Trainer docs' current pattern: takes num_items_in_batch and divides a sum by it."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = torch.nn.functional.cross_entropy(outputs.logits, labels, reduction="sum")
        loss = loss / (num_items_in_batch if num_items_in_batch is not None else labels.numel())
        return (loss, outputs) if return_outputs else loss


class IgnoresNumItemsTrainer(Trainer):
    """Takes num_items_in_batch (the new signature) but returns the micro-batch's mean anyway."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = torch.nn.functional.cross_entropy(outputs.logits, labels)
        return (loss, outputs) if return_outputs else loss


def _stub(user_class, accumulation=4, item_mean=None, vocab_size=50):
    """An adapted trainer without Trainer.__init__: only what the mixin reads."""
    cls = adapt(user_class, "single_label", "mine", item_mean)
    trainer = cls.__new__(cls)
    trainer.args = SimpleNamespace(gradient_accumulation_steps=accumulation, world_size=1, device="cpu", n_gpu=1,
                                   average_tokens_across_devices=False)
    torch.manual_seed(0)
    trainer.model = TinyClassifier(vocab_size=vocab_size)
    return trainer


def _inputs(n=8, labels=None):
    g = torch.Generator().manual_seed(1)
    return {"input_ids": torch.randint(0, 50, (n, 4), generator=g), "attention_mask": torch.ones(n, 4, dtype=int),
            "labels": torch.randint(0, 3, (n,), generator=g) if labels is None else labels}


def test_adapt_sets_the_mode_from_the_signature():
    assert issubclass(adapt(SmoothedLossTrainer, "single_label"), AdaptedComputeLoss)
    assert adapt(SmoothedLossTrainer, "single_label")._losslab_mode == "mean"  # old signature: per micro-batch
    assert adapt(SumOverItemsTrainer, "single_label")._losslab_mode == "check"  # takes it: seen on a batch
    declared = type("Declared", (SmoothedLossTrainer,), {"loss_is_scaled_for_ga": True})
    assert adapt(declared, "single_label")._losslab_mode == "as_is"
    assert adapt(SmoothedLossTrainer, "single_label").__name__ == "SmoothedLossTrainer"


def test_call_user_compute_loss_adapts_the_old_signature_and_explains_errors():
    trainer = _stub(SmoothedLossTrainer)
    inputs = _inputs()
    expected = torch.nn.functional.cross_entropy(trainer.model(**inputs).logits, inputs["labels"], label_smoothing=0.1)
    got = trainer._call_user_compute_loss(trainer.model, dict(inputs), False, torch.tensor(100))  # N not passed on
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    broken = _stub(CustomLossTrainer)
    with pytest.raises(UsageError) as err:
        broken._call_user_compute_loss(broken.model, dict(inputs), False, None)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("loss=mine: user_losses.CustomLossTrainer.compute_loss failed: RuntimeError: shape "
                              "'[-1, 50]' is invalid")
    assert "(at user_losses.py:" in message and "self.model.config.num_labels" in message


def test_explain_error_hints_at_num_labels_only_when_the_error_holds_the_vocab_size():
    trainer = _stub(SmoothedLossTrainer)
    plain = str(trainer._explain_error(ValueError("shape '[-1, 7]' is invalid")))
    assert plain == ("loss=mine: user_losses.SmoothedLossTrainer.compute_loss failed: ValueError: shape '[-1, 7]' is "
                     "invalid")
    assert "num_labels" in str(trainer._explain_error(RuntimeError("shape '[-1, 50]' is invalid for input of size 8")))
    assert "num_labels" not in str(trainer._explain_error(RuntimeError("size 500 is wrong")))


def test_probe_item_mean_tells_a_mean_from_what_is_not_one():
    trainer = _stub(SmoothedLossTrainer)
    trainer.model.train()
    ok, seen = trainer._probe_item_mean(trainer.model, _inputs())
    assert ok and "item-weighted mean" in seen
    assert trainer.model.training  # back in training mode
    ok, seen = _stub(SqrtLossTrainer)._probe_item_mean(trainer.model, _inputs())
    assert not ok and "item-weighted mean of the parts is" in seen
    assert trainer._probe_item_mean(trainer.model, _inputs(1)) == (
        False, "its micro-batches hold one example, which cannot be split to check")
    ok, seen = _stub(CustomLossTrainer)._probe_item_mean(trainer.model, _inputs())
    assert not ok and seen == "it raised RuntimeError on part of a micro-batch"


def test_values_run_parts_of_a_micro_batch_in_evaluation_mode_and_leave_it_training():
    trainer = _stub(SmoothedLossTrainer)
    inputs = _inputs(labels=torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    seen = trainer._values(trainer.model, inputs, [(slice(None), None), (slice(0, 3), None), (slice(3, None), None)])
    assert [count for _, count in seen] == [8.0, 3.0, 5.0]
    assert len({value for value, _ in seen}) == 3 and trainer.model.training
    assert inputs["labels"].shape == (8,)  # compute_loss popped the labels of copies only


def test_decide_rescale_runs_as_is_rescales_or_refuses():
    uses = _stub(SumOverItemsTrainer)
    uses._decide_rescale(uses.model, _inputs())
    assert uses._losslab_mode == "as_is" and uses._losslab_rescale is None
    declared = _stub(SqrtLossTrainer, item_mean=True)  # the user's word: no probe
    declared._decide_rescale(declared.model, _inputs(1))
    assert declared._losslab_rescale is True
    probed = _stub(IgnoresNumItemsTrainer)  # takes num_items_in_batch, ignores it: probed as a mean
    probed._decide_rescale(probed.model, _inputs())
    assert probed._losslab_mode == "check" and probed._losslab_rescale is True
    with pytest.raises(UsageError, match=r"\(its micro-batches hold one example, which cannot be split to check\)"):
        _stub(SmoothedLossTrainer)._decide_rescale(uses.model, _inputs(1))


def test_uses_num_items_is_seen_from_the_value():
    trainer = _stub(SumOverItemsTrainer)
    assert trainer._uses_num_items(trainer.model, _inputs()) is True
    assert _stub(IgnoresNumItemsTrainer)._uses_num_items(trainer.model, _inputs()) is False
    assert _stub(SmoothedLossTrainer)._uses_num_items(trainer.model, _inputs()) is False  # old signature


def test_scale_to_items_makes_a_mean_a_sum_over_num_items():
    trainer = _stub(SmoothedLossTrainer)
    labels = torch.tensor([0, 1, -100, 2, 1])
    got = trainer._scale_to_items(torch.tensor(2.0), labels, torch.tensor(10))
    assert got.item() == pytest.approx(2.0 * 4 / 10) and trainer.loss_is_scaled_for_ga is True
    loss, extra = trainer._scale_to_items((torch.tensor(2.0), "outputs"), labels, torch.tensor(10))
    assert loss.item() == pytest.approx(0.8) and extra == "outputs"
    none = trainer._scale_to_items(torch.tensor(2.0), torch.full((3,), -100), torch.tensor(10))
    assert none.item() == 0.0 and none.requires_grad


def test_compute_loss_decides_once_on_the_first_training_micro_batch():
    mean = _stub(SmoothedLossTrainer)
    inputs = _inputs()
    plain = mean._call_user_compute_loss(mean.model, dict(inputs), False, None)
    got = mean.compute_loss(mean.model, dict(inputs), num_items_in_batch=torch.tensor(32))
    assert mean._losslab_rescale is True and got.item() == pytest.approx(plain.item() * 8 / 32, rel=1e-6)
    uses = _stub(SumOverItemsTrainer)
    got = uses.compute_loss(uses.model, dict(inputs), num_items_in_batch=torch.tensor(32))
    assert uses._losslab_mode == "as_is" and uses._losslab_rescale is None
    assert got.item() == pytest.approx(uses._call_user_compute_loss(uses.model, dict(inputs), False, 32).item())
    with pytest.raises(UsageError, match=r"^loss=mine: .*SqrtLossTrainer.compute_loss returns a loss per micro-batch "
                                         r"that is not a mean over its items.*about 4x too large"):
        _stub(SqrtLossTrainer).compute_loss(mean.model, dict(inputs), num_items_in_batch=torch.tensor(32))
    with pytest.raises(UsageError, match=r"\(item_mean: false\)"):
        _stub(IgnoresNumItemsTrainer, item_mean=False).compute_loss(mean.model, dict(inputs),
                                                                     num_items_in_batch=torch.tensor(32))
    one = _stub(SqrtLossTrainer, accumulation=1)  # one micro-batch per step on one process: as it is
    assert one.compute_loss(one.model, dict(inputs), num_items_in_batch=torch.tensor(8)).item() > 0


def test_trainer_loss_checks_the_class_before_anything_loads():
    with pytest.raises(UsageError, match="cannot import trainer_class 'user_losses.Nope'"):
        TrainerLoss("user_losses.Nope").bind("single_label", name="x")
    with pytest.raises(UsageError, match="not a transformers.Trainer subclass"):
        TrainerLoss("user_losses.TutorialMSE").bind("single_label", name="x")
    with pytest.raises(UsageError, match="does not override compute_loss"):
        TrainerLoss("transformers.Trainer").bind("single_label", name="x")
    with pytest.raises(UsageError, match="Seq2SeqTrainer"):
        TrainerLoss("user_losses.SmoothedLossTrainer").bind("seq2seq", name="x")
    with pytest.raises(UsageError, match="item_mean: false"):
        TrainerLoss("user_losses.SmoothedLossTrainer", item_mean=False).bind("single_label", 4, name="x")
    bound = as_compute_loss_func(TrainerLoss("user_losses.SmoothedLossTrainer"), "single_label", 4, name="x")
    assert bound.trainer_class.__name__ == "SmoothedLossTrainer"


# ------------------------------------------------------------------ through the real Trainer
NO_DROPOUT = ["+model.architecture.hidden_dropout_prob=0.0", "+model.architecture.attention_probs_dropout_prob=0.0"]


def one_step(task: str, loss_name: str, batch: int, accum: int, tmp_path):
    """One SGD step with ``loss_name`` through ``run.build_trainer``: (parameter update, logged loss)."""

    from losslab import models
    from losslab.run import build_trainer, compute_loss_func
    from losslab.tasks import data, encoding

    cfg = compose([*USER_CONF, f"task={task}", f"loss={loss_name}", "model=tiny", "task.max_train_samples=16",
                   "task.max_eval_samples=8", f"trainer.gradient_accumulation_steps={accum}", *NO_DROPOUT])
    loss = instantiate(cfg.loss)
    loss_fn = compute_loss_func(cfg, loss)
    torch.manual_seed(0)
    model, tok = models.build(cfg.model, cfg.task, width=models.head_width(loss, cfg.task))
    splits, label_names = data.load_splits(cfg.task)
    encoded = encoding.encode(splits, tok, cfg.task)
    args = one_step_arguments(tmp_path / f"{loss_name}-{batch}x{accum}", batch, accum)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = build_trainer(cfg, loss_fn, model, tok, encoded, args, label_names=label_names)
    trainer.train()
    update = {n: (p.detach() - before[n]) for n, p in model.named_parameters()}
    logged = next(h["loss"] for h in trainer.state.log_history if "loss" in h)
    return update, logged, trainer


def assert_same_update(got, reference, what):
    biggest = max(v.abs().max().item() for v in reference.values())
    assert biggest > 1e-6, "the step changed nothing: the test would not see a wrong scale"
    for name in reference:
        torch.testing.assert_close(got[name], reference[name], atol=min(1e-6, biggest * 1e-2), rtol=0,
                                   msg=f"{what}: {name}")


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    return {task: one_step(task, loss, 16, 1, tmp)[:2]
            for task, loss in (("regression", "mse"), ("sentiment", "label_smoothing"))}


@pytest.mark.slow  # trains: one real Trainer step
@pytest.mark.parametrize("batch,accum", [(16, 1), (4, 4)])
def test_tutorial_module_trains_exactly_like_mse(batch, accum, references, tmp_path):
    update, logged, trainer = one_step("regression", "custom_mse", batch, accum, tmp_path)
    assert trainer.compute_loss_func.takes_outputs
    reference, logged_reference = references["regression"]
    assert_same_update(update, reference, f"custom_mse {batch}x{accum}")
    assert logged == pytest.approx(logged_reference, rel=1e-5)


@pytest.mark.slow  # trains: one real Trainer step
@pytest.mark.parametrize("batch,accum", [(16, 1), (4, 4)])
def test_trainer_subclass_trains_exactly_like_label_smoothing(batch, accum, references, tmp_path):
    update, logged, trainer = one_step("sentiment", "smoothed_trainer", batch, accum, tmp_path)
    assert type(trainer).__name__ == "SmoothedLossTrainer" and trainer.compute_loss_func is None
    reference, logged_reference = references["sentiment"]
    assert_same_update(update, reference, f"smoothed_trainer {batch}x{accum}")
    assert logged == pytest.approx(logged_reference, rel=1e-5)


@pytest.mark.slow  # trains: one real Trainer step
def test_the_docs_trainer_fails_in_one_line_naming_the_class(tmp_path):
    with pytest.raises(UsageError) as err:
        one_step("sentiment", "docs_trainer", 4, 1, tmp_path)
    message = str(err.value)
    assert "\n" not in message
    print(message)
    assert message.startswith("loss=")  # outside train.py the option is named by its _target_
    assert ": user_losses.CustomLossTrainer.compute_loss failed: RuntimeError: shape '[-1, 30522]' is invalid" in message
    assert "(at user_losses.py:" in message and "self.model.config.num_labels" in message


@pytest.mark.slow  # trains: one real Trainer step
def test_a_trainer_subclass_that_is_no_item_mean_is_refused_under_accumulation(tmp_path):
    with pytest.raises(UsageError, match=r"SqrtLossTrainer.compute_loss returns a loss per micro-batch that is not "
                                         r"a mean over its items.*about 4x too large"):
        one_step("sentiment", "sqrt_trainer", 4, 4, tmp_path)
    update, _, _ = one_step("sentiment", "sqrt_trainer", 16, 1, tmp_path)  # one micro-batch: as it is
    assert max(v.abs().max().item() for v in update.values()) > 1e-6


# ------------------------------------------------------------------ end to end: train.py, Hydra, MLflow
@pytest.mark.slow
def test_tutorial_module_from_a_config_dir_trains_under_accumulation(tmp_path):
    out = run_train([*USER_CONF, "task=regression", "loss=custom_mse", "trainer.gradient_accumulation_steps=2",
                     "debug=quick"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = runs(tmp_path)
    assert run.info.status == "FINISHED"
    assert "test_pearson" in run.data.metrics


@pytest.mark.slow
def test_a_batch_statistic_is_refused_before_anything_loads(tmp_path):
    out = run_train([*USER_CONF, "loss=tutorial_rmse", "trainer.gradient_accumulation_steps=2", "debug=quick"], tmp_path)
    assert out.returncode == 2
    assert "loss=tutorial_rmse (TutorialRMSE) returns one number per micro-batch" in out.stderr
    assert runs(tmp_path) == []


@pytest.mark.slow
def test_trainer_subclasses_run_in_a_sweep_and_the_docs_one_fails_in_one_line(tmp_path):
    out = run_train(["-m", *USER_CONF, "task=sentiment", "loss=smoothed_trainer,docs_trainer",
                     "trainer.gradient_accumulation_steps=2", "debug=quick"], tmp_path)
    assert out.returncode == 1, out.stderr[-3000:]
    children = {r.data.tags.get("choice.loss"): r for r in runs(tmp_path) if r.data.tags.get("choice.loss")}
    assert children["smoothed_trainer"].info.status == "FINISHED"
    assert "test_macro_f1" in children["smoothed_trainer"].data.metrics
    failed = children["docs_trainer"]
    assert failed.info.status == "FAILED"
    assert "user_losses.CustomLossTrainer.compute_loss failed: RuntimeError: shape '[-1, 30522]'" in failed.data.tags["error"]
    line = next(ln for ln in out.stderr.splitlines() if "losslab: error: job" in ln and "CustomLossTrainer" in ln)
    assert "self.model.config.num_labels" in line
