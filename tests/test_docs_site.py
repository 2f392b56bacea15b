"""The documentation site: build it (`tools/build_docs.sh`, what `make docs` runs), serve `_site/` on localhost and
open every page in headless Chromium (Debian's `chromium`), driven over the DevTools protocol on a pipe (no extra
Python package). Fails on a missing page, a broken internal link or anchor, an image that does not load, a failed
same-origin request, or a traceback / error output rendered into a page. Saves a screenshot of the home page.

Without `chromium` on PATH the test is skipped, unless NOISY_NBDEV_REQUIRE_BROWSER=1 (CI), where it fails.
NOISY_NBDEV_DOCS_NO_BUILD=1 reuses an existing `_site/` instead of building it.
"""
import base64, fcntl, http.server, json, os, queue, re, shutil, socketserver, subprocess, sys, tempfile
import threading, time, urllib.error, urllib.parse, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT/'_site'
SCREENSHOT = ROOT/'_site_screenshot.png'
# Without these Chromium waits on the network (closed here) and can hang
CHROME_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                '--disable-background-networking', '--disable-component-update', '--disable-sync',
                '--disable-dev-shm-usage', '--hide-scrollbars', '--mute-audio', '--window-size=1280,900']
_ERR_LINE = re.compile(r'^\s*(Traceback \(most recent call last\)|[A-Za-z_][\w.]*(Error|Exception): )', re.M)


@pytest.fixture(scope='module')
def chromium():
    for name in ('chromium', 'chromium-browser'):
        if p := shutil.which(name): return p
    if os.environ.get('NOISY_NBDEV_REQUIRE_BROWSER') == '1':
        pytest.fail('chromium is not on PATH and NOISY_NBDEV_REQUIRE_BROWSER=1 (apt-get install -y chromium)')
    pytest.skip('chromium is not on PATH (apt-get install -y chromium; set NOISY_NBDEV_REQUIRE_BROWSER=1 to fail instead)')


# ------------------------------------------------------------------------------------------ DevTools over a pipe
class CDP:
    "Chromium's DevTools protocol over --remote-debugging-pipe: JSON messages ending in NUL, on fds 3 (in) and 4 (out)"
    def __init__(self, exe, tmp):
        cmd_r, cmd_w = os.pipe(); res_r, res_w = os.pipe()
        # the child reads commands on fd 3 and writes replies on fd 4: bash moves them there (copies kept >= 100
        # so that neither move clobbers the other), then execs chromium
        a, b = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 100), fcntl.fcntl(res_w, fcntl.F_DUPFD, 100)
        os.close(cmd_r); os.close(res_w)
        args = [exe, *CHROME_FLAGS, f'--user-data-dir={tmp}', '--remote-debugging-pipe', 'about:blank']
        Path(tmp).mkdir(parents=True, exist_ok=True)
        self.log = Path(tmp)/'chromium.log'
        self.proc = subprocess.Popen(['bash', '-c', f'exec "$@" 3<&{a} 4>&{b} {a}<&- {b}>&-', 'chromium', *args],
                                     pass_fds=(a, b), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, 'wb'))
        os.close(a); os.close(b)
        self.w, self.r = os.fdopen(cmd_w, 'wb', buffering=0), os.fdopen(res_r, 'rb', buffering=0)
        self.n, self.replies, self.events = 0, {}, queue.Queue()
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b''
        while chunk := self.r.read(1 << 16):
            buf += chunk
            *msgs, buf = buf.split(b'\0')
            for m in msgs:
                d = json.loads(m)
                if 'id' in d:
                    with self.cv: self.replies[d['id']] = d; self.cv.notify_all()
                else: self.events.put(d)
        with self.cv: self.replies[None] = 'closed'; self.cv.notify_all()

    def send(self, method, session=None, timeout=30, **params):
        self.n += 1; i = self.n
        msg = {'id': i, 'method': method, 'params': params, **({'sessionId': session} if session else {})}
        self.w.write(json.dumps(msg).encode() + b'\0')
        with self.cv:
            if not self.cv.wait_for(lambda: i in self.replies or None in self.replies, timeout):
                raise TimeoutError(f'chromium did not answer {method} in {timeout}s (its log: {self.log})')
            if i not in self.replies:
                raise RuntimeError(f'chromium closed the pipe during {method}:\n{self.log.read_text()[-2000:]}')
            d = self.replies.pop(i)
        if 'error' in d: raise RuntimeError(f'{method}: {d["error"]}')
        return d.get('result', {})

    def close(self):
        try: self.send('Browser.close', timeout=5)
        except Exception: pass
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()


class Page:
    "One tab: load a URL, wait until the network is idle, run JS, record failed requests and JS exceptions"
    def __init__(self, cdp):
        self.cdp = cdp
        tid = cdp.send('Target.createTarget', url='about:blank')['targetId']
        self.s = cdp.send('Target.attachToTarget', targetId=tid, flatten=True)['sessionId']
        for dom in ('Page', 'Network', 'Runtime'): cdp.send(f'{dom}.enable', session=self.s)
        cdp.send('Page.setLifecycleEventsEnabled', session=self.s, enabled=True)   # `networkIdle`, below
        self.failed, self.exceptions, self._urls, self.pending = [], [], {}, set()

    def _drain(self, until, timeout=30):
        "Record this tab's events until `until(method, params)` holds; TimeoutError after `timeout` seconds"
        end = time.time() + timeout
        while True:
            try: e = self.cdp.events.get(timeout=max(0., end - time.time()))
            except queue.Empty: raise TimeoutError(f'page not settled in {timeout}s; requests not seen to finish: '
                                                   f'{[self._urls.get(r, r) for r in self.pending]}') from None
            if e.get('sessionId') != self.s: continue
            m, p = e['method'], e.get('params', {})
            if m == 'Network.requestWillBeSent': self._urls[p['requestId']] = p['request']['url']; self.pending.add(p['requestId'])
            elif m == 'Network.responseReceived' and p['response']['status'] >= 400:
                self.failed.append(f"{p['response']['status']} {p['response']['url']}")
            elif m == 'Network.loadingFinished': self.pending.discard(p['requestId'])
            elif m == 'Network.loadingFailed':
                self.pending.discard(p['requestId'])
                if not p.get('canceled'): self.failed.append(f"{p.get('errorText')} {self._urls.get(p['requestId'], p['requestId'])}")
            elif m == 'Runtime.exceptionThrown':
                d = p['exceptionDetails']; self.exceptions.append(d.get('exception', {}).get('description') or d['text'])
            if until(m, p): return

    def goto(self, url):
        "Navigate, then wait for Chromium's `networkIdle` of this load and for the document and its images to be complete"
        # networkIdle: no request in flight for 0.5 s by Chromium's own count, which covers what scripts fetch after
        # the load event (the search index; the search worker's requests, reported to the worker, not to this tab).
        # Waiting on events, with bounded timeouts that fail loudly, not sleeping a fixed time and hoping.
        self.failed, self.exceptions, self._urls, self.pending = [], [], {}, set()
        loader = self.cdp.send('Page.navigate', session=self.s, url=url)['loaderId']
        self._drain(lambda m, p: m == 'Page.lifecycleEvent' and p['name'] == 'networkIdle' and p['loaderId'] == loader)
        state = self.eval('new Promise(r => { const done = () => document.readyState == "complete" &&'
                          ' [...document.images].every(i => i.complete); if (done()) return r(true);'
                          ' const t = setInterval(() => { if (done()) { clearInterval(t); r(true); } }, 20);'
                          ' setTimeout(() => { clearInterval(t); r(false); }, 10000); })')
        assert state, f'{url}: document or images still loading after 10 s'

    def eval(self, js):
        r = self.cdp.send('Runtime.evaluate', session=self.s, expression=js, returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in r: raise RuntimeError(f'JS failed: {r["exceptionDetails"]}')
        return r['result'].get('value')

    def screenshot(self, path):
        d = self.cdp.send('Page.captureScreenshot', session=self.s, format='png')
        Path(path).write_bytes(base64.b64decode(d['data']))


_PAGE_JS = r"""(() => ({
  url: location.href, title: document.title,
  ids: [...document.querySelectorAll('[id]')].map(e => e.id).concat([...document.querySelectorAll('a[name]')].map(e => e.name)),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  imgs: [...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth})),
  h1: (document.querySelector('article h1') || {}).textContent || '',
  nav: [...document.querySelectorAll('nav.md-nav--primary a.md-nav__link')].map(a => [a.textContent.trim(), a.href]),
  outputs: [...document.querySelectorAll('.nb-output')].map(e => e.innerText),
  errors: document.querySelectorAll('.nb-error').length,
  text: document.body.innerText,
}))()"""


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope='module')
def site(chromium):   # skipped before building when there is no browser
    if os.environ.get('NOISY_NBDEV_DOCS_NO_BUILD') != '1' or not (SITE/'index.html').exists():
        t = time.time()
        r = subprocess.run(['bash', str(ROOT/'tools'/'build_docs.sh'), '-q'], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, 'PYTHON': sys.executable}, timeout=600)
        assert r.returncode == 0, f'make docs failed:\n{r.stdout}\n{r.stderr}'
        print(f'\nbuilt the site in {time.time()-t:.0f}s: {r.stdout.strip()}')
    return SITE

@pytest.fixture(scope='module')
def server(site):
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k): super().__init__(*a, directory=str(site), **k)
        def log_message(self, *a): pass
    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        def handle_error(self, request, client_address): pass   # the browser cancelling a request, say
    httpd = Server(('127.0.0.1', 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    httpd.shutdown(); httpd.server_close()

def _expected_pages():
    "page -> notebook: what the build must produce (index + every numbered notebook), named as nbdev names pages"
    from nbdev.config import nbpath2html
    nbs = sorted((ROOT/'nbs').glob('[0-9]*.ipynb'), key=lambda p: (int(re.match(r'\d+', p.name).group()), p.name))
    return {'index.html': ROOT/'nbs'/'index.ipynb', **{nbpath2html(p.name).name: p for p in nbs}}

def _nb_title(nb):
    src = next(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'markdown')
    return re.match(r'#\s+(.+)', src.strip()).group(1).strip()

def _n_figures(nb):
    "Images saved in the notebook's outputs, in cells the docs show (not `#| hide`, `#| export`)"
    n = 0
    for c in json.loads(nb.read_text())['cells']:
        if c['cell_type'] != 'code' or re.search(r'^#\|\s*(hide|export|exporti)\b', ''.join(c['source']), re.M): continue
        n += sum(any(k.startswith('image/') for k in o.get('data', {})) for o in c.get('outputs', []))
    return n


# ------------------------------------------------------------------------------------------ the test
def test_docs_site(chromium, server, tmp_path):
    expected = _expected_pages()
    problems, seen, status = [f'page missing from _site/: {p} (from {nb.name})' for p, nb in expected.items()
                              if not (SITE/p).exists()], {}, {}
    pages = sorted({p.relative_to(SITE).as_posix() for p in SITE.rglob('*.html')} - {'404.html'})
    cdp = CDP(chromium, tmp_path/'profile')
    try:
        tab = Page(cdp)
        for page in pages:
            tab.goto(server + page)
            info = tab.eval(_PAGE_JS)
            seen[page] = info
            if page == 'index.html':
                tab.screenshot(SCREENSHOT)
                print(f'\nscreenshot of the home page: {SCREENSHOT}')
            problems += [f'{page}: request failed: {f}' for f in tab.failed if f.split()[-1].startswith(server)]
            problems += [f'{page}: JS exception: {e}' for e in tab.exceptions]
            problems += [f'{page}: image does not load: {i["src"][:120]}' for i in info['imgs'] if not i['ok']]
            if info['errors'] or 'Traceback (most recent call last)' in info['text']:
                problems.append(f'{page}: a traceback / error output is rendered')
            problems += [f'{page}: error text in an output: {o.strip()[:200]!r}' for o in info['outputs'] if _ERR_LINE.search(o)]
    finally:
        cdp.close()

    # every internal link resolves: the file exists (HTTP 200), and its anchor is an id on the target page
    def fetch(url):
        if url not in status:
            try:
                with urllib.request.urlopen(url, timeout=10) as r: status[url] = r.status
            except urllib.error.HTTPError as e: status[url] = e.code
        return status[url]
    n_links = 0
    for page, info in seen.items():
        for href in info['links']:
            if not href.startswith(server): continue
            n_links += 1
            base, _, frag = href.partition('#')
            if fetch(base) != 200: problems.append(f'{page}: broken link {href} ({status[base]})'); continue
            target = urllib.parse.unquote(base[len(server):]) or 'index.html'
            if frag and target in seen and urllib.parse.unquote(frag) not in seen[target]['ids']:
                problems.append(f'{page}: link to a missing anchor {href}')

    # the navigation: home, then one entry per notebook in numeric order, titled from its `# Title` cell
    nav = [(t, l[len(server):]) for t, l in seen.get('index.html', {}).get('nav', []) if l.startswith(server)]
    want = [p for p in expected if p != 'index.html']
    got = [l for _, l in nav if l in want]
    if got != want: problems.append(f'navigation entries {got} != notebooks in order {want}')
    for t, l in nav:
        if l in want and t != _nb_title(expected[l]): problems.append(f'nav entry for {l} is {t!r}, not {_nb_title(expected[l])!r}')
    for page, nb in expected.items():
        if page not in seen: continue
        title = _nb_title(nb)
        if page != 'index.html' and seen[page]['h1'].strip().rstrip('¶').strip() != title:
            problems.append(f'{page}: h1 {seen[page]["h1"]!r} != notebook title {title!r}')
        n_img = sum(1 for i in seen[page]['imgs'] if '_files/' in i['src'])
        if n_img < _n_figures(nb): problems.append(f'{page}: {n_img} figures shown, the notebook has {_n_figures(nb)}')
    assert 'show_doc' not in ''.join(i['text'] for i in seen.values()), 'a show_doc call is shown as code'
    assert not problems, f'{len(problems)} problems:\n' + '\n'.join(problems[:60])
    assert n_links > 100 and len(seen) == len(pages)
    print(f'{len(seen)} pages, {n_links} internal links, {sum(len(i["imgs"]) for i in seen.values())} images checked')


# pandas shortens what it renders: a cell longer than `display.max_colwidth` (50) ends in '...', and a frame with more
# rows or columns than `display.max_rows` / `max_columns` gets a '...' row or column. A reader of the site then sees
# neither the claim being checked nor the numbers. This reads the committed outputs (what the site shows), no browser.
_CUT_CELL = re.compile(r'<td>([^<]{44,})\.\.\.</td>')
_ELIDED = re.compile(r'<t[dh][^>]*>\.\.\.</t[dh]>')

def test_rendered_tables_are_not_cut():
    cut = []
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        for i, cell in enumerate(json.loads(nb.read_text())['cells']):
            for out in cell.get('outputs', []):
                html = ''.join(out.get('data', {}).get('text/html', ''))
                cut += [f'{nb.name} cell {i}: a cell cut short: {m[:60]!r}...' for m in _CUT_CELL.findall(html)]
                if _ELIDED.search(html): cut.append(f'{nb.name} cell {i}: rows or columns left out ("...")')
    assert not cut, f'{len(cut)} cut tables (pd.set_option("display.max_colwidth", None), or show fewer rows):\n' + '\n'.join(cut[:30])
