"""The report's statistics on hand-made numbers (losslab.report.stats): seed intervals, paired vs unpaired
comparisons, constant differences, a missing seed, the test-item part, Holm, and a bootstrap interval that
covers a known value as often as it says."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from losslab.report import stats


def test_t_interval_by_hand():
    mean, lo, hi = stats.t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, 2) · sd / √n
    assert mean == 2.0 and lo == pytest.approx(2 - half) and hi == pytest.approx(2 + half)
    assert math.isnan(stats.t_interval([5.0])[1])  # one seed: no interval


def test_paired_when_the_rows_ran_the_same_seeds():
    a = {1: 10.0, 2: 20.0, 3: 30.0}
    b = {1: 9.0, 2: 19.5, 3: 28.8}
    d = stats.compare(a, b)
    assert d.diff == pytest.approx(0.9)
    assert d.p == pytest.approx(sps.ttest_rel(list(a.values()), list(b.values())).pvalue)
    assert "paired over 3 seeds" in d.how
    half = sps.t.ppf(0.975, 2) * np.std([1.0, 0.5, 1.2], ddof=1) / math.sqrt(3)
    assert (d.low, d.high) == pytest.approx((0.9 - half, 0.9 + half))
    # the same numbers on different seeds: unpaired, and the seed-to-seed spread swamps the difference
    u = stats.compare(a, {4: 9.0, 5: 19.5, 6: 28.8})
    assert u.p == pytest.approx(sps.ttest_ind([10, 20, 30], [9, 19.5, 28.8], equal_var=False).pvalue)
    assert "Welch" in u.how and u.p > 0.9 > 0.05 > d.p
    assert not d.tie() and u.tie()


def test_constant_differences_are_not_p_zero():
    a = {1: 1.0, 2: 2.0, 3: 3.0}
    d = stats.compare(a, {k: v - 0.5 for k, v in a.items()})
    assert d.diff == pytest.approx(0.5)
    assert d.p == pytest.approx(0.25)  # exact sign-flip test: 2 of the 2³ sign patterns are as extreme
    assert "sign-flip" in d.how and d.tie()
    five = {k: float(k) for k in range(5)}
    assert stats.compare(five, {k: v - 1 for k, v in five.items()}).p == pytest.approx(2 / 32)
    same = stats.compare(a, dict(a))
    assert same.diff == 0 and same.p == 1.0 and same.tie()


def test_both_rows_constant_over_unpaired_seeds_use_the_exact_permutation_test():
    d = stats.compare({1: 0.2, 2: 0.2, 3: 0.2}, {4: 0.5, 5: 0.5, 6: 0.5})
    assert d.p == pytest.approx(2 / 20)  # 2 of the C(6,3) = 20 splits are as extreme


def test_a_missing_seed_compares_the_tables_means_unpaired():
    a = {1: 0.80, 2: 0.82, 3: 0.78}
    b = {1: 0.70, 2: 0.74}  # seed 3 failed
    d = stats.compare(a, b)
    assert d.diff == pytest.approx(np.mean([0.80, 0.82, 0.78]) - np.mean([0.70, 0.74]))  # the ranked means
    assert "unpaired (Welch) over 3 and 2 seeds" in d.how
    assert d.p == pytest.approx(sps.ttest_ind([0.80, 0.82, 0.78], [0.70, 0.74], equal_var=False).pvalue)
    one = stats.compare(a, {1: 0.7})
    assert one.p is None and one.tie()  # one seed against three: nothing to test


def _runs(rng, seeds, shared, own, offset=0.0, items=400, resamples=2000, counts=None, u=None):
    """Per-seed item scores with a part ``u`` shared by the seeds and a part of each seed's own."""
    u = rng.normal(0, shared, items) if u is None else u
    scores = [offset + u + rng.normal(0, own, items) for _ in range(seeds)]
    counts = stats.resample_counts(items, resamples, rng) if counts is None else counts
    return {s: float(x.mean()) for s, x in enumerate(scores)}, {s: counts @ x / items for s, x in enumerate(scores)}


def test_the_item_part_is_the_covariance_the_seeds_share():
    rng = np.random.default_rng(0)
    counts = stats.resample_counts(400, 4000, rng)
    va, ra = _runs(rng, 3, 0.4, 0.3, counts=counts)
    vb, rb = _runs(rng, 3, 0.4, 0.3, counts=counts)
    a, b = stats.Sample(va, ra), stats.Sample(vb, rb)
    # the shared parts differ between the rows: var(u_a − u_b)/items = 2 · 0.4² / 400 = 8e-4
    assert stats.item_variance(a, b) == pytest.approx(8e-4, rel=0.25)
    # a seed's own item noise is in the spread of per-seed differences, and not counted again
    whole = np.var(np.mean([ra[s] for s in ra], 0) - np.mean([rb[s] for s in rb], 0), ddof=1)
    assert whole > stats.item_variance(a, b) * 1.1  # the old se_items² held the seeds' own noise too
    d = stats.compare(a, b)
    diffs = np.array([va[s] - vb[s] for s in va])
    v_seed, v_item = diffs.var(ddof=1) / 3, stats.item_variance(a, b)
    df = stats.degrees_of_freedom(v_seed, 2, v_item)
    half = sps.t.ppf(0.975, df) * math.sqrt(v_seed + v_item)
    assert (d.low, d.high) == pytest.approx((d.diff - half, d.diff + half))
    assert "paired over 3 seeds + the test items they share" in d.how
    # the same row against itself shifted by a constant: no seed spread, the shared items alone
    c = stats.Sample({s: v - 0.02 for s, v in va.items()}, {s: r - 0.02 for s, r in ra.items()})
    same = stats.compare(a, c)
    assert same.diff == pytest.approx(0.02) and stats.item_variance(a, c) == pytest.approx(0, abs=1e-12)


def test_one_seed_gets_no_p_value_only_a_test_sample_interval():
    rng = np.random.default_rng(1)
    va, ra = _runs(rng, 1, 0.4, 0.3)
    vb, rb = _runs(rng, 3, 0.4, 0.3)
    d = stats.compare(stats.Sample(va, ra), stats.Sample(vb, rb))
    assert d.p is None and d.tie() and "one seed" in d.how
    mean, lo, hi, how = stats.mean_interval(stats.Sample(va, ra))
    assert how == "1 seed: test-sample only" and (lo, hi) == pytest.approx(stats.percentile_interval(ra[0]))


def test_degrees_of_freedom_weigh_the_seed_variance_at_its_upper_bound():
    assert stats.degrees_of_freedom(1.0, 2, 0.0) == 2  # seeds alone: n − 1
    assert stats.degrees_of_freedom(0.0, 2, 1.0) == math.inf  # the item part alone: known
    upper = 1.0 * 2 / sps.chi2.ppf(0.05, 2)
    assert stats.degrees_of_freedom(1.0, 2, 1.0) == pytest.approx(2 * (1 + 1 / upper) ** 2)


def test_holm_by_hand():
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005, None])
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 → kept monotone at 0.06
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and adjusted[4] is None
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert stats.holm([]) == []


def test_splits_are_the_unit_when_the_split_is_swept():
    entries = [("0", ("1", "0"), 0.8, None), ("0", ("2", "0"), 0.82, None),
               ("1", ("1", "1"), 0.7, None), ("1", ("2", "1"), 0.74, None)]
    by_split = stats.units(entries)
    assert by_split.unit == "split" and by_split.values == pytest.approx({"0": 0.81, "1": 0.72})
    assert stats.units(entries[:2]).unit == "seed" and stats.units(entries[:2]).n == 2


def test_a_tie_follows_the_adjusted_p():
    d = stats.Difference(0.1, 0.01, 0.2, 0.01, "x")
    assert not d.tie()
    d.p_adjusted = 0.08
    assert d.tie()  # significant alone, not after Holm
    assert stats.Difference(0.1, -0.01, 0.2, 0.01, "x", 0.01).tie()  # the interval covers zero


def test_bootstrap_interval_covers_a_known_mean_as_often_as_it_says():
    rng = np.random.default_rng(7)
    hits = 0
    trials = 300
    for _ in range(trials):
        x = rng.exponential(1.0, size=200)  # the population mean is 1
        counts = stats.resample_counts(len(x), 1000, rng)
        lo, hi = stats.percentile_interval(counts @ x / len(x))
        hits += lo <= 1.0 <= hi
    assert 0.90 <= hits / trials <= 0.985


def test_resample_counts_draw_n_items_each():
    counts = stats.resample_counts(50, 20, np.random.default_rng(0))
    assert counts.shape == (20, 50) and (counts.sum(1) == 50).all()
