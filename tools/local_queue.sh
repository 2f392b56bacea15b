#!/usr/bin/env bash
# The local profiles that are not finished yet, in chunks, each chunk's results merged into nbs/results/ at once, so
# that a session that ends (and loses runs/, which is not committed) loses at most one chunk. Resumable: run it again.
#   mkdir -p logs; nohup bash tools/local_queue.sh >> logs/queue.log 2>&1 &
# Then commit nbs/results/*.csv now and then (and rerender the notebooks that read them).
# Every sweep gets --results "$RESULTS": a run finished in the committed result file is not trained again, even where
# its run folder is on another machine (`plan` marks it 'committed'), so an item may name a whole table.
# Each line of QUEUE: experiment | noisy-sweep options, ';' between options (--rows A,B;--cells rate=0.8). Edit it as
# tables complete. An item with nothing to train still gets its analyses and is collected (limit_detection_mnist reads
# limit_table1's runs).
set -uo pipefail
cd "$(dirname "$0")/.."
export NOISY_NBDEV_DATA="${NOISY_NBDEV_DATA:-$(cd .. && pwd)/shared/data}" MPLBACKEND=Agg
OUT="${OUT:-runs}"; JOBS="${JOBS:-2}"; CHUNK="${CHUNK:-6}"; RESULTS="${RESULTS:-nbs/results}"
QUEUE=(
  "limit_table1|--rows LIMIT_L -S,LIMIT_G -S,LIMIT_L +S,LIMIT_G +S;--cells rate=0.0"
  "limit_detection_mnist|"
  "limit_table1|--rows LIMIT_L -S,LIMIT_G -S,LIMIT_L +S,LIMIT_G +S"
  "limit_table1|"
  "limit_cifar10_uniform|"
  "limit_cifar10_pair|"
  "limit_detection_cifar|"
)
[ $# -gt 0 ] && QUEUE=("$@")   # or name the items: bash tools/local_queue.sh 'smoke|--rows GCE' ...
for item in "${QUEUE[@]}"; do
  exp="${item%%|*}"; opts="${item#*|}"
  args=(); IFS=';' read -ra parts <<< "$opts"
  for o in "${parts[@]}"; do [ -n "$o" ] && args+=("${o%% *}" "${o#* }"); done
  while true; do
    left=$(.venv/bin/noisy-sweep "$exp" --profile local --out "$OUT" --results "$RESULTS" --dry-run "${args[@]}" 2>/dev/null | grep -o 'to run: [0-9]*' | grep -o '[0-9]*$')
    if [ "${left:-0}" = 0 ]; then   # nothing to train: the sweep still computes the analyses its finished runs lack
      .venv/bin/noisy-sweep "$exp" --profile local --jobs "$JOBS" --out "$OUT" --results "$RESULTS" --quiet "${args[@]}" | grep -a '^sweep '
      .venv/bin/python tools/collect_results.py "$exp" --out "$OUT" --results "$RESULTS" 2>&1 | grep -v Warning; break
    fi
    echo "=== $(date -u +%H:%M) $exp ${args[*]}: $left to run, next $CHUNK"
    line=$(.venv/bin/noisy-sweep "$exp" --profile local --jobs "$JOBS" --out "$OUT" --results "$RESULTS" --quiet --max-runs "$CHUNK" "${args[@]}" | grep -a '^sweep ')
    echo "$line"
    .venv/bin/python tools/collect_results.py "$exp" --out "$OUT" --results "$RESULTS" 2>&1 | grep -v Warning
    # nothing new finished (the rest failed, or another process holds them): go on to the next item
    if [[ "$line" =~ ([0-9]+)\ finished\ \(([0-9]+)\ earlier\) ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]; then break; fi
  done
done
echo "=== $(date -u +%H:%M) queue done"
