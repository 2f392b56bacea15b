"""The sweep runner from the installed package: `noisy-sweep` as a user runs it (a subprocess) on the `smoke`
experiment, and `run_sweep` in-process for diverging runs and for CE prerequisites (`init_from_ce`).

Records are compared exactly: `result.json` (every selection's accuracies and F1s, as JSON floats round-trip
exactly) and the per-sample losses, so a sweep in 2 processes, or one killed and rerun, must give what one
uninterrupted process gives, bit for bit."""
import contextlib, io, json, os, re, signal, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
import pytest

def _command() -> list:
    "The `noisy-sweep` console script; in an environment installed before it existed, the same wrapper pip writes"
    exe = Path(sys.executable).parent / 'noisy-sweep'
    if exe.exists(): return [str(exe)]
    w = Path(tempfile.gettempdir()) / 'noisy_sweep_entry_point.py'
    w.write_text("import sys\nfrom noisy_nbdev.cli import noisy_sweep\nif __name__ == '__main__': sys.exit(noisy_sweep())\n")
    return [sys.executable, str(w)]

CMD = _command()
ENV = {k: v for k, v in os.environ.items() if k != 'NOISY_NBDEV_KILL_AFTER_STEP'}
ENV.setdefault('OMP_NUM_THREADS', '1')

def sweep(*args, timeout=300):
    return subprocess.run([*CMD, *args], capture_output=True, text=True, timeout=timeout, env=ENV)

def records(out) -> dict:
    "Run folder -> (result.json, per-sample losses) of every finished run under `out`"
    return {p.name: (json.loads((p / 'result.json').read_text()), np.load(p / 'sample_losses.npy'))
            for p in sorted(Path(out).iterdir()) if (p / 'done').exists()}

def assert_same(a:dict, b:dict):
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k][0] == b[k][0], k
        assert a[k][1].tobytes() == b[k][1].tobytes(), k

@pytest.fixture(scope='module')
def serial(tmp_path_factory):
    "The smoke sweep in one process: the reference records"
    out = tmp_path_factory.mktemp('serial')
    r = sweep('smoke', '--jobs', '1', '--out', str(out), '--quiet')
    assert r.returncode == 0, r.stderr
    assert 'sweep smoke (local): 8 runs: 8 finished (0 earlier), 0 failed, 0 locked' in r.stdout, r.stdout
    return out, records(out)

def test_killed_sweep_resumes_without_rerunning_finished_runs(serial, tmp_path, kill_when_a_run_finishes):
    _, ref = serial
    kill_when_a_run_finishes([*CMD, 'smoke', '--jobs', '1', '--out', str(tmp_path), '--quiet'], tmp_path, ENV, timeout=120, poll=0.005)
    done = {f.parent.name: (f.stat().st_mtime_ns, (f.parent / 'result.json').stat().st_mtime_ns) for f in tmp_path.glob('*/done')}
    assert 1 <= len(done) < 8, f"{len(done)} runs had finished when the sweep was killed"
    r = sweep('smoke', '--jobs', '1', '--out', str(tmp_path), '--quiet')
    assert r.returncode == 0, r.stderr
    assert f'8 runs: 8 finished ({len(done)} earlier), 0 failed, 0 locked' in r.stdout, r.stdout
    for name, t in done.items():  # finished runs were reused, not run again
        assert ((tmp_path / name / 'done').stat().st_mtime_ns, (tmp_path / name / 'result.json').stat().st_mtime_ns) == t, name
    assert_same(records(tmp_path), ref)

def test_dry_run_trains_nothing_then_says_finished(serial, tmp_path):
    out, ref = serial
    fresh = tmp_path / 'fresh'
    r = sweep('smoke', '--dry-run', '--out', str(fresh))
    assert r.returncode == 0, r.stderr
    assert not fresh.exists()  # nothing written, not even the folder
    for name in ref: assert re.search(rf"\btodo\b.*{name}", r.stdout), (name, r.stdout)
    assert 'plan smoke (local)' in r.stdout and '8 runs (8 todo)' in r.stdout and 'to run: 8 runs' in r.stdout, r.stdout
    from noisy_nbdev.cli import noisy_sweep  # the same command from Python (a subprocess costs seconds of imports)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf): pl = noisy_sweep('smoke', dry_run=True, out=str(out))
    assert list(pl.status) == ['finished'] * 8 and sorted(pl.run) == sorted(ref)
    for name in ref: assert re.search(rf"\bfinished\b.*{name}", buf.getvalue()), (name, buf.getvalue())
    assert '8 runs (8 finished)' in buf.getvalue() and 'to run: 0 runs' in buf.getvalue(), buf.getvalue()
    assert_same(records(out), ref)  # a dry run changes nothing

def test_help_list_and_bad_names():
    r = sweep('--help')
    assert r.returncode == 0, r.stderr
    for flag in ('--profile', '--jobs', '--out', '--dry-run', '--rows', '--max-runs', '--data-root', '--device', '--quiet', '--list'):
        assert flag in r.stdout, flag
    from noisy_nbdev.cli import noisy_sweep
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf): noisy_sweep(list=True)  # `noisy-sweep --list`, from Python
    assert re.search(r'^smoke: installation check', buf.getvalue(), re.M), buf.getvalue()
    from fastcore.script import CliError  # a bad name: one line naming the choices (the shell shows it and exits 1, as noisy-train)
    for kw, msg in [(dict(experiment='nope'), "unknown experiment 'nope'; choose one of"), (dict(experiment='smoke', profile='huge'), "no profile 'huge'; choose one of local, paper")]:
        with pytest.raises(CliError, match=re.escape(msg)): noisy_sweep(**kw)

def _smoke_like(name, rows, **base):
    from noisy_nbdev.sweep import SMOKE
    from noisy_nbdev.experiments import Experiment, Profile
    return Experiment(name, ['test'], name, rows=rows, cells={'rate': [0.2]}, base=dict(SMOKE.base, **base),
                      profiles={'local': Profile(seeds=2, base=SMOKE.profiles['local'].base)}, analyses=['small_loss'])

def test_diverging_runs_are_reported_failed_and_the_sweep_goes_on(tmp_path, capsys):
    from noisy_nbdev.experiments import Row, register_experiment, EXPERIMENTS
    from noisy_nbdev.sweep import run_sweep, plan
    if 'test_sweep_diverge' not in EXPERIMENTS:  # the diverging row first: the CE row must still run after it
        register_experiment(_smoke_like('test_sweep_diverge', [Row('CE lr 1e10', 'ce', run=dict(lr=1e10, opt='sgd')), Row('CE', 'ce')]))
    runs = run_sweep('test_sweep_diverge', out=tmp_path, jobs=1, progress=False)
    line = capsys.readouterr().out
    assert 'sweep test_sweep_diverge (local): 4 runs: 2 finished (0 earlier), 2 failed, 0 locked' in line, line
    assert list(runs.done) == [False, False, True, True]
    for name in runs.run[:2]:
        res = json.loads((tmp_path / name / 'result.json').read_text())
        assert res['status'] == 'failed' and 'non-finite' in res['reason'], res
    assert runs.small_loss_applies[2:].all()  # the finished runs got their analyses
    failed_at = [(tmp_path / n / 'result.json').stat().st_mtime_ns for n in runs.run[:2]]
    run_sweep('test_sweep_diverge', out=tmp_path, jobs=1, progress=False)  # failed runs are skipped, not rerun
    assert '2 finished (2 earlier), 2 failed' in capsys.readouterr().out
    assert [(tmp_path / n / 'result.json').stat().st_mtime_ns for n in runs.run[:2]] == failed_at
    assert list(plan('test_sweep_diverge', out=tmp_path).status) == ['failed', 'failed', 'finished', 'finished']

def test_max_runs_counts_new_runs_only(tmp_path, capsys):
    "Chunks of 3: finished runs are skipped, not counted against the next chunk"
    from noisy_nbdev.sweep import run_sweep
    for k in (3, 6, 8):
        run_sweep('smoke', out=tmp_path, max_runs=3, progress=False)
        left = f', {8 - k} not run' if k < 8 else ''
        assert f'sweep smoke (local): 8 runs: {k} finished ({k - 3 if k < 8 else 6} earlier), 0 failed, 0 locked{left}' in capsys.readouterr().out
        assert len(list(tmp_path.glob('*/done'))) == k

def test_ce_prerequisites_finish_before_the_runs_that_start_from_them(tmp_path, capsys, monkeypatch):
    """FW (init_from_ce) and the CE row share one CE run folder. With 2 workers, a FW run submitted beside its CE run
    would meet the CE run's lock (or take it first): the sweep must submit the CE run first and the FW run only once the
    CE run has finished. The pool is the real one, wrapped to record, at each submission, whether the run's CE
    prerequisite had finished: a check that does not depend on how fast the workers start."""
    import noisy_nbdev.sweep as sw
    from noisy_nbdev.experiments import Row, Profile
    exp = _smoke_like('test_sweep_fw', [Row('FW', 'fw', run=dict(init_from_ce=True)), Row('CE', 'ce')])
    exp.profiles = {'local': Profile(seeds=1, base=dict(epochs=5, train_size=1600, val_size=200, test_size=500))}
    p = sw.plan(exp, out=tmp_path)
    assert list(p.row) == ['FW', 'CE'] and p.needs[0] == p.run[1] and list(p.prerequisite) == [False, True]
    submitted, real_pool = [], sw._pool
    def recording_pool(jobs):
        ex = real_pool(jobs); submit = ex.submit
        def rec(fn, task, out, *args):
            pre = sw._prerequisite(task['cfg'])
            submitted.append((task['name'], None if pre is None else sw._finished(Path(out) / pre.run_name()) is not None))
            return submit(fn, task, out, *args)
        ex.submit = rec; return ex
    monkeypatch.setattr(sw, '_pool', recording_pool)
    runs = sw.run_sweep(exp, out=tmp_path, jobs=2, progress=False)
    out = capsys.readouterr().out
    assert submitted == [(p.run[1], None), (p.run[0], True)], submitted  # CE first; FW after its CE run finished
    assert 'sweep test_sweep_fw (local): 2 runs: 2 finished (0 earlier), 0 failed, 0 locked' in out, out
    assert runs.done.all()
    fw = json.loads((tmp_path / p.run[0] / 'config.json').read_text())
    assert fw['config']['init_from_ce'] and fw['resources']['wall_time_s'] > 0

HOLD = """import fcntl, json, os, sys, time
f = open(os.path.join(sys.argv[1], 'run.lock'), 'a+'); fcntl.flock(f, fcntl.LOCK_EX)
f.seek(0); f.truncate(); f.write(json.dumps(dict(pid=os.getpid()))); f.flush()
print('held', flush=True); time.sleep(120)
"""

def test_a_run_folder_held_by_another_process_is_left_to_it(tmp_path, capsys):
    "Another live process holds one run's lock (as `lock_run` does): the plan says locked, the sweep leaves it, the next one runs it"
    from noisy_nbdev.experiments import expand
    from noisy_nbdev.sweep import run_sweep, plan, _run_task
    spec = expand('smoke')[5]; folder = tmp_path / spec.cfg.run_name(); folder.mkdir()
    holder = subprocess.Popen([sys.executable, '-c', HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        assert plan('smoke', out=tmp_path).status.tolist() == ['todo'] * 5 + ['locked'] + ['todo'] * 2
        r = _run_task(dict(name=folder.name, cfg=spec.cfg, spec=spec, train=True, analyses=[]), str(tmp_path), None, None, False)
        assert r['status'] == 'locked' and 'another process' in r['error'], r  # met at run time: reported, not raised
        run_sweep('smoke', out=tmp_path, progress=False)
        out = capsys.readouterr().out
        assert 'sweep smoke (local): 8 runs: 7 finished (0 earlier), 0 failed, 1 locked' in out and 'once it has finished' in out, out
        assert not (folder / 'done').exists()
    finally:
        holder.kill(); holder.wait()
    from noisy_nbdev.train import RunFolderWarning
    with pytest.warns(RunFolderWarning, match='stale lock'):  # the holder was killed: its lock file still names it
        run_sweep('smoke', out=tmp_path, progress=False)
    assert '8 runs: 8 finished (7 earlier), 0 failed, 0 locked' in capsys.readouterr().out

def _group_alive(pgid:int) -> list:
    "The live (not zombie) processes of process group `pgid`, from /proc"
    alive = []
    for st in Path('/proc').glob('[0-9]*/stat'):
        try: f = st.read_text().rsplit(')', 1)[1].split()
        except OSError: continue
        if int(f[2]) == pgid and f[0] != 'Z': alive.append(st.parent.name)
    return alive

@pytest.mark.skipif(not Path('/proc/self/stat').exists(), reason='reads process groups from /proc (Linux)')
def test_two_jobs_give_the_records_of_one_even_after_ctrl_c(serial, tmp_path):
    """`--jobs 2`, interrupted as a terminal's Ctrl-C does (SIGINT to the process group) once a run has finished: exit
    status 130, a message saying how to go on, no worker left, no lock held; the same command then finishes the sweep,
    and every record equals the one-process sweep's."""
    from noisy_nbdev.sweep import plan
    _, ref = serial
    p = subprocess.Popen([*CMD, 'smoke', '--jobs', '2', '--out', str(tmp_path), '--quiet'], env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    t0 = time.time()
    while not list(tmp_path.glob('*/done')) and p.poll() is None and time.time() - t0 < 120: time.sleep(0.005)
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, (p.returncode, out, err)
    assert 'interrupted' in err and 'run the same command again' in err and 'Traceback' not in err, err
    t0 = time.time()  # the workers are gone with it (zombies aside: their reaping is the init process's business)
    while _group_alive(p.pid) and time.time() - t0 < 10: time.sleep(0.05)
    assert not _group_alive(p.pid), _group_alive(p.pid)
    assert 'locked' not in set(plan('smoke', out=tmp_path).status)
    n = len(list(tmp_path.glob('*/done')))
    assert 1 <= n < 8, n
    r = sweep('smoke', '--jobs', '2', '--out', str(tmp_path), '--quiet')
    assert r.returncode == 0, r.stderr
    assert f'sweep smoke (local): 8 runs: 8 finished ({n} earlier), 0 failed, 0 locked' in r.stdout, r.stdout
    assert 'CE' in r.stdout and 'rate=0.2' in r.stdout  # the table after the sweep
    assert len(ref) == 8
    assert_same(records(tmp_path), ref)

def test_spawned_workers_know_analyses_registered_in_other_modules(tmp_path):
    "`detection` registers in noisy_nbdev.cleanlab_compare; a spawned worker imports only the sweep module unless it loads them all"
    from noisy_nbdev.experiments import Row
    from noisy_nbdev.sweep import run_sweep
    exp = _smoke_like('test_sweep_worker_analyses', [Row('CE', 'ce')])
    exp.analyses = ['detection']
    runs = run_sweep(exp, out=tmp_path, jobs=2, progress=False)
    assert runs.done.all() and len(runs) == 2
    for n in runs.run:
        a = json.loads((tmp_path / n / 'analyses.json').read_text())
        assert any(k.startswith('detection') for k in a), a

def test_cells_and_rows_run_part_of_a_table(serial, tmp_path):
    "`--cells rate=0.4 --rows GCE` trains exactly those 2 runs (bit for bit the full sweep's); a bad field or value is one error line"
    _, ref = serial
    r = sweep('smoke', '--cells', 'rate=.4', '--rows', 'GCE', '--out', str(tmp_path), '--quiet')
    assert r.returncode == 0, r.stderr
    assert 'sweep smoke (local): 2 runs: 2 finished (0 earlier), 0 failed, 0 locked' in r.stdout, r.stdout
    got = records(tmp_path)
    assert len(got) == 2 and all('gce' in n and 'symmetric0.4' in n for n in got), sorted(got)
    assert_same(got, {k: ref[k] for k in got})
    from fastcore.script import CliError
    from noisy_nbdev.cli import noisy_sweep
    for cells, msg in [('noise=0.4', "has no cell field(s) ['noise']; its fields: ['rate']"), ('rate=0.9', "has no rate ['0.9']; choose from [0.2, 0.4]")]:
        with pytest.raises(CliError, match=re.escape(msg)): noisy_sweep('smoke', cells=cells, out=str(tmp_path), dry_run=True)

def test_results_skips_runs_committed_from_another_machine(serial, tmp_path):
    "`--results DIR`: a machine without the run folders trains only what the committed result file lacks, and prints the whole table"
    out, ref = serial
    from noisy_nbdev.experiments import update_results
    import pandas as pd
    from noisy_nbdev.sweep import SMOKE
    res = tmp_path / 'results'; update_results(SMOKE, out, results=res)
    f = res / 'smoke_local.csv'; t = pd.read_csv(f)
    t.loc[t.row == 'GCE', 'done'] = False; t.to_csv(f, index=False)   # GCE did not finish on the other machine
    fresh = tmp_path / 'fresh'
    r = sweep('smoke', '--dry-run', '--out', str(fresh), '--results', str(res))
    assert r.returncode == 0, r.stderr
    assert re.search(r'8 runs \((4 committed, 4 todo|4 todo, 4 committed)\)', r.stdout) and 'to run: 4 runs' in r.stdout, r.stdout
    r = sweep('smoke', '--out', str(fresh), '--results', str(res), '--quiet')
    assert r.returncode == 0, r.stderr
    assert 'sweep smoke (local): 8 runs: 4 finished (0 earlier), 4 finished elsewhere (committed), 0 failed, 0 locked' in r.stdout, r.stdout
    got = records(fresh)
    assert sorted(got) == sorted(k for k in ref if '-gce-' in k)   # only the GCE runs trained here, bit for bit the reference
    assert_same(got, {k: ref[k] for k in got})
    assert 'CE ' in r.stdout and 'GCE' in r.stdout and 'nan' not in r.stdout.split('sweep smoke')[1], r.stdout  # the whole table
    r = sweep('smoke', '--dry-run', '--out', str(fresh), '--results', str(tmp_path / 'nowhere'))
    assert r.returncode == 0 and re.search(r'8 runs \((4 finished, 4 todo|4 todo, 4 finished)\)', r.stdout), r.stdout   # no file: nothing is committed

def test_limit_scores_keep_the_figures_counts_and_the_most_confusing_images(tmp_path):
    "`limit_scores` (LIMIT Figs. A2-A4 as small data): histograms over every training image, split by the true noise, and the top images by distance"
    from noisy_nbdev.experiments import Row, expand
    from noisy_nbdev.sweep import run_sweep, SCORE_EDGES, analyse
    exp = _smoke_like('test_sweep_limit_scores', [Row('LIMIT_L -S', 'limit_l', kwargs=dict(beta=1.0))])
    exp.analyses = ['limit_scores']
    runs = run_sweep(exp, out=tmp_path, progress=False)
    r = runs.iloc[0]; mask = np.load(tmp_path / r.run / 'noise_mask.npy').astype(bool)
    h = {k: np.array(r[f'limit_scores_{k}'].split(), dtype=int) for k in ('dist_correct', 'dist_wrong', 'norm_correct', 'norm_wrong')}
    assert all(len(v) == len(SCORE_EDGES) - 1 for v in h.values())
    assert (h['dist_wrong'].sum(), h['dist_correct'].sum(), h['norm_wrong'].sum()) == (mask.sum(), (~mask).sum(), mask.sum())
    top = json.loads(r.limit_scores_top)
    assert len(top) == 16 and [t[3] for t in top] == sorted((t[3] for t in top), reverse=True) and r.limit_scores_predictor == 'best_val'
    ce = _smoke_like('test_sweep_limit_scores_ce', [Row('CE', 'ce')])
    assert analyse(tmp_path / runs.iloc[0].run, expand(exp)[0], ['limit_scores'])['limit_scores_applies'] is True
    ce_runs = run_sweep(ce, out=tmp_path, progress=False)
    assert analyse(tmp_path / ce_runs.iloc[0].run, expand(ce)[0], ['limit_scores'])['limit_scores_applies'] is False   # not a LIMIT run

def test_results_retrains_a_committed_ce_run_that_a_run_to_train_starts_from(tmp_path):
    "`plan(results=)`: FW (init_from_ce) unfinished in the file keeps its committed CE runs to train; FW finished leaves them committed"
    import pandas as pd
    from noisy_nbdev.experiments import Row, update_results
    from noisy_nbdev.sweep import run_sweep, plan
    exp = _smoke_like('test_sweep_results_fw', [Row('FW', 'fw', run=dict(init_from_ce=True)), Row('CE', 'ce')])
    run_sweep(exp, out=tmp_path / 'a', progress=False)
    res = tmp_path / 'results'; update_results(exp, tmp_path / 'a', results=res)
    f = res / 'test_sweep_results_fw_local.csv'; t = pd.read_csv(f)
    assert list(plan(exp, out=tmp_path / 'b', results=res).status) == ['committed'] * 4
    t.loc[t.row == 'FW', 'done'] = False; t.to_csv(f, index=False)
    assert list(plan(exp, out=tmp_path / 'b', results=res).status) == ['todo'] * 4   # FW must train, and it starts from the CE folders
    t['run'] = t.run.where(t.row == 'FW', t.run + '-stale'); t.loc[t.row == 'FW', 'done'] = True; t.to_csv(f, index=False)
    assert list(plan(exp, out=tmp_path / 'b', results=res).status) == ['committed', 'committed', 'todo', 'todo']  # stale lines do not stop it
