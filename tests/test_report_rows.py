"""The report's rows and flags on hand-made runs: pairing by every seed key (run.seed, trainer.seed,
trainer.data_seed, task.split_seed), row and run labels, the budget read from every run, and the rules that
keep a row from being ranked."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from losslab.report import flags, rows
from losslab.report.build import Cell, Report
from losslab.report.table import budget

_ids = iter(range(10**6))


def run(loss="mse", metrics=None, **params):
    p = {"run.seed": "1", "trainer.seed": "1", "trainer.data_seed": "1", "task.name": "regression",
         "trainer.max_steps": "60", "trainer.per_device_train_batch_size": "32", "trainer.learning_rate": "0.0001"}
    p.update({k.replace("__", "."): str(v) for k, v in params.items()})
    i = next(_ids)
    return SimpleNamespace(info=SimpleNamespace(run_id=f"r{i}", run_name=loss, start_time=i),
                           data=SimpleNamespace(params=p, metrics=dict(metrics or {}), tags={"choice.loss": loss}))


def test_values_pair_by_every_seed_key_not_run_seed_alone():
    runs = [run(metrics={"test_pearson": v}, trainer__seed=s) for s, v in ((1, 0.7), (2, 0.8), (3, 0.9))]
    [row] = rows.group(runs)
    assert row.seeds() == 3 and sorted(row.values("pearson").values()) == [0.7, 0.8, 0.9]
    assert row.label == "mse"  # trainer.seed is a draw, not a setting


def test_split_by_seed_gives_a_unit_per_split_and_seed_and_pairs_across_rows():
    runs = [run(loss, metrics={"test_pearson": 0.5}, run__seed=s, trainer__seed=s, trainer__data_seed=s,
                task__split_seed=k) for loss in ("mse", "mae") for k in (0, 1) for s in (1, 2)]
    mse, mae = rows.group(runs)
    assert (mse.label, mae.label) == ("mse", "mae") and mse.seeds() == 4
    assert set(mse.values("pearson")) == set(mae.values("pearson"))  # the same (split, seed) keys: paired


def test_row_labels_show_what_varies_and_run_labels_add_the_seed():
    runs = [run("huber", loss__delta=d, run__seed=s, trainer__seed=s, trainer__data_seed=s)
            for d in ("0.5", "1.4553179565665342") for s in (1, 2)] + [run("mse", run__seed=1)]
    labels = rows.row_labels(runs)
    assert labels[runs[0].info.run_id] == "huber · delta=0.5"
    assert labels[runs[2].info.run_id] == "huber · delta=1.455"
    assert labels[runs[4].info.run_id] == "mse"
    assert rows.run_labels(runs)[runs[1].info.run_id] == "huber · delta=0.5 · seed=2"
    assert rows.row_label(runs[3], runs) == "huber · delta=1.455"


def test_budget_is_read_from_every_run():
    a, b = run("mse", trainer__max_steps=60), run("mae", trainer__max_steps=120)
    report = Report("p", "pearson", "regression", [], rows.group([a, b]), [])
    text = budget(report)
    assert text.startswith("varies:") and "`mse · trainer.max_steps=60`: 60 steps" in text
    assert "`mae · trainer.max_steps=120`: 120 steps" in text
    same = Report("p", "pearson", "regression", [], rows.group([a, run("mae")]), [])
    assert budget(same).startswith("60 steps × batch 32")


def test_degenerate_rules():
    y = np.array([0, 1, 1, 0, 1, 1])
    assert "every item" in flags.degenerate("classification", np.tile([0.0, 1.0], (6, 1)), y, ["neg", "pos"])
    assert "no better than chance" in flags.degenerate(  # every class right at chance rate or worse
        "classification", np.array([[0, 1], [0, 1], [1, 0], [0, 1], [1, 0], [0, 1.0]]), y, ["neg", "pos"])
    good = np.array([[1, 0], [0, 1], [0, 1], [1, 0], [0, 1], [0, 1.0]])
    assert flags.degenerate("classification", good, y) is None
    assert flags.degenerate("regression", np.full(5, 0.3), np.arange(5.0)) == "the same prediction for every item"
    assert "under 1% of the test labels'" in flags.degenerate("regression", 0.3 + 1e-6 * np.arange(5.0), np.arange(5.0))
    assert flags.degenerate("regression", 0.1 * np.arange(5.0), np.arange(5.0)) is None  # shrunk is not constant
    scores = np.array([[1.0, -1], [-1, 1], [1, -1], [-1, 2]])
    labels = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
    assert flags.degenerate("multilabel", scores, labels, ["neg", "intense"]) is None
    assert flags.degenerate("multilabel", scores + 5, labels, ["neg", "intense"]) == "neg predicted on for every item"
    assert flags.degenerate("multilabel", scores - 5, labels, ["neg", "intense"]) == "neg predicted on for no item"
    assert flags.degenerate("multilabel", scores - 5, labels, ["neg", "intense"], thresholds=[-5.5, -4.5]) is None
    tags = ["B-x", "I-x", "O"]
    ref = np.array([[-100, 0, 1, 2], [-100, 2, 2, -100]])
    assert flags.degenerate("entities", np.where(ref == -100, -100, 2), ref, tags) == "tags every token O"
    assert flags.degenerate("entities", np.array([[-100, 0, 1, 2], [-100, 2, 2, -100]]), ref, tags) is None
    assert "no entity right, and token accuracy 0.2000 no better than tagging every token O" in flags.degenerate(
        "entities", np.array([[-100, 1, 0, 0], [-100, 0, 2, -100]]), ref, tags)
    # one entity right: weak, not degenerate, however low its token accuracy
    assert flags.degenerate("entities", np.array([[-100, 0, 1, 0], [-100, 0, 0, -100]]), ref, tags) is None


def test_not_converged_rule():
    # still climbing by 0.05 at the end in every seed: not converged
    climbing = [[0.5, 0.6, 0.65], [0.51, 0.61, 0.66], [0.5, 0.6, 0.655]]
    assert "still improving" in flags.not_converged(climbing, greater_is_better=True)
    assert flags.not_converged(climbing, greater_is_better=False) is None  # for a loss-like metric it got worse
    flat = [[0.5, 0.6, 0.601], [0.51, 0.62, 0.615], [0.5, 0.58, 0.59]]  # the first evaluation is the warm-up
    assert flags.not_converged(flat, greater_is_better=True) is None
    assert "one seed" in flags.not_converged([[0.5, 0.6, 0.7, 0.8, 0.9]], greater_is_better=True)
    assert flags.not_converged([[0.5, 0.6]], greater_is_better=True) is None  # too short for a trend
    assert flags.not_converged([[0.5]], greater_is_better=True) is None


def test_not_converged_reads_the_trend_not_the_last_step():
    # the 40-epoch ner_losses cross-entropy curves (validation entity F1, last eight evaluations): the last step
    # rises by +0.006 and +0.018, but over the last four evaluations the curves are flat
    plateau = [[0.511, 0.483, 0.489, 0.480, 0.516, 0.490, 0.500, 0.506],
               [0.497, 0.484, 0.519, 0.544, 0.495, 0.497, 0.484, 0.502]]
    assert flags.not_converged(plateau, greater_is_better=True) is None
    # curves that rise at every one of their last evaluations: still improving
    rising = [[0.40, 0.45, 0.48, 0.50, 0.506], [0.41, 0.44, 0.47, 0.484, 0.502]]
    why = flags.not_converged(rising, greater_is_better=True)
    assert why is not None and "+0.01" in why and "2 seeds' slopes" in why
    # a loss-like objective (lower is better) still falling
    assert flags.not_converged([[0.9, 0.7, 0.6], [0.91, 0.72, 0.61]], greater_is_better=False) is not None
    assert flags.not_converged([[0.9, 0.5, 0.6], [0.91, 0.52, 0.61]], greater_is_better=False) is None
    # the level is shared by the sweep's rows: a borderline trend is not flagged among 12 rows
    borderline = [[0.5, 0.5, 0.5, 0.51], [0.5, 0.502, 0.5, 0.5], [0.5, 0.501, 0.503, 0.504]]
    assert flags.not_converged(borderline, True, rows=12) is None


def test_seeds_disagree_rule():
    out = flags.seeds_disagree({"a": [0.80, 0.81, 0.805], "b": [0.70, 0.712, 0.706], "c": [0.6, 0.9, 0.3],
                                "d": [0.5, 0.51, 0.505]})
    assert set(out) == {"c"} and "informative" in out["c"] and "F-test" in out["c"]
    assert flags.seeds_disagree({"a": [0.1, 0.11], "b": [0.2, 0.22]}) == {}


def test_a_flagged_row_is_never_marked_best_and_the_answer_says_why():
    from losslab.report import stats
    from losslab.report.build import _rank_and_compare
    from losslab.report.table import answer, table

    a = [run("asymmetric", metrics={"test_f1": 0.9}, run__seed=s) for s in (1, 2)]
    b = [run("bce", metrics={"test_f1": v}, run__seed=s) for s, v in ((1, 0.6), (2, 0.62))]
    report = Report("p", "f1", "multilabel", ["f1"], rows.group(a + b), [])
    for row in report.rows:
        report.cells[(row.label, "f1")] = Cell(*stats.t_interval(row.values("f1").values()), n=2)
    report.flags["asymmetric"] = ["degenerate (2 of 2 seeds): intense predicted on for every item"]
    _declare(report)
    assert report.best("f1") == "bce" and report.ranking["f1"] == ["bce", "asymmetric"]
    assert "**" not in table(report).split("| asymmetric")[1].split("\n")[0]
    assert "`bce` has the best f1" in answer(report) and "Not ranked: `asymmetric` (degenerate)" in answer(report)
    report.flags["bce"] = ["not converged: ..."]
    _rank_and_compare(report)
    assert report.best("f1") is None and answer(report).startswith("No row can be ranked on f1")


def _declare(report):
    from losslab.report.build import _rank_and_compare, _samples

    report.declared = [report.objective]
    _samples(report, {})
    _rank_and_compare(report)


def _report(values: dict, metric="pearson"):
    from losslab.report import stats

    runs = [run(loss, metrics={f"test_{metric}": v}, run__seed=s, trainer__seed=s, trainer__data_seed=s)
            for loss, vs in values.items() for s, v in enumerate(vs, 1)]
    report = Report("p", metric, "regression", [metric], rows.group(runs), [])
    for row in report.rows:
        report.cells[(row.label, metric)] = Cell(*stats.t_interval(row.values(metric).values()), n=row.seeds())
    return report


def test_the_answer_says_what_the_best_beats_and_what_it_ties_with():
    from losslab.report.build import _rank_and_compare
    from losslab.report.table import answer, comparisons

    report = _report({"mse": [0.70, 0.71, 0.72], "huber": [0.80, 0.82, 0.81], "mae": [0.79, 0.85, 0.77]})
    _declare(report)
    assert report.best("pearson") == "huber"
    text = answer(report)
    assert text.startswith("`huber` has the best pearson (0.8100") and "it beats `mse` (-0.1000" in text
    assert "cannot be told apart from `mae`" in text
    d = report.comparisons[("mse", "pearson")]
    other = report.comparisons[("mae", "pearson")]
    # simultaneous over the 3 pairs of 3 rows (the best is chosen by the data): Bonferroni × 3
    assert d.p_adjusted == pytest.approx(3 * d.p) and other.p_adjusted == pytest.approx(min(1, 3 * other.p))
    assert d.high < 0 and other.low < 0 < other.high  # the interval shown is the verdict's
    table = comparisons(report)
    assert "| huber | best (tied) |" in table and "worse" in table and "tie" in table
    # lower is better: the smallest mean is best and a larger one is worse
    low = _report({"mse": [0.50, 0.52, 0.51], "mae": [0.60, 0.61, 0.63]}, metric="mae")
    _declare(low)
    assert low.best("mae") == "mse" and "it beats every other row (`mae` (+0.1033" in answer(low)


def test_wall_time_averages_only_the_jobs_that_ran_uninterrupted():
    from losslab.report.table import hardware

    minute = 60000
    runs = [run(loss, metrics={"test_pearson": 0.5}, trainer__seed=s) for loss in ("mse", "mae") for s in (1, 2)]
    for r, took in zip(runs, (10, 14, 12, 300)):  # the last one was interrupted and resumed hours later
        r.info.start_time, r.info.end_time = minute, (1 + took) * minute
    runs[-1].data.tags["losslab.resumed_from"] = "/ckpt/checkpoint-40"
    parent = SimpleNamespace(info=SimpleNamespace(start_time=minute, end_time=401 * minute))
    def line():
        return hardware(Report("p", "pearson", "regression", [], rows.group(runs), []), parent)

    assert "the sweep 400.0 min, a job 12.0 min on average over the 3 that ran uninterrupted (1 resumed" in line()
    del runs[-1].data.tags["losslab.resumed_from"]
    assert "a job 84.0 min on average (336 min in all)" in line()


def test_a_declared_metric_the_suite_does_not_report_is_refused():
    from conftest import compose

    from losslab import preflight
    from losslab.errors import ConfigError

    cfg = compose(["task=regression", "report.metrics=[mae,eec]"])
    with pytest.raises(ConfigError, match="report.metrics=.*'eec' not reported by the regression suite"):
        preflight.check_task(cfg)
    preflight.check_task(compose(["task=regression", "report.metrics=[mae,r2]"]))
