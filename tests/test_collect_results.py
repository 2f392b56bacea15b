"""Merging a sweep's run folders into a committed results file never loses a finished row: `merge_results`,
`merge_curves` and `update_results` from the installed package, and tools/collect_results.py, the command over them."""
import os, shutil, subprocess, sys
from pathlib import Path
import pandas as pd
from noisy_nbdev.experiments import merge_results, merge_curves

ROOT = Path(__file__).resolve().parents[1]

def _frame(rows): return pd.DataFrame(rows, columns=['row', 'cell', 'hp', 'seed', 'run', 'done', 'best_val_test_acc', 'cost_wall_time_s'])

def test_finished_rows_survive_and_differences_are_named():
    old = _frame([['CE', 'rate=0.5', '{}', 0, 'a', True, 0.9, 10.], ['CE', 'rate=0.5', '{}', 1, 'b', True, 0.8, 11.],
                  ['CE', 'rate=0.5', '{}', 2, 'c', False, None, None], ['CE', 'rate=0.9', '{}', 0, 'gone', True, 0.5, 9.]])
    new = _frame([['CE', 'rate=0.5', '{}', 0, 'a', False, None, None],   # folder lost: the file's row stays
                  ['CE', 'rate=0.5', '{}', 1, 'b', True, 0.7, 99.],      # rerun, and it differs: named
                  ['CE', 'rate=0.5', '{}', 2, 'c', True, 0.6, 12.]])     # newly finished
    m, notes = merge_results(new, old)
    assert list(m.run) == ['a', 'b', 'c', 'gone']
    assert list(m.done) == [True, True, True, True] and list(m.best_val_test_acc) == [0.9, 0.7, 0.6, 0.5]
    assert any('b: best_val_test_acc 0.8 (file, hardware not recorded) -> 0.7 (runs, hardware not recorded)' in n for n in notes), notes
    assert not any('cost' in n for n in notes)  # wall times are not compared
    assert any('1 row(s) of runs the declaration no longer has: kept (gone)' in n for n in notes), notes
    m2, _ = merge_results(new, old, drop_stale=True)
    assert list(m2.run) == ['a', 'b', 'c']

def test_curves_keep_runs_the_folders_lack():
    old = pd.DataFrame(dict(row=['CE'] * 2, cell=['x'] * 2, hp=['{}'] * 2, seed=[0, 1], epoch=[0, 0], test_acc=[0.5, 0.6], train_size=[10, 10]))
    new = pd.DataFrame(dict(row=['CE'], cell=['x'], hp=['{}'], seed=[1], epoch=[0], test_acc=[0.7], train_size=[10]))
    m = merge_curves(new, old)
    assert sorted(zip(m.seed, m.test_acc)) == [(0, 0.5), (1, 0.7)]
    empty = merge_curves(new.iloc[:0], old)
    assert empty.equals(old)  # nothing collected: the file unchanged, its integer columns too

def test_the_command_keeps_a_committed_file_whose_run_folders_are_gone(tmp_path):
    name = 'limit_mnist_protocol'   # committed, every run finished; none of its run folders is in tmp_path/runs
    src = ROOT/'nbs'/'results'/f'{name}_local.csv'
    shutil.copy(src, tmp_path/src.name)
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'collect_results.py'), name, '--out', str(tmp_path/'runs'),
                        '--results', str(tmp_path)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    n = int(pd.read_csv(src).done.sum())
    assert f"{name}: 0 finished in {tmp_path/'runs'}/, {n} in {src.name}, {n}/{n} after merging" in r.stdout, r.stdout
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path/src.name), pd.read_csv(src))   # rewritten, nothing lost
    bad = subprocess.run([sys.executable, str(ROOT/'tools'/'collect_results.py'), 'no_such_table', '--results', str(tmp_path)],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert bad.returncode != 0 and "unknown experiment 'no_such_table'" in bad.stderr

def test_a_table_keeps_its_own_analyses_and_the_file_keeps_the_rest(tmp_path):
    "`collect` takes only the experiment's analyses from a shared run folder; `merge_results` keeps a column only the file has"
    import json
    from noisy_nbdev.sweep import SMOKE, run_sweep
    from noisy_nbdev.experiments import collect
    runs = run_sweep(SMOKE, out=tmp_path, progress=False)
    f = tmp_path / runs.run[0] / 'analyses.json'
    f.write_text(json.dumps(dict(json.loads(f.read_text()), other_applies=True, other_score=0.5)))  # another experiment's analysis
    c = collect(SMOKE, tmp_path)
    assert 'small_loss_roc_auc' in c and not [k for k in c if k.startswith('other_')]
    old = c.assign(extra=[0.25] + [None] * (len(c) - 1))   # a column the committed file has and the folders do not
    m, _ = merge_results(c, old)
    assert m.extra[0] == 0.25 and m.extra[1:].isna().all() and list(m.run) == list(c.run)
