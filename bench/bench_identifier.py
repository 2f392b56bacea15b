"""Where ASIF's extra step time goes: its identifier's forward + backward and its Adam step, against a CE step.

`bench_methods.py` gives ASIF / CE for the whole step. This splits the identifier's part (at the authors' code's
sizes: public 512 -> 1024 -> 2048, ten private heads 2048 -> N_c = 5000, the packed heads of `noisy_nbdev.asif`)
into its forward + backward and its optimiser step (fused Adam over its 105 M parameters), each timed apart,
interleaved with CE steps of ResNet-18 on a CIFAR-shaped batch, so that load hits all alike. The identifier's
share of a CE step is the floor of ASIF / CE - 1 that no change outside the identifier can go below.
Usage: python bench/bench_identifier.py [--reps 10] [--bs 128] [--nc 5000] [--threads N]
"""
import argparse, statistics, time, torch
from noisy_nbdev.models import get_model
from noisy_nbdev.data import TensorData
from noisy_nbdev.train import Learner, Method, tune_malloc
from noisy_nbdev.asif import Identifier, identification_loss

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--reps', type=int, default=10); p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--bs', type=int, default=128); p.add_argument('--nc', type=int, default=5000)
    p.add_argument('--classes', type=int, default=10); p.add_argument('--threads', type=int, default=None)
    a = p.parse_args()
    tune_malloc()
    if a.threads: torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    C, N = a.classes, a.classes * a.nc
    ds = TensorData(torch.zeros(N, 3, 1, 1, dtype=torch.uint8), torch.arange(N) % C, C, (0.,) * 3, (1.,) * 3)
    ce = Learner(get_model('resnet18', C, in_channels=3), Method(), ds, device='cpu', progress=False)
    x = torch.randn(a.bs, 3, 32, 32); idx = torch.randperm(N)[:a.bs]; y, ids = idx % C, idx // C
    ident = Identifier(512, torch.full((C,), a.nc), hidden=1024, width=2048)
    opt = torch.optim.Adam(ident.parameters(), lr=1e-3, fused=True)
    feats = torch.randn(a.bs, 512, requires_grad=True)
    def fwd_bwd():
        opt.zero_grad(set_to_none=True)
        loss, _, _ = identification_loss(ident(feats, y), ids, y, C); loss.backward()
    parts = {'CE step': lambda: ce.method.train_step(ce, x, y, idx), 'identifier fwd + bwd': fwd_bwd, 'identifier Adam': opt.step}
    times = {k: [] for k in parts}
    for r in range(a.warmup + a.reps):
        for k, f in parts.items():
            t = time.perf_counter(); f(); dt = time.perf_counter() - t
            if r >= a.warmup: times[k].append(dt)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    n_id = sum(p.numel() for p in ident.parameters())
    print(f"cpu ({torch.get_num_threads()} threads), batch {a.bs}, N_c {a.nc}, identifier {n_id / 1e6:.1f} M parameters, reps {a.reps}")
    for k, v in med.items(): print(f"{k:22s} median {v:8.1f} ms  ({v / med['CE step']:.3f} of a CE step)")
    share = (med['identifier fwd + bwd'] + med['identifier Adam']) / med['CE step']
    print(f"identifier share of a CE step {share:.3f} (ASIF / CE >= {1 + share:.3f} here unless the identifier gets faster)")

if __name__ == '__main__': main()
