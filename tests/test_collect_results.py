"""tools/collect_results.py: merging a sweep's run folders into a committed results file never loses a finished row."""
import importlib.util
from pathlib import Path
import pandas as pd

_spec = importlib.util.spec_from_file_location('collect_results', Path(__file__).resolve().parents[1]/'tools'/'collect_results.py')
cr = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(cr)

def _frame(rows): return pd.DataFrame(rows, columns=['row', 'cell', 'hp', 'seed', 'run', 'done', 'best_val_test_acc', 'cost_wall_time_s'])

def test_finished_rows_survive_and_differences_are_named():
    old = _frame([['CE', 'rate=0.5', '{}', 0, 'a', True, 0.9, 10.], ['CE', 'rate=0.5', '{}', 1, 'b', True, 0.8, 11.],
                  ['CE', 'rate=0.5', '{}', 2, 'c', False, None, None], ['CE', 'rate=0.9', '{}', 0, 'gone', True, 0.5, 9.]])
    new = _frame([['CE', 'rate=0.5', '{}', 0, 'a', False, None, None],   # folder lost: the file's row stays
                  ['CE', 'rate=0.5', '{}', 1, 'b', True, 0.7, 99.],      # rerun, and it differs: named
                  ['CE', 'rate=0.5', '{}', 2, 'c', True, 0.6, 12.]])     # newly finished
    m, notes = cr.merge_runs(new, old)
    assert list(m.run) == ['a', 'b', 'c', 'gone']
    assert list(m.done) == [True, True, True, True] and list(m.best_val_test_acc) == [0.9, 0.7, 0.6, 0.5]
    assert any('b: best_val_test_acc 0.8 (file, hardware not recorded) -> 0.7 (runs, hardware not recorded)' in n for n in notes), notes
    assert not any('cost' in n for n in notes)  # wall times are not compared
    assert any('1 row(s) of runs the declaration no longer has: kept (gone)' in n for n in notes), notes
    m2, _ = cr.merge_runs(new, old, drop_stale=True)
    assert list(m2.run) == ['a', 'b', 'c']

def test_curves_keep_runs_the_folders_lack():
    old = pd.DataFrame(dict(row=['CE'] * 2, cell=['x'] * 2, hp=['{}'] * 2, seed=[0, 1], epoch=[0, 0], test_acc=[0.5, 0.6], train_size=[10, 10]))
    new = pd.DataFrame(dict(row=['CE'], cell=['x'], hp=['{}'], seed=[1], epoch=[0], test_acc=[0.7], train_size=[10]))
    m = cr.merge_curves(new, old)
    assert sorted(zip(m.seed, m.test_acc)) == [(0, 0.5), (1, 0.7)]
    empty = cr.merge_curves(new.iloc[:0], old)
    assert empty.equals(old)  # nothing collected: the file unchanged, its integer columns too
