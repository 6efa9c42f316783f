"""``python -m losslab.report <sweep dir | parent run id>``: rebuild a sweep's report from the MLflow store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from losslab import report

    parser = argparse.ArgumentParser(prog="python -m losslab.report",
                                     description="Rebuild a sweep's report from the MLflow store alone.")
    parser.add_argument("target", help="a sweep dir (outputs/multiruns/...) or a parent MLflow run id")
    parser.add_argument("--uri", help="tracking URI (default: the sweep dir's, or sqlite:///<checkout>/outputs/mlflow.db)")
    parser.add_argument("--out", help="output folder (default: <sweep dir>/report, or ./report-<run id>)")
    parser.add_argument("--resamples", type=int, default=report.RESAMPLES,
                        help=f"bootstrap resamples of the test items (default {report.RESAMPLES})")
    parser.add_argument("--no-log", action="store_true", help="do not attach the report to the parent run")
    args = parser.parse_args(argv)
    uri, parent = report.resolve(args.target, args.uri)
    out = Path(args.out) if args.out else (Path(args.target) / "report" if Path(args.target).is_dir()
                                            else Path(f"report-{parent[:8]}"))
    try:
        built = report.write(uri, parent, out, log_to_parent=not args.no_log, resamples=args.resamples)
    except Exception as err:  # an unknown run id, a store that is not there
        print(f"losslab.report: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    print(report.table(built, markdown=False))
    print(f"\n{report.answer(built)}")
    print(f"\nreport: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
