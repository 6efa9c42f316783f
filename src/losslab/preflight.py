"""Checks that need no data and no model, run first so a bad command fails in a second, not after loading.

- the loss can serve the task's problem kind (each loss class declares ``task_kinds``);
- every ``trainer.<field>`` is a ``TrainingArguments`` field;
- the task's kind and metric suite exist; the hardware asked for is there;
- the objective's direction is the metric suite's (``task.greater_is_better`` is never set against it).
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import NamedTuple

from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from losslab import checks, hardware, kinds, metrics
from losslab.cluster import check_server
from losslab.config import greater_is_better
from losslab.distributed import is_main
from losslab.tasks import schema

# transformers and losslab.losses.targets (torch) are imported inside functions: race=losses' sweeper imports
# this module in the sweep's parent process (loss_options), which loads no model
from losslab.errors import ConfigError, UsageError  # noqa: F401  (ConfigError: imported from here by callers)


def declared_kinds(loss_cfg) -> tuple[str, ...] | None:
    """The task kinds a loss config's ``_target_`` declares, or None for a callable that declares none."""
    target = loss_cfg.get("_target_") if isinstance(loss_cfg, DictConfig) else None
    if not target:
        raise ConfigError("loss: the loss config has no _target_ (the class or function to instantiate)")
    try:
        obj = get_object(target)
    except Exception as exc:  # ImportError, AttributeError, ... wrapped by Hydra
        raise ConfigError(f"loss: cannot import _target_ {target!r}: {exc}") from exc
    kinds = getattr(obj, "task_kinds", None)
    if kinds is None:
        return None
    kinds = set(kinds)
    for term in (loss_cfg.get("terms") or {}).values():  # composite: what every term serves
        term_kinds = declared_kinds(term.loss)
        if term_kinds is not None:
            kinds &= set(term_kinds)
    return tuple(sorted(kinds))


def loss_options(distributions: bool = False) -> dict[str, tuple[str, ...] | None]:
    """Every option of the ``loss`` group on the search path, with the kinds it serves (inside a Hydra app);
    with ``distributions``, only those that can take distribution labels.

    Each option's own file is read from Hydra's config repository (about 10 ms for all of them, where composing
    the whole config per option took seconds). A file with no ``_target_`` of its own, such as a Keras-style
    alias that composes another option (``huber_loss`` -> ``huber``), is left out: its loss is listed by
    its real name."""
    if not GlobalHydra.instance().is_initialized():
        return {}
    loader = GlobalHydra.instance().config_loader()
    out = {}
    for name in loader.get_group_options("loss"):
        try:
            loaded = loader.repository.load_config(f"loss/{name}")
            loss_cfg = loaded.config if loaded is not None else None
            if loss_cfg is None or not loss_cfg.get("_target_"):
                continue
            if distributions and getattr(get_object(loss_cfg._target_), "uses_model_loss", False):
                continue
            out[name] = declared_kinds(loss_cfg)
        except Exception:
            out[name] = None
    return out


def check_loss(cfg: DictConfig) -> None:
    kind = cfg.task.kind
    task_kinds = {kind, *(cfg.task.get("also_kinds") or ())}  # rating_dist: single-label and ordinal
    kinds = declared_kinds(cfg.loss)
    name = HydraConfig.get().runtime.choices.get("loss") if HydraConfig.initialized() else cfg.loss._target_
    if cfg.task.get("targets") == "distribution" and getattr(get_object(cfg.loss._target_), "uses_model_loss", False):
        raise ConfigError(f"loss={name} cannot serve task={cfg.task.name}: its labels are distributions, which "
                          "the model head's own loss does not take; use soft_cross_entropy or cross_entropy")
    if kinds is None or task_kinds & set(kinds):
        return
    options = loss_options(distributions=cfg.task.get("targets") == "distribution")
    fitting = sorted(n for n, k in options.items() if k is not None and task_kinds & set(k))
    raise ConfigError(
        f"loss={name} cannot serve task={cfg.task.name}: the task's kind is {kind!r} and {name} serves "
        f"{', '.join(kinds)}. Losses for {' or '.join(sorted(task_kinds))}: {', '.join(fitting) or '(none found)'}"
    )


def check_trainer(cfg: DictConfig) -> None:
    from transformers import Seq2SeqTrainingArguments, TrainingArguments

    kind = Seq2SeqTrainingArguments if kinds.get(cfg.task.kind).generates else TrainingArguments
    fields = {f.name for f in dataclasses.fields(kind) if f.init}
    for key in cfg.trainer:
        if key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ConfigError(f"trainer.{key} is not a transformers.{kind.__name__} field.{hint}")


def check_kind(cfg: DictConfig) -> None:
    kinds.of_task(cfg.task.kind)  # one line naming the kinds a task can declare


def check_task(cfg: DictConfig):
    """The task's kind, metric suite and objective; returns the suite (``losslab.metrics.Suite``)."""
    check_kind(cfg)
    if cfg.task.metrics not in metrics.suites():
        raise ConfigError(f"task.metrics={cfg.task.metrics!r}: no such suite; choose one of: {', '.join(metrics.suites())}")
    suite = metrics.get(cfg.task.metrics)
    reported = suite.names(cfg.task.get("num_labels"), cfg.task.get("labels"))
    if reported and cfg.task.objective not in reported:
        raise ConfigError(f"task.objective={cfg.task.objective!r} is not reported by the {cfg.task.metrics} suite; "
                          f"choose one of: {', '.join(reported)}")
    declared = list((cfg.get("report") or {}).get("metrics") or [])
    reportable = reported + sorted(suite.derived)  # the report derives these from the predictions
    unknown = [m for m in declared if reported and m not in reportable]
    if unknown:  # the sweep's declared question: a typo would silently drop a verdict
        raise ConfigError(f"report.metrics={declared}: {', '.join(map(repr, unknown))} not reported by the "
                          f"{cfg.task.metrics} suite; choose from: {', '.join(reportable)}")
    return suite


def check_direction(cfg: DictConfig) -> None:
    """The direction of the objective comes from the metric suite alone (``losslab.metrics``): a
    ``task.greater_is_better`` or ``trainer.greater_is_better`` set against it is refused."""
    def refuse(key, value, metric):
        better = "higher" if greater_is_better(metric) else "lower"
        raise ConfigError(f"{key}={str(value).lower()} contradicts the metric suite: {metric} is better when "
                          f"{better}; leave {key} out (it follows from the metric)")

    objective = cfg.task.objective
    if "greater_is_better" in cfg.task and bool(cfg.task.greater_is_better) != greater_is_better(objective):
        refuse("task.greater_is_better", cfg.task.greater_is_better, objective)
    metric, value = cfg.trainer.get("metric_for_best_model"), cfg.trainer.get("greater_is_better")
    if metric and value is not None and bool(value) != greater_is_better(metric):
        refuse("trainer.greater_is_better", value, metric)


def check_missing(cfg: DictConfig) -> None:
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError("these settings have no value yet: " + ", ".join(f"{k}=..." for k in missing))


class Resolved(NamedTuple):
    """What the checks worked out, handed on so that the run does not work it out again."""

    training_kwargs: dict  # the hardware's TrainingArguments fields (use_cpu, bf16, fp16, dataloader_num_workers)
    suite: object  # the task's metric suite (losslab.metrics.Suite), its module loaded
    task: object = None  # cfg.task read against its schema (losslab.tasks.schema.TaskConfig): typed, defaults filled


def check(cfg: DictConfig) -> Resolved:
    """Run every check; raise ConfigError with a message a user can act on. Returns what they resolved."""
    from losslab.losses.targets import check_targets

    check_missing(cfg)
    task = schema.validate(cfg.task)  # every task.<field>'s type and range, its kind; one line naming the option
    check_targets(cfg.loss)  # loss._target_=builtins.open: only a loss is ever instantiated as one
    check_loss(cfg)  # first: refusing a loss that cannot serve the task needs no metric suite (no evaluate import)
    suite = check_task(cfg)
    check_direction(cfg)
    check_trainer(cfg)
    checks.check_values(cfg)  # seed, trainer.<field> types and ranges
    checks.check_loss_values(cfg, _choice(cfg, "loss"))  # loss.delta=abc: named, before the loss is built
    checks.check_loss_builds(cfg, _choice(cfg, "loss"))  # loss.delta=-1: the loss's own refusal, in one line
    checks.check_class_options(cfg)  # loss.weights: one per class (own data: again once the classes are counted)
    training_kwargs = hardware.training_kwargs(cfg.hardware)
    checks.check_model(cfg)  # no such folder; a hub id not cached under HF_HUB_OFFLINE=1
    checks.check_positions(cfg)  # task.max_length within the model's position embeddings

    check_server(cfg.tracking.uri)  # an http(s) store that does not answer: one line, in seconds
    if is_main():  # several processes (DDP): only rank 0 touches the store
        checks.check_store(cfg)  # last: reachable and writable (busy: a bounded wait), created once
    return Resolved(training_kwargs, suite, task)


def _choice(cfg: DictConfig, group: str) -> str:
    return str(HydraConfig.get().runtime.choices.get(group)) if HydraConfig.initialized() else group
