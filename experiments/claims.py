"""The published claims that the committed studies test, each declared in its own file, ``experiments/claims/<name>.yaml``,
and tested as one pre-stated comparison (row a minus row b) built from the study's MLflow store with the
report's statistics (:func:`losslab.report.build.pair`: seeds paired + the test items they share).

    python experiments/claims.py [<study>=<sweep dir> ...] [--forest experiments/forest.png] > experiments/claims.md

A claim's store is found from its file (``store``: a snapshot restored to ``restore_to``) or given on the command
line as a sweep dir. A claim file holds:

- ``claim``, ``citation``: what is claimed, and by whom;
- ``study``: the committed study (``experiments/<study>/``) and ``parent``: its sweep's parent run id;
- ``a``, ``b``: the compared rows (report row labels), or each ``{row: X, minus: Y}``: the change from row Y to
  row X, seed by seed (a drop under label noise), compared as a row is;
- ``metric`` and ``direction``: ``"+"`` (a − b > 0 if the claim holds), ``"-"``, or ``"≈"`` with ``margin``
  (the whole 95% interval of a − b within ±margin); ``also``: metrics declared beside it (metric: direction),
  shown with their intervals, no verdict;
- ``checkpoint_metric``: the ``task.objective`` the study's runs must have chosen their checkpoints on;
- ``scope``: ``training``, ``model``, ``data``, ``seeds``, ``tuned``: printed with the verdict;
- ``store``: ``{snapshot, restore_to}`` where the store is kept, or null (not kept);
- ``registered_after_runs``: true when the file was written after the study ran (its outcome is then
  "exploratory", not a verdict); ``recorded``: for a store not kept, the numbers committed before it was lost;
- ``retested_by``: (exploratory claims) the declared claims that test it again. Once one of them is rebuilt from
  its store, an exploratory claim whose store was not kept is *superseded*: its recorded numbers, which nothing
  can rebuild, are no longer quoted (they stay in its file), and its cell names the retests and their verdicts.

**Refusals** (one line each on stderr, the claim's cell says "refused"; exit status 1):

- a claim registered after its study's first run: the last git commit that changed what the file declares
  (the compared rows, metric, direction, margin, checkpoint metric, ``also``, scope; filling in ``parent`` and
  ``store`` after the runs does not count; a file not committed, or with uncommitted changes, is newer than
  everything) is not before the earliest
  ``start_time`` of the sweep's finished runs. A file that says ``registered_after_runs: true`` is not refused:
  it is reported as "exploratory: registered after the runs" instead of a verdict;
- a claim whose ``checkpoint_metric`` is not the ``task.objective`` its study's runs chose checkpoints on (for a
  store not kept: the objective in the study's committed ``report.md``).

A flagged row (degenerate, not converged) or one with a single seed makes the claim inconclusive.
"""

from __future__ import annotations

import argparse
import datetime
import math
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLAIMS_DIR = Path(__file__).resolve().parent / "claims"
DIRECTIONS = ("+", "-", "≈")
SCOPE = ("training", "model", "data", "seeds", "tuned")
NOT_KEPT = "store not kept: cannot be rebuilt"
EXPLORATORY = "exploratory: registered after the runs"
FROM_CLAIMS_MD = "from claims.md (store not kept)"
NOT_RUN = "declared; its study has not run yet"
DECLARED_KEPT = "declared before the runs; rebuilt from the kept store"
EXPLORATORY_KEPT = "exploratory; rebuilt from the kept store"


class ClaimError(ValueError):
    """A claim file that cannot be read as a claim (one line)."""


@dataclass
class Side:
    """One side of a comparison: a row, or the change ``row − minus`` (seed by seed)."""

    row: str
    minus: str | None = None

    @property
    def label(self) -> str:
        return self.row if self.minus is None else f"({self.row}) − ({self.minus})"

    @property
    def rows(self) -> list[str]:
        return [self.row] + ([self.minus] if self.minus else [])


@dataclass
class Claim:
    name: str
    path: Path
    claim: str
    citation: str
    study: str
    metric: str
    direction: str
    a: Side
    b: Side
    checkpoint_metric: str
    scope: dict
    margin: float | None = None
    also: dict = field(default_factory=dict)
    parent: str | None = None
    store: dict | None = None
    registered_after_runs: bool = False
    recorded: dict | None = None
    retested_by: list = field(default_factory=list)

    def scope_text(self) -> str:
        s = self.scope
        return f"{s['training']} of {s['model']} on {s['data']}, {s['seeds']} seeds, {s['tuned']}"


def _side(value, name: str, key: str) -> Side:
    if isinstance(value, str):
        return Side(value)
    if isinstance(value, dict) and set(value) == {"row", "minus"}:
        return Side(str(value["row"]), str(value["minus"]))
    raise ClaimError(f"{name}: {key} must be a row label or {{row: X, minus: Y}}, not {value!r}")


def read(path: Path) -> Claim:
    """One claim file, checked; :class:`ClaimError` (one line) when a field is missing or wrong."""
    import yaml

    path = Path(path)
    name = path.stem
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ClaimError(f"{path}: not YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ClaimError(f"{path}: not a mapping of fields")
    missing = [k for k in ("claim", "citation", "study", "metric", "direction", "a", "b", "checkpoint_metric",
                           "scope") if k not in raw]
    if missing:
        raise ClaimError(f"{path}: missing {', '.join(missing)}")
    direction = str(raw["direction"])
    if direction not in DIRECTIONS:
        raise ClaimError(f"{path}: direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
    margin = raw.get("margin")
    if direction == "≈" and not (isinstance(margin, (int, float)) and margin > 0):
        raise ClaimError(f"{path}: an equivalence claim (≈) needs a positive margin")
    scope = raw["scope"] or {}
    if not isinstance(scope, dict) or any(k not in scope for k in SCOPE):
        raise ClaimError(f"{path}: scope needs {', '.join(SCOPE)}")
    also = {str(k): str(v) for k, v in (raw.get("also") or {}).items()}
    if any(v not in ("+", "-") for v in also.values()):
        raise ClaimError(f"{path}: also: each metric's direction is + or -")
    store = raw.get("store")
    if store is not None and not (isinstance(store, dict) and {"snapshot", "restore_to"} <= set(store)):
        raise ClaimError(f"{path}: store must be null (not kept) or {{snapshot, restore_to}}")
    retested_by = raw.get("retested_by") or []
    if isinstance(retested_by, str):
        retested_by = [retested_by]
    if not (isinstance(retested_by, list) and all(isinstance(n, str) for n in retested_by)):
        raise ClaimError(f"{path}: retested_by must be a claim name or a list of them")
    after = bool(raw.get("registered_after_runs", False))
    if retested_by and not after:
        raise ClaimError(f"{path}: retested_by is for exploratory claims (registered_after_runs: true)")
    return Claim(name, path, str(raw["claim"]), str(raw["citation"]), str(raw["study"]), str(raw["metric"]),
                 direction, _side(raw["a"], name, "a"), _side(raw["b"], name, "b"), str(raw["checkpoint_metric"]),
                 dict(scope), float(margin) if margin is not None else None, also,
                 str(raw["parent"]) if raw.get("parent") else None, store, after, raw.get("recorded"),
                 list(retested_by))


STUDIES = ("calibration", "ordinal_levels", "dice_ner", "label_noise_confirm", "label_noise_long", "ordinal_prior",
           "square_loss", "asl_multilabel", "imbalance_losses", "ner_losses", "multilabel_losses", "soft_labels", "regression_losses",
           "label_noise")


def load(directory: Path = CLAIMS_DIR) -> list[Claim]:
    """Every ``*.yaml`` claim of ``directory``: the claims declared before their runs first, then the exploratory
    ones (registered after), each by study (findings.md's order), then by name."""
    claims = [read(p) for p in sorted(Path(directory).glob("*.yaml"))]
    declared = {c.name for c in claims if not c.registered_after_runs}
    for c in claims:
        unknown = [n for n in c.retested_by if n not in declared]
        if unknown:
            raise ClaimError(f"{c.path}: retested_by names {', '.join(unknown)}, not a declared claim of {directory}")
    order = {s: i for i, s in enumerate(STUDIES)}
    return sorted(claims, key=lambda c: (c.registered_after_runs, order.get(c.study, len(order)), c.study, c.name))


# --- when a claim was registered, and what its study's runs did --------------------------------------------------

#: What a claim declares before its runs: a commit that changes any of these (re)registers the claim at its time.
#: Filling in ``parent``, ``store`` or ``recorded`` after the runs, or editing comments, does not.
DECLARED = ("claim", "study", "a", "b", "metric", "direction", "margin", "checkpoint_metric", "also", "scope")


def registered_at(path: Path) -> int | None:
    """When the claim was registered: the time (unix seconds) of the last commit of the file that changed what it
    declares (:data:`DECLARED`; its first commit unless a later one changed them); None when the file is not
    committed or has uncommitted changes (what it says now was not registered then: newer than everything)."""
    import yaml

    path = Path(path).resolve()

    def git(*args):
        return subprocess.run(["git", *args], cwd=path.parent, capture_output=True, text=True)

    log = git("log", "--reverse", "--format=%H %ct", "--", path.name)
    commits = [line.split() for line in log.stdout.splitlines() if line.strip()] if log.returncode == 0 else []
    if not commits:
        return None
    changed = git("status", "--porcelain", "--", path.name)
    if changed.returncode != 0 or changed.stdout.strip():
        return None
    prefix = git("rev-parse", "--show-prefix").stdout.strip()
    registered, before = None, object()
    for sha, seconds in commits:
        shown = git("show", f"{sha}:{prefix}{path.name}")
        try:
            raw = yaml.safe_load(shown.stdout) if shown.returncode == 0 else None
        except yaml.YAMLError:
            raw = None
        declared = {k: raw.get(k) for k in DECLARED} if isinstance(raw, dict) else None
        if declared != before:
            registered = int(seconds)
        before = declared
    return registered


def when(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def first_start(runs) -> float | None:
    """The earliest start of the runs (unix seconds; MLflow keeps milliseconds)."""
    starts = [r.info.start_time for r in runs if r.info.start_time is not None]
    return min(starts) / 1000 if starts else None


def objectives(runs) -> set[str]:
    return {str(r.data.params.get("task.objective")) for r in runs}


def refusals(claim: Claim, runs, registered: int | None, objective: set[str] | None = None) -> list[str]:
    """Why ``claim`` cannot be tested on ``runs`` (its study's finished runs), one line each: registered after the
    first run (unless the file says so: then it is exploratory, not refused), or checkpoints chosen on another
    metric. ``objective``: the study's objective when the runs are not at hand (from its report.md)."""
    out = []
    start = first_start(runs) if runs else None
    if start is not None and not claim.registered_after_runs and (registered is None or registered >= start):
        filed = ("the claim file is not committed, or changed since its commit (newer than everything)"
                 if registered is None else f"what the claim declares was last committed {when(registered)}")
        out.append(f"claims.py: refused {claim.name}: {filed}, not before the study's first run started "
                   f"{when(start)}")
    chosen = objectives(runs) if runs else objective
    if chosen and chosen != {claim.checkpoint_metric}:
        source = "the study's runs" if runs else "the study's committed report.md (store not kept)"
        out.append(f"claims.py: refused {claim.name}: it declares checkpoints chosen on "
                   f"{claim.checkpoint_metric}, but {source} chose them on {', '.join(sorted(chosen))}")
    return out


def committed_objective(study: str) -> set[str] | None:
    """The objective a study's committed report.md says its runs chose checkpoints on (None: no report)."""
    path = Path(__file__).resolve().parent / study / "report.md"
    if not path.is_file():
        return None
    found = re.search(r"objective: `([^`]+)`", path.read_text(encoding="utf-8"))
    return {found.group(1)} if found else None


# --- the comparison and its verdict ----------------------------------------------------------------------------

def verdict(diff, direction: str, margin: float | None = None, flagged=()) -> str:
    """What the interval of a − b says about the claim: agrees, disagrees, or inconclusive (with the reason).

    "+"/"-": agrees when the interval excludes 0 on the claimed side, disagrees when it excludes 0 on the other.
    "≈": agrees when the whole interval lies within ±margin, disagrees when it lies wholly outside it (the
    difference is larger than the margin), inconclusive when it straddles the margin."""
    if flagged:
        return "inconclusive (" + "; ".join(flagged) + ")"
    if diff is None or not (math.isfinite(diff.low) and math.isfinite(diff.high)):
        return "inconclusive (no interval)"
    if direction == "≈":
        if -margin <= diff.low and diff.high <= margin:
            return f"agrees (interval within ±{margin:g})"
        if diff.low > margin or diff.high < -margin:
            return f"disagrees (interval outside ±{margin:g})"
        return f"inconclusive (interval wider than ±{margin:g})"
    if diff.low > 0 or diff.high < 0:
        return "agrees" if (diff.low > 0) == (direction == "+") else "disagrees"
    return "inconclusive (interval covers 0)"


def side_sample(report, side: Side, metric: str):
    """The side's replicate units of ``metric``: the row's, or the change ``row − minus`` per unit both rows
    ran (with its item-bootstrap replicates: the runs of one split share the resampled items)."""
    from losslab.report import stats

    a = report.samples[(side.row, metric)]
    if side.minus is None:
        return a
    b = report.samples[(side.minus, metric)]
    keys = [k for k in a.values if k in b.values]
    reps = None
    if a.replicates is not None and b.replicates is not None:
        reps = {k: a.replicates[k] - b.replicates[k] for k in keys}
    return stats.Sample({k: a.values[k] - b.values[k] for k in keys}, reps, a.unit)


def compare(report, claim: Claim, metric: str):
    """a − b on ``metric``: :func:`losslab.report.build.pair` (one pre-stated comparison, 95%, no adjustment),
    a change ``row − minus`` entering the report as a derived row."""
    from losslab.report import build

    for side in (claim.a, claim.b):
        report.samples[(side.label, metric)] = side_sample(report, side, metric)
    return build.pair(report, claim.a.label, claim.b.label, metric)


def cell(sample) -> str:
    from losslab.report import stats

    mean, lo, hi = stats.t_interval(sample.values.values())
    return f"{mean:.4f}" + (f" s [{lo:.4f}, {hi:.4f}]" if math.isfinite(lo) else " (1 seed)")


def difference(diff) -> str:
    p = "–" if diff.p is None else f"{diff.p:.3f}"
    return f"{diff.diff:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}], p={p}"


def flags_of(report, claim: Claim) -> list[str]:
    rows = list(dict.fromkeys(claim.a.rows + claim.b.rows))
    out = [f"{x}: {', '.join(f.split(':')[0] for f in report.flags[x])}" for x in rows if x in report.flags]
    out += [f"{x}: {report.row(x).seeds()} seed, the interval has no seed part" for x in rows
            if report.row(x).seeds() < 2]
    return out


# --- one claim, end to end -------------------------------------------------------------------------------------

@dataclass
class Outcome:
    claim: Claim
    status: str  # built | not kept | superseded | not restored | not run | refused
    outcome: str  # the verdict cell's words (before the scope)
    diff: object = None  # stats.Difference (built), or a SimpleNamespace of the recorded numbers (not kept)
    cells: tuple = ("–", "–")
    also: list = field(default_factory=list)  # (metric, direction, Difference, cells)
    refused: list = field(default_factory=list)

    def verdict_cell(self) -> str:
        return f"{self.outcome} ({self.claim.scope_text()})"

    def source(self) -> str:
        return "store" if self.status == "built" else FROM_CLAIMS_MD if self.status == "not kept" else ""


def _recorded(claim: Claim):
    from types import SimpleNamespace

    r = claim.recorded or {}
    if not all(k in r for k in ("diff", "low", "high")):
        return None
    return SimpleNamespace(diff=float(r["diff"]), low=float(r["low"]), high=float(r["high"]),
                           p=None if r.get("p") is None else float(r["p"]))


def where(claim: Claim, sweeps: dict) -> tuple[str, str] | str:
    """(uri, parent) of the claim's store, or why there is none (one line)."""
    from losslab.report import sweep as reports

    if claim.study in sweeps:
        return reports.resolve(sweeps[claim.study], None)
    if claim.store is None:
        return NOT_RUN if claim.parent is None and not claim.registered_after_runs else NOT_KEPT
    db = ROOT / claim.store["restore_to"] / "mlflow.db"
    if not db.is_file():
        return (f"store kept, not restored: python experiments/snapshot.py restore {claim.store['snapshot']} "
                f"{claim.store['restore_to']}")
    return f"sqlite:///{db}", claim.parent


def evaluate(claim: Claim, sweeps: dict, cache: dict) -> Outcome:
    from losslab import tracking

    found = where(claim, sweeps)
    if isinstance(found, str):
        if found == NOT_KEPT:
            refused = refusals(claim, [], registered_at(claim.path), committed_objective(claim.study))
            if refused:
                return Outcome(claim, "refused", "refused: " + "; ".join(r.split(": ", 2)[2] for r in refused),
                               refused=refused)
            rec = claim.recorded or {}
            words = NOT_KEPT + (f"; {EXPLORATORY}" if claim.registered_after_runs else "")
            if rec.get("verdict"):
                words += f"; recorded in {rec.get('source', 'claims.md')}: “{rec['verdict']}”"
            return Outcome(claim, "not kept", words, _recorded(claim), (rec.get("a", "–"), rec.get("b", "–")))
        return Outcome(claim, "not run" if found == NOT_RUN else "not restored", found)
    uri, parent = found
    if (uri, parent) not in cache:
        runs, _ = tracking.latest_per_job(tracking.children(uri, parent))
        cache[(uri, parent)] = [runs, None]
    runs = cache[(uri, parent)][0]
    refused = refusals(claim, runs, registered_at(claim.path))
    if refused:
        return Outcome(claim, "refused", "refused: " + "; ".join(r.split(": ", 2)[2] for r in refused),
                       refused=refused)
    if cache[(uri, parent)][1] is None:
        from losslab.report import build
        cache[(uri, parent)][1] = build.build(uri, parent)
    report = cache[(uri, parent)][1]
    diff = compare(report, claim, claim.metric)
    cells = tuple(cell(report.samples[(s.label, claim.metric)]) for s in (claim.a, claim.b))
    flagged = flags_of(report, claim)
    if claim.registered_after_runs:
        words = EXPLORATORY + ("; " + "; ".join(flagged) if flagged else "")
    else:
        words = verdict(diff, claim.direction, claim.margin, flagged)
    also = []
    for metric, direction in claim.also.items():
        d = compare(report, claim, metric)
        also.append((metric, direction, d, tuple(cell(report.samples[(s.label, metric)]) for s in (claim.a, claim.b))))
    return Outcome(claim, "built", words, diff, cells, also)


SUPERSEDED = "superseded: its numbers (store not kept) are not quoted"


def supersede(outcomes: list[Outcome]) -> list[Outcome]:
    """An exploratory claim whose store was not kept, once one of its ``retested_by`` claims has been rebuilt from
    its store: status "superseded", no numbers (nothing can rebuild them), the retests and their verdicts named."""
    by_name = {o.claim.name: o for o in outcomes}
    out = []
    for o in outcomes:
        built = [by_name[n] for n in o.claim.retested_by if by_name.get(n) and by_name[n].status == "built"]
        if o.status == "not kept" and built:
            words = (f"{SUPERSEDED}; {EXPLORATORY}; retested, declared before its runs: "
                     + "; ".join(f"{b.claim.name} ({b.claim.study}): {b.outcome}" for b in built))
            o = Outcome(o.claim, "superseded", words)
        out.append(o)
    return out


# --- the table and the forest plot -----------------------------------------------------------------------------

def expectation(claim: Claim, direction: str | None = None) -> str:
    direction = direction or claim.direction
    return f"≈ within ±{claim.margin:g}" if direction == "≈" else "a − b > 0" if direction == "+" else "a − b < 0"


def table(outcomes: list[Outcome]) -> str:
    lines = ["| claim | study | metric (holds if) | a | b | a | b | a − b [95%], p | verdict (scope) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        c = o.claim
        if o.status == "built":
            number = difference(o.diff)
        elif o.status == "not kept" and o.diff is not None:
            number = f"{difference(o.diff)} (recorded in {(c.recorded or {}).get('source', 'claims.md')}; store not kept)"
        else:
            number = "–"
        lines.append(f"| {c.claim} ([{c.name}](claims/{c.name}.yaml)) | {c.study} | {c.metric} "
                     f"({expectation(c)}) | {c.a.label} | {c.b.label} | {o.cells[0]} | {o.cells[1]} | {number} | "
                     f"{o.verdict_cell()} |")
        for metric, direction, d, cells in o.also:
            lines.append(f"| ↳ declared beside: {metric} | {c.study} | {metric} ({expectation(c, direction)}) | "
                         f"{c.a.label} | {c.b.label} | {cells[0]} | {cells[1]} | {difference(d)} | "
                         f"no verdict (the claim's is on {c.metric}) |")
    lines += ["", "Sources:", ""] + [f"- [{o.claim.name}](claims/{o.claim.name}.yaml): {o.claim.citation}"
                                     for o in outcomes]
    return "\n".join(lines)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False))


def forest(outcomes: list[Outcome], path) -> list[str]:
    """Every claim's a − b with its 95% interval, one row per claim, one panel per metric (differences in
    different units never share an axis), the equivalence margin shaded; rebuilt numbers filled, numbers
    recorded in claims.md (store not kept) hollow and grey; among the rebuilt, a claim declared before its runs black,
    an exploratory one blue. Returns the rows drawn, top to bottom (claim names)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    shown = [o for o in outcomes if o.diff is not None and o.status in ("built", "not kept")]
    metrics = list(dict.fromkeys(o.claim.metric for o in shown))
    if not metrics:
        raise SystemExit("claims.py: no claim has numbers to plot")
    heights = [sum(o.claim.metric == m for o in shown) + 0.5 for m in metrics]
    fig, axes = plt.subplots(len(metrics), 1, figsize=(12, 1.05 * sum(heights) + 0.65 * len(metrics) + 1.2),
                             squeeze=False, gridspec_kw={"height_ratios": heights, "hspace": 0.75})
    drawn = []
    for ax, metric in zip(axes[:, 0], metrics):
        rows = [o for o in shown if o.claim.metric == metric]
        labels = []
        for y, o in enumerate(reversed(rows)):
            c, d = o.claim, o.diff
            rebuilt = o.status == "built"
            if c.direction == "≈":
                ax.axvspan(-c.margin, c.margin, color="tab:green", alpha=0.15, lw=0)
            color = ("tab:gray" if not rebuilt else "tab:blue" if c.registered_after_runs else "black")
            ax.plot([d.low, d.high], [y, y], color=color, lw=2, solid_capstyle="butt")
            ax.plot([d.diff], [y], "o", ms=7, color=color, mfc=color if rebuilt else "white", mew=1.5)
            ax.text(1.02, y, f"{d.diff:+.4f} [{d.low:+.4f}, {d.high:+.4f}]\n"
                    f"{(EXPLORATORY_KEPT if c.registered_after_runs else DECLARED_KEPT) if rebuilt else FROM_CLAIMS_MD}\n"
                    f"{_wrap(o.outcome.split(';')[-1].strip() if not rebuilt else o.outcome, 38)}",
                    transform=ax.get_yaxis_transform(), va="center", fontsize=7, color=color)
            sides = f"{c.study}: a = {c.a.label}, b = {c.b.label}"
            labels.append(f"{_wrap(c.claim, 60)}\n{_wrap(sides, 70)}\nholds if {expectation(c)}")
        ax.set_yticks(range(len(rows)), labels, fontsize=7)
        drawn += [o.claim.name for o in rows]
        ax.axvline(0, color="tab:red", lw=0.8)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        low = min([o.diff.low for o in rows] + [-(o.claim.margin or 0) for o in rows] + [0.0])
        high = max([o.diff.high for o in rows] + [o.claim.margin or 0 for o in rows] + [0.0])
        pad = 0.08 * (high - low or 1.0)
        ax.set_xlim(low - pad, high + pad)
        quantity = "change" if any(o.claim.a.minus for o in rows) else "difference"
        ax.set_title(f"{metric}: a − b ({quantity} in {metric} units, 95% interval)", fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=7.5)
        ax.grid(axis="x", alpha=0.3)
    kinds = [(o.status == "built", o.claim.registered_after_runs) for o in shown]
    handles = [h for h, drawn_here in (
        (Line2D([], [], color="black", marker="o", lw=2, label=DECLARED_KEPT), (True, False) in kinds),
        (Line2D([], [], color="tab:blue", marker="o", lw=2, label=EXPLORATORY_KEPT), (True, True) in kinds),
        (Line2D([], [], color="tab:gray", marker="o", mfc="white", lw=2, label=FROM_CLAIMS_MD),
         any(not built for built, _ in kinds)),
        (plt.Rectangle((0, 0), 1, 1, color="tab:green", alpha=0.15, label="equivalence margin (≈ claims)"),
         any(o.claim.direction == "≈" for o in shown))) if drawn_here]  # a key only for what is drawn
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle("Each claim's pre-stated comparison a − b: one panel per metric (the x axes are not shared)",
                 fontsize=10, y=1 - 0.3 / fig.get_figheight())
    fig.subplots_adjust(left=0.36, right=0.76, top=1 - 0.75 / fig.get_figheight(), bottom=0.9 / fig.get_figheight())
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return drawn


HEADER = """# Claims tested by the committed studies

Each claim is declared in its own file, [`claims/<name>.yaml`](claims/), and tested as one pre-stated
comparison, row a minus row b on the test split (`losslab.report.build.pair`): the difference of the means over
seeds, its 95% interval (seeds paired + the test items they share, report v3's variance model) and its p (not
adjusted: one comparison per claim). A side written `(X) − (Y)` is the change from row Y to row X, seed by
seed. "≈" claims need the whole interval within the margin. A flagged row (degenerate, not converged) makes
the claim inconclusive. The verdict cell carries the claim's scope.

A claim registered after its study's first run (the file's first commit against the runs' start times) is
refused, unless its file says so (`registered_after_runs: true`): then it is *exploratory*, not a verdict.
Stores that were not kept cannot be rebuilt: their numbers are the ones the earlier claims.py committed in this
file, marked so, until a claim declared before its runs tests the same thing again (`retested_by`). Then the old
numbers are no longer quoted (they stay in the claim's file, under `recorded`) and the row points to its retests.
"""


def census(outcomes: list[Outcome]) -> str:
    """One line: how many claims were declared before their runs (tested, not run yet, not rebuilt here) and how
    many after (exploratory)."""
    declared = [o for o in outcomes if not o.claim.registered_after_runs]
    tested = sum(o.status == "built" for o in declared)
    waiting = sum(o.status == "not run" for o in declared)
    other = len(declared) - tested - waiting
    after = len(outcomes) - len(declared)
    kept = sum(o.status == "built" for o in outcomes if o.claim.registered_after_runs)
    gone = sum(o.status == "superseded" for o in outcomes)
    return (f"**{len(declared)} claims declared before their runs** come first ({tested} tested, {waiting} whose "
            f"study has not run yet" + (f", {other} not rebuilt here: store not restored or claim refused" if other
                                        else "") +
            f"); **{after} exploratory** claims, stated after their studies ran, follow ({kept} rebuilt from a kept "
            f"store, " + (f"{gone} superseded by their declared retests (numbers not quoted), " if gone else "") +
            f"{after - kept - gone} as recorded).\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python experiments/claims.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweeps", nargs="*", metavar="study=SWEEP_DIR",
                        help="a study's sweep dir (default: the store named in its claim files)")
    parser.add_argument("--forest", metavar="PNG", help="also draw the forest plot of every claim's a − b")
    parser.add_argument("--claims", default=str(CLAIMS_DIR), help="the folder of claim files")
    args = parser.parse_args(argv)
    sweeps = dict(a.split("=", 1) for a in args.sweeps)
    try:
        claims = load(Path(args.claims))
    except ClaimError as err:
        print(f"claims.py: {err}", file=sys.stderr)
        return 2
    cache: dict = {}
    outcomes = supersede([evaluate(c, sweeps, cache) for c in claims])
    print(HEADER)
    print(census(outcomes))
    print(table(outcomes))
    for o in outcomes:
        for line in o.refused:
            print(line, file=sys.stderr)
    if args.forest:
        forest(outcomes, args.forest)
    return 1 if any(o.refused for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
