"""Reliability of run folders (see the *Reliability* section of nbs/03_train.ipynb): a run killed anywhere resumes bit for
bit, records are written atomically and damaged ones are detected and redone, one process per run folder, a NaN stops
the run. Small CPU runs on the synthetic data set. Killed runs are separate processes that SIGKILL themselves at a
point fixed by the testing hook `NOISY_NBDEV_KILL_AFTER_STEP`, not by timing, so nothing races."""
import json, os, shutil, signal, subprocess, sys, time, warnings
from pathlib import Path
import numpy as np, pytest, torch
import torch.nn.functional as F
import noisy_nbdev.train as T
from noisy_nbdev.train import METHODS, Method, RunConfig, RunFolderWarning, TrainingDiverged, run_experiment

# A method whose loss draws from the Python, NumPy and torch global RNGs: a resume that loses one of their states differs.
PROBE = '''
import random
import numpy as np, torch
import torch.nn.functional as F
from noisy_nbdev.train import Method
class RngProbe(Method):
    def loss(self, out, y, idx):
        u = random.random() + float(np.random.rand()) + float(torch.rand(()))
        return F.cross_entropy(out.logits, y) * (1 + 1e-2 * u)
'''
# The subprocess: registers the probe, optionally holds its run in epoch 0 (lock taken) until the test releases it.
RUNNER = PROBE + '''
import json, os, sys, time
from noisy_nbdev.train import Learner, register_method, run_experiment, RunConfig, RunLocked
register_method('_rng_probe', RngProbe)
if os.environ.get('PAUSE_DIR'):
    d, fit_epoch = os.environ['PAUSE_DIR'], Learner._fit_epoch
    def paused(self, epoch):
        open(os.path.join(d, f'started-{os.getpid()}'), 'w').close()
        t = time.time()
        while not os.path.exists(os.path.join(d, 'release')) and time.time() - t < 120: time.sleep(0.05)
        return fit_epoch(self, epoch)
    Learner._fit_epoch = paused
cfg = RunConfig(**json.loads(sys.argv[2]))
try: res = run_experiment(cfg, out=sys.argv[1], device='cpu', progress=False)
except RunLocked as e: print(f'RunLocked: {e}', file=sys.stderr); sys.exit(3)
print(json.dumps(res))
'''
_ns = {}; exec(PROBE, _ns); RngProbe = _ns['RngProbe']

STEPS = 7  # optimisation steps per epoch: 200 training samples, batches of 32 (the last one of 8)
METHOD_CASES = {  # name -> (method, method_kwargs)
    'ce': ('ce', {}),
    'rng_probe': ('_rng_probe', {}),
    'ce_gn': ('ce_gn', dict(std=0.05)),                      # its own noise generator
    'limit_l+S': ('limit_l', dict(sample=True, sigma=0.1)),  # predictor module + its own sampling generator
    'asif_dgr': ('asif', dict(hidden=32, width=32)),         # identifier (dropout), DGR lambdas
    'asif_dann': ('asif', dict(hidden=32, width=32, reversal='dann')),  # DANN's step count
}
KILLS = [  # (method case, kill point 'epoch:step' or 'epoch:end')
    ('ce', '0:1'),        # first step of the run: no checkpoint yet, starts over
    ('ce', '1:4'),        # mid-epoch
    ('ce', f'1:{STEPS}'), # last step of an epoch, before its evaluation and checkpoint
    ('ce', '1:end'),      # between epochs: checkpoint written, metrics line not yet
    ('ce', '2:end'),      # after the last epoch's checkpoint: no epoch left to train, only the records
    ('rng_probe', '1:4'),
    ('ce_gn', '1:4'),
    ('limit_l+S', '1:4'),
    ('limit_l+S', '0:end'),
    ('asif_dgr', f'1:{STEPS}'),
    ('asif_dann', '1:3'),
]

def config(case='ce', **kw):
    method, mk = METHOD_CASES[case]
    return RunConfig(**{**dict(dataset='synthetic', rate=0.4, method=method, method_kwargs=mk, model='mlp',
                               model_kwargs=dict(width=32, depth=2, dropout=0.2), epochs=3, bs=32, train_size=200,
                               test_size=100, seed=1), **kw})

@pytest.fixture(scope='module', autouse=True)
def test_methods():
    "Register the probe (and the NaN method) in this process for the module's tests only"
    METHODS['_rng_probe'], METHODS['_poison'] = RngProbe, PoisonAt
    yield
    METHODS.pop('_rng_probe'); METHODS.pop('_poison')

def env(**kw):
    pkg_root = str(Path(T.__file__).resolve().parents[1])  # the subprocess imports the package this test imports
    return dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_root] + [p for p in [os.environ.get('PYTHONPATH')] if p]),
                OMP_NUM_THREADS=str(torch.get_num_threads()), **kw)

def start(out, cfg, runner, **kw):
    return subprocess.Popen([sys.executable, str(runner), str(out), json.dumps(vars(cfg))], env=env(**kw),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

def quiet_run(cfg, out):
    "run_experiment in this process; returns the result and the RunFolderWarning messages"
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always', RunFolderWarning)
        res = run_experiment(cfg, out, device='cpu', progress=False)
    return res, [str(x.message) for x in w if issubclass(x.category, RunFolderWarning)]

def drop_time(hs): return [{k: v for k, v in h.items() if k != 'time'} for h in hs]

def same(a, b):
    "Exact equality of nested checkpoint contents (tensors and arrays bit for bit)"
    if isinstance(a, torch.Tensor): return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, np.ndarray): return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, dict): return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)): return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b

def snapshot(run_dir):
    "What must not depend on interruptions: the final checkpoint (all of it), the history and the result"
    run_dir = Path(run_dir)
    ck = torch.load(run_dir/'checkpoint.pt', weights_only=False)
    ck['history'] = drop_time(ck['history'])
    hist = [json.loads(l) for l in (run_dir/'metrics.jsonl').read_text().splitlines()]
    return ck, drop_time(hist), json.loads((run_dir/'result.json').read_text())

def assert_same_run(got, ref):
    (ck, hist, res), (ck0, hist0, res0) = snapshot(got), snapshot(ref)
    assert [h['epoch'] for h in hist] == list(range(len(hist0))), hist   # each epoch once
    assert hist == hist0
    assert res == res0
    diff = [k for k in ck0 if not same(ck.get(k), ck0[k])]
    assert not diff, f"checkpoint parts that differ from the uninterrupted run: {diff}"
    assert not list(Path(got).glob('*.tmp')) and not list(Path(got).glob('.*.tmp'))

@pytest.fixture(scope='module')
def killed(request, tmp_path_factory):
    "Start every selected killed run at once (they mostly import, so this is faster than one by one); collect them lazily"
    root = tmp_path_factory.mktemp('killed')
    runner = root/'runner.py'; runner.write_text(RUNNER)
    wanted = [(it.callspec.params['case'], it.callspec.params['kill']) for it in request.session.items
              if getattr(it, 'originalname', None) == 'test_kill_and_resume_equals_uninterrupted_run']
    procs = {(c, k): start(root/f'{c}-{k.replace(":", "_")}', config(c), runner, NOISY_NBDEV_KILL_AFTER_STEP=k) for c, k in wanted}
    yield root, procs
    for p in procs.values():
        if p.poll() is None: p.kill()

@pytest.fixture(scope='module')
def references(tmp_path_factory):
    root, refs = tmp_path_factory.mktemp('refs'), {}
    def get(case):
        if case not in refs: refs[case] = quiet_run(config(case), root/case)[0]['path']
        return refs[case]
    return get

@pytest.mark.parametrize('case,kill', KILLS, ids=[f'{c}-{k}' for c, k in KILLS])
def test_kill_and_resume_equals_uninterrupted_run(case, kill, killed, references):
    root, procs = killed
    p = procs[(case, kill)]; _, err = p.communicate(timeout=300)
    assert p.returncode == -signal.SIGKILL, (p.returncode, err[-3000:])
    [run_dir] = (root/f'{case}-{kill.replace(":", "_")}').iterdir()
    e, k = kill.split(':')
    ck = run_dir/'checkpoint.pt'
    if k == 'end':  # killed between the epoch's checkpoint and its metrics line
        assert torch.load(ck, weights_only=False)['epoch'] == int(e) + 1
        assert len((run_dir/'metrics.jsonl').read_text().splitlines()) == int(e)
    elif int(e) == 0: assert not ck.exists()
    else: assert torch.load(ck, weights_only=False)['epoch'] == int(e)  # the interrupted epoch is not in it
    assert not (run_dir/'result.json').exists() and not (run_dir/'done').exists()
    res, msgs = quiet_run(config(case), run_dir.parent)  # the same config again resumes
    assert not res['reused'] and res['path'] == str(run_dir)
    assert any('stale lock' in m and f'"pid": {p.pid}' in m for m in msgs), msgs  # the killed process's lock, taken over
    assert_same_run(run_dir, references(case))

def test_every_record_goes_through_atomic_write(tmp_path, monkeypatch):
    written, real = [], T.atomic_write
    monkeypatch.setattr(T, 'atomic_write', lambda path, write: written.append(Path(path).name) or real(path, write))
    res = run_experiment(config('ce', epochs=2), tmp_path, device='cpu', progress=False)
    files = {p.name for p in Path(res['path']).iterdir()} - {'run.lock', 'checkpoint.prev.pt'}  # the lock file; a link to a written checkpoint
    assert files == {'config.json', 'metrics.jsonl', 'checkpoint.pt', 'result.json', 'sample_losses.npy', 'noise_mask.npy', 'done'}
    assert files <= set(written), files - set(written)
    assert written[-1] == 'done'  # written last: a folder with `done` has all its records

def _cut(f, n=-20): f.write_bytes(f.read_bytes()[:n])
DAMAGE = {  # name -> (how to damage a finished run's folder, text the warning must contain)
    'checkpoint': (lambda d: (_cut(d/'checkpoint.pt', 500), (d/'done').unlink()), 'checkpoint.pt is unreadable'),
    'both_checkpoints': (lambda d: (_cut(d/'checkpoint.pt', 500), _cut(d/'checkpoint.prev.pt', 500), (d/'done').unlink()), 'starting the run over'),
    'metrics_cut': (lambda d: _cut(d/'metrics.jsonl'), 'metrics.jsonl: line 3 is not a JSON record'),
    'metrics_cut_unfinished': (lambda d: (_cut(d/'metrics.jsonl'), (d/'done').unlink()), 'line 3 is not a JSON record (truncated?); rewritten from the checkpoint'),
    'metrics_repeated': (lambda d: (d/'metrics.jsonl').write_text((d/'metrics.jsonl').read_text().splitlines(True)[0] * 2 +
                                    ''.join((d/'metrics.jsonl').read_text().splitlines(True)[1:])), 'line 2 holds epoch 0'),
    'result_not_json': (lambda d: (d/'result.json').write_text('{"last": '), 'result.json is unreadable'),
    'result_failed': (lambda d: (d/'result.json').write_text(json.dumps(dict(json.loads((d/'result.json').read_text()), status='failed'))),
                      'result.json is not a finished result'),
    'sample_losses_cut': (lambda d: _cut(d/'sample_losses.npy'), 'sample_losses.npy is unreadable'),
    'noise_mask_missing': (lambda d: (d/'noise_mask.npy').unlink(), 'noise_mask.npy is unreadable'),
    'config_not_json': (lambda d: (d/'config.json').write_text('{'), 'config.json is unreadable'),
    'tmp_leftovers': (lambda d: ((d/'.checkpoint.pt.123-abcd.tmp').write_bytes(b'x'), (d/'metrics.jsonl.tmp').write_text('x'), (d/'done').unlink()), None),
}

@pytest.mark.parametrize('damage', list(DAMAGE))
def test_damaged_records_are_detected_and_redone(damage, tmp_path, references):
    ref = Path(references('ce'))
    run_dir = tmp_path/ref.name; shutil.copytree(ref, run_dir)
    hurt, msg = DAMAGE[damage]; hurt(run_dir)
    res, msgs = quiet_run(config('ce'), tmp_path)
    assert not res['reused'] and res['path'] == str(run_dir)
    if msg: assert any(msg in m and str(run_dir) in m for m in msgs), msgs  # the warning names the file
    assert_same_run(run_dir, ref)
    assert quiet_run(config('ce'), tmp_path)[0]['reused']  # and it is whole again

def test_two_processes_on_one_run_folder(tmp_path):
    "Started at once on one config: one trains, the other stops with a message naming it; each epoch is recorded once"
    runner = tmp_path/'runner.py'; runner.write_text(RUNNER)
    pause = tmp_path/'pause'; pause.mkdir(); out = tmp_path/'runs'; cfg = config('ce', epochs=2)
    ps = [start(out, cfg, runner, PAUSE_DIR=str(pause)) for _ in range(2)]
    try:
        deadline = time.time() + 120  # both hold in epoch 0 until released: a second trainer cannot finish first
        # first, until one process trains (the other may already have given up: it must not end the wait early)
        while time.time() < deadline and not list(pause.glob('started-*')) and not all(p.poll() is not None for p in ps):
            time.sleep(0.1)
        # then, until the other one gives up, or trains too
        while time.time() < deadline and not any(p.poll() is not None for p in ps) and len(list(pause.glob('started-*'))) < 2:
            time.sleep(0.1)
        started = [int(f.name.split('-')[1]) for f in pause.glob('started-*')]
        assert len(started) == 1, f"{len(started)} processes are training the same run folder"
        [winner] = [p for p in ps if p.pid == started[0]]; [loser] = [p for p in ps if p is not winner]
        _, err = loser.communicate(timeout=120)
        assert loser.returncode == 3, (loser.returncode, err[-3000:])
        assert 'is being run by another process' in err and f'"pid": {winner.pid}' in err, err
        (pause/'release').touch()
        out_w, err_w = winner.communicate(timeout=300)
        assert winner.returncode == 0, err_w[-3000:]
    finally:
        (pause/'release').touch()
        for p in ps:
            if p.poll() is None: p.kill()
    [run_dir] = out.iterdir()
    assert [json.loads(l)['epoch'] for l in (run_dir/'metrics.jsonl').read_text().splitlines()] == [0, 1]
    assert (run_dir/'run.lock').read_text() == ''  # released
    assert quiet_run(cfg, out)[0]['reused']  # the same config afterwards: the finished result

class PoisonAt(Method):
    "CE until its `at`-th step (counted over the run), whose loss is NaN ('loss') or finite with a NaN gradient ('grad')"
    def __init__(self, at:int=STEPS + 3, kind:str='loss'): self.at, self.kind, self.n = at, kind, 0
    def loss(self, out, y, idx):
        self.n += 1; l = F.cross_entropy(out.logits, y)
        if self.n != self.at: return l
        if self.kind == 'loss': return l * float('nan')
        z = out.logits.sum() - out.logits.sum().detach()  # value 0, gradient 1
        return l + 0 * torch.sqrt(z)                      # value l; gradient 0 * d sqrt(z)/dz at 0 = 0 * inf = nan
    def state_dict(self): return dict(n=self.n)  # checkpointed, so a resumed run poisons the same step
    def load_state_dict(self, d): self.n = d['n']

@pytest.mark.parametrize('kind,what', [('loss', 'loss (nan)'), ('grad', 'gradient norm (nan)')])
def test_nan_stops_the_run_and_records_it(kind, what, tmp_path):
    cfg = config('ce', method='_poison', method_kwargs=dict(kind=kind))
    with pytest.raises(TrainingDiverged) as ei: run_experiment(cfg, tmp_path, device='cpu', progress=False)
    msg, rec = str(ei.value), ei.value.record
    assert f'non-finite {what} at epoch 1, step 3' in msg and 'last good checkpoint (after epoch 0)' in msg, msg
    run_dir = Path(rec['path'])
    stored = json.loads((run_dir/'result.json').read_text())
    assert stored['status'] == 'failed' and stored['reason'] in msg and (stored['epoch'], stored['step'], stored['epochs_done']) == (1, 3, 1)
    assert not (run_dir/'done').exists()
    assert [json.loads(l)['epoch'] for l in (run_dir/'metrics.jsonl').read_text().splitlines()] == [0]
    # the checkpoint on disk is the last good one: that of a clean one-epoch CE run of the same seed, all of it
    ce = Path(run_experiment(config('ce', epochs=1), tmp_path/'ce', device='cpu', progress=False)['path'])
    ck, ck0 = (torch.load(d/'checkpoint.pt', weights_only=False) for d in (run_dir, ce))
    ck['history'], ck0['history'] = drop_time(ck['history']), drop_time(ck0['history'])
    assert [k for k in ck0 if k != 'method' and not same(ck[k], ck0[k])] == []  # 'method': the poison's step count
    # not reused: run again, it resumes from that checkpoint and fails at the same step
    with pytest.raises(TrainingDiverged, match='at epoch 1, step 3'): run_experiment(cfg, tmp_path, device='cpu', progress=False)

class _BadAt(Method):
    "CE, except at call `at`: a NaN loss ('loss') or a finite loss with a NaN gradient ('grad': 0 x the slope of sqrt at 0)"
    def __init__(self, at, kind): self.n, self.at, self.kind = 0, at, kind
    def loss(self, out, y, idx):
        self.n += 1; l = F.cross_entropy(out.logits, y)
        if self.n != self.at: return l
        if self.kind == 'loss': return l * float('nan')
        s = out.logits.sum(); return l + 0 * (s - s.detach()).sqrt()

@pytest.mark.parametrize('kind,what', [('loss', 'loss (nan)'), ('grad', 'gradient norm (nan)')])
def test_deferred_finite_check_names_the_same_step(kind, what):
    "check_finite='epoch' (no host sync per step; the GPU default) stops with the same epoch, step and value as 'step'"
    from noisy_nbdev.data import make_synthetic
    from noisy_nbdev.models import get_model
    from noisy_nbdev.train import Learner
    tr = make_synthetic(256, seed=0); per_epoch = 4  # 256 / 64
    msgs = {}
    for mode in ('step', 'epoch'):
        torch.manual_seed(0)
        l = Learner(get_model('mlp', 10, in_channels=tr.xf.shape[1]), _BadAt(per_epoch + 3, kind), tr, bs=64, progress=False, device='cpu', check_finite=mode)
        with pytest.raises(TrainingDiverged) as e: l.fit(3)
        msgs[mode] = str(e.value)
    assert msgs['step'] == msgs['epoch'] and f'non-finite {what} at epoch 1, step 3' in msgs['step'], msgs

def test_seeded_runs_repeat_exactly_on_two_threads():
    """The same seeded run twice in one process with 2 torch threads gives the same history bit for bit (ASIF's
    per-class BatchNorm used `t[y]`, whose gradient sums repeated rows in a thread-dependent order: it did not)"""
    from noisy_nbdev.asif import ASIF
    from noisy_nbdev.limit import LIMIT
    from noisy_nbdev.data import make_synthetic
    from noisy_nbdev.models import get_model
    from noisy_nbdev.train import Learner
    tr, threads = make_synthetic(400, seed=0), torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for make in (ASIF, LIMIT, Method):
            hist = []
            for _ in range(3):
                torch.manual_seed(0)
                l = Learner(get_model('mlp', 10, in_channels=tr.xf.shape[1]), make(), tr, bs=64, progress=False, device='cpu', seed=0)
                l.fit(2); hist.append([{k: v for k, v in h.items() if k != 'time'} for h in l.history])
            assert hist[0] == hist[1] == hist[2], (make.__name__, [[h['train_loss'] for h in x] for x in hist])
    finally: torch.set_num_threads(threads)
