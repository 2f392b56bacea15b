"""Step time of ASIF and of LIMIT relative to a CE step on the same model and batch, measured in one run.

ASIF (issue target <= 1.10; `bench_identifier.py` measures its floor): ResNet-18 with the CIFAR stem, a CIFAR-shaped
batch of 128, N_c = 5000 ids per class (CIFAR-10's 50k training images), the identifier at the authors' code's sizes
(1024, 2048), the paper's dynamics.
LIMIT (target <= 2.05): the classifier and a predictor of the same size, LIMIT_L -S.
Steps are interleaved (CE, ASIF, LIMIT, CE, ...) so that load on a shared machine hits all alike; the ratio of medians
is reported, with each method's minor page faults per step (a count: it does not depend on the machine's load).
`--malloc tuned` calls `tune_malloc()` first (glibc reuses freed large buffers; 03_train); run it beside `--malloc default`.
Usage: python bench/bench_methods.py [--model resnet18] [--bs 128] [--nc 5000] [--reps 5] [--device cuda] [--malloc tuned]
"""
import argparse, resource, statistics, time, torch
from noisy_nbdev.models import get_model
from noisy_nbdev.data import TensorData
from noisy_nbdev.train import Learner, Method, default_device, tune_malloc
from noisy_nbdev.asif import ASIF, asif_as_in_code
from noisy_nbdev.limit import LIMIT

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--model', default='resnet18'); p.add_argument('--bs', type=int, default=128)
    p.add_argument('--nc', type=int, default=5000, help='training samples per class (identifier output size)')
    p.add_argument('--classes', type=int, default=10); p.add_argument('--size', type=int, default=32)
    p.add_argument('--channels', type=int, default=3)
    p.add_argument('--reps', type=int, default=5); p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--device', default=None); p.add_argument('--methods', default='asif,limit', help='comma-separated: asif, asif_code (the authors\' dynamics), limit')
    p.add_argument('--malloc', choices=['default', 'tuned'], default='default', help="'tuned': tune_malloc() before anything is allocated")
    a = p.parse_args()
    tuned = tune_malloc() if a.malloc == 'tuned' else False
    dev = torch.device(a.device) if a.device else default_device()
    torch.manual_seed(0)
    N, C = a.nc * a.classes, a.classes
    # a training set of the right size: only its labels matter to the methods' set-up (ids per class)
    ds = TensorData(torch.zeros(N, a.channels, 1, 1, dtype=torch.uint8), torch.arange(N) % C, C, (0.,) * a.channels, (1.,) * a.channels)
    x = torch.randn(a.bs, a.channels, a.size, a.size, device=dev); y = torch.randint(0, C, (a.bs,), device=dev)
    idx = torch.randperm(N)[:a.bs]; y = (idx % C).to(dev)
    learners = {'CE': Learner(get_model(a.model, C, in_channels=a.channels), Method(), ds, device=dev, progress=False)}
    if 'asif' in a.methods.split(','): learners['ASIF'] = Learner(get_model(a.model, C, in_channels=a.channels), ASIF(), ds, device=dev, progress=False)
    if 'asif_code' in a.methods.split(','): learners['ASIF (code)'] = Learner(get_model(a.model, C, in_channels=a.channels), asif_as_in_code(), ds, device=dev, progress=False)
    if 'limit' in a.methods: learners['LIMIT'] = Learner(get_model(a.model, C, in_channels=a.channels), LIMIT(), ds, device=dev, progress=False)
    def step(l):
        if dev.type == 'cuda': torch.cuda.synchronize()
        f, t = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter(); l.method.train_step(l, x, y, idx.to(dev))
        if dev.type == 'cuda': torch.cuda.synchronize()
        return time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f
    times, faults = {k: [] for k in learners}, {k: [] for k in learners}
    for r in range(a.warmup + a.reps):
        for k, l in learners.items():
            dt, df = step(l)
            if r >= a.warmup: times[k].append(dt); faults[k].append(df)
    med = {k: statistics.median(v) for k, v in times.items()}
    params = {k: sum(p.numel() for p in l.parameters()) for k, l in learners.items()}
    print(f"device {dev} ({torch.cuda.get_device_name() if dev.type == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"model {a.model}, batch {a.bs}x{a.channels}x{a.size}x{a.size}, N_c {a.nc}, reps {a.reps}, malloc {a.malloc}{' (applied)' if tuned else ''}")
    for k in learners:
        print(f"{k:11s} median step {med[k]*1e3:9.1f} ms  ({params[k]/1e6:.1f} M parameters)  ratio to CE {med[k]/med['CE']:.3f}  page faults/step {statistics.median(faults[k]):,.0f}")

if __name__ == '__main__': main()
