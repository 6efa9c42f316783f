"""A sweep's report from the MLflow store: rows, cells with both intervals, flags, comparisons with the best."""

from __future__ import annotations

import ast
import hashlib
import json
import math
import tempfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from losslab import predictions, tracking
from losslab.metrics import greater_is_better, temperature
from losslab.metrics.thresholds import choose
from losslab.report import flags as rules
from losslab.report import items
from losslab.report import stats
from losslab.report.rows import Row, group, seed_key, split_key, suite_metrics
from losslab.store import RACE_TAG, Store

RESAMPLES = 1000
SLOW_RESAMPLES = 200  # for a suite scored by the suite itself on each resample (generation)
VALIDATION = "objective"  # each run's validation objective of the tested (best) checkpoint, as a metric
TUNED = "tuned_"  # multi-label metrics at per-label thresholds chosen on validation (computed from predictions)
_TUNED_OF = ("macro_f1", "micro_f1")
SCALED = "ts_"  # classification metrics after temperature scaling fitted on validation (computed from predictions)
_SCALED_OF = ("ece", "log_loss")  # a temperature changes no prediction: accuracy and macro-F1 stay as they are


@dataclass
class Cell:
    mean: float
    seed_low: float
    seed_high: float
    test_low: float = math.nan
    test_high: float = math.nan
    n: int = 0


@dataclass
class Report:
    parent_id: str
    objective: str
    suite: str
    metrics: list[str]
    rows: list[Row]
    failed: list
    cells: dict = field(default_factory=dict)  # (row label, metric) -> Cell
    validation: dict = field(default_factory=dict)  # row label -> Cell (the objective on validation)
    ranking: dict = field(default_factory=dict)  # metric -> row labels: rankable ones best first, then flagged
    best_rows: dict = field(default_factory=dict)  # metric -> the best row that may be ranked, or None
    comparisons: dict = field(default_factory=dict)  # (row label, declared metric) -> stats.Difference (row - best)
    flags: dict = field(default_factory=dict)  # row label -> [reasons]: not ranked
    info: dict = field(default_factory=dict)  # row label -> [remarks]: shown, never excluding (seeds disagree)
    declared: list = field(default_factory=list)  # the metrics the sweep asks about: the objective first
    verdicts: dict = field(default_factory=dict)  # declared metric -> stats.Verdicts
    samples: dict = field(default_factory=dict)  # (row label, metric) -> stats.Sample (the replicate units)
    by_split: bool = False  # the replicate unit is the split (task.split_seed swept), not the seed
    race: dict | None = None  # a race's state (the parent's ``losslab.race`` tag), when the sweep was a race
    notes: list = field(default_factory=list)
    resamples: int = 0  # item bootstrap resamples (0: no per-item predictions)
    files: list = field(default_factory=list)
    replicates: dict = field(default_factory=dict)  # run id -> metric -> its values on the item resamples

    def best(self, metric: str) -> str | None:
        return self.best_rows.get(metric)

    def row(self, label: str) -> Row:
        return next(r for r in self.rows if r.label == label)


def items_module():
    return items


def label_names(runs: list) -> list[str] | None:
    params = runs[0].data.params if runs else {}
    names = sorted(((int(k.split(".")[-1]), v) for k in params if k.startswith("task.label.")
                    and k.split(".")[-1].isdigit() for v in [params[k]]))
    return [v for _, v in names] or None


def _histories(uri: str, runs: list, key: str) -> dict[str, list[float]]:
    client = Store(uri)
    return {r.info.run_id: [m.value for m in sorted(client.metric_history(r.info.run_id, key),
                                                    key=lambda m: (m.step, m.timestamp))] for r in runs}


def _item_replicates(report: Report, preds: dict, names, thresholds: dict, resamples: int,
                     temperatures: dict | None = None) -> dict:
    """run id -> metric -> (resamples,) values; the runs of one split (and one set of test items) share the
    resampled items."""
    groups: dict[tuple, list] = {}
    for row in report.rows:
        for run in row.runs:
            if run.info.run_id in preds:
                ids = preds[run.info.run_id][0]
                digest = hashlib.sha256(np.ascontiguousarray(ids).tobytes()).hexdigest()
                groups.setdefault((split_key(run), digest), []).append(run)
    out = {}
    for key, runs in groups.items():
        rng = np.random.default_rng(zlib.crc32(repr(key).encode()))
        counts = stats.resample_counts(len(preds[runs[0].info.run_id][0]), resamples, rng)
        for run in runs:
            _, p, y = preds[run.info.run_id]
            reps = items.replicates(report.suite, p, y, counts, names)
            th = thresholds.get(run.info.run_id)
            if th is not None:
                tuned = items.replicates(report.suite, p, y, counts, names, thresholds=th)
                reps.update({TUNED + m: tuned[m] for m in _TUNED_OF if m in tuned})
            t = (temperatures or {}).get(run.info.run_id)
            if t is not None:
                scaled = items.replicates(report.suite, p / t, y, counts, names)
                reps.update({SCALED + m: scaled[m] for m in _SCALED_OF if m in scaled})
            out[run.info.run_id] = reps
    return out


def _temperatures(report: Report, finished: list, preds: dict, val: dict, names) -> dict:
    """run id -> the temperature fitted on the run's own validation predictions (losslab.metrics.temperature:
    the calibration papers' grid search on validation ECE); the ``ts_`` metrics (ECE and NLL of the test logits
    divided by it) join the run's test metrics, in memory only. Empty unless every run kept both splits."""
    if not finished or len(preds) < len(finished) or any(val.get(r.info.run_id) is None for r in finished):
        return {}
    out = {}
    for run in finished:
        _, vp, vy = val[run.info.run_id]
        _, tp, ty = preds[run.info.run_id]
        t = out[run.info.run_id] = temperature.fit(vp, vy)
        full = items.replicates(report.suite, tp / t, ty, np.ones((1, len(ty))), names)
        run.data.metrics.update({f"test_{SCALED}{m}": float(full[m][0]) for m in _SCALED_OF})
        run.data.metrics["temperature"] = t
    report.metrics += [SCALED + m for m in _SCALED_OF]
    by_row = {row.label: [r.data.metrics["temperature"] for r in row.runs] for row in report.rows}
    report.notes.append("Temperature scaling (`ts_` columns): each run's T fitted on its own validation "
                        "predictions (grid 0.1–10.0, lowest validation ECE, as Mukhoti et al. ran it), test logits "
                        "divided by it; it changes no prediction. T by row (mean over seeds): "
                        + ", ".join(f"{label} {sum(v) / len(v):.2f}" for label, v in by_row.items() if v) + ".")
    return out


def _race(uri: str, parent_id: str) -> dict | None:
    """The race's state from the parent run's ``losslab.race`` tag (None for an ordinary sweep)."""
    try:
        raw = Store(uri).run(parent_id).data.tags.get(RACE_TAG)
        return json.loads(raw) if raw else None
    except Exception:  # not a run of this store, or a truncated tag: an ordinary report
        return None


def declared_metrics(runs: list, objective: str, metrics: list[str], extra=None) -> list[str]:
    """The sweep's declared question: its objective, then the metrics declared with ``report.metrics=[...]``
    (logged as a param by every run) or passed here (``--metrics``), among those the runs logged."""
    named = list(extra or [])
    for run in runs[:1]:
        raw = run.data.params.get("report.metrics")
        if raw:
            try:
                named += [str(m) for m in ast.literal_eval(raw)]
            except (ValueError, SyntaxError):
                named += [m.strip() for m in raw.strip("[]").split(",") if m.strip()]
    out = [objective] if objective in metrics else []
    return out + [m for m in dict.fromkeys(named) if m in metrics and m not in out]


def build(uri: str, parent_id: str, resamples: int = RESAMPLES, declare=None) -> Report:
    finished, failed = tracking.latest_per_job(tracking.children(uri, parent_id))
    params = finished[0].data.params if finished else {}
    objective = next((r.data.params.get("task.objective") for r in finished), None) or ""
    suite = params.get("task.metrics", "")
    metrics = suite_metrics(finished)
    if objective in metrics:  # the objective first
        metrics = [objective] + [m for m in metrics if m != objective]
    report = Report(parent_id, objective, suite, metrics, group(finished), failed)
    names = label_names(finished)

    # per-item predictions (test; validation for thresholds), when every run logged them
    preds, val, thresholds = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, run in enumerate(finished):
            got = predictions.download(uri, run.info.run_id, "test", f"{tmp}/{i}")
            if got is not None:
                preds[run.info.run_id] = got
                if suite in ("multilabel", "classification"):
                    val[run.info.run_id] = predictions.download(uri, run.info.run_id, "validation", f"{tmp}/{i}")
    if finished and len(preds) < len(finished):
        report.notes.append(f"{len(finished) - len(preds)} of {len(finished)} runs have no per-item test "
                            "predictions (runs made before they were logged): their cells have no test interval "
                            "and their comparisons use the seeds alone.")
    if suite == "multilabel" and val and all(v is not None for v in val.values()):
        for run_id, (_, p, y) in val.items():
            thresholds[run_id] = choose(p, y)
            _, tp, ty = preds[run_id]
            full = items.replicates(suite, tp, ty, np.ones((1, len(ty))), names, thresholds=thresholds[run_id])
            run = next(r for r in finished if r.info.run_id == run_id)
            # in memory only (the store is not written): the tuned metrics join the run's test metrics
            run.data.metrics.update({f"test_{TUNED}{m}": float(full[m][0]) for m in _TUNED_OF})
        report.metrics += [TUNED + m for m in _TUNED_OF if all(f"test_{TUNED}{m}" in r.data.metrics
                                                               for r in finished)]
    temperatures = _temperatures(report, finished, preds, val, names) if suite == "classification" else {}
    if preds and not items_module().vectorized(suite):  # the suite itself per resample: slow, fewer resamples
        resamples = min(resamples, SLOW_RESAMPLES)
    reps = _item_replicates(report, preds, names, thresholds, resamples, temperatures) if preds else {}
    report.resamples = resamples if reps else 0
    report.replicates = reps

    report.declared = declared_metrics(finished, objective, report.metrics, declare)
    report.race = _race(uri, parent_id)
    report.by_split = len({split_key(r) for r in finished}) > 1
    _samples(report, reps)
    _cells(report, reps)
    _flags(report, uri, preds, names)
    _rank_and_compare(report)
    return report


def _row_replicates(row: Row, metric: str, reps: dict):
    """(resamples,) the row's mean over seeds on each item resample; None unless every run has them."""
    got = [reps.get(r.info.run_id, {}).get(metric) for r in row.runs if f"test_{metric}" in r.data.metrics]
    if not got or any(g is None for g in got):
        return None
    return np.mean(np.stack(got), axis=0)


def sample(row: Row, metric: str, reps: dict, by_split: bool) -> stats.Sample:
    """The row's replicate units of ``metric`` (seeds, or splits when ``task.split_seed`` is swept), with each
    run's item-bootstrap replicates when every run has them."""
    key = f"test_{metric}"
    entries = [(split_key(r), seed_key(r), r.data.metrics[key], reps.get(r.info.run_id, {}).get(metric))
               for r in row.runs if key in r.data.metrics]
    return stats.units(entries, unit_of_split=by_split)


def _samples(report: Report, reps: dict) -> None:
    for row in report.rows:
        for m in report.metrics:
            report.samples[(row.label, m)] = sample(row, m, reps, report.by_split)


def pair(report: Report, a: str, b: str, metric: str) -> stats.Difference:
    """Row ``a`` minus row ``b`` on ``metric``, by the report's variance model (seeds or splits paired, plus the
    test items they share); no multiplicity adjustment: for one comparison stated before the runs."""
    return stats.compare(report.samples[(a, metric)], report.samples[(b, metric)])


def _cells(report: Report, reps: dict) -> None:
    for row in report.rows:
        for m in report.metrics:
            values = row.values(m)
            mean, lo, hi = stats.t_interval(values.values())
            cell = Cell(mean, lo, hi, n=len(values))
            rep = _row_replicates(row, m, reps)
            if rep is not None:
                cell.test_low, cell.test_high = stats.percentile_interval(rep)
            report.cells[(row.label, m)] = cell
        values = row.values(VALIDATION, prefix="")
        mean, lo, hi = stats.t_interval(values.values())
        report.validation[row.label] = Cell(mean, lo, hi, n=len(values))


def _flags(report: Report, uri: str, preds: dict, names) -> None:
    histories = {}
    if report.objective:
        for row in report.rows:
            histories[row.label] = list(_histories(uri, row.runs, f"eval_{report.objective}").values())
    for row in report.rows:
        reasons = []
        bad = [(r, why) for r in row.runs if r.info.run_id in preds
               for why in [rules.degenerate(report.suite, preds[r.info.run_id][1], preds[r.info.run_id][2], names)]
               if why]
        if bad:
            reasons.append(f"degenerate ({len(bad)} of {len(row.runs)} seeds): {bad[0][1]}")
        elif report.suite == "regression" and any(
                not math.isfinite(r.data.metrics.get("test_pearson", 0.0)) for r in row.runs):
            reasons.append("degenerate: constant predictions (test pearson undefined)")
        if row.label in histories:
            why = rules.not_converged(histories[row.label], greater_is_better(report.objective),
                                      rows=len(report.rows))
            if why:
                reasons.append(f"not converged: {why}")
            rising = rules.still_rising(histories[row.label], greater_is_better(report.objective),
                                        rows=len(report.rows))
            if rising:
                report.info.setdefault(row.label, []).append(rising)
        if reasons:
            report.flags[row.label] = reasons
    values = {row.label: list(row.values(report.objective).values()) for row in report.rows}
    for label, why in rules.seeds_disagree(values).items():
        report.info.setdefault(label, []).append(why)


def _rank_and_compare(report: Report) -> None:
    """Rank every column; compare with the best on the declared metrics only (simultaneous intervals over all
    pairs of the rows compared and every declared metric)."""
    for m in report.metrics:
        up = greater_is_better(m)
        scored = [row for row in report.rows if math.isfinite(report.cells[(row.label, m)].mean)]

        def key(row):
            return report.cells[(row.label, m)].mean * (-1 if up else 1)

        ok = sorted((r for r in scored if r.label not in report.flags), key=key)
        flagged = sorted((r for r in scored if r.label in report.flags), key=key)
        report.ranking[m] = [r.label for r in ok + flagged]
        if m not in report.declared:
            report.best_rows[m] = ok[0].label if ok else None  # descriptive: the top of the column
            continue
        verdicts = stats.compare_with_best({r.label: report.samples[(r.label, m)] for r in ok}, up,
                                           metrics=len(report.declared))
        report.verdicts[m] = verdicts
        report.best_rows[m] = verdicts.best
        for label, diff in verdicts.differences.items():
            report.comparisons[(label, m)] = diff
