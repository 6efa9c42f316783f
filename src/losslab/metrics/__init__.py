"""Metric suites: ``evaluate`` modules shipped in this folder and loaded by local path (hub loading fails
offline). One suite per problem kind, independent of the loss, so runs with different losses compare."""

from __future__ import annotations

import functools
from pathlib import Path

SUITES_DIR = Path(__file__).resolve().parent


def suites() -> list[str]:
    return sorted(p.name for p in SUITES_DIR.iterdir() if (p / f"{p.name}.py").is_file())


@functools.lru_cache(maxsize=None)
def load(name: str):
    """The ``evaluate`` module of a suite, loaded from its local folder (once per process: the jobs of a sweep
    that run in one process share it)."""
    import evaluate

    if name not in suites():
        raise ValueError(f"task.metrics={name!r} is not a metric suite; choose one of: {', '.join(suites())}")
    return evaluate.load(str(SUITES_DIR / name))


# A two-row input per suite: enough to learn the names of the metrics it reports.
_PROBES = {
    "regression": lambda k: ([0.0, 1.0], [0.0, 2.0]),
    "classification": lambda k: ([[1.0] + [0.0] * (k - 1), [0.0, 1.0] + [0.0] * (k - 2)], [0, 1]),
    "multilabel": lambda k: ([[1.0] * k, [-1.0] * k], [[1] * k, [0] * k]),
    "entities": lambda k: ([[0, 1]], [[0, 1]]),
    "perplexity": lambda k: ([[1.0, 2.0]], [[0, 0]]),
    "ratings": lambda k: ([[0.0] * k, [1.0] * k], [[1.0 / k] * k, [1.0 / k] * k]),
    "generation": lambda k: (["a small dog", "a cat"], ["a small dog", "a big cat"]),
}


def metric_names(name: str, num_labels: int | None = None, label_names: list[str] | None = None) -> list[str]:
    """The metrics a suite reports (it is run once on a tiny synthetic input), e.g. to check an objective."""
    k = max(int(num_labels or 2), 2)
    names = list(label_names) if label_names else ["B-x", "I-x"] + [f"L{i}" for i in range(k - 2)]
    preds, refs = _PROBES[name](k) if name in _PROBES else (None, None)
    if preds is None:
        return []
    extra = {"label_names": names} if name in ("multilabel", "entities") else {}
    return sorted(load(name).compute(predictions=preds, references=refs, **extra))


def compute_metrics(name: str, label_names: list[str] | None = None, tokenizer=None, suite=None):
    """A Trainer ``compute_metrics`` that feeds predictions (logits; generated token ids for the generation
    suite, decoded with ``tokenizer``) and labels to the suite (``suite``: its module, if already loaded)."""
    import numpy as np

    suite = suite or load(name)
    extra = {"label_names": label_names} if name in ("multilabel", "entities") and label_names else {}

    def decode(ids):
        ids = np.where(np.asarray(ids) < 0, tokenizer.pad_token_id, ids)  # -100: the Trainer's padding
        return tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)

    def compute(eval_pred):
        preds, labels = eval_pred.predictions, eval_pred.label_ids
        preds = preds[0] if isinstance(preds, tuple) else preds
        if name == "generation":
            return suite.compute(predictions=decode(preds), references=decode(labels))
        preds = np.asarray(preds)
        if name in ("entities", "perplexity"):  # rows of different lengths were padded with -100 by the Trainer
            return suite.compute(predictions=[list(r) for r in preds], references=[list(r) for r in labels], **extra)
        if name == "regression" and preds.ndim == 2 and preds.shape[1] == 1:
            preds = preds[:, 0]
        return suite.compute(predictions=preds, references=np.asarray(labels), **extra)

    return compute


def argmax_logits(logits, labels=None):
    """``preprocess_logits_for_metrics`` for token tasks: keep the predicted ids, not (tokens x tags) floats."""
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)


def next_token_nll(logits, labels):
    """``preprocess_logits_for_metrics`` for causal LM: the NLL of each real next token (-1 elsewhere), so
    perplexity is computed the same way whatever the training loss, without holding (tokens x vocab) floats."""
    import torch

    if isinstance(logits, tuple):
        logits = logits[0]
    z, y = logits[:, :-1, :].float(), labels[:, 1:]
    keep = y != -100
    nll = torch.nn.functional.cross_entropy(z.transpose(1, 2), y.clamp_min(0), reduction="none")
    return torch.where(keep, nll, torch.full_like(nll, -1.0))


# The one source of truth for a metric's direction. The Trainer's ``greater_is_better`` (conf/trainer), the
# ``task.greater_is_better`` the sweepers read (conf/task, conf/hparams_search: through the
# ``${losslab.greater_is_better:<metric>}`` resolver) and the report all follow from these two sets; a user
# who sets a direction against them is refused by ``preflight``. Every metric a suite reports is in one of
# them (per-label ``f1_<label>`` / ``ap_<label>`` are better when larger); tests/test_metrics.py checks it.
LOWER_IS_BETTER = frozenset({"mse", "rmse", "mae", "log_loss", "ece", "kl", "level_mae", "nll", "perplexity"})
HIGHER_IS_BETTER = frozenset({
    "pearson", "spearman", "r2", "accuracy", "macro_f1", "micro_f1", "subset_accuracy", "lrap", "macro_ap",
    "precision", "recall", "f1", "rougeL", "chrf", "exact_match",
})
_HIGHER_PREFIXES = ("f1_", "ap_")


def greater_is_better(metric: str) -> bool:
    """Whether a larger value of a suite's metric is better (``mae``: False). Unknown names count as larger."""
    return metric not in LOWER_IS_BETTER


def has_direction(metric: str) -> bool:
    """Whether ``metric``'s direction is declared here (not merely assumed)."""
    return metric in LOWER_IS_BETTER or metric in HIGHER_IS_BETTER or metric.startswith(_HIGHER_PREFIXES)
