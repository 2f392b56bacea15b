"""cleanlab's confident learning beside ASIF and LIMIT (nbs/19_cleanlab.ipynb), from the installed package: the
noise-matrix converters (a round trip, and cleanlab's own generator as the judge of the direction), out-of-sample
probabilities that really are out of sample, cleanlab's detection measured against the true mask, the `detection` and
`cleanlab` analyses of a run folder, and the package without cleanlab (the extra named in the error)."""
import subprocess, sys
import numpy as np
import pytest
from noisy_nbdev.cleanlab_compare import (CLEANLAB_EXTRA, CV_FOLDS, DETECTORS, cleanlab_detect, cross_val_probs, detection_summary,
                                          detection_table, from_cleanlab_noise_matrix, require_cleanlab, to_cleanlab_noise_matrix)
from noisy_nbdev.noise import noise_transition, pair_noise, transition_matrix
from noisy_nbdev.train import RunConfig, prepare_data, run_experiment

try: import cleanlab  # noqa: F401
except ImportError: cleanlab = None
needs_cleanlab = pytest.mark.skipif(cleanlab is None, reason=f"cleanlab is not installed ({CLEANLAB_EXTRA})")

def test_converters_round_trip_and_transpose():
    rng = np.random.default_rng(0)
    for _ in range(5):
        T = rng.dirichlet(np.ones(6) * 0.5, size=6)                      # a random row-stochastic matrix, rows = true class
        N = to_cleanlab_noise_matrix(T)
        np.testing.assert_allclose(N.sum(0), 1)                          # cleanlab: columns = true class
        np.testing.assert_array_equal(from_cleanlab_noise_matrix(N), T)  # the round trip
        np.testing.assert_array_equal(to_cleanlab_noise_matrix(from_cleanlab_noise_matrix(N)), N)
    T = noise_transition('pair', 0.3, 10, 'limit_cifar10')               # truck (9) -> automobile (1), never back
    N = to_cleanlab_noise_matrix(T)
    assert N[1, 9] == 0.3 and N[9, 1] == 0 and T[9, 1] == 0.3           # N[given, true] = P(given | true)

def test_converters_refuse_the_other_convention():
    T = noise_transition('pair', 0.3, 10, 'limit_cifar10')
    with pytest.raises(ValueError, match='noise_matrix columns must sum to 1.*other convention'): from_cleanlab_noise_matrix(T)
    with pytest.raises(ValueError, match='T rows must sum to 1.*other convention'): to_cleanlab_noise_matrix(T.T)
    for bad, msg in ((np.ones((2, 3)) / 2, 'square'), (-np.eye(3), 'probabilities'), ([['a', 'b'], ['c', 'd']], 'numbers')):
        with pytest.raises(ValueError, match=msg): from_cleanlab_noise_matrix(bad)

@needs_cleanlab
def test_cleanlab_generator_agrees_with_our_convention():
    "cleanlab's own noise generator, given the converted matrix, produces noise whose transition matrix (ours) is T"
    from cleanlab.benchmarking.noise_generation import generate_noisy_labels
    T = noise_transition('pair', 0.4, 10, 'asif_cifar10') * 0.9 + noise_transition('symmetric', 0.0, 10) * 0.1
    T[3] = [0.1] * 10                                                    # and one row spread over every class
    y = np.repeat(np.arange(10), 2000)
    np.random.seed(1)
    noisy = generate_noisy_labels(y, to_cleanlab_noise_matrix(T))
    np.testing.assert_allclose(transition_matrix(y, noisy, 10), T, atol=0.01)
    ours = pair_noise(y, 0.4, 'limit_cifar10', seed=0)                  # and the other way: our noise, cleanlab's reading
    Tn = transition_matrix(y, ours.labels, 10)
    np.testing.assert_allclose(from_cleanlab_noise_matrix(to_cleanlab_noise_matrix(Tn)), Tn)

def test_without_cleanlab_the_package_imports_and_the_error_names_the_extra():
    code = ("import sys; sys.modules['cleanlab'] = None\n"             # as if cleanlab were not installed
            "import noisy_nbdev.cleanlab_compare as c, noisy_nbdev.sweep as s\n"
            "assert 'cleanlab' in s.ANALYSES and 'detection' in s.ANALYSES\n"
            "try: c.require_cleanlab()\n"
            "except ImportError as e: print('ERR', e)\n")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ERR" in r.stdout and "pip install 'noisy_nbdev[cleanlab]'" in r.stdout, r.stdout

@needs_cleanlab
def test_cleanlab_detect_against_the_true_mask():
    rng = np.random.default_rng(0)
    clean = np.repeat(np.arange(5), 100); given = clean.copy()
    wrong = rng.permutation(500)[:100]; given[wrong] = (clean[wrong] + 2) % 5
    P = np.full((500, 5), 0.04); P[np.arange(500), clean] = 0.84           # the true class is the confident one
    P[wrong[:20]] = 0.2                                                     # 20 wrong labels the model cannot tell
    d = cleanlab_detect(given, P, given != clean, rate=0.2)
    fl = d['find_label_issues']
    assert fl.mask[wrong[20:]].all() and not fl.mask[given == clean].any()  # the 80 it can tell, nothing else
    assert fl.k == 80 and fl.metrics['precision'] == 1.0 and fl.metrics['recall'] == 0.8
    assert abs(fl.metrics['f1'] - 2 * 0.8 / 1.8) < 1e-12
    q = d['quality_top_rate']
    assert q.k == 100 and q.metrics['recall'] >= 0.8 and q.metrics['roc_auc'] > 0.85
    with pytest.raises(ValueError, match='sum to 1'): cleanlab_detect(given, P * 3)

def test_cross_val_probs_are_out_of_sample():
    "On uninformative labels a network memorises its training labels but cannot predict a held-out one"
    cfg = RunConfig(dataset='synthetic', noise='symmetric', include_true_class=True, rate=1.0, model='mlp',
                    model_kwargs=dict(width=256, depth=2), epochs=30, lr=3e-3, train_size=300, val_frac=0.0, test_size=50)
    tr, _, _ = prepare_data(cfg)
    P = cross_val_probs(cfg, tr, folds=3, device='cpu')
    assert P.shape == (300, 10) and np.allclose(P.sum(1), 1, atol=1e-5)
    assert (P.argmax(1) == tr.y.numpy()).mean() < 0.25                    # chance is 0.1; in sample it is ~1
    with pytest.raises(ValueError, match='folds'): cross_val_probs(cfg, tr, folds=1)

def test_cross_val_probs_recover_clean_labels():
    cfg = RunConfig(dataset='synthetic', rate=0.3, model='mlp', model_kwargs=dict(width=64, depth=2), epochs=5, lr=3e-3,
                    train_size=400, val_size=150, test_size=50)
    tr, va, _ = prepare_data(cfg)
    P = cross_val_probs(cfg, tr, va, folds=4, device='cpu')
    assert (P.argmax(1) == tr.clean_y.numpy()).mean() > 0.9                # the folds learn the classes through the noise

@needs_cleanlab
def test_analyses_of_a_run_and_the_detection_table(tmp_path):
    from noisy_nbdev.sweep import analyse
    from noisy_nbdev.experiments import RunSpec
    rows = []
    for method, kw in (('ce', {}), ('limit', dict(dist='laplace', beta=1.0))):
        cfg = RunConfig(dataset='synthetic', rate=0.4, method=method, method_kwargs=kw, model='mlp', model_kwargs=dict(width=64, depth=2),
                        epochs=4, lr=3e-3, train_size=400, val_size=150, test_size=100)
        res = run_experiment(cfg, tmp_path, device='cpu', progress=False)
        a = analyse(res['path'], RunSpec('t', method.upper(), dict(rate=0.4), {}, 0, cfg), ['detection', 'cleanlab'])
        rows.append(dict(row=method.upper(), cell='rate=0.4', seed=0, **a))
    ce, lim = rows
    assert ce['cleanlab_applies'] and ce['cleanlab_folds'] == CV_FOLDS and not lim['cleanlab_applies']   # cleanlab: on the CE run
    assert ce['detection_applies'] and lim['detection_applies']
    for r in rows: assert r['detection_small_loss_roc_auc'] > 0.6
    assert lim['detection_grad_distance_roc_auc'] > 0.6 and 'detection_grad_distance_f1' not in ce
    assert ce['cleanlab_cl_quality_roc_auc'] > 0.6
    import pandas as pd
    t = detection_table(pd.DataFrame(rows))
    assert set(t.detector) == {'CE: small loss (last epoch)', 'LIMIT: small loss (last epoch)', 'LIMIT: gradient distance (LIMIT)',
                               'LIMIT: predicted-gradient norm (LIMIT)', DETECTORS['cl_issues'], DETECTORS['cl_quality']}
    s = detection_summary(t).set_index('detector')
    assert s.loc['LIMIT: gradient distance (LIMIT)', 'roc_auc'] == round(100 * lim['detection_grad_distance_roc_auc'], 1)
