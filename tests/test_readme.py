"""README.md is generated from nbs/index.ipynb; this fails when they drift apart."""
import re, subprocess, sys
from pathlib import Path
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
from make_readme import render

def test_readme_matches_index_notebook():
    assert (ROOT / 'README.md').read_text() == render(), 'README.md is out of date: run `python tools/make_readme.py`'

def test_readme_first_screen_has_the_three_commands():
    head = '\n'.join((ROOT / 'README.md').read_text().splitlines()[:45])
    assert 'pip install -e ".[dev]"' in head and 'make test' in head and 'noisy-train --dataset mnist' in head

def test_ci_runs_the_readmes_install_and_test_commands():
    ci, readme = (ROOT / '.ci' / 'run').read_text(), (ROOT / 'README.md').read_text()
    install = next(l for l in readme.splitlines() if 'pip install -e' in l).strip()
    assert install in ci and re.search(r'^make test$', ci, re.M)
