"""Carry a study's MLflow store from one machine (or session) to the next through git, so a sweep too long for
one sitting finishes on a later one: ``save`` writes a consistent copy of the store, ``restore`` puts it back.

    python experiments/snapshot.py save    outputs/studies/F experiments/label_noise/store_3_epochs
    python experiments/snapshot.py restore experiments/label_noise/store_3_epochs outputs/studies/F

Then the study's own command, with ``paths.output_dir`` the restored folder, reuses every job that finished
before under the same losslab version (the code's hash: a job finished under other code runs again) and runs
the rest. The copy holds the store (``mlflow.db``, by SQLite's online backup, so a job writing
to it meanwhile leaves no torn file) and the artifacts of the finished runs (``artifacts/``: predictions,
configs; small). Checkpoints are not carried: a job stopped mid-way starts again from its first step.

The store records artifact locations as absolute paths under the output folder it was written in: restore into
the same path (this checkout's ``outputs/studies/<X>``), or the reports will not find the predictions.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

DB, STORE_ARTIFACTS, SNAPSHOT_ARTIFACTS = "mlflow.db", "mlartifacts", "artifacts"


def _finished_artifact_dirs(db: Path, root: Path) -> list[Path]:
    """The artifact folders, under ``root``, of the store's finished runs."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        uris = [u for (u,) in con.execute("select artifact_uri from runs where status = 'FINISHED'")]
    out = []
    for uri in uris:
        path = Path(uri.removeprefix("file://"))
        if path.is_dir() and path.resolve().is_relative_to(root):
            out.append(path.resolve())
    return out


def save(output_dir: str, snapshot: str) -> None:
    src, dst = Path(output_dir), Path(snapshot)
    if not (src / DB).is_file():
        sys.exit(f"snapshot: no MLflow store {src / DB} to save")
    dst.mkdir(parents=True, exist_ok=True)
    tmp = dst / (DB + ".tmp")
    with sqlite3.connect(f"file:{src / DB}?mode=ro", uri=True) as live, sqlite3.connect(tmp) as copy:
        live.backup(copy)
        copy.execute("vacuum")
    tmp.replace(dst / DB)
    root = (src / STORE_ARTIFACTS).resolve()
    shutil.rmtree(dst / SNAPSHOT_ARTIFACTS, ignore_errors=True)
    dirs = _finished_artifact_dirs(dst / DB, root)
    for d in dirs:
        shutil.copytree(d, dst / SNAPSHOT_ARTIFACTS / d.relative_to(root))
    print(f"snapshot: {dst / DB} and the artifacts of {len(dirs)} finished run(s) saved from {src}")


def restore(snapshot: str, output_dir: str) -> None:
    src, dst = Path(snapshot), Path(output_dir)
    if not (src / DB).is_file():
        sys.exit(f"snapshot: no saved store {src / DB}")
    if (dst / DB).exists():
        sys.exit(f"snapshot: {dst / DB} exists; not overwritten (move it away to restore the saved store)")
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / DB, dst / DB)
    if (src / SNAPSHOT_ARTIFACTS).is_dir():
        shutil.copytree(src / SNAPSHOT_ARTIFACTS, dst / STORE_ARTIFACTS, dirs_exist_ok=True)
    with sqlite3.connect(dst / DB) as con:
        n = con.execute("select count(*) from runs where status = 'FINISHED'").fetchone()[0]
    print(f"snapshot: {dst / DB} restored from {src} ({n} finished run(s))")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("save", "restore"):
        sys.exit("usage: python experiments/snapshot.py save <output_dir> <snapshot dir> | "
                 "restore <snapshot dir> <output_dir>")
    {"save": save, "restore": restore}[sys.argv[1]](sys.argv[2], sys.argv[3])
