"""What does a sweep save over separate runs? Prints the ratio, asserts nothing.

The same N short jobs (pretrained MiniLM, task=regression, one per loss, S steps, one evaluation) run as one
multirun (``python train.py -m loss=mse,mae,...``: one process, Hydra's basic launcher; imports, tokenizer,
metric suites and the loaded and tokenized splits are shared by the jobs, and the sweep writes its report at
the end) and as N separate ``python train.py loss=...`` processes, alternating, R times each, in this one
invocation, each in a fresh output dir and store. Goal: sweep <= 0.8 x separate.

    python bench/sweep.py [--losses mse,mae,huber] [--steps 20] [--repeats 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

from overhead import timed  # bench/overhead.py: run a command, return its wall time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--losses", default="mse,mae,huber")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--train-rows", type=int, default=640)
    ap.add_argument("--eval-rows", type=int, default=256)
    a = ap.parse_args()
    losses = a.losses.split(",")
    py = sys.executable
    job = ["task=regression", f"trainer.max_steps={a.steps}", f"trainer.eval_steps={a.steps}",
           f"trainer.save_steps={a.steps}", f"task.max_train_samples={a.train_rows}",
           f"task.max_eval_samples={a.eval_rows}", "trainer.disable_tqdm=true"]
    sweeps, separate = [], []
    for i in range(a.repeats):
        with tempfile.TemporaryDirectory() as out:
            sweeps.append(timed([py, "train.py", "-m", f"loss={a.losses}", *job, f"paths.output_dir={out}"]))
        total = 0.0
        for loss in losses:
            with tempfile.TemporaryDirectory() as out:
                total += timed([py, "train.py", f"loss={loss}", *job, f"paths.output_dir={out}"])
        separate.append(total)
        print(f"repeat {i + 1}: sweep {sweeps[-1]:.1f}s, {len(losses)} separate runs {separate[-1]:.1f}s", flush=True)
    sw, sep = statistics.median(sweeps), statistics.median(separate)
    print(f"\n{len(losses)} jobs (MiniLM, {a.steps} steps x 32, {a.train_rows} train / {a.eval_rows} eval rows)")
    print(f"one sweep (-m)        median {sw:.1f}s  ({sw / len(losses):.1f}s per job, report included)")
    print(f"separate train.py     median {sep:.1f}s  ({sep / len(losses):.1f}s per job)")
    print(f"ratio                 {sw / sep:.3f}   (goal <= 0.8)")


if __name__ == "__main__":
    main()
