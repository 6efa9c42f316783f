"""The task config's schema: every ``task.<field>``, its type, its default and what it must be, stated once.

Task files (``conf/task/*.yaml``) stay plain YAML: an option composes as it is written, and the composed config
(a job's identity) is what the file says. :func:`validate`, called first by preflight, reads ``cfg.task``
against :class:`TaskConfig` and refuses a value of the wrong type or out of range in one line naming the option
(``task.max_length=abc must be a whole number >= 1``), before any data or model loads. A key the schema does not
know is left alone (a task of one's own may carry more). What a type cannot say is checked where it can be: the
objective against the metric suite and the loss against the kind (``preflight``), per-class loss options
(``checks``), the labels against the data (``tasks.labels``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from losslab.errors import ConfigError
from losslab.values import as_bool, as_float, as_int

_REQUIRED = dataclasses.MISSING
_UNIONS = (typing.Union, types.UnionType)


def _rule(test, must: str, default=_REQUIRED):
    """A field whose converted value must pass ``test``; ``must``: what it must be, for the message."""
    return field(default=default, metadata={"test": test, "must": must})


def _whole(default=_REQUIRED, null: str = ""):
    """A whole number >= 1; ``null``: what null means, when it may be null."""
    return _rule(lambda v: v >= 1, f"null ({null}) or a whole number >= 1" if null else "a whole number >= 1",
                 default)


@dataclass(frozen=True)
class DataConfig:
    """``task.data``: local files (csv, json/jsonl, parquet; compressed too), a hub data set, or a loader."""

    path: str | None = None  # the datasets builder (csv | json | parquet) or a hub id; null: from the extension
    name: str | None = None  # the hub config (glue: sst2)
    encoding: str | None = None  # the files' text encoding; null: UTF-8
    train: str | None = None
    validation: str | None = None
    test: str | None = None
    loader: Any = None  # a _target_ that builds the three splits itself (VADER's hash split, the NER corpus)


@dataclass(frozen=True)
class GenerationConfig:
    """``task.generation``: how a seq2seq task's validation and test text is generated."""

    max_new_tokens: int = _whole(32)
    num_beams: int = _whole(1)


@dataclass(frozen=True)
class TaskConfig:
    """``task``: the data, its problem kind, how it is tokenized and how it is judged."""

    name: str
    #: the problem kind (``losslab.kinds``): the head, the tokenization, the collator, the losses that serve it
    kind: str
    #: metric suite (``losslab/metrics/<suite>``) and the metric of it that picks checkpoints
    metrics: str
    objective: str
    data: DataConfig
    text_column: str
    label_column: str | None  # null: a language model's labels are its own tokens
    max_length: int = _whole()  # tokens of the text (seq2seq: of the source)
    #: more kinds whose losses serve it (rating_dist: ordinal; seq2seq: token_classification)
    also_kinds: list[str] | None = None
    targets: str | None = _rule(lambda v: v == "distribution", "null (one label per item) or distribution (a "
                                "distribution over the classes per item)", default=None)
    num_labels: int | None = _whole(None, "counted in the train split")
    labels: list | None = None  # class names in id order; null: the sorted names found in train
    prepare: Any = None  # a transform of the loaded splits (_target_ taking and returning a DatasetDict)
    text_pair_column: str | None = None
    max_target_length: int | None = _whole(None, "none")  # seq2seq: tokens of the target text
    generation: GenerationConfig | None = None
    max_train_samples: int | None = _whole(None, "all rows")
    max_eval_samples: int | None = _whole(None, "all rows")
    max_test_samples: int | None = _whole(None, "all rows")
    #: the share of TRAINING targets corrupted, seeded (losslab/tasks/noise.py)
    label_noise: float | None = _rule(lambda v: 0 <= v < 1, "a number, 0 <= task.label_noise < 1 (the share of "
                                      "training targets to corrupt; 0 or null: none)", 0.0)
    split_seed: int = _rule(lambda v: True, "an integer (the salt of the hash split; 0: the split shipped)", 0)
    greater_is_better: bool | None = None  # from the metric suite; never set by hand (preflight checks it)


def validate(task) -> TaskConfig:
    """``task`` (the composed ``cfg.task``) read against :class:`TaskConfig`: each value converted to its type
    (``"64"`` and ``64.0`` are 64), absent ones given their default; a wrong one refused with ``ConfigError``,
    one line naming the option. Checks between fields follow: a kind that generates needs ``max_target_length``."""
    from losslab import kinds

    out = _read(TaskConfig, task, "task")
    kind = kinds.of_task(out.kind)  # one line naming the kinds a task can declare
    for also in out.also_kinds or ():
        if also not in kinds.KINDS:
            raise ConfigError(f"task.also_kinds={list(out.also_kinds)}: {also!r} is not a problem kind; choose from: "
                              f"{', '.join(kinds.KINDS)}")
    if kind.generates and out.max_target_length is None:
        raise ConfigError(f"task.max_target_length needs a value: task.kind={kind.name} generates a target text of "
                          "at most that many tokens (a whole number >= 1)")
    return out


def value(task, name: str):
    """One field of ``task``, converted and checked as :func:`validate` does (absent: its default)."""
    spec = {f.name: f for f in dataclasses.fields(TaskConfig)}[name]
    return _field(spec, _hints(TaskConfig)[name], task, "task")


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _read(cls, node, prefix: str):
    hints = _hints(cls)
    return cls(**{f.name: _field(f, hints[f.name], node, prefix) for f in dataclasses.fields(cls)})


def _field(spec: dataclasses.Field, annotation, node, prefix: str):
    key = f"{prefix}.{spec.name}"
    if spec.name not in node:
        if spec.default is not _REQUIRED:
            return spec.default
        if spec.default_factory is not _REQUIRED:
            return spec.default_factory()
        raise ConfigError(f"{key} is not set: every task names it ({_what(annotation, spec)})")
    raw = node.get(spec.name)
    args = _options(annotation)
    optional = type(None) in args
    kinds = [a for a in args if a is not type(None)]
    if raw is None:
        if optional or kinds == [Any]:
            return None
        raise ConfigError(f"{key} needs a value: {_what(annotation, spec)}")
    kind = kinds[0]
    if dataclasses.is_dataclass(kind):
        from omegaconf import DictConfig

        if not isinstance(raw, (DictConfig, dict)):
            raise ConfigError(f"{key}={raw} must be a mapping of {', '.join(f.name for f in dataclasses.fields(kind))}")
        return _read(kind, raw, key)
    converted = _convert(raw, kind)
    if converted is _BAD:
        raise ConfigError(f"{key}={raw} must be {_what(annotation, spec)}")
    test = spec.metadata.get("test")
    if test is not None and not test(converted):
        raise ConfigError(f"{key}={raw} must be {spec.metadata['must']}")
    return converted


_BAD = object()


def _convert(raw, kind):
    """``raw`` as ``kind`` (int, float, bool, str, a list, Any), or ``_BAD``."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if kind is Any:
        return raw
    if kind in (int, float, bool, str):
        if isinstance(raw, (DictConfig, ListConfig, dict, list)):
            return _BAD
        converted = str(raw) if kind is str else {int: as_int, float: as_float, bool: as_bool}[kind](raw)
        return _BAD if converted is None else converted
    if not isinstance(raw, (ListConfig, list)):  # list, list[str]
        return _BAD
    items = OmegaConf.to_container(raw, resolve=True) if isinstance(raw, ListConfig) else list(raw)
    if typing.get_args(kind) == (str,):
        if any(isinstance(x, (list, dict)) for x in items):
            return _BAD
        return [str(x) for x in items]
    return items


_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "text"}


def _what(annotation, spec) -> str:
    if "must" in spec.metadata:
        return spec.metadata["must"]
    args = _options(annotation)
    names = []
    for a in args:
        if a is type(None):
            continue
        if dataclasses.is_dataclass(a):
            names.append(f"a mapping of {', '.join(f.name for f in dataclasses.fields(a))}")
        elif a is list or typing.get_origin(a) is list:
            names.append("a list")
        else:
            names.append(_NAMES.get(a, getattr(a, "__name__", str(a))))
    return " or ".join(names) + (", or null" if type(None) in args else "")


def _options(annotation) -> tuple:
    """The types an annotation allows: ``int | None`` -> ``(int, NoneType)``."""
    return typing.get_args(annotation) if typing.get_origin(annotation) in _UNIONS else (annotation,)
