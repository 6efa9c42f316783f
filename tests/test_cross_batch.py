"""Evaluation over several batches: the Trainer concatenates the batches' predictions and labels, padding rows of
different lengths with -100, and the entity, perplexity and generation suites must read through that padding.
With the quick settings (32 rows, a batch of 128) every evaluation is one batch, so here the same model on the
same rows is evaluated in one batch and in batches of 5 (length order: each padded to its own length); every
metric must be the same. The model is first trained a little on those rows, so that its tags, next-token
losses and generated texts differ from row to row and from token to token (a random one predicts one tag
everywhere and generates no word of a definition: every metric 0, whatever the padding)."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_runs import setup

pytestmark = pytest.mark.slow

# task, loss, evaluation rows, training steps on them first
CASES = [("ner", "cross_entropy", 32, 20), ("lm", "token_cross_entropy", 32, 10), ("seq2seq", "cross_entropy", 12, 25)]
SMALL = 5


@pytest.mark.parametrize("task,loss,rows,steps", CASES)
def test_several_padded_batches_score_as_one_batch(task, loss, rows, steps, tmp_path):
    run = setup(task, loss, tmp_path, [f"task.max_eval_samples={rows}", f"trainer.max_steps={steps}",
                                       "trainer.learning_rate=1e-2", f"trainer.per_device_train_batch_size={rows}"])
    rows_ = run.encoded["validation"]
    run.encoded["train"] = rows_
    run.trainer().train()
    widths = [len(labels) for labels in rows_["labels"]]  # the small batches' labels: of different widths
    assert len({max(widths[i:i + SMALL]) for i in range(0, rows, SMALL)}) > 1

    out = {batch: run.trainer(per_device_eval_batch_size=batch).predict(rows_, metric_key_prefix="eval")
           for batch in (128, SMALL)}
    one, several = ({k: v for k, v in out[b].metrics.items() if k != "eval_loss"  # a mean of per-batch means
                     and not k.endswith(("runtime", "per_second", "preparation_time"))} for b in (128, SMALL))
    assert set(one) == set(several) and len(one) >= 2, one
    for key, value in one.items():
        assert several[key] == pytest.approx(value, rel=1e-5, abs=1e-6), (key, one, several)
    # not a trivial agreement: the metrics are neither all 0 nor all perfect
    assert any(0 < v < (100 if k.endswith("chrf") else 1) or k.endswith(("nll", "perplexity")) for k, v in one.items()
               ), one
    if task == "ner":  # the concatenation padded the tags predicted: -100 where the single batch has a tag
        preds = {b: np.asarray(out[b].predictions) for b in (128, SMALL)}
        assert (preds[SMALL] == -100).sum() > (preds[128] == -100).sum()
    if task == "lm":  # in one batch the loss is the suite's NLL: both average over the next tokens, not the labels
        assert out[128].metrics["eval_loss"] == pytest.approx(one["eval_nll"], rel=1e-5)
