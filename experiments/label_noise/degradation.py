"""How much each loss loses to label noise: test pearson at noise 0 minus at 0.4, per loss, and each robust
loss's drop against mse's, by the report's variance model (seeds paired, plus the test-item noise the seeds
share, from a paired bootstrap over test items), with Bonferroni intervals over the 3 pre-stated comparisons.

    python experiments/label_noise/degradation.py <sweep dir of experiment=label_noise> > experiments/label_noise/degradation.md
    MLFLOW_TRACKING_URI=sqlite:///<store> python experiments/label_noise/degradation.py <parent run id> > ...

Reads only the MLflow store of the sweep (its finished runs and their ``predictions/test.parquet``).
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

from losslab import predictions, tracking
from losslab.metrics.weighted import pearson as weighted_pearson
from losslab.report import stats
from losslab.report import sweep as reports

BASE, NOISY, REFERENCE = "0", "0.4", "mse"


def runs_of(sweep_dir: str):
    """(uri, {(loss, noise, seed): finished run}): the sweep's children and the runs of other sweeps it reused."""
    uri, parent = reports.resolve(sweep_dir, os.environ.get("MLFLOW_TRACKING_URI"))
    finished, _ = tracking.latest_per_job(tracking.children(uri, parent))
    return uri, {(r.data.tags["choice.loss"], r.data.params["task.label_noise"], r.data.params["seed"]): r
                 for r in finished}


def main(sweep_dir: str, resamples: int = 1000) -> None:
    uri, runs = runs_of(sweep_dir)
    with tempfile.TemporaryDirectory() as tmp:   # the report's reader (items in order)
        preds = {key: predictions.download(uri, run.info.run_id, "test", f"{tmp}/{i}")
                 for i, (key, run) in enumerate(runs.items())}
    losses = sorted({k[0] for k in runs}, key=["mse", "mae", "huber", "log_cosh"].index)
    noises = sorted({k[1] for k in runs}, key=float)
    seeds = sorted({k[2] for k in runs}, key=int)
    n = len(next(iter(preds.values()))[0])
    counts = stats.resample_counts(n, resamples, np.random.default_rng(0))

    def pearson(key):  # (value on the whole test set, bootstrap replicates on the shared resamples)
        _, pred, label = preds[key]   # in item order
        x, y = pred.astype(float).ravel(), label.astype(float).ravel()
        return float(np.corrcoef(x, y)[0, 1]), weighted_pearson(counts, x, y)

    value = {k: pearson(k) for k in preds}
    drop = {L: {s: value[(L, BASE, s)][0] - value[(L, NOISY, s)][0] for s in seeds} for L in losses}
    per_seed = {L: {s: value[(L, BASE, s)][1] - value[(L, NOISY, s)][1] for s in seeds} for L in losses}
    drop_reps = {L: np.mean(list(per_seed[L].values()), axis=0) for L in losses}

    print(f"# Label noise: how much test pearson each loss loses from noise {BASE} to {NOISY}\n")
    print(f"Sweep `{sweep_dir}`; {len(seeds)} seeds ({', '.join(seeds)}); {n} test items; {resamples} paired "
          "bootstrap resamples of the test items, the same for every run. Built by "
          "`experiments/label_noise/degradation.py` from the sweep's MLflow store.\n")
    family = len(losses) - 1   # each robust loss against mse: a fixed family, stated before the runs
    diffs = {L: stats.compare(stats.Sample(drop[L], per_seed[L]), stats.Sample(drop[REFERENCE], per_seed[REFERENCE]),
                              level=1 - stats.ALPHA / family)
             for L in losses if L != REFERENCE}
    for d in diffs.values():   # Bonferroni: the p and the interval are the same test, so they cannot disagree
        d.p_adjusted = min(1.0, d.p * family)
    head = " | ".join(f"pearson at {z}" for z in noises)
    print(f"| loss | {head} | drop {BASE} → {NOISY} | drop minus {REFERENCE}'s | verdict |")
    print("|---|" + "---|" * (len(noises) + 3))
    for L in losses:
        cells = []
        for z in noises:
            m, lo, hi = stats.t_interval([value[(L, z, s)][0] for s in seeds])
            cells.append(f"{m:.4f} s [{lo:.4f}, {hi:.4f}]")
        m, lo, hi = stats.t_interval(drop[L].values())
        tlo, thi = stats.percentile_interval(drop_reps[L])
        d = f"{m:.4f} s [{lo:.4f}, {hi:.4f}] t [{tlo:.4f}, {thi:.4f}]"
        if L == REFERENCE:
            vs, verdict = "–", "reference"
        else:
            diff = diffs[L]
            vs = f"{diff.diff:+.4f} [{diff.low:.4f}, {diff.high:.4f}] p={diff.p:.3f}, Bonferroni p={diff.p_adjusted:.3f}"
            verdict = "tie" if diff.tie() else ("degrades less" if diff.diff < 0 else "degrades more")
        print(f"| {L} | {' | '.join(cells)} | {d} | {vs} | {verdict} |")
    print(f"\nA drop is pearson at noise {BASE} minus pearson at {NOISY} (same seed); `s`: 95% t-interval over seeds; "
          "`t`: 95% percentile interval under the paired bootstrap over test items. \"drop minus mse's\": the "
          f"difference of the mean drops, its {100 * (1 - stats.ALPHA / family):.3g}% interval (seeds paired + the test "
          f"items they share; Bonferroni over the {len(diffs)} comparisons, so the interval and the adjusted p are "
          "one test), its p and its Bonferroni-adjusted p. Negative: the loss loses less than mse. Verdict: "
          "\"degrades less\" (or \"more\") when the interval excludes 0 (⟺ the adjusted p is below 0.05), "
          "\"tie\" otherwise (the rule of the study's report).")


if __name__ == "__main__":
    main(sys.argv[1])
