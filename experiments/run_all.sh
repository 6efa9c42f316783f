#!/usr/bin/env bash
# Every committed study, on one machine: two chains of study sweeps side by side, each sweep's jobs sharing the
# device through Hydra's joblib launcher. This is how the v2 reports in experiments/ were made, on one H200
# (experiments/README.md). Resumable: run it again and finished jobs are reused, stopped ones rerun.
#
#   bash experiments/run_all.sh                          # one CUDA GPU, 6 + 8 jobs at once, store in outputs/studies
#   OUT_DIR=/fast/disk NA=3 NB=3 bash experiments/run_all.sh
#   HW=cpu NA=1 NB=1 EXTRA="debug=quick" bash experiments/run_all.sh     # a smoke run of the wiring on a CPU
#   DEADLINE=600 bash experiments/run_all.sh             # stop what is left after 600 s (runs end KILLED)
#
# Then: python -m losslab.report <sweep dir> --out experiments/<study> (the sweep dirs are printed at the end),
# python experiments/claims.py <study>=<sweep dir> ... and experiments/label_noise/degradation.py <sweep dir>.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-python}; HW=${HW:-gpu}; NA=${NA:-6}; NB=${NB:-8}; EXTRA=${EXTRA:-}; DEADLINE=${DEADLINE:-0}
OUT_DIR=${OUT_DIR:-$PWD/outputs/studies}
export PY HW EXTRA OUT_DIR HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT_DIR"
study() {  # study <stream> <n_jobs> <experiment> [overrides...]: one sweep in the stream's store
  local store=$1 n=$2 exp=$3; shift 3
  local log="$OUT_DIR/$store-$exp$(echo "$*" | tr -c 'a-z0-9\n' '_').log"
  echo "[$(date +%T)] start $exp $*"
  $PY train.py experiment=$exp hardware=$HW hardware.threads=1 hardware.dataloader_num_workers=0 \
    hydra/launcher=joblib hydra.launcher.n_jobs=$n paths.output_dir=$OUT_DIR/$store "$@" $EXTRA > "$log" 2>&1
  local rc=$?
  echo "[$(date +%T)] end $exp $* rc=$rc: $(grep -h 'losslab sweep:' "$log" | tail -1)"
  find "$OUT_DIR/$store/multiruns" -name checkpoints -type d -prune -exec rm -rf {} + 2>/dev/null  # finished: not needed
}
# A: regression, then label noise (3 epochs: its noise-0 jobs are its own); B: the classification studies.
streamA() { study A $NA regression_losses; study A $NA label_noise; }
streamB() { study B $NB imbalance_losses; study B $NB ner_losses; study B $NB multilabel_losses; study B $NB soft_labels; }
export -f study streamA streamB
limit=() ; [ "$DEADLINE" -gt 0 ] && limit=(timeout -s TERM -k 30 "$DEADLINE")
"${limit[@]}" bash -c streamA & a=$!
"${limit[@]}" bash -c streamB & b=$!
wait $a $b
for i in $(seq 60); do pgrep -f "train.py experiment=" >/dev/null || break; sleep 1; done
echo "sweep dirs (newest last):"; ls -d "$OUT_DIR"/*/multiruns/*/* 2>/dev/null
