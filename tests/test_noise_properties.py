"""Property tests (hypothesis) of the label-noise generators in `noisy_nbdev.noise`."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from noisy_nbdev.noise import (symmetric_noise, pair_noise, instance_dependent_noise, transition_matrix,
                               PAIR_PRESETS)

settings.register_profile('ci', max_examples=60, deadline=None)
settings.load_profile('ci')

K = st.integers(2, 12)
@st.composite
def labelled(draw, min_n=1, max_n=400):
    k = draw(K)
    y = draw(st.lists(st.integers(0, k - 1), min_size=min_n, max_size=max_n))
    return np.array(y, dtype=np.int64), k

rates = st.floats(0, 1, allow_nan=False)
seeds = st.integers(0, 2**31 - 1)

@given(labelled(), rates, seeds)
def test_symmetric_mask_and_rate_are_consistent(yk, rate, seed):
    y, k = yk
    r = symmetric_noise(y, rate, k, seed=seed)
    assert np.array_equal(r.mask, r.labels != y)
    assert r.rate == pytest.approx(r.mask.mean())
    assert r.labels.min() >= 0 and r.labels.max() < k
    if rate == 0: assert not r.mask.any()
    if rate == 1: assert r.mask.all()      # LIMIT's variant never redraws the true class

@given(labelled(), rates, seeds)
def test_exact_mode_flips_exactly_round_n_rate(yk, rate, seed):
    y, k = yk
    assert symmetric_noise(y, rate, k, seed=seed, exact=True).mask.sum() == round(len(y) * rate)

@given(labelled(), rates, seeds)
def test_seeds_reproduce_exactly(yk, rate, seed):
    y, k = yk
    for incl in (False, True):
        a, b = symmetric_noise(y, rate, k, seed=seed, include_true_class=incl), symmetric_noise(y, rate, k, seed=seed, include_true_class=incl)
        assert np.array_equal(a.labels, b.labels)

@given(st.lists(st.integers(0, 9), min_size=1, max_size=300), rates, seeds, st.sampled_from(sorted(PAIR_PRESETS)))
def test_pair_noise_only_moves_sources_to_their_targets(y, rate, seed, preset):
    y = np.array(y); r = pair_noise(y, rate, preset, seed=seed)
    pairs = PAIR_PRESETS[preset]
    for a, b in zip(y[r.mask], r.labels[r.mask]): assert pairs[int(a)] == int(b)
    assert not r.mask[~np.isin(y, list(pairs))].any()

@given(labelled(min_n=2), st.floats(0, 1), st.floats(0, 1), seeds, st.integers(0, 1000))
def test_instance_dependent_levels_are_nested_with_the_same_targets(yk, r1, r2, seed, sseed):
    y, k = yk
    scores = np.random.default_rng(sseed).random(len(y))
    lo, hi = sorted((r1, r2))
    a, b = instance_dependent_noise(y, scores, lo, k, seed=seed), instance_dependent_noise(y, scores, hi, k, seed=seed)
    assert a.mask.sum() == round(len(y) * lo) and b.mask.sum() == round(len(y) * hi)
    assert np.all(b.mask[a.mask]) and np.array_equal(a.labels[a.mask], b.labels[a.mask])

@given(labelled(), rates, seeds)
def test_transition_rows_are_distributions(yk, rate, seed):
    y, k = yk
    T = transition_matrix(y, symmetric_noise(y, rate, k, seed=seed).labels, k)
    assert T.shape == (k, k) and np.allclose(T.sum(1), 1) and (T >= 0).all()

@pytest.mark.parametrize('call,msg', [
    (lambda: symmetric_noise([0, 1], -0.1, 2), '[0, 1]'),
    (lambda: symmetric_noise([0, 2], 0.1, 2), '0..1'),
    (lambda: symmetric_noise([0.5, 1], 0.1, 2), 'integers'),
    (lambda: symmetric_noise([0, 1], 0.1, 1), 'at least 2'),
    (lambda: instance_dependent_noise([0, 1], [0.3], 0.1, 2), 'must match'),
    (lambda: pair_noise([0, 1], 0.1, 'nope'), 'unknown pair preset'),
    (lambda: transition_matrix([0, 1], [1], 2), 'clean labels but'),
])
def test_bad_input_is_named(call, msg):
    with pytest.raises(ValueError, match=None) as e: call()
    assert msg in str(e.value)
