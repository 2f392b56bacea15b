"""The sweep's executors (`noisy_nbdev.executors`, nbs/17_executors.ipynb) as a user runs them: `noisy-sweep
cluster_check` (four MNIST runs) with `--executor local`, `ray` (a local Ray with 2 CPUs) and `slurm` (submitit; with no
SLURM here, submitit's local processes). The commands are the ones nbs/24_clusters.ipynb shows.

Every executor must give the records the `local` executor gives (`run_records`: result.json, metrics.jsonl, the
analyses and the per-sample arrays, times left out), and a sweep killed once a run has finished (SIGKILL to its whole
process group: the sweep, its Ray or its submitit jobs; a worker left alive would hold a run's lock and the rerun
would report it locked) must complete when the same command runs again, without
training again the runs that were finished."""
import os, re, shutil, subprocess, sys, time
from pathlib import Path
import pytest

EXE = Path(sys.executable).parent / 'noisy-sweep'
ENV = {k: v for k, v in os.environ.items() if k != 'NOISY_NBDEV_KILL_AFTER_STEP'}
ENV.setdefault('OMP_NUM_THREADS', '1')
needs_mnist = pytest.mark.skipif(not (Path(os.environ.get('NOISY_NBDEV_DATA', '~/.cache/noisy_nbdev/data')).expanduser() / 'MNIST' / 'raw').exists(),
                                 reason='needs MNIST under $NOISY_NBDEV_DATA')

def command(executor, out):
    "The tested command line: `noisy-sweep cluster_check --executor E --jobs 2 --out OUT --quiet`"
    return [str(EXE), 'cluster_check', '--executor', executor, '--jobs', '2', '--out', str(out), '--quiet']

ANNOUNCE = {'local': None, 'ray': 'executor ray: a Ray started here (2 CPUs)',
            'slurm': "executor slurm: submitit's 'local' cluster (no SLURM here: the jobs run as processes of this machine)"}

def sweep(executor, out, timeout=400):
    r = subprocess.run(command(executor, out), capture_output=True, text=True, timeout=timeout, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    if ANNOUNCE[executor]: assert ANNOUNCE[executor] in r.stderr, r.stderr   # the runs went where asked
    return r.stdout

def records(out):
    from noisy_nbdev.executors import sweep_records
    return sweep_records(out)

@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    "The `local` executor's records (2 worker processes): what every executor must give"
    out = tmp_path_factory.mktemp('local')
    assert 'sweep cluster_check (local): 4 runs: 4 finished (0 earlier), 0 failed, 0 locked' in sweep('local', out)
    rec = records(out)
    assert len(rec) == 4 and all(len(r['metrics']) == 2 for r in rec.values())
    return rec

def _kill_after_first_run(executor, out, kill):
    "Start the sweep, SIGKILL its process group as soon as one run folder is finished; the finished runs' `done` times"
    kill(command(executor, out), out, ENV, timeout=300)
    # a worker outside the group (a Ray worker has a group of its own) dies with its raylet, a moment later; while it
    # lives it holds its run's lock: wait for every lock to be free before reading which runs finished
    from noisy_nbdev.sweep import plan
    t0 = time.time()
    while 'locked' in set(plan('cluster_check', out=out).status):
        assert time.time() - t0 < 60, 'a worker of the killed sweep still holds a run folder after 60 s'
        time.sleep(0.1)
    return {f.parent.name: f.stat().st_mtime_ns for f in out.glob('*/done')}

@needs_mnist
@pytest.mark.parametrize('executor', ['ray', 'slurm'])
def test_executor_killed_midway_then_rerun_gives_the_local_records(executor, reference, tmp_path, kill_when_a_run_finishes):
    pytest.importorskip({'ray': 'ray', 'slurm': 'submitit'}[executor], reason=f"--executor {executor} needs the extra [cluster]")
    if executor == 'slurm' and shutil.which('sbatch'): pytest.skip('a SLURM cluster is here: this test runs submitit\'s local processes only')
    out = tmp_path / executor
    done = _kill_after_first_run(executor, out, kill_when_a_run_finishes)
    assert 1 <= len(done) < 4, done
    log = sweep(executor, out)
    assert f'sweep cluster_check (local): 4 runs: 4 finished ({len(done)} earlier), 0 failed, 0 locked' in log, log
    assert {n: (out / n / 'done').stat().st_mtime_ns for n in done} == done   # the finished runs did not run again
    assert records(out) == reference

@pytest.mark.parametrize('executor,module', [('ray', 'ray'), ('slurm', 'submitit')])
def test_missing_package_names_the_extra(executor, module, monkeypatch, tmp_path):
    "Without its package, an executor is one error naming the package and the extra, from Python and from the command"
    from fastcore.script import CliError
    from noisy_nbdev.executors import make_executor, ExecutorUnavailable
    from noisy_nbdev.cli import noisy_sweep
    monkeypatch.setitem(sys.modules, module, None)   # what `import ray` meets where it is not installed
    with pytest.raises(ExecutorUnavailable, match=re.escape(f"executor '{executor}' needs the package '{module}'") + '.*' + re.escape('pip install -e ".[cluster]"')):
        make_executor(executor, 2, out=tmp_path)
    with pytest.raises(CliError, match=re.escape('.[cluster]')):
        noisy_sweep('cluster_check', executor=executor, out=str(tmp_path), quiet=True)
    assert not any(tmp_path.glob('mnist-*'))   # refused before any run

def test_options_are_checked_before_anything_runs(tmp_path):
    "An option of another executor, or a bad value, is refused naming the flag, a dry run included"
    r = subprocess.run([str(EXE), 'cluster_check', '--executor', 'ray', '--partition', 'gpu', '--dry-run', '--out', str(tmp_path)],
                       capture_output=True, text=True, env=ENV, timeout=120)
    assert (r.returncode, r.stderr.strip()) == (1, 'noisy-sweep: error: --partition applies to --executor slurm, not ray'), r.stderr
    from noisy_nbdev.executors import make_executor
    with pytest.raises(ValueError, match="option time=0 must be >= 1"): make_executor('slurm', 2, out=tmp_path, time=0)
    assert not any(tmp_path.iterdir())
