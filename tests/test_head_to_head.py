"""The head-to-head of ASIF and LIMIT (issue 14): instance-dependent noise as `RunConfig(noise='instance')` (ASIF's
protocol, Chen et al.), the declared `h2h_*` experiments, and a tiny real run through the detection table.
Small CPU runs on the synthetic data set; the difficulty scores go to a temporary cache."""
import json, warnings
import numpy as np
import pytest
import noisy_nbdev.train as T
from noisy_nbdev.train import RunConfig, RunFolderWarning, prepare_data

SYN = dict(dataset='synthetic', noise='instance', train_size=400, val_size=100, instance_epochs=2)

@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv('NOISY_NBDEV_CACHE', str(tmp_path))
    return tmp_path/'difficulty'

def _scores(cache):
    (f,) = cache.glob('*.npy'); return np.load(f)

def test_instance_noise_flips_exactly_the_hardest(cache):
    tr, va, _ = prepare_data(RunConfig(**SYN, rate=0.3))
    s = _scores(cache)
    for ds in (tr, va):
        m = ds.noise_mask.numpy()
        assert m.sum() == round(len(ds) * 0.3)                     # the rate is exact (Chen et al.)
        si = s[ds.orig_idx.numpy()]                                 # this set's images' difficulty
        assert si[m].min() >= si[~m].max()                          # the flipped ones are the hardest of the set
        assert (ds.y.numpy() != ds.clean_y.numpy())[m].all()        # a flipped label is another class
    assert (tr.clean_y.numpy() == tr.y.numpy())[~tr.noise_mask.numpy()].all()

def test_instance_noise_is_nested_across_rates(cache):
    lo, _, _ = prepare_data(RunConfig(**SYN, rate=0.2))
    hi, _, _ = prepare_data(RunConfig(**SYN, rate=0.4))
    a, b = lo.noise_mask.numpy(), hi.noise_mask.numpy()
    assert a.sum() == 80 and b.sum() == 160 and not (a & ~b).any()   # the 20% flips are among the 40% flips...
    assert (lo.y.numpy()[a] == hi.y.numpy()[a]).all()               # ... with the same new labels

def test_instance_scores_are_cached_and_repaired(cache, monkeypatch):
    tr, _, _ = prepare_data(RunConfig(**SYN, rate=0.3))
    def boom(*a, **k): raise AssertionError("the scorer trained again although its scores are cached")
    monkeypatch.setattr(T, 'difficulty_scores', boom)
    again, _, _ = prepare_data(RunConfig(**SYN, rate=0.3, seed=0))
    assert (again.y == tr.y).all()
    (f,) = cache.glob('*.npy'); f.write_bytes(b'not an array')        # a damaged cache file is recomputed, with a warning
    monkeypatch.undo(); monkeypatch.setenv('NOISY_NBDEV_CACHE', str(cache.parent))
    with pytest.warns(RunFolderWarning, match='unusable'): fixed, _, _ = prepare_data(RunConfig(**SYN, rate=0.3))
    assert (fixed.y == tr.y).all()

def test_instance_fields_are_checked():
    for kw, field in ((dict(instance_epochs=3), 'instance_epochs'), (dict(noise='instance', instance_model='nope'), 'instance_model'),
                      (dict(noise='instance', instance_epochs=0), 'instance_epochs'), (dict(noise='pair', instance_model='mlp'), 'instance_model')):
        with pytest.raises(ValueError, match=f"RunConfig.{field}"): RunConfig(**kw)
    assert RunConfig(noise='instance', rate=0.2).run_name().startswith('mnist-instance0.2-ce')
    assert RunConfig().key() == RunConfig(instance_model='limit_cnn', instance_epochs=10).key()  # defaults: old keys kept
