"""Parameter transforms: differential tests against BrainState 0.5.4."""

import brainstate
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bsn

# name -> (constructor args, unconstrained sample x, constrained sample y)
_X = np.array([[-3.0, -0.5, 0.0, 0.7, 2.5], [1.0, -1.5, 0.3, 4.0, -0.2]], np.float32)
_CASES = {
  'IdentityT': ((), _X, _X),
  'SigmoidT': ((-1.0, 3.0), _X, np.array([[-0.9, 0.0, 1.0, 2.5, 2.99]], np.float32)),
  'ScaledSigmoidT': ((0.0, 2.0, 2.5), _X, np.array([[0.1, 0.5, 1.0, 1.9]], np.float32)),
  'SoftplusT': ((0.5,), _X, np.array([[0.6, 1.0, 3.0, 30.0]], np.float32)),
  'NegSoftplusT': ((1.0,), _X, np.array([[-20.0, -1.0, 0.0, 0.9]], np.float32)),
  'LogT': ((-1.0,), np.concatenate([_X, [[25.0, 19.0, -30.0, 0.0, 1.0]]]),
           np.array([[-0.5, 0.0, 3.0]], np.float32)),
  'ExpT': ((0.2,), _X, np.array([[0.3, 1.0, 3.0]], np.float32)),
  'TanhT': ((-2.0, 1.0), _X, np.array([[-1.9, -0.5, 0.0, 0.9]], np.float32)),
  'SoftsignT': ((0.0, 4.0), _X, np.array([[0.1, 2.0, 3.9]], np.float32)),
  'AffineT': ((np.array([2.0, -1.0, 0.5, 3.0, -4.0], np.float32), 1.5), _X, _X),
  'ClipT': ((-1.0, 1.0), _X, _X),
  'ReluT': ((0.5,), _X, _X + 3.0),
  'PositiveT': ((), np.concatenate([_X, [[21.0, 0.0, 0.0, 0.0, 0.0]]]),
                np.array([[0.1, 1.0, 7.0]], np.float32)),
  'NegativeT': ((), _X, np.array([[-5.0, -1.0, -0.01]], np.float32)),
  'PowerT': ((0.5,), np.abs(_X) + 0.1, np.array([[0.0, 1.0, 4.0]], np.float32)),
  'PowerT0': ((0.0,), np.abs(_X) + 0.1, np.array([[0.0, 1.0, -2.0]], np.float32)),
  'OrderedT': ((), _X, np.array([[-1.0, 0.0, 0.5, 3.0]], np.float32)),
  'SimplexT': ((), _X, np.array([[0.1, 0.2, 0.3, 0.4], [0.0, 0.5, 0.5, 0.0]], np.float32)),
  'UnitVectorT': ((), _X, _X),
}


def _m(v):
  """BrainState returns dimensionless brainunit Quantities in places; compare mantissas."""
  return getattr(v, 'mantissa', v)


class _Plain:
  """Wraps a BrainState transform so every output is a plain array."""

  def __init__(self, t):
    self.t = t

  def __getattr__(self, name):
    f = getattr(self.t, name)
    return (lambda *a: _m(f(*a))) if callable(f) else f

  def __call__(self, x):
    return _m(self.t(x))

  def __repr__(self):
    return repr(self.t)


def _make(lib, name):
  args = _CASES[name][0]
  cls = 'PowerT' if name == 'PowerT0' else name
  return getattr(lib.nn, cls)(*args)


def _close(a, b, **kw):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6, **kw)


@pytest.mark.parametrize('name', sorted(_CASES))
def test_forward_inverse_grad_match_brainstate(name):
  ours, ref = _make(bsn, name), _Plain(_make(brainstate, name))
  _, x, y = _CASES[name]
  x, y = jnp.asarray(x), jnp.asarray(y)
  _close(ours.forward(x), ref.forward(x))
  _close(ours(x), ref(x))
  _close(ours.inverse(y), ref.inverse(y))
  # round trip through the unconstrained space, and d forward / dx
  _close(ours.inverse(ours.forward(x)), ref.inverse(ref.forward(x)))
  g_ours = jax.grad(lambda v: jnp.sum(jnp.sin(ours.forward(v))))(x)
  g_ref = jax.grad(lambda v: jnp.sum(jnp.sin(ref.forward(v))))(x)
  _close(g_ours, g_ref)
  gi_ours = jax.grad(lambda v: jnp.sum(jnp.tanh(ours.inverse(v))))(y)
  gi_ref = jax.grad(lambda v: jnp.sum(jnp.tanh(ref.inverse(v))))(y)
  np.testing.assert_allclose(gi_ours, gi_ref, rtol=1e-5, atol=1e-5)
  # scalars too
  if name not in ('OrderedT', 'SimplexT', 'UnitVectorT'):  # vector-only maps
    _close(ours.forward(x[0, 3]), ref.forward(x[0, 3]))
  assert repr(ours) == repr(ref)


@pytest.mark.parametrize('name', sorted(_CASES))
def test_log_abs_det_jacobian_matches_brainstate(name):
  ours, ref = _make(bsn, name), _Plain(_make(brainstate, name))
  x = jnp.asarray(_CASES[name][1])
  try:
    expected = ref.log_abs_det_jacobian(x, ref.forward(x))
  except NotImplementedError:
    with pytest.raises(NotImplementedError, match='log_abs_det_jacobian'):
      ours.log_abs_det_jacobian(x, ours.forward(x))
    return
  _close(ours.log_abs_det_jacobian(x, ours.forward(x)), expected)
  _close(ours.log_abs_det_jacobian(x[0, 1], ours.forward(x[0, 1])),
         ref.log_abs_det_jacobian(x[0, 1], ref.forward(x[0, 1])))


def _composite(lib):
  nn = lib.nn
  mask = jnp.array([True, False, True, False, True])
  return {
    'chain': nn.ChainT(nn.AffineT(0.5, -1.0), nn.SoftplusT(0.1), nn.AffineT(3.0, 0.0)),
    'chain_log': nn.ChainT(nn.AffineT(2.0, 0.0), nn.ExpT(0.0)),
    'masked': nn.MaskedT(mask, nn.SoftplusT(0.0)),
    'masked_log': nn.MaskedT(mask, nn.LogT(0.0), safe_value=2.0),
  }


@pytest.mark.parametrize('key', ['chain', 'chain_log', 'masked', 'masked_log'])
def test_composite_transforms_match_brainstate(key):
  ours, ref = _composite(bsn)[key], _Plain(_composite(brainstate)[key])
  x = jnp.asarray(_X)
  y = jnp.abs(x) + 0.5
  _close(ours.forward(x), ref.forward(x))
  _close(ours.inverse(y), ref.inverse(y))
  g = lambda t: jax.grad(lambda v: jnp.sum(t.inverse(v) ** 2))(y)
  _close(g(ours), g(ref))
  assert np.all(np.isfinite(g(ours)))
  if key.startswith('chain'):
    _close(ours.log_abs_det_jacobian(x, ours.forward(x)),
           ref.log_abs_det_jacobian(x, ref.forward(x)))
  assert repr(ours) == repr(ref)


def test_inverse_is_left_inverse_of_forward():
  x = jnp.asarray(_X)
  for t in (bsn.nn.SigmoidT(0.0, 1.0), bsn.nn.SoftplusT(0.0), bsn.nn.TanhT(-1.0, 1.0),
            bsn.nn.NegativeT(), bsn.nn.OrderedT(), bsn.nn.SimplexT(), bsn.nn.PositiveT()):
    np.testing.assert_allclose(t.inverse(t.forward(x)), x, rtol=1e-3, atol=1e-3)
  y = bsn.nn.SimplexT().forward(x)
  np.testing.assert_allclose(jnp.sum(y, -1), 1.0, rtol=1e-6)
  assert y.shape == (2, 6)


def test_bad_input_errors():
  with pytest.raises(ValueError, match='beta must be a positive finite number'):
    bsn.nn.ScaledSigmoidT(0.0, 1.0, beta=0.0)
  with pytest.raises(ValueError, match='beta must be a positive finite number'):
    bsn.nn.ScaledSigmoidT(0.0, 1.0, beta=float('nan'))
  with pytest.raises(ValueError, match='cannot be zero'):
    bsn.nn.AffineT(0.0, 1.0)
  with pytest.raises(TypeError):
    bsn.nn.Transform()  # abstract


@pytest.mark.parametrize('name,args', [
  ('SigmoidT', (-1.0, 2.0)), ('ScaledSigmoidT', (0.0, 2.0, 2.0)), ('SoftplusT', (0.5,)),
  ('NegSoftplusT', (1.0,)), ('LogT', (0.5,)), ('ExpT', (0.0,)), ('TanhT', (0.0, 4.0)),
  ('SoftsignT', (-2.0, 2.0)), ('AffineT', (2.0, 0.5)), ('ClipT', (-1.0, 1.5)),
])
def test_brainunit_bounds_match_brainstate(name, args):
  import brainunit as u
  q = tuple(a * u.mV for a in args[:2]) + args[2:]
  ours, ref = getattr(bsn.nn, name)(*q), getattr(brainstate.nn, name)(*q)
  x = jnp.asarray(_X[0])
  if name == 'ClipT':  # clips values of the bounds' dimension
    x = x * u.volt
  y_ours, y_ref = ours.forward(x), ref.forward(x)
  assert u.get_unit(y_ours) == u.get_unit(y_ref)
  np.testing.assert_allclose(u.get_mantissa(y_ours), u.get_mantissa(y_ref), rtol=1e-6, atol=1e-6)
  if name == 'ClipT':
    return
  else:
    y = y_ref.to(u.volt) if hasattr(y_ref, 'to') else y_ref  # another scale of the same unit
    np.testing.assert_allclose(np.asarray(_m(ours.inverse(y))), np.asarray(_m(ref.inverse(y))),
                               rtol=1e-4, atol=1e-4)
  try:
    expected = ref.log_abs_det_jacobian(x, y_ref)
  except NotImplementedError:
    return
  _close(ours.log_abs_det_jacobian(x, y_ours), expected)


def test_user_transform_subclass():
  class Square(bsn.nn.Transform):
    def forward(self, x):
      return x ** 2

    def inverse(self, y):
      return jnp.sqrt(y)

  t = Square()
  assert float(t(jnp.array(3.0))) == 9.0
  assert repr(t) == 'Square()'
  with pytest.raises(NotImplementedError, match='Square does not implement'):
    t.log_abs_det_jacobian(1.0, 1.0)


@pytest.mark.parametrize('name', ['ExpT', 'SoftsignT', 'LogT', 'TanhT'])
def test_missing_bounds_error_names_the_class_like_brainstate(name):
  # ExpT / SoftsignT used to borrow LogT's / TanhT's __init__, so the
  # TypeError for a forgotten bound named the wrong class.
  with pytest.raises(TypeError) as ours:
    getattr(bsn.nn, name)()
  with pytest.raises(TypeError) as real:
    getattr(brainstate.nn, name)()
  assert str(ours.value) == str(real.value)
  assert f'{name}.__init__()' in str(ours.value)
