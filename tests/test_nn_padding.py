"""Padding layers, differential against BrainState 0.5.4."""

import brainstate as bst
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bsn

KINDS = ['Reflection', 'Replication', 'Zero', 'Constant', 'Circular']
SHAPES = {1: (2, 5, 3), 2: (2, 5, 4, 3), 3: (2, 4, 5, 3, 2)}
PADS = {1: [2, (1, 3)], 2: [1, (2, 1), (1, 0, 2, 3)], 3: [1, (1, 2, 0, 1, 2, 0)]}


def _x(dim):
  return np.asarray(jax.random.normal(jax.random.key(dim), SHAPES[dim]))


def _make(lib, kind, dim, pad):
  cls = getattr(lib.nn, f'{kind}Pad{dim}d')
  return cls(pad, value=1.5) if kind == 'Constant' else cls(pad)


@pytest.mark.parametrize('dim', [1, 2, 3])
@pytest.mark.parametrize('kind', KINDS)
def test_output_and_grad_match_brainstate(kind, dim):
  x = _x(dim)
  results = []
  for lib in (bst, bsn):
    layers = [_make(lib, kind, dim, p) for p in PADS[dim]]

    def run(v):
      outs = [layer(v) for layer in layers] + [layers[-1](v[0])]
      grad = lib.transform.grad(lambda u: jnp.sum(jnp.cos(layers[-1](u)) * 2.))(v)
      return outs + [grad]

    results.append([np.asarray(a) for a in jax.jit(run)(jnp.asarray(x))])
  for ours, theirs in zip(results[1], results[0]):
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_hand_computed_values():
  x = jnp.arange(1., 4.).reshape(3, 1)
  expect = {
    'Reflection': [3, 2, 1, 2, 3, 2],
    'Replication': [1, 1, 1, 2, 3, 3],
    'Zero': [0, 0, 1, 2, 3, 0],
    'Constant': [1.5, 1.5, 1, 2, 3, 1.5],
    'Circular': [2, 3, 1, 2, 3, 1],
  }
  for kind, want in expect.items():
    y = _make(bsn, kind, 1, (2, 1))(x)
    np.testing.assert_array_equal(np.asarray(y)[:, 0], want)


@pytest.mark.parametrize('kind', KINDS)
def test_in_size_out_size_and_attributes(kind):
  ours = getattr(bsn.nn, f'{kind}Pad2d')((1, 2), in_size=(4, 5, 3))
  theirs = getattr(bst.nn, f'{kind}Pad2d')((1, 2), in_size=(4, 5, 3))
  assert ours.in_size == tuple(theirs.in_size) == (4, 5, 3)
  assert ours.out_size == tuple(theirs.out_size) == (6, 9, 3)
  assert list(ours.padding) == list(theirs.padding) == [(1, 1), (2, 2)]
  assert len(ours.states()) == 0


def test_constant_pad_value_attribute_and_numpy_int_padding():
  p = bsn.nn.ConstantPad1d(np.int64(2), value=-3.)
  assert p.value == -3. and p.padding == [(2, 2)]
  assert bsn.nn.ZeroPad2d(jnp.asarray(1)).padding == [(1, 1), (1, 1)]


@pytest.mark.parametrize('kind', KINDS)
def test_bad_padding_length_is_a_value_error(kind):
  for lib in (bst, bsn):
    with pytest.raises(ValueError, match='Padding must have length 2 or 4'):
      getattr(lib.nn, f'{kind}Pad2d')((1, 2, 3))


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('dim', [1, 2, 3])
def test_wrong_rank_is_a_value_error(kind, dim):
  x = jnp.ones((2,) * (dim + 3))
  for lib in (bst, bsn):
    with pytest.raises(ValueError, match=f'Expected {dim + 1}D or {dim + 2}D input'):
      getattr(lib.nn, f'{kind}Pad{dim}d')(1)(x)


def test_padding_inside_a_jitted_brainstate_model():
  class Net(bsn.nn.Module):
    def __init__(self):
      super().__init__()
      self.pad = bsn.nn.CircularPad1d(1)
      self.w = bsn.ParamState(jnp.ones(1))

    def __call__(self, x):
      return self.pad(x) * self.w.value

  net = Net()
  y = bsn.transform.jit(lambda x: net(x))(jnp.ones((2, 3, 1)))
  assert y.shape == (2, 5, 1)
