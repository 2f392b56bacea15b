"""`tune_malloc` from the installed package: glibc reuses a freed 64 MiB buffer (page faults counted, not seconds),
the environment switch turns it off, and bad thresholds are refused."""
import os, platform, subprocess, sys
import pytest
from noisy_nbdev.train import tune_malloc

PROG = """import resource, sys, torch
from noisy_nbdev.train import tune_malloc
ok = tune_malloc() if sys.argv[1] == 'tuned' else None
n = 64 * 2**20 // 4
for _ in range(20):
    t = torch.empty(n); t.fill_(1.); del t
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    t = torch.empty(n); t.fill_(1.); del t
print(ok, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 10)
"""

def _faults(mode, **env):
    r = subprocess.run([sys.executable, '-c', PROG, mode], capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS='1', **env))
    assert r.returncode == 0, r.stderr
    ok, f = r.stdout.split()
    return ok, float(f)

@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='mallopt is glibc')
def test_freed_large_buffers_are_reused():
    ok, tuned = _faults('tuned')
    assert ok == 'True' and tuned < 16384 / 8, tuned     # 16,384 pages per 64 MiB: reused, not faulted in again
    off, untuned = _faults('tuned', NOISY_NBDEV_MALLOC='default')
    assert off == 'False' and untuned > 4 * max(tuned, 1), (tuned, untuned)

def test_bad_thresholds_are_refused():
    for kw in (dict(mmap_threshold=0), dict(trim_threshold=2**31), dict(mmap_threshold=True), dict(trim_threshold=1.5)):
        with pytest.raises(ValueError, match='tune_malloc: '): tune_malloc(**kw)
