"""``task.label_noise``: corrupt a share of the TRAINING targets, to test how a loss copes with wrong labels.

Validation and test are never touched, so every run is judged on clean data. The corrupted rows are chosen by
the run's ``seed`` and a fixed salt (:data:`SALT`), so the same seed corrupts the same rows on any machine, and
the rows corrupted at a smaller fraction are among those corrupted at a larger one (same seed): 0.2 and 0.4
differ only by the extra rows. Exactly ``round(fraction · n)`` of the n training rows are chosen (after
``task.max_train_samples``).

What a chosen row gets:

- **regression**: the target of another chosen row. The chosen rows' targets are rotated along one random
  cycle (Sattolo's algorithm), so no row keeps its own target and the training targets' distribution (their
  multiset of values) is exactly unchanged: the corruption breaks the link between text and target without
  shifting the mean or the spread. Two rows can share a value (VADER's ratings are means of ~10 ratings), so a
  few chosen rows may end with the value they had.
- **single-label classification**: symmetric label flipping, a class drawn uniformly from the C − 1 others
  (every chosen row changes class).

Other kinds (multi-label, tokens, soft targets, language modelling) are refused with a message naming the knob.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from losslab.errors import UsageError
from losslab.kinds import REGRESSION, SINGLE_LABEL

log = logging.getLogger("losslab")

SALT = "losslab.task.label_noise"
KNOB = "task.label_noise"


def fraction(task) -> float:
    """The configured share of training targets to corrupt, checked (``losslab.tasks.schema``): 0 <= fraction < 1
    (0: none)."""
    from losslab.tasks import schema

    return float(schema.value(task, "label_noise") or 0.0)


def _generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent streams (which rows; what they get) from the run's seed and the salt."""
    entropy = int.from_bytes(hashlib.sha256(f"{SALT}:{int(seed)}".encode()).digest()[:16], "big")
    rows, values = np.random.SeedSequence(entropy).spawn(2)
    return np.random.default_rng(rows), np.random.default_rng(values)


def chosen_rows(n: int, share: float, seed: int) -> np.ndarray:
    """The indices (in the order drawn) of the ``round(share · n)`` training rows to corrupt."""
    rows, _ = _generators(seed)
    return rows.permutation(n)[: int(round(share * n))]


def corrupt_targets(targets, share: float, seed: int, kind: str, num_classes: int | None = None) -> np.ndarray:
    """``targets`` (one per training row) with ``round(share · n)`` of them corrupted as the module says."""
    y = np.asarray(targets)
    out = y.copy()
    chosen = chosen_rows(len(y), share, seed)
    if len(chosen) == 0:
        return out
    _, values = _generators(seed)
    if kind == REGRESSION:
        m = len(chosen)
        if m == 1:  # one row: nothing to exchange with
            return out
        cycle = np.arange(m)  # Sattolo: a uniformly random cyclic permutation (no fixed point)
        for i in range(m - 1, 0, -1):
            j = int(values.integers(0, i))
            cycle[i], cycle[j] = cycle[j], cycle[i]
        out[chosen] = y[chosen[cycle]]
    elif kind == SINGLE_LABEL:
        if not num_classes or num_classes < 2:
            raise UsageError(f"{KNOB}: flipping labels needs at least 2 classes (task.num_labels={num_classes})")
        offsets = values.integers(1, num_classes, size=len(chosen))  # 1..C-1: never the same class
        out[chosen] = (y[chosen] + offsets) % num_classes
    else:
        raise UsageError(f"{KNOB} corrupts regression targets or single-label class ids; task.kind={kind!r}")
    return out


def apply(ds, task, seed: int | None, names=None):
    """The splits with ``task.label_noise`` of the train split's targets corrupted (``ds`` itself when it is 0).

    ``ds`` is the loaded ``DatasetDict`` (labels checked: class ids, not names); ``seed`` the run's ``seed``.
    Only ``train`` changes; the new split has a fingerprint of its parent, the share and the seed, so the
    tokenized-data cache of ``datasets`` still hits on a rerun.
    """
    share = fraction(task)
    if share == 0.0:
        return ds
    kind = task.kind
    if kind not in (REGRESSION, SINGLE_LABEL) or task.get("targets") == "distribution":
        what = "soft targets (task.targets=distribution)" if kind == SINGLE_LABEL else f"task.kind={kind!r}"
        raise UsageError(f"{KNOB}={share} corrupts regression targets or single-label class ids, not {what}; "
                         f"task={task.get('name')} takes none")
    if seed is None:
        raise ValueError(f"{KNOB}: the run's seed is needed to choose the corrupted rows")
    from datasets.fingerprint import Hasher

    column = task.label_column
    train = ds["train"]
    num_classes = task.get("num_labels") or (len(names) if names else None)
    if kind == SINGLE_LABEL and num_classes is None:
        num_classes = max(train[column]) + 1
    clean = list(train[column])
    noisy = corrupt_targets(clean, share, seed, kind, num_classes)
    changed = int(np.sum(np.asarray(clean) != noisy))
    log.info("%s=%s: %d of %d training targets corrupted (%d changed value; seed %s); validation and test "
             "untouched", KNOB, share, len(chosen_rows(len(clean), share, seed)), len(clean), changed, seed)
    fingerprint = Hasher.hash([train._fingerprint, SALT, share, int(seed), column])
    values = noisy.tolist()
    noisy_train = train.map(lambda _, i: {column: values[i]}, with_indices=True, new_fingerprint=fingerprint,
                            desc=f"label noise {share}")
    out = type(ds)(dict(ds))
    out["train"] = noisy_train  # map into the existing column keeps its type (float targets, int ids)
    return out


def cache_salt(cfg) -> str:
    """What to add to a per-process cache key of the loaded splits: the seed, but only when targets are
    corrupted (without noise every seed shares one loaded and tokenized copy)."""
    return f"\n# {KNOB} seed: {cfg.seed}" if fraction(cfg.task) > 0 else ""
