"""Where each loss puts its decision boundary: per label, the share of test items predicted on at the default
cut (logit > 0, probability 0.5) against the share truly on, the precision and recall there, and the cut that
validation picks (best F1, the report's ``tuned_`` metrics), as a probability. Mean over seeds.

    python experiments/multilabel_losses/thresholds.py <sweep dir of a multi-label study> > <study>/thresholds.md
    python experiments/multilabel_losses/thresholds.py <parent run id> --uri sqlite:///<store>/mlflow.db   # a restored snapshot

Reads only the MLflow store of the sweep (its finished runs and their ``predictions/{validation,test}.parquet``).
"""

from __future__ import annotations

import sys
import tempfile

import numpy as np

from losslab import predictions, tracking
from losslab.report import sweep as reports
from losslab.metrics.thresholds import choose
from losslab.report.build import label_names


def _split(uri: str, run_id: str, split: str, folder: str):
    _, logits, labels = predictions.download(uri, run_id, split, folder)   # the report's reader (items in order)
    return logits.astype(np.float64), labels > 0


def main(target: str, uri: str | None = None) -> None:
    uri, parent = reports.resolve(target, uri)
    finished, _ = tracking.latest_per_job(tracking.children(uri, parent))
    per_loss: dict[str, list[np.ndarray]] = {}
    truth = None
    with tempfile.TemporaryDirectory() as tmp:
        for i, run in enumerate(sorted(finished, key=lambda r: r.info.start_time)):  # the sweep's order
            logits, on = _split(uri, run.info.run_id, "test", f"{tmp}/t{i}")
            val_logits, val_on = _split(uri, run.info.run_id, "validation", f"{tmp}/v{i}")
            pred = logits > 0
            tp = (pred & on).sum(0)
            cut = 1 / (1 + np.exp(-choose(val_logits, val_on)))
            per_loss.setdefault(run.data.tags["choice.loss"], []).append(
                np.stack([pred.mean(0), tp / np.maximum(pred.sum(0), 1), tp / np.maximum(on.sum(0), 1), cut]))
            truth = on.mean(0)
    names = label_names(finished) or [f"label {j}" for j in range(len(truth))]
    print("# Multi-label decision boundaries: where each loss puts the cut\n")
    print(f"From `{target}` (MLflow parent run `{parent}`, store `{uri}`): {len(finished)} finished runs. Per label: the "
          "share of test items truly on; for each loss (mean over its seeds) the share predicted on at probability "
          "0.5, the precision and recall there, and the probability cut that maximizes F1 on validation.\n")
    print("| label | truly on | loss | seeds | predicted on at 0.5 | precision at 0.5 | recall at 0.5 | cut chosen on validation |")
    print("|---|---|---|---|---|---|---|---|")
    for j, name in enumerate(names):
        for loss, runs in per_loss.items():
            m = np.mean(runs, axis=0)[:, j]
            print(f"| {name} | {truth[j]:.3f} | {loss} | {len(runs)} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} | {m[3]:.3f} |")
    print("\n| loss | predicted on at 0.5, mean over labels (truly on: "
          f"{truth.mean():.3f}) | cut chosen on validation, mean over labels |")
    print("|---|---|---|")
    for loss, runs in per_loss.items():
        m = np.mean(runs, axis=0)
        print(f"| {loss} | {m[0].mean():.3f} | {m[3].mean():.3f} |")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="thresholds.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="a sweep dir, or a parent run id with --uri")
    parser.add_argument("--uri", help="the tracking uri (default: the sweep dir's)")
    args = parser.parse_args()
    main(args.target, args.uri)
