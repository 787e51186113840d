"""Every Python snippet in README.md runs as written (each in a fresh namespace)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / 'README.md'
SNIPPETS = re.findall(r'```python\n(.*?)```', README.read_text(), flags=re.S)


@pytest.fixture(autouse=True)
def _clean_environ():
  """The snippets set global environ values (dt, ...): leave the settings as found."""
  import warnings
  import brainstate_nnx
  yield
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # reset() warns that it reset
    brainstate_nnx.environ.reset()
    try:
      import brainstate
    except ImportError:
      return
    brainstate.environ.reset()


def test_readme_has_snippets():
  assert len(SNIPPETS) >= 3


@pytest.mark.parametrize('i', range(len(SNIPPETS)))
def test_readme_snippet_runs(i, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  code = compile(SNIPPETS[i], f'README.md snippet {i}', 'exec')
  exec(code, {'__name__': f'readme_snippet_{i}'})


def test_first_snippet_prints_what_brainstate_prints(bst, capsys):
  """The README's first model is BrainState code: same printed losses on both libraries."""
  printed = []
  for lib in ('brainstate_nnx', 'brainstate'):
    code = SNIPPETS[0].replace('import brainstate_nnx as brainstate',
                               'import brainstate_nnx as brainstate' if lib == 'brainstate_nnx'
                               else 'import brainstate')
    exec(compile(code, f'README.md snippet 0 ({lib})', 'exec'), {'__name__': 'readme_0'})
    printed.append(capsys.readouterr().out)
  assert printed[0] == printed[1]
  assert printed[0].strip() in README.read_text()
