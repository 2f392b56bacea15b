"""Run every notebook's cells as tests (nbdev's `test_nb`) and print a closing `notebooks: N passed, N failed` line.

`nbdev-test` only prints `Success.`; this runs the same per-notebook function, one notebook per child process
(so an IPython shell in one notebook cannot disturb another), two at a time, and reports counts.
Usage: python tools/test_nbs.py [--flags slow] [--path nbs/01_noise.ipynb] [--n-workers 2]
"""
import argparse, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

def _child(fn, flags):
    "Test one notebook in this process; exit status 0 on success."
    from nbdev.config import get_config
    from nbdev.test import test_nb
    cfg = get_config()
    skip = [f for f in cfg.tst_flags.split() if f not in flags]
    ok, _ = test_nb(fn, skip_flags=skip, force_flags=flags, showerr=True, basepath=cfg.config_path, do_print=False)
    sys.exit(0 if ok else 1)

def _run(fn, flags):
    t = time.time()
    r = subprocess.run([sys.executable, __file__, '--one', str(fn), '--flags', ' '.join(flags)],
                       capture_output=True, text=True, env=_ENV)
    return fn, r.returncode == 0, time.time() - t, r.stdout + r.stderr

_ENV = dict(os.environ)

def main():
    global _ENV
    p = argparse.ArgumentParser()
    p.add_argument('--flags', default='', help='space-separated test flags to run (e.g. slow)')
    p.add_argument('--path', default=None, help='one notebook, or a folder (default: nbs)')
    p.add_argument('--n-workers', type=int, default=int(os.environ.get('NBDEV_WORKERS', 2)))
    p.add_argument('--one', default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    flags = a.flags.split()
    os.environ['IN_TEST'] = '1'
    if a.one: return _child(a.one, flags)
    # n workers x torch's default thread count would oversubscribe the cores (10x slower on 2 cores): split them
    _ENV = dict(os.environ, IN_TEST='1')
    for v in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'): _ENV.setdefault(v, str(max(1, (os.cpu_count() or 1) // a.n_workers)))
    root = Path(__file__).resolve().parent.parent
    path = Path(a.path or root/'nbs')
    fns = [path] if path.is_file() else sorted(f for f in path.rglob('*.ipynb')
                                               if not any(part.startswith(('_', '.')) for part in f.relative_to(path).parts))
    passed, failed = [], []
    with ThreadPoolExecutor(a.n_workers) as ex:
        for fn, ok, dt, out in ex.map(lambda f: _run(f, flags), fns):
            print(f"{'PASS' if ok else 'FAIL'} {fn} ({dt:.0f}s)", flush=True)
            if not ok: print(out[-6000:], flush=True)
            (passed if ok else failed).append(fn)
    print(f"notebooks: {len(passed)} passed, {len(failed)} failed", flush=True)
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
