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


# packages whose ``__init__`` still imports modules that import their siblings (``losslab.losses``: its
# ``__init__`` is the public names ``loss._target_`` uses); held to the rule as soon as they no longer need this
EXEMPT = {"losslab.losses"}


def _with_packages(imported: set[str], modules, exempt=frozenset()) -> set[str]:
    """What importing these modules runs: each module, and every package above it (its ``__init__``), below
    ``losslab`` itself (whose ``__init__`` runs first in any case and imports only ``losslab.config``)."""
    out = set(imported)
    for name in imported:
        parts = name.split(".")
        out |= {".".join(parts[:i]) for i in range(2, len(parts))} & modules.keys() - exempt
    return out


def _cycle(exempt=frozenset()) -> str | None:
    """An import cycle among losslab's modules, counting that importing ``a.b.c`` runs the package ``a.b``."""
    modules = _modules()
    graph = {name: _with_packages(_imports(name, path, modules), modules, exempt) - {name}
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
    found = _cycle(frozenset(EXEMPT))
    assert found is None, f"import cycle: {found}"
    for package in sorted(EXEMPT):
        assert _cycle(frozenset(EXEMPT - {package})), f"{package} no longer needs its exemption: remove it from EXEMPT"


def test_every_module_imports_in_a_fresh_interpreter():
    names = sorted(n for n, p in _modules().items() if p.name != "__main__.py" and (p.parent / "__init__.py").exists())
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code, *names], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
