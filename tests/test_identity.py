"""A job's identity, for real: what is hashed is what is logged (a value filled in from the data included); the
data counts by its content, not where it lies; the losslab version is part of it, and a rerun under another
version says so. Real Hydra composition, a real MLflow sqlite store, the real train.py."""

from __future__ import annotations

import random

from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from conftest import QUICK, run_train, runs, store_uri
from losslab import identity, tracking

WORDS = "film plot acting score scene cast story music light pace ending dialogue".split()


def _csv(path, n: int, seed: int):
    """``n`` rows of three classes, named (a, b, c): the task finds its num_labels in train."""
    rng = random.Random(seed)
    lines = ["text,label"]
    for i in range(n):
        lines.append(f"{' '.join(rng.choices(WORDS, k=6))} {i},{'abc'[i % 3]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _classification(folder) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {split: _csv(folder / f"{split}.csv", n, seed)
             for split, n, seed in (("train", 60, 1), ("validation", 18, 2), ("test", 18, 3))}
    return ["task=csv_classification", *(f"task.data.{s}={f}" for s, f in files.items())]


def test_what_is_logged_is_what_was_hashed_with_num_labels_found_in_the_data(tmp_path):
    out = run_train(["-m", *_classification(tmp_path / "data"), *QUICK, "trainer.max_steps=2",
                     "trainer.eval_steps=2", "trainer.save_steps=2"], tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = [r for r in runs(tmp_path) if "mlflow.parentRunId" in r.data.tags]
    client = MlflowClient(store_uri(tmp_path))
    logged = OmegaConf.load(client.download_artifacts(run.info.run_id, "config/config.yaml", str(tmp_path)))
    assert logged.task.num_labels == 3  # filled in from the train split ...
    assert run.data.params["task.num_labels"] == "3"
    assert identity.config_hash(logged) == run.data.tags[identity.CONFIG_HASH_TAG]  # ... before it was hashed
    params = tracking.flatten(logged)
    assert {k: run.data.params[k] for k in params} == params
    # where it wrote is logged as it was, outside the identity
    assert run.data.params["trainer.output_dir"] == run.data.tags["losslab.checkpoint_dir"]
