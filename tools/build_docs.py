"""Build the documentation site into `_site/` from the notebooks, offline and without Quarto.

Usage: python tools/build_docs.py [--out _site] [--build-dir _docs_build] [--keep]   (or `make docs`)

1. Every notebook (`nbs/index.ipynb`, then `nbs/[0-9]*.ipynb` in file-name order) goes through nbdev's own docs
   processors (`nbdev.processors.FilterDefaults`, as `nbdev-proc-nbs` runs them): frontmatter from the `# Title`
   cell, a `show_doc` cell after each exported definition, `#| hide` and `#| export` cells removed (`#| exports`
   shown as "Exported source"), directives stripped, backticked names linked. One processor is replaced: nbdev's
   `exec_show_docs` re-runs every cell that imports something; here only the `show_doc` cells run, in an execnb
   `CaptureShell` that has imported the notebook's module(s). Every other cell keeps the output saved in the
   notebook (the notebooks are never re-executed: some cells train networks).
2. nbconvert's `MarkdownExporter` turns each processed notebook into a Markdown page (its Markdown template, with
   our wrappers for outputs; `ExtractOutputPreprocessor` / `ExtractAttachmentsPreprocessor` write the figures and
   attachments as files beside it), named as nbdev names pages (`01_noise.ipynb` -> `noise.html`, so the links in
   `_modidx.py` hold). Ours: Quarto's cell options (nbdev's show_doc cells carry `echo: false`), show_doc headings
   given the anchors nbdev's doclinks use, links to notebooks and to the hosted docs made links between pages.
3. MkDocs (Material theme) renders the pages with `--strict`, so a broken link between pages or a missing anchor
   fails the build; the config is generated into the build folder. TeX (`$...$`) becomes MathML (latex2mathml),
   so nothing is fetched at view time (no fonts or scripts from a CDN).
"""
import argparse, html, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SD_EXTRA_CSS = """
/* nbdev-style pieces: show_doc blocks, cell outputs */
.md-typeset hr { margin: 1.5em 0 .5em; }
.md-typeset .nb-description { font-size: 1.05em; color: var(--md-default-fg-color--light); }
.md-typeset .nb-output pre > code { background: transparent; border-left: 3px solid var(--md-default-fg-color--lightest); }
.md-typeset .nb-output img { max-width: 100%; height: auto; }
.md-typeset .nb-error pre { background: #fdecea; }
.md-typeset .nb-html { overflow-x: auto; }
.md-typeset .nb-html table.dataframe { border-collapse: collapse; border: none; font-size: .7rem; }
.md-typeset .nb-html table.dataframe th, .md-typeset .nb-html table.dataframe td {
  padding: .3em .8em; border: none; border-bottom: 1px solid var(--md-default-fg-color--lightest); text-align: right; }
.md-typeset math[display="block"] { margin: 1em 0; overflow-x: auto; }
"""
# Material's repository link, minus `data-md-component="source"`: that makes its JS query the GitHub API on every
# page (repository statistics), which fails offline
_SOURCE_PARTIAL = """<a href="{{ config.repo_url }}" title="{{ lang.t('source') }}" class="md-source">
  <div class="md-source__icon md-icon">{% include ".icons/" ~ (config.theme.icon.repo or "fontawesome/brands/git-alt") ~ ".svg" %}</div>
  <div class="md-source__repository">{{ config.repo_name }}</div>
</a>
"""
_ASSETS = {'.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp', '.pdf', '.csv', '.txt'}
_LIST_ITEM = re.compile(r'^([-*+]|\d+[.)])\s')
_FENCE = re.compile(r'^\s*(```|~~~)')
_QUARTO_OPT = re.compile(r'^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')
_MD_LINK = re.compile(r'\]\(\s*<?([^)\s>]+)>?((?:\s+"[^"]*")?)\s*\)')


def _text(x): return ''.join(x) if isinstance(x, list) else (x or '')

def _fence(s, lang='text'):
    "A fenced code block that no backtick run inside `s` can close"
    n = max([3] + [len(m) + 1 for m in re.findall(r'`{3,}', s)])
    return f"{'`'*n}{lang}\n{s.rstrip()}\n{'`'*n}"

def list_notebooks(nbs_path):
    "index first, then the numbered notebooks in file-name (numeric) order"
    nbs = sorted(nbs_path.glob('[0-9]*.ipynb'), key=lambda p: (int(re.match(r'\d+', p.name).group()), p.name))
    idx = nbs_path/'index.ipynb'
    return ([idx] if idx.exists() else []) + nbs


# --------------------------------------------------------------------------------------------- 1. nbdev processing
def _modules_of(nb):
    "Modules a notebook exports to (its `default_exp` and any `#| export other_module`)"
    mods = []
    for c in nb.cells:
        d = getattr(c, 'directives_', None) or {}
        for k in ('default_exp', 'export', 'exports', 'exporti'):
            v = str(d.get(k) or '').split()
            if v and v[0] not in mods: mods.append(v[0])
    return mods

def _make_exec_show_docs_only(lib_name):
    from nbdev.process import Processor
    from nbdev.processors import _is_showdoc
    from execnb.shell import CaptureShell

    class exec_show_docs_only(Processor):
        "Execute only the `show_doc` cells, after importing the notebook's modules (no other cell re-runs)"
        def begin(self):
            self.k = None
            if not getattr(self.nb, 'has_docs_', None): return
            self.k = CaptureShell()
            src = 'from nbdev.showdoc import show_doc\nimport importlib as _il\n'
            for m in _modules_of(self.nb):   # the module's whole namespace, as the notebook had it (private names too)
                src += (f"globals().update({{_k: _v for _k, _v in vars(_il.import_module('{lib_name}.{m}')).items()"
                        f" if not _k.startswith('__')}})\n")
            self.k.run_cell(src)
            if self.k.exc: raise RuntimeError(f'{self.nb.path_}: importing its module failed') from self.k.exc

        def __call__(self, cell):
            if self.k is None or not _is_showdoc(cell): return
            self.k.cell(cell)
            if self.k.exc:
                raise RuntimeError(f'{self.nb.path_}: show_doc cell failed:\n{cell.source}') from self.k.exc
    return exec_show_docs_only

def process_notebook(path, lib_name):
    "nbdev's docs processing of one notebook, with only its show_doc cells executed"
    from fastcore.nbio import read_nb
    from nbdev.process import NBProcessor
    from nbdev.processors import FilterDefaults, exec_show_docs
    sd_only = _make_exec_show_docs_only(lib_name)
    fd = FilterDefaults()
    procs = [sd_only if p is exec_show_docs else p for p in fd.procs()]
    nb = read_nb(path)
    nb.path_ = str(path)
    NBProcessor(nb=nb, procs=procs, rm_directives='quarto').process()
    return nb


# --------------------------------------------------------------------------------------------- 2. to Markdown
# nbconvert's Markdown template with our wrappers: outputs in `.nb-output` blocks (Markdown inside them via
# md_in_html), text in fences no backtick run can close, tracebacks marked `.nb-error` (the docs test looks for
# them), show_doc's Markdown as it is, figures by the file names ExtractOutputPreprocessor gave them.
_TEMPLATE = r"""{%- extends 'index.md.j2' -%}
{% block input %}
{%- if cell.metadata.get('code_fold') %}
???{{ '+' if cell.metadata.code_fold == 'show' }} note "{{ cell.metadata.code_summary }}"

{{ cell.source | fence('python') | indent4 }}
{% else %}
{{ cell.source | fence('python') }}
{% endif %}
{% endblock input %}

{% block output %}
{%- if output.output_type == 'error' %}
<div class="nb-output nb-error" markdown="1">

{{ output.traceback | join('\n') | strip_ansi | fence }}

</div>
{% elif 'text/markdown' in output.get('data', {}) %}
{{ output.data['text/markdown'] }}
{% else %}
<div class="nb-output" markdown="1">
{{ super() }}
</div>
{% endif %}
{% endblock output %}

{% block stream %}
{{ output.text | strip_ansi | fence }}
{% endblock stream %}
{% block data_text scoped %}
{{ output.data['text/plain'] | strip_ansi | fence }}
{% endblock data_text %}
{% block data_html scoped %}
<div class="nb-html" markdown="0">
{{ output.data['text/html'] | trim }}
</div>
{% endblock data_html %}
"""
_CELL_KEYS = {'cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count', 'attachments'}
_PRIORITY = ['text/markdown', 'image/svg+xml', 'image/png', 'image/jpeg', 'text/html', 'text/latex', 'text/plain']


def _make_site_preprocessor(site):
    from nbconvert.preprocessors import Preprocessor

    class SitePreprocessor(Preprocessor):
        "What nbconvert cannot know: Quarto cell options, Python-Markdown's list rule, show_doc heading anchors"
        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type == 'markdown': cell.source = site.fix_markdown(cell.source); return cell, resources
            if cell.cell_type != 'code': return cell, resources
            # Quarto's `#| key: value` lines, which nbdev leaves for Quarto (show_doc cells get `echo: false`)
            opts, lines = {}, cell.source.splitlines()
            while lines and (m := _QUARTO_OPT.match(lines[0])):
                opts[m.group(1)] = m.group(2).strip('"\''); lines.pop(0)
            cell.source = '\n'.join(lines).strip('\n')
            if 'false' in (opts.get('echo'), opts.get('include')) or not cell.source.strip():
                cell.metadata.setdefault('transient', {})['remove_source'] = True   # nbconvert's templates honour it
            if 'false' in (opts.get('output'), opts.get('include')): cell.outputs = []
            if 'code-fold' in opts: cell.metadata.update(code_fold=opts['code-fold'], code_summary=opts.get('code-summary', 'Code'))
            cell.outputs = [o for o in cell.outputs if o.output_type != 'stream' or o.text.strip()]
            if 'show_doc' in cell.source:
                for o in cell.outputs:
                    if 'text/markdown' in o.get('data', {}):
                        o.data['text/markdown'] = site.show_doc_md(_text(o.data['text/markdown']), resources['page'])
            return cell, resources
    return SitePreprocessor


class Site:
    def __init__(self, nbs, docs_dir, doc_url):
        from nbdev.config import nbpath2html
        self.docs_dir, self.doc_url = docs_dir, doc_url
        self.page_of = {p.name: nbpath2html(p.name).with_suffix('.md').name for p in nbs}   # '01_noise.ipynb' -> 'noise.md'
        self.pages = set(self.page_of.values())
        self.anchors = {}        # page -> anchors of its show_doc headings
        self.n_unlinked = 0
        from jinja2 import DictLoader
        from nbconvert import MarkdownExporter
        from traitlets.config import Config
        self.exporter = MarkdownExporter(
            config=Config({'NbConvertBase': {'display_data_priority': _PRIORITY},
                           'CoalesceStreamsPreprocessor': {'enabled': True}}),
            extra_loaders=[DictLoader({'site.md.j2': _TEMPLATE})], template_file='site.md.j2',
            filters={'fence': _fence,
                     'indent4': lambda s: '\n'.join('    ' + l if l else '' for l in s.splitlines())},
            preprocessors=[_make_site_preprocessor(self)])

    # ---- links
    def _target(self, url):
        "Link target rewritten for the site, or None to drop the link"
        if self.doc_url and url.startswith(self.doc_url):   # a hosted-docs link (nbdev's doclinks): make it local
            page, _, frag = url[len(self.doc_url):].partition('#')
            page = re.sub(r'\.html$', '.md', page) or 'index.md'
            if page not in self.pages or (frag and frag not in self.anchors.get(page, ())): return None
            return page + (f'#{frag}' if frag else '')
        if re.match(r'^[a-z][\w+.-]*:|^#|^/', url): return url   # external, in-page, absolute
        path, _, frag = url.partition('#')
        name = Path(path).name
        if path.endswith('.ipynb') and name in self.page_of: path = self.page_of[name]
        elif path.endswith('.html') and name[:-5] + '.md' in self.pages: path = name[:-5] + '.md'
        return path + (f'#{frag}' if frag else '')

    def fix_links(self, md):
        def sub(m):
            t = self._target(m.group(1))
            if t is None: self.n_unlinked += 1; return m.group(0)   # marked, unlinked below
            return f']({t}{m.group(2)})'
        md = _MD_LINK.sub(sub, md)
        # `[text](url)` whose target is not on the site (a private name, say): keep the text only
        return re.sub(r'\[([^\[\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)(\{[^}]*\})?',
                      lambda m: m.group(1) if self._target(m.group(2)) is None else m.group(0), md)

    # ---- cells
    @staticmethod
    def fix_markdown(md):
        "Python-Markdown wants a blank line before a list that follows a paragraph line (Jupyter does not)"
        out, in_fence, prev = [], False, ''
        for l in md.splitlines():
            if _FENCE.match(l): in_fence = not in_fence
            elif not in_fence and _LIST_ITEM.match(l) and prev.strip() and not prev[:1].isspace() \
                    and not _LIST_ITEM.match(prev): out.append('')
            out.append(l); prev = l
        return '\n'.join(out)

    def show_doc_md(self, md, page):
        "nbdev's show_doc markdown, with its heading given the anchor nbdev's doclinks use (`Class.method` lowercased)"
        md = md.replace('#LNone)', ')')   # nbdev could not find the line number: link the file
        # the docstring line `*...*`: a `*` inside it (`round(N*rate)`) would end the emphasis early
        out, in_fence = [], False
        for l in md.splitlines():
            if _FENCE.match(l): in_fence = not in_fence
            elif not in_fence and (m := re.fullmatch(r'\*([^*].*)\*[ \t]*', l)):
                parts = re.split(r'(`+[^`]*`+)', m.group(1))   # leave code spans alone
                l = '*' + ''.join(p if p.startswith('`') else re.sub(r'(?<!\\)\*', r'\\*', p) for p in parts) + '*'
            out.append(l)
        md = '\n'.join(out)
        def head(m):
            nm = m.group(2).strip()
            anchor = nm.lower()
            self.anchors.setdefault(page, set()).add(anchor)
            esc = re.sub(r'([_*`\\])', r'\\\1', nm)
            return f'{m.group(1)} {esc} {{ #{anchor} data-toc-label="{html.escape(nm)}" }}'
        return re.sub(r"^(#{1,6})[ \t]+(.+?)[ \t]*$", head, md, count=1, flags=re.M)

    def page_md(self, nb, page):
        "A processed notebook as a Markdown page (nbconvert), its figures and attachments written beside it: (markdown, title)"
        import nbformat, yaml
        from fastcore.nbio import nb2dict
        stem, fm = page[:-3], {}
        for c in nb.cells:   # nbdev's frontmatter: the title and description
            if c.cell_type == 'raw' and _text(c.get('source')).startswith('---'):
                fm.update(yaml.safe_load(_text(c.source).strip().strip('-')) or {})
        d = nb2dict(nb)   # nbformat's cell fields only (nbdev's processors add a few; nbconvert validates)
        d['cells'] = [{k: v for k, v in c.items() if k in _CELL_KEYS} for c in d['cells'] if c['cell_type'] != 'raw']
        for c in d['cells']: c['metadata'].pop('execution', None)   # execnb's timings (a float where strings go)
        node = nbformat.reads(json.dumps(d), as_version=4)   # multiline strings rejoined
        body, res = self.exporter.from_notebook_node(node, resources={'unique_key': stem, 'page': page,
                                                                      'output_files_dir': f'{stem}_files'})
        for name, data in res.get('outputs', {}).items():   # figures, attachments: ExtractOutput/ExtractAttachments
            f = self.docs_dir/name; f.parent.mkdir(parents=True, exist_ok=True); f.write_bytes(data)
        title = str(fm.get('title') or stem)
        head = f'# {title}'
        if fm.get('description'): head += f'\n\n{fm["description"]}\n{{ .nb-description }}'
        return head + '\n\n' + body.strip('\n') + '\n', title


# --------------------------------------------------------------------------------------------- 3. MkDocs
def _mathml(site_dir):
    "Replace pymdownx.arithmatex's generic math spans by MathML (rendered by the browser; nothing to fetch)"
    from latex2mathml.converter import convert
    def conv(tex, display):
        tex = html.unescape(tex)
        try: return convert(tex, display='block' if display else 'inline')
        except Exception: return f'<code class="tex">{html.escape(tex)}</code>'
    n = 0
    for f in site_dir.rglob('*.html'):
        s = f.read_text(encoding='utf-8')
        if 'arithmatex' not in s: continue
        s2 = re.sub(r'<span class="arithmatex">\\\((.*?)\\\)</span>', lambda m: conv(m.group(1), False), s, flags=re.S)
        s2 = re.sub(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', lambda m: conv(m.group(1), True), s2, flags=re.S)
        if s2 != s: f.write_text(s2, encoding='utf-8'); n += 1
    return n

def mkdocs_config(cfg, nav, docs_dir, site_dir):
    return {
        'site_name': cfg.get('title') or cfg.lib_name,
        'site_description': cfg.get('description', ''),
        'site_url': cfg.get('doc_host', '').rstrip('/') + '/' + cfg.get('doc_baseurl', '').strip('/') + '/' if cfg.get('doc_host') else None,
        'repo_url': cfg.get('git_url'),   # a plain link: see _SOURCE_PARTIAL
        'docs_dir': str(docs_dir), 'site_dir': str(site_dir),
        'use_directory_urls': False,      # pages are `noise.html`, as nbdev names them
        'nav': nav,
        'theme': {'name': 'material', 'font': False,   # no Google Fonts: the site must work offline
                  'custom_dir': str(docs_dir.parent/'overrides'),
                  'features': ['navigation.top', 'toc.follow', 'content.code.copy'],
                  'palette': {'primary': 'indigo'}, 'icon': {'repo': 'fontawesome/brands/github'}},
        'extra_css': ['stylesheets/nbdev.css'],
        'plugins': ['search'],
        'validation': {'omitted_files': 'warn', 'absolute_links': 'info', 'unrecognized_links': 'warn',
                       'anchors': 'warn'},
        'markdown_extensions': [
            'attr_list', 'md_in_html', 'tables', 'admonition', 'footnotes', 'def_list',
            {'toc': {'permalink': True}}, 'pymdownx.details',
            {'pymdownx.highlight': {'use_pygments': True}}, 'pymdownx.superfences',
            {'pymdownx.arithmatex': {'generic': True}},
        ],
    }

def build(out='_site', build_dir='_docs_build', keep=False, quiet=False):
    t0 = time.time()
    os.chdir(ROOT)
    os.environ.setdefault('MPLBACKEND', 'Agg')
    os.environ['IN_TEST'] = '1'   # as nbdev-proc-nbs: library code may check it
    from nbdev.config import get_config
    cfg = get_config()
    lib_name = cfg.lib_path.name
    nbs = list_notebooks(cfg.nbs_path)
    if not nbs: raise SystemExit(f'no notebooks in {cfg.nbs_path}')
    bdir, site_dir = ROOT/build_dir, ROOT/out
    for d in (bdir, site_dir):   # both are deleted and rebuilt
        if d in (ROOT, *ROOT.parents) or (d/'.git').exists() or (d/'pyproject.toml').exists():
            raise SystemExit(f'refusing to replace {d}')
    docs_dir = bdir/'docs'
    shutil.rmtree(bdir, ignore_errors=True); docs_dir.mkdir(parents=True)
    doc_url = (cfg.get('doc_host', '').rstrip('/') + '/' + cfg.get('doc_baseurl', '').strip('/') + '/') \
        if cfg.get('doc_host') else ''
    site = Site(nbs, docs_dir, doc_url)

    processed = []
    for p in nbs:
        t = time.time()
        processed.append((p, process_notebook(p, lib_name)))
        if not quiet: print(f'processed {p.relative_to(ROOT)} in {time.time()-t:.1f}s', flush=True)
    pages = [(p, site.page_of[p.name], *site.page_md(nb, site.page_of[p.name])) for p, nb in processed]
    nav = []   # written after all pages, so that links know every page's anchors
    for p, page, md, title in pages:
        (docs_dir/page).write_text(site.fix_links(md), encoding='utf-8')
        nav.append({('Home' if page == 'index.md' else title): page})
    for f in cfg.nbs_path.rglob('*'):   # images and other files the notebooks link to, as nbdev-proc-nbs copies them
        rel = f.relative_to(cfg.nbs_path)
        if f.is_file() and f.suffix.lower() in _ASSETS and not any(o[0] in '._' for o in rel.parts):
            (docs_dir/rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, docs_dir/rel)
    (docs_dir/'stylesheets').mkdir()
    (docs_dir/'stylesheets'/'nbdev.css').write_text(_SD_EXTRA_CSS)
    (bdir/'overrides'/'partials').mkdir(parents=True)
    (bdir/'overrides'/'partials'/'source.html').write_text(_SOURCE_PARTIAL)
    mk = mkdocs_config(cfg, nav, docs_dir, site_dir)
    (bdir/'mkdocs.yml').write_text(json.dumps(mk, indent=1))   # JSON is YAML
    shutil.rmtree(site_dir, ignore_errors=True)
    # --strict: a warning (a link to a missing page or anchor, say) fails the build. Not -q: it hides the warnings
    # that --strict counts.
    r = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--strict', '-f', str(bdir/'mkdocs.yml')],
                       capture_output=True, text=True, env={**os.environ, 'NO_MKDOCS_2_WARNING': '1'})
    if r.returncode:
        sys.stderr.write('\n'.join(l for l in (r.stdout + r.stderr).splitlines() if not l.startswith('INFO')) + '\n')
        raise SystemExit(f'mkdocs build failed (markdown kept in {bdir})')
    n_math = _mathml(site_dir)
    if not keep: shutil.rmtree(bdir, ignore_errors=True)
    print(f'docs: {len(pages)} pages in {os.path.relpath(site_dir)}/ ({n_math} with math, '
          f'{site.n_unlinked} links to undocumented names dropped) in {time.time()-t0:.0f}s')
    return site_dir

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default='_site', help='output folder (relative to the repo root)')
    ap.add_argument('--build-dir', default='_docs_build', help='scratch folder for the Markdown and mkdocs.yml')
    ap.add_argument('--keep', action='store_true', help='keep the scratch folder')
    ap.add_argument('-q', '--quiet', action='store_true')
    a = ap.parse_args()
    build(a.out, a.build_dir, a.keep, a.quiet)
