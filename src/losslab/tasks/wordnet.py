"""WordNet definition modelling: ``"define: <word> (<part of speech>)"`` → the word's first-sense gloss.

WordNet 3.0 (Princeton University; its license permits copying and redistribution with its notice, which
ships beside the data in ``resources/wordnet/LICENSE``). A subset ships inside losslab as three gzipped
JSON-lines files (``resources/wordnet/{train,validation,test}.jsonl.gz``), built from Debian's
``wordnet-base`` package by :func:`build`:

    apt-get install wordnet-base && python -m losslab.tasks.wordnet [/usr/share/wordnet] [out_dir]

What is kept: for every single-word, alphabetic lemma of 3+ letters in ``index.{noun,verb,adj,adv}``, its
first (most frequent) sense, with the gloss's definition (the part before its quoted examples) when it has
3–16 words. The split is a function of the word alone (SHA-256 of the lemma): every part of speech of a word
falls in the same split, so a test word was never defined in training. Then a fixed pseudo-random sample
(by the same hash) of 12,000 / 1,000 / 1,000 pairs.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path

POS = {"noun": "noun", "verb": "verb", "adj": "adjective", "adv": "adverb"}
SIZES = {"train": 12_000, "validation": 1_000, "test": 1_000}
SOURCE = "/usr/share/wordnet"


def _hash(word: str) -> bytes:
    return hashlib.sha256(word.encode("utf-8")).digest()


def split_of(word: str) -> str:
    bucket = int.from_bytes(_hash(word)[:8], "big") % 100
    return "train" if bucket < 80 else "validation" if bucket < 90 else "test"


def definition(gloss: str) -> str:
    """The definition part of a WordNet gloss: before its first quoted example, without trailing ';'."""
    text = gloss.split('"')[0].strip().rstrip(";").strip()
    return " ".join(text.split())


def _glosses(folder: Path, pos: str) -> dict[str, str]:
    """synset offset -> gloss, from ``data.<pos>`` (the license header lines start with spaces)."""
    path = folder / f"data.{pos}"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: install Debian's wordnet-base (apt-get install wordnet-base)")
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(" ") or " | " not in line:
            continue
        out[line.split(" ", 1)[0]] = line.split(" | ", 1)[1]
    return out


def read_pairs(folder: str | Path = SOURCE) -> list[dict]:
    """Every kept (word, part of speech, definition) of WordNet, as rows of the task."""
    folder = Path(folder)
    rows = []
    for pos, name in POS.items():
        glosses = _glosses(folder, pos)
        for line in (folder / f"index.{pos}").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(" "):
                continue
            fields = line.split()
            lemma, synset_cnt, p_cnt = fields[0], int(fields[2]), int(fields[3])
            if not (lemma.isalpha() and lemma.isascii() and len(lemma) >= 3):
                continue
            offsets = fields[6 + p_cnt:]  # lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offsets
            if len(offsets) != synset_cnt:
                raise ValueError(f"index.{pos}: unexpected line {line[:80]!r}")
            target = definition(glosses[offsets[0]])
            if 3 <= len(target.split()) <= 16:
                rows.append({"id": f"{lemma}.{pos}", "word": lemma, "pos": name,
                             "source": f"define: {lemma} ({name})", "target": target,
                             "split": split_of(lemma)})
    return rows


def build(folder: str | Path = SOURCE, out_dir: str | Path | None = None) -> dict[str, int]:
    """Write ``{train,validation,test}.jsonl.gz`` (byte-identical on every rebuild); returns the sizes."""
    from losslab.paths import resource

    out = Path(out_dir or Path(resource("wordnet/README.md")).parent)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_pairs(folder)
    counts = {}
    for split, size in SIZES.items():
        chosen = sorted((r for r in rows if r["split"] == split), key=lambda r: _hash(r["id"]))[:size]
        counts[split] = len(chosen)
        with open(out / f"{split}.jsonl.gz", "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
            for r in chosen:
                gz.write((json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
    return counts


if __name__ == "__main__":
    print(build(*sys.argv[1:3]))
