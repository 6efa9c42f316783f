"""experiments/claims.py on hand-made runs and claim files (no training, no MLflow store): a claim registered
after its study's first run is refused, and so is one whose runs chose checkpoints on another metric; the
verdict with and without an equivalence margin; a change between rows compared as a row; the forest plot."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from losslab.report import stats
from losslab.report.build import Report

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("claims", ROOT / "experiments" / "claims.py")
claims = importlib.util.module_from_spec(_spec)
sys.modules["claims"] = claims  # dataclasses look their module up
_spec.loader.exec_module(claims)

DAY = 86400
RUNS_START = 1_795_000_000  # unix seconds: the study's first run


def run(start: float, objective: str = "pearson", loss: str = "mse"):
    return SimpleNamespace(info=SimpleNamespace(run_id=f"r{start}", start_time=int(start * 1000), status="FINISHED"),
                           data=SimpleNamespace(params={"task.objective": objective}, metrics={},
                                                tags={"choice.loss": loss}))


def claim_text(**change) -> str:
    fields = {"claim": "mae degrades less", "citation": "Huber 1964", "study": "label_noise", "metric": "pearson",
              "direction": '"-"', "a": "mae", "b": "mse", "checkpoint_metric": "pearson"}
    fields.update(change)
    body = "\n".join(f"{k}: {v}" for k, v in fields.items() if v is not None)
    return body + textwrap.dedent("""
        scope:
          training: 3-epoch fine-tuning
          model: MiniLM-L6
          data: VADER ratings
          seeds: 3
          tuned: untuned
        """)


def write(folder: Path, name: str = "noise", **change) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(claim_text(**change), encoding="utf-8")
    return path


def commit(repo: Path, path: Path, at: int) -> None:
    env = {**os.environ, "GIT_AUTHOR_DATE": f"@{at} +0000", "GIT_COMMITTER_DATE": f"@{at} +0000",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "add", str(path)], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "claim", "--", str(path)], check=True, env=env)


RUNS = [run(RUNS_START + 3600), run(RUNS_START), run(RUNS_START + 7200)]


def test_a_claim_file_committed_before_the_runs_is_tested(tmp_path):
    path = write(tmp_path / "repo")
    commit(tmp_path / "repo", path, RUNS_START - DAY)
    assert claims.registered_at(path) == RUNS_START - DAY
    assert claims.refusals(claims.read(path), RUNS, claims.registered_at(path)) == []


def test_a_claim_file_newer_than_the_runs_is_refused_in_one_line_with_both_times(tmp_path):
    path = write(tmp_path / "repo")
    commit(tmp_path / "repo", path, RUNS_START + DAY)
    [line] = claims.refusals(claims.read(path), RUNS, claims.registered_at(path))
    assert "\n" not in line and "refused noise" in line
    assert claims.when(RUNS_START + DAY) in line and claims.when(RUNS_START) in line  # the first run's start


def test_an_uncommitted_or_edited_claim_file_is_newer_than_everything(tmp_path):
    loose = write(tmp_path / "loose")
    assert claims.registered_at(loose) is None
    [line] = claims.refusals(claims.read(loose), RUNS, None)
    assert "is not committed" in line and claims.when(RUNS_START) in line
    path = write(tmp_path / "repo")
    commit(tmp_path / "repo", path, RUNS_START - DAY)
    path.write_text(claim_text(a="huber"), encoding="utf-8")  # the claim changed after it was registered
    assert claims.registered_at(path) is None


def test_a_claim_whose_declaration_changed_after_the_runs_is_refused_but_filling_in_its_parent_is_not(tmp_path):
    repo = tmp_path / "repo"
    path = write(repo)
    commit(repo, path, RUNS_START - DAY)
    # after the runs: the parent and the store filled in, a comment added: still registered before them
    path.write_text(claim_text() + "# filled in after the runs\nparent: abc123\n", encoding="utf-8")
    commit(repo, path, RUNS_START + DAY)
    assert claims.registered_at(path) == RUNS_START - DAY
    assert claims.refusals(claims.read(path), RUNS, claims.registered_at(path)) == []
    # then the metric changed and committed: the claim now dates from that commit, after the first run
    path.write_text(claim_text(metric="spearman") + "parent: abc123\n", encoding="utf-8")
    commit(repo, path, RUNS_START + 2 * DAY)
    assert claims.registered_at(path) == RUNS_START + 2 * DAY
    [line] = claims.refusals(claims.read(path), RUNS, claims.registered_at(path))
    assert f"what the claim declares was last committed {claims.when(RUNS_START + 2 * DAY)}" in line


def test_a_claim_declared_registered_after_the_runs_is_exploratory_not_refused(tmp_path):
    claim = claims.read(write(tmp_path, registered_after_runs="true"))
    assert claim.registered_after_runs and claims.refusals(claim, RUNS, None) == []


def test_a_claim_on_another_checkpoint_metric_is_refused(tmp_path):
    path = write(tmp_path / "repo", checkpoint_metric="kl", study="soft_labels")
    commit(tmp_path / "repo", path, RUNS_START - DAY)
    runs = [run(RUNS_START, objective="macro_f1"), run(RUNS_START + 1, objective="macro_f1")]
    [line] = claims.refusals(claims.read(path), runs, claims.registered_at(path))
    assert "refused noise" in line and "on kl" in line and "macro_f1" in line and "\n" not in line
    # a store not kept: the objective its committed report.md records
    assert claims.committed_objective("soft_labels") == {"kl"}
    assert claims.refusals(claims.read(path), [], None, {"kl"}) == []


def test_claim_files_are_checked_when_read(tmp_path):
    with pytest.raises(claims.ClaimError, match="needs a positive margin"):
        claims.read(write(tmp_path, direction='"≈"'))
    with pytest.raises(claims.ClaimError, match="direction"):
        claims.read(write(tmp_path, direction="up"))
    with pytest.raises(claims.ClaimError, match="missing checkpoint_metric"):
        claims.read(write(tmp_path, checkpoint_metric=None))
    claim = claims.read(write(tmp_path, direction='"≈"', margin="0.01"))
    assert claim.margin == 0.01
    assert claim.scope_text() == "3-epoch fine-tuning of MiniLM-L6 on VADER ratings, 3 seeds, untuned"


def d(diff, low, high):
    return stats.Difference(diff, low, high, 0.5, "test")


def test_verdict_with_and_without_a_margin():
    v = claims.verdict
    assert v(d(0.02, 0.01, 0.03), "+") == "agrees"
    assert v(d(0.02, 0.01, 0.03), "-") == "disagrees"
    assert v(d(-0.02, -0.03, -0.01), "-") == "agrees"
    assert v(d(0.0, -0.01, 0.01), "+") == "inconclusive (interval covers 0)"
    # equivalence: the whole interval within the margin, even when it excludes 0
    assert v(d(0.004, 0.002, 0.006), "≈", 0.01).startswith("agrees")
    assert v(d(-0.003, -0.0067, 0.0007), "≈", 0.01).startswith("agrees")
    assert v(d(0.03, 0.02, 0.04), "≈", 0.01).startswith("disagrees")  # wholly outside ±0.01
    assert v(d(0.008, 0.005, 0.015), "≈", 0.01).startswith("inconclusive")  # excludes 0, straddles the margin
    assert v(d(0.0, -0.02, 0.02), "≈", 0.01).startswith("inconclusive")
    assert v(d(0.02, 0.01, 0.03), "+", flagged=["dice: degenerate"]) == "inconclusive (dice: degenerate)"
    assert v(d(0.02, math.nan, math.nan), "+") == "inconclusive (no interval)"


def test_a_change_between_rows_is_compared_as_a_row(tmp_path):
    rng = np.random.default_rng(0)
    seeds = [("1",), ("2",), ("3",)]
    values = {"mae·0": [0.84, 0.83, 0.835], "mae·0.4": [0.78, 0.775, 0.78],
              "mse·0": [0.84, 0.84, 0.838], "mse·0.4": [0.76, 0.775, 0.767]}
    reps = {row: {k: v + rng.normal(0, 0.01, 50) for k, v in zip(seeds, vals)} for row, vals in values.items()}
    report = Report("p", "pearson", "regression", ["pearson"], [], [])
    report.samples = {(row, "pearson"): stats.Sample(dict(zip(seeds, vals)), reps[row]) for row, vals in values.items()}
    claim = claims.read(write(tmp_path, a='{row: "mae·0", minus: "mae·0.4"}', b='{row: "mse·0", minus: "mse·0.4"}'))
    diff = claims.compare(report, claim, "pearson")
    drop = {row: [x - y for x, y in zip(values[row + "·0"], values[row + "·0.4"])] for row in ("mae", "mse")}
    assert diff.diff == pytest.approx(np.mean(drop["mae"]) - np.mean(drop["mse"]))
    by_hand = stats.compare(
        stats.Sample(dict(zip(seeds, drop["mae"])), {k: reps["mae·0"][k] - reps["mae·0.4"][k] for k in seeds}),
        stats.Sample(dict(zip(seeds, drop["mse"])), {k: reps["mse·0"][k] - reps["mse·0.4"][k] for k in seeds}))
    assert (diff.low, diff.high, diff.p) == pytest.approx((by_hand.low, by_hand.high, by_hand.p))
    assert "test items" in diff.how


def test_the_committed_claims_load_and_say_what_they_are():
    loaded = claims.load()
    exploratory = [c for c in loaded if c.registered_after_runs]  # the 9 migrated claims, stated after their runs
    assert len(exploratory) == 9
    not_kept = [c for c in exploratory if c.store is None]
    assert len(not_kept) == 8 and all(c.recorded for c in not_kept)
    declared = [c for c in loaded if not c.registered_after_runs]  # each committed before its study's first run
    assert {c.study for c in declared} >= {"ordinal_levels"}
    assert loaded == declared + exploratory  # the declared claims first, in findings.md's order of studies
    for c in declared:
        if c.parent is None:
            assert claims.evaluate(c, {}, {}).outcome == claims.NOT_RUN
    out = claims.evaluate(not_kept[0], {}, {})
    assert out.status == "not kept" and out.outcome.startswith(claims.NOT_KEPT)
    assert claims.EXPLORATORY in out.outcome and not_kept[0].scope_text() in out.verdict_cell()


def test_the_forest_plot_draws_one_row_per_claim(tmp_path):
    made = []
    for i, (metric, direction, margin) in enumerate([("ece", '"-"', None), ("ece", '"-"', None),
                                                     ("accuracy", '"≈"', 0.01), ("pearson", '"-"', None)]):
        extra = {"margin": str(margin)} if margin else {}
        c = claims.read(write(tmp_path, f"c{i}", metric=metric, direction=direction, **extra))
        made.append(claims.Outcome(c, "built" if i == 3 else "not kept", "exploratory", d(0.01 * i, -0.005, 0.03)))
    made.append(claims.Outcome(claims.read(write(tmp_path, "gone")), "not restored", "store kept, not restored"))
    assert claims.census(made) == ("**5 claims declared before their runs** come first (1 tested, 0 whose study has "
                                   "not run yet, 4 not rebuilt here: store not restored or claim refused); **0 "
                                   "exploratory** claims, stated after their studies ran, follow (0 rebuilt from a "
                                   "kept store, 0 as recorded).\n")
    png = tmp_path / "forest.png"
    drawn = claims.forest(made, png)
    assert drawn == ["c0", "c1", "c2", "c3"]  # one row per claim with numbers, grouped by metric
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_exploratory_claim_not_kept_is_superseded_once_its_declared_retest_is_rebuilt(tmp_path):
    folder = tmp_path / "claims"
    write(folder, "old", study="imbalance_losses", registered_after_runs="true", retested_by="[new]")
    write(folder, "new", study="square_loss")
    old, new = claims.load(folder)[::-1]
    assert old.retested_by == ["new"] and new.retested_by == []
    recorded = SimpleNamespace(diff=-0.003, low=-0.0067, high=0.0007, p=0.107)
    kept = claims.Outcome(old, "not kept", claims.NOT_KEPT, recorded, ("0.95", "0.96"))
    # the retest has not run: the recorded numbers are still the only evidence, and are quoted
    [o_new, o_old] = claims.supersede([claims.Outcome(new, "not run", claims.NOT_RUN), kept])
    assert o_old is kept
    # the retest rebuilt from its store: the old numbers go, the cell names the retest and its verdict
    built = claims.Outcome(new, "built", "inconclusive (interval covers 0)", d(0.001, -0.004, 0.006))
    [_, o_old] = claims.supersede([built, kept])
    assert o_old.status == "superseded" and o_old.diff is None and o_old.cells == ("–", "–")
    assert "new (square_loss): inconclusive (interval covers 0)" in o_old.outcome
    assert "| – |" in claims.table([o_old]) and "0.0067" not in claims.table([o_old])
    assert claims.forest([built, o_old], tmp_path / "f.png") == ["new"]  # no row for numbers nothing can rebuild
    assert "1 superseded by their declared retests (numbers not quoted), 0 as recorded" in claims.census([built, o_old])


def test_retested_by_names_a_declared_claim(tmp_path):
    folder = tmp_path / "claims"
    write(folder, "old", registered_after_runs="true", retested_by="[missing]")
    with pytest.raises(claims.ClaimError, match="retested_by names missing"):
        claims.load(folder)
    with pytest.raises(claims.ClaimError, match="for exploratory claims"):
        claims.read(write(tmp_path, "declared", retested_by="[old]"))
