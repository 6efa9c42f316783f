"""Metric suites: ``evaluate`` modules shipped in this folder and loaded by local path (hub loading fails
offline). One suite per problem kind, independent of the loss, so runs with different losses compare.

A suite's maths is written once, in ``metrics/<name>/score.py``: ``score(predictions, labels, weights)``, every
metric under each row of weights over the items (``losslab.metrics.weighted``). Its ``evaluate`` module (what the
Trainer runs at evaluation) calls it with every item once; the report's bootstrap over test items
(``losslab.report.items``) with how often each resample draws each item. :class:`Suite` describes each suite
(directions, probe, form) and exposes that ``score``."""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable
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


@dataclasses.dataclass(frozen=True)
class Suite:
    """One metric suite in one place: its ``evaluate`` module (``metrics/<name>/``), its maths (:meth:`score`,
    ``metrics/<name>/score.py``), the direction of every metric it reports, what of a model's logits it judges
    and how predictions and references reach it."""

    name: str
    lower: frozenset = frozenset()  # its metrics that are better when lower
    higher: frozenset = frozenset()  # ... and better when higher
    probe: Callable | None = None  # k labels -> a two-row (predictions, references) input: learns its names
    reduce: Callable | None = None  # the Trainer's preprocess_logits_for_metrics; None: the loss's ``predictions``
    form: str = "arrays"  # values (one per item) | arrays | rows (padded with -100) | texts (generated token ids)
    takes_label_names: bool = False
    levels: bool = False  # its rows carry a loss's own predicted level after the scores (metrics/levels.py)
    vectorized: bool = True  # its score takes all resamples at once (False: one at a time, the report draws fewer)
    # metrics the report derives from the per-item predictions with something fitted on validation and applied
    # to test (losslab.report.build): ``tuned_`` at per-label thresholds, ``ts_`` after temperature scaling
    derived: frozenset = frozenset()

    def module(self):
        return load(self.name)

    def scorer(self) -> Callable | None:
        """``score(predictions, labels, weights, ...)`` of ``metrics/<name>/score.py``; None for a suite that has
        only its ``evaluate`` module."""
        if not (SUITES_DIR / self.name / "score.py").is_file():
            return None
        return importlib.import_module(f"{__name__}.{self.name}.score").score

    def score(self, predictions, labels, weights=None, label_names: list[str] | None = None,
              thresholds=None) -> dict:
        """metric -> its values (a numpy array, one per row of ``weights``): the suite on the items, each item
        counted as often as a row of ``weights`` (rows, items) says; None: every item once (the plain metric,
        what the Trainer logs). ``label_names`` reach a suite that takes them; ``thresholds`` a suite with a
        cut-off (multilabel). A suite without ``score.py`` runs its ``evaluate`` module on each row's items."""
        import numpy as np

        from losslab.metrics.weighted import as_weights, expand

        w = as_weights(weights, len(labels))
        extra = {"label_names": label_names} if self.takes_label_names else {}
        if thresholds is not None:
            extra["thresholds"] = thresholds
        score = self.scorer()
        with np.errstate(divide="ignore", invalid="ignore"):
            if score is not None:
                return score(predictions, labels, w, **extra)
        predictions, labels = np.asarray(predictions), np.asarray(labels)
        out: dict[str, list[float]] = {}
        for row in w:
            idx = expand(row)
            for k, v in self._module_compute(self.module(), predictions[idx], labels[idx], extra).items():
                out.setdefault(k, []).append(float(v))
        return {k: np.asarray(v) for k, v in out.items()}

    def names(self, num_labels: int | None = None, label_names: list[str] | None = None) -> list[str]:
        """The metrics it reports (it is run once on its probe), e.g. to check an objective; [] without one."""
        if self.probe is None:
            return []
        k = max(int(num_labels or 2), 2)
        names = list(label_names) if label_names else ["B-x", "I-x"] + [f"L{i}" for i in range(k - 2)]
        preds, refs = self.probe(k)
        return sorted(self.score(preds, refs, label_names=names))

    def preprocess_logits(self, loss_fn):
        """What of the logits the suite judges (a loss with extra head outputs, gaussian_nll's mean and variance,
        says which part is its prediction); None for generated token ids: nothing to reduce. A suite of
        ``levels`` gets, after them, the level of a loss that decodes its own (``predict_levels``: coral, corn)."""
        if self.form == "texts":
            return None
        reduce = self.reduce or getattr(loss_fn, "predictions", None)
        if self.levels:
            from losslab.metrics.levels import with_levels

            return with_levels(loss_fn, reduce)
        return reduce

    def compute_metrics(self, label_names: list[str] | None = None, tokenizer=None):
        """A Trainer ``compute_metrics`` that hands predictions and labels to the suite in its form (generated
        token ids decoded with ``tokenizer``)."""
        import numpy as np

        module = self.module()
        extra = {"label_names": label_names} if self.takes_label_names and label_names else {}

        def decode(ids):
            ids = np.where(np.asarray(ids) < 0, tokenizer.pad_token_id, ids)  # -100: the Trainer's padding
            return tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)

        def compute(eval_pred):
            preds, labels = eval_pred.predictions, eval_pred.label_ids
            preds = preds[0] if isinstance(preds, tuple) else preds
            if self.form == "texts":
                preds, labels = decode(preds), decode(labels)
            return self._module_compute(module, preds, labels, extra)

        return compute

    def _module_compute(self, module, preds, labels, extra: dict) -> dict:
        """The ``evaluate`` module on predictions and labels handed over in the suite's form."""
        import numpy as np

        if self.form == "texts":
            return module.compute(predictions=list(preds), references=list(labels))
        preds = np.asarray(preds)
        if self.form == "rows":  # rows of different lengths were padded with -100 by the Trainer
            return module.compute(predictions=[list(r) for r in preds], references=[list(r) for r in labels],
                                  **extra)
        if self.form == "values" and preds.ndim == 2 and preds.shape[1] == 1:
            preds = preds[:, 0]
        return module.compute(predictions=preds, references=np.asarray(labels), **extra)


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


SUITES = {s.name: s for s in (
    Suite("regression", frozenset({"mse", "rmse", "mae"}), frozenset({"pearson", "spearman", "r2"}),
          lambda k: ([0.0, 1.0], [0.0, 2.0]), form="values"),
    Suite("classification", frozenset({"log_loss", "ece"}), frozenset({"accuracy", "macro_f1"}),
          lambda k: ([[1.0] + [0.0] * (k - 1), [0.0, 1.0] + [0.0] * (k - 2)], [0, 1]),
          derived=frozenset({"ts_ece", "ts_log_loss"})),
    Suite("multilabel", frozenset(), frozenset({"micro_f1", "macro_f1", "subset_accuracy", "lrap", "macro_ap"}),
          lambda k: ([[1.0] * k, [-1.0] * k], [[1] * k, [0] * k]), takes_label_names=True,
          derived=frozenset({"tuned_macro_f1", "tuned_micro_f1"})),
    Suite("entities", frozenset(), frozenset({"precision", "recall", "f1", "accuracy"}),
          lambda k: ([[0, 1]], [[0, 1]]), reduce=argmax_logits, form="rows", takes_label_names=True),
    Suite("perplexity", frozenset({"nll", "perplexity"}), frozenset(),
          lambda k: ([[1.0, 2.0]], [[0, 0]]), reduce=next_token_nll, form="rows"),
    Suite("ratings", frozenset({"kl", "level_mae", "log_loss", "ece"}), frozenset({"accuracy", "macro_f1"}),
          lambda k: ([[0.0] * k, [1.0] * k], [[1.0 / k] * k, [1.0 / k] * k]), levels=True),
    Suite("generation", frozenset(), frozenset({"rougeL", "chrf", "exact_match"}),
          lambda k: (["a small dog", "a cat"], ["a small dog", "a big cat"]), form="texts", vectorized=False),
)}


def get(name: str) -> Suite:
    """The suite called ``name``; one added as a folder only (no entry above) reports names nobody checks."""
    if name not in suites():
        raise ValueError(f"task.metrics={name!r} is not a metric suite; choose one of: {', '.join(suites())}")
    return SUITES.get(name) or Suite(name)


# The one source of truth for a metric's direction: each suite's ``lower`` and ``higher`` above, gathered here.
# The Trainer's ``greater_is_better`` (conf/trainer), the ``task.greater_is_better`` the sweepers read (conf/task,
# conf/hparams_search: through the ``${losslab.greater_is_better:<metric>}`` resolver) and the report all follow
# from these two sets; a user
# who sets a direction against them is refused by ``preflight``. Every metric a suite reports is in one of
# them (per-label ``f1_<label>`` / ``ap_<label>`` are better when larger); tests/test_metrics.py checks it.
LOWER_IS_BETTER = frozenset().union(*(s.lower for s in SUITES.values()))
HIGHER_IS_BETTER = frozenset().union(*(s.higher for s in SUITES.values()))
_HIGHER_PREFIXES = ("f1_", "ap_")


_DERIVED_PREFIXES = ("tuned_", "ts_")  # a derived metric (Suite.derived) has its base metric's direction


def _base(metric: str) -> str:
    for prefix in _DERIVED_PREFIXES:
        if metric.startswith(prefix) and metric[len(prefix):] in LOWER_IS_BETTER | HIGHER_IS_BETTER:
            return metric[len(prefix):]
    return metric


def greater_is_better(metric: str) -> bool:
    """Whether a larger value of a suite's metric is better (``mae``, ``ts_ece``: False). Unknown names count as
    larger."""
    return _base(metric) not in LOWER_IS_BETTER


def has_direction(metric: str) -> bool:
    """Whether ``metric``'s direction is declared here (not merely assumed)."""
    metric = _base(metric)
    return metric in LOWER_IS_BETTER or metric in HIGHER_IS_BETTER or metric.startswith(_HIGHER_PREFIXES)
