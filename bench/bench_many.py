"""Runs/hour of the LIMIT-MNIST n=10^3 protocol: M members trained as one `MemberGroup` against the same M runs one at a time.

The protocol of LIMIT Table 1's n=10^3 column as `limit_table1` declares it (LIMIT_L -S, beta 100, batch 256, Adam 1e-3,
the full 12k noisy validation set every epoch, the code's normalisation, test only at the end), timed over a few epochs
(both sides train the same epochs; the speed-up does not depend on how many). Needs MNIST under NOISY_NBDEV_DATA.
Usage: python bench/bench_many.py [--device cpu|cuda] [--members M] [--epochs E] [--mode loop|vmap|auto] [--quick]
"""
import argparse, tempfile, time
from dataclasses import replace
from pathlib import Path
import torch
from noisy_nbdev.train import RunConfig, _start_run, default_device
from noisy_nbdev.batched import MemberGroup

def members(cfgs, d, device):
    out = []
    for c in cfgs:
        p = Path(d)/c.run_name(); p.mkdir(parents=True)
        l, _, _ = _start_run(c, p, d, None, device, False); l._kill = None; l._begin_fit(c.epochs); out.append(l)
    return out

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--device', default=None); p.add_argument('--members', type=int, default=8)
    p.add_argument('--epochs', type=int, default=3); p.add_argument('--mode', default='auto'); p.add_argument('--repeats', type=int, default=2, help='alternations of the two sides; the fastest of each counts')
    p.add_argument('--quick', action='store_true', help='4 members, 2 epochs, 2 repeats (under 5 minutes on 2 CPU cores)')
    a = p.parse_args()
    if a.quick: a.members, a.epochs = 4, 2
    dev = torch.device(a.device) if a.device else default_device()
    base = RunConfig(dataset='mnist', noise='symmetric', rate=0.5, method='limit_l', method_kwargs=dict(beta=100.0), bs=256, lr=1e-3,
                     train_size=1000, norm='limit_code', test_only_selected=True, epochs=a.epochs)
    cfgs = [replace(base, seed=s) for s in range(a.members)]
    with tempfile.TemporaryDirectory() as d:
        warm = members([replace(base, seed=99, epochs=1)], Path(d)/'warm', dev)[0]; warm.fit(1)  # kernels, allocator and caches warmed up
        MemberGroup(members([replace(base, seed=s, epochs=1) for s in (97, 98)], Path(d)/'warm2', dev), a.mode, progress=False).fit()
        t_alone, t_group = [], []
        for r in range(a.repeats):  # alternated, so that a change of load or clock hits both sides
            alone = members(cfgs, Path(d)/f'alone{r}', dev)
            if dev.type == 'cuda': torch.cuda.synchronize()
            t = time.perf_counter()
            for l in alone: l.fit(a.epochs)
            if dev.type == 'cuda': torch.cuda.synchronize()
            t_alone.append(time.perf_counter() - t)
            g = MemberGroup(members(cfgs, Path(d)/f'group{r}', dev), a.mode, progress=False)
            t = time.perf_counter(); g.fit()
            if dev.type == 'cuda': torch.cuda.synchronize()
            t_group.append(time.perf_counter() - t)
        t_alone, t_group = min(t_alone), min(t_group)
    where = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f"cpu, {torch.get_num_threads()} threads"
    per_epoch = lambda t: t / (a.members * a.epochs)
    print(f"LIMIT-MNIST n=10^3 (12k validation images per epoch), {a.members} members, {a.epochs} epochs, mode {g.mode}, {where}")
    print(f"one at a time: {per_epoch(t_alone):.3f} s per run-epoch")
    print(f"batched:       {per_epoch(t_group):.3f} s per run-epoch")
    print(f"runs/hour at the protocol's median {200} epochs: one at a time {3600 / (per_epoch(t_alone) * 200):.1f}, batched {3600 / (per_epoch(t_group) * 200):.1f}")
    print(f"speed-up {t_alone / t_group:.2f} (M={a.members} members batched vs one at a time, {where})")

if __name__ == '__main__': main()
