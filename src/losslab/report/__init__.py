"""The answer at the end of a sweep, built from the MLflow store alone:

    python -m losslab.report <sweep dir | parent run id> [--uri sqlite:///.../mlflow.db] [--out DIR]

One module per concern:

- :mod:`~losslab.report.rows`: the sweep's runs as rows (one per loss and per other swept setting) and seed
  keys (every seed and the split: what pairs two rows' runs);
- :mod:`~losslab.report.stats`: the statistics on plain numbers: seed intervals, the comparison of two rows
  (seeds + the test items they share), the simultaneous comparison with the best; its docstring says what
  the report claims;
- :mod:`~losslab.report.items`: each metric suite on bootstrap resamples of the test items, from the runs'
  per-item predictions (``predictions/test.parquet``);
- :mod:`~losslab.report.flags`: rows that must not be ranked (degenerate, not converged) and what is only
  pointed out (seeds disagree);
- :mod:`~losslab.report.build`: all of it from the store (:func:`build`);
- :mod:`~losslab.report.table`: the table, the comparison with the best, the one-line :func:`answer`,
  ``report.md``; :mod:`~losslab.report.plots`: the plots; ``__main__``: the command line.
"""

from __future__ import annotations

from pathlib import Path

from losslab.report.build import RESAMPLES, Report, build
from losslab.report.rows import SEED_KEYS, Row, row_label, row_labels, run_labels, seed_key, suite_metrics
from losslab.report.stats import compare, holm
from losslab.report.table import VERSION, answer, comparisons, markdown, table

PARENT_FILE = "mlflow_parent.txt"  # in a sweep dir: "<tracking uri>\n<parent run id>\n"

__all__ = ["PARENT_FILE", "RESAMPLES", "Report", "Row", "SEED_KEYS", "VERSION", "answer", "build", "compare",
           "comparisons", "holm", "markdown", "resolve", "row_label", "row_labels", "run_labels", "seed_key",
           "suite_metrics", "table", "write"]


def write(uri: str, parent_id: str, out: Path, log_to_parent: bool = True, resamples: int = RESAMPLES,
          metrics=None) -> Report:
    """Build the report, write it into ``out`` and (by default) onto the parent run as ``report/``."""
    from mlflow.tracking import MlflowClient

    from losslab.report.plots import plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = build(uri, parent_id, resamples, declare=metrics)
    report.files = plots(report, uri, out) if report.rows else []
    (out / "report.md").write_text(markdown(report, uri))
    (out / "table.md").write_text(table(report) + "\n")
    report.files += [out / "report.md", out / "table.md"]
    if log_to_parent:
        client = MlflowClient(tracking_uri=uri)
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
        from losslab import paths

        uri = f"sqlite:///{paths.project_root() / 'outputs' / 'mlflow.db'}"
    return uri, target
