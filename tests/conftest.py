import os

os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def bst():
  """Real BrainState 0.5.4, the oracle of differential tests."""
  return pytest.importorskip('brainstate')


@pytest.fixture
def bsn():
  import brainstate_nnx

  return brainstate_nnx
