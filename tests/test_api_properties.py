"""Property tests (hypothesis) of the public API's inputs: a bad input raises ONE error (a `ValueError`, `CliError` on
the command line) whose message names the argument, and no public function returns a silent NaN.

`tests/test_noise_properties.py` checks what the noise generators *do* on good input; this file checks what every
public entry point does on bad input (noise, detection, losses, bounds, `noisy-train`, `load_dataset`, `RunConfig`).
Inputs checked by `load_dataset` (00_data) and by `RunConfig` when it is made (03_train) are tested here too.
"""
import math, os, subprocess, sys, tempfile
from pathlib import Path
import numpy as np
import pytest
import torch
from hypothesis import given, settings, HealthCheck, strategies as st
from fastcore.script import CliError

from noisy_nbdev.noise import symmetric_noise, pair_noise, instance_dependent_noise, transition_matrix, noise_transition
from noisy_nbdev.detect import detect_noisy, loss_scores
from noisy_nbdev.losses import (ce_loss, gce_loss, phuber_ce_loss, mae_loss, dmi_loss, forward_corrected_loss,
                                estimate_transition_anchor)
from noisy_nbdev.bounds import binary_entropy, uniform_noise_entropy, fano_error_bound, fano_curves, gaussian_info_bound
from noisy_nbdev.train import get_method, RunConfig, run_experiment
from noisy_nbdev.data import load_dataset
from noisy_nbdev.cli import noisy_train

settings.register_profile('api', max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile('api')

def raises_naming(name, call):
    "`call()` must raise a ValueError whose message contains `name`; returns the message"
    with pytest.raises(ValueError) as e: call()
    assert name in str(e.value), f"{name!r} not in {str(e.value)!r}"
    return str(e.value)

# ---------------------------------------------------------------------------------------------------- strategies
K = st.integers(2, 12)
seeds = st.integers(0, 2**31 - 1)
bad_prob = st.one_of(st.floats(allow_nan=False).filter(lambda x: not 0 <= x <= 1), st.just(float('nan')),
                     st.sampled_from(['0.5', None]))     # outside [0, 1], NaN, not a number
bad_k = st.one_of(st.integers(-3, 1), st.floats(-5, 20).filter(lambda x: x != int(x)), st.sampled_from([float('nan'), math.inf, '10']))

@st.composite
def labels(draw, min_n=1, max_n=60):
    k = draw(K)
    return np.array(draw(st.lists(st.integers(0, k - 1), min_size=min_n, max_size=max_n)), dtype=np.int64), k

@st.composite
def labels_out_of_range(draw):
    "labels with at least one value outside 0..k-1"
    y, k = draw(labels())
    i, v = draw(st.integers(0, len(y) - 1)), draw(st.one_of(st.integers(-100, -1), st.integers(k, k + 100)))
    y[i] = v
    return y, k

@st.composite
def labels_not_integers(draw):
    "labels with at least one non-integral float, NaN or inf"
    y, k = draw(labels())
    y = y.astype(float); y[draw(st.integers(0, len(y) - 1))] = draw(st.one_of(
        st.floats(0, k - 1).filter(lambda x: x != int(x)), st.sampled_from([np.nan, np.inf, -np.inf])))
    return y, k

# one call per public noise function, as f(labels, rate, k)
NOISE = {
    'symmetric': lambda y, r, k: symmetric_noise(y, r, k),
    'symmetric_exact': lambda y, r, k: symmetric_noise(y, r, k, exact=True),
    'pair': lambda y, r, k: pair_noise(y, r, {0: 1}, num_classes=k),
    'instance': lambda y, r, k: instance_dependent_noise(y, np.linspace(0, 1, len(y)), r, k),
}
noise_fn = st.sampled_from(sorted(NOISE))

# ---------------------------------------------------------------------------------------------------- noise
@given(noise_fn, labels(), bad_prob)
def test_noise_rate_outside_unit_interval_is_named(f, yk, rate):
    y, k = yk
    raises_naming('rate', lambda: NOISE[f](y, rate, k))

@given(bad_prob, K)
def test_transition_model_rate_is_named(rate, k):
    for kind in ('symmetric', 'pair'):
        raises_naming('rate', lambda: noise_transition(kind, rate, k, {0: 1}))

@given(noise_fn, labels_out_of_range(), st.floats(0, 1))
def test_labels_outside_the_classes_are_named(f, yk, rate):
    y, k = yk
    raises_naming(f'labels must lie in 0..{k-1}', lambda: NOISE[f](y, rate, k))

@given(noise_fn, labels_not_integers(), st.floats(0, 1))
def test_float_labels_are_named(f, yk, rate):
    y, k = yk
    raises_naming('labels must be integers', lambda: NOISE[f](y, rate, k))

@given(noise_fn, K, st.floats(0, 1), st.sampled_from([[], np.zeros(0), np.zeros(0, np.int64)]))
def test_empty_labels_are_named(f, k, rate, empty):
    raises_naming('labels must not be empty', lambda: NOISE[f](empty, rate, k))

@given(noise_fn, labels(), st.floats(0, 1), bad_k)
def test_num_classes_below_two_or_not_whole_is_named(f, yk, rate, k):
    y, _ = yk
    raises_naming('num_classes', lambda: NOISE[f](np.zeros_like(y), rate, k))
    raises_naming('num_classes', lambda: transition_matrix(np.zeros_like(y), np.zeros_like(y), k))
    raises_naming('num_classes', lambda: noise_transition('symmetric', rate, k))

@given(labels(min_n=1), st.integers(0, 5).filter(bool), st.booleans())
def test_mismatched_lengths_are_named(yk, extra, longer):
    y, k = yk
    other = np.concatenate([y, np.zeros(extra, np.int64)]) if longer else y[:max(len(y) - extra, 0)]
    if len(other) == 0: other = np.zeros(len(y) + 1, np.int64)
    raises_naming('must match', lambda: instance_dependent_noise(y, np.zeros(len(other)), 0.5, k))
    raises_naming('noisy labels', lambda: transition_matrix(y, other, k))

@given(K, st.data())
def test_bad_pairs_are_named(k, data):
    s = data.draw(st.integers(0, k - 1))
    for pairs in ({s: s}, {s: data.draw(st.integers(k, k + 10))}, {s: -1}, 'cifar', [s, (s + 1) % k], {'cat': 'dog'}):
        raises_naming('pairs', lambda: pair_noise(np.arange(k), 0.5, pairs, num_classes=k))
        raises_naming('pairs', lambda: noise_transition('pair', 0.5, k, pairs))

# ---------------------------------------------------------------------------------------------------- detection
METRICS = ('precision', 'recall', 'f1', 'balanced_accuracy', 'roc_auc', 'auprc')
scores_st = st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=80)

@st.composite
def scores_and_mask(draw, mask_kind='any'):
    s = np.array(draw(scores_st))
    if mask_kind == 'clean': m = np.zeros(len(s), bool)
    elif mask_kind == 'noisy': m = np.ones(len(s), bool)
    else: m = np.array(draw(st.lists(st.booleans(), min_size=len(s), max_size=len(s))))
    if draw(st.booleans()): s = np.full(len(s), s[0])                    # constant scores, half the time
    return s, m

@st.composite
def rule(draw, n):
    "one of the three ways to choose how many samples to flag"
    which = draw(st.sampled_from(['rate', 'k', 'oracle']))
    if which == 'rate': return dict(rate=draw(st.floats(0, 1)))
    if which == 'k': return dict(k=draw(st.integers(0, n)))
    return dict(oracle_rate=True)

def check_metrics(m, mask):
    "every metric a number in [0, 1] or None, None exactly where undefined (one class only), never NaN"
    assert set(m) == set(METRICS)
    both = 0 < mask.sum() < len(mask)
    for name in METRICS:
        v = m[name]
        if name in ('balanced_accuracy', 'roc_auc', 'auprc') and not both: assert v is None, (name, v)
        else: assert isinstance(v, float) and 0 <= v <= 1 and not math.isnan(v), (name, v)

@given(st.sampled_from(['any', 'clean', 'noisy']).flatmap(scores_and_mask), st.data())
def test_detection_metrics_are_numbers_or_none_never_nan(sm, data):
    s, m = sm
    d = detect_noisy(s, m, **data.draw(rule(len(s))))
    check_metrics(d.metrics, m)
    assert d.mask.sum() == d.k and 0 <= d.k <= len(s)

@given(scores_and_mask('clean'), st.data())
def test_all_clean_mask_scores_zero_and_undefined(sm, data):
    s, m = sm
    d = detect_noisy(s, m, **data.draw(rule(len(s))))
    assert [d.metrics[n] for n in METRICS] == [0., 0., 0., None, None, None]

@given(scores_and_mask('noisy'), st.integers(0, 80))
def test_all_noisy_mask_precision_one_recall_k_over_n(sm, k):
    s, m = sm
    k = min(k, len(s))
    d = detect_noisy(s, m, k=k)
    assert d.metrics['precision'] == (1. if k else 0.) and d.metrics['recall'] == pytest.approx(k / len(s))
    assert d.metrics['roc_auc'] is None and d.metrics['auprc'] is None

@given(st.lists(st.booleans(), min_size=2, max_size=80).filter(lambda m: 0 < sum(m) < len(m)), st.floats(-10, 10), st.data())
def test_constant_scores_are_chance(mask, c, data):
    m = np.array(mask)
    k = data.draw(st.integers(0, len(m)))
    d = detect_noisy(np.full(len(m), c), m, k=k)
    assert np.flatnonzero(d.mask).tolist() == list(range(k))          # ties: the first k by position
    assert d.metrics['roc_auc'] == pytest.approx(0.5) and d.metrics['auprc'] == pytest.approx(m.mean())

@given(scores_and_mask(), st.sampled_from([np.nan, np.inf, -np.inf]), st.data())
def test_non_finite_scores_are_named(sm, bad, data):
    s, m = sm
    s = s.copy(); s[data.draw(st.integers(0, len(s) - 1))] = bad
    raises_naming('scores must be finite', lambda: detect_noisy(s, m, **data.draw(rule(len(s)))))

@given(scores_and_mask(), bad_prob.filter(lambda r: r is not None))     # rate=None means "no rate given"
def test_detection_rate_out_of_range_is_named(sm, rate):
    s, m = sm
    raises_naming('rate must lie in [0, 1]', lambda: detect_noisy(s, m, rate=rate))

@given(scores_and_mask(), st.data())
def test_k_outside_0_to_n_or_not_integer_is_named(sm, data):
    s, m = sm
    k = data.draw(st.one_of(st.integers(len(s) + 1, len(s) + 100), st.integers(-100, -1)))
    raises_naming(f'k must lie in 0..{len(s)}', lambda: detect_noisy(s, m, k=k))
    raises_naming('k must be an integer', lambda: detect_noisy(s, m, k=data.draw(st.floats(0, len(s)).filter(lambda x: x != int(x)))))

@given(scores_and_mask(), st.integers(1, 5), st.booleans())
def test_mask_of_another_length_is_named(sm, extra, longer):
    s, m = sm
    other = np.concatenate([m, np.zeros(extra, bool)]) if longer or len(m) <= extra else m[:-extra]
    raises_naming('noise_mask entries for', lambda: detect_noisy(s, other, k=0))

@given(scores_and_mask(), st.sampled_from([2, -1, 0.5, np.nan]), st.data())
def test_mask_that_is_not_boolean_is_named(sm, bad, data):
    s, m = sm
    mm = m.astype(float); mm[data.draw(st.integers(0, len(m) - 1))] = bad
    raises_naming('noise_mask must hold booleans', lambda: detect_noisy(s, mm, k=0))

def test_empty_scores_are_named():
    for kw in (dict(k=0), dict(rate=0.5), dict(oracle_rate=True)):
        raises_naming('scores must not be empty', lambda: detect_noisy([], [], **kw))

@given(st.integers(1, 6), st.integers(1, 30), st.floats(0, 0.5), seeds)
def test_loss_scores_never_return_nan(E, N, p_missing, seed):
    "recorded losses with NaN holes (samples not seen in an epoch): finite scores, or an error naming the losses"
    rng = np.random.default_rng(seed)
    L = rng.random((E, N)); L[rng.random((E, N)) < p_missing] = np.nan
    for epochs in (None, 0, list(range(E)), [-1]):
        try: s = loss_scores(L, epochs)
        except ValueError as e: assert 'NaN (not recorded)' in str(e) and 'losses' in str(e); continue
        assert s.shape == (N,) and np.isfinite(s).all()

@given(st.integers(1, 4), st.integers(1, 10), st.data())
def test_loss_scores_bad_epochs_are_named(E, N, data):
    L = np.ones((E, N))
    raises_naming('out of range', lambda: loss_scores(L, data.draw(st.one_of(st.integers(E, E + 5), st.integers(-E - 5, -E - 1)))))
    raises_naming('epochs must be an integer', lambda: loss_scores(L, data.draw(st.sampled_from([[], 0.5, [0.5], 'last']))))

# ---------------------------------------------------------------------------------------------------- losses
LOSSES = {'ce': ce_loss, 'gce': gce_loss, 'phuber': phuber_ce_loss, 'mae': mae_loss, 'dmi': dmi_loss,
          'fw': lambda a, b, **kw: forward_corrected_loss(a, b, torch.full((a.shape[1],) * 2, 1 / a.shape[1]), **kw)}

@st.composite
def batch(draw, min_b=1, max_b=16):
    k, b = draw(K), draw(st.integers(min_b, max_b))
    g = torch.Generator().manual_seed(draw(seeds))
    logits = torch.randn(b, k, generator=g) * draw(st.floats(0.1, 30))
    return logits, torch.randint(0, k, (b,), generator=g)

@given(st.sampled_from(sorted(LOSSES)), batch(), st.data())
def test_loss_labels_out_of_range_are_named(name, lb, data):
    logits, y = lb
    y = y.clone(); y[data.draw(st.integers(0, len(y) - 1))] = data.draw(st.one_of(st.integers(-50, -1), st.integers(logits.shape[1], 60)))
    raises_naming(f'labels y must lie in 0..{logits.shape[1] - 1}', lambda: LOSSES[name](logits, y))

@given(st.sampled_from(sorted(LOSSES)), batch(min_b=2), st.integers(1, 5), st.booleans())
def test_loss_mismatched_lengths_are_named(name, lb, extra, longer):
    logits, y = lb
    y2 = torch.cat([y, torch.zeros(extra, dtype=torch.long)]) if longer or len(y) <= extra else y[:-extra]
    raises_naming('labels for', lambda: LOSSES[name](logits, y2))

@given(st.sampled_from(sorted(LOSSES)), batch())
def test_float_labels_are_named_not_a_torch_error(name, lb):
    logits, y = lb
    raises_naming('labels y must be an integer tensor', lambda: LOSSES[name](logits, y.float()))

@given(st.sampled_from(['ce', 'gce', 'phuber', 'mae', 'fw']), K)
def test_mean_of_an_empty_batch_is_an_error_not_nan(name, k):
    raises_naming('empty batch', lambda: LOSSES[name](torch.zeros(0, k), torch.zeros(0, dtype=torch.long)))

bad_q = st.one_of(st.floats(allow_nan=False).filter(lambda x: not 0 < x <= 1), st.just(float('nan')), st.just('0.7'))
bad_trunc = st.one_of(st.floats(allow_nan=False).filter(lambda x: not 0 <= x < 1), st.just(float('nan')))
bad_tau = st.one_of(st.floats(max_value=1), st.sampled_from([float('nan'), math.inf]))
bad_dmi_eps = st.one_of(st.floats(max_value=0, exclude_max=True), st.sampled_from([float('nan'), math.inf]))
bad_fw_eps = st.one_of(st.floats(max_value=0, exclude_max=True), st.floats(min_value=0.5), st.just(float('nan')))

@given(batch(), bad_q, bad_trunc, bad_tau, bad_dmi_eps, bad_fw_eps)
def test_bad_loss_parameters_are_named_in_the_loss_and_at_construction(lb, q, k, tau, e_dmi, e_fw):
    logits, y = lb
    for name, call in [('q', lambda: gce_loss(logits, y, q=q)), ('k', lambda: gce_loss(logits, y, k=k)),
                       ('tau', lambda: phuber_ce_loss(logits, y, tau=tau)), ('eps', lambda: dmi_loss(logits, y, eps=e_dmi)),
                       ('eps', lambda: LOSSES['fw'](logits, y, eps=e_fw)),
                       # the training methods check the same values when they are built, before any data is loaded
                       ('q', lambda: get_method('gce', q=q)), ('k', lambda: get_method('gce', k=k)),
                       ('tau', lambda: get_method('phuber', tau=tau)), ('eps', lambda: get_method('dmi', eps=e_dmi)),
                       ('eps', lambda: get_method('fw', eps=e_fw))]:
        raises_naming(f'{name} must lie in', call)

@given(K, st.data())
def test_bad_transition_matrices_are_named(k, data):
    T = np.full((k, k), 1 / k)
    i, j = data.draw(st.integers(0, k - 1)), data.draw(st.integers(0, k - 1))
    bad = T.copy(); bad[i, j] = data.draw(st.sampled_from([np.nan, np.inf, -0.5, 0.9 + 1 / k]))
    logits, y = torch.zeros(2, k), torch.zeros(2, dtype=torch.long)
    raises_naming('T', lambda: forward_corrected_loss(logits, y, bad))
    raises_naming('T', lambda: get_method('fw', T=bad))
    raises_naming(f'T must be {k} x {k}', lambda: forward_corrected_loss(logits, y, np.eye(k + 1)))

@given(st.integers(1, 30), K, st.sampled_from(['zeros', 'nan', 'negative', 'unnormalised']), seeds)
def test_anchor_estimate_refuses_what_are_not_posteriors(n, k, kind, seed):
    P = np.random.default_rng(seed).dirichlet(np.ones(k), n)
    P = {'zeros': np.zeros_like(P), 'nan': np.where(P > P.mean(), np.nan, P), 'negative': P - 1, 'unnormalised': P * 3}[kind]
    if kind == 'nan' and not np.isnan(P).any(): P[0, 0] = np.nan
    raises_naming('probs must be posteriors', lambda: estimate_transition_anchor(P))

@given(st.sampled_from(sorted(LOSSES)), batch(), st.floats(0.05, 1), st.floats(0, 0.95), st.floats(1.01, 50))
def test_losses_on_valid_input_are_finite(name, lb, q, k, tau):
    "for finite logits up to +-100 and valid parameters, every loss and its gradient is finite"
    logits, y = lb
    a = logits.clone().requires_grad_()
    kw = dict(gce=dict(q=q, k=k, keep='batch'), phuber=dict(tau=tau)).get(name, {})
    l = LOSSES[name](a, y, **kw)
    l.backward()
    assert torch.isfinite(l) and torch.isfinite(a.grad).all(), (name, l)

# ---------------------------------------------------------------------------------------------------- bounds
@given(bad_k, st.floats(0, 1), st.floats(0, 5))
def test_fano_num_classes_is_named(k, p, i):
    raises_naming('num_classes', lambda: fano_error_bound(k, p, i))
    raises_naming('num_classes', lambda: uniform_noise_entropy(k, p))

@given(K, bad_prob, st.floats(0, 5))
def test_fano_noise_rate_is_named(k, p, i):
    raises_naming('noise_rate', lambda: fano_error_bound(k, p, i))
    raises_naming('noise_rate', lambda: uniform_noise_entropy(k, p))
    raises_naming('noise_rate', lambda: fano_curves(k, (0.2, p), 3))

@given(K, st.floats(0, 1), st.one_of(st.floats(max_value=0, exclude_max=True), st.sampled_from([float('nan'), '1'])))
def test_fano_information_is_named(k, p, i):
    raises_naming('info_bits_per_example', lambda: fano_error_bound(k, p, i))

@given(st.integers(2, 1000), st.floats(0, 1), st.one_of(st.floats(0, 20), st.just(math.inf)))
def test_fano_bound_is_an_error_rate(k, p, i):
    r0 = fano_error_bound(k, p, i)
    assert math.isfinite(r0) and 0 <= r0 <= 1 - 1 / k + 1e-12
    assert 0 <= uniform_noise_entropy(k, p) <= math.log2(k) + 1e-9

@given(bad_prob)
def test_binary_entropy_argument_is_named(x):
    raises_naming('x must be a number in [0, 1]', lambda: binary_entropy(x))

@given(st.one_of(st.integers(-5, 0), st.sampled_from([1.5, math.inf, float('nan')])), st.floats(0, 10), st.floats(0.01, 10))
def test_gaussian_bound_arguments_are_named(d, L, s):
    raises_naming('d must be an integer', lambda: gaussian_info_bound(d, L, s))
    raises_naming('L must be a number', lambda: gaussian_info_bound(2, -1 - L, s))
    raises_naming('sigma_q', lambda: gaussian_info_bound(2, L, -s))
    raises_naming('sigma_q', lambda: gaussian_info_bound(2, L, float('nan')))

# ---------------------------------------------------------------------------------------------------- CLI
# Called as Python (fastcore's call_parse passes keyword arguments straight through); a bad value must raise a
# `CliError` naming the flag *before* any data is loaded: the data root does not exist, so a check that came too late
# would surface as a missing-data error instead, and the output folder must stay empty.
MISSING = str(Path(tempfile.gettempdir()) / 'noisy-nbdev-no-data-here')

def cli_refuses(flag, **kw):
    with tempfile.TemporaryDirectory() as out:
        with pytest.raises(CliError) as e: noisy_train(**dict(dict(dataset='mnist', data_root=MISSING, out=out, quiet=True), **kw))
        assert flag in str(e.value) and '\n' not in str(e.value), str(e.value)
        assert not os.listdir(out), os.listdir(out)

@given(st.sampled_from(['rate', 'epochs', 'bs', 'val_frac', 'lr', 'wd', 'patience', 'test_size', 'train_size', 'seed']), st.data())
def test_cli_bad_numbers_name_their_flag(arg, data):
    bad = {'rate': bad_prob.filter(lambda x: isinstance(x, float)), 'epochs': st.integers(-10, 0), 'bs': st.integers(-10, 0),
           'val_frac': st.one_of(st.floats(allow_nan=False).filter(lambda x: not 0 <= x < 1), st.just(float('nan'))),
           'lr': st.one_of(st.floats(max_value=0), st.sampled_from([float('nan'), math.inf])),
           'wd': st.one_of(st.floats(max_value=0, exclude_max=True), st.sampled_from([float('nan'), math.inf])),
           'patience': st.integers(-5, 0), 'test_size': st.integers(-5, 0), 'train_size': st.integers(-5, 1),
           'seed': st.integers(-100, -1)}[arg]
    cli_refuses('--' + arg.replace('_', '-'), **{arg: data.draw(bad)})

@pytest.mark.parametrize('kw,flag', [
    (dict(dataset='svhn'), '--dataset'), (dict(method='nope'), '--method'), (dict(model='vgg'), '--model'),
    (dict(noise='gauss'), '--noise'), (dict(opt='rmsprop'), '--opt'), (dict(device='tpu'), '--device'),
    (dict(noise='none', rate=0.3), '--noise none'), (dict(noise='pair', rate=0.2, pairs='nope'), '--pairs'),
    (dict(method_kwargs='[1]'), '--method-kwargs'), (dict(method_kwargs='{"qq": 1}'), '--method-kwargs'),
    (dict(method='gce', method_kwargs='{"q": 0}'), 'q must lie'), (dict(method='fw', method_kwargs='{"percentile": 200}'), 'percentile'),
    (dict(model_kwargs='{"zz": 1}'), '--model-kwargs'), (dict(model_kwargs='{bad'), '--model-kwargs'),
])
def test_cli_bad_choices_name_their_flag(kw, flag):
    cli_refuses(flag, **kw)

@pytest.mark.parametrize('args,flag', [(['--epochs', '-1'], '--epochs'), (['--bs', '0'], '--bs')])
def test_cli_from_the_shell_exits_with_one_line(args, flag, tmp_path):
    exe = str(Path(sys.executable).parent / 'noisy-train')
    r = subprocess.run([exe, *args, '--data-root', MISSING, '--out', str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and 'Traceback' not in r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip() and 'Warning' not in l]
    assert len(lines) == 1 and flag in lines[0], r.stderr
    assert not any(tmp_path.iterdir())

# ---------------------------------------------------------------------------------------------------- load_dataset
def test_load_dataset_unknown_name_lists_the_choices():
    msg = raises_naming('unknown data set', lambda: load_dataset('svhn'))
    assert 'mnist' in msg and 'synthetic' in msg

@pytest.mark.parametrize('name', ['mnist', 'fashion_mnist', 'cifar10', 'cifar100', 'clothing1m'])
def test_load_dataset_missing_root_says_where_it_looked(name, tmp_path):
    with pytest.raises(FileNotFoundError) as e: load_dataset(name, root=tmp_path / 'nothing')
    assert str(tmp_path / 'nothing') in str(e.value), str(e.value)



@pytest.mark.parametrize('name', [None, 3])
def test_load_dataset_name_that_is_not_a_string_is_named(name):
    raises_naming('name', lambda: load_dataset(name))      # now: AttributeError 'NoneType' has no attribute 'lower'


@pytest.mark.parametrize('name', ['synthetic', 'mnist'])
@pytest.mark.parametrize('train', ['test', None])
def test_load_dataset_train_flag_must_be_a_bool(name, train, tmp_path):
    # now: any truthy value loads the training split ('test' included), any falsy one the test split, silently;
    # the root does not exist, so the check must come before the data are read
    raises_naming('train', lambda: load_dataset(name, root=tmp_path / 'nothing', train=train))


@pytest.mark.parametrize('kw', [dict(foo=1), dict(split='val')])
def test_load_dataset_arguments_it_would_ignore_are_named(kw, tmp_path):
    # now: MNIST ignores **kwargs and `split` (Clothing1M's) silently
    with pytest.raises((TypeError, ValueError)) as e: load_dataset('mnist', root=tmp_path / 'nothing', **kw)
    assert list(kw)[0] in str(e.value)

# ---------------------------------------------------------------------------------------------------- RunConfig
# `run_experiment` must refuse a config that cannot run before it loads data or writes a run folder (today it writes
# `config.json` into a folder named after the bad config, then fails, some values with an unhelpful error).
BAD_CONFIGS = [
    (dict(rate=1.5), 'rate'), (dict(rate=float('nan')), 'rate'), (dict(epochs=-1), 'epochs'), (dict(epochs=0), 'epochs'),
    (dict(bs=0), 'bs'), (dict(method='nope'), 'method'), (dict(model='vgg'), 'model'), (dict(noise='gauss', rate=0.2), 'noise'),
    (dict(val_frac=1.0), 'val_frac'), (dict(val_frac=-0.1), 'val_frac'), (dict(lr=-1.), 'lr'), (dict(opt='rmsprop'), 'opt'),
    (dict(patience=0), 'patience'), (dict(dataset='svhn'), 'dataset'), (dict(train_size=1), 'train_size'),
    (dict(test_size=0), 'test_size'), (dict(method_kwargs={'qq': 1}), 'qq'), (dict(noise='pair', rate=0.2, pairs='nope'), 'pairs'),
]

@pytest.mark.parametrize('bad,name', BAD_CONFIGS, ids=[f'{next(iter(b))}={next(iter(b.values()))!r}' for b, _ in BAD_CONFIGS])
def test_run_config_bad_values_are_named_before_anything_is_written(bad, name, tmp_path):
    with pytest.raises(ValueError) as e:
        run_experiment(RunConfig(**dict(dict(dataset='synthetic', train_size=200, test_size=100, epochs=1), **bad)), out=tmp_path, progress=False)
    assert name in str(e.value), str(e.value)
    assert not any(tmp_path.iterdir()), list(tmp_path.iterdir())

@given(st.lists(st.integers(0, 9), min_size=1, max_size=300))
@settings(max_examples=60, deadline=None)
def test_class_counts_is_bincount(labels):
    "ASIF's sync-free class counts equal torch.bincount's for any labels in 0..C-1"
    import torch
    from noisy_nbdev.asif import class_counts
    y = torch.tensor(labels)
    assert torch.equal(class_counts(y, 10), torch.bincount(y, minlength=10))
