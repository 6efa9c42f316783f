"""Each published claim that a committed study tests, as one pre-stated comparison (row a minus row b) built
from the study's MLflow store with the report's statistics (seeds paired + paired bootstrap over test items).

    python experiments/claims.py regression_losses=<sweep dir> imbalance_losses=<sweep dir> ner_losses=<sweep dir> ... > experiments/claims.md

Studies not given are listed as not run. The numbers in experiments/findings.md come from this file's output.
"""

from __future__ import annotations

import importlib
import sys

from losslab import report as reports

build = importlib.import_module("losslab.report.build")   # the module (the package exports its build function)

# (claim, study, metric, a, b, what "a - b" should show if the claim holds: "≈", "+" (a higher), "-" (a lower))
CLAIMS = [
    ("square loss ≈ cross-entropy (Hui & Belkin 2021)", "imbalance_losses", "accuracy", "square", "cross_entropy", "≈"),
    ("square loss ≈ cross-entropy (Hui & Belkin 2021)", "imbalance_losses", "macro_f1", "square", "cross_entropy", "≈"),
    ("focal loss calibrates better than CE (Mukhoti et al. 2020)", "imbalance_losses", "ece", "focal", "cross_entropy", "-"),
    ("label smoothing calibrates better than CE (Müller et al. 2019)", "imbalance_losses", "ece", "label_smoothing", "cross_entropy", "-"),
    ("dice loss helps F1 on imbalanced NER (Li et al. 2020)", "ner_losses", "f1", "dice", "cross_entropy", "+"),
    ("asymmetric loss beats BCE on multi-label (Ridnik et al. 2021)", "multilabel_losses", "macro_ap", "asymmetric", "bce", "+"),
    ("asymmetric loss beats focal on multi-label (Ridnik et al. 2021)", "multilabel_losses", "macro_ap", "asymmetric", "sigmoid_focal", "+"),
    ("CORAL beats CE on level error (Cao et al. 2020)", "soft_labels", "level_mae", "coral", "cross_entropy", "-"),
]
EQUIVALENCE = 0.01   # "≈": the whole 95% interval of a - b within ±0.01 (one point of accuracy or F1)


def verdict(diff, expect: str, flagged: list[str]) -> str:
    if flagged:
        return "inconclusive (" + "; ".join(flagged) + ")"
    if expect == "≈":
        if -EQUIVALENCE <= diff.low and diff.high <= EQUIVALENCE:
            return f"agrees (interval within ±{EQUIVALENCE})"
        return "disagrees" if diff.low > 0 or diff.high < 0 else "inconclusive (interval wider than the margin)"
    if diff.low > 0 or diff.high < 0:
        right = (diff.diff > 0) == (expect == "+")
        return "agrees" if right else "disagrees"
    return "inconclusive (interval covers 0)"


def main(argv: list[str]) -> None:
    sweeps = dict(a.split("=", 1) for a in argv)
    built = {}
    print("# Claims tested by the committed studies\n")
    print("Each row: one pre-stated comparison, row a minus row b on the test split: the difference of the means "
          "over seeds, its 95% interval (seeds paired + paired bootstrap over test items, as in the reports) and "
          f"its p (not adjusted: one comparison per claim). \"≈\" claims need the whole interval within "
          f"±{EQUIVALENCE}. A flagged row (degenerate, not converged, seeds disagree) makes the claim inconclusive.\n")
    print("| claim | study | metric | a | b | a | b | a − b [95%], p | verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for claim, study, metric, a, b, expect in CLAIMS:
        if study not in sweeps:
            print(f"| {claim} | {study} | {metric} | {a} | {b} | – | – | – | not run at a converged budget |")
            continue
        if study not in built:
            uri, parent = reports.resolve(sweeps[study], None)
            built[study] = build.build(uri, parent)
        r = built[study]
        diff = build.pair(r, a, b, metric)
        cells = [r.cells[(x, metric)] for x in (a, b)]
        flagged = [f"{x}: {', '.join(f.split(':')[0] for f in r.flags[x])}" for x in (a, b) if x in r.flags]
        flagged += [f"{x}: {r.row(x).seeds()} seed, the interval has no seed part" for x in (a, b) if r.row(x).seeds() < 2]
        show = [f"{c.mean:.4f}" + (f" s [{c.seed_low:.4f}, {c.seed_high:.4f}]" if c.seed_low == c.seed_low else " (1 seed)")
                for c in cells]
        print(f"| {claim} | {study} | {metric} | {a} | {b} | {show[0]} | {show[1]} | "
              f"{diff.diff:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}], p={diff.p:.3f} | {verdict(diff, expect, flagged)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
