"""The transformations-track notebooks print what real BrainState prints.

Every code cell of a notebook runs in a fresh interpreter twice: once as
written (``import brainstate_nnx as brainstate``) and once with that import
replaced by ``import brainstate`` (real BrainState 0.5.4). Cells whose first
line is ``# brainstate_nnx only`` show brainstate_nnx-specific behaviour and
are skipped in the BrainState run. Each cell's printed output (stdout, plus
the repr of a trailing expression, as a notebook displays it) is framed by a
marker, and the outputs of the shared cells must be identical.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import oracle

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [
  '05_jit_and_compilation.ipynb',
  '06_autodiff.ipynb',
  '07_vectorization.ipynb',
  '08_control_flow.ipynb',
  '09_advanced_batching.ipynb',
  '10_error_handling_and_checks.ipynb',
  '11_debugging.ipynb',
  '12_ir_optimisation.ipynb',
  '19_parameter_transforms.ipynb',
  '20_constraining_and_regularizing.ipynb',
  '21_collective_operations.ipynb',
  '22_custom_states_and_mixins.ipynb',
]
OURS = 'import brainstate_nnx as brainstate'
REAL = 'import brainstate'
ONLY = '# brainstate_nnx only'
MARK = '<<<notebook-cell {}>>>'

# Runs the cells it reads from stdin (a JSON list of [index, source]) like a
# notebook kernel: one shared namespace, a trailing expression is displayed.
_RUNNER = r'''
import ast, json, sys
cells = json.load(sys.stdin)
ns = {'__name__': '__main__'}
for index, source in cells:
  print(%r.format(index), flush=True)
  tree = ast.parse(source)
  last = None
  if tree.body and isinstance(tree.body[-1], ast.Expr):
    last = ast.Expression(tree.body.pop().value)
  exec(compile(tree, f'<cell {index}>', 'exec'), ns)
  if last is not None:
    value = eval(compile(last, f'<cell {index}>', 'eval'), ns)
    if value is not None:
      print(repr(value))
  if 'jax' in sys.modules:
    sys.modules['jax'].effects_barrier()  # flush jax.debug.print output
  sys.stdout.flush()
''' % MARK


def _code_cells(path):
  nb = json.loads(path.read_text())
  cells = []
  for cell in nb['cells']:
    if cell['cell_type'] == 'code':
      src = cell['source']
      cells.append(''.join(src) if isinstance(src, list) else src)
  return cells


def _run(cells):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  proc = subprocess.run(
    [sys.executable, '-c', _RUNNER], input=json.dumps(cells), capture_output=True,
    text=True, env=env, timeout=300, cwd=str(ROOT),
  )
  assert proc.returncode == 0, proc.stderr[-4000:]
  outputs, current = {}, None
  for line in proc.stdout.splitlines():
    for index, _ in cells:
      if line == MARK.format(index):
        current = index
        outputs[current] = []
        break
    else:
      outputs[current].append(line)
  return {k: '\n'.join(v) for k, v in outputs.items()}


@pytest.mark.parametrize('name', NOTEBOOKS)
def test_notebook_prints_brainstate_figures(name):
  oracle()
  cells = _code_cells(ROOT / 'notebooks' / name)
  assert OURS in cells[0], f'the first code cell of {name} must contain {OURS!r}'
  ours = _run([[i, src] for i, src in enumerate(cells)])
  shared = [i for i, src in enumerate(cells) if not src.lstrip().startswith(ONLY)]
  real = _run([[i, cells[i].replace(OURS, REAL)] for i in shared])
  assert sum(bool(ours[i].strip()) for i in shared) >= 10, 'too few printed figures'
  for i in shared:
    assert ours[i] == real[i], (
      f'{name}, code cell {i}:\n--- brainstate_nnx ---\n{ours[i]}\n'
      f'--- brainstate ---\n{real[i]}\n--- source ---\n{cells[i]}'
    )
