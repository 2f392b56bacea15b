"""Collect an experiment's run folders into `nbs/results/{experiment}_{profile}.csv` (and `..._curves.csv` where one
is committed) without losing a finished row that the file already has.

Run folders are not committed (`runs/` is ignored), so a new machine starts without them: a run that is finished in
the committed file and absent or unfinished here keeps its committed row. A run finished in both takes the new row,
and the two are compared: runs are seeded and deterministic, so a difference in a selection's accuracy is printed
(costs and wall times differ, and are not compared). Rows of runs that the declaration no longer has are kept and
named, unless `--drop-stale`.

Usage: python tools/collect_results.py EXPERIMENT [EXPERIMENT ...] [--out runs] [--profile local] [--results DIR] [--dry-run] [--drop-stale]
       python tools/collect_results.py EXPERIMENT --profile paper --from-csv RETURNED.csv   (a GPU session's file)
"""
import argparse, os, sys
from pathlib import Path
import numpy as np, pandas as pd

RESULTS = Path(__file__).resolve().parents[1]/'nbs'/'results'
ID = ['row', 'cell', 'hp', 'seed']

def _write(df:pd.DataFrame, f:Path):
    tmp = f.with_suffix('.tmp'); df.to_csv(tmp, index=False); os.replace(tmp, f)

def _hw(row:dict) -> str:
    "Where a row's run ran (rows collected before 2026-12-07 do not say)"
    h = row.get('hardware')
    return h if isinstance(h, str) else 'hardware not recorded'

def merge_runs(new:pd.DataFrame, old:pd.DataFrame|None, drop_stale:bool=False) -> tuple[pd.DataFrame, list[str]]:
    "`new` (collect's frame) with each run that is finished only in `old` taken from `old`; notes on what differs"
    if old is None or not len(old): return new, []
    notes, rows = [], []
    oldd = old.set_index('run')
    for r in new.to_dict('records'):
        o = oldd.loc[r['run']].to_dict() if r['run'] in oldd.index else None
        if not r['done'] and o is not None and bool(o['done']): rows.append(dict(o, run=r['run'])); continue
        if r['done'] and o is not None and bool(o['done']):
            for c in ('best_val_test_acc', 'last_test_acc', 'oracle_test_acc', 'best_val_epoch'):
                if c in r and c in o and not (pd.isna(r[c]) and pd.isna(o[c])) and not np.isclose(float(r[c]), float(o[c]), atol=1e-9):
                    notes.append(f"{r['run']}: {c} {o[c]} (file, {_hw(o)}) -> {r[c]} (runs, {_hw(r)})")
        rows.append(r)
    stale = [n for n in oldd.index if n not in set(new.run)]
    if stale:
        notes.append(f"{len(stale)} row(s) of runs the declaration no longer has: {'dropped' if drop_stale else 'kept'} ({', '.join(stale[:3])}{' ...' if len(stale) > 3 else ''})")
        if not drop_stale: rows += [dict(oldd.loc[n].to_dict(), run=n) for n in stale]
    cols = list(dict.fromkeys([*old.columns, *new.columns]))  # the file's order first: a rerun changes only what changed
    return pd.DataFrame(rows).reindex(columns=cols), notes

def merge_curves(new:pd.DataFrame, old:pd.DataFrame|None) -> pd.DataFrame:
    "Curves of the runs in `new`, plus `old`'s curves of runs (row, cell, hp, seed) that `new` lacks"
    if old is None or not len(old): return new
    if not len(new): return old  # nothing here: the file as it is (a concat with an empty frame would turn ints into floats)
    have = set(map(tuple, new[ID].astype(str).values)) if len(new) else set()
    keep = old[[tuple(v) not in have for v in old[ID].astype(str).values]]
    return pd.concat([new, keep], ignore_index=True).reindex(columns=list(dict.fromkeys([*old.columns, *new.columns])))

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('experiments', nargs='+'); p.add_argument('--out', default='runs'); p.add_argument('--profile', default='local')
    p.add_argument('--drop-stale', action='store_true'); p.add_argument('--dry-run', action='store_true', help='print, write nothing')
    p.add_argument('--results', default=str(RESULTS), help='folder of the result files (default: nbs/results)')
    p.add_argument('--from-csv', default=None, help="merge this result file (e.g. one a GPU session returned) instead of run folders; one experiment")
    a = p.parse_args()
    res = Path(a.results); res.mkdir(parents=True, exist_ok=True)
    from noisy_nbdev.sweep import load_declarations
    from noisy_nbdev.experiments import collect, collect_curves, expand
    exps = load_declarations()
    for name in a.experiments:
        if name not in exps: sys.exit(f"unknown experiment {name!r}")
        f = res/f"{name}_{a.profile}.csv"
        old = pd.read_csv(f) if f.exists() else None
        if a.from_csv and len(a.experiments) > 1: sys.exit("--from-csv takes one experiment")
        new = pd.read_csv(a.from_csv) if a.from_csv else collect(name, a.out, a.profile)
        merged, notes = merge_runs(new, old, a.drop_stale)
        n_old = int(old.done.sum()) if old is not None else 0
        print(f"{name}: {int(new.done.sum())} finished in {a.from_csv or a.out + '/'}, {n_old} in {f.name}, {int(merged.done.sum())}/{len(merged)} after merging")
        for n in notes: print('  ' + n)
        if not a.dry_run: _write(merged, f)
        fc = res/f"{name}_{a.profile}_curves.csv"
        if fc.exists() and not a.from_csv:
            oldc = pd.read_csv(fc)
            fields = {k for s in expand(name, a.profile) for k in s.cell}  # collect_curves adds the cell's fields itself
            cols = [c for c in oldc.columns if c not in {*ID, 'epoch', *fields}]
            newc = merge_curves(collect_curves(name, a.out, a.profile, columns=tuple(cols)), oldc)
            print(f"  curves: {len(oldc)} lines in {fc.name}, {len(newc)} after merging")
            if not a.dry_run: _write(newc, fc)

if __name__ == '__main__': main()
