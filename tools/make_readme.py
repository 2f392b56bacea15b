"""Write README.md from nbs/index.ipynb (no Quarto needed): markdown cells verbatim, code cells as python blocks with
their text output; hidden cells (`#| hide`) and directive lines are left out. `--check` exits 1 if README.md differs.
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def _src(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']

def render(nb_path=ROOT / 'nbs' / 'index.ipynb') -> str:
    nb = json.loads(Path(nb_path).read_text())
    parts = []
    for c in nb['cells']:
        src = _src(c)
        if c['cell_type'] == 'markdown':
            # notebook links point at the rendered site's pages from the README too
            parts.append(src.strip())
        elif c['cell_type'] == 'code':
            lines = src.splitlines()
            if any(re.match(r'#\s*\|\s*hide\b', l) for l in lines): continue
            code = '\n'.join(l for l in lines if not re.match(r'#\s*\|', l)).strip()
            if not code: continue
            parts.append(f'```python\n{code}\n```')
            out = ''.join(''.join(o.get('text', '')) for o in c.get('outputs', []) if o.get('output_type') == 'stream')
            if out.strip(): parts.append('```\n' + out.rstrip() + '\n```')
    text = '\n\n'.join(parts) + '\n'
    return ('<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n'
            + re.sub(r'\]\((\d\d_[\w-]+\.ipynb)\)', r'](nbs/\1)', text))

if __name__ == '__main__':
    new = render()
    if '--check' in sys.argv:
        sys.exit(0 if (ROOT / 'README.md').exists() and (ROOT / 'README.md').read_text() == new else 1)
    (ROOT / 'README.md').write_text(new)
    print('wrote README.md')
