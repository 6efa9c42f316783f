"""What a loss config may name as a ``_target_``: checked before anything in it is instantiated.

Hydra's ``instantiate`` calls whatever a ``_target_`` names, and every nested ``_target_`` first
(``loss._target_=builtins.open +loss.file=X +loss.mode=w`` would truncate X). So every ``_target_`` in the loss
config (the loss's own and any nested one, such as ``composite``'s terms) is imported, never called, and must be
one of the forms docs/configuration.md's *Add your own loss* describes:

- a class that is a ``torch.nn.Module`` (every losslab :class:`~losslab.losses.base.Loss`, every ``torch.nn``
  loss, a tutorial's module), or a class of ``losslab.losses`` (``ModelDefault``, ``TrainerLoss``);
- a class whose instances are called as ``loss(outputs, labels)`` (it defines ``__call__``), outside the standard
  library;
- a Python function taking ``(outputs, labels, ...)``, outside the standard library, with ``_partial_: true``:
  it is called per batch, never when the loss is built.

Anything else (a builtin, a function of the standard library, a module, a function without ``_partial_``) is
refused in one line: ``loss._target_=builtins.open is not a loss: ...``.
"""

from __future__ import annotations

import inspect
import sys

from losslab.errors import ConfigError

FORMS = ("a loss is a torch.nn.Module or losslab.losses class, a class called as loss(outputs, labels), or a "
         "function (outputs, labels, ...) with _partial_: true, outside the standard library")


def _stdlib(obj) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module.split(".")[0] in sys.stdlib_module_names


def _takes_outputs_and_labels(fn, bound: bool) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to read: its call is tried per batch, as adapt does
        return True
    try:
        sig.bind(*((None,) if bound else ()), "outputs", "labels")
    except TypeError:
        return False
    return True


def why_not(obj, partial: bool) -> str | None:
    """None when ``obj`` (what a ``_target_`` names, imported) is a loss; else what it is instead."""
    if inspect.isclass(obj):
        nn = sys.modules.get("torch.nn")  # a Module subclass was defined by code that imported torch
        if nn is not None and issubclass(obj, nn.Module):
            return None
        if (obj.__module__ or "").startswith("losslab.losses."):
            return None
        if _stdlib(obj):
            return f"it is a class of the standard library ({obj.__module__})"
        if "__call__" not in _own_attrs(obj):
            return "its instances are not callable (no __call__): it computes no loss"
        if not _takes_outputs_and_labels(obj.__call__, bound=True):
            return "its __call__ does not take (outputs, labels)"
        return None
    if inspect.isfunction(obj):
        if _stdlib(obj):
            return f"it is a function of the standard library ({obj.__module__})"
        if not _takes_outputs_and_labels(obj, bound=False):
            return "it does not take (outputs, labels)"
        if not partial:
            return ("a function is a loss only with _partial_: true (it is called per batch, never when the "
                    "loss is built)")
        return None
    if inspect.isbuiltin(obj) or callable(obj) and _stdlib(obj):
        where = f"{getattr(obj, '__module__', None) or 'builtins'}.{getattr(obj, '__name__', '')}".rstrip(".")
        return f"it is a builtin function ({where})"
    if inspect.ismodule(obj):
        return "it is a module"
    return f"it is a {type(obj).__name__} object, not a class or a function"


def _own_attrs(cls) -> set[str]:
    """Attributes defined by ``cls`` or a base other than ``object``."""
    return {name for base in cls.__mro__ if base is not object for name in vars(base)}


_UNREADABLE = object()


def _read(node, key, default=_UNREADABLE):
    from omegaconf import OmegaConf

    try:
        return default if OmegaConf.is_missing(node, key) else node[key]
    except Exception:  # an interpolation that does not resolve
        return default


def _targets(node, path: str):
    """(key path, _target_, its own ``_partial_``) of every ``_target_`` in a loss config, nested ones included
    (Hydra instantiates those first; ``_partial_`` does not carry down to them). Values that cannot be read
    (missing, an interpolation that does not resolve) are skipped: instantiate fails on them before it calls."""
    from omegaconf import OmegaConf

    if OmegaConf.is_dict(node):
        keys = list(node.keys())
        target = _read(node, "_target_") if "_target_" in keys else _UNREADABLE
        partial = _read(node, "_partial_", False) is True
        if target is not _UNREADABLE:
            yield path, target, partial
        items = [(k, f"{path}.{k}") for k in keys if k not in ("_target_", "_partial_", "_convert_", "_recursive_")]
    elif OmegaConf.is_list(node):
        items = [(i, f"{path}[{i}]") for i in range(len(node))]
    else:
        return
    for key, where in items:
        child = _read(node, key)
        if OmegaConf.is_config(child):
            yield from _targets(child, where)


def check_targets(loss_cfg, key: str = "loss") -> None:
    """Refuse (:class:`ConfigError`, one line) a loss config with a ``_target_`` that is not a loss; imports
    each one, calls none."""
    from hydra.utils import get_object
    from omegaconf import OmegaConf

    if not OmegaConf.is_config(loss_cfg):
        return
    for path, target, partial in list(_targets(loss_cfg, key)):
        if not isinstance(target, str):
            raise ConfigError(f"{path}._target_={target!r} is not a loss: {FORMS}")
        try:
            obj = get_object(target)
        except Exception as exc:  # ImportError, AttributeError, ... wrapped by Hydra
            raise ConfigError(f"{path}: cannot import _target_ {target!r}: {' '.join(str(exc).split())}") from exc
        reason = why_not(obj, partial)
        if reason is not None:
            raise ConfigError(f"{path}._target_={target} is not a loss: {reason}; {FORMS}")
