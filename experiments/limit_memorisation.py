"""LIMIT's memorisation figure (Fig. 1, 2) at a CPU scale: train accuracy on the noisy labels vs clean test accuracy
per epoch for CE, CE + dropout, CE + weight decay and LIMIT_L -S, on real MNIST with 80% uniform label noise.

The paper's Fig. 1 uses all of MNIST and the 4 x 512 MLP (BatchNorm + ReLU); here a seeded 4,000-image subset of the
80% training split, 40 epochs, Adam 1e-3, batch 256, one seed (stated in the notebook). Dropout 0.5 after every
hidden layer; weight decay 1e-3 (Adam's L2); LIMIT_L -S with beta = 10 and a predictor of the same MLP.
Usage: python experiments/limit_memorisation.py [--n 4000] [--epochs 40] [--out runs/limit_memorisation]
"""
from pathlib import Path
import pandas as pd
from fastcore.script import call_parse
from noisy_nbdev.train import RunConfig, run_experiment, read_history, TrainingDiverged, RunLocked
import noisy_nbdev.limit  # noqa: F401

VARIANTS = {  # label -> RunConfig fields
    'CE': dict(method='ce'),
    'CE + dropout 0.5': dict(method='ce', model_kwargs=dict(dropout=0.5)),
    'CE + weight decay 1e-3': dict(method='ce', wd=1e-3),
    'LIMIT_L -S (beta 10)': dict(method='limit', method_kwargs=dict(dist='laplace', beta=10.0)),
}

@call_parse
def main(n:int=4000, epochs:int=40, rate:float=0.8, seed:int=0,
         out:str='runs/limit_memorisation', results:str='nbs/results', data_root:str=None, device:str=None):
    "Run the four variants and write their per-epoch curves"
    curves = []
    for label, kw in VARIANTS.items():
        c = RunConfig(dataset='mnist', noise='symmetric', rate=rate, model='mlp', epochs=epochs, bs=256, lr=1e-3,
                      seed=seed, train_size=n, val_size=2000, test_size=5000, **kw)
        try: res = run_experiment(c, out=out, root=data_root, device=device, progress=False)
        except (TrainingDiverged, RunLocked) as e: print(f'skipped {label}: {e}', flush=True); continue  # recorded in its run folder
        print(label, res['best_val'], flush=True)
        curves += [dict(method=label, **{k: h.get(k) for k in ('epoch', 'train_acc', 'val_acc', 'test_acc')}) for h in read_history(res['path'])]
    Path(results).mkdir(parents=True, exist_ok=True)
    pd.DataFrame(curves).to_csv(Path(results)/'limit_memorisation_curves.csv', index=False)
