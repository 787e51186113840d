"""transform.grad / vector_grad: structures and values against jax.grad and BrainState."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bs
from conftest import assert_close


def _setup(lib):
  w = lib.ParamState(jnp.array([[1.0, -2.0], [0.5, 3.0]]))
  b = lib.ParamState(jnp.array([0.1, -0.3]))
  x = jnp.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])

  def loss(scale=1.0):
    return jnp.sum(jnp.tanh(x @ w.value + b.value) ** 2) * scale

  return w, b, x, loss


def _pure_loss(w, b, x, scale=1.0):
  return jnp.sum(jnp.tanh(x @ w + b) ** 2) * scale


def test_single_state_list_and_dict_structures():
  w, b, x, loss = _setup(bs)
  gw, gb = jax.grad(_pure_loss, argnums=(0, 1))(w.value, b.value, x)
  g = bs.transform.grad(loss, w)()
  assert_close(g, gw, atol=0)
  g = bs.transform.grad(loss, [w, b])()
  assert isinstance(g, list) and len(g) == 2
  assert_close(g[1], gb, atol=0)
  g = bs.transform.grad(loss, {'w': w, 'b': b})()
  assert set(g) == {'w', 'b'}
  assert_close(g['w'], gw, atol=0)


@pytest.mark.parametrize('has_aux', [False, True])
@pytest.mark.parametrize('return_value', [False, True])
@pytest.mark.parametrize('argnums', [None, 0, (0,)])
def test_result_structure_matches_brainstate(bst, has_aux, return_value, argnums):
  def run(lib):
    w, b, x, _ = _setup(lib)

    def f(scale):
      l = jnp.sum(jnp.tanh(x @ w.value + b.value) ** 2) * scale
      return (l, {'l2': l * 2}) if has_aux else l

    out = lib.transform.grad(
      f, {'w': w, 'b': b}, argnums=argnums, has_aux=has_aux,
      return_value=return_value,
    )(jnp.float32(1.5))
    return jax.tree.map(np.asarray, out)

  mine, theirs = run(bs), run(bst)
  assert jax.tree.structure(mine) == jax.tree.structure(theirs)
  for a, c in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs)):
    assert_close(a, c, atol=0)


def test_argnums_only_like_jax_grad():
  f = lambda x, y: jnp.sum(x ** 2 * y)
  x, y = jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0])
  np.testing.assert_allclose(bs.transform.grad(f)(x, y), jax.grad(f)(x, y))
  gx, gy = bs.transform.grad(f, argnums=(0, 1))(x, y)
  np.testing.assert_allclose(gy, jax.grad(f, argnums=1)(x, y))


def test_module_states_mapping_gives_path_keys():
  class Lin(bs.nn.Module):
    def __init__(self):
      super().__init__()
      self.w = bs.ParamState(jnp.ones((3, 1)))
      self.b = bs.ParamState(jnp.zeros(1))

    def __call__(self, x):
      return x @ self.w.value + self.b.value

  m = Lin()
  params = m.states(bs.ParamState)
  x = jnp.arange(6.0).reshape(2, 3)
  g = bs.transform.grad(lambda: jnp.mean(m(x) ** 2), params)()
  assert type(g) is dict and sorted(g) == [('b',), ('w',)]
  gw, gb = jax.grad(lambda w, b: jnp.mean((x @ w + b) ** 2), argnums=(0, 1))(
    m.w.value, m.b.value)
  np.testing.assert_allclose(g[('w',)], gw)
  np.testing.assert_allclose(g[('b',)], gb)


def test_write_inside_loss_is_carried_out_and_matches_brainstate(bst):
  def run(lib):
    w = lib.ParamState(jnp.array([0.5, -1.0]))
    h = lib.HiddenState(jnp.zeros(2))
    calls = lib.LongTermState(jnp.array(0))

    def loss(x):
      h.value = jnp.tanh(w.value * x + h.value)
      calls.value = calls.value + 1
      return jnp.sum(h.value ** 2)

    step = lib.transform.jit(lambda x: lib.transform.grad(loss, w, return_value=True)(x))
    out = [step(jnp.array([1.0, 2.0])) for _ in range(3)]
    return jax.tree.map(np.asarray, out), np.asarray(h.value), int(calls.value)

  (m_out, m_h, m_c), (t_out, t_h, t_c) = run(bs), run(bst)
  assert m_c == t_c == 3
  assert_close(m_h, t_h, atol=0)
  for a, c in zip(jax.tree.leaves(m_out), jax.tree.leaves(t_out)):
    assert_close(a, c, atol=0)


def test_duplicate_grad_states_share_gradient():
  w = bs.ParamState(jnp.array(2.0))
  g = bs.transform.grad(lambda: w.value ** 2, [w, w])()
  assert float(g[0]) == float(g[1]) == 4.0


def test_check_states_unused_state_raises():
  w = bs.ParamState(jnp.array(2.0))
  unused = bs.ParamState(jnp.array(1.0))
  with pytest.raises(ValueError, match='never read'):
    bs.transform.grad(lambda: w.value ** 2, [w, unused])()
  g = bs.transform.grad(lambda: w.value ** 2, [w, unused], check_states=False)()
  assert float(g[1]) == 0.0


def test_has_aux_requires_pair():
  w = bs.ParamState(jnp.array(2.0))
  with pytest.raises(TypeError, match='pair'):
    bs.transform.grad(lambda: w.value ** 2, w, has_aux=True)()


def test_grad_states_must_be_states():
  with pytest.raises(TypeError):
    bs.transform.grad(lambda: 1.0, [jnp.ones(2)])


def test_vector_grad_matches_brainstate(bst):
  def run(lib):
    x = lib.State(jnp.array([1.0, 2.0, 3.0]))
    f = lambda y: jnp.sin(x.value) * y
    g, v = lib.transform.vector_grad(f, x, argnums=0, return_value=True)(jnp.array([1.0, 2.0, 0.5]))
    return jax.tree.map(np.asarray, (g, v))

  mine, theirs = run(bs), run(bst)
  assert jax.tree.structure(mine) == jax.tree.structure(theirs)
  for a, c in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs)):
    assert_close(a, c, atol=0)


def test_decorator_form():
  w = bs.ParamState(jnp.array(3.0))

  @bs.transform.grad(grad_states=w)
  def f():
    return w.value ** 3

  assert float(f()) == 27.0
