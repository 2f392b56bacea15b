"""What a run folder records and how it is found again (see *Run keys that survive new options*, *What ran where* and
`load_run` in nbs/03_train.ipynb): run keys hash only the non-default fields and `RESULT_FORMAT`, so a new defaulted
option orphans no run folder; config.json records version, commit, hardware and resources; `load_run` reads a run
back. Small CPU runs on the synthetic data set."""
import json
from dataclasses import fields, make_dataclass, MISSING
from pathlib import Path
import pytest, torch
import noisy_nbdev.train as T
from noisy_nbdev.train import RunFolderWarning, RunConfig, RESULT_FORMAT, evaluate, load_run, prepare_data, run_experiment
from noisy_nbdev.models import get_model

# a run whose best noisy-validation epoch (1) is not its last (3), with a different test accuracy
BASE = dict(dataset='synthetic', rate=0.6, lr=1e-2, model='mlp', model_kwargs=dict(width=64, depth=1), epochs=4,
            train_size=240, test_size=150, bs=64, seed=3)

# The defaults of today's fields. A run key does not hash default values, so changing one of these changes what an
# existing key means: bump RESULT_FORMAT (every key changes) and update this table, both in the same commit.
PINNED_DEFAULTS = dict(dataset='mnist', noise='symmetric', rate=0.0, method='ce', method_kwargs={}, model='limit_cnn',
                       model_kwargs={}, epochs=10, bs=128, lr=1e-3, opt='adam', wd=0., momentum=0.9, seed=0, train_size=None,
                       val_frac=0.2, test_size=None, patience=None, include_true_class=False, pairs=None, val_size=None,
                       init_from_ce=False)
# Keys of fixed configs under RESULT_FORMAT 1: the key function (or the format) cannot change by accident.
PINNED_KEYS = {1: dict(default='de4ee31337', small='9bab7f42a6')}

def default(f): return f.default_factory() if f.default_factory is not MISSING else f.default

def test_defaults_are_pinned():
    now = {f.name: default(f) for f in fields(RunConfig)}
    changed = {k: (v, now[k]) for k, v in PINNED_DEFAULTS.items() if k in now and now[k] != v}
    assert not changed, f"defaults changed {changed}: bump RESULT_FORMAT and update PINNED_DEFAULTS"
    assert set(PINNED_DEFAULTS) <= set(now), f"fields removed: {set(PINNED_DEFAULTS) - set(now)}: bump RESULT_FORMAT"

def test_keys_are_pinned():
    assert RESULT_FORMAT in PINNED_KEYS, "RESULT_FORMAT was bumped: pin the new keys"
    assert RunConfig().key() == PINNED_KEYS[RESULT_FORMAT]['default']
    assert RunConfig(dataset='synthetic', rate=0.2, epochs=3).key() == PINNED_KEYS[RESULT_FORMAT]['small']

def test_a_new_defaulted_field_keeps_every_key():
    Later = make_dataclass('Later', [('label_smoothing', float, 0.0), ('augment', dict, None)], bases=(RunConfig,))
    for kw in ({}, BASE, dict(BASE, noise='pair', pairs='asif_cifar10'), dict(BASE, method='gce', method_kwargs=dict(q=0.5))):
        assert Later(**kw).key() == RunConfig(**kw).key() and Later(**kw).run_name() == RunConfig(**kw).run_name(), kw
        assert Later(**kw, label_smoothing=0.1).key() != RunConfig(**kw).key(), kw

# For each field: (the context it needs, a non-default value)
CHANGES = dict(dataset=({}, 'fashion_mnist'), noise=({}, 'pair'), rate=({}, 0.2), method=({}, 'gce'),
               method_kwargs=(dict(method='gce'), dict(q=0.5)), model=({}, 'mlp'), model_kwargs=(dict(model='mlp'), dict(width=8)),
               epochs=({}, 11), bs=({}, 64), lr=({}, 2e-3), opt=({}, 'sgd'), wd=({}, 1e-4), momentum=({}, 0.5), seed=({}, 1),
               train_size=({}, 100), val_frac=({}, 0.1), test_size=({}, 100), patience=({}, 3), include_true_class=({}, True),
               pairs=(dict(noise='pair'), 'limit_cifar10'), val_size=({}, 50), init_from_ce=({}, True),
               norm=({}, 'limit_code'), bn_recalibrate=({}, True), test_only_selected=({}, True),
               ce_config=(dict(init_from_ce=True), {'lr': 0.002}),
               instance_model=(dict(noise='instance'), 'mlp'), instance_epochs=(dict(noise='instance'), 5),
               channels_last=({}, True), autocast=({}, 'bf16'), compile=({}, True), augment=({}, 'paper'), clean_val=({}, True), wd_matrices_only=(dict(wd=1e-3), True))

@pytest.mark.parametrize('name', [f.name for f in fields(RunConfig)])
def test_any_non_default_field_changes_the_key(name):
    assert name in CHANGES, f"new RunConfig field {name}: add a non-default value to CHANGES"
    ctx, v = CHANGES[name]
    assert RunConfig(**ctx, **{name: v}).key() != RunConfig(**ctx).key()

def test_the_key_depends_on_the_result_format(monkeypatch):
    k = RunConfig(**BASE).key()
    monkeypatch.setattr(T, 'RESULT_FORMAT', RESULT_FORMAT + 1)
    assert RunConfig(**BASE).key() != k

@pytest.fixture(scope='module')
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp('runs')
    return out, run_experiment(RunConfig(**BASE), out, device='cpu', progress=False)

def test_an_equal_config_finds_the_run_folder_again(finished):
    out, first = finished
    assert first['reused'] is False
    # the same run spelled otherwise (defaults given explicitly), and by a later version with a new defaulted option
    Later = make_dataclass('Later', [('label_smoothing', float, 0.0)], bases=(RunConfig,))
    for cfg in (RunConfig(**dict(BASE, opt='adam', wd=0.0, noise='symmetric', pairs=None)), Later(**BASE)):
        again = run_experiment(cfg, out, device='cpu', progress=False)
        assert again['reused'] is True and again['path'] == first['path'] and again['last'] == first['last']
    assert len(list(Path(out).iterdir())) == 1

def test_config_json_records_provenance_and_resources(finished):
    _, first = finished
    meta = json.loads((Path(first['path'])/'config.json').read_text())
    assert meta['config'] == dict(RunConfig(**BASE).__dict__) and meta['key'] == RunConfig(**BASE).key()
    assert meta['result_format'] == RESULT_FORMAT and meta['version'] and 'git_commit' in meta and 'git_dirty' in meta
    if meta['git_commit'] is not None:  # an installed package outside a git checkout has none
        assert len(meta['git_commit']) == 40 and isinstance(meta['git_dirty'], bool), meta
    hw = meta['hardware']
    assert hw['device'] == 'cpu' and hw['cpu'] and hw['cpu_count'] >= 1 and 'gpu' not in hw
    r = meta['resources']
    assert r['epochs'] == 4 and r['wall_time_s'] >= r['train_time_s'] > 0, r
    assert r['peak_rss_mib'] > 50, r  # torch alone takes more than that
    # result.json stays a pure result: what the machine did is not in it
    res = json.loads((Path(first['path'])/'result.json').read_text())
    assert set(res) == {'last', 'best_val', 'oracle_best_test', 'status', 'noise'}, set(res)

def test_a_result_with_extra_keys_is_still_a_finished_run(finished):
    out, first = finished
    f = Path(first['path'])/'result.json'
    keep = f.read_text()
    try:
        f.write_text(json.dumps(dict(json.loads(keep), wall_time_s=1.0, peak_rss_mib=2.0)))
        assert run_experiment(RunConfig(**BASE), out, device='cpu', progress=False)['reused'] is True
    finally: f.write_text(keep)

def test_load_run_reads_the_run_back(finished):
    _, first = finished
    run = load_run(first['path'])
    cfg = RunConfig(**BASE)
    assert run['config'] == cfg and run['finished'] and run['result'] == json.loads((Path(first['path'])/'result.json').read_text())
    assert [h['epoch'] for h in run['history']] == [0, 1, 2, 3] and run['meta']['key'] == cfg.key()
    _, _, te = prepare_data(cfg)
    net = get_model(cfg.model, te.num_classes, in_channels=1, **cfg.model_kwargs)
    assert first['best_val']['test_acc'] != first['last']['test_acc'], "the run cannot tell the best weights from the last"
    net.load_state_dict(run['best_state']())
    assert evaluate(net, te)['acc'] == first['best_val']['test_acc']
    last = run['last_state']()
    net.load_state_dict(last['model'])
    assert last['epoch'] == 4 and evaluate(net, te)['acc'] == first['last']['test_acc']

def test_load_run_falls_back_to_the_previous_checkpoint_and_changes_nothing(finished, tmp_path):
    import shutil
    _, first = finished
    d = tmp_path/'copy'; shutil.copytree(first['path'], d)
    (d/'checkpoint.pt').write_bytes((d/'checkpoint.pt').read_bytes()[:100])
    before = sorted(p.name for p in d.iterdir())
    with pytest.warns(RunFolderWarning, match='falling back to checkpoint.prev.pt'):
        assert load_run(d)['last_state']()['epoch'] == 3  # checkpoint.prev.pt: after epoch 2 (the third)
    assert sorted(p.name for p in d.iterdir()) == before

def test_load_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match='not a run folder'): load_run(tmp_path)

def test_protocol_options_from_the_installed_package(tmp_path):
    """`test_only_selected` gives the selections of a full run (no oracle), `best_modules` are kept for LIMIT's
    predictor, `norm` reaches the data, and `bn_recalibrate` changes what is evaluated."""
    import torch
    from noisy_nbdev.train import RunConfig, run_experiment, load_run, prepare_data
    base = dict(dataset='synthetic', model='mlp', model_kwargs=dict(width=16, depth=1), epochs=4, train_size=300,
                test_size=200, bs=64, method='limit', method_kwargs=dict(q_model='mlp', q_kwargs=dict(width=16, depth=1)))
    full = run_experiment(RunConfig(**base), tmp_path, device='cpu', progress=False)
    sel = run_experiment(RunConfig(**base, test_only_selected=True), tmp_path, device='cpu', progress=False)
    assert (sel['best_val'], sel['last']) == (full['best_val'], full['last'])
    assert 'oracle_best_test' in full and 'oracle_best_test' not in sel
    r = load_run(sel['path'])
    bm = r['best_modules']()
    assert bm is not None and len(bm) == 1 and any(k.endswith('weight') for k in bm[0])
    if sel['best_val']['epoch'] != sel['last']['epoch']:  # the best predictor is not the last one
        assert any(not torch.equal(bm[0][k], r['last_state']()['modules'][0][k]) for k in bm[0])
    tr, _, _ = prepare_data(RunConfig(**base, norm='0.3,0.6'))
    assert (tr.mean, tr.std) == ((0.3,), (0.6,))
    bn = run_experiment(RunConfig(**base, bn_recalibrate=True), tmp_path, device='cpu', progress=False)
    assert [h['val_acc'] for h in load_run(bn['path'])['history']] != [h['val_acc'] for h in load_run(full['path'])['history']]
