"""Runs/hour of the LIMIT-MNIST n=10^3 protocol: M members trained as one `MemberGroup` against the same M runs one at a time.

The protocol of LIMIT Table 1's n=10^3 column as `limit_table1` declares it (LIMIT_L -S, beta 100, batch 256, Adam 1e-3,
the full 12k noisy validation set every epoch, the code's normalisation, test only at the end), timed over a few epochs
(both sides train the same epochs; the speed-up does not depend on how many). Needs MNIST under NOISY_NBDEV_DATA.
Usage: python bench/bench_many.py [--device cpu|cuda] [--members 1,8,32,128] [--alone N] [--epochs E] [--mode loop|vmap|auto] [--quick]
Each repeat times the runs one at a time (the largest M of them, or --alone N) and then each group size M batched;
one at a time, a run-epoch costs the same whatever M, so that one measurement is every M's baseline.
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
    p.add_argument('--device', default=None)
    p.add_argument('--members', default=None, help='group sizes M, comma-separated, e.g. 1,8,32,128 (default 8; --quick: 4)')
    p.add_argument('--alone', type=int, default=None, help='runs timed one at a time per repeat (default: the largest M); its cost per run-epoch is every M\'s baseline')
    p.add_argument('--epochs', type=int, default=3); p.add_argument('--mode', default='auto'); p.add_argument('--repeats', type=int, default=2, help='alternations of the sides; the fastest of each counts')
    p.add_argument('--quick', action='store_true', help='4 members, 2 epochs, 2 repeats (under 5 minutes on 2 CPU cores)')
    a = p.parse_args()
    if a.quick: a.epochs = 2
    Ms = sorted({int(m) for m in (a.members or ('4' if a.quick else '8')).split(',')})
    if Ms[0] < 1: p.error('--members: group sizes must be >= 1')
    n_alone = a.alone or Ms[-1]
    dev = torch.device(a.device) if a.device else default_device()
    base = RunConfig(dataset='mnist', noise='symmetric', rate=0.5, method='limit_l', method_kwargs=dict(beta=100.0), bs=256, lr=1e-3,
                     train_size=1000, norm='limit_code', test_only_selected=True, epochs=a.epochs)
    cfgs = [replace(base, seed=s) for s in range(max(n_alone, Ms[-1]))]
    with tempfile.TemporaryDirectory() as d:
        warm = members([replace(base, seed=9999, epochs=1)], Path(d)/'warm', dev)[0]; warm.fit(1)  # kernels, allocator and caches warmed up
        MemberGroup(members([replace(base, seed=s, epochs=1) for s in (9997, 9998)], Path(d)/'warm2', dev), a.mode, progress=False).fit()
        t_alone, t_group = [], {M: [] for M in Ms}
        for r in range(a.repeats):  # alternated, so that a change of load or clock hits every side
            spent = 0.  # one run at a time, as a sweep does: each built (not timed), trained (timed) and dropped
            for c in cfgs[:n_alone]:
                l = members([c], Path(d)/f'alone{r}', dev)[0]
                if dev.type == 'cuda': torch.cuda.synchronize()
                t = time.perf_counter(); l.fit(a.epochs)
                if dev.type == 'cuda': torch.cuda.synchronize()
                spent += time.perf_counter() - t; del l
            t_alone.append(spent / (n_alone * a.epochs))
            for M in Ms:
                g = MemberGroup(members(cfgs[:M], Path(d)/f'group{r}-{M}', dev), a.mode, progress=False)
                t = time.perf_counter(); g.fit(); mode = g.mode
                if dev.type == 'cuda': torch.cuda.synchronize()
                t_group[M].append((time.perf_counter() - t) / (M * a.epochs)); del g
        alone_s, group_s = min(t_alone), {M: min(ts) for M, ts in t_group.items()}
    where = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else f"cpu, {torch.get_num_threads()} threads"
    per_hour = lambda s: 3600 / (s * 200)  # runs/hour at the protocol's median 200 epochs
    print(f"LIMIT-MNIST n=10^3 (12k validation images per epoch), {a.epochs} epochs, mode {mode}, fastest of {a.repeats} repeats, {where}")
    print(f"one at a time ({n_alone} runs): {alone_s:.3f} s per run-epoch, {per_hour(alone_s):.1f} runs/hour at 200 epochs")
    for M in Ms:
        print(f"M={M:<4d} batched: {group_s[M]:.3f} s per run-epoch, {per_hour(group_s[M]):.1f} runs/hour at 200 epochs, speed-up {alone_s / group_s[M]:.2f}")
    print(f"speed-up {alone_s / group_s[Ms[-1]]:.2f} (M={Ms[-1]} members batched vs one at a time, {where})")

if __name__ == '__main__': main()
