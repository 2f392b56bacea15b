"""The GitHub workflows run what the README tells a user to run, as .ci/run does: its install command and its test
command (test.yaml), its install command and `make docs` deployed to GitHub Pages (deploy.yaml)."""
import re
from pathlib import Path
import pytest, yaml

ROOT = Path(__file__).resolve().parent.parent
WF = ROOT / '.github' / 'workflows'

def readme_commands():
    "The install and test commands of the README's first bash block"
    block = re.search(r'```bash\n(.*?)```', (ROOT / 'README.md').read_text(), re.S).group(1).splitlines()
    install = next(l for l in block if 'pip install -e' in l).strip()
    test = next(l for l in block if l.startswith('make ')).strip()
    return install, test

def load(name):
    wf = yaml.safe_load((WF / name).read_text())
    wf['on'] = wf.pop(True, wf.get('on'))  # YAML 1.1 reads the key `on` as True
    return wf

def runs(job): return [s['run'].strip() for s in job['steps'] if 'run' in s]
def uses(job): return [s['uses'].split('@')[0] for s in job['steps'] if 'uses' in s]

def test_readme_has_an_install_and_a_test_command():
    assert readme_commands() == ('python3 -m venv .venv && .venv/bin/pip install -e ".[dev]"', 'make test')

@pytest.mark.parametrize('name', ['test.yaml', 'deploy.yaml'])
def test_workflows_parse(name):
    wf = load(name)
    assert wf['name'] and wf['on'] and wf['jobs']
    for job in wf['jobs'].values(): assert job['runs-on'] and job['steps']

def test_the_test_workflow_runs_the_readmes_commands_like_ci():
    install, test = readme_commands()
    wf = load('test.yaml')
    assert {'push', 'pull_request'} <= set(wf['on'])
    [job] = wf['jobs'].values()
    cmds = runs(job)
    assert install in cmds and test in cmds, cmds                  # whole steps, verbatim
    assert cmds.index(install) < cmds.index(test) and cmds[-1] == test
    assert 'actions/checkout' in uses(job)
    assert any(re.search(r'apt-get install .*\bchromium\b', c) for c in cmds)  # Debian's chromium, as .ci/run
    ci = (ROOT / '.ci' / 'run').read_text()
    for var in ('MPLBACKEND', 'PYTHONUNBUFFERED', 'NOISY_NBDEV_REQUIRE_BROWSER'):  # .ci/run's environment
        value = re.search(rf'\b{var}=(\S+)', ci).group(1)
        assert str(job['env'][var]) == value, var
    # the real data sets sit where the Makefile finds them beside CI's clone, before the tests run
    fetch = next(i for i, c in enumerate(cmds) if '../shared/data' in c and 'download=True' in c)
    assert fetch < cmds.index(test) and '../shared/data' in (ROOT / 'Makefile').read_text()

def test_the_deploy_workflow_builds_the_site_and_publishes_it_to_pages():
    install, _ = readme_commands()
    wf = load('deploy.yaml')
    assert wf['permissions']['pages'] == 'write' and wf['permissions']['id-token'] == 'write'
    build, deploy = wf['jobs']['build'], wf['jobs']['deploy']
    assert runs(build)[:2] == [install, 'make docs']
    upload = next(s for s in build['steps'] if s.get('uses', '').startswith('actions/upload-pages-artifact@'))
    assert upload['with']['path'] == '_site' and '_site' in (ROOT / 'tools' / 'build_docs.py').read_text()
    assert deploy['needs'] == 'build' and deploy['environment']['name'] == 'github-pages'
    assert uses(deploy) == ['actions/deploy-pages']
    assert re.search(r'^docs:', (ROOT / 'Makefile').read_text(), re.M)
