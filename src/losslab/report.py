"""The answer at the end of a sweep: a table, a significance test, plots and a Markdown report.

Reads the MLflow store only (anything in a report can be rebuilt later from the store):

    python -m losslab.report <sweep dir | parent run id> [--uri sqlite:///.../mlflow.db] [--out DIR]

- one row per loss (and per setting of any other swept parameter, e.g. ``loss.delta``), the task's whole
  metric suite on test as mean ± std over seeds (sample std), the number of seeds, the best of each column
  marked; never ``test_loss`` / ``eval_loss``, whose units differ from loss to loss;
- under each column, whether its best row is distinguishable from the runner-up: a paired t-test over the
  seeds both rows ran (Welch's t-test when they share fewer than two seeds), two-sided, at 0.05;
- ``loss_curves.png`` (every job's training loss divided by its first logged value), ``validation.png``
  (the objective on validation over steps, mean over seeds per row), ``test_metrics.png`` (bars, ± std);
- ``report.md`` stitching them together, written to the output folder and onto the parent run
  (``report/``), and failed jobs named with their errors.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from losslab.metrics import greater_is_better  # light: no evaluate, no torch

PARENT_FILE = "mlflow_parent.txt"  # in a sweep dir: "<tracking uri>\n<parent run id>\n"
ALPHA = 0.05
_SEED_KEYS = {"run.seed", "trainer.seed", "trainer.data_seed"}
_ROW_PREFIXES = ("loss.", "task.", "model.", "trainer.", "hardware.", "run.")
_NOT_ROW_KEYS = ("loss.fitted.", "task.label.", "trainer.output_dir", "trainer.logging_dir", "trainer.disable_tqdm")
_NOT_SUITE = ("loss", "runtime", "samples_per_second", "steps_per_second", "epoch")


@dataclass
class Row:
    label: str
    runs: list = field(default_factory=list)

    def values(self, metric: str) -> dict[str, float]:
        """seed -> test value of ``metric``."""
        return {r.data.params.get("run.seed", r.info.run_id): r.data.metrics[f"test_{metric}"]
                for r in self.runs if f"test_{metric}" in r.data.metrics}


@dataclass
class Report:
    parent_id: str
    objective: str
    metrics: list[str]
    rows: list[Row]
    failed: list
    ranking: dict[str, list[str]]  # metric -> row labels, best mean first
    tests: dict[str, tuple[str, str, float | None, str]]  # metric -> (best, runner-up, p, test name)
    files: list[Path] = field(default_factory=list)

    def best(self, metric: str) -> str | None:
        return (self.ranking.get(metric) or [None])[0]


def suite_metrics(runs: list) -> list[str]:
    """The test metrics of the task's suite that every finished job logged (test_loss and timings left out)."""
    keys = None
    for run in runs:
        names = {k[len("test_"):] for k in run.data.metrics if k.startswith("test_")}
        keys = names if keys is None else keys & names
    return sorted(k for k in keys or () if k not in _NOT_SUITE)


def row_labels(runs: list) -> dict[str, str]:
    """run id -> row label: the loss, plus every swept parameter other than the seed. A loss's own knob
    (``loss.delta``) counts when it varies between runs of that same loss."""
    keys = {k for r in runs for k in r.data.params if k.startswith(_ROW_PREFIXES)
            and not k.startswith(_NOT_ROW_KEYS) and k not in _SEED_KEYS}
    by_loss: dict[str, list] = {}
    for r in runs:
        by_loss.setdefault(_loss(r), []).append(r)

    def varies(key: str) -> bool:
        groups = by_loss.values() if key.startswith("loss.") else [runs]
        return any(len({r.data.params.get(key) for r in group}) > 1 for group in groups)

    varying = sorted(k for k in keys if varies(k))
    labels = {}
    for r in runs:
        parts = [_loss(r)] + [f"{k.removeprefix('loss.')}={_short(r.data.params.get(k))}" for k in varying
                              if not (k.startswith("loss.") and k not in r.data.params)]
        labels[r.info.run_id] = " · ".join(parts)
    return labels


def _loss(run) -> str:
    return run.data.tags.get("choice.loss") or run.info.run_name


def _order(run) -> tuple[int, int]:
    """Rows come in the sweep's order (job number), whatever order parallel jobs started in."""
    return int(run.data.tags.get("losslab.job_num", 1 << 30)), run.info.start_time


def _short(value: str | None) -> str:
    """A param as a row label shows it: floats to 4 significant digits (Optuna's 1.4553179565665342)."""
    try:
        return f"{float(value):.4g}" if value is not None and "." in value else str(value)
    except ValueError:
        return str(value)


def compare(a: dict[str, float], b: dict[str, float]) -> tuple[float | None, str]:
    """Two-sided p-value of best vs runner-up: paired over shared seeds, else Welch."""
    from scipy import stats

    shared = sorted(set(a) & set(b))
    if len(shared) >= 2:
        diffs = [a[s] - b[s] for s in shared]
        if all(d == diffs[0] for d in diffs):  # constant differences: the t statistic is undefined
            return (0.0 if diffs[0] != 0 else 1.0), f"paired t-test, n={len(shared)}"
        return float(stats.ttest_rel([a[s] for s in shared], [b[s] for s in shared]).pvalue), \
            f"paired t-test, n={len(shared)}"
    if len(a) >= 2 and len(b) >= 2:
        return float(stats.ttest_ind(list(a.values()), list(b.values()), equal_var=False).pvalue), "Welch t-test"
    return None, "one seed: no test"


def build(uri: str, parent_id: str) -> Report:
    from losslab import tracking

    finished, failed = tracking.latest_per_job(tracking.children(uri, parent_id))
    objective = next((r.data.params.get("task.objective") for r in finished), None) or ""
    labels = row_labels(finished)
    rows: dict[str, Row] = {}
    for run in sorted(finished, key=_order):
        rows.setdefault(labels[run.info.run_id], Row(labels[run.info.run_id])).runs.append(run)
    metrics = suite_metrics(finished)
    if objective in metrics:  # the objective first
        metrics = [objective] + [m for m in metrics if m != objective]
    ranking, tests = {}, {}
    for m in metrics:
        ranked = sorted((row for row in rows.values() if row.values(m)),
                        key=lambda row: statistics.fmean(row.values(m).values()), reverse=greater_is_better(m))
        ranking[m] = [row.label for row in ranked]
        if len(ranked) >= 2:
            p, how = compare(ranked[0].values(m), ranked[1].values(m))
            tests[m] = (ranked[0].label, ranked[1].label, p, how)
    return Report(parent_id, objective, metrics, list(rows.values()), failed, ranking, tests)


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    mean = statistics.fmean(values)
    return f"{mean:.4f} ± {statistics.stdev(values):.4f}" if len(values) > 1 else f"{mean:.4f}"


def table(report: Report, markdown: bool = True) -> str:
    """One row per loss: mean ± std over seeds of each test metric, the best marked (** / *)."""
    mark = ("**", "**") if markdown else ("*", "")
    head = ["loss", "seeds"] + [f"{m} ↑" if greater_is_better(m) else f"{m} ↓" for m in report.metrics]
    lines = [head]
    best = {m: report.best(m) for m in report.metrics}
    for row in report.rows:
        cells = [row.label, str(len(row.runs))]
        for m in report.metrics:
            cell = _cell(list(row.values(m).values()))
            cells.append(f"{mark[0]}{cell}{mark[1]}" if best[m] == row.label and len(report.rows) > 1 else cell)
        lines.append(cells)
    sig = ["best vs runner-up", ""]
    for m in report.metrics:
        if m not in report.tests:
            sig.append("–")
            continue
        _, _, p, how = report.tests[m]
        sig.append("no test" if p is None else f"{'yes' if p < ALPHA else 'no'} (p={p:.3f})")
    lines.append(sig)
    if markdown:
        out = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(lines[0])]
        out += ["| " + " | ".join(c) + " |" for c in lines[1:]]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in lines)


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
        ax.plot(steps, means, marker="o", color=colors[row.label], label=row.label)
        if all(len(by_step[s]) > 1 for s in steps):
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
        vals = [list(row.values(m).values()) for row in report.rows]
        means = [statistics.fmean(v) if v else float("nan") for v in vals]
        errs = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in vals]
        ax.bar(range(len(report.rows)), means, yerr=errs, capsize=4,
               color=[colors[r.label] for r in report.rows])
        ax.set_xticks(range(len(report.rows)), [r.label for r in report.rows], rotation=30, ha="right",
                      fontsize=7)
        ax.set_title(f"test {m} {'↑' if greater_is_better(m) else '↓'}", fontsize=9)
        finite = [x for x in means if math.isfinite(x)]
        if finite and min(finite) > 0:  # bars from just below the smallest, so differences show
            low = min(m_ - e for m_, e in zip(means, errs) if math.isfinite(m_))
            ax.set_ylim(bottom=max(0.0, low - 0.1 * (max(finite) - low + 1e-9)))
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("Test metrics (mean ± std over seeds)")
    files.append(_save(fig, out / "test_metrics.png"))
    return files


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(report: Report, uri: str) -> str:
    from mlflow.tracking import MlflowClient

    parent = MlflowClient(tracking_uri=uri).get_run(report.parent_id)
    first = report.rows[0].runs[0] if report.rows and report.rows[0].runs else None
    params = first.data.params if first else {}
    budget = (f"{params.get('trainer.max_steps')} steps" if params.get("trainer.max_steps", "-1") != "-1"
              else f"{params.get('trainer.num_train_epochs')} epoch(s)")
    seeds = sorted({r.data.params.get("run.seed") for row in report.rows for r in row.runs})
    lines = [
        f"# Sweep report: {_title(parent.data.tags)}",
        "",
        f"- command: `{parent.data.tags.get('losslab.command', '')}`",
        f"- task: `{params.get('task.name')}` · model: `{first.data.tags.get('choice.model') if first else ''}` · "
        f"objective: `{report.objective}` (validation, picks each job's best checkpoint)",
        f"- budget per job: {budget} × batch {params.get('trainer.per_device_train_batch_size')} "
        f"(lr {params.get('trainer.learning_rate')}); rows: train {_rows(params, 'task.max_train_samples')}, "
        f"validation {_rows(params, 'task.max_eval_samples')}, test {_rows(params, 'task.max_test_samples')}; "
        f"seeds: {', '.join(map(str, seeds))}",
        f"- MLflow parent run `{report.parent_id}`; {sum(len(r.runs) for r in report.rows)} finished job(s), "
        f"{len(report.failed)} failed",
        "",
        "## Test metrics (mean ± std over seeds; best of each column in bold)",
        "",
        table(report),
        "",
        f"The last line: is the best row distinguishable from the runner-up (two-sided, α = {ALPHA})? "
        "Paired t-test over the seeds both ran (Welch's t-test when they share fewer than two). With three "
        "seeds only large, consistent differences register. Losses' own values (`eval_loss`) are never "
        "compared: their units differ from loss to loss.",
        "",
    ]
    if report.objective in report.tests:
        best, second, p, how = report.tests[report.objective]
        verdict = ("distinguishable" if p is not None and p < ALPHA else "not distinguishable")
        lines += [f"**Answer ({report.objective}):** `{best}` is best; against the runner-up `{second}` it is "
                  f"{verdict} ({how}{'' if p is None else f', p = {p:.3f}'}).", ""]
    lines += ["## Plots", "", "![training loss](loss_curves.png)", "", "![validation](validation.png)", "",
              "![test metrics](test_metrics.png)", ""]
    if report.failed:
        lines += ["## Failed jobs", ""]
        for run in report.failed:
            lines.append(f"- `{run.info.run_name}` ({run.data.tags.get('losslab.overrides', '')}), run "
                         f"`{run.info.run_id}`: {run.data.tags.get('error', run.info.status)}")
        lines.append("")
    return "\n".join(lines)


def _title(tags: dict) -> str:
    """``experiment=<study> (sweep <time>)`` for a preset, else the sweep's name."""
    name = tags.get("losslab.sweep", "sweep")
    study = [o for o in tags.get("losslab.overrides", "").split() if o.startswith(("experiment=", "hparams_search="))]
    return f"{study[0]} ({name})" if study else name


def _rows(params: dict, key: str) -> str:
    value = params.get(key)
    return "all" if value in (None, "None", "null") else value


def write(uri: str, parent_id: str, out: Path, log_to_parent: bool = True) -> Report:
    """Build the report, write it into ``out`` and (by default) onto the parent run as ``report/``."""
    from mlflow.tracking import MlflowClient

    out.mkdir(parents=True, exist_ok=True)
    report = build(uri, parent_id)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m losslab.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="a sweep dir (outputs/multiruns/...) or a parent MLflow run id")
    parser.add_argument("--uri", help="tracking URI (default: the sweep dir's, or sqlite:///<checkout>/outputs/mlflow.db)")
    parser.add_argument("--out", help="output folder (default: <sweep dir>/report, or ./report-<run id>)")
    parser.add_argument("--no-log", action="store_true", help="do not attach the report to the parent run")
    args = parser.parse_args(argv)
    uri, parent = resolve(args.target, args.uri)
    out = Path(args.out) if args.out else (Path(args.target) / "report" if Path(args.target).is_dir()
                                            else Path(f"report-{parent[:8]}"))
    try:
        report = write(uri, parent, out, log_to_parent=not args.no_log)
    except Exception as err:  # an unknown run id, a store that is not there
        print(f"losslab.report: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    print(table(report, markdown=False))
    print(f"\nreport: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
