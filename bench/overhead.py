"""How much does losslab cost over a hand-written Trainer script? Prints ratios, asserts nothing.

Runs the same short job (pretrained MiniLM, task=regression, loss=mse, N steps, one evaluation) through
``train.py``, through ``bench/bare_trainer.py`` (the same Trainer built by hand) and through the same script with
its metrics from an ``evaluate`` module (as Hugging Face's example scripts), alternating, R times each,
in this one invocation; reports the median wall time of each (whole processes: imports, data, model, MLflow,
training, evaluation) and their ratio (goal <= 1.03). Also times ``python train.py --cfg job``.

    python bench/overhead.py [--steps 30] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--train-rows", type=int, default=960)
    ap.add_argument("--eval-rows", type=int, default=256)
    a = ap.parse_args()
    py = sys.executable
    cfg_times = [timed([py, "train.py", "--cfg", "job"]) for _ in range(5)]
    losslab_times, bare_times, evaluate_times = [], [], []
    for i in range(a.repeats):
        with tempfile.TemporaryDirectory() as out:
            losslab_times.append(timed([
                py, "train.py", "task=regression", "loss=mse", "hardware=cpu", f"paths.output_dir={out}",
                f"trainer.max_steps={a.steps}", f"trainer.eval_steps={a.steps}", f"trainer.save_steps={a.steps}",
                f"task.max_train_samples={a.train_rows}", f"task.max_eval_samples={a.eval_rows}",
                "trainer.disable_tqdm=true",
            ]))
        with tempfile.TemporaryDirectory() as out:
            bare_times.append(timed([py, "bench/bare_trainer.py", out, str(a.steps), str(a.train_rows),
                                     str(a.eval_rows)]))
        with tempfile.TemporaryDirectory() as out:
            evaluate_times.append(timed([py, "bench/bare_trainer.py", out, str(a.steps), str(a.train_rows),
                                         str(a.eval_rows), "evaluate"]))
        print(f"repeat {i + 1}: train.py {losslab_times[-1]:.1f}s, bare Trainer {bare_times[-1]:.1f}s, "
              f"bare Trainer + evaluate {evaluate_times[-1]:.1f}s", flush=True)
    ll, bare, ev = (statistics.median(t) for t in (losslab_times, bare_times, evaluate_times))
    print(f"\njob: MiniLM, {a.steps} steps x 32, {a.train_rows} train / {a.eval_rows} eval rows, {a.repeats} repeats")
    print(f"train.py          median {ll:.1f}s")
    print(f"bare Trainer      median {bare:.1f}s")
    print(f"bare + evaluate   median {ev:.1f}s   (metrics by an evaluate module, as Hugging Face's example scripts)")
    print(f"ratio             {ll / bare:.3f}   (goal <= 1.03)")
    print(f"overhead          {ll - bare:+.1f}s per job (fixed: Hydra start-up, importing evaluate, MLflow "
          f"params and config artifact); min-to-min {min(losslab_times) - min(bare_times):+.1f}s")
    print(f"ratio vs bare + evaluate {ll / ev:.3f}   ({ll - ev:+.1f}s; `import evaluate` alone costs "
          f"{ev - bare:+.1f}s here: it imports transformers.pipelines)")
    print(f"train.py --cfg job  median {statistics.median(cfg_times):.2f}s over {len(cfg_times)} runs")


if __name__ == "__main__":
    main()
