"""End-to-end tests of the `noisy-train` command, run as a user runs it (a subprocess), on real MNIST."""
import json, os, signal, subprocess, sys, time
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

@pytest.mark.parametrize('args,msg', [
    (['--dataset', 'svhn'], 'unknown --dataset'),
    (['--rate', '1.5'], '--rate must lie in [0, 1]'),
    (['--method', 'nope'], 'unknown --method'),
    (['--model', 'vgg'], 'unknown --model'),
    (['--method-kwargs', '{bad'], 'not valid JSON'),
    (['--rate', 'lots'], "invalid float value: 'lots'"),
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

def test_an_interrupted_run_resumes(data_root, tmp_path):
    args = ['--dataset', 'mnist', '--rate', '0.2', '--model', 'limit_cnn', '--epochs', '4', '--train-size', '6000',
            '--test-size', '1000', '--out', str(tmp_path), '--quiet']
    p = subprocess.Popen([EXE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    metrics = None
    while time.time() < deadline and p.poll() is None:
        found = list(tmp_path.glob('*/metrics.jsonl'))
        if found and found[0].read_text().count('\n') >= 1: metrics = found[0]; break
        time.sleep(0.05)
    assert metrics is not None and p.poll() is None, 'the run finished before it could be interrupted'
    p.send_signal(signal.SIGKILL); p.wait()
    done_before = metrics.read_text().count('\n')
    assert 1 <= done_before < 4
    r = run(*args)
    assert r.returncode == 0, r.stderr
    epochs = [json.loads(l)['epoch'] for l in metrics.read_text().splitlines()]
    assert epochs == [0, 1, 2, 3], epochs        # resumed: no epoch repeated or lost
