"""Shared helpers of the pytest tests."""
import os, signal, subprocess, time
import pytest

def _kill_when_a_run_finishes(cmd:list, out, env:dict, timeout:float=120, poll:float=0.01):
    "Start the sweep `cmd`, SIGKILL its process group as soon as one run folder under `out` is finished (`done`)"
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        t0 = time.time()
        while not list(out.glob('*/done')):
            assert p.poll() is None, 'the sweep ended before a run finished'
            assert time.time() - t0 < timeout, f'no run finished in {timeout} s'
            time.sleep(poll)
        os.killpg(p.pid, signal.SIGKILL)
    finally:
        p.wait()

@pytest.fixture
def kill_when_a_run_finishes():
    "A sweep killed (SIGKILL, whole process group) the moment its first run has finished: kill-and-rerun tests"
    return _kill_when_a_run_finishes
