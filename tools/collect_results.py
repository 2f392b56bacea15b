"""Collect an experiment's run folders into `nbs/results/{experiment}_{profile}.csv` (and `..._curves.csv` where one
is committed) without losing a finished row that the file already has.

Run folders are not committed (`runs/` is ignored), so a new machine starts without them: a run that is finished in
the committed file and absent or unfinished here keeps its committed row. A run finished in both takes the new row,
and the two are compared: runs are seeded and deterministic, so a difference in a selection's accuracy is printed
(costs and wall times differ, and are not compared). Rows of runs that the declaration no longer has are kept and
named, unless `--drop-stale`. The merge is `noisy_nbdev.experiments.update_results` (nbs/13_experiments.ipynb), which the
reproduction notebooks' slow cells call too.

Usage: .venv/bin/python tools/collect_results.py EXPERIMENT [EXPERIMENT ...] [--out runs] [--profile local] [--results DIR] [--dry-run] [--drop-stale]
       .venv/bin/python tools/collect_results.py EXPERIMENT --profile paper --from-csv RETURNED.csv   (a GPU session's file)
"""
import argparse, sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1]/'nbs'/'results'

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('experiments', nargs='+'); p.add_argument('--out', default='runs'); p.add_argument('--profile', default='local')
    p.add_argument('--drop-stale', action='store_true'); p.add_argument('--dry-run', action='store_true', help='print, write nothing')
    p.add_argument('--results', default=str(RESULTS), help='folder of the result files (default: nbs/results)')
    p.add_argument('--from-csv', default=None, help="merge this result file (e.g. one a GPU session returned) instead of run folders; one experiment")
    a = p.parse_args()
    from noisy_nbdev.sweep import load_declarations
    from noisy_nbdev.experiments import update_results   # the merge itself: nbs/13_experiments.ipynb
    exps = load_declarations()
    if a.from_csv and len(a.experiments) > 1: sys.exit("--from-csv takes one experiment")
    for name in a.experiments:
        if name not in exps: sys.exit(f"unknown experiment {name!r}")
        for line in update_results(name, a.out, a.profile, a.results, a.drop_stale, a.dry_run, a.from_csv): print(line)

if __name__ == '__main__': main()
