"""Samples per second of a CE training step on MNIST-shaped batches with LIMIT's 4-layer CNN (and others).

Usage: python bench/bench_ce.py [--model limit_cnn] [--bs 256] [--steps 50] [--real]
--real reads MNIST from $NOISY_NBDEV_DATA and runs one full epoch through the Learner (the hot path: in-memory
tensors, slicing, per-sample loss records), reporting samples/s of the whole loop as well as of the bare step.
Numbers depend on the machine and its load: compare ratios measured in one run, not across runs.
"""
import argparse, time, torch, torch.nn.functional as F
from noisy_nbdev.models import get_model
from noisy_nbdev.train import Learner, Method
from noisy_nbdev.data import load_dataset, take, make_synthetic

def bare_step(model, opt, x, y):
    opt.zero_grad(set_to_none=True); loss = F.cross_entropy(model(x), y); loss.backward(); opt.step()

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--model', default='limit_cnn'); p.add_argument('--bs', type=int, default=256)
    p.add_argument('--steps', type=int, default=50); p.add_argument('--real', action='store_true')
    p.add_argument('--n', type=int, default=12800, help='samples in the Learner epoch')
    a = p.parse_args()
    torch.manual_seed(0)
    model = get_model(a.model, 10, in_channels=1); opt = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = torch.randn(a.bs, 1, 28, 28), torch.randint(0, 10, (a.bs,))
    for _ in range(5): bare_step(model, opt, x, y)
    t = time.perf_counter()
    for _ in range(a.steps): bare_step(model, opt, x, y)
    dt = time.perf_counter() - t
    print(f"bare CE step  {a.model} bs={a.bs}: {a.steps*a.bs/dt:,.0f} samples/s ({dt/a.steps*1e3:.1f} ms/step), torch threads {torch.get_num_threads()}")
    ds = take(load_dataset('mnist'), a.n, seed=0) if a.real else make_synthetic(a.n)
    learn = Learner(get_model(a.model, 10, in_channels=1), Method(), ds, bs=a.bs, progress=False)
    learn._fit_epoch(0)  # warm-up (also computes the cached float tensor)
    t = time.perf_counter(); learn._fit_epoch(1); dt = time.perf_counter() - t
    print(f"Learner epoch {a.model} bs={a.bs} on {'MNIST' if a.real else 'synthetic'} n={len(ds)}: {len(ds)/dt:,.0f} samples/s")

if __name__ == '__main__': main()
