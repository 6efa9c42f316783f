"""The token-classification suite's maths, once: entity-level precision, recall, f1 (seqeval's CoNLL chunks,
lenient BIO, micro over entity types) and token accuracy, under weights over the sentences
(``losslab.metrics.weighted``: a row of ones is the plain metric, a row of bootstrap counts a resample of
sentences, never of tokens). Every count is a sum over sentences: counted once per sentence, then weighted."""

from __future__ import annotations

import numpy as np

from losslab.metrics.weighted import ratio

PAD = -100  # a position that is not scored (sub-word piece, special token, padding)


def entity_counts(predictions, labels, label_names):
    """Per sentence: (entities in the reference, entities predicted, predicted entities that are right,
    scored tokens, tokens tagged right), as seqeval counts them (CoNLL chunks, lenient BIO)."""
    from seqeval.metrics.sequence_labeling import get_entities

    rows = []
    for p_row, y_row in zip(predictions, labels):
        m = min(len(p_row), len(y_row))
        p_row, y_row = np.asarray(p_row)[:m], np.asarray(y_row)[:m]
        keep = y_row != PAD
        true = [label_names[int(t)] for t in y_row[keep]]
        pred = [label_names[int(t)] for t in p_row[keep]]
        te, pe = set(get_entities(true)), set(get_entities(pred))
        rows.append((len(te), len(pe), len(te & pe), len(true), sum(a == b for a, b in zip(true, pred))))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def score(predictions, labels, weights, label_names=None) -> dict[str, np.ndarray]:
    """metric -> one value per row of ``weights`` (rows, sentences); ``predictions`` and ``labels``: tag ids per
    token, ``label_names`` the BIO tag of every id."""
    if not label_names:
        raise ValueError("entities: pass label_names, the BIO tag of every id")
    c = weights @ entity_counts(predictions, labels, label_names)
    precision, recall = ratio(c[:, 2], c[:, 1]), ratio(c[:, 2], c[:, 0])
    return {"precision": precision, "recall": recall, "f1": ratio(2 * precision * recall, precision + recall),
            "accuracy": ratio(c[:, 4], c[:, 3])}
