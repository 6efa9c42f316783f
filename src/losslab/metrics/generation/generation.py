"""losslab's generation suite as an ``evaluate`` metric: rougeL, chrf, exact_match of generated text.

ROUGE-L F1 (``rouge-score``, stemmed, as the ROUGE-1.5.5 reimplementation computes it) averaged over items;
chrF (``sacrebleu``, corpus level, 0–100); exact_match: the share of generations equal to the reference after
lower-casing and whitespace normalisation. Loaded by local path (offline). Judges decoded strings, so it does
not depend on the loss a run trained with.
"""

import datasets
import evaluate
import numpy as np

from losslab.metrics.module import info

_DESCRIPTION = "Generation suite: rougeL (F1), chrf, exact_match of generated against reference text."
_KWARGS = """
Args:
    predictions (list of str): generated texts.
    references (list of str): reference texts.
Returns:
    rougeL (0..1), chrf (0..100), exact_match (0..1).
"""


def _norm(text):
    return " ".join(str(text).lower().split())


class Generation(evaluate.Metric):
    def _info(self):
        return info(_DESCRIPTION, _KWARGS, datasets.Value("string"), datasets.Value("string"))

    def _compute(self, predictions, references):
        from rouge_score import rouge_scorer
        from sacrebleu.metrics import CHRF

        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        rouge = [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)]
        return {
            "rougeL": float(np.mean(rouge)) if rouge else float("nan"),
            "chrf": float(CHRF().corpus_score(list(predictions), [list(references)]).score),
            "exact_match": float(np.mean([_norm(p) == _norm(r) for p, r in zip(predictions, references)])),
        }
