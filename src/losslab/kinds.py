"""Problem kinds. A task declares one (``task.kind``); a loss declares the ones it serves (``task_kinds``).

Each kind is a :class:`Kind`, looked up by name (``kinds.get(cfg.task.kind)``): what differs between kinds is
read from its attributes, here in one table, not branched on in the modules that build the model, tokenize
the data, pad the batches, count a loss's items or pick the Trainer. The names (``REGRESSION``, ...) stay
strings: a loss's ``task_kinds`` and a task's ``kind``/``also_kinds`` are written with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

REGRESSION = "regression"
SINGLE_LABEL = "single_label"
MULTI_LABEL = "multi_label"
TOKEN = "token_classification"
ORDINAL = "ordinal"
CAUSAL_LM = "causal_lm"
SEQ2SEQ = "seq2seq"  # encoder-decoder: decoder logits (batch, target tokens, vocab) against unshifted targets
ANY = (REGRESSION, SINGLE_LABEL, MULTI_LABEL, TOKEN, ORDINAL, CAUSAL_LM, SEQ2SEQ)
IGNORE_INDEX = -100  # a label element no loss or metric counts (the Trainer's and the collators' padding)


def floats(values) -> list[float]:
    """A multi-label target: one float per label, as BCE takes it."""
    return [float(x) for x in values]


@dataclass(frozen=True)
class Kind:
    """What a problem kind decides, everywhere it is decided."""

    name: str
    #: the model class that gives it its head (``transformers.<model>``): an Auto class, or the
    #: ``EncoderDecoderModel`` that ``models`` builds as bert2bert
    model: str
    #: ``config.problem_type`` (which also picks the head's own loss: MSE, CE, BCE); None: the head has one loss
    problem_type: str | None
    #: the ``transformers.modeling_outputs`` class the model returns (a user's loss is probed with one)
    output: str
    #: how a row is tokenized: ``text`` (one label per text, from ``task.label_column``), ``words`` (a tag per
    #: word, on its first word piece), ``next_token`` (the labels are the text's own tokens), ``text_to_text``
    #: (the labels are a target text's tokens)
    tokenize: str
    #: how a batch is padded: ``padding`` (DataCollatorWithPadding), ``token`` (labels padded with -100 too:
    #: DataCollatorForTokenClassification), ``seq2seq`` (DataCollatorForSeq2Seq: the decoder's inputs too)
    collator: str
    #: one item's label as the losses take it (float, a class id, a row of floats); None: token ids, made when
    #: the text is tokenized
    target: Callable | None
    #: what ``task.num_labels`` counts, (plural, singular), in messages about per-class loss options
    outputs_are: tuple[str, str] = ("classes", "class")
    #: evaluated on generated text: ``Seq2SeqTrainingArguments(predict_with_generate)``, a ``Seq2SeqTrainer``,
    #: predictions kept as decoded texts
    generates: bool = False
    #: a task can declare it as its ``kind`` (``ordinal`` is only an ``also_kinds``: the losses it admits)
    trainable: bool = True

    @property
    def per_token(self) -> bool:
        """Labels ``(batch, positions)``, -100 on padding and on what is not scored; else one label (or a row
        of labels) per item."""
        return self.tokenize != "text"

    @property
    def scalar_target(self) -> bool:
        """One number per item (regression): a head with one output gives ``(batch, 1)`` against ``(batch,)``
        labels, a shape a hand-written loss must not broadcast."""
        return self.target is float

    @property
    def next_token(self) -> bool:
        """Position t predicts label t + 1: the model is a decoder, the labels are shifted by the loss, and a
        micro-batch's items are counted over ``labels[..., 1:]`` (as the Trainer counts ``num_items_in_batch``)."""
        return self.tokenize == "next_token"

    @property
    def vocab_output(self) -> bool:
        """The outputs are the tokenizer's vocabulary, not ``task.num_labels`` classes."""
        return self.tokenize in ("next_token", "text_to_text")

    def __str__(self) -> str:
        return self.name


_SEQUENCE = "AutoModelForSequenceClassification"

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind(REGRESSION, _SEQUENCE, "regression", "SequenceClassifierOutput", "text", "padding", float),
    Kind(SINGLE_LABEL, _SEQUENCE, "single_label_classification", "SequenceClassifierOutput", "text", "padding", int),
    Kind(MULTI_LABEL, _SEQUENCE, "multi_label_classification", "SequenceClassifierOutput", "text", "padding", floats,
         outputs_are=("labels", "label")),
    # cross-entropy over the tags of every real token; a word's later pieces and the special tokens are -100
    Kind(TOKEN, "AutoModelForTokenClassification", None, "TokenClassifierOutput", "words", "token", None),
    # ordered levels: losses (coral, corn) that a single-label task with ordered classes admits (also_kinds)
    Kind(ORDINAL, _SEQUENCE, None, "SequenceClassifierOutput", "text", "padding", int, trainable=False),
    # a language-modelling head over the vocabulary; every next token is an item
    Kind(CAUSAL_LM, "AutoModelForCausalLM", None, "CausalLMOutput", "next_token", "token", None),
    # bert2bert: the decoder's language-modelling head; every target token is an item (not shifted)
    Kind(SEQ2SEQ, "EncoderDecoderModel", None, "Seq2SeqLMOutput", "text_to_text", "seq2seq", None, generates=True),
)}


def get(kind: str | Kind) -> Kind:
    """The :class:`Kind` named ``kind`` (a Kind is returned as it is); an unknown name is refused in one line
    naming the kinds a task can declare."""
    if isinstance(kind, Kind):
        return kind
    found = KINDS.get(str(kind))
    if found is None:
        _refuse(kind)
    return found


def of_task(kind: str | Kind) -> Kind:
    """:func:`get`, for a task's ``kind``: one that no task can train (``ordinal``) is refused too."""
    found = get(kind)
    if not found.trainable:
        _refuse(kind)
    return found


def _refuse(kind) -> None:
    from losslab.errors import ConfigError

    raise ConfigError(f"task.kind={str(kind)!r} is not a problem kind losslab can train yet; choose one of: "
                      f"{', '.join(k.name for k in KINDS.values() if k.trainable)}")
