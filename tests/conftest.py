"""Shared test helpers: the BrainState oracle and one tolerance policy.

The oracle
----------
Differential tests run the same program on real BrainState 0.5.4 (the
fixture ``bst``, or :func:`oracle` at a test module's top) and on
``brainstate_nnx`` (the fixture ``bsn``) and compare the numbers. A missing
oracle fails the whole run at start-up: those tests are most of what the
suite proves. Set ``BRAINSTATE_NNX_NO_ORACLE=1`` to run without it on
purpose; the differential tests are then skipped, each with that reason.

Tolerances
----------
:func:`assert_close` compares two pytrees leaf by leaf (same structure, same
shapes, strings exactly) with ``rtol=RTOL, atol=ATOL``:

* ``RTOL = ATOL = 1e-6`` (a few float32 ulps): the same float32 computation
  done two ways -- brainstate_nnx against BrainState, or against plain JAX.
* ``REORDER_RTOL = 1e-5``: the same mathematics in a different operation
  order, where rounding differs by design -- rewritten jaxprs, batched
  against per-example code, loss curves accumulated over training steps.

A test that needs anything looser says why next to the call.
"""

import os

os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import importlib  # noqa: E402
import importlib.metadata  # noqa: E402
import importlib.util  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

RTOL = 1e-6
ATOL = 1e-6
REORDER_RTOL = 1e-5

NO_ORACLE_ENV = 'BRAINSTATE_NNX_NO_ORACLE'
_NO_ORACLE_REASON = (
  f'real BrainState (the oracle of differential tests) is not installed and '
  f'{NO_ORACLE_ENV}=1 opts out of it')
_MISSING_ORACLE = (
  'real BrainState 0.5.4, the oracle of the differential tests, cannot be '
  'imported ({error}). Install the test extra (pip install -e ".[test]"), or '
  f'set {NO_ORACLE_ENV}=1 to skip the differential tests on purpose.')


def _opted_out() -> bool:
  return os.environ.get(NO_ORACLE_ENV, '').strip().lower() not in ('', '0', 'false', 'no')


def _import_oracle():
  try:
    return importlib.import_module('brainstate'), None
  except ImportError as e:  # pragma: no cover - depends on the environment
    return None, e


def oracle():
  """Real ``brainstate``; skips (opt-out) or fails (no opt-out) when it is missing.

  Use at a test module's top (``brainstate = oracle()``) or inside a test.
  """
  module, error = _import_oracle()
  if module is not None:
    return module
  if _opted_out():
    pytest.skip(_NO_ORACLE_REASON, allow_module_level=True)
  pytest.fail(_MISSING_ORACLE.format(error=error), pytrace=False)


def _oracle_installed() -> bool:
  # A cheap look-up (the controller of a parallel run imports no BrainState);
  # a broken install still fails loudly, in the tests that import it.
  try:
    return importlib.util.find_spec('brainstate') is not None
  except (ImportError, ValueError):
    return False


def pytest_configure(config):
  if not _opted_out() and not _oracle_installed():
    raise pytest.UsageError(_MISSING_ORACLE.format(error="no module named 'brainstate'"))


def pytest_report_header(config):
  if _oracle_installed():
    return f"oracle: brainstate {importlib.metadata.version('brainstate')}"
  return f'oracle: MISSING ({NO_ORACLE_ENV}=1: differential tests are skipped)'


def _is_array(x) -> bool:
  return isinstance(x, (np.ndarray, np.generic, jax.Array, float, int, complex, bool))


def _numpy_tree(tree):
  return jax.tree.map(np.asarray, tree)


def assert_close(actual, expected, *, rtol=RTOL, atol=ATOL, check_structure=True,
                 check_dtype=False):
  """Asserts two pytrees hold the same numbers, under the suite's tolerance policy.

  Leaves are compared with ``np.testing.assert_allclose(rtol, atol)`` (NaNs
  equal), after checking that both trees have the same structure (or, with
  ``check_structure=False``, the same number of leaves), each pair of leaves
  the same shape (no broadcasting) and, with ``check_dtype``, the same
  dtype. String leaves must be equal.
  """
  if _is_array(actual) or _is_array(expected):
    # an array against a nested list of numbers: compare as arrays
    actual, expected = np.asarray(actual), np.asarray(expected)
  actual, expected = _numpy_tree(actual), _numpy_tree(expected)
  if check_structure:
    sa, sb = jax.tree.structure(actual), jax.tree.structure(expected)
    assert sa == sb, f'tree structures differ:\n  {sa}\n  {sb}'
  la, lb = jax.tree.leaves(actual), jax.tree.leaves(expected)
  assert len(la) == len(lb), f'{len(la)} leaves != {len(lb)} leaves'
  for i, (x, y) in enumerate(zip(la, lb)):
    x, y = np.asarray(x), np.asarray(y)
    assert x.shape == y.shape, f'leaf {i}: shape {x.shape} != {y.shape}'
    if check_dtype:
      assert x.dtype == y.dtype, f'leaf {i}: dtype {x.dtype} != {y.dtype}'
    if x.dtype.kind in 'USO' or y.dtype.kind in 'USO':
      assert np.array_equal(x, y), f'leaf {i}: {x!r} != {y!r}'
      continue
    np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=f'leaf {i} of {len(la)}')


@pytest.fixture
def bst():
  """Real BrainState 0.5.4, the oracle of differential tests."""
  return oracle()


@pytest.fixture
def bsn():
  import brainstate_nnx

  return brainstate_nnx
