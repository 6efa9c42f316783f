"""Rows a report must not rank, and what it only points out: the rules, each on plain numbers, each with a
false-alarm rate measured by ``tests/test_report_calibration.py``.

Excluding (a flagged row is shown, never compared or marked best):

- **degenerate** (from a run's test predictions; a row is flagged when any of its seeds is): regression:
  the predictions' spread (std) is under 1% of the test labels' spread — a constant in all but rounding;
  classification and rating levels: one class for every item, or a mean per-class recall (balanced accuracy)
  no better than chance (1/K) by two of its standard errors under chance; multi-label: a label predicted on
  for every item or for none, while the test labels vary; NER: one tag for every token (e.g. O: no entity),
  or no entity right with token accuracy no better than all O; generation: one text for every item. A weak
  model that still separates the classes (a 70/10/10/10 classifier with macro-F1 0.56) is not degenerate:
  it is ranked, and loses.
- **not converged** (from the validation objective logged at each evaluation): the curve still rises over
  its last evaluations. Per seed, the least-squares slope over the last ``WINDOW`` evaluations (in the
  improving direction); the row is flagged when the slopes are significantly positive: a one-sided one-sample
  t-test of the seeds' slopes at level 0.05 / rows (two or more seeds), or the slope's own regression t-test
  (one seed). A curve of ``WINDOW`` evaluations or fewer is read without its first one (the warm-up ramp).
  Measured: plateaus with noise flagged in ≤ 5% of sweeps (+ Monte-Carlo error); curves rising by 2.5× their
  noise per evaluation caught ≥ 90% of the time with 3 seeds.

Informative (shown in the report, never excluding):

- **still rising**: the trend above is significant at 0.05 for the row alone, but not at 0.05 / rows.
- **seeds disagree**: the row's variance over seeds of the test objective is larger than the other rows'
  pooled variance by a one-sided F-test at level 0.05 / rows (each row against the pool of the others).
"""

from __future__ import annotations

import math
import statistics

import numpy as np
from scipy import stats

from losslab.metrics.entities.score import entity_counts
from losslab.metrics.levels import split

ALPHA = 0.05
WINDOW = 4            # evaluations at the end of a curve read for its trend
SPREAD_SHARE = 0.01   # regression: predictions whose spread is under 1% of the labels' are a constant
CHANCE_SES = 2.0      # classification: balanced accuracy within 2 standard errors of chance is chance


def _one(counts) -> tuple[int, float]:
    values, n = np.unique(counts, return_counts=True)
    return int(values[np.argmax(n)]), float(n.max() / n.sum())


def _class_rule(pred, y, names=None) -> str | None:
    name = (lambda c: names[c] if names and 0 <= c < len(names) else str(c))
    if len(np.unique(pred)) == 1:
        return f"predicts {name(int(pred[0]))} for every item"
    classes, n = np.unique(y, return_counts=True)
    if len(classes) < 2:
        return None
    recall = np.array([np.mean(pred[y == c] == c) for c in classes])
    k = len(classes)
    chance = 1.0 / k
    se = math.sqrt(float(np.sum(chance * (1 - chance) / n)) / k**2)  # sd of balanced accuracy under chance
    balanced = float(recall.mean())
    if balanced <= chance + CHANCE_SES * se:
        return (f"mean per-class recall {balanced:.4f} is no better than chance ({chance:.4f} + "
                f"{CHANCE_SES:g} × its standard error {se:.4f})")
    return None


def degenerate(suite: str, predictions, labels, label_names=None, thresholds=None) -> str | None:
    """Why these test predictions are degenerate, or None."""
    if len(predictions) == 0:
        return None
    if suite == "regression":
        p = np.asarray(predictions, dtype=np.float64).reshape(len(labels), -1)[:, 0]
        if np.ptp(p) == 0:
            return "the same prediction for every item"
        spread, label_spread = float(np.std(p)), float(np.std(np.asarray(labels, dtype=np.float64)))
        if label_spread > 0 and spread < SPREAD_SHARE * label_spread:
            return (f"nearly the same prediction for every item: their std {spread:.3g} is under "
                    f"{SPREAD_SHARE:.0%} of the test labels' ({label_spread:.3g})")
        return None
    if suite == "classification":
        return _class_rule(np.asarray(predictions).argmax(1), np.asarray(labels, dtype=np.int64), label_names)
    if suite == "ratings":
        t = np.asarray(labels, dtype=np.float64)
        level = np.floor((t * np.arange(t.shape[1])).sum(1) + 0.5).astype(np.int64)
        return _class_rule(split(predictions, t.shape[1])[1], level, label_names)  # the loss's own decoding
    if suite == "multilabel":
        scores, y = np.asarray(predictions, dtype=np.float64), np.asarray(labels) > 0
        cut = np.zeros(y.shape[1]) if thresholds is None else np.asarray(thresholds)
        on = scores > cut
        for j in range(y.shape[1]):
            name = label_names[j] if label_names and j < len(label_names) else str(j)
            if y[:, j].any() and not y[:, j].all():
                if on[:, j].all():
                    return f"{name} predicted on for every item"
                if not on[:, j].any():
                    return f"{name} predicted on for no item"
        return None
    if suite == "entities":
        p, y = np.asarray(predictions).astype(np.int64), np.asarray(labels).astype(np.int64)
        scored = p[y != -100]
        if len(np.unique(scored)) == 1:  # all O: no entity at all (any other tag starts one, as seqeval reads BIO)
            tag = label_names[int(scored[0])] if label_names else str(int(scored[0]))
            return f"tags every token {tag}"
        truth = y[y != -100]
        majority, share = _one(truth)
        accuracy = float(np.mean(scored == truth))
        if accuracy <= share + 1e-12 and label_names:  # and not one entity right: a weak tagger is not degenerate

            if entity_counts(p, y, label_names)[:, 2].sum() == 0:
                return (f"no entity right, and token accuracy {accuracy:.4f} no better than tagging every token "
                        f"{label_names[majority]} ({share:.4f})")
        return None
    if suite == "generation":
        return "the same text for every item" if len({str(t) for t in predictions}) == 1 else None
    return None


def slope(values) -> float:
    """Least-squares slope of ``values`` against their position (per evaluation)."""
    y = np.asarray(values, dtype=float)
    x = np.arange(len(y), dtype=float)
    x -= x.mean()
    return float((x * (y - y.mean())).sum() / (x * x).sum())


def trend(histories: list[list[float]], greater_is_better: bool, window: int = WINDOW):
    """(mean slope per evaluation in the improving direction, one-sided p that it is > 0, how, evaluations read)
    over the curves' last ``window`` evaluations, or None when the curves are too short to show a trend (fewer
    than three evaluations, or four for one seed). Two or more seeds: a one-sample t-test of the seeds' slopes
    (the seeds are the independent replicates; consecutive evaluations of one curve are not); one seed: the
    slope's own regression t-test."""

    sign = 1.0 if greater_is_better else -1.0
    # the last ``window`` evaluations; a shorter curve less its first evaluation (still on the warm-up ramp)
    tails = [[sign * v for v in (h[-window:] if len(h) > window else h[1:])] for h in histories]
    tails = [t for t in tails if len(t) >= 2 and all(math.isfinite(v) for v in t)]
    if not tails or (len(tails) == 1 and len(tails[0]) < 3):
        return None
    slopes = [slope(t) for t in tails]
    if len(tails) >= 2:
        s = np.asarray(slopes)
        if np.all(s == s[0]):
            p = 0.0 if s[0] > 0 else 1.0
        else:
            p = float(stats.ttest_1samp(s, 0.0, alternative="greater").pvalue)
        how = f"{len(tails)} seeds' slopes, one-sided t-test"
    else:
        fit = stats.linregress(np.arange(len(tails[0])), tails[0])
        if fit.stderr == 0 or not math.isfinite(fit.stderr):
            p = 0.0 if fit.slope > 0 else 1.0
        else:
            p = float(stats.t.sf(fit.slope / fit.stderr, len(tails[0]) - 2))
        how = "one seed: the slope's regression t-test"
    return statistics.fmean(slopes), p, how, len(tails[0])


def not_converged(histories: list[list[float]], greater_is_better: bool, rows: int = 1,
                  window: int = WINDOW, alpha: float = ALPHA) -> str | None:
    """``histories``: per seed, the validation objective at each evaluation, in order; ``rows``: how many rows
    the sweep flags this way (the level is ``alpha / rows``: at most ``alpha`` of sweeps lose a converged row).
    Why the row is not converged, or None (also when the curves are too short to show a trend)."""
    got = trend(histories, greater_is_better, window)
    if got is None:
        return None
    gain, p, how, w = got
    level = alpha / max(rows, 1)
    if p < level:
        return (f"validation objective still improving: over its last {w} evaluations it gains "
                f"{gain:+.4g} per evaluation ({how}, p = {p:.2g} < {level:.2g})")
    return None


def still_rising(histories: list[list[float]], greater_is_better: bool, rows: int = 1,
                 window: int = WINDOW, alpha: float = ALPHA) -> str | None:
    """Informative: the trend is significant at ``alpha`` for this row alone but not at the sweep's level
    (``alpha / rows``) that excludes a row."""
    got = trend(histories, greater_is_better, window)
    if got is None:
        return None
    gain, p, how, w = got
    if alpha / max(rows, 1) <= p < alpha:
        return (f"still rising: over its last {w} evaluations it gains {gain:+.4g} per evaluation ({how}, "
                f"p = {p:.2g} < {alpha:g} for this row alone, not < {alpha / max(rows, 1):.2g} for 1 of {rows} rows: "
                "not excluding)")
    return None


def seeds_disagree(values: dict[str, list[float]], alpha: float = ALPHA) -> dict[str, str]:
    """row -> why its seeds disagree (informative), from each row's test objective per seed (rows with fewer
    than two seeds left out): its variance against the pooled variance of the other rows, a one-sided F-test
    at level ``alpha / rows``."""

    rows = {r: np.asarray(v, dtype=float) for r, v in values.items() if len(v) >= 2}
    out = {}
    level = alpha / max(len(rows), 1)
    for row, x in rows.items():
        others = [v for r, v in rows.items() if r != row]
        df2 = sum(len(v) - 1 for v in others)
        if not others or df2 == 0:
            continue
        pooled = sum(float(((v - v.mean()) ** 2).sum()) for v in others) / df2
        var = float(x.var(ddof=1))
        if var <= 1e-18:
            continue
        p = 0.0 if pooled == 0 else float(stats.f.sf(var / pooled, len(x) - 1, df2))
        if p < level:
            out[row] = (f"seeds disagree: std over seeds {math.sqrt(var):.4g} against {math.sqrt(pooled):.4g} "
                        f"pooled over the other rows (F-test, p = {p:.2g} < {level:.2g}; informative: the row is "
                        "still compared, on its own spread)")
    return out
