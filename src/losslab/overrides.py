"""A "did you mean" for command-line options, checked against their config group before Hydra composes.

``python train.py loss=hubber`` answers in one line (wrapped here), with exit code 2::

    losslab: error: loss=hubber: no option 'hubber' in group loss. Did you mean huber or huber_loss?
    All options of loss: asymmetric, bce, ...

Every ``group=option`` override is checked (``loss=``, ``task=``, ``model=``, ``hydra/launcher=``, ``+group=``,
``group@package=``, each value of a sweep ``loss=mse,hubber`` or ``choice(...)``, a ``glob(...)`` that matches
nothing), against the same search path Hydra will use: ``conf/``, Hydra's and its plugins' configs,
``--config-dir`` and ``hydra.searchpath=[file://...]``, so an option that exists in a user's config dir is
never refused. A misspelt group name (``los=huber``) is answered the same way when it is close to a group and
is no key of the primary config. Anything this check cannot judge is left to Hydra. The groups and options
are asked of Hydra's public config loader (``hydra.initialize_config_dir``, GlobalHydra left as it was found).
It imports Hydra only (no torch): the answer is instant.
"""

from __future__ import annotations

import difflib
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hydra.core.config_loader import ConfigLoader

#: the entry script whose search path this module reproduces (``train.py`` next to ``conf/``)
CONFIG_PATH = "conf"
CONFIG_NAME = "train"
#: and its ``@hydra.main``'s version_base
VERSION_BASE = "1.3"


def closest(word: str, names: list[str], n: int = 3) -> list[str]:
    """The names most like ``word``, best first (case-insensitive; ``MSE`` finds ``mse``)."""
    lowered = {name.lower(): name for name in names}
    return [lowered[m] for m in difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.6)]


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


#: options renamed: the old name is refused with the new one (not an alias: one name per option)
RENAMED = {"loss": {"default": "model_loss"}}


def _option_message(line: str, group: str, bad: list[str], options: list[str]) -> str:
    renamed = RENAMED.get(group, {})
    old = [value for value in bad if value in renamed]
    moved = [f"{group}={value} is now {group}={renamed[value]}" for value in old]
    bad = [value for value in bad if value not in renamed]
    if moved and not bad:  # loss=default: "loss=default is now loss=model_loss", the line not said twice
        return moved[0] if line == f"{group}={old[0]}" else f"{line}: {'; '.join(moved)}"
    near: list[str] = []
    for value in bad:
        near += [o for o in closest(value, options) if o not in near]
    what = f"no option {bad[0]!r}" if len(bad) == 1 else f"no options {', '.join(map(repr, bad))}"
    hint = f" Did you mean {_either(near[:3])}?" if near else ""
    return f"{line}: {''.join(m + '; ' for m in moved)}{what} in group {group}.{hint} All options of {group}: " \
           f"{', '.join(options)}"


def _values(override) -> list[str] | None:
    """The option names an override asks for (None: a kind of value this check leaves to Hydra)."""
    from hydra.core.override_parser.types import ValueType

    if override.value_type in (ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP):
        return [str(v) for v in override.sweep_string_iterator()]
    if override.value_type != ValueType.ELEMENT:
        return None  # glob (handled by the caller), range, interval
    value = override.value()
    if value is None:
        return []  # group=null: no option
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, dict):
        return None
    return [str(value)]


def problems(argv: list[str], script: str | Path) -> list[str]:
    """One message per override that names no option of its group (empty: nothing to say)."""
    from hydra._internal.utils import get_args_parser  # Hydra's own command-line flags: no public equivalent
    from hydra.core.object_type import ObjectType
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob, ValueType
    from hydra.errors import HydraException

    args, _ = get_args_parser().parse_known_args(argv)
    if args.config_path is not None or args.shell_completion:
        return []  # another primary config folder, or the shell asking for completions: Hydra's business
    config_dirs = [Path(script).resolve().parent / CONFIG_PATH]
    if args.config_dir is not None:
        config_dirs.append(Path(args.config_dir).resolve())
    search = _Search(config_dirs, args.config_name or CONFIG_NAME, args.overrides)
    try:
        overrides = OverridesParser.create().parse_overrides(overrides=args.overrides)
        groups = sorted(g for g in search.options("", ObjectType.GROUP) if g != "hydra")
    except HydraException:
        return []  # a malformed override or search path: Hydra's own message says it best
    primary_keys = search.primary_keys()

    found = []
    for override in overrides:
        if override.is_delete():
            continue
        group = override.key_or_group
        line = override.input_line
        if not search.is_group(group):
            if "." in group or "/" in group or override.is_add() or override.is_force_add() or group in primary_keys:
                continue
            near = closest(group, groups, n=2)
            if near:
                found.append(f"{line}: {group} is not a config group. Did you mean {_either(near)}? "
                             f"Groups: {', '.join(groups)}")
            continue
        options = search.options(group, ObjectType.CONFIG)
        if override.value_type == ValueType.GLOB_CHOICE_SWEEP:
            glob = override.value()
            if isinstance(glob, Glob) and not glob.filter(options):
                found.append(f"{line}: the glob matches no option of {group}. All options of {group}: "
                             f"{', '.join(options)}")
            continue
        values = _values(override)
        if not values or any("${" in v for v in values):  # nothing asked, or an interpolation: Hydra's call
            continue
        bad = [v for v in values if not search.is_config(f"{group}/{v}")]
        if bad:
            found.append(_option_message(line, group, bad, options))
    return found


def _loader(config_dir: Path) -> ConfigLoader:
    """Hydra's public config loader with ``config_dir`` as the primary config folder; GlobalHydra left as it was."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    outer = GlobalHydra.instance().hydra  # None, unless this runs inside a Hydra app or compose context
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base=VERSION_BASE):
            return GlobalHydra.instance().config_loader()
    finally:
        GlobalHydra.instance().clear()
        if outer is not None:
            GlobalHydra.instance().initialize(outer)


class _Search:
    """The groups and options Hydra will see, asked of its public ``ConfigLoader``.

    ``config_dirs``: ``conf/``, then the ``--config-dir`` if any. Each folder gets a loader of its own (Hydra's public
    API takes one config folder); the search path is their union, and the primary config is the one Hydra's run
    finds first (``conf/``, Hydra's and the plugins' configs, the ``--config-dir``, the structured configs). Only the
    loader that holds it is given its name, so that its ``hydra.searchpath`` (or the command line's) is honoured as
    Hydra's run honours it. A group or a config exists when its parent group lists it (a folder named
    ``__pycache__``, which Hydra never lists, is no group here: Hydra's run answers that one).
    """

    def __init__(self, config_dirs: list[Path], config_name: str, overrides: list[str]) -> None:
        loaders = [_loader(config_dir) for config_dir in config_dirs]
        first = [source for source in loaders[0].get_sources() if source.provider != "schema"]
        extra = [source for loader in loaders[1:] for source in loader.get_sources() if source.provider == "main"]
        schema = [source for source in loaders[0].get_sources() if source.provider == "schema"]
        self.primary = next((source for source in first + extra + schema if source.is_config(config_name)), None)
        owner = loaders[0] if self.primary in first else loaders[-1]  # its own search finds that primary first
        self.loaders = [(loader, config_name if loader is owner else None) for loader in loaders]
        self.config_name, self.overrides = config_name, overrides
        self.cache: dict[tuple[str, object], list[str]] = {}

    def options(self, group: str, kind) -> list[str]:
        """``ConfigLoader.get_group_options``: the groups or the configs in ``group``, over all loaders."""
        if (group, kind) not in self.cache:
            found: set[str] = set()
            with warnings.catch_warnings():  # Hydra warns about a missing search-path folder itself, later
                warnings.simplefilter("ignore")
                for loader, config_name in self.loaders:
                    found.update(loader.get_group_options(group, results_filter=kind, config_name=config_name,
                                                          overrides=self.overrides))
            self.cache[group, kind] = sorted(found)
        return self.cache[group, kind]

    def is_group(self, path: str) -> bool:
        from hydra.core.object_type import ObjectType

        parent, _, name = path.rpartition("/")
        return name in self.options(parent, ObjectType.GROUP)

    def is_config(self, path: str) -> bool:
        from hydra.core.object_type import ObjectType

        parent, _, name = path.rpartition("/")
        return name.removesuffix(".yaml") in self.options(parent, ObjectType.CONFIG)  # loss=huber.yaml is huber

    def primary_keys(self) -> set:
        """The keys of the primary config (``train.yaml``) itself, as Hydra loads it: no defaults list."""
        from omegaconf import OmegaConf

        if self.primary is None:
            return set()
        config = self.primary.load_config(self.config_name).config
        if not OmegaConf.is_dict(config):
            return set()
        keys = set(config.keys())
        if OmegaConf.get_type(config) is dict:  # a structured config keeps its defaults field
            keys.discard("defaults")
        return keys


def refuse_unknown_options(argv: list[str], script: str | Path) -> None:
    """Exit with code 2 and one message per unknown option; return quietly otherwise (Hydra takes over)."""
    try:
        found = problems(argv, script)
    except SystemExit:
        raise
    except Exception:  # noqa: BLE001  (never stand between the user and Hydra: it will say what is wrong)
        return
    if found:
        for message in found:
            print(f"losslab: error: {message}", file=sys.stderr)
        sys.exit(2)
