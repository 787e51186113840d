"""transform.vmap: mapped/broadcast States, out_states, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bs


def test_plain_vmap_like_jax():
  f = lambda x, y: x * 2 + y
  x, y = jnp.arange(6.0).reshape(3, 2), jnp.array([1.0, 2.0])
  np.testing.assert_allclose(
    bs.transform.vmap(f, in_axes=(0, None))(x, y), jax.vmap(f, in_axes=(0, None))(x, y))
  out = bs.transform.vmap(lambda x: (x, x.sum()), out_axes=(1, 0))(x)
  assert out[0].shape == (2, 3) and out[1].shape == (3,)


def test_broadcast_state_read():
  w = bs.ParamState(jnp.array([1.0, 2.0]))
  out = bs.transform.vmap(lambda x: x * w.value)(jnp.ones((3, 2)))
  np.testing.assert_allclose(out, np.tile([1.0, 2.0], (3, 1)))


def _scenarios(lib):
  res = {}
  c = lib.ShortTermState(jnp.zeros(3))
  f = lib.transform.vmap(lambda x: (setattr(c, 'value', c.value + x), c.value)[1],
                         in_states=c, out_states=c)
  res['in_out'] = (f(jnp.array([1., 2., 3.])), c.value)
  c2 = lib.ShortTermState(jnp.zeros(3))
  f = lib.transform.vmap(lambda x: (setattr(c2, 'value', c2.value + x), c2.value)[1], in_states=c2)
  res['in_only'] = (f(jnp.array([1., 2., 3.])), c2.value)
  c4 = lib.ShortTermState(jnp.zeros(()))
  f = lib.transform.vmap(lambda x: (setattr(c4, 'value', c4.value + 1.), x * 2)[1])
  res['undeclared_unbatched'] = (f(jnp.array([1., 2., 3.])), c4.value)
  c5 = lib.ShortTermState(jnp.zeros(()))
  f = lib.transform.vmap(lambda x: (setattr(c5, 'value', c5.value + x), x * 2)[1], out_states=c5)
  res['out_only'] = (f(jnp.array([1., 2., 3.])), c5.value)
  c7 = lib.ShortTermState(jnp.arange(3.0))
  f = lib.transform.vmap(lambda x: c7.value * x, in_states=c7, in_axes=None)
  res['state_axis_only'] = f(2.0)
  return jax.tree.map(np.asarray, res)


def test_state_scenarios_match_brainstate(bst):
  mine, theirs = _scenarios(bs), _scenarios(bst)
  assert mine.keys() == theirs.keys()
  for k in mine:
    for a, c in zip(jax.tree.leaves(mine[k]), jax.tree.leaves(theirs[k])):
      np.testing.assert_allclose(a, c, err_msg=k)


def test_state_mapped_on_axis_1():
  # (BrainState 0.5.4 mis-infers the batch size for non-zero state axes, so
  # this one is checked by hand.)
  c = bs.ShortTermState(jnp.zeros((2, 3)))
  f = bs.transform.vmap(lambda x: (setattr(c, 'value', c.value + x), c.value.sum())[1],
                        in_states={1: {'c': c}})
  out = f(jnp.arange(3.0))
  np.testing.assert_allclose(out, [0.0, 2.0, 4.0])
  np.testing.assert_allclose(c.value, np.tile(np.arange(3.0), (2, 1)))


def test_int_keyed_dict_of_states_is_a_collection_like_brainstate(bst):
  def run(lib):
    a = lib.State(jnp.zeros((3, 2)))
    b = lib.State(jnp.zeros((3, 2)))
    def f(x):
      a.value = a.value + x
      b.value = b.value + 2 * x
      return x
    lib.transform.vmap(f, in_states={0: a, 1: b})(jnp.arange(3.0))
    return np.asarray(a.value), np.asarray(b.value)

  for m, t in zip(run(bs), run(bst)):
    np.testing.assert_array_equal(m, t)


def test_conflicting_in_out_axes_raise():
  c = bs.State(jnp.zeros((2, 3)))
  with pytest.raises(bs.BatchAxisError):
    bs.transform.vmap(lambda x: x, in_states={0: {'c': c}}, out_states={1: {'c': c}})


def test_batched_write_to_broadcast_state_raises():
  c = bs.ShortTermState(jnp.zeros(()), name='acc')
  f = bs.transform.vmap(lambda x: setattr(c, 'value', c.value + x))
  with pytest.raises(bs.BatchAxisError, match='acc'):
    f(jnp.array([1., 2., 3.]))
  assert float(c.value) == 0.0


def test_kwargs_not_supported():
  with pytest.raises(NotImplementedError):
    bs.transform.vmap(lambda x: x)(x=jnp.ones(3))


def test_vmap_inside_jit_and_ensemble():
  w = bs.ParamState(jnp.array([[1.0], [2.0], [3.0]]))  # 3 members
  h = bs.HiddenState(jnp.zeros((3, 1)))

  @bs.transform.jit
  def step(x):
    def member(x):
      h.value = h.value + x * w.value
      return h.value.sum()
    return bs.transform.vmap(member, in_states=[w, h], in_axes=None)(x)

  step(jnp.float32(1.0))
  out = step(jnp.float32(1.0))
  np.testing.assert_allclose(out, [2.0, 4.0, 6.0])
  np.testing.assert_allclose(h.value, [[2.0], [4.0], [6.0]])


def test_grad_of_vmap_over_states():
  w = bs.ParamState(jnp.array([1.0, 2.0, 3.0]))
  xs = jnp.array([0.5, 1.0, 2.0])

  def loss():
    return bs.transform.vmap(lambda x: x * w.value ** 2, in_states=w)(xs).sum()

  g = bs.transform.grad(loss, w)()
  np.testing.assert_allclose(g, 2 * xs * w.value)


@pytest.mark.parametrize('under_jit', [False, True])
def test_vmap_splits_random_generators_per_lane_like_brainstate(bst, under_jit):
  """Draws inside vmap differ per lane (a key per lane), bit for bit as BrainState."""

  def program(lib):
    lib.random.seed(0)
    rng = lib.random.RandomState(1)
    f = lib.transform.vmap(lambda x: x + rng.randn(3) + lib.random.rand(3))
    if under_jit:
      f = lib.transform.jit(f)
    out = [np.asarray(f(jnp.arange(4.)[:, None])) for _ in range(2)]
    return out, np.asarray(rng.randn(2)), np.asarray(lib.random.rand(2))

  ours, theirs = program(bs), program(bst)
  assert len({tuple(row) for row in ours[0][0]}) == 4  # every lane draws its own numbers
  assert not np.array_equal(ours[0][0], ours[0][1])     # and the next call draws new ones
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
    np.testing.assert_array_equal(a, b)
