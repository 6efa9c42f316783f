"""The report as text: the table (Markdown or the terminal's), the comparison with the best, the one-line answer,
and ``report.md``."""

from __future__ import annotations

import math

from losslab import race as races
from losslab.metrics import greater_is_better
from losslab.report import flags as rules
from losslab.report import stats
from losslab.report.build import TUNED, VALIDATION, Report
from losslab.report.rows import SEED_KEYS
from losslab.store import (COMMAND_TAG, DEVICE_NAME_TAG, ERROR_TAG, OVERRIDES_TAG, RESUMED_FROM_TAG, SWEEP_TAG, Store,
                           choice_tag)

VERSION = 3  # printed in every report.md: the committed studies say which report built them

_FLAG_SHORT = {"degenerate": "degenerate", "not converged": "not converged", "seeds disagree": "seeds disagree"}


def arrow(metric: str) -> str:
    return "↑" if greater_is_better(metric) else "↓"


def _f(x: float) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.4f}"


def _interval(lo: float, hi: float) -> str:
    return f"[{_f(lo)}, {_f(hi)}]" if math.isfinite(lo) and math.isfinite(hi) else ""


def _half(lo: float, hi: float) -> str:
    return f"±{(hi - lo) / 2:.4f}" if math.isfinite(lo) and math.isfinite(hi) else ""


def flag_words(report: Report, label: str) -> str:
    return ", ".join(dict.fromkeys(_FLAG_SHORT.get(r.split(":")[0].split(" (")[0], r.split(":")[0])
                                   for r in report.flags.get(label, [])))


def cell(report: Report, label: str, metric: str, markdown: bool = True) -> str:
    c = report.cells.get((label, metric))
    if c is None or not math.isfinite(c.mean):
        return "–"
    best = report.best(metric) == label and len(report.rows) > 1
    if markdown:
        parts = [f"**{_f(c.mean)}**" if best else _f(c.mean)]
        if _interval(c.seed_low, c.seed_high):
            parts.append(f"s {_interval(c.seed_low, c.seed_high)}")
        if _interval(c.test_low, c.test_high):
            parts.append(f"t {_interval(c.test_low, c.test_high)}" + (" (1 seed: test-sample only)" if c.n == 1 else ""))
        return "<br>".join(parts)
    text = f"{_f(c.mean)}{'*' if best else ''}"
    for tag, lo, hi in (("s", c.seed_low, c.seed_high), ("t", c.test_low, c.test_high)):
        if _half(lo, hi):
            text += f" {tag}{_half(lo, hi)}"
    return text


def _validation_cell(report: Report, label: str, markdown: bool) -> str:
    c = report.validation.get(label)
    if c is None or not math.isfinite(c.mean):
        return "–"
    if markdown:
        return _f(c.mean) + (f"<br>s {_interval(c.seed_low, c.seed_high)}" if _interval(c.seed_low, c.seed_high) else "")
    return _f(c.mean) + (f" s{_half(c.seed_low, c.seed_high)}" if _half(c.seed_low, c.seed_high) else "")


def _render(lines: list[list[str]], markdown: bool) -> str:
    if markdown:
        out = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(lines[0])]
        out += ["| " + " | ".join(c) + " |" for c in lines[1:]]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in lines)


def table(report: Report, markdown: bool = True) -> str:
    """One row per loss: the test metrics (mean over seeds, the seed interval ``s`` and the test-set bootstrap
    interval ``t``), the objective on validation beside them, the flags; the best of each column among the rows
    that can be ranked marked (bold / ``*``)."""
    head = ["loss", "seeds", "flags", f"validation {report.objective} {arrow(report.objective)}"]
    head += [f"{m} {arrow(m)}" for m in report.metrics]
    lines = [head]
    for row in report.rows:
        words = flag_words(report, row.label)
        for said in report.info.get(row.label, []):
            words = ", ".join(w for w in (words, f"({said.split(':')[0]})") if w)
        lines.append([row.label, str(row.seeds()), words or "–",
                      _validation_cell(report, row.label, markdown)]
                     + [cell(report, row.label, m, markdown) for m in report.metrics])
    return _render(lines, markdown)


def verdict(report: Report, label: str, metric: str) -> str:
    """best / best (tied) / tie / worse on a declared metric; why a row is not compared otherwise."""
    v = report.verdicts.get(metric)
    if v is None:
        return "–"
    if label in report.flags:
        return "not compared (flagged)"
    if label not in v.compared:
        return "not compared (1 seed)" if report.cells[(label, metric)].n == 1 else "not compared"
    return v.verdict(label, greater_is_better(metric))


def difference(report: Report, label: str, metric: str, markdown: bool = True) -> str:
    said = verdict(report, label, metric)
    if said.startswith("best") or said.startswith("not compared") or said == "–":
        return said
    d = report.comparisons.get((label, metric))
    if d is None:
        return "–"
    p = "–" if d.p_adjusted is None else f"{d.p_adjusted:.3f}"
    sep = "<br>" if markdown else " "
    interval = _interval(d.low, d.high)
    return f"{d.diff:+.4f}{sep}{interval + sep if interval else ''}p={p} {said}"


def comparisons(report: Report, markdown: bool = True) -> str:
    """Each row minus the best row of each declared metric: the difference, its simultaneous interval, the
    adjusted p (the same test: p < 0.05 exactly when the interval excludes 0), and the verdict."""
    lines = [["loss"] + [f"{m} {arrow(m)}" for m in report.declared]]
    for row in report.rows:
        lines.append([row.label] + [difference(report, row.label, m, markdown) for m in report.declared])
    return _render(lines, markdown)


def _said(report: Report, label: str, o: str) -> str:
    d = report.comparisons[(label, o)]
    p = "" if d.p_adjusted is None else f", adjusted p = {d.p_adjusted:.3f}"
    return f"`{label}` ({d.diff:+.4f}{' ' + _interval(d.low, d.high) if _interval(d.low, d.high) else ''}{p})"


def answer(report: Report) -> str:
    """The report's answer in one line (a string; also the parent run's description, issue 16); a race's own
    decisions come first."""
    text = _answer(report)
    if report.race:
        try:  # worded by this code from the saved state
            said = races.from_dict(report.race).answer()
        except (KeyError, TypeError, ValueError):
            said = report.race.get("answer", "")
        return f"{said} {text}" if said else text
    return text


def _answer(report: Report) -> str:
    o = report.objective
    if not report.rows:
        return "No job finished: nothing to rank."
    v = report.verdicts.get(o)
    best = report.best(o)
    unflagged = [r.label for r in report.rows if r.label not in report.flags]
    if not unflagged:
        why = "; ".join(f"`{label}`: {'; '.join(reasons)}" for label, reasons in report.flags.items())
        return f"No row can be ranked on {o}: every row is flagged ({why})."
    if best is None:
        top = report.ranking.get(o, [None])[0]
        c = report.cells.get((top, o)) if top else None
        seen = (f" `{top}` has the highest {o} ({_f(c.mean)}"
                + (f", test-sample interval {_interval(c.test_low, c.test_high)}" if c and _interval(c.test_low, c.test_high) else "")
                + ")," if c else "")
        return (f"One seed per row:{seen} but no difference can be claimed: the seed-to-seed spread cannot be "
                f"measured from one run. Run two or more seeds (seed=1,2,3).")
    mean, lo, hi, how = stats.mean_interval(report.samples[(best, o)])
    text = f"`{best}` has the best {o} ({_f(mean)}" + (f", 95% interval {_interval(lo, hi)} over {how}" if _interval(lo, hi) else "") + ")"
    others = [label for label in v.compared if label != best]
    worse = [r for r in others if v.verdict(r, greater_is_better(o)) == "worse"]
    ties = [r for r in others if r not in worse]
    if not others:
        text += "; no other row to compare it with."
    elif ties and not worse:
        text += f", but it cannot be told apart from {', '.join(_said(report, t, o) for t in ties)}: no winner at this budget."
    elif ties:
        text += (f": it beats {', '.join(_said(report, b, o) for b in worse)}, and cannot be told apart from "
                 f"{', '.join(_said(report, t, o) for t in ties)}.")
    else:
        text += f": it beats every other row ({', '.join(_said(report, b, o) for b in worse)})."
    single = [r.label for r in report.rows if r.label not in report.flags and r.label not in v.compared]
    if single:
        text += " Not compared (1 seed): " + ", ".join(f"`{label}`" for label in single) + "."
    if report.flags:
        text += " Not ranked: " + "; ".join(f"`{label}` ({flag_words(report, label)})" for label in report.flags) + "."
    return text


def _budget(run) -> str:
    p = run.data.params
    steps = (f"{p.get('trainer.max_steps')} steps" if p.get("trainer.max_steps", "-1") != "-1"
             else f"{p.get('trainer.num_train_epochs')} epoch(s)")
    return (f"{steps} × batch {p.get('trainer.per_device_train_batch_size')} (lr {p.get('trainer.learning_rate')}); "
            f"rows: train {_rows(p, 'task.max_train_samples')}, validation {_rows(p, 'task.max_eval_samples')}, "
            f"test {_rows(p, 'task.max_test_samples')}")


def budget(report: Report) -> str:
    """The budget per job, read from every run: one line when all agree, else each row's."""
    per_row = {row.label: sorted({_budget(r) for r in row.runs}) for row in report.rows}
    every = {b for bs in per_row.values() for b in bs}
    if len(every) <= 1:
        return next(iter(every), "–")
    return "varies: " + "; ".join(f"`{label}`: {' / '.join(bs)}" for label, bs in per_row.items())


def hardware(report: Report, parent) -> str:
    """Where the jobs ran and how long they took, from the runs themselves: device (and its name when the run
    logged one), precision, the sweep's wall time (its parent run) and the jobs' mean duration."""
    runs = [r for row in report.rows for r in row.runs]
    where = set()
    for r in runs:
        p = r.data.params
        precision = "bf16" if p.get("bf16") == "True" else "fp16" if p.get("fp16") == "True" else "fp32"
        name = r.data.tags.get(DEVICE_NAME_TAG)
        where.add(f"{p.get('hardware.device', '?')}{f' ({name})' if name else ''}, {precision}")
    timed = [r for r in runs if r.info.end_time and r.info.start_time]
    resumed = [r for r in timed if RESUMED_FROM_TAG in r.data.tags]  # its span holds the pause before resume
    durations = [(r.info.end_time - r.info.start_time) / 60000 for r in timed if r not in resumed]
    took = (f"; wall time: the sweep {(parent.info.end_time - parent.info.start_time) / 60000:.1f} min"
            if parent.info.end_time and parent.info.start_time else "")
    pauses = "the pauses between an interruption and its resume"
    if durations:
        took += f", a job {sum(durations) / len(durations):.1f} min on average" + (
            f" over the {len(durations)} that ran uninterrupted ({len(resumed)} resumed: their spans and the "
            f"sweep's include {pauses})" if resumed else f" ({sum(durations):.0f} min in all)")
    elif resumed:
        took += f" (every job was resumed: the spans include {pauses})"
    return " / ".join(sorted(where)) + took


def _rows(params: dict, key: str) -> str:
    value = params.get(key)
    return "all" if value in (None, "None", "null") else value


def _title(tags: dict) -> str:
    """``experiment=<study> (sweep <time>)`` for a preset, else the sweep's name."""
    name = tags.get(SWEEP_TAG, "sweep")
    study = [o for o in tags.get(OVERRIDES_TAG, "").split() if o.startswith(("experiment=", "hparams_search=", "race="))]
    return f"{study[0]} ({name})" if study else name


def _seeds(report: Report) -> str:
    runs = [r for row in report.rows for r in row.runs]
    parts = []
    for key in SEED_KEYS:
        values = sorted({r.data.params.get(key) for r in runs if r.data.params.get(key) is not None},
                        key=lambda v: (len(v), v))
        follows_seed = key != "run.seed" and all(r.data.params.get(key) == r.data.params.get("run.seed") for r in runs)
        if values and (key == "run.seed" or (len(values) > 1 and not follows_seed)):
            parts.append(f"{key.removeprefix('run.')} {', '.join(values)}")
    return "; ".join(parts) or "–"


def statistics_note(report: Report) -> str:
    items = (f"a paired bootstrap over test items ({report.resamples} resamples; every run of a split scored on "
             "the same resampled items; NER resamples sentences)" if report.resamples else
             "no per-item predictions in the store, so no test-set interval")
    tuned = (f" `{TUNED}macro_f1` / `{TUNED}micro_f1`: each label's threshold chosen on validation (best F1 "
             "there) and applied to test; `macro_ap` and `lrap` need no threshold." if any(
                 m.startswith(TUNED) for m in report.metrics) else "")
    unit = "split (the mean over its seeds; `task.split_seed` is swept)" if report.by_split else "seed"
    declared = ", ".join(f"`{m}`" for m in report.declared) or "none"
    pairs = {m: v.pairs for m, v in report.verdicts.items()}
    level = next((v.level for v in report.verdicts.values() if v.pairs), None)
    simultaneous = (f" Each interval is at level {100 * level:.3g}%: Bonferroni over every pair of compared rows "
                    f"({', '.join(f'{n} for `{m}`' for m, n in pairs.items())}) × {len(report.declared)} declared "
                    "metric(s), so all of them hold at once with probability ≥ 95% whichever row comes out best"
                    if level else "")
    return (
        f"**The question.** Declared metrics (verdicts): {declared}; the other columns are descriptive (no "
        "verdict). Declare more with `report.metrics=[...]` before the runs.\n\n"
        "**How to read it.** Each cell: the mean over seeds, `s` its 95% t-interval over seeds (training "
        f"randomness{' and the split' if report.by_split else ''}), `t` the 95% percentile interval "
        f"of the same mean under {items}. The validation column is the objective of the tested (best) checkpoint "
        f"on validation. The replicate unit is the {unit}. Each compared row (unflagged, two or more units) is "
        "compared with the best row of each declared metric: the difference of the means, a simultaneous "
        "interval whose variance is the units' (paired over the units both ran, Welch otherwise) plus the "
        "test-sample noise the units share (the covariance of different seeds' bootstrap replicates, so the "
        "seed × item part is not counted twice), t degrees of freedom by Welch–Satterthwaite, and the same "
        f"test's Bonferroni-adjusted p.{simultaneous}. *worse*: the interval excludes 0 (⟺ adjusted p < "
        f"{stats.ALPHA}); *tie* otherwise; *best (tied)*: the best mean, tied with at least one row. A row with "
        "one seed gets no p-value and no verdict: its cell shows the test-sample interval alone. Losses' own "
        "values (`eval_loss`) are never compared." + tuned + "\n\n"
        "**Flags** (a flagged row is shown, never compared or marked best): *degenerate*: the predictions' spread "
        "under 1% of the labels' (regression), one class for every item or a mean per-class recall within two "
        "standard errors of chance (classification), a label on for all or none of the items (multi-label), no "
        "entity right (NER); *not converged*: the validation objective still rises over its last "
        f"{rules.WINDOW} evaluations (the seeds' least-squares slopes significantly positive, one-sided t-test at "
        "0.05 / rows). Informative only, never excluding: *still rising* (the same trend significant at 0.05 for the "
        "row alone), *seeds disagree* (a row whose variance over seeds exceeds the other rows' pooled variance, "
        "one-sided F-test at 0.05 / rows; it is still compared, on its own spread).\n\n"
        "**Why these tools.** Comparing with a best row that the data chose is one of all pairwise comparisons "
        "(Holm's guarantee covers a fixed family only), so the intervals are simultaneous over all pairs "
        "(Bonferroni; Tukey's studentized range assumes equal variances, and its per-pair form, Games–Howell, "
        "gave 10–45% false *worse* with 3 seeds in `tests/test_report_calibration.py`). The seed × item variance "
        "decomposition follows Bouthillier et al. (MLSys 2021) and Owen (2007). SciPy's t, F, sign-flip and "
        "permutation tests (`scipy.stats`); our own vectorized bootstrap gives every run the same resampled "
        "items (as `scipy.stats.bootstrap(paired=True)` does for arrays of equal length) and reuses one draw for "
        "every metric of the suite (tests check it against the suites). The decision rules' error rates are "
        "measured by simulation against known truth in `tests/test_report_calibration.py`. Not used: `rliable` "
        "(stratified bootstrap across many tasks; a sweep is one task); `deepsig`'s almost stochastic order "
        "(Dror et al. 2019) compares score distributions over seeds only, with no place for the test-set "
        "sampling."
    )


def markdown(report: Report, uri: str) -> str:
    parent = Store(uri).run(report.parent_id)
    runs = [r for row in report.rows for r in row.runs]
    first = runs[0] if runs else None
    params = first.data.params if first else {}
    lines = [
        f"# Sweep report: {_title(parent.data.tags)}",
        "",
        f"- command: `{parent.data.tags.get(COMMAND_TAG, '')}`",
        f"- task: `{params.get('task.name')}` · "
        f"model: `{first.data.tags.get(choice_tag('model')) if first else ''}` · "
        f"objective: `{report.objective}` {arrow(report.objective)} (validation, picks each job's best checkpoint)",
        f"- budget per job: {budget(report)}; seeds: {_seeds(report)}",
        f"- hardware: {hardware(report, parent)}",
        f"- MLflow parent run `{report.parent_id}`; {len(runs)} finished job(s), {len(report.failed)} failed",
        "",
        f"**Answer ({report.objective}):** {answer(report)}",
        "",
        "## Test metrics",
        "",
        "Mean over seeds; `s` 95% interval over seeds; `t` 95% interval over test items (bootstrap); best of each "
        "column among unflagged rows in bold.",
        "",
        table(report),
        "",
        "## Against the best row",
        "",
        "Each compared row minus the best row, on the declared metrics: difference, simultaneous interval, "
        "adjusted p, verdict (the interval and the p are the same test).",
        "",
        comparisons(report),
        "",
    ]
    if report.flags or report.info:
        lines += ["## Flags", ""]
        lines += [f"- `{label}` (not ranked): {'; '.join(reasons)}" for label, reasons in report.flags.items()]
        lines += [f"- `{label}` (informative): {'; '.join(reasons)}" for label, reasons in report.info.items()]
        lines.append("")
    lines += [statistics_note(report), ""]
    lines += [f"- {note}" for note in report.notes] + ([""] if report.notes else [])
    lines += ["## Plots", "", "![training loss](loss_curves.png)", "", "![validation](validation.png)", "",
              "![test metrics](test_metrics.png)", ""]
    if report.failed:
        lines += ["## Failed jobs", ""]
        for run in report.failed:
            lines.append(f"- `{run.info.run_name}` ({run.data.tags.get(OVERRIDES_TAG, '')}), run "
                         f"`{run.info.run_id}`: {run.data.tags.get(ERROR_TAG, run.info.status)}")
        lines.append("")
    lines += [f"<sub>built by losslab.report v{VERSION} (`python -m losslab.report`) from the MLflow store alone; "
              f"validation column: metric `{VALIDATION}`.</sub>", ""]
    return "\n".join(lines)
