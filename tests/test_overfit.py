"""Overfit 32 rows, one test per problem kind: the tiny model, a high learning rate and nothing else in the
way (no dropout, no decay, no schedule) must drive the training loss far below where it started, and the task's
own metric suite, run on those same 32 rows, must beat what chance gets there. A loss whose gradient points the
wrong way, labels misaligned with their inputs, or a metric reading the wrong column fails here, where a run of
6 steps (debug=quick) passes. The real Trainer, loss and metric wiring (``losslab.run.build_trainer``)."""

from __future__ import annotations

import pytest
from tiny_runs import setup

pytestmark = pytest.mark.slow


def overfit(task: str, loss: str, steps: int, lr: float, tmp_path, extra=()):
    """Train on the first 32 train rows (all of them each step); return the first and the last training loss
    and the suite's metrics on those 32 rows before and after."""
    run = setup(task, loss, tmp_path, ["task.max_train_samples=32", "task.max_eval_samples=4",
                                       f"trainer.max_steps={steps}", f"trainer.learning_rate={lr}",
                                       "trainer.per_device_train_batch_size=32", *extra])
    rows = run.encoded["train"]
    assert len(rows) == 32
    trainer = run.trainer()
    before = trainer.evaluate(rows)
    trainer.train()
    after = trainer.evaluate(rows)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == steps
    return losses[0], losses[-1], before, after


def test_regression_overfits(tmp_path):
    first, last, before, after = overfit("regression", "mse", 40, 3e-3, tmp_path)
    assert last < 0.2 * first
    assert after["eval_pearson"] > 0.8 and after["eval_r2"] > 0.5  # chance: pearson 0, r2 <= 0


def test_single_label_overfits(tmp_path):
    first, last, before, after = overfit("sentiment", "cross_entropy", 20, 3e-3, tmp_path)
    assert last < 0.2 * first
    assert after["eval_accuracy"] >= 0.95 and after["eval_macro_f1"] > 0.9  # chance: 0.5 with two classes


def test_multi_label_overfits(tmp_path):
    first, last, before, after = overfit("multilabel", "bce", 40, 1e-2, tmp_path)
    assert last < 0.4 * first
    assert after["eval_micro_f1"] > 0.85 and after["eval_lrap"] > max(0.9, before["eval_lrap"] + 0.1)


def test_soft_labels_overfit(tmp_path):
    first, last, before, after = overfit("rating_dist", "soft_cross_entropy", 40, 1e-2, tmp_path)
    # a cross-entropy to the raters' distribution: it cannot fall below that distribution's entropy
    assert last < first - 0.5
    assert after["eval_kl"] < 0.3 * before["eval_kl"] and after["eval_accuracy"] > 0.5  # chance: 1/9 levels


def test_token_classification_overfits(tmp_path):
    first, last, before, after = overfit("ner", "cross_entropy", 30, 1e-2, tmp_path)
    assert last < 0.2 * first
    assert after["eval_accuracy"] > 0.95 and after["eval_f1"] > 0.5  # chance: f1 near 0


def test_language_model_overfits(tmp_path):
    first, last, before, after = overfit("lm", "token_cross_entropy", 20, 2e-2, tmp_path, ["task.max_length=24"])
    assert last < 0.5 * first
    assert after["eval_perplexity"] < 200 < 20000 < before["eval_perplexity"]  # chance: about the vocabulary, 30,522


def test_seq2seq_overfits(tmp_path):
    first, last, before, after = overfit("seq2seq", "cross_entropy", 40, 1e-2, tmp_path)
    assert last < 0.3 * first
    assert after["eval_rougeL"] > max(0.2, before["eval_rougeL"] + 0.15)  # of generated text; chance: about 0
