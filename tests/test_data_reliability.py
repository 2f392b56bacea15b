"""Reliability of the data loaders: concurrent cache extraction, repair of broken cache entries, and one clear error
(naming the file and what was expected) for corrupt or truncated data. Uses the installed package."""
import gzip, hashlib, os, pickle, queue, subprocess, sys, threading
from pathlib import Path
import numpy as np
import pytest
from noisy_nbdev.data import load_dataset

# --- fixtures: small files in the real on-disk formats (copied from 00_data's notebook-only writers) -----------------

IDX = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')

def write_idx(path, arr):
    "Write uint8 `arr` (labels (N,) or images (N, H, W)) in MNIST's IDX format; gzipped if `path` ends in .gz"
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b''.join(int(d).to_bytes(4, 'big') for d in arr.shape)
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    with (gzip.open(path, 'wb') if path.suffix == '.gz' else open(path, 'wb')) as f: f.write(header + arr.tobytes())

def write_fake_idx_root(root, n_train=50, n_test=20, seed=0, gz=True):
    "A tiny MNIST-format data set under `root/MNIST/raw`; returns {split: (images, labels)}"
    rng, raw, out = np.random.default_rng(seed), Path(root)/'MNIST'/'raw', {}
    for split, n in (('train', n_train), ('t10k', n_test)):
        x, y = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8), (np.arange(n) % 10).astype(np.uint8)
        write_idx(raw/f'{split}-images-idx3-ubyte{".gz" if gz else ""}', x)
        write_idx(raw/f'{split}-labels-idx1-ubyte{".gz" if gz else ""}', y)
        out[split] = x, y
    return out

def digest(x, y):
    "What a worker reports for a loaded split: a hash of the images (N x 1 x 28 x 28 uint8) and labels (int64)"
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.uint8).tobytes() + np.asarray(y, dtype=np.int64).tobytes()).hexdigest()

def extracted(cache): return Path(cache)/'data'/'extracted'/'MNIST'/'raw'

def assert_cache_valid(root, cache):
    "Every extracted file equals its decompressed source, and no temporary file is left behind"
    dest = extracted(cache)
    for f in IDX: assert (dest/f).read_bytes() == gzip.decompress((Path(root)/'MNIST'/'raw'/f'{f}.gz').read_bytes()), f
    assert not [p.name for p in dest.iterdir() if p.name.endswith('.part')]

# --- (a) several processes extracting the same fresh cache at the same moment --------------------------------------

WORKER = r'''
import hashlib, os, sys, time
from noisy_nbdev.data import load_dataset
print('ready', flush=True)
for line in sys.stdin:
    root, cache, start = line.rstrip('\n').split('\t')
    os.environ['NOISY_NBDEV_CACHE'] = cache
    print('waiting', flush=True)
    while not os.path.exists(start): time.sleep(0.0002)      # all workers leave this loop within a fraction of a ms
    try:
        hs = [load_dataset('mnist', root=root, train=t) for t in (True, False)]
        print('ok', *[hashlib.sha256(d.x.numpy().tobytes() + d.y.numpy().tobytes()).hexdigest() for d in hs], flush=True)
    except Exception as e: print('error', type(e).__name__, str(e).replace('\n', ' '), flush=True)
'''

class Worker:
    "A separate Python process that loads MNIST-format data when told to; its lines arrive on a queue"
    def __init__(self):
        self.p = subprocess.Popen([sys.executable, '-c', WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'})
        self.q = queue.Queue()
        threading.Thread(target=lambda: [self.q.put(l.rstrip('\n')) for l in self.p.stdout], daemon=True).start()
    def line(self, timeout=120):
        try: return self.q.get(timeout=timeout)
        except queue.Empty: raise AssertionError(f'worker {self.p.pid} said nothing for {timeout} s') from None
    def close(self):
        self.p.stdin.close()
        try: self.p.wait(30)
        except subprocess.TimeoutExpired: self.p.kill()

N_WORKERS, N_ROUNDS = 3, 10

def test_concurrent_processes_extract_one_fresh_cache(tmp_path):
    root = tmp_path/'data'
    want = write_fake_idx_root(root, n_train=3000, n_test=500)
    want = [digest(x[:, None], y) for x, y in (want['train'], want['t10k'])]
    workers = [Worker() for _ in range(N_WORKERS)]
    try:
        for w in workers: assert w.line() == 'ready'
        failures = []
        for r in range(N_ROUNDS):
            cache, start = tmp_path/f'cache{r}', tmp_path/f'start{r}'   # a fresh cache each round
            for w in workers: w.p.stdin.write(f'{root}\t{cache}\t{start}\n'); w.p.stdin.flush()
            for w in workers: assert w.line() == 'waiting'
            start.touch()
            got = [w.line() for w in workers]
            failures += [f'round {r}: {g}' for g in got if g != f'ok {want[0]} {want[1]}']
            assert_cache_valid(root, cache)
        assert not failures, f'{len(failures)} of {N_WORKERS * N_ROUNDS} loads failed:\n' + '\n'.join(failures)
    finally:
        for w in workers: w.close()

# --- (b) a damaged cache entry is noticed and extracted again ------------------------------------------------------

def load_digests(root):
    return [digest(d.x.numpy(), d.y.numpy()) for d in (load_dataset('mnist', root=root, train=t) for t in (True, False))]

DAMAGE = {
    'cut in half':         lambda b: b[:len(b) // 2],
    'empty':               lambda b: b'',
    'header only':         lambda b: b[:16],
    'still gzipped':       lambda b: gzip.compress(b),
    'too long':            lambda b: b + b'\x00' * 10,
}

@pytest.mark.parametrize('damage', DAMAGE)
@pytest.mark.parametrize('entry', ['train-images-idx3-ubyte', 't10k-labels-idx1-ubyte'])
def test_a_damaged_cache_entry_is_extracted_again(damage, entry, tmp_path, monkeypatch):
    monkeypatch.setenv('NOISY_NBDEV_CACHE', str(tmp_path/'cache'))
    want = write_fake_idx_root(tmp_path/'data')
    want = [digest(x[:, None], y) for x, y in (want['train'], want['t10k'])]
    assert load_digests(tmp_path/'data') == want
    p = extracted(tmp_path/'cache')/entry
    p.write_bytes(DAMAGE[damage](p.read_bytes()))        # same inode, fresh timestamp: the timestamp alone trusts it
    with pytest.warns(UserWarning, match='the cached copy is damaged'): got = load_digests(tmp_path/'data')
    assert got == want
    assert_cache_valid(tmp_path/'data', tmp_path/'cache')

def test_an_updated_archive_replaces_the_cached_copy(tmp_path, monkeypatch):
    monkeypatch.setenv('NOISY_NBDEV_CACHE', str(tmp_path/'cache'))
    write_fake_idx_root(tmp_path/'data', seed=0); load_digests(tmp_path/'data')
    new = write_fake_idx_root(tmp_path/'data', seed=1)
    for f in IDX: os.utime(tmp_path/'data'/'MNIST'/'raw'/f'{f}.gz', (2e9, 2e9))     # the archives are newer now
    assert load_digests(tmp_path/'data') == [digest(x[:, None], y) for x, y in (new['train'], new['t10k'])]

KILLED = r'''
import sys, time
from pathlib import Path
from noisy_nbdev.data import _file_lock
out = Path(sys.argv[1])
with _file_lock(out.parent/f'.{out.name}.lock'):
    (out.parent/f'.{out.name}.999999.deadbeef.part').write_bytes(b'\x00\x00\x08\x03half')   # mid-extraction...
    out.write_bytes(b'\x00\x00\x08\x03')                                                   # ...with a broken copy
    print('holding', flush=True); time.sleep(600)
'''

def test_a_process_killed_while_extracting_leaves_no_lock_and_no_damage(tmp_path):
    env = {**os.environ, 'NOISY_NBDEV_CACHE': str(tmp_path/'cache'), 'OMP_NUM_THREADS': '1'}
    write_fake_idx_root(tmp_path/'data')
    out = extracted(tmp_path/'cache')/'train-images-idx3-ubyte'; out.parent.mkdir(parents=True)
    p = subprocess.Popen([sys.executable, '-c', KILLED, str(out)], stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == 'holding'
    p.kill(); p.wait()                                    # SIGKILL while holding the lock
    load = "from noisy_nbdev.data import load_dataset as l; print(len(l('mnist', root=r'%s')))" % (tmp_path/'data')
    r = subprocess.run([sys.executable, '-c', load], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.split() == ['50'], r.stderr
    assert_cache_valid(tmp_path/'data', tmp_path/'cache')

# --- (c) corrupt or truncated sources: one clear error naming the file and what was expected -----------------------

def one_error(exc_type, f, *contains):
    "Call `f`; it must raise `exc_type` (not chained: one error, one message) whose message contains each of `contains`"
    with pytest.raises(exc_type) as e: f()
    assert e.value.__cause__ is None and (e.value.__context__ is None or e.value.__suppress_context__), 'chained error'
    for c in contains: assert str(c) in str(e.value), (c, str(e.value))
    return str(e.value)

def damage_gz(p, f): p.write_bytes(gzip.compress(f(gzip.decompress(p.read_bytes()))))

IDX_SOURCE_DAMAGE = {   # what to do to t10k-images-idx3-ubyte (20 images: 16 + 20 x 784 = 15,696 bytes)
    'wrong magic':   (lambda b: b'\x00\x00\x08\x01' + b[4:], ['magic number 0x00000803', 'found 0x00000801']),
    'short payload': (lambda b: b[:-784], ['truncated', 'should hold 15,696 bytes; found 14,912']),
    'too long':      (lambda b: b + b'\x00', ['too long', 'should hold 15,696 bytes; found 15,697']),
    'empty':         (lambda b: b'', ['found an empty file']),
    'wrong dims':    (lambda b: b[:4] + (10).to_bytes(4, 'big') + b[8:], ['its header announces 10 x 28 x 28']),
}

@pytest.mark.parametrize('gz', [True, False], ids=['gz', 'plain'])
@pytest.mark.parametrize('case', IDX_SOURCE_DAMAGE)
def test_a_corrupt_idx_source_gives_one_clear_error(case, gz, tmp_path, monkeypatch):
    monkeypatch.setenv('NOISY_NBDEV_CACHE', str(tmp_path/'cache'))
    write_fake_idx_root(tmp_path/'data', gz=gz)
    p = tmp_path/'data'/'MNIST'/'raw'/f't10k-images-idx3-ubyte{".gz" if gz else ""}'
    f, expect = IDX_SOURCE_DAMAGE[case]
    damage_gz(p, f) if gz else p.write_bytes(f(p.read_bytes()))
    one_error(ValueError, lambda: load_dataset('mnist', root=tmp_path/'data', train=False), f'mnist: {p}', *expect)
    if gz:   # nothing half-written is left in the cache, so the next run does not trust it
        dest = extracted(tmp_path/'cache')
        assert p.stem not in [x.name for x in dest.iterdir()] and not list(dest.glob('*.part'))

@pytest.mark.parametrize('how', ['truncated', 'bad deflate data', 'not gzip'])
def test_a_damaged_gzip_archive_gives_one_clear_error(how, tmp_path, monkeypatch):
    monkeypatch.setenv('NOISY_NBDEV_CACHE', str(tmp_path/'cache'))
    write_fake_idx_root(tmp_path/'data', n_train=200)
    p = tmp_path/'data'/'MNIST'/'raw'/'train-images-idx3-ubyte.gz'
    b = p.read_bytes()
    p.write_bytes({'truncated': b[:len(b) // 2], 'bad deflate data': b[:100] + bytes(x ^ 0xFF for x in b[100:200]) + b[200:],
                   'not gzip': b'PK\x03\x04' + b[4:]}[how])
    one_error(ValueError, lambda: load_dataset('mnist', root=tmp_path/'data'), str(p), 'not a readable gzip file')

def test_labels_that_do_not_match_the_images_give_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv('NOISY_NBDEV_CACHE', str(tmp_path/'cache'))
    write_fake_idx_root(tmp_path/'data')
    raw = tmp_path/'data'/'MNIST'/'raw'
    write_idx(raw/'train-labels-idx1-ubyte.gz', np.arange(49) % 10)
    one_error(ValueError, lambda: load_dataset('mnist', root=tmp_path/'data'),
              f'{raw}/train-images-idx3-ubyte.gz holds 50 images but {raw}/train-labels-idx1-ubyte.gz holds 49 labels')

def write_fake_cifar10(root, n_per_batch=4, seed=0):
    "A tiny CIFAR-10 folder in the real python-pickle format (5 train batches + test batch + meta)"
    rng, folder = np.random.default_rng(seed), Path(root)/'cifar-10-batches-py'
    folder.mkdir(parents=True, exist_ok=True)
    for f in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
        entry = {'data': rng.integers(0, 256, (n_per_batch, 3*32*32), dtype=np.uint8), 'labels': list(rng.integers(0, 10, n_per_batch))}
        (folder/f).write_bytes(pickle.dumps(entry))
    (folder/'batches.meta').write_bytes(pickle.dumps({'label_names': [f'class{i}' for i in range(10)]}))
    return folder

def relabel(p, n):
    e = pickle.loads(p.read_bytes()); e['labels'] = e['labels'][:n]; p.write_bytes(pickle.dumps(e))

CIFAR_DAMAGE = {   # file, damage, error type, what the message must say
    'truncated batch':  ('data_batch_3', lambda p: p.write_bytes(p.read_bytes()[:1000]), ValueError, 'is truncated or corrupt'),
    'empty batch':      ('data_batch_1', lambda p: p.write_bytes(b''), ValueError, 'is truncated or corrupt'),
    'a label short':    ('data_batch_2', lambda p: relabel(p, 3), ValueError, "expected 'data' of N x 3072 bytes for its N = 3 labels"),
    'not a batch':      ('data_batch_4', lambda p: p.write_bytes(pickle.dumps([1, 2])), ValueError, "expected a pickled dict with the key 'labels'"),
    'missing batch':    ('data_batch_5', lambda p: p.unlink(), FileNotFoundError, 'expected the python-pickle batches data_batch_5'),
    'truncated meta':   ('batches.meta', lambda p: p.write_bytes(p.read_bytes()[:10]), ValueError, 'is truncated or corrupt'),
    'truncated test':   ('test_batch', lambda p: p.write_bytes(p.read_bytes()[:-5]), ValueError, 'is truncated or corrupt'),
}

@pytest.mark.parametrize('case', CIFAR_DAMAGE)
def test_a_corrupt_cifar_folder_gives_one_clear_error(case, tmp_path):
    folder = write_fake_cifar10(tmp_path)
    assert len(load_dataset('cifar10', root=tmp_path)) == 20
    f, damage, exc, msg = CIFAR_DAMAGE[case]
    damage(folder/f)
    named = str(folder/f) if exc is ValueError else str(folder)
    one_error(exc, lambda: load_dataset('cifar10', root=tmp_path, train=f != 'test_batch'), named, msg)

def write_fake_clothing1m(root, n=8):
    "A tiny Clothing1M tree: JPEG images under images/ plus the five key lists (all splits labelled)"
    from PIL import Image
    keys = [f'images/{i % 3}/{i:06d}.jpg' for i in range(n)]
    for k in keys:
        (root/k).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), 40 * (int(k[-5]) % 6), dtype=np.uint8)).save(root/k)
    kv = ''.join(f'{k} {i % 14}\n' for i, k in enumerate(keys))
    for f in ('noisy_label_kv.txt', 'clean_label_kv.txt'): (root/f).write_text(kv)
    for f, ks in (('noisy_train_key_list.txt', keys[:4]), ('clean_val_key_list.txt', keys[4:6]), ('clean_test_key_list.txt', keys[6:])):
        (root/f).write_text(''.join(k + '\n' for k in ks))
    return keys

def test_a_clothing1m_key_naming_a_missing_image_gives_one_clear_error(tmp_path):
    keys = write_fake_clothing1m(tmp_path)
    ds = load_dataset('clothing1m', root=tmp_path)
    assert len(ds) == 4 and ds[2][0].shape == (3, 224, 224)
    (tmp_path/keys[2]).unlink()
    one_error(FileNotFoundError, lambda: load_dataset('clothing1m', root=tmp_path), tmp_path/keys[2],
              '1 of the 4 images of the train list are missing', tmp_path/'noisy_train_key_list.txt')
    assert len(load_dataset('clothing1m', root=tmp_path, split='val')) == 2          # other splits still load
    unchecked = load_dataset('clothing1m', root=tmp_path, check_images=False)         # skip the up-front check:
    one_error(FileNotFoundError, lambda: unchecked[2], f'{tmp_path/keys[2]} is missing', 'noisy_train_key_list.txt')
    (tmp_path/keys[3]).write_bytes(b'\xff\xd8 not a jpeg')
    one_error(ValueError, lambda: unchecked[3], f'{tmp_path/keys[3]} is not a readable image')

def test_the_command_line_reports_a_corrupt_source_in_one_line(tmp_path):
    write_fake_idx_root(tmp_path/'data')
    p = tmp_path/'data'/'MNIST'/'raw'/'train-images-idx3-ubyte.gz'
    damage_gz(p, lambda b: b[:-100])
    exe = str(Path(sys.executable).parent/'noisy-train')
    r = subprocess.run([exe, '--dataset', 'mnist', '--data-root', str(tmp_path/'data'), '--out', str(tmp_path/'runs'), '--quiet'],
                       capture_output=True, text=True, timeout=300, env={**os.environ, 'NOISY_NBDEV_CACHE': str(tmp_path/'cache')})
    assert r.returncode != 0 and 'Traceback' not in r.stderr, r.stderr
    assert f'{p} (decompressed): truncated' in r.stderr, r.stderr

def test_clothing1m_trains_through_the_engine_with_seeded_augmentation(tmp_path):
    "A Clothing1M run (tiny tree, real format) through `run_experiment`: Sec. 4.3's views, the same records twice, its own clean split"
    import json
    from noisy_nbdev.train import RunConfig, prepare_data, run_experiment, build_learner
    from PIL import Image
    rng = np.random.default_rng(0)
    for k in write_fake_clothing1m(tmp_path, n=12):   # textured images: a crop or a flip changes what the network sees
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(tmp_path / k)
    cfg = RunConfig(dataset='clothing1m', noise='none', model='small_cnn', model_kwargs=dict(width=4), epochs=2, bs=2,
                    val_frac=0.25, augment='paper')
    tr, va, te = prepare_data(cfg, root=tmp_path)
    assert (len(tr), len(va), len(te)) == (3, 1, 6) and sorted(tr.orig_idx.tolist() + va.orig_idx.tolist()) == [0, 1, 2, 3]
    learn = build_learner(cfg, tr, va, te, device='cpu', progress=False)
    view = learn._train_view   # the training batches' views; evaluations (FW's estimate, pruning) see the plain images
    assert view.aug_seed == cfg.seed and learn.train.aug_seed is None and view[0][0].shape == (3, 224, 224)
    v0 = view[0][0]; view.set_epoch(1); v1 = view[0][0]; view.set_epoch(0)
    assert not (v0 == v1).all() and (view[0][0] == v0).all()   # each epoch its own crop or flip, the same one again for the same epoch
    learn.fit(2); assert view.epoch == 1   # the Learner showed each epoch its own views
    a, b = (run_experiment(cfg, tmp_path / d, root=tmp_path, device='cpu', progress=False) for d in ('a', 'b'))
    ra, rb = (json.loads(next((tmp_path / d).glob('*/result.json')).read_text()) for d in ('a', 'b'))
    la, lb = (np.load(next((tmp_path / d).glob('*/sample_losses.npy'))) for d in ('a', 'b'))
    assert ra == rb and a['last']['epoch'] == 1 and la.tobytes() == lb.tobytes()   # two runs, DataLoader workers and all: the same records
    lim = run_experiment(RunConfig(**{**cfg.__dict__, 'method': 'limit', 'epochs': 1}), tmp_path / 'limit', root=tmp_path, device='cpu', progress=False)
    assert lim['last']['epoch'] == 0   # LIMIT's predictor is built for a lazy data set too
    _, vc, _ = prepare_data(RunConfig(dataset='clothing1m', noise='none', clean_val=True), root=tmp_path)
    assert vc.split == 'val' and (vc.y == vc.clean_y).all()   # `clean_val`: Clothing1M's own clean validation list
    for bad in (dict(norm='limit_code'), dict(bn_recalibrate=True), dict(noise='instance', rate=0.2)):
        for name in ('clothing1m', 'Clothing1M'):   # however the name is spelt
            with pytest.raises(ValueError, match=f"RunConfig.{next(iter(bad))}=.*does not apply to clothing1m"): RunConfig(dataset=name, **bad)
