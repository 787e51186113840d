"""Every Python snippet in README.md runs as written (each in a fresh namespace)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / 'README.md'
SNIPPETS = re.findall(r'```python\n(.*?)```', README.read_text(), flags=re.S)


def test_readme_has_snippets():
  assert len(SNIPPETS) >= 3


@pytest.mark.parametrize('i', range(len(SNIPPETS)))
def test_readme_snippet_runs(i, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  code = compile(SNIPPETS[i], f'README.md snippet {i}', 'exec')
  exec(code, {'__name__': f'readme_snippet_{i}'})
