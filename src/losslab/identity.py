"""The identity of a job and of a sweep: what makes two jobs "the same job".

A job's identity is its composed, resolved config less where it writes (output dirs, the store), with every
data file it reads replaced by a fingerprint of its content (so a moved checkout or a copied data file is the
same job, an edited one is another), and the losslab version it runs under (so a rerun after a fix to a loss
does not silently reuse runs of the old code). The same config under another version keeps its ``job_key``:
that is how a rerun can say "finished runs of this config exist under losslab X".

Nothing here touches MLflow: :mod:`losslab.resume` looks jobs up by these hashes, :mod:`losslab.tracking`
writes them as tags.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

# the tags a job's identity is written as (named in losslab.store, with every other tag)
from losslab.store import CHECKPOINTS_TAG, CONFIG_HASH_TAG, JOB_KEY_TAG, SWEEP_HASH_TAG, VERSION_TAG  # noqa: F401

# where a job writes, not what it computes: left out of the identity of a job (and ``report`` / ``race``: what
# the sweep asks of the runs, not what a run computes, so a race reuses an ordinary sweep's jobs and back)
PLACE_KEYS = {"paths": None, "tracking": None, "report": None, "race": None,
              "trainer": ("output_dir", "logging_dir", "disable_tqdm")}


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------- data content

_FILE_DIGESTS: dict[tuple, str] = {}  # (path, size, mtime_ns, inode) -> sha256 of the content: per process


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (a folder: of its files' relative names and bytes), memoized per process by
    path, size and modification time, so a sweep reads each data file once."""
    path = Path(path).resolve()
    if path.is_dir():
        h = hashlib.sha256()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f"{child.relative_to(path).as_posix()}\0{file_digest(child)}\n".encode())
        return h.hexdigest()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _FILE_DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _FILE_DIGESTS[key] = h.hexdigest()
    return _FILE_DIGESTS[key]


def _local(value: str) -> Path | None:
    """The local file or folder a config string names (``pkg:<package>/<path>`` too), else None (a builder name
    like ``csv``, a hub id, a URL)."""
    from losslab.paths import package_path

    if "://" in value:
        return None
    if value.startswith("pkg:"):
        try:
            return Path(package_path(value))
        except (FileNotFoundError, ValueError):
            return None
    if os.sep not in value and not Path(value).is_file():
        return None
    return Path(value) if Path(value).exists() else None


def by_content(node):
    """``node`` (a task's ``data`` subtree) with every local file or folder it names replaced by
    ``sha256:<digest of its content>``: where the data lies is not part of what the job computes."""
    if isinstance(node, dict):
        return {k: by_content(v) for k, v in node.items()}
    if isinstance(node, list):
        return [by_content(v) for v in node]
    if isinstance(node, str):
        found = _local(node)
        if found is not None:
            return f"sha256:{file_digest(found)}"
    return node


# --------------------------------------------------------------------------------------------- a job

@dataclass(frozen=True)
class Identity:
    """A job's identity: ``config_hash`` (this config, this data, this losslab version) and ``job_key`` (the
    same without the version)."""

    config_hash: str
    job_key: str
    version: str

    def tags(self) -> dict[str, str]:
        return {CONFIG_HASH_TAG: self.config_hash, JOB_KEY_TAG: self.job_key, VERSION_TAG: self.version}


def computed(cfg: DictConfig) -> dict:
    """What the job computes: its resolved config less where it writes, its data by content."""
    conf = OmegaConf.to_container(cfg, resolve=True)
    for key, fields in PLACE_KEYS.items():
        if fields is None:
            conf.pop(key, None)
        else:
            for f in fields:
                conf.get(key, {}).pop(f, None)
    task = conf.get("task", {})
    if not task.get("label_noise", 1):  # no noise (the default): as before the knob existed
        task.pop("label_noise")
    if isinstance(task.get("data"), dict):
        task["data"] = by_content(task["data"])
    return conf


_SOURCE_DIGEST: list[str] = []  # this process's losslab code, hashed once


def source_digest(root: str | Path | None = None) -> str:
    """SHA-256 (first 12 hex digits) of the code that decides a job's results: every ``.py`` file of the
    package (``src/losslab/**/*.py``: the losses, the wiring, the metric modules), by relative path and content,
    in sorted order. Computed once per process for the installed package (``root``: another folder)."""
    if root is None and _SOURCE_DIGEST:
        return _SOURCE_DIGEST[0]
    folder = Path(root) if root is not None else Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts):
        h.update(f"{path.relative_to(folder).as_posix()}\0".encode())
        h.update(path.read_bytes())
        h.update(b"\0")
    value = h.hexdigest()[:12]
    if root is None:
        _SOURCE_DIGEST.append(value)
    return value


def version() -> str:
    """The losslab version a job runs under: ``__version__`` and the hash of the package's code
    (``0.1.0+3f2a9c0d1e2b``), so that any change to the code (a loss fixed, a metric changed) is another
    version, whether or not ``__version__`` was bumped. The data are in the identity by content already."""
    import losslab

    return f"{losslab.__version__}+{source_digest()}"


def of(cfg: DictConfig) -> Identity:
    """The identity of the job ``cfg`` describes. Two jobs with the same ``config_hash`` compute the same thing
    with the same code, whatever their directories, checkout or sweep."""
    key = digest(computed(cfg))
    ver = version()
    return Identity(config_hash=digest({"job": key, "losslab": ver}), job_key=key, version=ver)


def config_hash(cfg: DictConfig) -> str:
    """:func:`of`'s ``config_hash``: the MLflow tag ``losslab.config_hash`` of the job's runs."""
    return of(cfg).config_hash


# --------------------------------------------------------------------------------------------- a sweep

def sweep_hash(config: DictConfig) -> str:
    """The identity of a sweep: its command-line overrides and sweeper parameters, less hydra/ overrides
    (the same sweep on another launcher is the same sweep)."""
    params = config.hydra.sweeper.get("params")
    params = OmegaConf.to_container(params, resolve=False) if params is not None else {}
    return digest({"overrides": sorted(config.hydra.overrides.task), "params": params,
                   "experiment": config.tracking.experiment})
