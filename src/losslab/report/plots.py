"""The report's plots: every job's training loss, the validation objective over steps, the test metrics."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from losslab.report.build import Report
from losslab.report.table import arrow


def _history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def plots(report: Report, uri: str, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    colors = {row.label: plt.cm.tab10(i % 10) for i, row in enumerate(report.rows)}
    files = []

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for row in report.rows:
        for i, run in enumerate(row.runs):
            curve = [(s, v) for s, v in _history(client, run.info.run_id, "loss") if math.isfinite(v)]
            if curve and curve[0][1] != 0:
                ax.plot([s for s, _ in curve], [v / curve[0][1] for _, v in curve], color=colors[row.label],
                        alpha=0.8, lw=1.2, label=row.label if i == 0 else None)
    ax.set(xlabel="step", ylabel="training loss / its first logged value",
           title="Training loss of every job (each on its own scale, divided by its first value)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    files.append(_save(fig, out / "loss_curves.png"))

    key = f"eval_{report.objective}"
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for row in report.rows:
        by_step: dict[int, list[float]] = {}
        for run in row.runs:
            for s, v in _history(client, run.info.run_id, key):
                by_step.setdefault(s, []).append(v)
        steps = sorted(by_step)
        means = [statistics.fmean(by_step[s]) for s in steps]
        flagged = " (flagged)" if row.label in report.flags else ""
        ax.plot(steps, means, marker="o", color=colors[row.label], label=row.label + flagged,
                ls="--" if flagged else "-")
        if steps and all(len(by_step[s]) > 1 for s in steps):
            sd = [statistics.stdev(by_step[s]) for s in steps]
            ax.fill_between(steps, [m - d for m, d in zip(means, sd)], [m + d for m, d in zip(means, sd)],
                            color=colors[row.label], alpha=0.15)
    ax.set(xlabel="step", ylabel=f"validation {report.objective}",
           title=f"Validation {report.objective} over training (mean ± std over seeds)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    files.append(_save(fig, out / "validation.png"))

    n = len(report.metrics)
    cols = min(n, 4) or 1
    nrows = math.ceil(n / cols) or 1
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 3.2 * nrows), squeeze=False)
    for ax, m in zip(axes.flat, report.metrics):
        cells = [report.cells.get((row.label, m)) for row in report.rows]
        means = [c.mean if c else float("nan") for c in cells]
        errs = [(c.seed_high - c.seed_low) / 2 if c and math.isfinite(c.seed_high) else 0.0 for c in cells]
        ax.bar(range(len(report.rows)), means, yerr=errs, capsize=4,
               color=[colors[r.label] for r in report.rows],
               hatch=["//" if r.label in report.flags else "" for r in report.rows])
        ax.set_xticks(range(len(report.rows)), [r.label for r in report.rows], rotation=30, ha="right",
                      fontsize=7)
        ax.set_title(f"test {m} {arrow(m)}", fontsize=9)
        finite = [x for x in means if math.isfinite(x)]
        if finite and min(finite) > 0:  # bars from just below the smallest, so differences show
            low = min(m_ - e for m_, e in zip(means, errs) if math.isfinite(m_))
            ax.set_ylim(bottom=max(0.0, low - 0.1 * (max(finite) - low) - 0.05 * max(finite)))
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("Test metrics (mean over seeds, 95% seed interval; hatched: flagged)")
    files.append(_save(fig, out / "test_metrics.png"))
    return files


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
