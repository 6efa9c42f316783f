"""Tokenization: a task's loaded splits turned into model inputs (``input_ids``, ``attention_mask``, ``labels``,
each row's ``length``), cached by ``datasets``; the collator that pads them."""

from __future__ import annotations

import hashlib

from losslab import kinds
from losslab.kinds import IGNORE_INDEX
from losslab.tasks.labels import target_type


def tokenizer_id(tokenizer) -> str:
    """A content hash of the tokenizer, so the tokenized-data cache is keyed on what the tokenizer does.

    A fast tokenizer's serialized state records the truncation/padding of its last call, so hashing it as
    is gives a different key after the first use and the cache is never hit. Both are cleared first (the
    tokenizer sets them again on every call).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend.no_truncation()
        backend.no_padding()
        blob = backend.to_str()
    else:
        blob = repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(f"{type(tokenizer).__name__}:{blob}".encode()).hexdigest()[:16]


LENGTH = "length"  # tokens per row: the Trainer's train_sampling_strategy=group_by_length reads this column
ITEM = "item"  # a row's index within its split as loaded, kept when a split is put in length order


def _with_length(enc):
    enc[LENGTH] = [len(ids) for ids in enc["input_ids"]]
    return enc


def in_length_order(split):
    """The split with each row's index as ``item``, sorted by length: evaluated in this order, batches are
    padded to almost nothing (the metric suites do not depend on the order; ``item`` maps rows back)."""
    return split.add_column(ITEM, list(range(len(split)))).sort(LENGTH)  # a stable sort


def encode(ds, tokenizer, task, eval_in_length_order: bool = False) -> "datasets.DatasetDict":
    """Tokenize every split into ``input_ids``/``attention_mask``/``labels`` and each row's ``length`` (cached
    by ``datasets``).

    The cache key is the split's fingerprint plus the tokenizer's content and the encoding settings, so a
    second run with the same data and tokenizer reads the cached Arrow file instead of tokenizing again.
    """
    from datasets.fingerprint import Hasher

    text, pair, label, kind = task.text_column, task.get("text_pair_column"), task.label_column, kinds.get(task.kind)
    max_length = int(task.max_length)
    convert = target_type(task)

    def tokenize(batch):
        enc = tokenizer(batch[text], batch[pair] if pair else None, truncation=True, max_length=max_length)
        # causal LM: the labels are the tokens (the loss shifts them); padding becomes -100 in the collator
        enc["labels"] = [list(ids) for ids in enc["input_ids"]] if kind.tokenize == "next_token" else \
            [convert(v) for v in batch[label]]
        return _with_length(enc)

    def tokenize_pairs(batch):
        """Source text in, target text out: the target's tokens without its leading [CLS] (the decoder starts
        from it) and with its closing [SEP] (where generation stops)."""
        enc = tokenizer(batch[text], truncation=True, max_length=max_length)
        target = tokenizer(text_target=batch[label], truncation=True, max_length=int(task.max_target_length) + 1)
        first = tokenizer.cls_token_id
        enc["labels"] = [ids[1:] if first is not None and ids and ids[0] == first else ids
                         for ids in target["input_ids"]]
        return _with_length(enc)

    def tokenize_words(batch):
        """Words split into word pieces: a word's tag goes on its first piece; the other pieces and the special
        tokens get -100, so they are neither trained on nor counted in num_items_in_batch."""
        enc = tokenizer(batch[text], truncation=True, max_length=max_length, is_split_into_words=True)
        enc["labels"] = []
        for i, tags in enumerate(batch[label]):
            previous, aligned = None, []
            for word in enc.word_ids(i):
                aligned.append(IGNORE_INDEX if word is None or word == previous else int(tags[word]))
                previous = word
            enc["labels"].append(aligned)
        return _with_length(enc)

    tokenize_rows = {"text": tokenize, "next_token": tokenize, "words": tokenize_words,
                     "text_to_text": tokenize_pairs}[kind.tokenize]
    tok_id = tokenizer_id(tokenizer)
    out = {}
    for split, part in ds.items():
        fingerprint = Hasher.hash([part._fingerprint, tok_id, max_length, text, pair, label, kind.name,
                                   task.get("max_target_length"), "v2"])
        out[split] = part.map(
            tokenize_rows, batched=True, remove_columns=part.column_names,
            new_fingerprint=fingerprint, desc=f"tokenize {split}",
        )
    if eval_in_length_order:  # evaluated in length order: batches padded to almost nothing
        for split in ("validation", "test"):
            out[split] = in_length_order(out[split])
    import datasets

    return datasets.DatasetDict(out)


def collator(kind: str | kinds.Kind, tokenizer, on_gpu: bool = False, model=None):
    """Pads a batch as ``kind.collator`` says: labels of token tasks are padded with -100 along with the tokens;
    for seq2seq the model also makes ``decoder_input_ids`` (the labels shifted right), since the loss takes the
    labels away."""
    from transformers import DataCollatorForSeq2Seq, DataCollatorForTokenClassification, DataCollatorWithPadding

    multiple = 8 if on_gpu else None
    pads = kinds.get(kind).collator
    if pads == "seq2seq":
        return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=IGNORE_INDEX,
                                      pad_to_multiple_of=multiple)
    cls = {"token": DataCollatorForTokenClassification, "padding": DataCollatorWithPadding}[pads]
    return cls(tokenizer, pad_to_multiple_of=multiple)
