"""Simulated sweeps with known truth, for the report's and the race's calibration tests (numpy only).

Each simulated sweep draws per-item scores for every run the way a fine-tuning sweep produces them:

    score(row, split, seed, item) = mu_row + split effect + seed effect(row, seed) + seed block(seed)
                                    + u(row, split, item) + v(row, split, seed, item) + difficulty(split, item)

(``u``: the row's test-sample noise shared by its seeds; ``v``: the part that changes with the seed; ``block``:
what one seed shares across losses: data order, initialization). A run's value is the mean over its test items,
its bootstrap replicates the same mean on resampled items (the same resamples for every run of a split), and
the report's own code turns them into replicate units (:func:`stats.units`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from losslab.report import stats


@dataclass
class Regime:
    name: str
    rows: int = 4
    seeds: int = 3
    splits: int = 1
    items: int = 300
    sd_seed: float = 0.01     # seed effect (row × seed)
    sd_block: float = 0.01    # what a seed shares across rows
    sd_u: float = 0.05        # per-item, shared by a row's seeds (÷ √items in the mean)
    sd_v: float = 0.05        # per-item, per run
    sd_split: float = 0.0     # row × split effect
    one_seed_rows: int = 0    # rows whose other seeds crashed


REGIMES = [
    Regime("seed-dominated, 2 rows", rows=2, sd_seed=0.02, sd_u=0.05, sd_v=0.05),
    Regime("seed-dominated, 4 rows", rows=4, sd_seed=0.02, sd_u=0.05, sd_v=0.05),
    Regime("seed-dominated, 12 rows", rows=12, sd_seed=0.02, sd_u=0.05, sd_v=0.05),
    Regime("item-dominated, 4 rows", rows=4, sd_seed=0.002, sd_u=0.5, sd_v=0.3),
    Regime("item-dominated, 12 rows", rows=12, sd_seed=0.002, sd_u=0.5, sd_v=0.3),
    Regime("seed × item, 5 seeds, 4 rows", rows=4, seeds=5, sd_seed=0.006, sd_u=0.2, sd_v=0.4),
    Regime("one-seed rows among 3-seed rows", rows=4, sd_seed=0.01, sd_u=0.3, sd_v=0.3, one_seed_rows=2),
    Regime("3 splits × 3 seeds, 4 rows", rows=4, splits=3, sd_seed=0.005, sd_split=0.02, sd_u=0.3, sd_v=0.2),
]


def simulate(reg: Regime, mu, rng, resamples: int = 200) -> dict:
    """label -> stats.Sample of one simulated sweep (per-run values and item-bootstrap replicates)."""
    entries = {r: [] for r in range(reg.rows)}
    for split in range(reg.splits):
        counts = stats.resample_counts(reg.items, resamples, rng)
        difficulty = rng.normal(0, 0.3, reg.items)
        block = rng.normal(0, reg.sd_block, reg.seeds)
        for r in range(reg.rows):
            u = rng.normal(0, reg.sd_u, reg.items)
            split_effect = rng.normal(0, reg.sd_split) if reg.sd_split else 0.0
            seeds = 1 if r < reg.one_seed_rows else reg.seeds
            for s in range(seeds):
                score = (mu[r] + split_effect + rng.normal(0, reg.sd_seed) + block[s] + difficulty + u
                         + rng.normal(0, reg.sd_v, reg.items))
                entries[r].append((str(split), (str(s), str(split)), float(score.mean()),
                                   counts @ score / reg.items))
    by_split = reg.splits > 1
    return {f"row{r}": stats.units(e, unit_of_split=by_split) for r, e in entries.items()}


