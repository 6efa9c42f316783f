"""The package's import structure: every module imports on its own, and no two modules import each other."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "losslab"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules) -> set[str]:
    """The losslab modules ``name`` imports, at the top or inside a function (a deferred import is a cycle
    postponed, not avoided)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
                package = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else base)
    return (found & modules.keys()) - {name}


def _with_packages(imported: set[str], modules) -> set[str]:
    """What importing these modules runs: each module, and every package above it (its ``__init__``), below
    ``losslab`` itself (whose ``__init__`` runs first in any case and imports only ``losslab.config``)."""
    out = set(imported)
    for name in imported:
        parts = name.split(".")
        out |= {".".join(parts[:i]) for i in range(2, len(parts))} & modules.keys()
    return out


def _cycle() -> str | None:
    """An import cycle among losslab's modules, counting that importing ``a.b.c`` runs the package ``a.b``."""
    modules = _modules()
    graph = {name: _with_packages(_imports(name, path, modules), modules) - {name}
             for name, path in modules.items()}
    done, stack = set(), []

    def visit(node):
        if node in stack:
            return " -> ".join(stack[stack.index(node):] + [node])
        if node in done:
            return None
        stack.append(node)
        for child in sorted(graph[node]):
            found = visit(child)
            if found:
                return found
        stack.pop()
        done.add(node)
        return None

    for name in sorted(graph):
        found = visit(name)
        if found:
            return found
    return None


def test_no_import_cycle():
    """No cycle, counting that importing ``a.b.c`` runs the package ``a.b`` first: a package whose ``__init__``
    imports its own modules, which import each other (``report`` <-> ``report.build``), is a cycle."""
    found = _cycle()
    assert found is None, f"import cycle: {found}"


def test_losses_public_names_resolve_lazily_and_are_complete():
    """``losslab.losses.<Name>`` (what ``loss._target_`` names) is each loss class of the package, found on first
    use; importing ``losslab.losses.base`` (every loss module does) loads no other loss module; and a loss class
    added to a module but not to ``WHERE`` fails here, not in a user's config."""
    code = """
import inspect, importlib, pkgutil, sys
import losslab.losses.base
loaded = sorted(m for m in sys.modules if m.startswith("losslab.losses.") and m != "losslab.losses.base")
assert not loaded, loaded
import losslab.losses as L
for name, module in L.WHERE.items():
    obj = getattr(L, name)
    assert obj.__module__ == f"losslab.losses.{module}", (name, obj.__module__)
    assert name in dir(L)
defined = set()
for info in pkgutil.iter_modules(L.__path__):
    mod = importlib.import_module(f"losslab.losses.{info.name}")
    defined |= {n for n, o in vars(mod).items() if inspect.isclass(o) and o.__module__ == mod.__name__
                and issubclass(o, L.Loss) and not n.startswith("_")}
missing = defined - set(L.WHERE)
assert not missing, f"loss classes not in losslab.losses.WHERE: {sorted(missing)}"
try:
    L.NoSuchLoss
except AttributeError as e:
    assert "NoSuchLoss" in str(e)
else:
    raise AssertionError("NoSuchLoss resolved")
from hydra.utils import get_class
assert get_class("losslab.losses.Focal") is L.Focal
from losslab.losses import catalog  # a submodule still imports through the package
"""
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_every_module_imports_in_a_fresh_interpreter():
    names = sorted(n for n, p in _modules().items() if p.name != "__main__.py" and (p.parent / "__init__.py").exists())
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code, *names], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
