"""Many runs as one model (`noisy_nbdev.batched`), from the installed package: a group's records equal the single runs'."""
import json, os, subprocess, sys
from dataclasses import replace
from pathlib import Path
import pytest, torch
from noisy_nbdev.batched import MemberGroup, run_group, group_key
from noisy_nbdev.train import RunConfig, TrainingDiverged, run_experiment, load_run, Learner, get_method, set_seed
from noisy_nbdev.data import TensorData, make_synthetic, split_train_val
from noisy_nbdev.models import get_model

BASE = RunConfig(dataset='synthetic', model='limit_cnn', bs=64, train_size=240, val_size=200, test_size=200, epochs=50, patience=8)

def _hist(path): return [{k: v for k, v in json.loads(l).items() if k != 'time'} for l in open(Path(path)/'metrics.jsonl')]

def _same_as_single(cfgs, tmp_path, mode='loop'):
    g = run_group(cfgs, tmp_path/'group', device='cpu', progress=False, mode=mode)
    s = [run_experiment(c, tmp_path/'single', device='cpu', progress=False) for c in cfgs]
    for a, b in zip(g, s):
        assert _hist(a['path']) == _hist(b['path'])
        assert a['best_val'] == b['best_val'] and a['last'] == b['last']
        ca, cb = load_run(a['path'])['checkpoint'](), load_run(b['path'])['checkpoint']()
        for k in ca['model']: assert torch.equal(ca['model'][k], cb['model'][k]), k
        for ma, mb in zip(ca['modules'], cb['modules']):
            for k in ma: assert torch.equal(ma[k], mb[k]), k
        for k in ca['best_state']: assert torch.equal(ca['best_state'][k], cb['best_state'][k]), k
        sa, sb = ca['opts']['main']['state'], cb['opts']['main']['state']
        for j in sa: assert torch.equal(sa[j]['exp_avg'], sb[j]['exp_avg'])
    return g, s

def test_ce_group_equals_single_runs(tmp_path):
    "Four CE runs (different seeds, noise rates and patience) for up to 200 steps: records and weights bit for bit"
    cfgs = [replace(BASE, seed=s, rate=r, patience=p) for s, r, p in [(0, 0.0, 8), (1, 0.4, 4), (2, 0.8, 8), (3, 0.6, 2)]]
    g, _ = _same_as_single(cfgs, tmp_path)
    assert len({r['last']['epoch'] for r in g}) > 1  # members stopped at their own epochs

def test_limit_group_equals_single_runs(tmp_path):
    "LIMIT_L -S at two betas and LIMIT_L +S (its own generator per member): bit for bit"
    cfgs = [replace(BASE, method='limit_l', seed=0, rate=0.5, method_kwargs=dict(beta=1.0)),
            replace(BASE, method='limit_l', seed=1, rate=0.8, method_kwargs=dict(beta=100.0)),
            replace(BASE, method='limit_l', seed=2, rate=0.5, method_kwargs=dict(sample=True, sigma=0.3))]
    _same_as_single(cfgs, tmp_path)

class _Data64(TensorData):
    @property
    def xf(self): return super().xf.double()

def _learners64(epochs):
    out = []
    for s, b in zip((0, 1, 2), (0.1, 10.0, 100.0)):
        tr, va = split_train_val(make_synthetic(200, noise=2.0, seed=s), 0.2, seed=s)
        tr, va = [_Data64(d.x, d.y, d.num_classes, d.mean, d.std) for d in (tr, va)]
        set_seed(s); m = get_model('limit_cnn', 10, in_channels=1).double()
        l = Learner(m, get_method('limit_l', beta=b), tr, va, bs=32, seed=s, progress=False, device='cpu')
        l.method.q.double(); l._kill = None; l._begin_fit(epochs); out.append(l)
    return out

def test_vmap_mode_equals_loop_mode_in_float64():
    """vmap (stacked parameters, one Adam, grouped convolutions) vs loop for 80 steps in float64: rounding only.
    On one thread: with two, the kernels split their sums differently and the gap depends on the machine (1.1e-9 on
    an Intel Xeon at two threads, with this code and with 2026-11-24's alike; 4.8e-10 on one thread). A real
    difference (a member fed another member's training set) is 0.08."""
    threads = torch.get_num_threads(); torch.set_num_threads(1)
    try:
        A, B = _learners64(16), _learners64(16)
        MemberGroup(A, 'loop', progress=False).fit(); MemberGroup(B, 'vmap', progress=False).fit()
    finally: torch.set_num_threads(threads)
    for a, b in zip(A, B):
        assert [h['val_acc'] for h in a.history] == [h['val_acc'] for h in b.history]
        assert max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters())) < 1e-9
        for ka, kb in zip(a.model.state_dict().values(), b.model.state_dict().values()):  # BatchNorm running statistics too
            assert torch.allclose(ka.double(), kb.double(), atol=1e-9)

def test_diverged_member_fails_alone(tmp_path):
    "A member whose gradient overflows is recorded as failed; the others equal their single runs"
    cfgs = [replace(BASE, method='ce_gn', epochs=3, method_kwargs=dict(std=0.1)), replace(BASE, method='ce_gn', seed=1, epochs=3, method_kwargs=dict(std=1e30))]
    assert group_key(cfgs[0]) == group_key(cfgs[1])
    g = run_group(cfgs, tmp_path, device='cpu', progress=False)
    assert isinstance(g[1], TrainingDiverged) and 'non-finite' in str(g[1])
    assert json.loads((Path(g[1].record['path'])/'result.json').read_text())['status'] == 'failed'
    s = run_experiment(cfgs[0], tmp_path/'single', device='cpu', progress=False)
    assert _hist(g[0]['path']) == _hist(s['path'])

def test_killed_group_resumes(tmp_path):
    "SIGKILL after member 0's checkpoint of epoch 1 (members now at different epochs): the rerun finishes both, equal to single runs"
    cfgs = [replace(BASE, seed=s, rate=0.4, epochs=4, patience=None) for s in (0, 1)]
    code = ("import sys, pickle; from noisy_nbdev.batched import run_group; "
            f"run_group(pickle.loads({__import__('pickle').dumps(cfgs)!r}), {str(tmp_path)!r}, device='cpu', progress=False)")
    r = subprocess.run([sys.executable, '-c', code], env=dict(os.environ, NOISY_NBDEV_KILL_AFTER_STEP='1:end'), capture_output=True, text=True)
    assert r.returncode == -9, r.stderr
    assert not any((tmp_path/c.run_name()/'done').exists() for c in cfgs)
    g = run_group(cfgs, tmp_path, device='cpu', progress=False)
    s = [run_experiment(c, tmp_path/'single', device='cpu', progress=False) for c in cfgs]
    for a, b in zip(g, s): assert _hist(a['path']) == _hist(b['path']) and not a['reused']

def test_what_cannot_group():
    with pytest.raises(ValueError, match='mode must be'): MemberGroup([object()], mode='fast')
    with pytest.raises(ValueError, match='at least one'): MemberGroup([])
    assert group_key(replace(BASE, method='asif')) is None
    assert group_key(BASE) != group_key(replace(BASE, bs=32))
    for opt in (dict(channels_last=True), dict(autocast='bf16'), dict(compile=True)):  # the single Learner's speed options: such runs train alone
        assert group_key(replace(BASE, **opt)) is None, opt
    tr = make_synthetic(64, seed=0)
    ls = [Learner(get_model('limit_cnn', 10, in_channels=1), None, tr, device='cpu', progress=False, autocast=a) for a in (None, 'bf16')]
    with pytest.raises(ValueError, match='speed options'): MemberGroup(ls)
