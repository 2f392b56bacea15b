"""End-to-end tests of the `noisy-train` command, run as a user runs it (a subprocess), on real MNIST."""
import json, os, signal, subprocess, sys
from pathlib import Path
import pytest

EXE = str(Path(sys.executable).parent / 'noisy-train')
DATA = os.environ.get('NOISY_NBDEV_DATA')

def run(*args, **kw):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=600, **kw)

def test_help_lists_documented_flags():
    r = run('--help')
    assert r.returncode == 0
    for flag, doc in [('--rate', 'noise rate in [0, 1]'), ('--train-size', 'seeded subset'), ('--method', 'training method')]:
        assert flag in r.stdout and doc in r.stdout, (flag, r.stdout)

def test_every_runconfig_field_has_a_flag_with_help():
    """The flags are generated from `RunConfig`: a field added without a flag or a help text fails here."""
    from dataclasses import fields
    from fastcore.script import anno_parser
    from noisy_nbdev.cli import noisy_train
    from noisy_nbdev.train import RunConfig
    acts = {s: a for a in anno_parser(noisy_train.__wrapped__)._actions for s in a.option_strings}
    for f in fields(RunConfig):
        flag = '--' + f.name.replace('_', '-')
        assert flag in acts, f"RunConfig.{f.name} has no {flag}"
        assert acts[flag].dest == f.name
        assert acts[flag].help and not acts[flag].help.startswith(' (default'), (flag, acts[flag].help)
    for own in ('--out', '--data-root', '--device', '--quiet'): assert own in acts

def test_help_shows_val_size_and_momentum():
    r = run('--help')
    assert r.returncode == 0
    assert '--val-size (int)' in r.stdout and 'seeded subset of the noisy validation split' in r.stdout, r.stdout
    assert '--momentum (float)' in r.stdout and 'SGD momentum' in r.stdout, r.stdout

def test_val_size_momentum_and_opt_reach_the_run_config(tmp_path):
    args = ['--dataset', 'synthetic', '--model', 'small_cnn', '--epochs', '1', '--train-size', '300', '--test-size', '100',
            '--val-size', '50', '--momentum', '0.5', '--opt', 'sgd', '--method-kwargs', '{}', '--out', str(tmp_path), '--quiet']
    r = run(*args)
    assert r.returncode == 0, r.stderr
    run_dir = Path(r.stdout.split('run folder: ')[1].split()[0])
    cfg = json.loads((run_dir / 'config.json').read_text())['config']
    assert (cfg['val_size'], cfg['momentum'], cfg['opt']) == (50, 0.5, 'sgd'), cfg
    assert cfg['method_kwargs'] == {} and cfg['train_size'] == 300

@pytest.mark.parametrize('args,msg', [
    (['--dataset', 'svhn'], '--dataset svhn: unknown dataset'),
    (['--rate', '1.5'], '--rate 1.5: the noise rate must lie in [0, 1]'),
    (['--method', 'nope'], '--method nope: unknown method'),
    (['--model', 'vgg'], '--model vgg: unknown model'),
    (['--method-kwargs', '{bad'], 'not valid JSON'),
    (['--rate', 'lots'], "invalid float value: 'lots'"),
    (['--momentum', '1'], '--momentum 1.0: must lie in [0, 1)'),
    (['--val-size', '0'], '--val-size 0'),
    (['--val-size', 'ten'], "invalid int value: 'ten'"),
    (['--model-kwargs', '[1'], '--model-kwargs is not valid JSON'),
])
def test_bad_arguments_give_a_message_not_a_traceback(args, msg, tmp_path):
    r = run(*args, '--out', str(tmp_path))
    assert r.returncode != 0
    assert msg in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr
    assert not any(tmp_path.iterdir())  # nothing written

def test_missing_data_is_explained(tmp_path):
    r = run('--dataset', 'mnist', '--data-root', str(tmp_path / 'nothing'), '--out', str(tmp_path))
    assert r.returncode != 0 and 'Traceback' not in r.stderr
    assert 'expected the raw files' in r.stderr and 'NOISY_NBDEV_DATA' in r.stderr

@pytest.fixture
def data_root():
    if not DATA or not (Path(DATA) / 'MNIST' / 'raw').exists():
        pytest.fail('set NOISY_NBDEV_DATA to the folder holding MNIST/raw (CI points it at ../shared/data)')
    return DATA

def test_trains_ce_on_real_mnist_with_noise_and_writes_a_run_folder(data_root, tmp_path):
    args = ['--dataset', 'mnist', '--noise', 'symmetric', '--rate', '0.5', '--method', 'ce', '--model', 'limit_cnn',
            '--epochs', '3', '--train-size', '2000', '--test-size', '2000', '--seed', '1', '--out', str(tmp_path), '--quiet']
    r = run(*args)
    assert r.returncode == 0, r.stderr
    run_dir = Path(r.stdout.split('run folder: ')[1].split()[0])
    cfg = json.loads((run_dir / 'config.json').read_text())
    assert cfg['config']['rate'] == 0.5 and cfg['config']['train_size'] == 2000 and 'version' in cfg
    res = json.loads((run_dir / 'result.json').read_text())
    assert abs(res['noise']['train_rate'] - 0.5) < 0.05          # LIMIT's uniform noise at 50%
    assert res['best_val']['test_acc'] > 0.5, res                 # chance is 0.1; noise-free CE gets ~0.9
    assert res['oracle_best_test']['oracle'] is True
    lines = (run_dir / 'metrics.jsonl').read_text().splitlines()
    assert [json.loads(l)['epoch'] for l in lines] == [0, 1, 2]
    # the same command again reuses the finished run, and writes nothing new
    mtime = (run_dir / 'result.json').stat().st_mtime
    r2 = run(*args)
    assert r2.returncode == 0 and 'reused' in r2.stdout and (run_dir / 'result.json').stat().st_mtime == mtime

# Installed only in the interrupted run's subprocess (a `sitecustomize` on its PYTHONPATH): the process SIGKILLs itself
# after `KILL_AFTER_STEPS` optimiser steps of epoch `KILL_IN_EPOCH`, i.e. mid-epoch with that epoch's checkpoint not
# yet written. The interruption point is fixed by the code path, not by how fast the machine is, so nothing races.
KILL_HOOK = """
import os, signal
from noisy_nbdev.train import Learner
_fit_epoch = Learner._fit_epoch
def _killing_fit_epoch(self, epoch):
    if epoch == int(os.environ['KILL_IN_EPOCH']):
        step, n = self.method.train_step, [0]
        def train_step(*a, **k):
            n[0] += 1
            if n[0] > int(os.environ['KILL_AFTER_STEPS']): os.kill(os.getpid(), signal.SIGKILL)
            return step(*a, **k)
        self.method.train_step = train_step
    return _fit_epoch(self, epoch)
Learner._fit_epoch = _killing_fit_epoch
"""

def test_an_interrupted_run_resumes(data_root, tmp_path):
    args = ['--dataset', 'mnist', '--rate', '0.2', '--model', 'limit_cnn', '--epochs', '3', '--train-size', '2000',
            '--test-size', '500', '--quiet']
    hook = tmp_path / 'hook'; hook.mkdir(); (hook / 'sitecustomize.py').write_text(KILL_HOOK)
    env = dict(os.environ, KILL_IN_EPOCH='1', KILL_AFTER_STEPS='3',
               PYTHONPATH=os.pathsep.join([str(hook)] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    out = tmp_path / 'runs'
    killed = run(*args, '--out', str(out), env=env)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    [run_dir] = out.iterdir()
    metrics = run_dir / 'metrics.jsonl'
    first = [json.loads(l) for l in metrics.read_text().splitlines()]
    assert [h['epoch'] for h in first] == [0]  # epoch 1 was cut short
    assert (run_dir / 'checkpoint.pt').exists() and not (run_dir / 'result.json').exists()
    r = run(*args, '--out', str(out))  # the same command, without the hook, resumes
    assert r.returncode == 0, r.stderr
    assert 'reused' not in r.stdout and str(run_dir) in r.stdout
    resumed = [json.loads(l) for l in metrics.read_text().splitlines()]
    assert [h['epoch'] for h in resumed] == [0, 1, 2], resumed   # no epoch repeated or lost
    assert resumed[0] == first[0]  # epoch 0 was not trained again (its record, wall time included, is the killed run's)
    # and it is the run an uninterrupted command gives: the same losses and accuracies in every epoch
    ref = run(*args, '--out', str(tmp_path / 'ref'))
    assert ref.returncode == 0, ref.stderr
    whole = [json.loads(l) for l in next((tmp_path / 'ref').glob('*/metrics.jsonl')).read_text().splitlines()]
    drop_time = lambda hs: [{k: v for k, v in h.items() if k != 'time'} for h in hs]
    assert drop_time(resumed) == drop_time(whole)
