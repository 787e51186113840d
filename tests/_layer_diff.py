"""Helpers for the differential layer tests (real BrainState vs brainstate_nnx).

A *spec* is a function ``spec(lib) -> layer`` that builds the same layer with
either library (``lib`` is the ``brainstate`` or ``brainstate_nnx`` module), so
one spec runs the same program on both.
"""

import jax
import jax.numpy as jnp
import numpy as np

try:  # the shared oracle policy of tests/conftest.py, where it exists
  from conftest import oracle as _oracle
except ImportError:  # pragma: no cover
  import brainstate as bst
else:
  bst = _oracle()
import brainstate_nnx as bsn

LIBS = (bst, bsn)


def build(lib, spec, seed=0):
  lib.random.seed(seed)
  return spec(lib)


def state_values(layer):
  """``{path: value}`` of every State of ``layer``."""
  return {k: v.value for k, v in layer.states().items()}


def assert_tree_close(a, b, rtol=1e-5, atol=1e-6):
  """Same structure (dict keys) and close leaves."""
  if isinstance(a, dict) or isinstance(b, dict):
    assert sorted(a.keys()) == sorted(b.keys()), (sorted(a.keys()), sorted(b.keys()))
    for k in a:
      assert_tree_close(a[k], b[k], rtol, atol)
    return
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def assert_tree_equal(a, b):
  """Same structure and bit-identical leaves (parameters drawn from the same seed)."""
  if isinstance(a, dict) or isinstance(b, dict):
    assert sorted(a.keys()) == sorted(b.keys()), (sorted(a.keys()), sorted(b.keys()))
    for k in a:
      assert_tree_equal(a[k], b[k])
    return
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def forward_and_grads(lib, layer, x):
  """Output, parameter gradients (path-keyed) and input gradient of
  ``sum(sin(layer(x)))``, computed with ``lib``'s own jit and grad (one compile)."""
  params = layer.states(lib.ParamState)

  def loss(inp):
    y = layer(inp)
    return jnp.sum(jnp.sin(y)), y

  if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating):
    grad_fn = lib.transform.grad(loss, grad_states=params, argnums=0, has_aux=True)
    (g_params, g_x), y = lib.transform.jit(grad_fn)(x)
  else:  # integer input (Embedding): parameter gradients only
    grad_fn = lib.transform.grad(loss, grad_states=params, has_aux=True)
    g_params, y = lib.transform.jit(grad_fn)(x)
    g_x = None
  return y, dict(g_params), g_x


def run_both(spec, x, seed=0, grads=True):
  """Builds ``spec`` on both libraries from the same seed and checks that
  parameters, sizes and outputs match; with ``grads``, the call runs under each
  library's jit + grad and the parameter and input gradients must match too,
  otherwise it is an eager call. Returns brainstate_nnx's layer."""
  ref, ours = [build(lib, spec, seed) for lib in LIBS]
  assert list(ref.states().keys()) == list(ours.states().keys())
  assert_tree_equal(state_values(ref), state_values(ours))
  assert tuple(ref.in_size or ()) == tuple(ours.in_size or ())
  assert tuple(ref.out_size or ()) == tuple(ours.out_size or ())
  if grads:
    y_ref, g_ref, gx_ref = forward_and_grads(bst, ref, x)
    y, g, gx = forward_and_grads(bsn, ours, x)
    assert_tree_close(g_ref, g)
    if gx_ref is not None:
      assert_tree_close(gx_ref, gx)
  else:
    y_ref, y = ref(x), ours(x)
  assert y.shape == y_ref.shape
  assert_tree_close(y_ref, y)
  return ours


def rand(shape, seed=0):
  return jnp.asarray(np.random.RandomState(seed).randn(*shape).astype(np.float32))
