"""A user's own loss, in the forms people bring: adapted to be exact under accumulation, or refused.

On tensors: what each form is handed and how it is scaled. Through the real Trainer (``run.build_trainer``,
the one losslab trains with): one optimizer step of plain SGD on the same 16 VADER rows, no dropout, and the
parameter update of the user's form compared with the built-in loss's, at accumulation 1 (16 x 1) and 4
(4 x 4, against the built-in at 16 x 1). End to end: ``train.py`` with the forms dropped into a config dir.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import TESTS, compose, one_step_arguments, run_train, runs
from hydra.utils import instantiate
from user_losses import CustomMSELoss, DeclaredMean, TutorialMSE, TutorialRMSE

from losslab.errors import UsageError
from losslab.losses import MSE
from losslab.losses.adapt import BatchMean, SumReduced, as_compute_loss_func, reads_model_output
from losslab.losses.trainer_loss import TrainerLoss

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

    assert reads_model_output(CustomMSELoss()) is True  # its code reads outputs.logits
    assert reads_model_output(TutorialMSE()) is False  # its code does tensor arithmetic on it
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
    mine = namespace["mine"]  # no source file: losslab cannot read its code beforehand
    assert reads_model_output(mine) is None
    fn = as_compute_loss_func(mine, "regression")
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
