"""The model-library notebooks (3x_*) print what real BrainState prints.

Same method as ``test_notebook_figures.py``: every code cell runs once as written
and once with ``import brainstate_nnx as brainstate`` replaced by ``import
brainstate`` (real BrainState 0.5.4); cells starting with ``# brainstate_nnx
only`` are skipped in the BrainState run, and the printed output of all the
other cells must be identical.
"""

import pytest
from conftest import oracle
from test_notebook_figures import ONLY, OURS, REAL, ROOT, _code_cells, _run

NOTEBOOKS = {
  # notebook: the least number of shared cells that must print something
  '00_getting_started.ipynb': 6,
  '02_common_layers.ipynb': 9,
  '03_activations_normalization.ipynb': 6,
}


@pytest.mark.parametrize('name', sorted(NOTEBOOKS))
def test_library_notebook_prints_brainstate_figures(name):
  oracle()
  cells = _code_cells(ROOT / 'notebooks' / name)
  assert OURS in cells[0], f'the first code cell of {name} must contain {OURS!r}'
  ours = _run([[i, src] for i, src in enumerate(cells)])
  shared = [i for i, src in enumerate(cells) if not src.lstrip().startswith(ONLY)]
  real = _run([[i, cells[i].replace(OURS, REAL)] for i in shared])
  assert sum(bool(ours[i].strip()) for i in shared) >= NOTEBOOKS[name], 'too few printed figures'
  for i in shared:
    assert ours[i] == real[i], (
      f'{name}, code cell {i}:\n--- brainstate_nnx ---\n{ours[i]}\n'
      f'--- brainstate ---\n{real[i]}\n--- source ---\n{cells[i]}'
    )
