"""Misuse is loud: raw JAX transforms never silently drop or freeze State."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bs


def _counter():
  class Counter(bs.nn.Module):
    def __init__(self):
      super().__init__()
      self.n = bs.State(jnp.array(0))

    def __call__(self):
      self.n.value += 1
      return self.n.value

  return Counter()


def test_write_under_raw_jit_raises_and_names_fix():
  c = _counter()
  with pytest.raises(bs.TraceContextError, match='brainstate_nnx.transform'):
    jax.jit(c)()
  assert int(c.n.value) == 0


def test_raw_jit_error_is_a_flax_trace_context_error():
  from flax import errors

  with pytest.raises(errors.TraceContextError):
    jax.jit(_counter())()


@pytest.mark.parametrize('raw', ['vmap', 'grad'])
def test_write_under_raw_vmap_and_grad_raises(raw):
  s = bs.State(jnp.array(0.0))

  def f(x):
    s.value = s.value + x
    return x.sum() if raw == 'grad' else x

  with pytest.raises(bs.TraceContextError, match='transform'):
    getattr(jax, raw)(f)(jnp.ones(3) if raw == 'vmap' else 1.0)


def test_write_under_raw_scan_raises():
  s = bs.State(jnp.array(0.0))

  def body(c, x):
    s.value = s.value + x
    return c, x

  with pytest.raises(bs.TraceContextError):
    jax.lax.scan(body, 0.0, jnp.ones(3))


def test_write_in_raw_scan_inside_our_jit_raises():
  s = bs.State(jnp.array(0.0))

  @bs.transform.jit
  def f():
    def body(c, x):
      s.value = s.value + x
      return c, x
    jax.lax.scan(body, 0.0, jnp.ones(3))

  with pytest.raises(bs.TraceContextError, match='scan'):
    f()


def test_read_under_raw_jit_is_never_a_stale_constant():
  w = bs.State(jnp.array(1.0))
  with pytest.raises(bs.TraceContextError, match='stale'):
    jax.jit(lambda: w.value * 2)()


def test_our_jit_inside_raw_jit_raises():
  w = bs.State(jnp.array(1.0))
  f = bs.transform.jit(lambda x: w.value * x)
  f(1.0)
  with pytest.raises(bs.TraceContextError):
    jax.jit(f)(1.0)


def test_reads_under_eager_raw_grad_and_vmap_are_fine():
  # no compilation, so nothing can go stale: allowed, as in JAX
  w = bs.State(jnp.array(3.0))
  assert float(jax.grad(lambda x: x * w.value)(1.0)) == 3.0
  np.testing.assert_allclose(jax.vmap(lambda x: x * w.value)(jnp.ones(2)), [3.0, 3.0])


def test_state_as_explicit_arg_to_raw_jit_is_fine():
  s = bs.State(jnp.array(2.0))
  assert float(jax.jit(lambda st: st.value * 2)(s)) == 4.0
