"""A job's identity, for real: what is hashed is what is logged (a value filled in from the data included); the
data counts by its content, not where it lies; the losslab version is part of it, and a rerun under another
version says so. Real Hydra composition, a real MLflow sqlite store, the real train.py."""

from __future__ import annotations

import random

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from conftest import run_train, runs, store_uri
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


@pytest.mark.slow  # trains (model=tiny, 2 steps)
def test_what_is_logged_is_what_was_hashed_with_num_labels_found_in_the_data(tmp_path):
    out = run_train(["-m", *_classification(tmp_path / "data"), "debug=quick", "trainer.max_steps=2",
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


# the data by content, not by place ------------------------------------------------------------------------

JOB = ["task=regression", "loss=huber", "seed=3", "trainer.output_dir=x", "tracking.run_name=x"]  # no Hydra run


def _copied_vader(folder) -> list[str]:
    """The shipped VADER files copied elsewhere (a moved checkout), as overrides pointing the task at them."""
    import shutil

    from losslab.paths import resource

    folder.mkdir(parents=True, exist_ok=True)
    split = {s: shutil.copy(resource(f"vader/{s}.jsonl.gz"), folder / f"{s}.jsonl.gz")
             for s in ("train", "validation", "test")}
    return [f"task.data.{s}={p}" for s, p in split.items()]


def test_a_moved_checkout_is_the_same_job_and_edited_data_is_another(tmp_path):
    from conftest import ROOT, compose

    here = identity.of(compose(JOB))
    moved = compose([*JOB, *_copied_vader(tmp_path / "elsewhere"), f"paths.root={tmp_path}"])
    assert identity.of(moved) == here  # same bytes elsewhere: the same job
    assert str(ROOT) not in repr(identity.computed(moved)) and str(tmp_path) not in repr(identity.computed(moved))
    test_file = tmp_path / "elsewhere" / "test.jsonl.gz"
    test_file.write_bytes(test_file.read_bytes() + b"\n")  # one byte more in the test split
    edited = identity.of(moved)
    assert edited.config_hash != here.config_hash and edited.job_key != here.job_key


def test_own_csv_data_counts_by_content(tmp_path):
    from conftest import compose

    outside_hydra = ["trainer.output_dir=x", "tracking.run_name=x"]
    first = identity.of(compose([*_classification(tmp_path / "a"), *outside_hydra]))
    moved = [*_classification(tmp_path / "b"), *outside_hydra]  # the same rows in another folder
    assert identity.of(compose(moved)) == first
    _csv(tmp_path / "b" / "train.csv", 60, seed=9)  # other rows, same path
    assert identity.of(compose(moved)).config_hash != first.config_hash


# the losslab version ----------------------------------------------------------------------------------------

def test_another_version_is_another_job_with_the_same_key(monkeypatch):
    from conftest import compose

    import losslab

    now = identity.of(compose(JOB))
    monkeypatch.setattr(losslab, "__version__", "0.0.1")
    old = identity.of(compose(JOB))
    assert old.version == f"0.0.1+{identity.source_digest()}"
    assert old.config_hash != now.config_hash and old.job_key == now.job_key
    monkeypatch.undo()
    monkeypatch.setattr(identity, "source_digest", lambda: "0123456789ab")  # the code changed, not __version__
    edited = identity.of(compose(JOB))
    assert edited.config_hash != now.config_hash and edited.job_key == now.job_key


def _finished_run(cfg, job: identity.Identity) -> str:
    """A FINISHED run of ``job`` in ``cfg``'s store, as an earlier train.py would have left it."""
    client = MlflowClient(cfg.tracking.uri)
    exp = tracking.ensure_experiment(cfg.tracking.uri, cfg.tracking.experiment)
    run = client.create_run(exp, tags=job.tags())
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def test_a_config_finished_only_under_another_version_is_rerun_and_says_so(tmp_path, monkeypatch):
    from conftest import compose

    from losslab import resume

    cfg = compose([*JOB, f"paths.output_dir={tmp_path}"])
    now = identity.of(cfg)
    monkeypatch.setattr(identity, "version", lambda: "0.0.1")
    _finished_run(cfg, identity.of(cfg))
    monkeypatch.undo()

    previous = resume.previous_attempt(cfg, now)
    assert previous.finished is None and previous.other_versions == ["0.0.1"]
    assert previous.version_note(now.version) == (
        f"finished runs of this config exist under losslab 0.0.1; rerunning under {identity.version()}")

    done = _finished_run(cfg, now)  # once it finished under this version, it is reused, without a note
    previous = resume.previous_attempt(cfg, now)
    assert previous.finished.info.run_id == done and previous.version_note(now.version) is None


@pytest.mark.slow  # trains (model=tiny, 2 steps)
def test_a_sweep_rerun_under_another_version_says_so_once_and_counts_the_job_once(tmp_path):
    args = ["-m", "task=regression", "loss=mse", "debug=quick", "trainer.max_steps=2", "trainer.eval_steps=2",
            "trainer.save_steps=2"]
    first = run_train(args, tmp_path, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    [old] = [r for r in runs(tmp_path) if "mlflow.parentRunId" in r.data.tags]
    client = MlflowClient(store_uri(tmp_path))
    client.set_tag(old.info.run_id, identity.VERSION_TAG, "0.0.1")  # as if finished under an earlier losslab
    client.set_tag(old.info.run_id, identity.CONFIG_HASH_TAG, "0123456789abcdef")

    again = run_train(args, tmp_path, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    note = f"losslab: finished runs of this config exist under losslab 0.0.1; rerunning under {identity.version()}"
    assert again.stdout.count(note) == 1 and "already finished" not in again.stdout
    children = [r for r in runs(tmp_path) if "mlflow.parentRunId" in r.data.tags]
    [parent] = [r for r in runs(tmp_path) if "mlflow.parentRunId" not in r.data.tags]
    assert len(children) == 2 and parent.data.tags["children.finished"] == "1"  # the job counts once


# the NER corpus's datasets cache ------------------------------------------------------------------------------

def test_an_edited_ner_corpus_is_not_served_from_a_stale_cache(tmp_path, monkeypatch):
    import datasets

    from losslab.tasks import ner

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "ner.txt"

    def write(tag):
        corpus.write_text("\n\n".join(f"word{i}\tO\nname{i}\t{tag}" for i in range(40)) + "\n")

    write("B-person")
    before = ner.load(str(corpus))
    assert {t for row in before["train"]["tags"] for t in row} == {"O", "B-person"}
    write("B-company")  # the same path, other content
    after = ner.load(str(corpus))
    assert {t for row in after["train"]["tags"] for t in row} == {"O", "B-company"}
    assert after["train"]._fingerprint != before["train"]._fingerprint  # so the tokenized cache moves on too
