"""The report on a sweep's parent run's overview page (its description, Markdown): the one-line answer, the rows
ranked on the objective, the report's plots shown inline, and where the full report is. Set by
:func:`losslab.ui.describe_sweep` at the end of a sweep."""

from __future__ import annotations

from urllib.parse import quote

from losslab.report.build import Report
from losslab.report.table import _f, _render, answer, arrow, cell, difference, flag_words
from losslab.store import NOTE_LIMIT


def _artifact_url(run_id: str, path: str) -> str:
    """A link the MLflow UI resolves against its own address (the UI's own ``get-artifact`` endpoint)."""
    return f"get-artifact?path={quote(path, safe='')}&run_uuid={run_id}"


def objective_table(built: Report) -> str:
    """The rows ranked on the objective: test (mean over seeds, the seed interval ``s`` and the test-item interval
    ``t``), the difference from the best row (its simultaneous interval, adjusted p, verdict), validation, flags."""
    o = built.objective
    ranked = built.ranking.get(o) or [r.label for r in built.rows]
    head = ["loss", "seeds", f"test {o} {arrow(o)}", "against the best", f"validation {o}", "flags"]
    lines = [head]
    for label in ranked:
        test = cell(built, label, o, markdown=True).replace("<br>", " ")
        vs = difference(built, label, o, markdown=True).replace("<br>", " ")
        lines.append([f"`{label}`", str(built.row(label).seeds()), test, vs,
                      _f(getattr(built.validation.get(label), "mean", None)), flag_words(built, label) or "–"])
    return _render(lines, markdown=True)


def sweep_note(built: Report, failed: int = 0) -> str:
    """The parent run's description: the one-line answer, the rows ranked on the objective, the plots (the
    report's artifacts, shown inline), and where the full report is."""
    o = built.objective
    plots = [f for f in built.files if str(f).endswith(".png")]
    lines = [f"**Answer ({o} {arrow(o)} on test):** {answer(built)}", ""]
    body = [objective_table(built), "",
            f"Test: mean over seeds, `s` 95% interval over seeds, `t` 95% interval over test items. Against the "
            f"best: the difference, its simultaneous interval (all pairs of rows at once) and the same test's "
            f"adjusted p; *worse* when the interval excludes 0, *tie* when it cannot tell. Every metric "
            f"and the statistics: Artifacts → `report/report.md`."]
    if failed:
        body += ["", f"**{failed} job(s) failed**: see the runs marked failed."]
    images = ["", *[f"![{p.stem}]({_artifact_url(built.parent_id, 'report/' + p.name)})" for p in plots]]
    for candidate in ([*lines, *body, *images], [*lines, *body], lines):
        text = "\n".join(candidate)
        if len(text) <= NOTE_LIMIT:
            return text
    return text[:NOTE_LIMIT]
