"""The three splits, and the generic hash split of the shipped corpora (VADER, the Twitter NER corpus)."""

from __future__ import annotations

import hashlib

SPLITS = ("train", "validation", "test")


def split_of(text: str, split_seed: int = 0) -> str:
    """The split of a sentence: 80% train, 10% validation, 10% test by a hash of its text. ``split_seed`` salts
    the hash (``task.split_seed``): 0 is the fixed split shipped with losslab, any other value another split of
    the same sentences (duplicates still together), so a study can sweep splits as well as seeds."""
    key = " ".join(text.lower().split())
    if split_seed:
        key = f"{int(split_seed)}\x00{key}"
    bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % 100
    return "train" if bucket < 80 else "validation" if bucket < 90 else "test"
