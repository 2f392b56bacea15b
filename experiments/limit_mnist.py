"""LIMIT's MNIST experiment (Sec. 4.1, Tables 1, 4, 5), column n = 10^3, on the CPU.

Protocol (paper / authors' code): 80/20 split of the 60k MNIST training images into train and a *noisy* validation set,
a seeded subset of n = 1000 training images, uniform label noise (never the true class), LIMIT's 4-layer CNN for
classifier and predictor (the predictor's fc layer with BatchNorm), Adam 1e-3, batch 256, model selection on noisy
validation accuracy, clean test accuracy reported. Substitutions, stated in the notebook: at most `--epochs` (default
150) epochs with early stopping after `--patience` (default 30) epochs without a better validation accuracy (paper:
400 / 100), a seeded 2,000-image subset of the noisy validation split and 5,000 of the clean test images (evaluating
all 22k images every epoch would dominate the CPU time), and beta chosen from a small grid on seed 0 by validation accuracy (paper: a larger grid, seed-mean).

Every run is a resumable run folder under --out; rerunning reuses finished runs. The tables the notebook renders are
written to --results (small CSV files, committed).
Usage: python experiments/limit_mnist.py [--seeds 3] [--epochs 200] [--patience 50] [--out runs/limit_mnist]
"""
import json
from pathlib import Path
import pandas as pd, torch
from fastcore.script import call_parse
from noisy_nbdev.train import RunConfig, run_experiment, read_history, TrainingDiverged, RunLocked
from noisy_nbdev.detect import detect_noisy
import noisy_nbdev.limit  # noqa: F401  (registers the LIMIT methods)

Q = dict(q_model='limit_cnn', q_kwargs=dict(fc_bn=True))

A = {}
def cfg(method, rate, seed, epochs, patience, n, **mk):
    return RunConfig(dataset='mnist', noise='symmetric', rate=rate, method=method, method_kwargs=mk, model='limit_cnn',
                     epochs=epochs, bs=256, lr=1e-3, opt='adam', seed=seed, train_size=n, val_frac=0.2,
                     patience=patience, val_size=A.get('val_size'), test_size=A.get('test_size'))

def detection_auc(res, c, root):
    "ROC AUC of LIMIT's gradient-distance score on the run's training set, with its best-validation predictor"
    from noisy_nbdev.train import prepare_data
    from noisy_nbdev.limit import gradient_distance
    from noisy_nbdev.models import get_model
    path = Path(res['path'])
    ck = torch.load(path/'checkpoint.pt', weights_only=False, map_location='cpu')
    train, _, _ = prepare_data(c, root)
    q = get_model('limit_cnn', 10, in_channels=1, fc_bn=True); q.load_state_dict(ck['modules'][0])  # last-epoch predictor
    return detect_noisy(gradient_distance(q, train), train.noise_mask, rate=c.rate).metrics['roc_auc']

BASELINES = [  # label, method, kwargs, start from the best CE model
    ('MAE', 'mae', {}, False), ('FW', 'fw', {}, True), ('DMI', 'dmi', {}, True),
    ('CE + GN', 'ce_gn', dict(std=0.01), False), ('CE + LN', 'ce_ln', dict(std=0.01), False),
    ('Soft reg. (8)', 'soft_reg', dict(lambda_=0.01, beta=0.0, **Q), False),
]

@call_parse
def main(seeds:int=3, # seeds per configuration
         epochs:int=150, patience:int=30, # at most this many epochs; early stopping patience (paper: 400, 100)
         val_size:int=2000, # seeded subset of the 12k noisy validation images (0: all, as in the paper)
         test_size:int=5000, # seeded subset of the 10k clean test images (0: all)
         n:int=1000, # training set size (the paper's column n = 10^3)
         rates:str='0.5,0.8', # noise rates p
         betas:str='1,10,100', # beta grid for LIMIT, chosen on seed 0 by noisy-validation accuracy
         out:str='runs/limit_mnist', results:str='nbs/results', data_root:str=None, device:str=None,
         collect_only:bool=False, # only gather finished runs into the tables (train nothing)
         baselines:bool=True, # also run Table 1's other methods (MAE, FW, DMI, CE+GN/LN, soft reg.)
        ):
    "Run CE, LIMIT_G -S and LIMIT_L -S at each noise rate over several seeds; write the result tables"
    A.update(val_size=val_size or None, test_size=test_size or None)
    rows, curves = [], []
    def go(label, c, **extra):
        if collect_only and not (Path(out)/c.run_name()/'done').exists(): return None
        try: res = run_experiment(c, out=out, root=data_root, device=device, progress=False)
        except (TrainingDiverged, RunLocked) as e: print(f'skipped {label}: {e}', flush=True); return None  # recorded in its run folder
        bv = res['best_val']
        row = dict(method=label, rate=c.rate, seed=c.seed, **extra, best_val_epoch=bv['epoch'], val_acc=bv['val_acc'],
                   test_acc=bv['test_acc'], last_test_acc=res['last']['test_acc'], epochs_run=res['last']['epoch'] + 1,
                   oracle_test_acc=res['oracle_best_test']['test_acc'])
        if c.method.startswith('limit'): row['detect_auc'] = detection_auc(res, c, data_root)
        rows.append(row); print(json.dumps(row), flush=True)
        for h in read_history(res['path']):
            curves.append(dict(method=label, rate=c.rate, seed=c.seed, **extra, **{k: h.get(k) for k in ('epoch', 'train_acc', 'val_acc', 'test_acc', 'mu_norm')}))
        return row
    for rate in map(float, rates.split(',')):
        for s in range(seeds): go('CE', cfg('ce', rate, s, epochs, patience, n))
        if baselines:  # Table 1's other rows, one setting each (the paper tunes some of them; stated in the notebook)
            for name, method, mk, init in BASELINES:
                for s in range(seeds):
                    c = cfg(method, rate, s, epochs, patience, n, **mk); c.init_from_ce = init
                    r = go(name, c)
                    if r is not None: r['selected'] = True
        for name, dist in (('LIMIT_G -S', 'gaussian'), ('LIMIT_L -S', 'laplace')):
            grid = [go(name, cfg('limit', rate, 0, epochs, patience, n, dist=dist, beta=b, **Q), beta=b) for b in map(float, betas.split(','))]
            grid = [r for r in grid if r is not None]
            if len(grid) < len(betas.split(',')): continue  # collecting: the grid is not finished yet
            beta = max(grid, key=lambda r: r['val_acc'])['beta']
            for r in grid: r['selected'] = r['beta'] == beta
            for s in range(1, seeds): go(name, cfg('limit', rate, s, epochs, patience, n, dist=dist, beta=beta, **Q), beta=beta, selected=True)
    Path(results).mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(Path(results)/'limit_mnist_runs.csv', index=False)
    pd.DataFrame(curves).to_csv(Path(results)/'limit_mnist_curves.csv', index=False)
    print('wrote', Path(results)/'limit_mnist_runs.csv')
