"""The installed package, not the notebooks: every registered method and every model is built by name, its loss is
computed on synthetic data, and one epoch of `Learner.fit` must move the weights.

A loss whose gradient vanishes (DMI with det(U/B) ~ 1e-15 under eps = 1e-3 at K = 10, B = 256: gradients ~ 1e-13)
or that raises (a missing import in the exported module) fails here, whatever the notebooks' own lessons show.
Plain SGD without momentum is used so that the weights move in proportion to the gradient (Adam would rescale a
1e-7 gradient to a full step)."""
import pytest, torch
import torch.nn.functional as F
import noisy_nbdev
from noisy_nbdev.train import METHODS, Learner, get_method
from noisy_nbdev.models import MODELS, get_model
from noisy_nbdev.data import make_synthetic
import noisy_nbdev.losses, noisy_nbdev.asif, noisy_nbdev.limit  # every method registers itself on import

K, B = 10, 256  # DMI's determinant is tiny at this size: a loss that only works for K = 2 or B = 8 fails

def _noisy_T(k=K, rate=0.2):
    "A symmetric-noise transition matrix (rows = true class)"
    T = torch.full((k, k), rate / (k - 1)); T.fill_diagonal_(1 - rate); return T

# methods whose construction needs arguments, or whose default size is too big for a unit test
METHOD_KWARGS = {
    'fw': dict(T=_noisy_T()),              # without T it needs a CE model to estimate it (init_from_ce)
    'asif': dict(hidden=32, width=64),     # the paper's identifier (1024 x 2048 per class) is too big for a test
}

# input shapes each model is meant for (MNIST-shaped and/or CIFAR-shaped), with the kwargs that shape needs
MODEL_SHAPES = {
    'limit_cnn': [((1, 28, 28), {})],
    'mlp': [((1, 28, 28), {}), ((3, 32, 32), dict(input_size=32))],
    'small_cnn': [((1, 28, 28), {}), ((3, 32, 32), {})],
    'resnet18': [((3, 32, 32), {}), ((1, 28, 28), {})],
    'resnet34': [((3, 32, 32), {})],
    'preact_resnet18': [((3, 32, 32), {}), ((1, 28, 28), {})],
    'resnet50': [((3, 32, 32), {})],
}

def test_the_installed_package_is_imported():
    from importlib.metadata import version
    assert version('noisy_nbdev') == noisy_nbdev.__version__  # installed (pip install -e), not run from the notebooks
    assert {'ce', 'gce', 'phuber', 'mae', 'dmi', 'fw', 'asif', 'limit', 'soft_reg'} <= set(METHODS)

def test_every_model_has_its_shapes_listed():
    assert set(MODEL_SHAPES) == set(MODELS), 'add the new model to MODEL_SHAPES'

def _learner(name, ds, **kw):
    torch.manual_seed(0)
    model = get_model('limit_cnn', K, in_channels=1)
    method = get_method(name, **METHOD_KWARGS.get(name, {}))
    return Learner(model, method, ds, opt='sgd', lr=0.1, momentum=0., bs=B, seed=0, device='cpu', progress=False, **kw)

@pytest.fixture(scope='module')
def synth(): return make_synthetic(n=2 * B, num_classes=K, seed=0)

@pytest.mark.parametrize('name', sorted(METHODS))
def test_method_loss_has_a_useful_gradient(name, synth):
    learn = _learner(name, synth)
    x, y, idx = synth.xf[:B], synth.y[:B], torch.arange(B)
    out = learn.forward(x)
    loss = learn.method.loss(out, y, idx)
    assert loss.ndim == 0 and torch.isfinite(loss), loss
    w = learn.model.head.weight
    g = torch.autograd.grad(loss, w, retain_graph=True)[0]
    g_ce = torch.autograd.grad(F.cross_entropy(out.logits, y), w)[0]
    # measured: GCE / MAE / PHuber 0.2, FW 0.76, CE / ASIF / soft_reg 1, CE+GN 67, LIMIT 143; the eps-dominated DMI 0
    ratio = float(g.norm() / g_ce.norm())
    assert ratio > 0.05, f"{name}: classifier-head gradient {ratio:.3g} x that of CE: the loss barely trains the model"

# the methods whose loss is a (reweighted, bounded or corrected) classification loss of the given labels: on clean
# labels its gradient must point the way CE's does (measured cosines: CE, ASIF, soft_reg 1.00, FW 0.99, GCE 0.94,
# MAE and PHuber 0.88). Not listed: CE + GN / LN (their added noise is 67x the gradient), LIMIT (an untrained
# predictor's guess) and DMI (a determinant, not a per-sample loss: 0.18).
CE_LIKE = ['asif', 'asif_code', 'ce', 'ce_code', 'fw', 'gce', 'mae', 'phuber', 'soft_reg']

def test_every_ce_like_method_is_listed():
    assert set(CE_LIKE) | {'ce_gn', 'ce_ln', 'dmi', 'limit', 'limit_g', 'limit_l'} == set(METHODS), 'place the new method'

@pytest.mark.parametrize('name', CE_LIKE)
def test_method_gradient_points_like_ce(name, synth):
    "A loss with the wrong sign, or the wrong labels, moves the head against CE: the step must go CE's way"
    learn = _learner(name, synth)
    x, y, idx = synth.xf[:B], synth.y[:B], torch.arange(B)
    out = learn.forward(x)
    w = learn.model.head.weight
    g = torch.autograd.grad(learn.method.loss(out, y, idx), w, retain_graph=True)[0]
    g_ce = torch.autograd.grad(F.cross_entropy(out.logits, y), w)[0]
    cos = float(F.cosine_similarity(g.flatten(), g_ce.flatten(), 0))
    assert cos > 0.5, f"{name}: its head gradient has cosine {cos:.3f} with CE's on clean labels"

@pytest.mark.parametrize('name', sorted(METHODS))
def test_one_epoch_moves_the_weights(name, synth):
    learn = _learner(name, synth)
    before = {k: v.detach().clone() for k, v in learn.model.named_parameters()}
    res = learn.fit(1)
    assert learn.epoch == 1 and res['last']['epoch'] == 0
    after = {k: v.detach() for k, v in learn.model.named_parameters() if k in before}  # soft_reg drops the head's bias
    change = lambda ks: float(sum((after[k] - before[k]).norm() ** 2 for k in ks) ** .5 / sum(before[k].norm() ** 2 for k in ks) ** .5)
    assert all(torch.isfinite(v).all() for v in after.values()), name
    # measured after 2 SGD steps at lr 0.1: GCE / MAE / PHuber 2e-3 of the weights (head 5e-3), CE 9e-3, LIMIT ~10
    total, head = change(after), change(['head.weight'])
    assert total > 2e-4, f"{name}: the weights moved by {total:.3g} of their norm in one epoch"
    assert head > 1e-3, f"{name}: the classifier head moved by {head:.3g} of its norm in one epoch"

def _model_cases():
    for name, shapes in MODEL_SHAPES.items():
        for shape, kw in shapes: yield pytest.param(name, shape, kw, id=f"{name}-{'x'.join(map(str, shape))}")

@pytest.mark.parametrize('name,shape,kw', list(_model_cases()))
def test_model_features_head_and_one_epoch(name, shape, kw):
    C = 7  # not any model's default number of classes
    torch.manual_seed(0)
    model = get_model(name, C, in_channels=shape[0], **kw)
    x = torch.randn(2, *shape)
    model.eval()
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, C)
        assert model.feat_dim == model.head.in_features and model.features(x).shape == (2, model.feat_dim)
        torch.testing.assert_close(out, model.head(model.features(x)))
    ds = make_synthetic(n=4, num_classes=C, channels=shape[0], size=shape[1], seed=1)
    head0 = model.head.weight.detach().clone()
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    learn = Learner(model, get_method('ce'), ds, opt='sgd', lr=0.1, momentum=0., bs=2, seed=0, device='cpu', progress=False)
    learn.fit(1)
    assert torch.isfinite(model(x)).all()
    assert (model.head.weight - head0).norm() > 1e-3 * head0.norm(), 'the classifier head did not train'
    moved = [k for k, v in model.named_parameters() if not torch.equal(v.detach(), before[k])]
    assert len(moved) == len(before), f"parameters that did not train: {sorted(set(before) - set(moved))[:5]}"

def test_clean_val_keeps_the_validation_labels_clean_and_nothing_else():
    "`RunConfig(clean_val=True)` (LIMIT Fig. 1): the validation split's labels are its clean ones; training noise and images unchanged"
    from dataclasses import replace
    from noisy_nbdev.train import RunConfig, prepare_data
    cfg = RunConfig(dataset='synthetic', rate=0.5, train_size=300, test_size=50, seed=4)
    tr, va, te = prepare_data(cfg)
    trc, vac, tec = prepare_data(replace(cfg, clean_val=True))
    assert (vac.y == vac.clean_y).all() and (vac.x == va.x).all() and (va.y != va.clean_y).float().mean() > 0.3
    assert (trc.y == tr.y).all() and (tec.y == te.y).all()
    with pytest.raises(ValueError, match='clean_val'): RunConfig(clean_val='yes')

def test_wd_matrices_only_decays_weights_and_leaves_biases_and_batchnorm_alone():
    "`wd_matrices_only` (the LIMIT code's nnlib): with zero loss gradient, one Adam step moves the decayed matrices and nothing 1-d"
    from noisy_nbdev.train import RunConfig, build_learner, prepare_data
    cfg = RunConfig(dataset='synthetic', model='mlp', model_kwargs=dict(width=16, depth=2), wd=0.1, wd_matrices_only=True, train_size=64, test_size=32)
    learn = build_learner(cfg, *prepare_data(cfg), device='cpu', progress=False)
    before = {n: p.detach().clone() for n, p in learn.model.named_parameters()}
    opt = learn.make_opt(learn.model.parameters())
    for p in learn.model.parameters(): p.grad = torch.zeros_like(p)   # only the decay term acts
    opt.step()
    moved = {n: not torch.equal(p, before[n]) for n, p in learn.model.named_parameters()}
    assert all(moved[n] for n, p in learn.model.named_parameters() if p.dim() > 1)
    assert not any(moved[n] for n, p in learn.model.named_parameters() if p.dim() == 1) and any(p.dim() == 1 for p in learn.model.parameters())
    from noisy_nbdev.batched import group_key
    assert group_key(cfg) is None   # two parameter groups: such runs train alone
