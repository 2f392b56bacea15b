"""Samples/s of a CE ResNet-18 epoch on CIFAR-shaped data: eager against each speed option of the `Learner`.

The package's `resnet18` (CIFAR stem) trained with cross-entropy through `Learner._fit_epoch` (data kept on the
device, batches gathered there, the epoch's sums on the device), so the options measured are the package's own:
`channels_last`, `autocast='bf16'`, `compile` and combinations (see *Speed options* in nbs/03_train.ipynb). The data
are random 3x32x32 images (50,000 by default, as CIFAR's training set) and labels, batch 128, no evaluation.

Each option gets its own `Learner` (same seed) and one warm-up epoch on a subset holding both batch shapes of the
epoch (the full batch and the last, smaller one), where `torch.compile` compiles; then the options' epochs are timed
in turn, `--repeats` times (alternated, so that a change of load or clock hits every option alike); the fastest
epoch of each counts. Ends with one line per option: seconds per epoch, samples/s and the speed-up over eager.

Usage: python bench/bench_options.py [--device cpu|cuda] [--images N] [--repeats R] [--options eager,bf16,...] [--quick]
--quick: 256 images per epoch, 2 repeats, five options with one compiled (under 5 minutes on 2 CPU cores, compiling included).
"""
import argparse, time, warnings
import torch
from noisy_nbdev.train import Learner, Method, default_device
from noisy_nbdev.data import TensorData
from noisy_nbdev.models import resnet18

OPTIONS = {'eager': {}, 'channels_last': dict(channels_last=True), 'bf16': dict(autocast='bf16'),
           'channels_last+bf16': dict(channels_last=True, autocast='bf16'), 'compile': dict(compile=True),
           'compile+channels_last': dict(compile=True, channels_last=True),
           'compile+channels_last+bf16': dict(compile=True, channels_last=True, autocast='bf16')}
QUICK = 'eager,channels_last,bf16,channels_last+bf16,compile'  # one compiled variant: compiling ResNet-18 takes minutes on 2 CPU cores

def cifar_shaped(n:int, seed:int=0) -> TensorData:
    "n random 3x32x32 uint8 images with random labels in 0..9"
    g = torch.Generator().manual_seed(seed)
    return TensorData(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.randint(0, 10, (n,), generator=g),
                      10, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26), name='cifar-shaped')

def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)

def epoch(l:Learner, e:int, dev) -> float:
    "Seconds of one training epoch of `l`"
    sync(dev); t = time.perf_counter(); l._fit_epoch(e); sync(dev)
    return time.perf_counter() - t

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default=None, help='cpu or cuda (default: cuda if available)')
    p.add_argument('--images', type=int, default=50_000, help='images per epoch (CIFAR: 50,000)')
    p.add_argument('--bs', type=int, default=128)
    p.add_argument('--repeats', type=int, default=3, help='timed epochs per option, alternated; the fastest counts')
    p.add_argument('--options', default=None, help=f"comma-separated, from {', '.join(OPTIONS)} (default: all; --quick: {QUICK})")
    p.add_argument('--quick', action='store_true', help='256 images, 2 repeats (under 5 minutes on 2 CPU cores)')
    a = p.parse_args()
    if a.quick: a.images, a.repeats = 256, 2
    names = (a.options or (QUICK if a.quick else ','.join(OPTIONS))).split(',')
    if bad := [o for o in names if o not in OPTIONS]: p.error(f"unknown options {bad}; choose from {', '.join(OPTIONS)}")
    if 'eager' not in names: names.insert(0, 'eager')
    dev = torch.device(a.device) if a.device else default_device()
    ds = cifar_shaped(a.images)
    rem = a.images % a.bs
    warm = cifar_shaped(a.bs + rem if rem else a.bs, seed=1)  # both batch shapes of the epoch
    where = (f"{torch.cuda.get_device_name(dev)}" if dev.type == 'cuda' else f"cpu, {torch.get_num_threads()} threads") + f", torch {torch.__version__}"
    print(f"CE ResNet-18 (CIFAR stem), {a.images:,} CIFAR-shaped images per epoch, batch {a.bs}, {where}", flush=True)
    learners, times = {}, {o: [] for o in names}
    for o in names:
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)  # channels_last on the CPU with BatchNorm (see 03_train)
            l = Learner(resnet18(10), Method(), warm, bs=a.bs, seed=0, device=dev, progress=False, record_losses=False, **OPTIONS[o])
        t = epoch(l, 0, dev)
        print(f"  warm-up {o}: {t:.1f} s ({len(warm)} images{', compiling' if OPTIONS[o].get('compile') else ''})", flush=True)
        l.train = ds; learners[o] = l
    for r in range(a.repeats):
        for o in names:
            times[o].append(epoch(learners[o], r + 1, dev))
            print(f"  repeat {r + 1} {o}: {times[o][-1]:.3f} s", flush=True)
    best = {o: min(ts) for o, ts in times.items()}
    print(f"fastest of {a.repeats} epochs per option ({where}):")
    for o in names:
        print(f"{o:28s} {best[o]:9.3f} s/epoch {a.images / best[o]:10,.0f} samples/s  speed-up {best['eager'] / best[o]:.2f}x vs eager")

if __name__ == '__main__': main()
