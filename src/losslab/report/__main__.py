"""``python -m losslab.report <sweep dir | parent run id>``: rebuild a sweep's report from the MLflow store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from losslab import tracking
from losslab.report import sweep as report
from losslab.store import PARENT_TAG, SWEEP_TAG, Store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m losslab.report",
                                     description="Rebuild a sweep's report from the MLflow store alone.")
    parser.add_argument("target", help="a sweep dir (outputs/multiruns/...) or a parent MLflow run id")
    parser.add_argument("--uri", help="tracking URI (default: the sweep dir's, or sqlite:///<checkout>/outputs/mlflow.db)")
    parser.add_argument("--out", help="output folder (default: <sweep dir>/report, or ./report-<run id>)")
    parser.add_argument("--resamples", type=int, default=report.RESAMPLES,
                        help=f"bootstrap resamples of the test items (default {report.RESAMPLES})")
    parser.add_argument("--metrics", default="",
                        help="declared metrics besides the objective, comma-separated (default: the runs' report.metrics)")
    parser.add_argument("--no-log", action="store_true", help="do not attach the report to the parent run")
    args = parser.parse_args(argv)
    uri, parent = report.resolve(args.target, args.uri)
    out = Path(args.out) if args.out else (Path(args.target) / "report" if Path(args.target).is_dir()
                                            else Path(f"report-{parent[:8]}"))
    refused = not_a_parent(uri, parent)
    if refused:  # a job's run: its report would be empty, and attached to the wrong run
        print(f"losslab.report: error: {refused}", file=sys.stderr)
        return 2
    try:
        built = report.write(uri, parent, out, log_to_parent=not args.no_log, resamples=args.resamples,
                             metrics=[m for m in args.metrics.split(",") if m])
    except Exception as err:  # an unknown run id, a store that is not there
        print(f"losslab.report: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    print(report.table(built, markdown=False))
    print(f"\n{report.answer(built)}")
    print(f"\nreport: {out / 'report.md'}")
    return 0


def not_a_parent(uri: str, run_id: str) -> str | None:
    """Why ``run_id`` is not a sweep's parent run (a job's run of a sweep, or a single run), else None; an
    unknown id or store is left to :func:`losslab.report.sweep.write` to say."""
    try:
        run = Store(uri).run(run_id)
    except Exception:
        return None
    tags = run.data.tags
    if tags.get(PARENT_TAG):
        return (f"{run_id} is a job's run, not a sweep's parent: pass the parent's id "
                f"({tags[PARENT_TAG]})")
    if SWEEP_TAG not in tags and not tracking.children(uri, run_id):
        return (f"{run_id} is a single job's run, not a sweep's parent: it has no child runs to compare "
                "(a sweep: python train.py -m ...)")
    return None


if __name__ == "__main__":
    sys.exit(main())
