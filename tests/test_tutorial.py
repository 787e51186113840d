"""The seed tutorial ("Transformations, the Essentials") end to end.

Runs examples/seed_tutorial.py in a fresh interpreter and checks every figure
it prints against the values real BrainState prints for the same program.
"""

import os
import subprocess
import sys
from pathlib import Path

from conftest import oracle

ROOT = Path(__file__).resolve().parents[1]


def test_seed_tutorial_prints_brainstate_figures():
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  out = subprocess.run(
    [sys.executable, str(ROOT / 'examples' / 'seed_tutorial.py')],
    capture_output=True, text=True, env=env, timeout=300, check=True,
  ).stdout.splitlines()
  assert out[1] == 'raw jax.jit refuses the State write: TraceContextError'
  assert out[2] == '[1, 2, 3, 4]'
  assert out[3] == '(64, 1)'
  assert out[4] == "{('b',): (1,), ('w',): (3, 1)}"
  assert out[5] == 'loss: 1.0843076705932617'
  assert out[6] == 'loss after one step: 1.023072600364685'
  assert out[7] == '(64, 1)'
  assert out[8] == 'loss trajectory: [1.0231, 0.9841, 0.9592, 0.9431, 0.9327]'


def test_seed_tutorial_matches_real_brainstate_run(tmp_path):
  """The same script with ``import brainstate`` prints the same numbers."""
  oracle()
  src = (ROOT / 'examples' / 'seed_tutorial.py').read_text()
  src = src.replace('import brainstate_nnx as brainstate', 'import brainstate')
  src = src.replace("print('brainstate_nnx', brainstate.__version__)", "print('brainstate')")
  script = tmp_path / 'tutorial_real.py'
  script.write_text(src)
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  real = subprocess.run([sys.executable, str(script)], capture_output=True,
                        text=True, env=env, timeout=300, check=True).stdout.splitlines()
  ours = subprocess.run([sys.executable, str(ROOT / 'examples' / 'seed_tutorial.py')],
                        capture_output=True, text=True, env=env, timeout=300,
                        check=True).stdout.splitlines()
  assert ours[1:] == real[1:]
