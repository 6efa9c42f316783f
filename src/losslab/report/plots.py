"""The report's plots: every job's training loss, the validation objective over steps, the test metrics.

Readable by construction:

- **at most** :data:`MAX_SERIES` **series per panel.** A sweep with more rows is split into panels (:func:`panels`):
  one per setting of the swept parameters other than the loss when each setting has few enough losses
  (``label_noise``: a panel per noise level, a series per loss, the same colour for a loss in every panel),
  else consecutive groups of rows;
- **legends outside the data** (below each panel, or below the figure), x tick labels short (a setting, not
  a row label) or wrapped;
- **bars start at 0**, for metrics bounded below by 0 (errors, accuracies, F1, ECE, ...): no truncated bar
  exaggerates a difference. Metrics that can be negative (:data:`SIGNED`: pearson, spearman, r2) are drawn as
  points, not bars, so their axis may zoom;
- **both intervals** of the report's table on every bar or point: ``s`` (95% over seeds; thick, black) and
  ``t`` (95% over test items, the bootstrap; thin, grey) side by side, the legend says which.
"""

from __future__ import annotations

import math
import statistics
import textwrap
from pathlib import Path

from losslab.report.build import Report
from losslab.report.table import arrow
from losslab.store import Store

# matplotlib is imported inside functions: the Agg backend is chosen before pyplot loads, and only writing the
# plots needs it (report.sweep imports this module)

MAX_SERIES = 8
SIGNED = frozenset({"pearson", "spearman", "r2"})  # can be below 0: points on a free axis, never bars
SEP = " · "  # rows.row_labels: the loss, then each swept setting


def _history(client: Store, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.metric_history(run_id, key))


def _loss(label: str) -> str:
    return label.split(SEP)[0]


def _setting(label: str) -> str:
    return SEP.join(label.split(SEP)[1:])


def panels(labels: list[str], most: int = MAX_SERIES) -> tuple[list[tuple[str, list[str]]], bool]:
    """(panels, by setting): the row labels split into panels of at most ``most`` series, each ``(title,
    labels)``. One panel (no title) when they fit; else one panel per setting of the swept parameters other than
    the loss, when each setting has at most ``most`` rows and every row is a distinct loss within it (``by
    setting``: a series is then a loss, named by the loss alone); else consecutive groups of ``most`` rows."""
    if len(labels) <= most:
        return [("", list(labels))], False
    settings: dict[str, list[str]] = {}
    for label in labels:
        settings.setdefault(_setting(label), []).append(label)
    fits = all(len(group) <= most and len({_loss(x) for x in group}) == len(group) for group in settings.values())
    if len(settings) > 1 and fits and len({_loss(x) for x in labels}) <= most:
        return [(setting, group) for setting, group in settings.items()], True
    chunks = [labels[i:i + most] for i in range(0, len(labels), most)]
    return [(f"rows {i * most + 1}–{i * most + len(c)} of {len(labels)}", c) for i, c in enumerate(chunks)], False


def _wrap(text: str, width: int = 22) -> str:
    return "\n".join(textwrap.wrap(text, width, break_long_words=False)) or text


def _ticks(settings: list[str]) -> tuple[list[str], str]:
    """(tick labels, axis label) for panels by setting: the values alone when every setting is one ``key=value``
    of the same key (``0``, ``0.2``, ``0.4`` under ``task.label_noise``), else each setting wrapped."""
    parts = [s.split("=", 1) if SEP not in s and "=" in s else None for s in settings]
    if all(parts) and len({p[0] for p in parts}) == 1:
        return [p[1] for p in parts], parts[0][0]
    return [_wrap(s.replace(SEP, " "), 16) for s in settings], ""


def plots(report: Report, uri: str, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    client = Store(uri)
    labels = [row.label for row in report.rows]
    groups, by_setting = panels(labels)

    def name(label: str) -> str:  # a series' name in its panel
        return _loss(label) if by_setting else label

    keys = list(dict.fromkeys(name(x) for x in labels))
    colors = {x: plt.cm.tab10(keys.index(name(x)) % 10 if len(keys) <= 10 else
                              next(g.index(x) for _, g in groups if x in g)) for x in labels}
    rows = {row.label: row for row in report.rows}
    files = []

    def flagged(label: str) -> str:
        return " (flagged)" if label in report.flags else ""

    def curves(path: Path, draw, ylabel: str, title: str):
        fig, axes = _grid(plt, len(groups), sharey=True)
        for ax, (head, group) in zip(axes, groups):
            for label in group:
                draw(ax, rows[label], name(label) + flagged(label))
            ax.set(xlabel="step", ylabel=ylabel if ax is axes[0] else None)
            ax.set_title(head, fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
        fig.suptitle(title, fontsize=10)
        files.append(_save(fig, path))

    def draw_loss(ax, row, label):
        for i, run in enumerate(row.runs):
            curve = [(s, v) for s, v in _history(client, run.info.run_id, "loss") if math.isfinite(v)]
            if curve and curve[0][1] != 0:
                ax.plot([s for s, _ in curve], [v / curve[0][1] for _, v in curve], color=colors[row.label],
                        alpha=0.8, lw=1.0, label=label if i == 0 else None,
                        ls="--" if row.label in report.flags else "-")

    curves(out / "loss_curves.png", draw_loss, "training loss / its first logged value",
           "Training loss of every job (each on its own scale, divided by its first value; dashed: flagged)")

    key = f"eval_{report.objective}"

    def draw_validation(ax, row, label):
        by_step: dict[int, list[float]] = {}
        for run in row.runs:
            for s, v in _history(client, run.info.run_id, key):
                by_step.setdefault(s, []).append(v)
        steps = sorted(by_step)
        means = [statistics.fmean(by_step[s]) for s in steps]
        ax.plot(steps, means, marker="o", ms=3.5, color=colors[row.label], label=label,
                ls="--" if row.label in report.flags else "-")
        if steps and all(len(by_step[s]) > 1 for s in steps):
            sd = [statistics.stdev(by_step[s]) for s in steps]
            ax.fill_between(steps, [m - d for m, d in zip(means, sd)], [m + d for m, d in zip(means, sd)],
                            color=colors[row.label], alpha=0.12)

    curves(out / "validation.png", draw_validation, f"validation {report.objective}",
           f"Validation {report.objective} over training (mean ± std over seeds; dashed: flagged)")

    files.append(_test_metrics(plt, report, groups, by_setting, name, colors, out / "test_metrics.png"))
    return files


def _grid(plt, n: int, sharey: bool = False, cols: int = 3, width: float = 5.0, height: float = 4.4):
    cols = max(1, min(n, cols))
    nrows = math.ceil(n / cols) or 1
    fig, axes = plt.subplots(nrows, cols, figsize=(width * cols, height * nrows), squeeze=False, sharey=sharey,
                             layout="constrained")
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def _errorbars(ax, x: float, cell, offset: float) -> None:
    """The cell's two intervals beside ``x``: ``s`` (seeds; thick, black) left, ``t`` (test items; thin, grey)
    right; an interval that is not there (one seed, no per-item predictions) is not drawn."""
    for lo, hi, dx, color, lw in ((cell.seed_low, cell.seed_high, -offset, "black", 2.2),
                                  (cell.test_low, cell.test_high, offset, "0.45", 1.1)):
        if math.isfinite(lo) and math.isfinite(hi):
            # drawn from lo to hi around its own centre: a bootstrap percentile interval need not hold the mean
            ax.errorbar([x + dx], [(lo + hi) / 2], yerr=[(hi - lo) / 2], fmt="none", ecolor=color,
                        elinewidth=lw, capsize=3, capthick=lw, zorder=3)


def _test_metrics(plt, report: Report, groups, by_setting: bool, name, colors, path: Path) -> Path:
    """One panel per metric (per metric and group of rows when the rows are not split by setting): bars from
    0, or points for a metric that can be negative, each with its ``s`` and ``t`` intervals."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    metrics = report.metrics
    blocks = [(m, groups) for m in metrics] if by_setting or len(groups) == 1 else \
        [(m, [g]) for g in groups for m in metrics]
    fig, axes = _grid(plt, len(blocks), cols=min(len(metrics), 4) if len(groups) == 1 or by_setting
                      else len(metrics), width=3.8 if by_setting else 3.4, height=3.4)
    width = 0.8 / max(len(g) for _, g in groups) if by_setting else 0.7
    legend: dict[str, object] = {}
    for ax, (m, shown) in zip(axes, blocks):
        signed = m in SIGNED or any(c.mean < 0 for c in (report.cells.get((x, m)) for _, g in shown for x in g)
                                    if c and math.isfinite(c.mean))
        ticks, tick_labels = [], []
        for gi, (head, group) in enumerate(shown):
            for i, label in enumerate(group):
                cell = report.cells.get((label, m))
                if cell is None or not math.isfinite(cell.mean):
                    continue
                x = gi + (i - (len(group) - 1) / 2) * width if by_setting else i
                bad = label in report.flags
                if signed:
                    ax.plot([x], [cell.mean], "o", ms=6, color=colors[label], mfc="white" if bad else colors[label],
                            mew=1.5, zorder=4)
                else:
                    ax.bar([x], [cell.mean], width=width * 0.9, color=colors[label], hatch="//" if bad else "",
                           edgecolor="white" if not bad else "black", lw=0.5)
                _errorbars(ax, x, cell, width * 0.18)
                legend.setdefault(name(label), colors[label])
                if not by_setting:
                    ticks.append(x)
                    tick_labels.append(_wrap(label, 18))
            if by_setting:
                ticks.append(gi)
        if by_setting:
            tick_labels, key = _ticks([head for head, _ in shown])
            ax.set_xlabel(key, fontsize=8)
        ax.set_xticks(ticks, tick_labels, fontsize=7.5 if by_setting else 7, rotation=0 if by_setting else 45,
                      ha="center" if by_setting else "right")
        head = f" ({shown[0][0]})" if len(shown) == 1 and shown[0][0] else ""
        ax.set_title(f"test {m} {arrow(m)}{head}", fontsize=9)
        if not signed:
            ax.set_ylim(bottom=0)  # bars from 0: none truncated
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="y", labelsize=7.5)
    handles = [Patch(color=c, label=k) for k, c in legend.items()] if by_setting else []
    handles += [Line2D([], [], color="black", lw=2.2, label="s: 95% interval over seeds"),
                Line2D([], [], color="0.45", lw=1.1, label="t: 95% interval over test items (bootstrap)"),
                Patch(facecolor="white", edgecolor="black", hatch="//", label="flagged (hatched bar, hollow point)")]
    ncol = max(1, min(len(handles), 8, int(fig.get_figwidth() / 2.1)))  # a row of the legend fits the figure
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.suptitle("Test metrics: mean over seeds with its two 95% intervals\nbars from 0; points for metrics "
                 f"that can be negative ({', '.join(sorted(SIGNED))})", fontsize=9.5)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
