"""The report's decision rules against known truth, by simulation (numpy + scipy only, no MLflow, fast).

Simulated sweeps (``tests/simulated.py``: per-item scores of every run with seed, test-item and split noise of
known size) go through the report's own code: replicate units (:func:`stats.units`), verdicts
(:func:`stats.compare_with_best`), flags (:mod:`losslab.report.flags`).

Measured: for identical losses the rate of sweeps with any false "worse" (≤ 5% + Monte-Carlo error); for
separated losses the coverage of each row-minus-best interval (≥ 94%); the flags' false-alarm rates. Run
``python tests/test_report_calibration.py`` for the table docs/reports.md quotes (more sweeps).
"""

from __future__ import annotations

import math
import sys
import numpy as np
import pytest
from simulated import REGIMES, Regime, simulate

from losslab.report import flags, stats


def false_worse_rate(reg: Regime, sweeps: int, seed: int = 0) -> float:
    """Share of sweeps of identical rows in which any row is called worse than the best."""
    rng = np.random.default_rng(seed)
    bad = 0
    for _ in range(sweeps):
        verdicts = stats.compare_with_best(simulate(reg, np.zeros(reg.rows), rng), greater_is_better=True)
        bad += any(not d.tie() for d in verdicts.differences.values())
    return bad / sweeps


def coverage(reg: Regime, sweeps: int, step: float, seed: int = 1) -> tuple[float, float]:
    """(coverage of the true row-minus-best difference by each shown interval, share of rows found worse)."""
    rng = np.random.default_rng(seed)
    mu = step * np.arange(reg.rows)
    hit = total = worse = 0
    for _ in range(sweeps):
        verdicts = stats.compare_with_best(simulate(reg, mu, rng), greater_is_better=True)
        best = int(verdicts.best[3:])
        for label, d in verdicts.differences.items():
            truth = mu[int(label[3:])] - mu[best]
            hit += d.low <= truth <= d.high
            total += 1
            worse += not d.tie()
    return hit / total, worse / total


def bound(rate: float, sweeps: int) -> float:
    """``rate`` plus two Monte-Carlo standard errors."""
    return rate + 2 * math.sqrt(rate * (1 - rate) / sweeps)


@pytest.mark.parametrize("reg", REGIMES, ids=[r.name for r in REGIMES])
def test_identical_losses_are_called_worse_at_most_5_percent_of_sweeps(reg):
    sweeps = 300
    assert false_worse_rate(reg, sweeps) <= bound(0.05, sweeps)


@pytest.mark.parametrize("reg", [REGIMES[1], REGIMES[3], REGIMES[6], REGIMES[7]], ids=lambda r: r.name)
def test_intervals_cover_a_known_difference(reg):
    step = 0.03 if reg.sd_seed >= 0.01 else 0.02
    cover, _ = coverage(reg, 200, step)
    assert cover >= 0.94


def test_one_seed_rows_get_no_verdict_and_no_p_value():
    rng = np.random.default_rng(3)
    samples = simulate(REGIMES[6], np.array([0.0, 0.5, 0.0, 0.0]), rng)  # row1: one seed, far ahead
    verdicts = stats.compare_with_best(samples, greater_is_better=True)
    assert "row0" not in verdicts.compared and "row1" not in verdicts.compared
    assert verdicts.best in ("row2", "row3")
    assert set(verdicts.differences) <= {"row2", "row3"}
    d = stats.compare(samples["row1"], samples["row2"])
    assert d.p is None and d.tie()
    mean, lo, hi, how = stats.mean_interval(samples["row1"])
    assert how == "1 seed: test-sample only" and lo < mean < hi


def test_the_shown_interval_and_the_verdict_never_disagree():
    rng = np.random.default_rng(4)
    for reg in REGIMES[:4]:
        for _ in range(30):
            verdicts = stats.compare_with_best(simulate(reg, 0.02 * rng.random(reg.rows), rng), True)
            for d in verdicts.differences.values():
                assert d.tie() == d.covers_zero() == (d.p_adjusted >= stats.ALPHA)


def test_the_item_part_is_not_counted_twice():
    """With the per-seed differences on a fixed test set, the se of the comparison matches the se of the
    difference over fresh sweeps (not 1.1–1.5× it, as se_seeds² + se_items² was)."""
    reg = Regime("x", rows=2, seeds=3, sd_seed=0.004, sd_block=0.0, sd_u=0.3, sd_v=0.4)
    rng = np.random.default_rng(5)
    diffs, ses = [], []
    for _ in range(400):
        s = simulate(reg, np.zeros(2), rng)
        pair = stats._pair(s["row0"], s["row1"])
        diffs.append(pair.diff)
        ses.append(math.sqrt(pair.var))
    ratio = float(np.sqrt(np.mean(np.square(ses))) / np.std(diffs))
    assert 0.85 <= ratio <= 1.15


# ------------------------------------------------------------------------------------------------ flags

def curves(rng, seeds: int, evals: int, rise: float, noise: float = 0.004) -> list[list[float]]:
    """Validation curves: a plateau (``rise`` 0), or flat until evals/2 and then ``rise`` per evaluation."""
    out = []
    for _ in range(seeds):
        base = 0.8 - 0.2 * np.exp(-np.arange(evals, dtype=float))  # flat (< 0.001) from evaluation 5
        trend = rise * np.maximum(np.arange(evals) - evals // 2, 0)
        out.append(list(base * (rise == 0) + (0.8 + trend) * (rise != 0) + rng.normal(0, noise, evals)))
    return out


def not_converged_rate(rows: int, seeds: int, rise: float, sweeps: int = 400, seed: int = 6) -> float:
    """Share of sweeps with any row flagged (rise 0: plateaus; else share of rising rows caught)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(sweeps):
        flagged = [flags.not_converged(curves(rng, seeds, 10, rise), True, rows=rows) is not None
                   for _ in range(rows)]
        hits += any(flagged) if rise == 0 else sum(flagged) / rows
    return hits / sweeps


def test_not_converged_false_alarms_on_plateaus_stay_under_5_percent_of_sweeps():
    for rows in (1, 4, 12):
        assert not_converged_rate(rows, 3, 0.0, sweeps=300) <= bound(0.05, 300)


def test_not_converged_catches_steadily_rising_curves():
    assert not_converged_rate(4, 3, 0.01, sweeps=100) >= 0.9   # rises 0.01 per evaluation, noise 0.004
    assert not_converged_rate(4, 1, 0.01, sweeps=100) >= 0.5   # one seed: its own regression


def seeds_disagree_rate(rows: int, seeds: int, noisy_factor: float, sweeps: int = 1000, seed: int = 7) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(sweeps):
        values = {f"r{i}": list(rng.normal(0, 1, seeds) * (noisy_factor if i == 0 else 1.0)) for i in range(rows)}
        out = flags.seeds_disagree(values)
        hits += ("r0" in out) if noisy_factor > 1 else bool(out)
    return hits / sweeps


def test_seeds_disagree_false_alarms_stay_under_5_percent_of_sweeps():
    for rows in (2, 4, 12):
        assert seeds_disagree_rate(rows, 3, 1.0) <= bound(0.05, 1000)


def test_degenerate_flags_collapsed_models_and_not_weak_ones():
    rng = np.random.default_rng(8)
    y = rng.choice(4, size=400, p=[0.7, 0.1, 0.1, 0.1])
    weak = np.where(rng.random(400) < 0.75, y, rng.choice(4, size=400, p=[0.7, 0.1, 0.1, 0.1]))
    assert flags.degenerate("classification", np.eye(4)[weak], y) is None   # a real 70/10/10/10 model
    majority = np.where(rng.random(400) < 0.02, rng.integers(1, 4, 400), 0)  # almost always the majority
    assert "chance" in flags.degenerate("classification", np.eye(4)[majority], y)
    labels = rng.normal(0, 1, 400)
    assert "nearly the same prediction" in flags.degenerate("regression", 0.3 + 1e-6 * rng.normal(size=400), labels)
    assert flags.degenerate("regression", 0.2 * labels + rng.normal(0, 0.1, 400), labels) is None  # shrunk, not constant


def main(sweeps: int = 2000) -> None:
    print(f"| regime | false *worse* (any row, identical losses; {sweeps} sweeps) | coverage of row − best | found worse |")
    print("|---|---|---|---|")
    for reg in REGIMES:
        rate = false_worse_rate(reg, sweeps)
        step = 0.03 if reg.sd_seed >= 0.01 else 0.02
        cover, power = coverage(reg, sweeps // 4, step)
        print(f"| {reg.name} | {rate:.3f} | {cover:.3f} | {power:.2f} (step {step}) |")
    print()
    print("| flag | regime | rate |")
    print("|---|---|---|")
    for rows in (1, 4, 12):
        print(f"| not converged | plateaus, {rows} row(s) × 3 seeds: sweeps with a false alarm | "
              f"{not_converged_rate(rows, 3, 0.0, sweeps=sweeps // 2):.3f} |")
    print(f"| not converged | rising 0.01/evaluation (noise 0.004), 3 seeds: caught | {not_converged_rate(4, 3, 0.01, 300):.2f} |")
    print(f"| not converged | rising 0.01/evaluation, 1 seed: caught | {not_converged_rate(4, 1, 0.01, 300):.2f} |")
    for rows in (2, 4, 12):
        print(f"| seeds disagree | equal spread, {rows} rows × 3 seeds: sweeps with a false alarm | "
              f"{seeds_disagree_rate(rows, 3, 1.0, sweeps):.3f} |")
    print(f"| seeds disagree | one row 3× noisier, 4 rows × 3 seeds: caught | {seeds_disagree_rate(4, 3, 3.0, sweeps):.2f} |")
    print(f"| seeds disagree | one row 3× noisier, 4 rows × 5 seeds: caught | {seeds_disagree_rate(4, 5, 3.0, sweeps):.2f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
