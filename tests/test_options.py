"""The Learner's speed options (`channels_last`, `autocast='bf16'`, `compile`; see *Speed options* in
nbs/03_train.ipynb), from the installed package: they reach the kernels in training and evaluation, the float32 ones
agree with eager within the tolerance the notebook justifies, bf16 differs but stays close, they flow from `RunConfig`
to the run's `Learner` without changing any existing run key, checkpoints load into a plain model, and bad values
raise naming the argument. Small CPU runs on synthetic data; speed is measured in bench/bench_options.py."""
import json, os, subprocess, sys, textwrap, warnings
from dataclasses import fields, replace
from pathlib import Path
import numpy as np
import pytest, torch
from torch import nn
import noisy_nbdev.train as T
from noisy_nbdev.train import Learner, Method, RunConfig, build_learner, prepare_data, run_experiment, set_seed, load_run
from noisy_nbdev.data import make_synthetic
from noisy_nbdev.models import get_model

TR = make_synthetic(1024, channels=3, size=32, noise=1.5, seed=0)
VA = make_synthetic(512, channels=3, size=32, noise=1.5, seed=0, train=False)
NEW = dict(channels_last=(False, True), autocast=(None, 'bf16'), compile=(False, True), augment=(None, 'paper'))  # field: (default, another value)

def short_run(**opts):
    "32 Adam steps (2 epochs, batch 64) of a LIMIT CNN, evaluated each epoch; and what its convolutions saw"
    set_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # channels_last with BatchNorm on the CPU
        l = Learner(get_model('limit_cnn', 10, in_channels=3), Method(), TR, VA, bs=64, seed=0, device='cpu', progress=False, **opts)
    seen = set()
    for c in (m for m in l.model.modules() if isinstance(m, nn.Conv2d)):
        c.register_forward_hook(lambda m, i, o: seen.add((i[0].is_contiguous(memory_format=torch.channels_last) and not i[0].is_contiguous(),
                                                         o.dtype, torch.compiler.is_compiling(), m.training)))
    l.fit(2)
    return l, seen

def max_dloss(l, ref): return float(np.abs(l.sample_losses - ref.sample_losses).max())
def dval(l, ref): return max(abs(a['val_acc'] - b['val_acc']) for a, b in zip(l.history, ref.history))

@pytest.fixture(scope='module')
def eager(): return short_run()

def test_eager_is_deterministic(eager):
    assert np.array_equal(short_run()[0].sample_losses, eager[0].sample_losses)  # so the differences below are the options'

def test_channels_last_reaches_the_kernels_and_agrees_with_eager(eager):
    l, seen = short_run(channels_last=True)
    assert seen == {(True, torch.float32, False, True), (True, torch.float32, False, False)}, seen  # training and evaluation
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in l.model.parameters() if p.dim() == 4)
    # tolerance (03_train): 10x the drift of the same run on inputs moved by one float32 rounding step
    assert max_dloss(l, eager[0]) < 1e-2 and dval(l, eager[0]) <= 0.01, (max_dloss(l, eager[0]), dval(l, eager[0]))

def test_bf16_runs_in_bf16_and_differs_but_stays_close(eager):
    l, seen = short_run(autocast='bf16')
    assert seen == {(False, torch.bfloat16, False, True), (False, torch.bfloat16, False, False)}, seen  # training and evaluation
    assert all(p.dtype == torch.float32 for p in l.parameters())  # weights (and so the optimiser) stay float32
    d0 = float(np.abs(l.sample_losses[0] - eager[0].sample_losses[0]).max())
    assert d0 > 1e-2, d0  # visibly different from float32
    for a, b in zip(l.history, eager[0].history): assert abs(a['train_loss'] - b['train_loss']) / b['train_loss'] < 0.05, (a, b)

def test_backward_leaves_autocast():
    set_seed(0)
    l = Learner(get_model('limit_cnn', 10, in_channels=3), Method(), TR, device='cpu', progress=False, autocast='bf16')
    seen = []
    l.model.head.register_full_backward_hook(lambda m, gi, go: seen.append(torch.is_autocast_enabled('cpu')))
    x, y = TR.xf[:8], TR.y[:8]
    with l._autocast_ctx():
        loss = torch.nn.functional.cross_entropy(l.forward(x).logits, y)
        l.backward(loss)
    assert seen == [False], seen

@pytest.mark.slow
def test_compile_compiles_agrees_and_checkpoints_plain_keys(eager, tmp_path):
    l, seen = short_run(compile=True)
    assert {s[2] for s in seen} == {True}, seen  # the convolutions ran while dynamo traced them
    assert max_dloss(l, eager[0]) < 1e-2 and dval(l, eager[0]) <= 0.01, (max_dloss(l, eager[0]), dval(l, eager[0]))
    keys = list(l._state()['model'])
    assert keys == list(eager[0].model.state_dict()) and not any('_orig_mod' in k for k in keys)
    plain = get_model('limit_cnn', 10, in_channels=3); plain.load_state_dict(l._state()['model'])
    assert T.evaluate(plain, VA)['acc'] == l.history[-1]['val_acc']

COMPILE_FAILS = textwrap.dedent("""
    import torch, torch._inductor.config as c
    c.cpp.cxx = ('no-such-c++-compiler',)  # as on a machine without one
    from noisy_nbdev.train import Learner
    from noisy_nbdev.data import make_synthetic
    from noisy_nbdev.models import get_model
    ds = make_synthetic(64, channels=3, size=8, seed=0)
    l = Learner(get_model('mlp', 10, in_channels=3, input_size=8, width=8, depth=1), train=ds, bs=32, device='cpu', progress=False, compile=True)
    try: l.fit(1)
    except RuntimeError as e: print('ERROR', e)
""")

def test_compile_without_a_compiler_says_so(tmp_path):
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(tmp_path/'cache'), OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, '-c', COMPILE_FAILS], capture_output=True, text=True, env=env, timeout=300)
    out = r.stdout.strip().splitlines()
    assert out and out[-1].startswith('ERROR compile=True: torch.compile cannot compile the model here'), (r.stdout, r.stderr[-2000:])
    assert 'train without compile' in out[-1] and 'C++ compiler' in out[-1], out[-1]

def test_compile_is_refused_in_data_parallel_training(monkeypatch):
    l = Learner(get_model('mlp', 10, in_channels=3, input_size=32, width=8, depth=1), train=TR, device='cpu', progress=False, compile=True)
    monkeypatch.setattr(T, 'DIST', object())  # as `noisy_nbdev.ddp` sets it
    with pytest.raises(ValueError, match='compile=True: not supported in data-parallel'): l._begin_fit(1)

def test_channels_last_warns_on_the_cpu_with_batchnorm_only():
    with pytest.warns(RuntimeWarning, match='channels_last on the CPU'):
        Learner(get_model('limit_cnn', 10, in_channels=3), train=TR, device='cpu', progress=False, channels_last=True)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # an MLP has no 4-d tensors: nothing to warn about
        Learner(get_model('mlp', 10, in_channels=3, input_size=32), train=TR, device='cpu', progress=False, channels_last=True)

# ------------------------------------------------------------------------------------------------ RunConfig

def test_new_fields_have_defaults_that_keep_every_key():
    now = {f.name: f.default for f in fields(RunConfig)}
    assert {k: now[k] for k in NEW} == {k: d for k, (d, _) in NEW.items()}
    # the keys pinned in tests/test_run_records.py, from before the options existed
    assert RunConfig().key() == 'de4ee31337' and RunConfig(dataset='synthetic', rate=0.2, epochs=3).key() == '9bab7f42a6'
    base = RunConfig(dataset='synthetic', rate=0.2, epochs=3)
    for k, (d, v) in NEW.items():
        assert replace(base, **{k: d}).key() == base.key() and replace(base, **{k: v}).key() != base.key(), k

@pytest.mark.parametrize('name,bad', [('channels_last', 'yes'), ('channels_last', 1), ('autocast', 'fp16'), ('autocast', True),
                                      ('compile', 'true'), ('compile', None), ('augment', 'crop'), ('augment', True)])
def test_bad_values_raise_naming_the_field(name, bad):
    with pytest.raises(ValueError, match=f'RunConfig.{name}='): RunConfig(**{name: bad})
    with pytest.raises(ValueError, match=f'Learner: {name}='):
        Learner(nn.Linear(2, 2), train=TR, device='cpu', progress=False, **{name: bad})

def test_augment_is_seeded_changes_the_inputs_and_still_learns(eager):
    eager = eager[0]
    a, _ = short_run(augment='paper'); b, _ = short_run(augment='paper'); c, _ = short_run(augment='code')
    assert np.array_equal(a.sample_losses, b.sample_losses)          # the crops and flips are seeded per epoch
    assert max_dloss(a, eager) > 1e-3 and max_dloss(c, a) > 1e-3     # other inputs than eager's, and than each other's
    assert min(x.history[-1]['val_acc'] for x in (a, c)) > 0.5 * eager.history[-1]['val_acc'], [x.history[-1]['val_acc'] for x in (a, c, eager)]
    with pytest.raises(ValueError, match=r"Learner: augment='paper'.*H and W >= 8"):
        Learner(nn.Linear(2, 2), train=make_synthetic(64, channels=1, size=4, seed=0), device='cpu', progress=False, augment='paper')
    from noisy_nbdev.batched import group_key
    assert group_key(RunConfig(dataset='synthetic', augment='paper')) is None and group_key(RunConfig(dataset='synthetic')) is not None

def test_the_cli_has_the_flags():
    from noisy_nbdev.cli import cli_signature
    ps = cli_signature().parameters
    assert all(k in ps for k in NEW) and ps['autocast'].default is None and ps['compile'].default is False

def test_options_flow_from_runconfig_to_the_learner_and_the_run_folder(tmp_path):
    cfg = RunConfig(dataset='synthetic', train_size=256, test_size=128, epochs=2, bs=64, channels_last=True, autocast='bf16')
    with pytest.warns(RuntimeWarning, match='channels_last on the CPU'):
        l = build_learner(cfg, *prepare_data(cfg), device='cpu', progress=False)
    assert (l.channels_last, l.autocast, l.compile) == (True, 'bf16', False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        res = run_experiment(cfg, tmp_path, device='cpu', progress=False)
    run = load_run(res['path'])
    assert run['config'] == cfg and json.loads((Path(res['path'])/'config.json').read_text())['config']['autocast'] == 'bf16'
    # the checkpoint of a channels_last run loads into a plain (contiguous) model and scores what the run recorded
    _, _, te = prepare_data(cfg)
    plain = get_model(cfg.model, te.num_classes, in_channels=1); plain.load_state_dict(run['last_state']()['model'])
    with torch.autocast('cpu', dtype=torch.bfloat16):  # NCHW against the run's NHWC: bf16 roundings may move a prediction or two
        assert abs(T.evaluate(plain, te)['acc'] - res['last']['test_acc']) <= 2 / len(te)
