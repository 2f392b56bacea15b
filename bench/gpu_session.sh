#!/usr/bin/env bash
# One prepared call for a lent GPU (the library's device tool: 15 device-minutes a task, 10 minutes a command).
# It runs the GPU benches and a time-boxed slice of a `paper` profile, and leaves small files in $OUT:
#   device.txt, bench_options.txt, bench_many.txt, bench_methods.txt, sweep.txt, <experiment>_paper.csv
# The device's python3 has its own torch (older than our pin) and lacks fastcore, and ../shared does not travel, so
# prepare here first (once per machine; .gpu/ is ignored by git):
#   bash bench/gpu_session.sh --prepare
# then, on the device tool:
#   run(command="bash bench/gpu_session.sh", carry=[".gpu"], timeout_s=600)
# and copy <experiment>_paper.csv from files_at into nbs/results/ (merging with tools/collect_results.py if one exists).
# Check the script on the CPU, small and quick, before spending device time on it:
#   OUT=/tmp/gpu_check DEVICE=cpu QUICK=1 bash bench/gpu_session.sh
# Settings (environment): DEVICE (cuda), EXPERIMENT (limit_table1), CELLS (train_size=1000), ROWS (CE,MAE,FW,CE + GN,
# CE + LN,DMI; empty: all), GROUP (20), SWEEP_S (seconds for the sweep, 180), SKIP_BENCH (1: the sweep only), QUICK
# (1: the benches' --quick sizes and the smoke experiment, for checking the script). E.g. the head to head's paper
# profile: EXPERIMENT=h2h_limit_noise CELLS=train_size=10000 ROWS= bash bench/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --prepare ]; then
  data="${NOISY_NBDEV_DATA:-../shared/data}"
  mkdir -p .gpu/data .gpu/whl
  for d in MNIST FashionMNIST; do mkdir -p .gpu/data/$d && cp -r "$data/$d/raw" .gpu/data/$d/; done
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform any -d .gpu/whl "fastcore>=2.2" || exit 1
  du -sh .gpu; exit 0
fi
OUT="${OUT:-/tmp/gpu_out}"; mkdir -p "$OUT"
DEVICE="${DEVICE:-cuda}"; EXPERIMENT="${EXPERIMENT:-limit_table1}"; CELLS="${CELLS-train_size=1000}"
ROWS="${ROWS-CE,MAE,FW,CE + GN,CE + LN,DMI}"; GROUP="${GROUP:-20}"; SWEEP_S="${SWEEP_S:-180}"; QUICK="${QUICK:-0}"  # CELLS or ROWS empty: every cell or row
export PYTHONUNBUFFERED=1 NOISY_NBDEV_DATA="${NOISY_NBDEV_DATA:-$PWD/.gpu/data}"
if [ -d .gpu/whl ] && ! python3 -c "import fastcore" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"   # the source tree, not an installed copy (the device's torch is its own)
PY=python3; [ -x .venv/bin/python ] && [ "$DEVICE" = cpu ] && PY=.venv/bin/python
q=(); [ "$QUICK" = 1 ] && q=(--quick)
{ date -u; nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"; $PY -c "import torch, platform; print('torch', torch.__version__, '|', torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or 'cpu')"; } 2>&1 | tee "$OUT/device.txt"
# time budget (one command: 600 s; the device's 15 minutes include its start): options 150 + many 120 + methods 60 + sweep 180
opts=(--options eager,channels_last+bf16,compile+channels_last+bf16 --repeats 2); [ "$QUICK" = 1 ] && opts=("${q[@]}")
if [ "${SKIP_BENCH:-0}" != 1 ]; then
echo "== bench_options"; timeout 150 $PY bench/bench_options.py --device "$DEVICE" "${opts[@]}" 2>&1 | tee "$OUT/bench_options.txt"
members=1,8,32,128; [ "$QUICK" = 1 ] && members=1,4
# 4 runs one at a time are the baseline of every M (a run-epoch alone costs the same whatever M); 128 would take 10 minutes
echo "== bench_many"; timeout 120 $PY bench/bench_many.py --device "$DEVICE" --members $members --alone 4 --epochs 2 --repeats 1 --mode "$([ "$DEVICE" = cuda ] && echo vmap || echo loop)" 2>&1 | tee "$OUT/bench_many.txt"
echo "== bench_methods"; timeout 60 $PY bench/bench_methods.py --device "$DEVICE" $([ "$QUICK" = 1 ] && echo --model limit_cnn --size 28 --channels 1 --nc 100 --reps 2 || echo --reps 10) 2>&1 | tee "$OUT/bench_methods.txt"
fi
if [ "$QUICK" = 1 ]; then EXPERIMENT=smoke; CELLS=rate=0.2; ROWS=CE,GCE; fi
sel=(); [ -n "$CELLS" ] && sel+=(--cells "$CELLS"); [ -n "$ROWS" ] && sel+=(--rows "$ROWS")
echo "== sweep $EXPERIMENT (paper) cells $CELLS rows $ROWS, group $GROUP, ${SWEEP_S}s"
printf 'import sys\nfrom noisy_nbdev.cli import noisy_sweep\nif __name__ == "__main__": sys.exit(noisy_sweep())\n' > /tmp/noisy_sweep.py  # the console script pip would write
timeout "$SWEEP_S" $PY /tmp/noisy_sweep.py "$EXPERIMENT" --profile paper \
  "${sel[@]}" --group "$GROUP" --device "$DEVICE" --out /tmp/gpu_runs --quiet 2>&1 | tail -40 | tee "$OUT/sweep.txt"
$PY tools/collect_results.py "$EXPERIMENT" --profile paper --out /tmp/gpu_runs --results "$OUT" 2>&1 | grep -v Warning | tee -a "$OUT/sweep.txt"
ls -la "$OUT"
