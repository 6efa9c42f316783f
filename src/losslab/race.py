"""A race between losses: seeds are spent only where the answer is still undecided (pure logic, no Hydra, no
MLflow; :mod:`losslab.race_sweeper` runs it as a Hydra sweeper).

Every loss starts with ``seeds_first`` seeds. After each round the report's comparison with the best
(:func:`losslab.report.stats.compare_with_best`: simultaneous intervals over all pairs of the losses still in
the race, seeds paired, plus the test-item noise the seeds share) drops every loss that is *worse* than the best;
the losses still tied with the best get ``seeds_step`` more seeds, until one is left, ``max_seeds`` is reached or
the budget is spent. A loss the report cannot rank (degenerate, not converged) leaves the race at once.

**Error control across rounds.** A race looks at its data after every round, so each look spends part of the
error rate: round r of R (the most rounds ``max_seeds`` allows) tests at level ``alpha / R`` (Bonferroni's
alpha spending, the simplest sound rule). Within a round the intervals hold simultaneously with probability
≥ 1 − alpha / R, so the true best is dropped in a round with probability ≤ alpha / R, and in the whole race with
probability ≤ alpha (a union bound over rounds; no independence between rounds is assumed). F-race (Birattari et
al., GECCO 2002) uses a Friedman test per round without correcting for the repeated looks, and Hoeffding races
(Maron & Moore, NIPS 1994) need bounded losses and many more evaluations than a fine-tuning budget has; a
group-sequential spending function (O'Brien–Fleming) would spend less early, but its boundaries assume a
fixed, known information fraction per look, which dropped losses and crashed seeds do not give.
``tests/test_race.py`` measures the rate by simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from losslab.report import stats


@dataclass
class Plan:
    losses: list
    seeds_first: int = 3
    seeds_step: int = 2
    max_seeds: int = 9
    alpha: float = stats.ALPHA

    def __post_init__(self):
        if self.seeds_first < 2:
            raise ValueError(f"race.seeds_first={self.seeds_first}: a comparison needs two or more seeds a loss")
        if self.max_seeds < self.seeds_first:
            raise ValueError(f"race.max_seeds={self.max_seeds} is below race.seeds_first={self.seeds_first}")
        if self.seeds_step < 1:
            raise ValueError(f"race.seeds_step={self.seeds_step} must be 1 or more")
        if len(self.losses) < 2:
            raise ValueError(f"a race needs two or more losses (race.losses={list(self.losses)})")

    def targets(self) -> list[int]:
        """The seed count every surviving loss reaches at each round: 3, 5, 7, 9."""
        out = [self.seeds_first]
        while out[-1] < self.max_seeds:
            out.append(min(out[-1] + self.seeds_step, self.max_seeds))
        return out

    def level(self) -> float:
        """The level of each round's test: alpha spent equally over the rounds the plan allows."""
        return self.alpha / len(self.targets())


@dataclass
class Race:
    plan: Plan
    alive: list = field(default_factory=list)
    seeds: dict = field(default_factory=dict)       # loss -> seeds it has run
    dropped: dict = field(default_factory=dict)     # loss -> (seeds when dropped, why)
    round: int = 0                                  # rounds decided so far
    stopped: str = ""                               # why the race ended early (budget), if it did
    best: str | None = None

    def __post_init__(self):
        self.alive = list(self.plan.losses)
        self.seeds = {loss: 0 for loss in self.plan.losses}

    def done(self) -> bool:
        return bool(self.stopped) or len(self.alive) <= 1 or self.round >= len(self.plan.targets())

    def next_jobs(self) -> list[tuple[str, int]]:
        """(loss, seed) of the next round: each surviving loss up to the round's seed count (seeds 1, 2, …)."""
        if self.done():
            return []
        target = self.plan.targets()[self.round]
        return [(loss, s) for loss in self.alive for s in range(self.seeds[loss] + 1, target + 1)]

    def decide(self, samples: dict, greater_is_better: bool, flagged: dict | None = None) -> stats.Verdicts:
        """After a round: ``samples`` (loss -> stats.Sample of the objective), ``flagged`` (loss -> why the
        report cannot rank it). Drops the losses worse than the best at this round's level."""
        target = self.plan.targets()[self.round]
        for loss in self.alive:  # the jobs run for it (a crashed seed was run too)
            self.seeds[loss] = max(self.seeds[loss], target)
        for loss, why in (flagged or {}).items():
            if loss in self.alive:
                self.alive.remove(loss)
                self.dropped[loss] = (self.seeds[loss], why)
        missing = [loss for loss in self.alive if loss not in samples or samples[loss].n < 2]
        for loss in missing:  # every seed crashed: nothing to compare
            self.alive.remove(loss)
            self.dropped[loss] = (self.seeds[loss], "fewer than two seeds finished")
        verdicts = stats.compare_with_best({loss: samples[loss] for loss in self.alive}, greater_is_better,
                                           alpha=self.plan.level())
        self.best = verdicts.best
        for loss, diff in verdicts.differences.items():
            if not diff.tie():
                self.alive.remove(loss)
                self.dropped[loss] = (self.seeds[loss], f"worse than {verdicts.best} ({diff.diff:+.4f} "
                                                        f"[{diff.low:+.4f}, {diff.high:+.4f}])")
        self.round += 1
        return verdicts

    def jobs(self) -> int:
        return sum(self.seeds.values())

    def grid(self) -> int:
        """Jobs the full grid (every loss × max_seeds) would have run."""
        return len(self.plan.losses) * self.plan.max_seeds

    def answer(self) -> str:
        """What was decided and what was not, and the compute saved against the full grid."""
        parts = []
        if not self.alive:
            parts.append("no loss left to rank: every one was flagged or crashed")
        elif len(self.alive) == 1 and self.dropped:
            parts.append(f"{self.alive[0]} wins after {self.seeds[self.alive[0]]} seeds")
        elif self.alive:
            n = sorted({self.seeds[loss] for loss in self.alive})
            parts.append(f"{' and '.join(self.alive) if len(self.alive) <= 2 else ', '.join(self.alive)} "
                         f"tied after {'/'.join(map(str, n))} seeds"
                         + (f" ({self.stopped})" if self.stopped else
                            " (race.max_seeds reached)" if self.round >= len(self.plan.targets()) else ""))
        by_seeds: dict[tuple, list[str]] = {}
        for loss, (n, why) in self.dropped.items():  # worse than the best, or not rankable (flagged, crashed)
            by_seeds.setdefault((n, why.startswith("worse")), []).append(loss)
        for (n, worse), losses in sorted(by_seeds.items()):
            if worse:
                parts.append(f"{', '.join(losses)} dropped after {n} (worse than the best)")
            else:
                reasons = "; ".join(f"{loss}: {self.dropped[loss][1].split(':')[0]}" for loss in losses)
                parts.append(f"{', '.join(losses)} left after {n}, not ranked ({reasons})")
        saved = self.grid() - self.jobs()
        parts.append(f"{self.jobs()} jobs against {self.grid()} for the full grid "
                     f"({len(self.plan.losses)} losses × {self.plan.max_seeds} seeds): {saved} saved"
                     f" ({saved / self.grid():.0%}); each round at level {self.plan.level():.3g} "
                     f"(alpha {self.plan.alpha:g} over {len(self.plan.targets())} rounds)")
        return "Race: " + "; ".join(parts) + "."

    def to_dict(self) -> dict:
        return {"losses": list(self.plan.losses), "seeds_first": self.plan.seeds_first,
                "seeds_step": self.plan.seeds_step, "max_seeds": self.plan.max_seeds, "alpha": self.plan.alpha,
                "alive": self.alive, "seeds": self.seeds, "dropped": {k: list(v) for k, v in self.dropped.items()},
                "round": self.round, "stopped": self.stopped, "best": self.best, "answer": self.answer()}


def from_dict(state: dict) -> Race:
    """A race from its saved state (the parent run's ``losslab.race`` tag), to word its answer again."""
    plan = Plan(state["losses"], seeds_first=state["seeds_first"], seeds_step=state["seeds_step"],
                max_seeds=state["max_seeds"], alpha=state["alpha"])
    race = Race(plan)
    race.alive, race.seeds, race.round = list(state["alive"]), dict(state["seeds"]), int(state["round"])
    race.dropped = {k: (int(v[0]), str(v[1])) for k, v in state["dropped"].items()}
    race.stopped, race.best = state.get("stopped", ""), state.get("best")
    return race


def parse_budget(value) -> float | None:
    """Seconds from ``race.budget``: 2h, 90m, 3600s, 3600, or null/none for no budget."""
    if value is None or str(value).strip().lower() in ("", "none", "null"):
        return None
    text = str(value).strip().lower()
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0}
    try:
        if text[-1] in scale:
            seconds = float(text[:-1]) * scale[text[-1]]
        else:
            seconds = float(text)
    except ValueError:
        raise ValueError(f"race.budget={value!r} is not a duration: write 2h, 90m, 3600s or 3600") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"race.budget={value!r} must be a positive duration")
    return seconds
