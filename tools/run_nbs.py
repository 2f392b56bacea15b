"""Execute notebooks in place so that their outputs (tables, figures) are saved with them, then clean metadata.

Usage: python tools/run_nbs.py nbs/00_data.ipynb [more.ipynb ...]

Outputs are what the documentation site shows; run this after changing a notebook. Cells flagged `#| slow` are
executed too (they hold the reproduction runs); set NOISY_NBDEV_SKIP_SLOW=1 to skip them.
"""
import os, sys, time
from pathlib import Path
from execnb.shell import CaptureShell


def _skip_slow(cell):
    return os.environ.get('NOISY_NBDEV_SKIP_SLOW') and cell.source.lstrip().startswith('#| slow')

def run(path):
    t = time.time()
    os.environ.setdefault('MPLBACKEND', 'Agg')
    sh = CaptureShell(mpl_format='png')
    sh.execute(path, path, exc_stop=True, preproc=_skip_slow)
    print(f'{path}: executed in {time.time()-t:.0f}s', flush=True)

if __name__ == '__main__':
    import subprocess
    nbdev_clean = Path(sys.executable).parent/'nbdev-clean'
    for p in sys.argv[1:]:
        run(Path(p))
        subprocess.run([str(nbdev_clean), '--fname', str(p)], check=True)
