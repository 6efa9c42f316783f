"""Built-in tasks on VADER, and bring-your-own data in CSV, JSON lines and Parquet."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import compose, run_train, runs

from losslab.tasks import data, encoding, vader
from losslab.errors import DataError


def test_domain_task_labels_are_the_four_sources():
    ds, names = data.load_splits(compose(["task=domain"]).task)
    assert names == ["tweets", "movie_reviews", "nyt_editorials", "amazon_reviews"]
    counts = Counter(label for s in vader.SPLITS for label in ds[s]["label"])
    assert [counts[i] for i in range(4)] == [4200, 10605, 5190, 3708]
    for split in vader.SPLITS:
        assert all(vader.SOURCES[lab] == src for lab, src in zip(ds[split]["label"], ds[split]["source"]))


def test_multilabel_task_follows_its_rule():
    ds, names = data.load_splits(compose(["task=multilabel"]).task)
    assert names == ["negative", "neutral", "positive", "intense"]
    for row in ds["validation"]:
        r, n = row["ratings"], len(row["ratings"])
        expected = [sum(v < 0 for v in r) / n >= 0.2, sum(v == 0 for v in r) / n >= 0.2,
                    sum(v > 0 for v in r) / n >= 0.2, sum(abs(v) >= 3 for v in r) / n >= 0.2]
        assert row["labels"] == [int(e) for e in expected]


def _write(tmp_path, fmt, splits):
    """Write {split: [rows]} as csv / jsonl / parquet files; return the task overrides naming them."""
    import pandas as pd

    overrides = []
    for split, rows in splits.items():
        frame = pd.DataFrame(rows)
        path = tmp_path / f"{split}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        elif fmt == "jsonl":
            frame.to_json(path, orient="records", lines=True)
        else:
            frame.to_parquet(path)
        overrides.append(f"task.data.{split}={path}")
    return overrides


ROWS = {
    "train": [{"text": f"great movie {i}", "label": "pos"} for i in range(6)]
    + [{"text": f"awful plot {i}", "label": "neg"} for i in range(6)],
    "validation": [{"text": "great", "label": "pos"}, {"text": "awful", "label": "neg"}],
    "test": [{"text": "lovely", "label": "pos"}, {"text": "boring", "label": "neg"}],
}


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_bring_your_own_classification_data_infers_classes(tmp_path, fmt):
    task = compose(["task=csv_classification", *_write(tmp_path, fmt, ROWS)]).task
    ds, names = data.load_splits(task)
    assert names == ["neg", "pos"]
    assert ds["train"]["label"][:1] == [1] and ds["test"]["label"] == [1, 0]


def test_bring_your_own_regression_with_text_pairs(tmp_path):
    rows = {s: [{"a": f"s{i}", "b": f"t{i}", "score": i / 2} for i in range(4)] for s in vader.SPLITS}
    task = compose(["task=csv_regression", "task.text_column=a", "task.text_pair_column=b",
                    "task.label_column=score", *_write(tmp_path, "csv", rows)]).task
    ds, _ = data.load_splits(task)
    assert ds["validation"]["score"] == [0.0, 0.5, 1.0, 1.5]


@pytest.mark.parametrize("case,message", [
    ("unknown_class", "test row 1 (", ),
    ("not_a_number", "train row 2 ("),
    ("empty", "the validation split"),
    ("missing_column", "has no column 'label' (task.label_column)"),
    ("missing_value", "train row 3 ("),
])
def test_bad_bring_your_own_data_is_named(tmp_path, case, message):
    rows = {s: [dict(r) for r in v] for s, v in ROWS.items()}
    task = ["task=csv_classification"]
    if case == "unknown_class":
        rows["test"][1]["label"] = "meh"
    elif case == "not_a_number":
        task = ["task=csv_regression"]
        rows = {s: [{"text": r["text"], "label": 1.0} for r in v] for s, v in ROWS.items()}
        rows["train"][2]["label"] = "abc"
    elif case == "missing_value":
        task = ["task=csv_regression"]
        rows = {s: [{"text": r["text"], "label": 1.0} for r in v] for s, v in ROWS.items()}
        rows["train"][3]["label"] = None
    elif case == "missing_column":
        rows = {s: [{"text": r["text"], "y": r["label"]} for r in v] for s, v in ROWS.items()}
    if case == "empty":
        (tmp_path / "validation.jsonl").write_text("")
        overrides = _write(tmp_path, "jsonl", {k: v for k, v in rows.items() if k != "validation"})
        overrides.append(f"task.data.validation={tmp_path / 'validation.jsonl'}")
    else:
        overrides = _write(tmp_path, "csv" if case in ("not_a_number", "missing_value") else "jsonl", rows)
    with pytest.raises(DataError) as err:
        data.load_splits(compose([*task, *overrides]).task)
    assert message in str(err.value)
    if case == "missing_value":
        assert "is empty or marked missing" in str(err.value)
    if case in ("unknown_class", "not_a_number"):
        assert "column 'label'" in str(err.value) and ("'meh'" in str(err.value) or "'abc'" in str(err.value))


def _predictions(out, run, split):
    """``(items, predictions, labels)`` of a finished run's ``predictions/<split>.parquet`` artifact."""
    from mlflow.tracking import MlflowClient

    from losslab import predictions

    from conftest import store_uri

    path = MlflowClient(store_uri(out)).download_artifacts(run.info.run_id, f"predictions/{split}.parquet", str(out))
    return predictions.read(path)


@pytest.mark.slow
@pytest.mark.parametrize("task,metric", [("domain", "test_macro_f1"), ("multilabel", "test_lrap")])
def test_builtin_task_trains_end_to_end(tmp_path, task, metric):
    import numpy as np
    from sklearn.metrics import f1_score, label_ranking_average_precision_score

    out = run_train([f"task={task}", "debug=quick"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = runs(tmp_path)
    assert run.info.status == "FINISHED" and metric in run.data.metrics
    assert run.data.params["task.label.0"] in ("tweets", "negative")
    # the logged metric is what scikit-learn makes of the run's own test predictions
    items, scores, labels = _predictions(tmp_path, run, "test")
    assert len(items) == 32 and scores.shape == (32, 4)
    if task == "domain":
        expected = f1_score(labels.astype(int), scores.argmax(1), average="macro", labels=range(4))
    else:
        expected = label_ranking_average_precision_score(labels.astype(int), scores)
    assert run.data.metrics[metric] == pytest.approx(float(expected), abs=1e-6)
    assert np.isfinite(scores).all()


@pytest.mark.slow
def test_bring_your_own_csv_end_to_end_and_a_missing_file_leaves_no_run(tmp_path):
    overrides = _write(tmp_path, "csv", ROWS)
    out = run_train(["task=csv_classification", *overrides, "debug=quick"], tmp_path / "out")
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = runs(tmp_path / "out")
    assert run.data.params["task.label.0"] == "neg" and run.data.params["task.label.1"] == "pos"
    assert run.data.params["task.num_labels"] == "2"
    bad = run_train(["task=csv_classification", *overrides, f"task.data.test={tmp_path}/nope.csv", "debug=quick"],
                    tmp_path / "bad")
    assert bad.returncode == 2 and f"the test file {tmp_path}/nope.csv does not exist (task.data.test)" in bad.stderr
    assert runs(tmp_path / "bad") == []


def test_ner_corpus_and_its_fixed_split():
    ds, names = data.load_splits(compose(["task=ner"]).task)
    assert sum(len(ds[s]) for s in vader.SPLITS) == 2394
    assert len(names) == 21 and len({n[2:] for n in names if n != "O"}) == 10
    texts = {s: {" ".join(r["tokens"]) for r in ds[s]} for s in vader.SPLITS}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["validation"]
    assert all(len(r["tokens"]) == len(r["tags"]) for r in ds["validation"])


def test_ner_word_pieces_carry_the_word_tag_on_the_first_piece_only():
    from losslab import models

    cfg = compose(["task=ner", "model=tiny", "task.max_train_samples=40", "task.max_eval_samples=10"])
    splits, _ = data.load_splits(cfg.task)
    _, tok = models.build(cfg.model, cfg.task)
    enc = encoding.encode(splits, tok, cfg.task)
    for raw, row in zip(splits["validation"], enc["validation"]):
        words = tok(raw["tokens"], is_split_into_words=True, truncation=True, max_length=64).word_ids()
        first = [i for i, w in enumerate(words) if w is not None and (i == 0 or words[i - 1] != w)]
        assert [row["labels"][i] for i in first] == raw["tags"][: len(first)]
        assert all(row["labels"][i] == -100 for i in range(len(words)) if i not in first)


def test_entities_suite_matches_seqeval():
    from seqeval.metrics import f1_score

    from losslab import metrics

    names = ["B-person", "I-person", "O"]
    refs = [[2, 0, 1, -100, 2], [0, 2, -100]]
    preds = [[2, 0, 2, 1, 2], [0, 2, 0]]
    got = metrics.load("entities").compute(predictions=preds, references=refs, label_names=names)
    true = [["O", "B-person", "I-person", "O"], ["B-person", "O"]]
    pred = [["O", "B-person", "O", "O"], ["B-person", "O"]]
    assert got["f1"] == pytest.approx(f1_score(true, pred))
    assert got["accuracy"] == pytest.approx(5 / 6)


@pytest.mark.slow
def test_ner_trains_end_to_end_with_entity_metrics(tmp_path):
    out = run_train(["task=ner", "loss=focal", "debug=quick"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = runs(tmp_path)
    assert run.data.params["task.label.0"] == "B-company"
    # the logged entity metrics are seqeval's on the run's own test predictions (tags read back by name)
    from seqeval.metrics import f1_score, precision_score, recall_score

    names = [run.data.params[f"task.label.{i}"] for i in range(21)]
    _, preds, labels = _predictions(tmp_path, run, "test")
    true, pred = [], []
    for p, y in zip(preds.astype(int), labels.astype(int)):
        scored = y != -100
        true.append([names[t] for t in y[scored]])
        pred.append([names[t] for t in p[scored]])
    assert sum(map(len, true)) > 300  # tokens of 32 tweets
    flat = [(a, b) for t, q in zip(true, pred) for a, b in zip(t, q)]
    expected = {"precision": precision_score(true, pred, zero_division=0),
                "recall": recall_score(true, pred, zero_division=0), "f1": f1_score(true, pred, zero_division=0),
                "accuracy": sum(a == b for a, b in flat) / len(flat)}
    for name, value in expected.items():
        assert run.data.metrics[f"test_{name}"] == pytest.approx(value, abs=1e-6), name


def test_perplexity_path_equals_exp_of_the_mean_next_token_cross_entropy():
    import numpy as np
    import torch

    from losslab import metrics

    torch.manual_seed(0)
    logits = torch.randn(3, 6, 50)
    labels = torch.randint(0, 50, (3, 6))
    labels[0, 4:] = -100
    nll = metrics.next_token_nll(logits, labels)
    got = metrics.load("perplexity").compute(predictions=[list(r) for r in nll.numpy()],
                                             references=[list(r) for r in labels.numpy()])
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 50), labels[:, 1:].reshape(-1))
    assert got["nll"] == pytest.approx(ce.item(), rel=1e-5)
    assert got["perplexity"] == pytest.approx(float(np.exp(ce.item())), rel=1e-5)


def test_lm_labels_are_the_tokens():
    from losslab import models

    cfg = compose(["task=lm", "model=tiny", "task.max_train_samples=8", "task.max_eval_samples=4"])
    splits, _ = data.load_splits(cfg.task)
    _, tok = models.build(cfg.model, cfg.task)
    enc = encoding.encode(splits, tok, cfg.task)
    assert all(r["labels"] == r["input_ids"] for r in enc["train"])


@pytest.mark.slow
def test_lm_trains_end_to_end_with_chunked_cross_entropy(tmp_path):
    import math

    out = run_train(["task=lm", "loss=chunked_cross_entropy", "debug=quick", "model=gpt_small", "hardware=cpu",
                     "model.architecture.n_layer=1", "model.architecture.n_embd=32", "model.architecture.n_head=2",
                     "trainer.learning_rate=1e-2", "trainer.warmup_steps=0"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = runs(tmp_path)
    metrics = run.data.metrics
    assert run.data.tags["choice.model"] == "gpt_small"
    assert run.data.params["loss._target_"] == "losslab.losses.ChunkedCrossEntropy"
    # test_loss is the chunked loss (hidden states x output embedding, never the logits) on the 32 test rows,
    # one evaluation batch; test_nll is the metric suite's, from the full logits: the chunked path ran, and right
    assert metrics["test_loss"] == pytest.approx(metrics["test_nll"], rel=1e-4)
    assert metrics["test_perplexity"] == pytest.approx(math.exp(metrics["test_nll"]), rel=1e-4)
    # and it learned: a random model is near the vocabulary's 30,522 (30,700 here); 6 steps at a high rate
    # halve it (14,400)
    assert metrics["test_perplexity"] < 20000


def test_rating_distributions_and_their_levels():
    import torch

    from losslab.tasks.labels import LevelsFromDistribution

    ds, names = data.load_splits(compose(["task=rating_dist"]).task)
    assert names == [str(v) for v in range(-4, 5)]
    rows = ds["validation"]
    for row in rows:
        assert sum(row["distribution"]) == pytest.approx(1.0)
        assert row["distribution"][row["ratings"][0] + 4] > 0
    dist = torch.tensor(rows["distribution"][:50])
    means = torch.tensor([sum(r) / len(r) for r in rows["ratings"][:50]])
    expected = torch.floor(means + 4 + 0.5).long()
    assert torch.equal(LevelsFromDistribution.levels(dist), expected)


def test_levels_adapter_hands_on_items_not_label_elements():
    import torch

    from losslab.losses import CrossEntropy
    from losslab.tasks.labels import LevelsFromDistribution

    dist = torch.zeros(4, 9)
    dist[torch.arange(4), torch.tensor([0, 3, 8, 4])] = 1.0
    logits = torch.randn(4, 9)
    wrapped = LevelsFromDistribution(CrossEntropy(), 9)
    # the Trainer counts 4 x 9 label elements for these labels: 4 items
    got = wrapped({"logits": logits}, dist, num_items_in_batch=torch.tensor(36.0))
    assert got.item() == pytest.approx(CrossEntropy()({"logits": logits}, torch.tensor([0, 3, 8, 4])).item(), rel=1e-6)


def test_ratings_suite_kl_and_level_error_by_hand():
    import numpy as np

    from losslab import metrics

    t = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    q = np.array([[0.25, 0.5, 0.25], [0.2, 0.3, 0.5]])
    got = metrics.load("ratings").compute(predictions=np.log(q), references=t)
    kl = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.5) + 1.0 * np.log(1 / 0.5)
    assert got["kl"] == pytest.approx(kl / 2)
    # levels: mean 0.5 -> rounds half up to 1 (predicted 1: right); 2 (predicted 2: right)
    assert got["accuracy"] == 1.0 and got["level_mae"] == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["soft_cross_entropy", "coral"])
def test_rating_dist_trains_end_to_end(tmp_path, loss):
    out = run_train(["task=rating_dist", f"loss={loss}", "debug=quick"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = runs(tmp_path)
    assert {"test_kl", "test_level_mae", "test_accuracy"} <= set(run.data.metrics)


def test_rating_dist_refuses_the_heads_own_loss(tmp_path):
    out = run_train(["task=rating_dist", "loss=model_loss", "debug=quick"], tmp_path)
    assert out.returncode == 2 and "its labels are distributions" in out.stderr
    assert runs(tmp_path) == []


def test_wordnet_pairs_and_their_split_by_word():
    from losslab.tasks import wordnet

    ds, _ = data.load_splits(compose(["task=seq2seq"]).task)
    assert {s: len(ds[s]) for s in vader.SPLITS} == {"train": 12000, "validation": 300, "test": 1000}
    full, _ = data.load_splits(compose(["task=seq2seq", "task.max_eval_samples=null"]).task)
    words = {s: set(full[s]["word"]) for s in vader.SPLITS}
    assert not (words["train"] & words["validation"]) and not (words["train"] & words["test"])
    assert not (words["validation"] & words["test"])
    for row in full["test"].select(range(200)):
        assert row["source"] == f"define: {row['word']} ({row['pos']})" and wordnet.split_of(row["word"]) == "test"
        assert 3 <= len(row["target"].split()) <= 16 and '"' not in row["target"]
    assert wordnet.definition('a member of the genus Canis; "the dog barked all night"') == \
        "a member of the genus Canis"


@pytest.mark.skipif(not __import__("pathlib").Path("/usr/share/wordnet/data.noun").is_file(),
                    reason="Debian's wordnet-base is not installed (make test installs it)")
def test_wordnet_subset_rebuilds_byte_for_byte_from_debian_wordnet(tmp_path):
    from losslab.paths import resource
    from losslab.tasks import wordnet

    assert wordnet.build(out_dir=tmp_path) == wordnet.SIZES
    shipped = __import__("pathlib").Path(resource("wordnet/README.md")).parent
    for split in vader.SPLITS:
        assert (tmp_path / f"{split}.jsonl.gz").read_bytes() == (shipped / f"{split}.jsonl.gz").read_bytes()


def test_seq2seq_targets_drop_the_start_token_and_keep_the_end_token():
    from losslab import models

    cfg = compose(["task=seq2seq", "model=tiny", "task.max_train_samples=4", "task.max_eval_samples=4"])
    ds, _ = data.load_splits(cfg.task)
    model, tokenizer = models.build(cfg.model, cfg.task)
    encoded = encoding.encode(ds, tokenizer, cfg.task)
    row, raw = encoded["train"][0], ds["train"][0]
    assert row["labels"][-1] == tokenizer.sep_token_id and row["labels"][0] != tokenizer.cls_token_id
    assert tokenizer.decode(row["labels"], skip_special_tokens=True) == tokenizer.decode(
        tokenizer(raw["target"])["input_ids"], skip_special_tokens=True)
    batch = encoding.collator(cfg.task.kind, tokenizer, model=model)([encoded["train"][i] for i in range(4)])
    # the decoder reads [CLS] + the targets shifted right; the loss compares its logits with the unshifted targets
    assert (batch["decoder_input_ids"][:, 0] == tokenizer.cls_token_id).all()
    first = batch["labels"][0]
    assert batch["decoder_input_ids"][0, 1:int((first != -100).sum())].tolist() == \
        first[: int((first != -100).sum()) - 1].tolist()
    assert model.config.decoder_start_token_id == tokenizer.cls_token_id
    assert model.generation_config.eos_token_id == tokenizer.sep_token_id


def test_generation_suite_by_hand():
    from losslab import metrics

    out = metrics.load("generation").compute(predictions=["a small dog", "the cat sat"],
                                             references=["a small dog", "a cat sat down"])
    # ROUGE-L F1: 1.0, and LCS("the cat sat", "a cat sat down") = 2 → P 2/3, R 2/4 → F 4/7
    assert out["rougeL"] == pytest.approx((1.0 + 4 / 7) / 2)
    assert out["exact_match"] == 0.5 and 0 < out["chrf"] < 100


@pytest.mark.slow
def test_seq2seq_trains_end_to_end_on_generated_text(tmp_path):
    out = run_train(["task=seq2seq", "loss=label_smoothing", "debug=quick", "task.max_eval_samples=8"], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = runs(tmp_path)
    assert run.info.status == "FINISHED"
    for key in ("test_rougeL", "test_chrf", "test_exact_match", "eval_rougeL", "objective"):
        assert key in run.data.metrics, key
    assert run.data.params["trainer.metric_for_best_model"] == "rougeL"
