"""Data-parallel training (`noisy_nbdev.ddp`, nbs/18_ddp.ipynb) as a user starts it: `torchrun --standalone
--nproc-per-node 2 $(which noisy-train) ... --ddp` on the CPU (gloo), against `noisy-train ...` alone with the same
global batch. The commands are the ones nbs/24_clusters.ipynb shows.

The two runs must agree to float tolerance in everything the run folder records: every epoch's record (the loss
curve, accuracies, ASIF's identification loss and mean lambda), the per-sample losses (gathered from both processes)
and the final state of the model and of the method's modules (ASIF's identifier: its weights, DGR's lambda per class,
its per-class BatchNorm statistics), which needs every process's part of each batch in the BatchNorm statistics, the
gradients summed, and ASIF's identifier run on the whole batch with global sample ids. Only process 0 writes."""
import json, math, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch

BIN = Path(sys.executable).parent
ENV = {k: v for k, v in os.environ.items() if k != 'NOISY_NBDEV_KILL_AFTER_STEP'}
ENV['OMP_NUM_THREADS'] = '1'
# 509 training images in batches of 64: the last batch (61) splits 31 / 30 between the processes
BASE = ['--dataset', 'synthetic', '--rate', '0.3', '--model', 'mlp', '--model-kwargs', '{"width": 32, "depth": 2}', '--opt', 'sgd',
        '--lr', '0.05', '--epochs', '3', '--bs', '64', '--train-size', '509', '--val-size', '100', '--test-size', '100',
        '--device', 'cpu', '--quiet']
ASIF = ['--method', 'asif', '--method-kwargs', '{"hidden": 32, "width": 32, "dropout": 0}']

def train(out, *args, ddp=False):
    "`noisy-train ARGS --out OUT`, or the same under torchrun with 2 processes and --ddp; the run folder"
    cmd = [str(BIN / 'noisy-train'), *BASE, *args, '--out', str(out)]
    if ddp: cmd = [str(BIN / 'torchrun'), '--standalone', '--nproc-per-node', '2', *cmd, '--ddp']
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count('run folder:') == 1, r.stdout   # one report: process 0's
    runs = list(Path(out).iterdir())
    assert len(runs) == 1, runs                            # one run folder: process 0's
    return runs[0]

def close(a, b, what, rtol=1e-4, atol=1e-5):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True), (what, np.nanmax(np.abs(a - b)))

def assert_same_run(d, s):
    "Run folders `d` (2 processes) and `s` (1 process) agree to float tolerance in every record"
    hd, hs = [[json.loads(l) for l in (r / 'metrics.jsonl').read_text().splitlines()] for r in (d, s)]
    assert len(hd) == len(hs) == 3 and [sorted(h) for h in hd] == [sorted(h) for h in hs]
    for e, (a, b) in enumerate(zip(hd, hs)):
        for k in a:
            if k != 'time': close(a[k], b[k], f'epoch {e} {k}')
    ld, ls = np.load(d / 'sample_losses.npy'), np.load(s / 'sample_losses.npy')
    assert ld.shape == ls.shape == (3, 509) and not np.isnan(ld).any()   # every sample's loss, from one process or the other
    close(ld, ls, 'sample_losses')
    cd, cs = [torch.load(r / 'checkpoint.pt', weights_only=False) for r in (d, s)]
    assert cd['model'].keys() == cs['model'].keys()
    for k in cs['model']: close(cd['model'][k], cs['model'][k], f'model {k}')
    assert len(cd['modules']) == len(cs['modules'])
    for md, ms in zip(cd['modules'], cs['modules']):
        for k in ms: close(md[k], ms[k], f'module {k}')
    return hd, cd

def test_ce_two_processes_equal_one(tmp_path):
    "CE, MLP with BatchNorm: the loss curve, per-sample records and final weights of 2 gloo processes equal 1 process's"
    hd, _ = assert_same_run(train(tmp_path / 'ddp', ddp=True), train(tmp_path / 'one'))
    assert hd[-1]['train_loss'] < hd[0]['train_loss']

def test_asif_two_processes_equal_one_with_its_per_class_state(tmp_path):
    """ASIF (DGR): as above, and the identifier's per-class state (lambdas, per-class BatchNorm statistics, private
    heads) and the identification records, which need the whole batch and global sample ids"""
    hd, cd = assert_same_run(train(tmp_path / 'ddp', *ASIF, ddp=True), train(tmp_path / 'one', *ASIF))
    lam = cd['modules'][0]['dgr.lambdas']
    assert lam.shape == (10,) and not torch.allclose(lam, torch.ones(10))   # the lambdas moved (and equal the single process's)
    assert all(math.isfinite(h['id_loss']) and h['id_loss'] > 0 for h in hd)

def test_ddp_refuses_what_it_cannot_split_and_says_how_to_start(tmp_path):
    from fastcore.script import CliError
    from noisy_nbdev.cli import noisy_train
    with pytest.raises(CliError, match='--method dmi: not supported under --ddp'):
        noisy_train(dataset='synthetic', method='dmi', ddp=True, out=str(tmp_path))
    with pytest.raises(CliError, match=r'--ddp runs under torchrun.*--nproc-per-node'):
        noisy_train(dataset='synthetic', ddp=True, out=str(tmp_path), device='cpu')
    with pytest.raises(CliError, match='--compile: not supported under --ddp'):
        noisy_train(dataset='synthetic', compile=True, ddp=True, out=str(tmp_path))
    assert not any(tmp_path.iterdir())
