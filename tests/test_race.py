"""The race (losslab.race) against known truth, by simulation: it drops the true best at most as often as its
stated level, and on separated losses it decides in fewer jobs than the full grid. numpy + scipy only.

Each simulated race draws every loss's runs for all ``max_seeds`` seeds up front (``tests/simulated.py``) and
shows the race only the seeds it asked for, round by round."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from simulated import Regime, simulate

from losslab import race as races
from losslab.report import stats


def subset(sample: stats.Sample, n: int) -> stats.Sample:
    keys = [k for k in sample.values if int(k[0]) < n]
    reps = {k: sample.replicates[k] for k in keys} if sample.replicates else None
    return stats.Sample({k: sample.values[k] for k in keys}, reps, sample.unit)


def run_race(reg: Regime, mu, rng, plan: races.Plan) -> races.Race:
    full = simulate(Regime(**{**reg.__dict__, "seeds": plan.max_seeds}), mu, rng, resamples=150)
    race = races.Race(plan)
    while not race.done():
        jobs = race.next_jobs()
        reached = {loss: max(s for l2, s in jobs if l2 == loss) for loss in {j[0] for j in jobs}}
        race.decide({loss: subset(full[loss], reached.get(loss, race.seeds[loss])) for loss in race.alive},
                    greater_is_better=True)
    return race


SEEDY = Regime("seed-dominated", rows=4, sd_seed=0.01, sd_block=0.005, sd_u=0.05, sd_v=0.05)
ITEMY = Regime("item-dominated", rows=4, sd_seed=0.003, sd_u=0.4, sd_v=0.3)


def drop_rate(reg: Regime, races_n: int, seed: int = 0) -> float:
    """Identical losses: the share of races that drop any loss (each is a true best)."""
    rng = np.random.default_rng(seed)
    plan = races.Plan([f"row{i}" for i in range(reg.rows)], seeds_first=3, seeds_step=2, max_seeds=7)
    return sum(bool(run_race(reg, np.zeros(reg.rows), rng, plan).dropped) for _ in range(races_n)) / races_n


def separated(reg: Regime, races_n: int, step: float, seed: int = 1) -> tuple[float, float, float]:
    """(share of races whose best survived, mean jobs, grid jobs) on losses ``step`` apart."""
    rng = np.random.default_rng(seed)
    mu = -step * np.arange(reg.rows)  # row0 is best
    plan = races.Plan([f"row{i}" for i in range(reg.rows)], seeds_first=3, seeds_step=2, max_seeds=9)
    kept, jobs = 0, []
    for _ in range(races_n):
        race = run_race(reg, mu, rng, plan)
        kept += "row0" in race.alive
        jobs.append(race.jobs())
    return kept / races_n, float(np.mean(jobs)), plan.max_seeds * reg.rows


@pytest.mark.parametrize("reg", [SEEDY, ITEMY], ids=lambda r: r.name)
def test_the_race_drops_a_true_best_at_most_at_its_level(reg):
    n = 150
    assert drop_rate(reg, n) <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / n)


def test_on_separated_losses_the_race_spends_fewer_jobs_than_the_grid():
    kept, jobs, grid = separated(SEEDY, 40, step=0.05)
    assert kept == 1.0 and jobs < 0.75 * grid


def test_plan_rounds_levels_and_the_answer():
    plan = races.Plan(["mse", "mae", "huber"], seeds_first=3, seeds_step=2, max_seeds=8)
    assert plan.targets() == [3, 5, 7, 8] and plan.level() == pytest.approx(0.05 / 4)
    race = races.Race(plan)
    assert race.next_jobs() == [(loss, s) for loss in ("mse", "mae", "huber") for s in (1, 2, 3)]
    samples = {"mse": stats.Sample({1: 0.80, 2: 0.81, 3: 0.79}), "mae": stats.Sample({1: 0.60, 2: 0.62, 3: 0.58}),
               "huber": stats.Sample({1: 0.81, 2: 0.78, 3: 0.80})}
    race.decide(samples, greater_is_better=True)
    assert race.alive == ["mse", "huber"] and race.dropped["mae"][0] == 3  # 0.2 below, every seed: dropped
    assert race.next_jobs() == [("mse", 4), ("mse", 5), ("huber", 4), ("huber", 5)]
    text = race.answer()
    assert "mse and huber tied after 3 seeds" in text and "mae dropped after 3 (worse than the best)" in text
    assert races.from_dict(race.to_dict()).answer() == text  # the saved state words the same answer
    assert "9 jobs against 24 for the full grid" in text
    with pytest.raises(ValueError, match="seeds_first"):
        races.Plan(["a", "b"], seeds_first=1)
    with pytest.raises(ValueError, match="two or more losses"):
        races.Plan(["a"])


def test_a_flagged_loss_leaves_the_race():
    race = races.Race(races.Plan(["a", "b", "c"], max_seeds=3))
    samples = {k: stats.Sample({1: v, 2: v + 0.01, 3: v - 0.01}) for k, v in (("a", 0.8), ("b", 0.79), ("c", 0.5))}
    race.decide(samples, True, flagged={"c": "degenerate"})
    assert "c" not in race.alive and race.dropped["c"] == (3, "degenerate") and race.done()
    assert "c left after 3, not ranked (c: degenerate)" in race.answer()


def test_budget_parsing():
    assert races.parse_budget("2h") == 7200 and races.parse_budget("90m") == 5400
    assert races.parse_budget("3600") == 3600 and races.parse_budget(None) is None
    with pytest.raises(ValueError, match="not a duration"):
        races.parse_budget("soon")


def main(n: int = 1000) -> None:
    print(f"| regime | races | dropped a true best (identical losses) | separated (0.05 apart): best kept, mean jobs / grid |")
    print("|---|---|---|---|")
    for reg in (SEEDY, ITEMY):
        kept, jobs, grid = separated(reg, n // 5, step=0.05)
        print(f"| {reg.name} | {n} | {drop_rate(reg, n):.3f} | {kept:.3f}, {jobs:.1f} / {grid} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)


# ------------------------------------------------------------------------------------------- for real (slow)

@pytest.mark.slow
def test_a_race_is_an_ordinary_sweep_that_resumes_and_reports(tmp_path):
    """``-m race=losses`` for real (debug=quick jobs): one parent with a child per job, the race's state on the
    parent, its answer in the report; the same command again runs nothing that finished and says the same."""
    import json

    from conftest import run_train, runs

    args = ["-m", "task=regression", "race=losses", "race.losses=[mse,mae]", "race.max_seeds=3", "debug=quick"]
    out = run_train(args, tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    all_runs = runs(tmp_path)
    [parent] = [r for r in all_runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in all_runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted((c.data.tags["choice.loss"], c.data.params["run.seed"]) for c in children) == \
        [(loss, str(s)) for loss in ("mae", "mse") for s in (1, 2, 3)]
    state = json.loads(parent.data.tags["losslab.race"])
    assert state["losses"] == ["mse", "mae"] and state["round"] == 1 and sum(state["seeds"].values()) == 6
    assert "Race: " in out.stdout and "6 jobs against 6 for the full grid" in out.stdout
    report = next(tmp_path.glob("multiruns/*/*/report/report.md")).read_text()
    assert state["answer"].split(";")[0] in report
    again = run_train(args, tmp_path, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already finished as MLflow run") == 6 and state["answer"] in again.stdout


def test_a_race_refuses_losses_and_seeds_on_the_command_line(tmp_path):
    from conftest import run_train, runs

    done = run_train(["-m", "task=regression", "race=losses", "loss=mse,mae", "debug=quick"], tmp_path)
    assert runs(tmp_path) == []
    assert done.returncode == 2 and "losslab: error: loss=… is chosen by the race" in done.stderr
    assert "Traceback" not in done.stderr
    bad = run_train(["-m", "task=regression", "race=losses", "race.seeds_first=1", "debug=quick"], tmp_path)
    assert bad.returncode == 2 and "race.seeds_first=1" in bad.stderr and "Traceback" not in bad.stderr
    assert runs(tmp_path) == []  # refused before the sweep's parent run

