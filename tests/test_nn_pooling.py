"""Pooling layers, differential against BrainState 0.5.4 (same input => same output and grads)."""

import brainstate as bst
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bsn

X2 = np.asarray(jax.random.normal(jax.random.key(0), (2, 7, 6, 3)))
X1 = X2[:, :, 0, :]                       # (2, 7, 3)
X3 = np.asarray(jax.random.normal(jax.random.key(1), (2, 5, 4, 6, 2)))

# (layer, args, kwargs, input)
CASES = [
  ('MaxPool1d', (2,), {}, X1),
  ('MaxPool2d', (2,), {}, X2),
  ('MaxPool2d', (3,), dict(stride=2, padding='SAME'), X2),
  ('MaxPool2d', ((2, 3),), dict(stride=(1, 2), padding=[(1, 0), (0, 2)]), X2),
  ('MaxPool2d', (2,), dict(channel_axis=None), X2[0]),
  ('MaxPool2d', (2,), dict(channel_axis=1), X2),
  ('MaxPool3d', (2,), {}, X3),
  ('AvgPool1d', (2,), {}, X1),
  ('AvgPool2d', (2,), dict(stride=2), X2),
  ('AvgPool2d', (3,), dict(stride=2, padding=1), X2),
  ('AvgPool3d', (2,), dict(stride=(1, 2, 3)), X3),
  ('LPPool1d', (2, 2), {}, X1),
  ('LPPool2d', (3, 2), dict(stride=1), X2),
  ('LPPool2d', (1.5, 3), dict(padding='SAME'), X2),
  ('AdaptiveAvgPool1d', (3,), {}, X1),
  ('AdaptiveAvgPool2d', ((3, 4),), {}, X2),
  ('AdaptiveAvgPool2d', ((5, None),), {}, X2),
  ('AdaptiveAvgPool3d', ((2, 3, 4),), {}, X3),
  ('AdaptiveMaxPool2d', (4,), {}, X2),
  ('AdaptiveMaxPool3d', (2,), {}, X3),
]


def _ids(case):
  name, args, kwargs, x = case
  return f'{name}{args}{kwargs}'.replace(' ', '')


def _run(lib, layer, x, unbatched):
  """Batched output, unbatched output and input gradient, in one compiled call."""

  def run(v):
    loss = lambda u: jnp.sum(jnp.sin(layer(u)))
    single = layer(v[0]) if unbatched else jnp.zeros(())
    return layer(v), single, lib.transform.grad(loss)(v)

  return [np.asarray(a) for a in jax.jit(run)(jnp.asarray(x))]


@pytest.mark.parametrize('case', CASES, ids=[_ids(c) for c in CASES])
def test_output_and_grad_match_brainstate(case):
  name, args, kwargs, x = case
  unbatched = kwargs.get('channel_axis', -1) != 1
  theirs = _run(bst, getattr(bst.nn, name)(*args, **kwargs), x, unbatched)
  ours = _run(bsn, getattr(bsn.nn, name)(*args, **kwargs), x, unbatched)
  assert ours[0].shape == theirs[0].shape and ours[0].size > 0
  for a, b in zip(ours, theirs):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name,args,in_size', [
  ('MaxPool2d', (2,), (7, 6, 3)),
  ('AvgPool1d', (3,), (7, 3)),
  ('LPPool3d', (2, 2), (5, 4, 6, 2)),
  ('AdaptiveMaxPool2d', ((3, 2),), (7, 6, 3)),
])
def test_in_size_gives_brainstate_out_size(name, args, in_size):
  ours = getattr(bsn.nn, name)(*args, in_size=in_size)
  theirs = getattr(bst.nn, name)(*args, in_size=in_size)
  assert ours.in_size == theirs.in_size == in_size
  assert ours.out_size == theirs.out_size


def test_pooling_layers_have_no_states_and_brainstate_attributes():
  for lib in (bst, bsn):
    m = lib.nn.MaxPool2d(3, padding=1)
    assert m.kernel_size == (3, 3) and m.stride == (3, 3)
    assert list(m.padding) == [(1, 1), (1, 1)] and m.channel_axis == -1
    a = lib.nn.AvgPool2d(2)
    assert a.stride == (1, 1)  # AvgPool's stride defaults to 1, as in BrainState
    assert len(m.states()) == 0


@pytest.mark.parametrize('pool_dim,x', [(1, X2[:, :6, 0]), (2, X2[:, :6]), (3, X3[:, :4])])
def test_max_pool_indices_and_unpool_match_brainstate(pool_dim, x):
  res = []
  for lib in (bst, bsn):
    pool = getattr(lib.nn, f'MaxPool{pool_dim}d')(2, return_indices=True)
    unpool = getattr(lib.nn, f'MaxUnpool{pool_dim}d')(2)
    spatial = tuple(s + 1 for s in x.shape[1:1 + pool_dim])

    def run(v):
      y, idx = pool(v)
      return y, idx, unpool(y, idx), unpool(y, idx, output_size=spatial)

    res.append(jax.jit(run)(x))
  for a, b in zip(*res):
    np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
  # the maxima come back in place
  y, idx, back, _ = res[1]
  assert float(back.sum()) == pytest.approx(float(y.sum()), rel=1e-5)


def test_max_pool_indices_with_ties_take_first():
  x = jnp.ones((1, 4, 1))
  for lib in (bst, bsn):
    _, idx = lib.nn.MaxPool1d(2, return_indices=True)(x)
    np.testing.assert_array_equal(np.asarray(idx)[0, :, 0], [0, 2])


def test_pooling_under_jit_and_vmap():
  pool = bsn.nn.MaxPool2d(2)
  f = bsn.transform.jit(lambda x: pool(x))
  np.testing.assert_allclose(f(X2), pool(X2))
  v = bsn.transform.vmap(lambda x: bsn.nn.AdaptiveAvgPool1d(2)(x))(X1)
  np.testing.assert_allclose(v, bst.nn.AdaptiveAvgPool1d(2)(X1), rtol=1e-6)


# -- bad input -----------------------------------------------------------------

@pytest.mark.parametrize('make', [
  lambda lib: lib.nn.MaxPool2d(2, padding='FULL'),
  lambda lib: lib.nn.AvgPool1d(2, padding='same'),
  lambda lib: lib.nn.LPPool2d(2, 2, padding='CIRCULAR'),
])
def test_unknown_padding_mode_is_a_value_error(make):
  for lib in (bst, bsn):
    with pytest.raises(ValueError, match="must be 'SAME' or 'VALID'"):
      make(lib)


@pytest.mark.parametrize('make,exc', [
  (lambda lib: lib.nn.MaxPool2d((2, 2, 2)), ValueError),
  (lambda lib: lib.nn.MaxPool2d(2.5), TypeError),
  (lambda lib: lib.nn.AvgPool2d(2, stride=(1, 'a')), TypeError),
  (lambda lib: lib.nn.MaxPool1d(2, padding=(1, 2)), ValueError),
  (lambda lib: lib.nn.LPPool1d(0., 2), ValueError),
  (lambda lib: lib.nn.LPPool1d(float('inf'), 2), ValueError),
  (lambda lib: lib.nn.AdaptiveAvgPool2d(0), ValueError),
  (lambda lib: lib.nn.AdaptiveAvgPool2d('ab'), TypeError),
  (lambda lib: lib.nn.AdaptiveMaxPool2d((2, 3, 4)), ValueError),
  (lambda lib: lib.nn.MaxUnpool2d(2, padding=(1, 1, 1)), ValueError),
  (lambda lib: lib.nn.MaxPool2d(2, channel_axis='x'), TypeError),
])
def test_bad_constructor_arguments(make, exc):
  for lib in (bst, bsn):
    with pytest.raises(exc):
      make(lib)


@pytest.mark.parametrize('name,args', [
  ('MaxPool2d', (2,)), ('AvgPool2d', (2,)), ('LPPool2d', (2, 2)),
  ('AdaptiveAvgPool2d', (2,)), ('MaxPool3d', (2,)),
])
def test_wrong_rank_is_a_value_error(name, args):
  x = jnp.ones((3, 3))
  for lib in (bst, bsn):
    with pytest.raises(ValueError):
      getattr(lib.nn, name)(*args)(x)


@pytest.mark.parametrize('name,args,kw', [
  ('MaxPool2d', (5,), {}),
  ('AvgPool2d', (5,), {}),
  ('LPPool2d', (2, 5), {}),
  ('MaxPool2d', (6,), dict(padding=1)),
])
def test_kernel_larger_than_input_is_a_clear_error(name, args, kw):
  x = jnp.ones((2, 3, 3, 4))
  # BrainState silently returns an empty array ...
  assert getattr(bst.nn, name)(*args, **kw)(x).size == 0
  # ... brainstate_nnx says what is wrong
  with pytest.raises(ValueError, match='kernel_size .* larger than the'):
    getattr(bsn.nn, name)(*args, **kw)(x)


def test_adaptive_target_larger_than_input_is_a_value_error():
  for lib in (bst, bsn):
    with pytest.raises(ValueError, match='upsampling is not supported'):
      lib.nn.AdaptiveAvgPool2d(5)(jnp.ones((3, 3, 2)))


def test_invalid_channel_axis_is_a_value_error():
  for lib in (bst, bsn):
    with pytest.raises(ValueError, match='Invalid channel axis'):
      lib.nn.MaxPool1d(2, channel_axis=5)(jnp.ones((4, 3)))
