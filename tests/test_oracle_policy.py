"""Without BrainState (the oracle) the suite fails at start-up, unless opted out.

A child pytest runs a one-test file with this directory's ``conftest.py``
while an import hook hides ``brainstate``.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

HIDE = '''
import importlib.abc, sys
class _Hide(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name == 'brainstate' or name.startswith('brainstate.'):
      raise ModuleNotFoundError(f'No module named {name!r}')
sys.meta_path.insert(0, _Hide())
'''

DIFFERENTIAL = '''
def test_differential(bst, bsn):
  assert bst is not bsn
'''


def _run(tmp_path, **env):
  shutil.copy(Path(__file__).with_name('conftest.py'), tmp_path / 'conftest.py')
  (tmp_path / 'sitecustomize.py').write_text(HIDE)
  (tmp_path / 'test_differential.py').write_text(DIFFERENTIAL)
  repo = Path(__file__).resolve().parents[1]
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(repo)]), **env)
  return subprocess.run(
    [sys.executable, '-m', 'pytest', '-c', os.devnull, '-p', 'no:cacheprovider', '-rs',
     str(tmp_path / 'test_differential.py')],
    cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_missing_oracle_fails_the_run(tmp_path, monkeypatch):
  monkeypatch.delenv('BRAINSTATE_NNX_NO_ORACLE', raising=False)
  proc = _run(tmp_path)
  assert proc.returncode != 0
  out = proc.stdout + proc.stderr
  assert 'oracle of the differential tests' in out and 'BRAINSTATE_NNX_NO_ORACLE=1' in out


def test_opt_out_skips_with_the_reason(tmp_path):
  proc = _run(tmp_path, BRAINSTATE_NNX_NO_ORACLE='1')
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert '1 skipped' in proc.stdout
  assert 'BRAINSTATE_NNX_NO_ORACLE=1 opts out' in proc.stdout
