"""The report's plots on a hand-made report (no training, no store): at most 8 series a panel (a label_noise
sweep's 12 rows split by noise level), bars from 0 for metrics bounded below by 0, points for those that can
be negative, and both intervals (seeds, test items) on every bar."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib
import pytest

from losslab.report import plots
from losslab.report.build import Cell, Report
from losslab.report.rows import Row

matplotlib.use("Agg")

LOSSES = ("mse", "mae", "huber", "log_cosh")
NOISE = ("0", "0.2", "0.4")


def test_panels_split_more_than_eight_rows_by_setting_or_in_groups():
    few = [f"l{i}" for i in range(8)]
    assert plots.panels(few) == ([("", few)], False)
    noise = [f"{loss} · task.label_noise={z}" for loss in LOSSES for z in NOISE]
    groups, by_setting = plots.panels(noise)
    assert by_setting and [head for head, _ in groups] == [f"task.label_noise={z}" for z in NOISE]
    assert all(len(g) == 4 and len({plots._loss(x) for x in g}) == 4 for _, g in groups)
    many = [f"loss{i}" for i in range(12)]  # no setting to split by: groups of 8 in order
    groups, by_setting = plots.panels(many)
    assert not by_setting and [len(g) for _, g in groups] == [8, 4] and groups[1][0] == "rows 9–12 of 12"
    assert plots._ticks(["task.label_noise=0", "task.label_noise=0.4"]) == (["0", "0.4"], "task.label_noise")


class History:  # the store's metric histories, made up (no store)
    def __init__(self, uri=None):
        pass

    def metric_history(self, run_id, key):
        return [SimpleNamespace(step=s, value=1.0 / s) for s in (1, 2, 3, 4)]


def report() -> Report:
    rows, cells = [], {}
    for loss in LOSSES:
        for z in NOISE:
            label = f"{loss} · task.label_noise={z}"
            runs = [SimpleNamespace(info=SimpleNamespace(run_id=f"{label}{s}")) for s in (1, 2, 3)]
            rows.append(Row(label, runs))
            m = 0.8 - float(z) / 10
            cells[(label, "pearson")] = Cell(m, m - 0.01, m + 0.01, m - 0.02, m + 0.02, 3)
            cells[(label, "mae")] = Cell(0.6 + float(z) / 2, 0.58, 0.62 + float(z) / 2, 0.57, 0.64 + float(z) / 2, 3)
    out = Report("p", "pearson", "regression", ["pearson", "mae"], rows, [], cells=cells)
    out.flags = {"huber · task.label_noise=0.2": ["not converged: ..."]}
    return out


def test_plots_are_split_start_bars_at_zero_and_show_both_intervals(tmp_path, monkeypatch):
    figures = {}

    def keep(fig, path: Path) -> Path:
        figures[Path(path).name] = fig
        fig.savefig(path, dpi=40)
        return path

    monkeypatch.setattr(plots, "Store", History)
    monkeypatch.setattr(plots, "_save", keep)
    files = plots.plots(report(), "sqlite:///unused.db", tmp_path)
    assert [f.name for f in files] == ["loss_curves.png", "validation.png", "test_metrics.png"]
    assert all(f.read_bytes()[:4] == b"\x89PNG" for f in files)
    for name in ("loss_curves.png", "validation.png"):
        axes = [ax for ax in figures[name].axes if ax.get_legend()]
        assert len(axes) == 3  # a panel per noise level
        for ax in axes:
            texts = [t.get_text() for t in ax.get_legend().get_texts()]
            assert len(texts) <= plots.MAX_SERIES and texts[0] == "mse"
    metrics = {ax.get_title().split()[1]: ax for ax in figures["test_metrics.png"].axes if ax.get_title()}
    bars = [p for p in metrics["mae"].patches if p.get_height() > 0]
    assert len(bars) == 12 and metrics["mae"].get_ylim()[0] == 0  # bounded below by 0: bars from 0
    assert not [p for p in metrics["pearson"].patches if p.get_height() > 0]  # can be negative: points
    assert metrics["pearson"].get_ylim()[0] > 0.5
    for ax in metrics.values():  # an s bar and a t bar per cell
        assert len(ax.containers) == 2 * 12 + (12 if ax is metrics["mae"] else 0)
    legend = [t.get_text() for t in figures["test_metrics.png"].legends[0].get_texts()]
    assert legend[:4] == list(LOSSES) and any(t.startswith("s: ") for t in legend) and \
        any(t.startswith("t: ") for t in legend)


@pytest.mark.parametrize("n", [3, 12])
def test_rows_without_a_setting_get_their_own_labels(tmp_path, monkeypatch, n):
    monkeypatch.setattr(plots, "Store", History)
    base = report()
    rows = [Row(f"loss{i}", r.runs) for i, r in enumerate(base.rows[:n])]
    cells = {(f"loss{i}", m): base.cells[(r.label, m)] for i, r in enumerate(base.rows[:n]) for m in base.metrics}
    files = plots.plots(Report("p", "pearson", "regression", ["pearson", "mae"], rows, [], cells=cells), "u", tmp_path)
    assert len(files) == 3 and all(f.stat().st_size > 0 for f in files)
