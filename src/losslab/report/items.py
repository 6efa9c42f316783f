"""A metric suite on bootstrap resamples of test items, all resamples at once.

``replicates(suite, predictions, labels, counts)`` gives, for every metric of the suite, its value on each
resample (``counts``: (resamples, items), how often each item is drawn). Drawing item i k times is the same as
scoring a test set that holds it k times, so each value equals ``losslab.predictions.score`` on the expanded
subset (tests/test_report_items.py checks every suite against the suite itself). The suites whose metrics are
sums over items (per-item errors, confusion counts, calibration bins, entity counts per sentence) are
vectorized here; the others (``generation``) call ``predictions.score`` once per resample. Entity-level
metrics resample sentences, never tokens.
"""

from __future__ import annotations

import numpy as np

from losslab.metrics.calibration import ECE_BINS

PAD = -100


def replicates(suite: str, predictions, labels, counts, label_names=None, thresholds=None) -> dict[str, np.ndarray]:
    """metric -> (resamples,) values of ``suite`` on each resample (one row of ``counts`` per resample)."""
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    fast = _FAST.get(suite)
    if fast is not None:
        kwargs = {"label_names": label_names} if suite in ("multilabel", "entities") else {}
        if suite == "multilabel":
            kwargs["thresholds"] = thresholds
        with np.errstate(divide="ignore", invalid="ignore"):
            return fast(predictions, labels, counts, **kwargs)
    return _generic(suite, predictions, labels, counts, label_names)


def vectorized(suite: str) -> bool:
    """Whether ``suite`` has a vectorized path here (else each resample calls the suite itself)."""
    return suite in _FAST


def _generic(suite, predictions, labels, counts, label_names):
    from losslab import predictions as stored

    out: dict[str, list[float]] = {}
    for row in counts:
        idx = np.repeat(np.arange(len(row)), row.astype(np.int64))
        for k, v in stored.score(suite, predictions[idx], labels[idx], label_names).items():
            out.setdefault(k, []).append(float(v))
    return {k: np.asarray(v) for k, v in out.items()}


def _safe(num, den):
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def pearson(w, x, y):
    """Weighted Pearson correlation of x and y under each row of weights w (centred first, for accuracy)."""
    x, y = x - x.mean(), y - y.mean()
    n = w.sum(1)
    sx, sy = w @ x, w @ y
    sxx, syy, sxy = w @ (x * x), w @ (y * y), w @ (x * y)
    cov = sxy - sx * sy / n
    vx, vy = sxx - sx * sx / n, syy - sy * sy / n
    ok = (vx > 1e-12 * (x * x).sum()) & (vy > 1e-12 * (y * y).sum())
    return np.where(ok, cov / np.sqrt(np.where(ok, vx * vy, 1.0)), np.nan)


def _ranks(w, x):
    """Average ranks (1-based, ties shared) of each item in the sample that holds item i w[:, i] times."""
    uniq, inv = np.unique(x, return_inverse=True)
    g = np.zeros((w.shape[0], len(uniq)))
    np.add.at(g.T, inv, w.T)  # weight of each distinct value in each resample
    below = np.cumsum(g, axis=1) - g
    rank_u = below + (g + 1) / 2
    return rank_u[:, inv]


def _regression(predictions, labels, w):
    p = np.asarray(predictions, dtype=np.float64).reshape(len(labels), -1)[:, 0]
    y = np.asarray(labels, dtype=np.float64)
    n = w.sum(1)
    err = p - y
    mse = (w @ (err * err)) / n
    yc = y - y.mean()
    ss_tot = w @ (yc * yc) - (w @ yc) ** 2 / n
    varied_y = np.ptp(y) > 0
    out = {"mse": mse, "rmse": np.sqrt(mse), "mae": (w @ np.abs(err)) / n,
           "r2": np.where(ss_tot > 0, 1.0 - (w @ (err * err)) / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)}
    if np.ptp(p) > 0 and varied_y:
        out["pearson"] = pearson(w, p, y)
        spear = np.empty(w.shape[0])
        for start in range(0, w.shape[0], 100):  # ranks of every resample: (resamples, items) at a time
            ww = w[start:start + 100]
            rp, ry = _ranks(ww, p), _ranks(ww, y)
            spear[start:start + 100] = [pearson(ww[i:i + 1], rp[i], ry[i])[0] for i in range(len(ww))]
        out["spearman"] = spear
    else:
        out["pearson"] = out["spearman"] = np.full(w.shape[0], np.nan)
    return out


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _ece(w, conf, correct):
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, ECE_BINS - 1)
    onehot = np.eye(ECE_BINS)[which]
    gap = w @ (onehot * correct[:, None]) - w @ (onehot * conf[:, None])
    return np.abs(gap).sum(1) / w.sum(1)


def _classes(w, pred, y, k):
    """accuracy and macro F1 (every class in 0..k-1 counted, F1 = 0 where a class is neither true nor
    predicted: scikit-learn's ``labels=range(k), zero_division=0``)."""
    n = w.sum(1)
    correct = (pred == y).astype(np.float64)
    cls = np.arange(k)
    is_pred = (pred[:, None] == cls).astype(np.float64)
    is_true = (y[:, None] == cls).astype(np.float64)
    tp, npred, ntrue = w @ (is_pred * is_true), w @ is_pred, w @ is_true
    f1 = _safe(2 * tp, npred + ntrue)
    return {"accuracy": (w @ correct) / n, "macro_f1": f1.mean(1)}, correct


def _classification(predictions, labels, w):
    logp = _log_softmax(np.asarray(predictions, dtype=np.float64))
    y = np.asarray(labels, dtype=np.int64)
    pred = logp.argmax(1)
    out, correct = _classes(w, pred, y, logp.shape[1])
    out["log_loss"] = (w @ -logp[np.arange(len(y)), y]) / w.sum(1)
    out["ece"] = _ece(w, np.exp(logp.max(1)), correct)
    return out


def _ratings(predictions, labels, w):
    from losslab.metrics.levels import split

    t = np.asarray(labels, dtype=np.float64)
    k = t.shape[1]
    scores, pred = split(predictions, k)  # the loss's own predicted level when its rows carry one (coral, corn)
    logq = _log_softmax(scores)
    level = np.floor((t * np.arange(k)).sum(1) + 0.5).astype(np.int64)
    out, correct = _classes(w, pred, level, k)
    n = w.sum(1)
    kl = np.where(t > 0, t * (np.log(np.where(t > 0, t, 1.0)) - logq), 0.0).sum(1)
    out.update({
        "log_loss": (w @ -logq[np.arange(len(level)), level]) / n,
        "ece": _ece(w, np.exp(logq[np.arange(len(pred)), pred]), correct),
        "kl": (w @ kl) / n,
        "level_mae": (w @ np.abs(pred - level).astype(np.float64)) / n,
    })
    return out


def lrap_per_item(scores, y):
    """Label-ranking average precision of each item (scikit-learn's: 1 when no or every label is on)."""
    scores, y = np.asarray(scores, dtype=np.float64), np.asarray(y) > 0
    at_least = scores[:, None, :] >= scores[:, :, None]  # [i, j, k]: label k ranked at or above label j
    rank_all = at_least.sum(2)
    rank_pos = (at_least & y[:, None, :]).sum(2)
    npos = y.sum(1)
    per = np.where(y, rank_pos / rank_all, 0.0).sum(1) / np.maximum(npos, 1)
    return np.where((npos == 0) | (npos == y.shape[1]), 1.0, per)


def _average_precision(w, score, y):
    """Weighted average precision of one label (scikit-learn's, with ``sample_weight`` = the counts)."""
    order = np.argsort(-score, kind="mergesort")
    s, pos = score[order], y[order].astype(np.float64)
    wo = w[:, order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the last index of each group of tied scores
    tp = np.cumsum(wo * pos, axis=1)[:, last]
    allc = np.cumsum(wo, axis=1)[:, last]
    precision = _safe(tp, allc)
    recall_gain = np.diff(np.concatenate([np.zeros((w.shape[0], 1)), tp], axis=1), axis=1)
    total = tp[:, -1]
    return _safe((recall_gain * precision).sum(1), total)


def _multilabel(predictions, labels, w, label_names=None, thresholds=None):
    scores = np.asarray(predictions, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    th = np.zeros(y.shape[1]) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    pred = (scores > th).astype(np.float64)
    yt = y.astype(np.float64)
    tp, fp, fn = w @ (pred * yt), w @ (pred * (1 - yt)), w @ ((1 - pred) * yt)
    f1 = _safe(2 * tp, 2 * tp + fp + fn)
    names = list(label_names) if label_names else [str(i) for i in range(y.shape[1])]
    n = w.sum(1)
    out = {
        "micro_f1": _safe(2 * tp.sum(1), 2 * tp.sum(1) + fp.sum(1) + fn.sum(1)),
        "macro_f1": f1.mean(1),
        "subset_accuracy": (w @ (pred == yt).all(1).astype(np.float64)) / n,
        "lrap": (w @ lrap_per_item(scores, y)) / n,
    }
    ap = np.stack([_average_precision(w, scores[:, j], y[:, j]) for j in range(y.shape[1])], axis=1)
    out["macro_ap"] = ap.mean(1)
    out.update({f"f1_{name}": f1[:, j] for j, name in enumerate(names)})
    return out


def entity_counts(predictions, labels, label_names):
    """Per sentence: (entities in the reference, entities predicted, predicted entities that are right,
    scored tokens, tokens tagged right), as seqeval counts them (CoNLL chunks, lenient BIO)."""
    from seqeval.metrics.sequence_labeling import get_entities

    rows = []
    for p_row, y_row in zip(np.asarray(predictions), np.asarray(labels)):
        keep = np.asarray(y_row) != PAD
        true = [label_names[int(t)] for t in np.asarray(y_row)[keep]]
        pred = [label_names[int(t)] for t in np.asarray(p_row)[keep]]
        te, pe = set(get_entities(true)), set(get_entities(pred))
        rows.append((len(te), len(pe), len(te & pe), len(true), sum(a == b for a, b in zip(true, pred))))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def _entities(predictions, labels, w, label_names=None):
    if not label_names:
        raise ValueError("entities: pass label_names, the BIO tag of every id")
    c = w @ entity_counts(predictions, labels, label_names)
    precision, recall = _safe(c[:, 2], c[:, 1]), _safe(c[:, 2], c[:, 0])
    return {"precision": precision, "recall": recall, "f1": _safe(2 * precision * recall, precision + recall),
            "accuracy": _safe(c[:, 4], c[:, 3])}


def _perplexity(predictions, labels, w):
    nll = np.asarray(predictions, dtype=np.float64)
    nll = nll.reshape(len(nll), -1)
    scored = nll >= 0
    total, count = w @ np.where(scored, nll, 0.0).sum(1), w @ scored.sum(1).astype(np.float64)
    mean = np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)
    return {"perplexity": np.exp(mean), "nll": mean}


_FAST = {
    "regression": _regression,
    "classification": _classification,
    "ratings": _ratings,
    "multilabel": _multilabel,
    "entities": _entities,
    "perplexity": _perplexity,
}
