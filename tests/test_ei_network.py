"""examples/ei_network.py gives BrainState's spike trains, run unchanged under both libraries."""

import importlib.util
import os
import sys

import numpy as np

import brainstate  # noqa: F401  (the oracle must be importable)

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       'examples', 'ei_network.py')


def _load(name, argv):
  old = sys.argv
  sys.argv = [EXAMPLE] + argv
  try:
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
  finally:
    sys.argv = old
  return mod


def test_ei_network_spike_trains_match_brainstate():
  ours = _load('ei_network_bsn', [])
  theirs = _load('ei_network_bst', ['--brainstate'])
  assert ours.brainstate.__name__ == 'brainstate_nnx'
  assert theirs.brainstate.__name__ == 'brainstate'
  had = {m: 'dt' in m.brainstate.environ.all() for m in (ours, theirs)}
  try:
    a = ours.simulate(n=400, steps=200, seed=7)
    b = theirs.simulate(n=400, steps=200, seed=7)
  finally:
    for m, keep in had.items():  # simulate() sets the global dt, as a script does
      if not keep:
        m.brainstate.environ.pop('dt', None)
  assert a.shape == (200, 400)
  assert 100 < a.sum() < 0.2 * a.size          # active, not saturated
  np.testing.assert_array_equal(a, b)
