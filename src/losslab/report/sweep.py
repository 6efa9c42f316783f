"""A sweep's report, the public API: :func:`build` it from the MLflow store, :func:`write` it (``report.md``,
``table.md``, the plots) into a folder and onto the parent run, :func:`resolve` a sweep dir or a parent run id;
:func:`table` and :func:`answer` say it in a table and in one line.

    from losslab.report import sweep
    built = sweep.write(uri, parent_id, out)
    print(sweep.answer(built))
"""

from __future__ import annotations

from pathlib import Path

from losslab import paths
from losslab.paths import PARENT_FILE
from losslab.report.build import RESAMPLES, Report, build
from losslab.report.plots import plots
from losslab.report.rows import SEED_KEYS, Row, row_label, row_labels, run_labels, seed_key, suite_metrics
from losslab.report.stats import compare, holm
from losslab.report.table import VERSION, answer, comparisons, markdown, table
from losslab.store import Store


__all__ = ["PARENT_FILE", "RESAMPLES", "Report", "Row", "SEED_KEYS", "VERSION", "answer", "build", "compare",
           "comparisons", "holm", "markdown", "resolve", "row_label", "row_labels", "run_labels", "seed_key",
           "suite_metrics", "table", "write"]


def write(uri: str, parent_id: str, out: Path, log_to_parent: bool = True, resamples: int = RESAMPLES,
          metrics=None) -> Report:
    """Build the report, write it into ``out`` and (by default) onto the parent run as ``report/``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = build(uri, parent_id, resamples, declare=metrics)
    report.files = plots(report, uri, out) if report.rows else []
    (out / "report.md").write_text(markdown(report, uri))
    (out / "table.md").write_text(table(report) + "\n")
    report.files += [out / "report.md", out / "table.md"]
    if log_to_parent:
        client = Store(uri)
        for f in report.files:
            client.log_artifact(parent_id, str(f), "report")
    return report


def resolve(target: str, uri: str | None) -> tuple[str, str]:
    """(tracking uri, parent run id) from a sweep dir (its ``mlflow_parent.txt``) or a parent run id."""
    path = Path(target)
    if path.is_dir():
        marker = path / PARENT_FILE
        if not marker.is_file():
            raise SystemExit(f"losslab.report: {marker} not found: is {path} a losslab sweep dir?")
        saved_uri, parent = marker.read_text().split()[:2]
        return uri or saved_uri, parent
    if uri is None:
        uri = f"sqlite:///{paths.project_root() / 'outputs' / 'mlflow.db'}"
    return uri, target
