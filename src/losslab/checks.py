"""Preflight checks of values and places (called from :func:`losslab.preflight.check`, before any data or
model loads): every config value has its type and range (the task's: its schema, ``losslab.tasks.schema``),
the model's folder or hub id can be found, and the MLflow store can be written.
"""

from __future__ import annotations

import inspect
import math
import os
import re
import sqlite3
import types
import typing
from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from losslab import kinds, tracking
from losslab.errors import ConfigError
from losslab.faults import StoreError
from losslab.paths import package_path
from losslab.values import as_bool as _bool, as_float as _float, as_int as _int

# transformers, huggingface_hub and losslab.losses (torch) are imported inside functions: preflight imports this
# module, and race=losses' sweeper imports preflight in the sweep's parent process, which loads no model

SEED_MAX = 2**32 - 1


# TrainingArguments fields with a range: (test, what the value must be)
_TRAINER_RANGES = {
    "max_steps": (lambda v: v == -1 or v > 0, "-1 (train num_train_epochs) or a positive number of steps"),
    "num_train_epochs": (lambda v: v > 0, "positive"),
    "per_device_train_batch_size": (lambda v: v >= 1, "at least 1"),
    "per_device_eval_batch_size": (lambda v: v >= 1, "at least 1"),
    "gradient_accumulation_steps": (lambda v: v >= 1, "at least 1"),
    "learning_rate": (lambda v: v >= 0 and math.isfinite(v), "a finite number >= 0"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    "warmup_steps": (lambda v: v >= 0, ">= 0"),
    "logging_steps": (lambda v: v > 0, "positive (a float < 1: a fraction of the training steps)"),
    "eval_steps": (lambda v: v > 0, "positive (a float < 1: a fraction of the training steps)"),
    "save_steps": (lambda v: v > 0, "positive (a float < 1: a fraction of the training steps)"),
    "save_total_limit": (lambda v: v >= 1, "at least 1"),
    "seed": (lambda v: 0 <= v <= SEED_MAX, f"an integer in 0..{SEED_MAX}"),
    "data_seed": (lambda v: 0 <= v <= SEED_MAX, f"an integer in 0..{SEED_MAX}"),
}

_NAMES = {int: "an integer", float: "a number", bool: "true or false"}


def _typed(value, kinds: set):
    """``value`` converted to the first of ``kinds`` (int, float, bool) it fits, or raise ValueError."""
    for kind in (bool, int, float):
        if kind in kinds:
            out = {bool: _bool, int: _int, float: _float}[kind](value)
            if out is not None:
                return out
    raise ValueError


def _simple_kinds(annotation) -> tuple[set, bool]:
    """The plain kinds (int, float, bool) an annotation allows, and whether it allows None; an empty set when
    it allows anything else too (a str, an enum, a list: not checked here)."""
    args = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) \
        else (annotation,)
    optional = type(None) in args
    kinds = {a for a in args if a is not type(None)}
    return (kinds if kinds and kinds <= {int, float, bool} else set()), optional


def check_values(cfg: DictConfig) -> None:
    """Types and ranges of the values that are read as numbers: ``seed`` and every ``trainer.<field>`` of a
    numeric or boolean type (the task's fields: ``losslab.tasks.schema``)."""
    seed = _int(cfg.get("seed"))
    if seed is None or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"seed={cfg.get('seed')} must be an integer in 0..{SEED_MAX}")
    _check_trainer_values(cfg)


def _check_trainer_values(cfg: DictConfig) -> None:
    from transformers import Seq2SeqTrainingArguments, TrainingArguments

    kind = Seq2SeqTrainingArguments if kinds.get(cfg.task.kind).generates else TrainingArguments
    hints = typing.get_type_hints(kind)
    trainer = OmegaConf.to_container(cfg.trainer, resolve=True)
    for key, value in trainer.items():
        if key not in hints:
            continue  # not a field: check_trainer says so
        allowed, optional = _simple_kinds(hints[key])
        if not allowed:
            continue
        if value is None:
            if optional:
                continue
            raise ConfigError(f"trainer.{key} needs a value: {_NAMES[min(allowed, key=str)]} "
                              f"(transformers.{kind.__name__}.{key})")
        try:
            typed = _typed(value, allowed)
        except ValueError:
            names = " or ".join(sorted({_NAMES[k] for k in allowed}))
            raise ConfigError(f"trainer.{key}={value!r} is not {names} "
                              f"(transformers.{kind.__name__}.{key})") from None
        rule = _TRAINER_RANGES.get(key)
        if rule and not isinstance(typed, bool) and not rule[0](typed):
            raise ConfigError(f"trainer.{key}={value} must be {rule[1]}")


def check_loss_values(cfg: DictConfig, name: str) -> None:
    """A loss's numeric and boolean knobs have their type (from its signature: annotations, else defaults),
    named by field: ``loss.delta='abc' is not a number (huber's delta)``."""
    target = cfg.loss.get("_target_")
    try:
        obj = get_object(target)
    except (TypeError, ValueError, ImportError, AttributeError):
        return
    try:  # the annotations as types (a module with ``from __future__ import annotations`` keeps them as text)
        params = inspect.signature(obj, eval_str=True).parameters
    except Exception:  # an annotation that does not evaluate: its text is not a kind, the default decides
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            return
    for key in cfg.loss:
        if str(key).startswith("_") or key not in params:
            continue
        value = OmegaConf.to_container(cfg.loss, resolve=True)[key]
        param = params[key]
        kinds, optional = _simple_kinds(param.annotation) if param.annotation is not inspect.Parameter.empty \
            else (set(), False)
        default = param.default
        typed_by_annotation = param.annotation is not inspect.Parameter.empty and not isinstance(param.annotation, str)
        if not kinds and not typed_by_annotation and default is not inspect.Parameter.empty and default is not None:
            kinds = {bool} if isinstance(default, bool) else {int, float} if isinstance(default, (int, float)) \
                else set()
        if not kinds or (value is None and (optional or default is None)):
            continue
        try:
            _typed(value, kinds | ({float} if int in kinds else set()))
        except ValueError:
            names = " or ".join(sorted({_NAMES[k] for k in kinds} - ({"an integer"} if float in kinds else set())))
            raise ConfigError(f"loss.{key}={value!r} is not {names} ({name}'s {key}"
                              f"{'' if default is inspect.Parameter.empty else f', default {default}'})") from None


def _loss_nodes(node, prefix: str = "loss"):
    """``(path, config)`` of the loss config and of every loss nested in it (a composite's terms)."""
    if isinstance(node, DictConfig):
        if node.get("_target_"):
            yield prefix, node
        for key in node:
            if not str(key).startswith("_"):
                yield from _loss_nodes(node.get(key), f"{prefix}.{key}")
    elif isinstance(node, ListConfig):
        for i, item in enumerate(node):
            yield from _loss_nodes(item, f"{prefix}[{i}]")


def check_class_options(cfg: DictConfig, name: str = "loss") -> None:
    """A loss option given per class as a list (``loss.weights``, focal's ``alpha``, bce's ``pos_weight``: a
    parameter of one of losslab's losses typed ``Sequence``) has one value per class of the task (``task.num_labels``; not known yet for
    one's own data: checked again once the classes are counted in train)."""
    num = _int(cfg.task.get("num_labels"))
    if num is None:
        return

    what, one = kinds.get(cfg.task.kind).outputs_are
    for path, node in _loss_nodes(cfg.loss):
        if not _is_catalog_loss(node._target_):  # a user's list parameter may mean something else
            continue
        try:
            params = inspect.signature(get_object(node._target_)).parameters
        except Exception:  # not importable: check_loss says so
            continue
        for key, param in params.items():
            value = node.get(key) if key in node else None
            if not isinstance(value, ListConfig) or "Sequence" not in str(param.annotation):
                continue
            if len(value) != num:
                ones = ",".join(["1.0"] * num)
                raise ConfigError(
                    f"{path}.{key} has {len(value)} value{'' if len(value) == 1 else 's'} but task={cfg.task.name} has {num} {what} "
                    f"(task.num_labels): give one per {one}, e.g. {path}.{key}=[{ones}]"
                    f"{f', or {path}.{key}=balanced' if 'str' in str(param.annotation) else ''}")


def _is_catalog_loss(target) -> bool:
    """Whether ``_target_`` is one of losslab's own loss classes (built without side effects)."""
    try:
        obj = get_object(str(target))
    except Exception:
        return False
    from losslab.losses.base import Loss

    return isinstance(obj, type) and issubclass(obj, Loss) and obj.__module__.startswith("losslab.losses.")


def check_loss_builds(cfg: DictConfig, name: str) -> None:
    """The loss's own constructor takes the config's values (``huber: delta must be > 0``): losslab's own
    losses are built once here, before anything loads, and a refusal is one line naming the option
    (``loss.delta=-1``), not Hydra's InstantiationException. A loss that is not losslab's (a user's class or
    function) is left to the run, which builds it once."""
    nodes = list(_loss_nodes(cfg.loss))
    if not nodes or not all(_is_catalog_loss(node._target_) for _, node in nodes):
        return
    try:
        instantiate(cfg.loss)
    except InstantiationException as exc:
        cause = exc.__cause__
        if not isinstance(cause, (ValueError, TypeError)):
            raise
        message = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        where = re.search(r"full_key: (\S+)", str(exc))
        where = where.group(1) if where else "loss"
        leaves = OmegaConf.to_container(OmegaConf.select(cfg, where), resolve=True) \
            if OmegaConf.select(cfg, where) is not None else {}
        named = [k for k, v in (leaves or {}).items() if not str(k).startswith("_") and not isinstance(v, dict)
                 and re.search(rf"\b{re.escape(str(k))}\b", message)]
        text = re.sub(r"^\w+: ", "", message)
        if named:
            key = named[0]
            raise ConfigError(f"{where}.{key}={leaves[key]} is refused by loss={name}: {text}") from None
        raise ConfigError(f"loss={name} cannot be built from {where}: {text}") from None


# model ------------------------------------------------------------------------------------------------------

def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~")) or os.sep in spec and Path(spec).expanduser().exists() \
        or spec.count("/") > 1


def check_model(cfg: DictConfig) -> None:
    """``model.name_or_path`` / ``model.tokenizer``: a folder that exists, an installed package's folder
    (``pkg:``), or a hub id that can be had (with ``HF_HUB_OFFLINE=1``: already in the local cache)."""
    for key in ("name_or_path", "tokenizer"):
        spec = cfg.model.get(key)
        if not spec:
            continue
        spec = str(spec)
        try:
            resolved = package_path(spec)
        except FileNotFoundError as exc:
            raise ConfigError(f"model.{key}: {exc}") from None
        if spec.startswith("pkg:") or _looks_like_path(resolved):
            folder = Path(resolved).expanduser()
            if not folder.is_dir():
                what = "is a file, not a folder" if folder.exists() else "no such folder"
                raise ConfigError(f"model.{key}={spec}: {what} (a local model is a folder with config.json; "
                                  "a hub model is <org>/<name>)")
            _check_model_folder(cfg, key, spec, folder)
            continue
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") and not _cached(resolved):
            raise ConfigError(f"model.{key}={spec}: not in the local cache and HF_HUB_OFFLINE=1; unset "
                              "HF_HUB_OFFLINE to download it once, or give a local folder")


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")


def _check_model_folder(cfg: DictConfig, key: str, spec: str, folder: Path) -> None:
    """A local model folder holds ``config.json`` (unless ``model.architecture`` builds the model from a
    config), and the folder the tokenizer comes from holds a tokenizer file: without them transformers
    guesses and asks to install sentencepiece."""
    builds = key == "name_or_path" and not cfg.model.get("architecture")
    if builds and not (folder / "config.json").is_file():
        raise ConfigError(f"model.name_or_path={spec}: no config.json in it ({folder}); a local model is a folder "
                          "as save_pretrained writes it (config.json, the weights, the tokenizer files)")
    tokenizer_from = key == "tokenizer" or not cfg.model.get("tokenizer")
    if tokenizer_from and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise ConfigError(f"model.{key}={spec}: no tokenizer files in it ({folder}; one of "
                          f"{', '.join(TOKENIZER_FILES)}); save the tokenizer there or set model.tokenizer")


def model_positions(cfg: DictConfig) -> tuple[int, str] | None:
    """The number of positions the model can embed (``max_position_embeddings``, GPT-2's ``n_positions``) and
    where it comes from, read from its config alone (no weights); None when that cannot be read here."""
    def positions(config) -> int | None:
        for attr in ("max_position_embeddings", "n_positions"):
            value = getattr(config, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    try:
        from transformers import AutoConfig

        architecture = cfg.model.get("architecture")
        if architecture:
            arch = OmegaConf.to_container(architecture, resolve=True)
            found = positions(AutoConfig.for_model(arch.pop("model_type"), **arch))
            return (found, "model.architecture") if found else None
        spec = cfg.model.get("name_or_path")
        if not spec:
            return None
        found = positions(AutoConfig.from_pretrained(package_path(str(spec)), local_files_only=True))
        return (found, f"model.name_or_path={spec}") if found else None
    except Exception:  # not readable offline: the model's own loading says why
        return None


def check_positions(cfg: DictConfig) -> None:
    """``task.max_length`` (and a seq2seq task's ``max_target_length`` + its start token) fit in the model's
    position embeddings; a longer text would fail inside the model (``index out of range in self``)."""
    lengths = [("task.max_length", _int(cfg.task.get("max_length")), 0)]
    if kinds.get(cfg.task.kind).generates and cfg.task.get("max_target_length") is not None:
        lengths.append(("task.max_target_length", _int(cfg.task.get("max_target_length")), 1))
    if all(n is None for _, n, _ in lengths):
        return
    found = model_positions(cfg)
    if found is None:
        return
    limit, where = found
    for key, n, extra in lengths:
        if n is not None and n + extra > limit:
            plus = f" (+ {extra} start token)" if extra else ""
            raise ConfigError(f"{key}={n}{plus} is more than the model's {limit} positions "
                              f"(max_position_embeddings of {where}); set {key}<={limit - extra}")


def _cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return True
    try:
        for name in ("config.json", "tokenizer_config.json", "tokenizer.json", "vocab.txt"):
            found = try_to_load_from_cache(repo_id, name)
            if isinstance(found, str):
                return True
    except Exception:  # an id the hub library refuses: transformers will say why
        return True
    return False


# store ------------------------------------------------------------------------------------------------------

def check_store(cfg: DictConfig) -> None:
    """The MLflow store can be written, before anything loads: for a sqlite store, its folder can exist (no
    file in the way), it is not read-only, and a writer holding its lock lets go within ``tracking.busy_wait``
    seconds (default 30); then the store and experiment are created (once, under a file lock)."""
    uri = str(cfg.tracking.uri)
    path = tracking.sqlite_path(uri)
    wait = float(cfg.tracking.get("busy_wait", 30) or 0)
    if path is not None:
        _check_sqlite(path, wait)
    try:
        tracking.ensure_experiment(uri, cfg.tracking.experiment, cfg.tracking.get("artifact_location"))
    except TimeoutError as exc:
        raise StoreError(f"{exc}; another job is creating it") from None


def _check_sqlite(path: Path, wait: float) -> None:
    for parent in [path, *path.parents]:
        if parent.exists():
            if parent != path and not parent.is_dir():
                raise StoreError(f"the MLflow store {path} cannot be created: {parent} is a file, not a folder "
                                 "(set tracking.uri=sqlite:///<folder>/mlflow.db or paths.output_dir)")
            if parent == path and path.is_dir():
                raise StoreError(f"the MLflow store {path} is a folder; tracking.uri must name a file")
            break
    target = path if path.exists() else next(p for p in path.parents if p.exists())
    if not path.exists():
        probe = target / f".losslab-write-test-{os.getpid()}"
        try:
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"the MLflow store {path} cannot be created: {target} is not writable "
                             f"({exc.strerror})") from None
        return
    try:
        con = sqlite3.connect(str(path), timeout=wait)
    except sqlite3.Error as exc:
        raise StoreError(f"the MLflow store {path} cannot be opened: {exc}") from None
    try:
        con.execute("BEGIN IMMEDIATE")  # waits up to `wait` s for another writer to let go
        version = con.execute("PRAGMA user_version").fetchone()[0]
        con.execute(f"PRAGMA user_version = {int(version)}")  # a write: fails on a read-only store
        con.rollback()
    except sqlite3.OperationalError as exc:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            raise StoreError(f"the MLflow store {path} is locked by another writer and was still locked after "
                             f"{wait:.0f} s (tracking.busy_wait); try again when it is done") from None
        if "readonly" in text or "read-only" in text or "read only" in text:
            raise StoreError(f"the MLflow store {path} is read-only; make it writable or point tracking.uri "
                             "(or paths.output_dir) elsewhere") from None
        raise StoreError(f"the MLflow store {path} cannot be written: {exc}") from None
    finally:
        con.close()
