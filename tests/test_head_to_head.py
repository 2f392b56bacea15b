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

# --- the declared head-to-head ------------------------------------------------------------------------------------
from dataclasses import replace
from noisy_nbdev.experiments import Profile, expand, collect, get_experiment, cell_label
H2H = ('h2h_limit_noise', 'h2h_asif_noise')
SHARED = ('dataset', 'noise', 'rate', 'pairs', 'include_true_class', 'train_size', 'val_frac', 'val_size', 'test_size', 'model',
          'epochs', 'bs', 'patience', 'test_only_selected', 'norm')

@pytest.mark.parametrize('name', H2H)
@pytest.mark.parametrize('profile', ['local', 'paper'])
def test_h2h_declarations_expand_to_one_protocol_per_cell(name, profile):
    specs = expand(name, profile)
    by_cell = {}
    for s in specs: by_cell.setdefault((cell_label(s.cell), s.seed), set()).add(tuple(getattr(s.cfg, f) for f in SHARED))
    assert all(len(v) == 1 for v in by_cell.values())                  # same data, noise, model, budget and selection per cell
    rows = {s.row for s in specs}
    assert {'CE', 'GCE', 'PHuber', 'ASIF', 'LIMIT_G -S', 'LIMIT_L -S'} <= rows
    if profile == 'paper': assert {'LIMIT_G +S', 'LIMIT_L +S', 'CE + GN', 'CE + LN', 'MAE', 'FW', 'DMI', 'Soft reg. (8)'} <= rows
    noises = {(s.cfg.noise, s.cfg.include_true_class) for s in specs}
    want = {('symmetric', False), ('pair', False)} if name == 'h2h_limit_noise' else {('symmetric', True), ('instance', False)}
    assert want <= noises and not (noises - want - {('none', False)})  # the paper's own noise protocols, nothing else
    assert set(get_experiment(name).analyses) == {'detection', 'cleanlab'}

def test_h2h_dry_run_plans_without_training(tmp_path, capsys):
    from noisy_nbdev.sweep import run_sweep
    p = run_sweep('h2h_asif_noise', 'local', out=tmp_path, dry_run=True, progress=False)
    assert len(p) == len(expand('h2h_asif_noise', 'local')) == 3 * 2 * 2 * 6 * 3 and set(p.status) == {'todo'}  # noises x data sets x sizes x rows x seeds
    assert 'to run: 216 runs' in capsys.readouterr().out and not any(tmp_path.iterdir())

def test_a_tiny_head_to_head_through_the_detection_table(tmp_path, cache):
    "The declaration's rows and analyses on the synthetic set: a sweep, collect, and one detection line per detector"
    import noisy_nbdev.cleanlab_compare as cc
    from noisy_nbdev.sweep import run_sweep
    pytest.importorskip('cleanlab', reason=f"cleanlab is not installed ({cc.CLEANLAB_EXTRA})")
    exp = get_experiment('h2h_asif_noise')
    tiny = replace(exp, name='h2h_tiny', profiles=dict(local=Profile(seeds=1, rows=['CE', 'ASIF', 'LIMIT_L -S'],
        base=dict(dataset='synthetic', train_size=300, val_size=100, test_size=100, epochs=2),
        grids={'ASIF': dict(lambda_id=[10.0]), 'LIMIT_L -S': dict(beta=[10.0])},
        cells=[dict(noise='symmetric', include_true_class=True, rate=0.4), dict(noise='instance', rate=0.3, instance_epochs=2)])))
    runs = run_sweep(tiny, 'local', out=tmp_path, progress=False)
    assert runs.done.all() and len(runs) == 6
    t = cc.detection_table(runs)
    for cell in runs.cell.unique():
        dets = set(t[t.cell == cell].detector)
        assert dets == {'CE: small loss (last epoch)', 'ASIF: small loss (last epoch)', 'LIMIT_L -S: small loss (last epoch)',
                        'LIMIT_L -S: gradient distance (LIMIT)', 'LIMIT_L -S: predicted-gradient norm (LIMIT)',
                        cc.DETECTORS['cl_issues'], cc.DETECTORS['cl_quality']}, dets
    assert t[list(cc.METRICS)].notna().all().all()
    inst = runs[runs.cell.str.contains('instance')]
    assert np.allclose(inst.train_noise_rate, 0.3)                     # Chen et al.'s exact rate, through the sweep
    again = collect(tiny, tmp_path, 'local')                            # the records alone give the same table back
    assert cc.detection_table(again).equals(t)
