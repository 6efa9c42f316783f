"""The statistics of a sweep report, on plain numbers (no MLflow): read this to learn what the report claims.

**The question is declared.** A sweep asks which row is best on its objective (``task.objective``) and on any
metric the user declares (``report.metrics=[ece]``). Only declared metrics get verdicts; every other column is
descriptive. Each declared metric is one family of comparisons, and the families share the error rate
(Bonferroni over the declared metrics).

**The replicate unit.** A row's values are one per *unit*: a seed (the training run's randomness:
initialization, data order, dropout) — or, when ``task.split_seed`` is swept, a split, whose value is the mean
over the seeds trained on it (seeds within a split are not independent draws of the split's noise; :func:`units`).

**One variance model for seeds × test items.** Every run of a split is scored on the same test items, and the
test set is itself a sample. A run's value is ``mu_row + seed effect + u_row(items) + v_run(items)``: ``u`` is
the part of the test-sample noise shared by all seeds of a row (the test set is drawn once), ``v`` the part
that changes with the seed. The spread of per-seed differences already holds ``v``; what it lacks is the shared
``u``. Its variance is estimated from the item bootstrap (every run scored on the same resampled items) as the
*covariance between different seeds' replicates* — the part the seeds have in common — not their whole
variance, so ``v`` is not counted twice (a crossed random-effects decomposition; Owen 2007, "The pigeonhole
bootstrap"; Bouthillier et al., MLSys 2021)::

    var(mean_a − mean_b) = var_seeds(a − b) + [c̄(a, a) + c̄(b, b) − 2 c̄(a, b)]

``var_seeds``: paired over the units both rows ran when they ran the same ones (sd of per-unit differences²/n,
n − 1 degrees of freedom), else Welch over all of each row's units; ``c̄``: the mean covariance of the bootstrap
replicates over pairs of *different* units. The item part is treated as known (1,000 resamples), so the degrees
of freedom are Welch–Satterthwaite's from the seed part alone, weighed with the seed variance at its 95% upper
bound (:func:`degrees_of_freedom`: the plain plug-in was liberal with 3 seeds). With several splits the test set changes with
the unit, so the unit's spread already holds the test-sample noise and no item part is added.

**Comparisons with the best, simultaneous.** The best row is chosen by the data, so a comparison with it is
one of all pairwise comparisons: every pair of compared rows gets a two-sided t-interval at level
``1 − α / (pairs × declared metrics)`` (Bonferroni over all k(k − 1)/2 pairs: every interval holds at once with
probability ≥ 95%, whichever row comes out best). A row is *worse* than the best when that interval excludes 0,
*tied* otherwise; the interval shown is the one the verdict reads, and the p-value shown is the same test's
Bonferroni-adjusted p (p < 0.05 ⟺ the interval excludes 0). Tukey's studentized range is not used: it assumes
equal variances, and the simulations in ``tests/test_report_calibration.py`` measured its per-pair variant
(Games–Howell) at 10–45% false "worse" with 3 seeds. With every per-unit difference equal (no spread), the t
statistic is undefined and the exact sign-flip (paired) or permutation test gives p (``scipy.stats.permutation_test``).

**One unit is no replicate.** A row with one seed (one split) gets no p-value and no verdict: its cell carries
the test-sample interval alone, marked "1 seed: test-sample only", because the seed-to-seed spread that every
comparison needs cannot be measured from one run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

LEVEL = 0.95
ALPHA = 0.05


def t_interval(values, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high): the t-interval of the mean of ``values``; low = high = NaN for fewer than two."""

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
class Sample:
    """A row's replicates of one metric: ``values`` maps a unit (seed key, or split) to the value on the whole
    test set; ``replicates`` (optional) maps the same units to the value on each item resample (the same
    resampled items for every row of a split)."""

    values: dict
    replicates: dict | None = None
    unit: str = "seed"

    @property
    def n(self) -> int:
        return len(self.values)

    def mean(self) -> float:
        return float(np.mean(list(self.values.values()))) if self.values else math.nan


def units(entries, unit_of_split: bool | None = None) -> Sample:
    """A row's :class:`Sample` from its runs: ``entries`` are ``(split, seed key, value, replicates or None)``.

    One split: a unit per seed key. Several splits: a unit per split, its value the mean over the split's seeds
    (and no item replicates: each split has its own test set, so the split's spread holds the test sample)."""
    entries = [e for e in entries if e[2] is not None and math.isfinite(e[2])]
    splits = {e[0] for e in entries}
    by_split = len(splits) > 1 if unit_of_split is None else unit_of_split
    if by_split:
        values: dict = {}
        for split, _, value, _ in entries:
            values.setdefault(split, []).append(value)
        return Sample({k: float(np.mean(v)) for k, v in values.items()}, None, "split")
    values = {e[1]: float(e[2]) for e in entries}
    reps = {e[1]: np.asarray(e[3], dtype=float) for e in entries if e[3] is not None}
    return Sample(values, reps if reps and len(reps) == len(values) else None, "seed")


def _centred(sample: Sample, keys) -> np.ndarray:
    r = np.stack([sample.replicates[k] for k in keys])
    return r - r.mean(axis=1, keepdims=True)


def _offdiag_mean(c: np.ndarray) -> float:
    n = c.shape[0]
    return float((c.sum() - np.trace(c)) / (n * (n - 1)))


def item_variance(a: Sample, b: Sample | None = None) -> float | None:
    """The variance of the test-sample noise that the units of ``a`` share (of ``mean(a) − mean(b)`` with
    ``b``): the mean covariance of the item-bootstrap replicates over pairs of *different* units. None when a
    row has fewer than two units or no replicates. Never negative."""
    rows = [s for s in (a, b) if s is not None]
    if any(s.replicates is None or s.n < 2 for s in rows):
        return None
    ka = list(a.values)
    ra = _centred(a, ka)
    ok = np.all(np.isfinite(ra), axis=0)
    if b is not None:
        kb = list(b.values)
        rb = _centred(b, kb)
        ok &= np.all(np.isfinite(rb), axis=0)
    ra = ra[:, ok]
    dof = max(int(ok.sum()) - 1, 1)
    if ok.sum() < 2:
        return None
    total = _offdiag_mean(ra @ ra.T / dof)
    if b is not None:
        rb = rb[:, ok]
        total += _offdiag_mean(rb @ rb.T / dof)
        cross = ra @ rb.T / dof
        different = np.array([[x != y for y in kb] for x in ka])
        total -= 2 * float(cross[different].mean()) if different.any() else 0.0
    return max(total, 0.0)


@dataclass
class Difference:
    """``a − b`` of two rows' means, its interval, its p-value (adjusted where ``p_adjusted`` is set: the
    interval is then at the adjusted level), and how they were obtained."""

    diff: float
    low: float
    high: float
    p: float | None
    how: str
    p_adjusted: float | None = None

    def covers_zero(self) -> bool:
        return not (self.low > 0 or self.high < 0)

    def tie(self, alpha: float = ALPHA) -> bool:
        """No difference can be claimed: the adjusted p-value is ≥ alpha (equivalently, the interval, at the
        same level, covers zero)."""
        p = self.p_adjusted if self.p_adjusted is not None else self.p
        return p is None or not math.isfinite(p) or p >= alpha or self.covers_zero()


def sign_flip_p(diffs) -> float:
    """Exact two-sided p-value of the paired sign-flip permutation test of mean(diffs) = 0."""

    d = np.asarray(diffs, dtype=float)
    if not np.any(d):
        return 1.0
    res = stats.permutation_test((d,), np.mean, permutation_type="samples", alternative="two-sided",
                                 n_resamples=np.inf)
    return float(res.pvalue)


def permutation_p(xa, xb) -> float:
    """Exact two-sided p-value of the two-sample permutation test of equal means."""

    xa, xb = np.asarray(xa, dtype=float), np.asarray(xb, dtype=float)
    if xa.mean() == xb.mean():
        return 1.0
    res = stats.permutation_test((xa, xb), lambda x, y: np.mean(x) - np.mean(y), permutation_type="independent",
                                 alternative="two-sided", n_resamples=np.inf)
    return float(res.pvalue)


def _as_sample(x) -> Sample:
    return x if isinstance(x, Sample) else Sample(dict(x))


@dataclass
class _Pair:
    diff: float
    var: float  # var_seeds + var_items
    df: float
    how: str
    exact_p: float | None = None  # when var == 0


def _pair(a: Sample, b: Sample) -> _Pair | None:
    """The difference of two rows' means and its variance under the model above; None below two units a row."""
    if a.n < 2 or b.n < 2:
        return None
    xa, xb = np.array(list(a.values.values())), np.array(list(b.values.values()))
    diff = float(xa.mean() - xb.mean())
    word = "splits" if "split" in (a.unit, b.unit) else "seeds"
    if set(a.values) == set(b.values):
        d = np.array([a.values[k] - b.values[k] for k in a.values])
        var_seed, df, how = float(d.var(ddof=1) / len(d)), len(d) - 1.0, f"paired over {len(d)} {word}"
    else:
        va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
        var_seed = float(va + vb)
        df = var_seed**2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1)) if var_seed > 0 else math.inf
        how = f"unpaired (Welch) over {len(xa)} and {len(xb)} {word}"
    scale = max([1.0] + [abs(v) for v in (*xa, *xb)])
    if math.sqrt(var_seed) <= 1e-12 * scale:  # equal up to rounding: no spread
        var_seed = 0.0
    var_item = item_variance(a, b) if a.replicates is not None and b.replicates is not None else None
    if var_item is not None:
        how += " + the test items they share (bootstrap covariance)"
    total = var_seed + (var_item or 0.0)
    df = degrees_of_freedom(var_seed, df, var_item or 0.0)
    if total == 0:
        if set(a.values) == set(b.values):
            p, test = sign_flip_p([a.values[k] - b.values[k] for k in a.values]), "exact sign-flip test"
        else:
            p, test = permutation_p(xa, xb), "exact permutation test"
        return _Pair(diff, 0.0, df, f"{how}, {test} (no spread to estimate an interval)", p)
    return _Pair(diff, total, min(df, 1e9), how)


def degrees_of_freedom(var_seed: float, df_seed: float, var_item: float) -> float:
    """Welch–Satterthwaite's degrees of freedom of ``var_seed + var_item`` (the item part known), with the
    seed variance taken at its 95% upper confidence bound (``var · df / χ²(0.05, df)``) when weighing the two:
    a plug-in seed variance from 2–4 degrees of freedom that comes out small would otherwise lend the sum
    far more degrees of freedom than it has (measured: 27% false *worse* among 12 identical rows with 3 seeds,
    4.7% with the bound; ``tests/test_report_calibration.py``)."""

    if not var_item:
        return df_seed
    if var_seed <= 0 or not math.isfinite(df_seed):
        return math.inf
    upper = var_seed * df_seed / float(stats.chi2.ppf(0.05, df_seed))
    return min(df_seed * (1 + var_item / upper) ** 2, 1e9)


def _difference(pair: _Pair, level: float) -> Difference:

    if pair.exact_p is not None:
        sure = pair.exact_p < 1 - level
        return Difference(pair.diff, pair.diff if sure else -math.inf, pair.diff if sure else math.inf,
                          pair.exact_p, pair.how)
    se = math.sqrt(pair.var)
    q = float(stats.t.ppf(0.5 + level / 2, pair.df))
    p = float(2 * stats.t.sf(abs(pair.diff) / se, pair.df))
    return Difference(pair.diff, pair.diff - q * se, pair.diff + q * se, p, pair.how)


def compare(a, b, level: float = LEVEL) -> Difference:
    """Row ``a`` against row ``b`` alone (one pre-stated comparison, no multiplicity): ``a``/``b`` are
    :class:`Sample` s (or dicts unit -> value). A row with one unit gets no test (p = None)."""
    a, b = _as_sample(a), _as_sample(b)
    pair = _pair(a, b)
    if pair is None:
        diff = a.mean() - b.mean()
        return Difference(diff, math.nan, math.nan, None,
                          "one seed: no test (the seed-to-seed spread cannot be measured from one run)")
    return _difference(pair, level)


@dataclass
class Verdicts:
    """The comparisons of one declared metric: each compared row against the best (``a − best``)."""

    best: str | None
    compared: list = field(default_factory=list)  # rows in the family (≥ 2 units, not flagged)
    differences: dict = field(default_factory=dict)  # row -> Difference (row − best), simultaneous
    pairs: int = 0
    level: float = LEVEL  # the per-interval level (simultaneous: 1 − α/(pairs × metrics))

    def verdict(self, row: str, greater_is_better: bool) -> str:
        if row == self.best:
            others = [r for r in self.compared if r != row]
            return "best" if others and all(self.verdict(r, greater_is_better) == "worse" for r in others) \
                else "best (tied)" if others else "best"
        d = self.differences.get(row)
        if d is None:
            return "–"
        return "tie" if d.tie() else ("worse" if (d.diff < 0) == greater_is_better else "better")


def compare_with_best(samples: dict, greater_is_better: bool, metrics: int = 1, alpha: float = ALPHA) -> Verdicts:
    """Every row of ``samples`` (label -> :class:`Sample`) with two or more units against the row with the best
    mean, at simultaneous level 1 − α over all k(k − 1)/2 pairs and ``metrics`` declared metrics (Bonferroni),
    so the data's choice of the best row cannot inflate the error. Rows with one unit are left out."""
    compared = [label for label, s in samples.items() if s.n >= 2 and math.isfinite(s.mean())]
    if not compared:
        return Verdicts(None)
    sign = 1.0 if greater_is_better else -1.0
    best = max(compared, key=lambda label: sign * samples[label].mean())
    k = len(compared)
    pairs = k * (k - 1) // 2
    m = max(pairs, 1) * max(metrics, 1)
    level = 1 - alpha / m
    out = Verdicts(best, compared, pairs=pairs, level=level)
    for label in compared:
        if label == best:
            continue
        pair = _pair(samples[label], samples[best])
        d = _difference(pair, level)
        d.p_adjusted = None if d.p is None else min(1.0, d.p * m)
        d.how += f"; simultaneous {100 * level:.3g}% interval (Bonferroni over {pairs} pair(s) × {metrics} metric(s))"
        out.differences[label] = d
    return out


def mean_interval(sample: Sample, level: float = LEVEL) -> tuple[float, float, float, str]:
    """(mean, low, high, how): the interval of a row's mean with both sources (seeds + the shared test items),
    or, for one unit, the test-sample percentile interval alone, marked so."""

    mean = sample.mean()
    if sample.n < 2:
        if sample.replicates:
            lo, hi = percentile_interval(next(iter(sample.replicates.values())), level)
            return mean, lo, hi, "1 seed: test-sample only"
        return mean, math.nan, math.nan, "1 seed: no interval"
    x = np.array(list(sample.values.values()))
    var_seed = float(x.var(ddof=1) / len(x))
    var_item = item_variance(sample) or 0.0
    total = var_seed + var_item
    if total == 0:
        return mean, mean, mean, "no spread"
    df = degrees_of_freedom(var_seed, len(x) - 1.0, var_item)
    half = float(stats.t.ppf(0.5 + level / 2, min(df, 1e9)) * math.sqrt(total))
    what = f"{sample.n} {'splits' if sample.unit == 'split' else 'seeds'}" + (" + test items" if var_item else "")
    return mean, mean - half, mean + half, what


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
    """Set each ``Difference``'s ``p_adjusted``: Holm's adjustment over them as one family (for a fixed,
    pre-stated family of comparisons, not for comparisons with a data-selected best)."""
    diffs = list(diffs)
    for diff, p in zip(diffs, holm([d.p for d in diffs])):
        diff.p_adjusted = p
