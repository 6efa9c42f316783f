"""The statistics of a sweep report, on plain numbers (no MLflow): read this to learn what the report claims.

Two sources of uncertainty are kept apart and then combined:

- **seeds** (the training run's randomness: initialization, data order, dropout; and the split, when
  ``task.split_seed`` is swept): the spread of a row's values over its seeds. A cell's *seed interval* is the
  95% t-interval of the mean over seeds, ``mean ± t(0.975, n-1) · sd / √n``.
- **the test sample** (the test set is itself a sample of the items one cares about): a bootstrap over test
  items. Every run of a split is scored on the *same* resampled items (``counts`` below: how many times each
  item is drawn in each resample), so two rows are compared item by item. A cell's *test interval* is the
  2.5–97.5 percentile interval of the row's mean over seeds across resamples (seeds held fixed).

A row is compared with the best row of a column by the difference of their means, ``d``. Its standard error
combines both sources, which are independent (the test set is shared by every seed, so its sampling error is
a common offset that averaging over seeds does not remove):

    se(d)² = se_seeds(d)² + se_items(d)²

``se_seeds``: paired over the seeds both rows ran when they ran the same ones (the sd of the per-seed
differences / √n, n-1 degrees of freedom), otherwise unpaired over all of each row's seeds (Welch). ``se_items``:
the sd of the difference of the two rows' means across the item resamples (paired over items when the two
rows were scored on the same items). The 95% interval is ``d ± t(0.975, ν) · se`` with Welch–Satterthwaite's ν
(the item part has ν = ∞), and the two-sided p-value comes from the same t. Without per-item predictions only
the seed part is there (a paired / Welch t-test); when every per-seed difference is the same the t statistic is
undefined, and the exact sign-flip permutation test (``scipy.stats.permutation_test``) gives its p-value
(2 / 2ⁿ for n identical non-zero differences: 0.25 with 3 seeds). The p-values of every comparison shown are
adjusted together by Holm's step-down method (family-wise error ≤ 0.05 over the rows and columns shown).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
ALPHA = 0.05


def t_interval(values, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high): the t-interval of the mean of ``values``; low = high = NaN for fewer than two."""
    from scipy import stats

    x = np.asarray(list(values), dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def resample_counts(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) counts: how often each of ``n`` items is drawn in each bootstrap resample of size n."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def percentile_interval(replicates, level: float = LEVEL) -> tuple[float, float]:
    r = np.asarray(replicates, dtype=float)
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(r, [0.5 - level / 2, 0.5 + level / 2])
    return float(lo), float(hi)


@dataclass
class Difference:
    """``a - b`` of two rows' means, its interval and p-value, and how they were obtained."""

    diff: float
    low: float
    high: float
    p: float | None
    how: str
    p_adjusted: float | None = None

    def covers_zero(self) -> bool:
        return not (self.low > 0 or self.high < 0)

    def tie(self, alpha: float = ALPHA) -> bool:
        """No difference can be claimed: the interval covers zero, or the adjusted p-value is ≥ alpha."""
        p = self.p_adjusted if self.p_adjusted is not None else self.p
        return p is None or not math.isfinite(p) or p >= alpha or self.covers_zero()


def sign_flip_p(diffs) -> float:
    """Exact two-sided p-value of the paired sign-flip permutation test of mean(diffs) = 0."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    if not np.any(d):
        return 1.0
    res = stats.permutation_test((d,), np.mean, permutation_type="samples", alternative="two-sided",
                                 n_resamples=np.inf)
    return float(res.pvalue)


def permutation_p(xa, xb) -> float:
    """Exact two-sided p-value of the two-sample permutation test of equal means."""
    from scipy import stats

    xa, xb = np.asarray(xa, dtype=float), np.asarray(xb, dtype=float)
    if xa.mean() == xb.mean():
        return 1.0
    res = stats.permutation_test((xa, xb), lambda x, y: np.mean(x) - np.mean(y), permutation_type="independent",
                                 alternative="two-sided", n_resamples=np.inf)
    return float(res.pvalue)


def compare(a: dict, b: dict, item_diffs=None, level: float = LEVEL) -> Difference:
    """Row ``a`` against row ``b``: ``a``/``b`` map a seed key to the value on the whole test set;
    ``item_diffs`` (optional) are the bootstrap replicates of ``mean(a) - mean(b)`` over test items.

    Paired over seeds when both rows ran the same seeds (two or more), else unpaired (Welch) over all of
    each row's seeds, so the difference is always the difference of the means the table shows."""
    from scipy import stats

    xa, xb = np.array(list(a.values()), dtype=float), np.array(list(b.values()), dtype=float)
    diff = float(xa.mean() - xb.mean()) if len(xa) and len(xb) else math.nan
    var_seed, df, how = None, math.inf, None
    if set(a) == set(b) and len(a) >= 2:
        d = np.array([a[k] - b[k] for k in a], dtype=float)
        var_seed, df, how = float(d.var(ddof=1) / len(d)), len(d) - 1, f"paired over {len(d)} seeds"
    elif len(xa) >= 2 and len(xb) >= 2:
        va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
        var_seed = float(va + vb)
        df = var_seed**2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1)) if var_seed > 0 else math.inf
        how = f"unpaired (Welch) over {len(xa)} and {len(xb)} seeds"
    scale = max([1.0] + [abs(v) for v in (*xa, *xb)])
    if var_seed is not None and math.sqrt(var_seed) <= 1e-12 * scale:  # equal up to rounding: no spread
        var_seed = 0.0
    var_item = None
    if item_diffs is not None:
        r = np.asarray(item_diffs, dtype=float)
        r = r[np.isfinite(r)]
        if len(r) >= 2:
            var_item = float(r.var(ddof=1))
    if var_seed is None and var_item is None:
        return Difference(diff, math.nan, math.nan, None, "one seed and no per-item predictions: no test")
    parts = [p for p in (how, "test items (bootstrap)" if var_item is not None else None) if p]
    how = " + ".join(parts) if var_seed is not None else "test items (bootstrap) only: one seed"
    total = (var_seed or 0.0) + (var_item or 0.0)
    if var_seed is not None and var_item is not None and total > 0:
        df = total**2 / (var_seed**2 / df) if var_seed > 0 and math.isfinite(df) else math.inf
        df = min(df, 1e9)
    if total == 0:  # every per-seed difference equal and nothing from the items: the t statistic is undefined
        if set(a) == set(b) and len(a) >= 2:
            p, test = sign_flip_p([a[k] - b[k] for k in a]), "exact sign-flip test"
        else:
            p, test = permutation_p(xa, xb), "exact permutation test"
        return Difference(diff, diff, diff, p, f"{how}, {test} (no spread to estimate an interval)")
    se = math.sqrt(total)
    q = stats.t.ppf(0.5 + level / 2, df) if math.isfinite(df) else stats.norm.ppf(0.5 + level / 2)
    tstat = diff / se
    p = float(2 * (stats.t.sf(abs(tstat), df) if math.isfinite(df) else stats.norm.sf(abs(tstat))))
    return Difference(diff, diff - q * se, diff + q * se, p, how)


def holm(pvalues) -> list[float | None]:
    """Holm's step-down adjustment (None entries are left out and stay None): the i-th smallest of m p-values
    becomes max over j ≤ i of min(1, (m - j + 1) · p_(j))."""
    idx = [i for i, p in enumerate(pvalues) if p is not None and math.isfinite(p)]
    out: list[float | None] = [None] * len(pvalues)
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def adjust(diffs) -> None:
    """Set each ``Difference``'s ``p_adjusted``: Holm's adjustment over them as one family."""
    diffs = list(diffs)
    for diff, p in zip(diffs, holm([d.p for d in diffs])):
        diff.p_adjusted = p
