"""Activation functions and activation layers, differential against BrainState 0.5.4."""

import pathlib
import subprocess
import sys
import textwrap

import brainstate as bst
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import brainstate_nnx as bsn

X = jnp.asarray(np.random.RandomState(0).randn(3, 6).astype(np.float32) * 2)
X4 = jnp.asarray(np.random.RandomState(1).randn(2, 3, 2, 2).astype(np.float32))


def _close(a, b, rtol=1e-5, atol=1e-6):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------
# functions
# ---------------------------------------------------------------------------

FUNCTION_NAMES = [
  'tanh', 'relu', 'squareplus', 'softplus', 'soft_sign', 'sigmoid', 'silu', 'swish',
  'log_sigmoid', 'elu', 'leaky_relu', 'hard_tanh', 'celu', 'selu', 'gelu', 'glu',
  'logsumexp', 'log_softmax', 'softmax', 'standardize', 'one_hot', 'relu6',
  'hard_sigmoid', 'hard_silu', 'hard_swish', 'hard_shrink', 'rrelu', 'mish',
  'soft_shrink', 'prelu', 'tanh_shrink', 'softmin', 'sparse_plus', 'sparse_sigmoid',
]

# (name, kwargs) variants beyond the defaults
VARIANTS = [
  ('squareplus', dict(b=1.5)),
  ('elu', dict(alpha=0.3)),
  ('leaky_relu', dict(negative_slope=0.2)),
  ('hard_tanh', dict(min_val=-0.5, max_val=2.0)),
  ('celu', dict(alpha=2.0)),
  ('gelu', dict(approximate=False)),
  ('glu', dict(axis=0)),  # shape (4, 6) below splits axis 0
  ('logsumexp', dict(axis=1, keepdims=True)),
  ('logsumexp', dict(axis=0, b=jnp.arange(6.) - 2., return_sign=True)),
  ('log_softmax', dict(axis=0)),
  ('softmax', dict(axis=(0, 1))),
  ('softmax', dict(where=X > -1.)),
  ('log_softmax', dict(where=X > -1.)),
  ('standardize', dict(axis=0, epsilon=1e-3)),
  ('standardize', dict(variance=jnp.full((3, 1), 2.))),
  ('hard_shrink', dict(lambd=1.0)),
  ('soft_shrink', dict(lambd=0.1)),
  ('prelu', dict(a=0.7)),
  ('rrelu', dict(lower=0.3, upper=0.5)),
  ('softmin', dict(axis=0)),
]


def test_every_brainstate_function_is_exported():
  assert sorted(FUNCTION_NAMES) == sorted(bst.nn._activations.__all__)
  for name in FUNCTION_NAMES:
    assert callable(getattr(bsn.nn, name)), name
  assert bsn.nn.swish is bsn.nn.silu and bsn.nn.hard_swish is bsn.nn.hard_silu


def _call(lib, name, x, **kw):
  if name in ('rrelu',):
    lib.random.seed(7)
  return getattr(lib.nn, name)(x, **kw)


def test_function_values_and_grads():
  names = [n for n in FUNCTION_NAMES if n not in ('one_hot', 'rrelu')]

  # all values and gradients in one compiled function per library (few compiles)
  def run(lib):
    def all_of(v):
      out = {}
      for name in names:
        fn = getattr(lib.nn, name)
        out[name] = (fn(v), jax.grad(lambda w: jnp.sum(jnp.sin(fn(w))))(v))
      return out
    return jax.jit(all_of)(X)

  ref, ours = run(bst), run(bsn)
  for name in names:
    (y_ref, g_ref), (y, g) = ref[name], ours[name]
    assert y.shape == y_ref.shape and y.dtype == y_ref.dtype, name
    _close(y, y_ref)
    _close(g, g_ref)
  for lib in (bst, bsn):
    lib.random.seed(2)
  _close(jax.grad(lambda w: jnp.sum(bsn.nn.rrelu(w)))(X),
         jax.grad(lambda w: jnp.sum(bst.nn.rrelu(w)))(X))


@pytest.mark.parametrize('name,kw', VARIANTS, ids=[f'{n}-{i}' for i, (n, _) in enumerate(VARIANTS)])
def test_function_keyword_variants(name, kw):
  x = X if name != 'glu' else jnp.concatenate([X[:2], X[:2]], axis=0)
  ref = _call(bst, name, x, **kw)
  ours = _call(bsn, name, x, **kw)
  jax.tree.map(_close, ours, ref)


def test_one_hot():
  idx = jnp.array([0, 2, 5, -1, 1])
  for kw in (dict(), dict(axis=0), dict(dtype=jnp.int32)):
    ref = bst.nn.one_hot(idx, 4, **kw)
    ours = bsn.nn.one_hot(idx, 4, **kw)
    assert ours.dtype == ref.dtype
    np.testing.assert_array_equal(ours, ref)


def test_numpy_and_scalar_inputs_give_jax_arrays():
  x = np.asarray(X)
  for name in ('tanh', 'relu', 'prelu', 'soft_shrink', 'leaky_relu', 'tanh_shrink'):
    ours = getattr(bsn.nn, name)(x)
    assert isinstance(ours, jax.Array)
    _close(ours, getattr(bst.nn, name)(x))
  _close(bsn.nn.sigmoid(0.), 0.5)


def test_rrelu_draws_from_the_default_stream_like_brainstate():
  bst.random.seed(3)
  bsn.random.seed(3)
  a = [bst.nn.rrelu(X) for _ in range(2)]
  b = [bsn.nn.rrelu(X) for _ in range(2)]
  _close(a[0], b[0])
  _close(a[1], b[1])
  assert not np.allclose(b[0], b[1])  # a new slope per call
  neg = np.asarray(X) < 0
  slope = np.asarray(b[0])[neg] / np.asarray(X)[neg]
  assert np.all((slope >= 0.125) & (slope <= 1 / 3))


def test_functions_under_jit_and_vmap():
  f = bsn.transform.jit(lambda v: bsn.nn.gelu(v) + bsn.nn.softmax(v))
  _close(f(X), bst.nn.gelu(X) + bst.nn.softmax(X))
  bsn.random.seed(0)
  bst.random.seed(0)
  g = bsn.transform.jit(bsn.nn.rrelu)
  h = bst.transform.jit(bst.nn.rrelu)
  _close(g(X), h(X))
  _close(g(X), h(X))  # the key advances inside jit as in BrainState


# ---------------------------------------------------------------------------
# brainunit Quantities (optional dependency)
# ---------------------------------------------------------------------------

KEEP_UNIT = ['relu', 'leaky_relu', 'prelu', 'rrelu']


@pytest.mark.parametrize('name', KEEP_UNIT)
def test_unit_preserving_functions(name):
  q = X * u.mV
  ref = _call(bst, name, q)
  ours = _call(bsn, name, q)
  assert isinstance(ours, u.Quantity) and ours.unit == u.mV
  _close(ours.mantissa, ref.mantissa)


def test_hard_tanh_bounds_in_the_unit_of_x():
  q = X * u.mV
  ref = bst.nn.hard_tanh(q, -0.5 * u.mV, 1. * u.mV)
  ours = bsn.nn.hard_tanh(q, -0.5 * u.mV, 1. * u.mV)
  assert ours.unit == u.mV
  _close(ours.mantissa, ref.mantissa)
  # bounds in another unit of the same dimension are converted
  _close(bsn.nn.hard_tanh(q, -0.0005 * u.volt, 0.001 * u.volt).mantissa, ref.mantissa)
  with pytest.raises(Exception):
    bsn.nn.hard_tanh(q)  # unitless bounds for a voltage


@pytest.mark.parametrize('name', ['tanh', 'sigmoid', 'softplus', 'gelu', 'elu', 'mish',
                                  'tanh_shrink', 'relu6', 'softmax', 'soft_shrink'])
def test_dimensional_quantity_is_rejected(name):
  q = X * u.mV
  with pytest.raises(TypeError, match='dimensionless'):
    getattr(bsn.nn, name)(q)
  with pytest.raises(Exception):
    getattr(bst.nn, name)(q)


@pytest.mark.parametrize('name', ['tanh', 'sigmoid', 'gelu', 'mish', 'tanh_shrink', 'relu6',
                                  'soft_shrink', 'hard_tanh', 'softmin', 'relu', 'rrelu'])
def test_dimensionless_scaled_quantity_matches_brainstate(name):
  q = X * u.mV / u.volt  # dimensionless, scale 1e-3
  ref = _call(bst, name, q)
  ours = _call(bsn, name, q)
  _close(ours, ref)


def test_units_are_optional():
  """Without brainunit/saiunit importable, the functions and layers run on arrays."""
  code = textwrap.dedent('''
    import sys
    sys.modules['brainunit'] = None
    sys.modules['saiunit'] = None
    import jax.numpy as jnp
    import brainstate_nnx as bs
    x = jnp.array([-2., 0.5, 3.])
    print(bs.nn.relu(x).tolist(), bs.nn.hard_tanh(x).tolist(),
          bs.nn.Threshold(0.6, 9.)(x).tolist(), bs.nn.LSTMCell(2, 3).num_out)
  ''')
  root = str(pathlib.Path(__file__).resolve().parents[1])
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=root,
                       env={'JAX_PLATFORMS': 'cpu', 'PYTHONPATH': root})
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.split() == ['[0.0,', '0.5,', '3.0]', '[-1.0,', '0.5,', '1.0]',
                                '[9.0,', '9.0,', '3.0]', '3']


# ---------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------

LAYERS = [
  ('Threshold', (0.1, 2.0)), ('ReLU', ()), ('RReLU', ()), ('RReLU', (0.2, 0.4)),
  ('Hardtanh', ()), ('Hardtanh', (-2., 0.5)), ('ReLU6', ()), ('Sigmoid', ()),
  ('Hardsigmoid', ()), ('Tanh', ()), ('SiLU', ()), ('Mish', ()), ('Hardswish', ()),
  ('ELU', ()), ('ELU', (0.5,)), ('CELU', ()), ('CELU', (2.,)), ('SELU', ()), ('GLU', ()),
  ('GLU', (2,)), ('GELU', ()), ('GELU', (True,)), ('Hardshrink', ()), ('Hardshrink', (1.,)),
  ('LeakyReLU', ()), ('LeakyReLU', (0.3,)), ('LogSigmoid', ()), ('Softplus', ()),
  ('Softshrink', ()), ('Softshrink', (0.2,)), ('PReLU', ()), ('PReLU', (6, 0.1)),
  ('Softsign', ()), ('Tanhshrink', ()), ('Softmin', ()), ('Softmin', (1,)), ('Softmax', ()),
  ('Softmax', (0,)), ('Softmax2d', ()), ('LogSoftmax', ()), ('LogSoftmax', (0,)),
  ('Identity', ()),
]


def test_every_brainstate_layer_is_exported():
  names = set(bst.nn._elementwise.__all__)
  assert names == {n for n, _ in LAYERS} | {'SpikeBitwise'}
  for n in names:
    assert issubclass(getattr(bsn.nn, n), bsn.nn.ElementWiseBlock)
    assert issubclass(getattr(bsn.nn, n), nnx.Module)


def _layers(lib):
  lib.random.seed(11)
  return [getattr(lib.nn, name)(*args) for name, args in LAYERS]


def _inputs(name):
  return X4 if name in ('Softmax2d', 'GLU') else X


def test_layers_match_brainstate():
  refs, ours = _layers(bst), _layers(bsn)
  for (name, _), ref, mine in zip(LAYERS, refs, ours):
    assert repr(mine) == repr(ref), name
    assert list(mine.states().keys()) == list(ref.states().keys()), name
    for k in ref.states():
      np.testing.assert_array_equal(mine.states()[k].value, ref.states()[k].value)
    x = _inputs(name)
    bst.random.seed(5)
    bsn.random.seed(5)
    y_ref, y = ref(x), mine(x)
    assert y.shape == y_ref.shape, name
    _close(y, y_ref)


def _layer_grads(lib, layers):
  """Input and parameter gradients of every layer: one ``lib.transform.grad``
  of the summed losses (each layer has its own input), in one jit."""
  params = {}
  for i, layer in enumerate(layers):
    for k, v in layer.states(lib.ParamState).items():
      params[(i,) + k] = v

  def total(xs):
    return sum(jnp.sum(jnp.sin(layer(x))) for layer, x in zip(layers, xs))

  lib.random.seed(5)
  grad_fn = lib.transform.grad(total, grad_states=params, argnums=0)
  return lib.transform.jit(grad_fn)([_inputs(n) for n, _ in LAYERS])


def test_layer_gradients_match_brainstate():
  gp_ref, gx_ref = _layer_grads(bst, _layers(bst))
  gp, gx = _layer_grads(bsn, _layers(bsn))
  assert len(gx) == len(LAYERS)
  for (name, _), a, b in zip(LAYERS, gx, gx_ref):
    _close(a, b)
  assert set(gp.keys()) == set(gp_ref.keys()) and len(gp) == 2  # the two PReLUs
  for k in gp:
    _close(gp[k], gp_ref[k])


def test_prelu_parameters_and_broadcast():
  layer = bsn.nn.PReLU(num_parameters=6, init=0.1, dtype=jnp.float16)
  assert layer.weight.value.dtype == jnp.float16
  assert isinstance(layer.weight, nnx.Param)
  ref = bst.nn.PReLU(num_parameters=6, init=0.1, dtype=jnp.float16)
  _close(layer(X), ref(X), rtol=1e-3)


def test_layer_errors():
  with pytest.raises(ValueError, match='greater than min_val'):
    bsn.nn.Hardtanh(1., 1.)
  with pytest.raises(ValueError):
    bst.nn.Hardtanh(1., 1.)
  with pytest.raises(ValueError, match='3D'):
    bsn.nn.Softmax2d()(X)
  with pytest.raises(NotImplementedError, match='xor'):
    bsn.nn.SpikeBitwise('nand')(X, X)


def test_spike_bitwise_hand_computed():
  x = jnp.array([1., 0., 1., 0.])
  y = jnp.array([1., 1., 0., 0.])
  expect = {
    'add': [2, 1, 1, 0], 'and': [1, 0, 0, 0], 'iand': [0, 1, 0, 0],
    'or': [1, 1, 1, 0], 'xor': [0, 1, 1, 0], 'ixor': [0, 1, 1, 0],
  }
  for op, e in expect.items():
    layer = bsn.nn.SpikeBitwise(op=op, name='s')
    np.testing.assert_array_equal(layer(x, y), np.array(e, np.float32))
    assert layer.name == 's'


def test_threshold_quantity_like_brainstate():
  q = jnp.array([0.05, 0.2, 0.5]) * u.mV
  ref = bst.nn.Threshold(0.1 * u.mV, 0.0 * u.mV)(q)
  ours = bsn.nn.Threshold(0.1 * u.mV, 0.0 * u.mV)(q)
  assert ours.unit == u.mV
  _close(ours.mantissa, ref.mantissa)
  np.testing.assert_array_equal(bsn.nn.Threshold(1, -1)(jnp.arange(4)), [-1, -1, 2, 3])


def test_layers_under_jit_and_in_sequential():
  seq = bsn.nn.Sequential(bsn.nn.Flatten(in_size=(6,)), bsn.nn.GELU(), bsn.nn.Softmax())
  assert seq.out_size == (6,)
  f = bsn.transform.jit(seq)
  _close(f(X), bst.nn.Softmax()(bst.nn.GELU()(X)))


def test_prelu_is_a_flax_citizen():
  class Net(nnx.Module):  # a plain nnx.Module holding a brainstate_nnx layer
    def __init__(self):
      self.act = bsn.nn.PReLU(num_parameters=6)

    def __call__(self, x):
      return self.act(x)

  net = Net()
  params = nnx.state(net, nnx.Param)
  assert [tuple(k) for k, _ in nnx.to_flat_state(params)] == [('act', 'weight')]
  opt = nnx.Optimizer(net, optax.sgd(0.1), wrt=nnx.Param)

  @nnx.jit
  def step(net, opt, x):
    loss, grads = nnx.value_and_grad(lambda m: jnp.sum(m(x) ** 2))(net)
    opt.update(net, grads)
    return loss

  w0 = np.asarray(net.act.weight.value)
  step(net, opt, X)
  neg = np.asarray(X) < 0
  expect = w0 - 0.1 * np.sum(2 * (0.25 * np.asarray(X) ** 2) * neg, axis=0)
  _close(net.act.weight.value, expect)


def test_rrelu_layer_with_a_model_owned_stream():
  """RReLU(rngs=...) draws from its own stream (as the dropout layers), so it
  also works inside a Flax training step; the default stream does not."""
  x = -jnp.abs(X)
  # an int seed: the slopes of RandomState(seed).uniform
  y = bsn.nn.RReLU(0.2, 0.4, rngs=3)(x)
  a = bsn.random.RandomState(3).uniform(0.2, 0.4, size=x.shape, dtype=x.dtype)
  _close(y, a * x)

  class Net(nnx.Module):
    def __init__(self, rngs):
      self.act = bsn.nn.RReLU(rngs=rngs)

    def __call__(self, v):
      return self.act(v)

  @nnx.jit
  def run(net, v):
    return nnx.value_and_grad(lambda m: jnp.sum(m(v) ** 2))(net)[0]

  for rngs in (nnx.Rngs(dropout=0), 5):
    net = Net(rngs)
    first, second = float(run(net, x)), float(run(net, x))
    assert first != second  # the stream advanced through nnx.jit
  with pytest.raises(bsn.TraceContextError, match='own random stre'):
    run(Net(None), x)
