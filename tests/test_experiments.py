"""`noisy_nbdev.experiments` from the installed package: the papers' numbers ship with it, declarations expand to
valid runs, and a real (tiny) run comes back through `collect` / `select` / `summarise` / `check_claims`."""
import json
import numpy as np
import pytest
from noisy_nbdev.experiments import (EXPERIMENTS, Experiment, Row, Profile, Claim, expand, collect, select, summarise,
                                     table, describe, check_claims, collect_curves, paper_numbers, get_experiment, cell_label,
                                     load_results)
from noisy_nbdev.train import run_experiment

def test_paper_numbers_ship_with_the_package():
    pn = paper_numbers()
    assert set(pn.paper) == {'ASIF', 'LIMIT'} and len(pn) > 300
    c = pn[(pn.paper == 'LIMIT') & (pn.table == '4') & (pn.row == 'LIMIT _L - S') & (pn.column == 'p = 0.5, n = 10^3')]
    assert c[['mean', 'std']].values.tolist() == [[88.2, 2.9]]

def test_every_declared_experiment_expands_and_finds_its_paper_numbers():
    assert 'limit_table1' in EXPERIMENTS
    for name, exp in EXPERIMENTS.items():
        assert exp.covers, name
        for prof in exp.profiles:
            specs = expand(exp, prof)
            assert len({s.cfg.run_name() for s in specs}) == len(specs), (name, prof, 'two runs share a folder')
    t1 = get_experiment('limit_table1')
    specs = expand(t1, 'paper')
    fake = [dict(row=s.row, cell=cell_label(s.cell), **s.cell, hp=json.dumps(s.hp, sort_keys=True), seed=s.seed, done=True,
                 best_val_val_acc=0.5, best_val_test_acc=0.5) for s in specs]
    import pandas as pd
    summ = summarise(t1, pd.DataFrame(fake))
    assert summ.paper.notna().all(), summ[summ.paper.isna()][['row', 'cell']].head()
    assert len(summ) == 11 * 12

def test_a_real_run_comes_back_as_a_table(tmp_path):
    exp = Experiment('t_tiny', ['nothing'], 'tiny', rows=[Row('CE', 'ce'), Row('MAE', 'mae', grid=dict(lr=[1e-3, 3e-3]))],
                     cells=dict(rate=[0.3]), base=dict(dataset='synthetic', model='mlp', model_kwargs=dict(width=16, depth=1),
                     epochs=2, bs=64, train_size=200, test_size=100),
                     profiles=dict(local=Profile(seeds=2, substitution='tiny')))
    specs = expand(exp, 'local')
    assert len(specs) == 2 + 4
    res = {s.cfg.run_name(): run_experiment(s.cfg, tmp_path, device='cpu', progress=False) for s in specs[:5]}  # one MAE seed left out
    runs = collect(exp, tmp_path, 'local')
    assert runs.done.tolist() == [True] * 5 + [False]
    from noisy_nbdev.train import machine_info
    assert runs.hardware[:5].tolist() == [f"{machine_info('cpu')['cpu']} (cpu)"] * 5 and runs.hardware[5:].isna().all()  # where each ran
    ch = select(runs).set_index('row')
    assert json.loads(ch.loc['MAE'].hp) == {'lr': 0.001} and not ch.loc['MAE'].complete  # the unfinished point cannot win
    summ = summarise(exp, runs).set_index('row')
    ce = [res[s.cfg.run_name()]['best_val']['test_acc'] * 100 for s in specs if s.row == 'CE']
    assert summ.loc['CE', 'mean'] == pytest.approx(np.mean(ce)) and summ.loc['CE', 'std'] == pytest.approx(np.std(ce, ddof=1))
    assert 'not run' not in table(summ.reset_index()).to_string()
    assert 'tiny' in describe(exp, 'local')
    chk = check_claims([Claim('X', 'CE above 0', 't_tiny', 'CE', 'rate=0.3', op='above', value=0.0),
                        Claim('X', 'MAE beats CE', 't_tiny', 'MAE', 'rate=0.3', other='CE')], {'t_tiny': summ.reset_index()}, {'t_tiny': 2})
    assert chk.status.tolist() == ['reproduced', 'not run']
    # margin='std': a gap within the seeds' spread is a tie, a wider one decides; the band is the row's std against a threshold
    m = summ.loc['CE', 'mean']; sd = summ.loc['CE', 'std']
    near = [Claim('X', 'CE above its mean minus half a std', 't_tiny', 'CE', 'rate=0.3', op='above', value=m - sd / 2),
            Claim('X', 'CE above its mean minus two stds', 't_tiny', 'CE', 'rate=0.3', op='above', value=m - 2 * sd)]
    chm = check_claims(near, {'t_tiny': summ.reset_index()}, {'t_tiny': 2}, margin='std')
    assert chm.status.tolist() == ['tie', 'reproduced'] and chm.margin.tolist() == pytest.approx([sd, sd])
    assert check_claims(near, {'t_tiny': summ.reset_index()}, {'t_tiny': 2}).status.tolist() == ['reproduced'] * 2   # no margin: no ties
    cur = collect_curves(exp, tmp_path, 'local', where=lambda s: s.row == 'CE')
    assert len(cur) == 2 * 2 and set(cur.row) == {'CE'} and cur.test_acc.notna().all()  # 2 seeds x 2 epochs
    # a finished run whose analysis has not run yet has no value: it is no seed of that metric, not a NaN mean
    runs['an_score'] = [0.25, np.nan] + [0.5] * 4
    sa = summarise(exp, runs, metric='an_score').set_index('row')
    assert sa.loc['CE', 'seeds'] == 1 and sa.loc['CE', 'mean'] == pytest.approx(25.0) and 'nan' not in table(sa.reset_index()).to_string()
    # the committed file read back: checked against the declaration, in its order, whatever the order on disk
    res_dir = tmp_path/'results'; res_dir.mkdir()
    assert not load_results(exp, 'local', res_dir).done.any()   # no file yet: every run unfinished
    runs.iloc[::-1].to_csv(res_dir/'t_tiny_local.csv', index=False)
    back = load_results(exp, 'local', res_dir)
    assert back.run.tolist() == runs.run.tolist() and back.done.tolist() == runs.done.tolist()
    assert summarise(exp, back).set_index('row').loc['CE', 'mean'] == pytest.approx(summ.loc['CE', 'mean'])
    runs.iloc[1:].to_csv(res_dir/'t_tiny_local.csv', index=False)
    with pytest.raises(ValueError, match=r"1 declared run\(s\) missing"): load_results(exp, 'local', res_dir)
    none = collect_curves(exp, tmp_path, 'local', where=lambda s: False, columns=('train_acc',))
    assert none.empty and list(none.columns) == ['row', 'cell', 'hp', 'seed', 'epoch', 'train_acc']  # readable back from a CSV

def test_dry_run_works_for_every_declared_experiment(tmp_path, capsys):
    """`noisy-sweep NAME --dry-run` for every experiment and profile: a plan, an estimate, nothing written."""
    from noisy_nbdev.sweep import run_sweep, load_declarations
    for name, exp in load_declarations().items():
        for prof in exp.profiles:
            p = run_sweep(name, prof, out=tmp_path, dry_run=True, progress=False)
            assert len(p) >= len(expand(exp, prof)), (name, prof)
            assert (p.status == 'todo').all() and p.est_s.notna().all(), (name, prof)
    assert not any(tmp_path.iterdir())  # a dry run creates no run folder
    assert 'limit_table1' in capsys.readouterr().out
