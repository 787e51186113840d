"""Every notebook in notebooks/ executes, and the tutorial one shows BrainState's figures."""

from pathlib import Path

import nbclient
import nbformat
import pytest

from test_notebook_figures import NOTEBOOKS as _COMPARED
from test_notebook_library_figures import NOTEBOOKS as _COMPARED_LIBRARY

ROOT = Path(__file__).resolve().parents[1]
# The notebooks that the figure tests already run cell by cell (under brainstate_nnx and
# under BrainState) are not executed a second time through a kernel here.
NOTEBOOKS = sorted(p for p in (ROOT / 'notebooks').glob('*.ipynb')
                   if p.name not in set(_COMPARED) | set(_COMPARED_LIBRARY))


def _run(path):
  nb = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(
    nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': str(ROOT)}})
  client.execute()
  return nb


def _text(nb):
  out = []
  for cell in nb.cells:
    if cell.cell_type != 'code':
      continue
    for o in cell.get('outputs', []):
      if 'text' in o:
        out.append(o['text'])
      elif 'data' in o and 'text/plain' in o['data']:
        out.append(o['data']['text/plain'])
  return '\n'.join(out)


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path):
  nb = _run(path)
  if path.name.startswith('18_'):
    text = _text(nb)
    assert "same test accuracy: True" in text
    assert "'brainstate': 0.98222" in text
  if path.name.startswith('04_'):
    # the digits classifier built from nn layers learns (chance is 0.1), both training styles
    text = _text(nb)
    accuracy = float(text.split('test accuracy: ')[1].split()[0])
    flax_accuracy = float(text.split('one Flax-style epoch: ')[1].split('test acc ')[1].split()[0])
    assert accuracy > 0.9 and flax_accuracy > 0.9, (accuracy, flax_accuracy)
  if path.name.startswith('01_'):
    text = _text(nb)
    for figure in [
      '[1, 2, 3, 4]',
      '(64, 1)',
      "{('b',): (1,), ('w',): (3, 1)}",
      'loss: 1.0843076705932617',
      'loss after one step: 1.023072600364685',
      'loss trajectory: [1.0231, 0.9841, 0.9592, 0.9431, 0.9327]',
      'TraceContextError',
    ]:
      assert figure in text, figure
