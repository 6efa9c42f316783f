"""A "did you mean" for command-line options, checked against their config group before Hydra composes.

``python train.py loss=hubber`` answers in one line (wrapped here), with exit code 2::

    losslab: error: loss=hubber: no option 'hubber' in group loss. Did you mean huber or huber_loss?
    All options of loss: asymmetric, bce, ...

Every ``group=option`` override is checked (``loss=``, ``task=``, ``model=``, ``hydra/launcher=``, ``+group=``,
``group@package=``, each value of a sweep ``loss=mse,hubber`` or ``choice(...)``, a ``glob(...)`` that matches
nothing), against the same search path Hydra will use: ``conf/``, Hydra's and its plugins' configs,
``--config-dir`` and ``hydra.searchpath=[file://...]``, so an option that exists in a user's config dir is
never refused. A misspelt group name (``los=huber``) is answered the same way when it is close to a group and
is no key of the primary config. Anything this check cannot judge is left to Hydra. It imports Hydra only
(no torch): the answer is instant.
"""

from __future__ import annotations

import difflib
import sys
import warnings
from pathlib import Path

#: the entry script whose search path this module reproduces (``train.py`` next to ``conf/``)
CONFIG_PATH = "conf"
CONFIG_NAME = "train"


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
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_automatic_config_search_path, get_args_parser
    from hydra.core.object_type import ObjectType
    from hydra.core.override_parser.types import Glob, ValueType
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    args, _ = get_args_parser().parse_known_args(argv)
    if args.config_path is not None or args.shell_completion:
        return []  # another primary config folder, or the shell asking for completions: Hydra's business
    config_name = args.config_name or CONFIG_NAME
    search_path = create_automatic_config_search_path(str(Path(script).resolve()), None, CONFIG_PATH)
    if args.config_dir is not None:
        from hydra.core.config_search_path import SearchPathQuery

        search_path.prepend(provider="command-line", path=f"file://{Path(args.config_dir).resolve()}",
                            anchor=SearchPathQuery(provider="schema"))
    loader = ConfigLoaderImpl(config_search_path=search_path)
    try:
        with warnings.catch_warnings():  # Hydra warns about a missing search-path folder itself, later
            warnings.simplefilter("ignore")
            overrides, repo = loader._parse_overrides_and_create_caching_repo(config_name, args.overrides)
    except HydraException:
        return []  # a malformed override or search path: Hydra's own message says it best
    primary = repo.load_config(config_name)
    primary_keys = set(primary.config.keys()) if primary is not None and OmegaConf.is_dict(primary.config) else set()

    found = []
    for override in overrides:
        if override.is_delete():
            continue
        group = override.key_or_group
        line = override.input_line
        if not repo.group_exists(group):
            if "." in group or "/" in group or override.is_add() or override.is_force_add() or group in primary_keys:
                continue
            groups = sorted(g for g in _top_groups(repo) if g != "hydra")
            near = closest(group, groups, n=2)
            if near:
                found.append(f"{line}: {group} is not a config group. Did you mean {_either(near)}? "
                             f"Groups: {', '.join(groups)}")
            continue
        options = sorted(repo.get_group_options(group, results_filter=ObjectType.CONFIG))
        if override.value_type == ValueType.GLOB_CHOICE_SWEEP:
            glob = override.value()
            if isinstance(glob, Glob) and not glob.filter(options):
                found.append(f"{line}: the glob matches no option of {group}. All options of {group}: "
                             f"{', '.join(options)}")
            continue
        values = _values(override)
        if not values or any("${" in v for v in values):  # nothing asked, or an interpolation: Hydra's call
            continue
        bad = [v for v in values if not repo.config_exists(f"{group}/{v}")]
        if bad:
            found.append(_option_message(line, group, bad, options))
    return found


def _top_groups(repo) -> list[str]:
    from hydra.core.object_type import ObjectType

    return repo.get_group_options("", results_filter=ObjectType.GROUP)


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
