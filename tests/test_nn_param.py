"""nn.Param / nn.Const: differential tests against BrainState 0.5.4."""

import brainstate
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import brainstate_nnx as bsn

_VAL = np.array([[0.3, 1.2, 2.5], [0.7, 0.05, 4.0]], np.float32)  # constrained values

# transform name -> (args, constrained value to start from)
_TRANSFORMS = {
  'IdentityT': ((), _VAL - 1.0),
  'SigmoidT': ((0.0, 5.0), _VAL),
  'ScaledSigmoidT': ((0.0, 5.0, 2.0), _VAL),
  'SoftplusT': ((0.0,), _VAL),
  'NegSoftplusT': ((5.0,), _VAL),
  'LogT': ((0.0,), _VAL),
  'ExpT': ((-0.5,), _VAL),
  'TanhT': ((0.0, 5.0), _VAL),
  'SoftsignT': ((0.0, 5.0), _VAL),
  'AffineT': ((2.0, -1.0), _VAL),
  'ClipT': ((0.1, 3.0), _VAL),
  'ReluT': ((0.01,), _VAL),
  'PositiveT': ((), _VAL),
  'NegativeT': ((), -_VAL),
  'PowerT': ((0.5,), _VAL),
  'OrderedT': ((), np.sort(_VAL, axis=-1)),
  'SimplexT': ((), _VAL / _VAL.sum(-1, keepdims=True)),
  'UnitVectorT': ((), _VAL / np.linalg.norm(_VAL, axis=-1, keepdims=True)),
}


def _m(v):
  return getattr(v, 'mantissa', v)


def _close(a, b, rtol=1e-5, atol=1e-6):
  np.testing.assert_allclose(np.asarray(_m(a)), np.asarray(_m(b)), rtol=rtol, atol=atol)


def _build(lib, tname, reg=None):
  args, v = _TRANSFORMS[tname]
  t = getattr(lib.nn, tname)(*args)
  r = None if reg is None else getattr(lib.nn, reg[0])(**reg[1])
  return lib.nn.Param(jnp.asarray(v), t=t, reg=r)


def _grads(lib, p):
  """d(sum(sin(value())) + reg_loss) / d(trainable states), with the library's own grad."""
  params = p.states(lib.ParamState)
  f = lib.transform.grad(lambda: _m(jnp.sum(jnp.sin(_m(p.value()))) + _m(p.reg_loss())),
                         grad_states=params, return_value=True)
  g, v = f()
  return {k: g[k] for k in params.keys()}, v


@pytest.mark.parametrize('tname', sorted(_TRANSFORMS))
def test_stored_value_read_value_and_grads_match_brainstate(tname):
  ours, ref = _build(bsn, tname), _build(brainstate, tname)
  assert isinstance(ours.val, bsn.ParamState) and isinstance(ours.val, nnx.Param)
  assert list(ours.states().keys()) == list(ref.states().keys()) == [('val',)]
  _close(ours.val.value, ref.val.value)          # stored unconstrained
  _close(ours.value(), ref.value())              # read constrained
  g1, v1 = _grads(bsn, ours)
  if tname == 'PowerT':  # BrainState's PowerT cannot be traced by its grad; plain JAX can
    v2, g = jax.value_and_grad(lambda u: jnp.sum(jnp.sin(ref.t.forward(u))))(ref.val.value)
    g2 = {('val',): g}
  else:
    g2, v2 = _grads(brainstate, ref)
  _close(v1, v2)
  _close(g1[('val',)], g2[('val',)], rtol=1e-4, atol=1e-5)
  # writes go through the inverse transform
  new = jnp.asarray(_TRANSFORMS[tname][1]) * 0.9 + (0.01 if tname != 'SimplexT' else 0.0)
  if tname == 'SimplexT':
    new = new / new.sum(-1, keepdims=True)
  ours.set_value(new)
  ref.set_value(new)
  _close(ours.val.value, ref.val.value)
  _close(ours.value(), ref.value())
  assert repr(ours) == repr(ref).replace('brainstate.', 'brainstate_nnx.')


_REGS = [
  ('L2Reg', dict(weight=0.1)),
  ('L1Reg', dict(weight=0.3)),
  ('GaussianReg', dict(mean=1.0, std=0.5, fit_hyper=True)),
  ('GammaReg', dict(alpha=3.0, beta=2.0, fit_hyper=True)),
  ('LogNormalReg', dict(mu=0.1, sigma=0.8, fit_hyper=True)),
]


@pytest.mark.parametrize('reg', _REGS, ids=lambda r: r[0])
@pytest.mark.parametrize('tname', ['SoftplusT', 'SigmoidT', 'IdentityT'])
def test_regularized_param_matches_brainstate(tname, reg):
  ours, ref = _build(bsn, tname, reg), _build(brainstate, tname, reg)
  assert sorted(ours.states().keys()) == sorted(ref.states().keys())
  _close(ours.reg_loss(), ref.reg_loss())
  g1, v1 = _grads(bsn, ours)
  g2, v2 = _grads(brainstate, ref)
  _close(v1, v2)
  assert g1.keys() == g2.keys()
  for k in g2:
    _close(g1[k], g2[k], rtol=1e-4, atol=1e-5)
  try:
    ref.reset_to_prior()
  except Exception as e:  # e.g. the prior's mode 0.0 is on the sigmoid's boundary
    with pytest.raises(type(e)):
      ours.reset_to_prior()
    return
  ours.reset_to_prior()
  _close(ours.value(), ref.value())
  _close(ours.val.value, ref.val.value)


def test_fixed_param_and_const_match_brainstate():
  for lib in (bsn, brainstate):
    p = lib.nn.Param(jnp.asarray(_VAL), t=lib.nn.SoftplusT(0.0), reg=lib.nn.L2Reg(1.0),
                     fit=False)
    assert not isinstance(p.val, lib.State) and len(p.states()) == 0
    assert p.reg_loss() == 0.0
    c = lib.nn.Const(jnp.asarray(_VAL))
    assert not c.fit and len(c.states()) == 0
  ours = bsn.nn.Param(jnp.asarray(_VAL), t=bsn.nn.SoftplusT(0.0), fit=False)
  ref = brainstate.nn.Param(jnp.asarray(_VAL), t=brainstate.nn.SoftplusT(0.0), fit=False)
  _close(ours.val, ref.val)
  _close(ours.value(), ref.value())
  ours.set_value(jnp.ones(3))
  ref.set_value(jnp.ones(3))
  _close(ours.val, ref.val)
  ours.clip(0.2, 0.5)
  ref.clip(0.2, 0.5)
  _close(ours.value(), ref.value())
  assert repr(bsn.nn.Const(1.0)) == repr(brainstate.nn.Const(1.0))


def test_clip_and_precompute_match_brainstate():
  def build(lib):
    return lib.nn.Param(jnp.asarray(_VAL), t=lib.nn.SoftplusT(0.0),
                        precompute=lambda v: v * 2.0)
  ours, ref = build(bsn), build(brainstate)
  _close(ours.value(), ref.value())
  ours.clip(min_val=0.5, max_val=4.0)
  ref.clip(min_val=0.5, max_val=4.0)
  _close(ours.val.value, ref.val.value)
  _close(ours.value(), ref.value())


def test_cache_is_invalidated_by_writes():
  p = bsn.nn.Param(jnp.array([1.0, 2.0]), t=bsn.nn.SoftplusT(0.0))
  assert p.cache_stats == {'valid': False, 'has_cached_value': False}
  v = p.value()  # no caching by value() alone (as BrainState)
  assert p.cache_stats['valid'] is False
  cached = p.cache()
  assert p.cache_stats == {'valid': True, 'has_cached_value': True}
  assert p.value() is cached
  p.val.value = p.val.value + 1.0  # a direct state write invalidates it
  assert p.cache_stats['valid'] is False
  np.testing.assert_allclose(p.value(), jax.nn.softplus(jax.nn.softplus(v) * 0 + p.val.value))
  p.cache()
  p.set_value(jnp.array([3.0, 4.0]))
  assert p.cache_stats['valid'] is False
  np.testing.assert_allclose(p.value(), [3.0, 4.0], rtol=1e-6)
  p.cache()
  p.clear_cache()
  assert p.cache_stats == {'valid': False, 'has_cached_value': False}


def test_cache_inside_jit_and_grad_sees_traced_value():
  p = bsn.nn.Param(jnp.array([1.0, 2.0]), t=bsn.nn.SoftplusT(0.0))
  p.cache()  # cached concrete value must not leak into the traced computation

  @bsn.transform.jit
  def f():
    return jnp.sum(p.value() ** 2)

  g = bsn.transform.grad(lambda: jnp.sum(p.value() ** 2), grad_states=p.states())()
  np.testing.assert_allclose(f(), 5.0, rtol=1e-6)
  expected = 2 * jnp.array([1.0, 2.0]) * jax.nn.sigmoid(p.val.value)
  np.testing.assert_allclose(g[('val',)], expected, rtol=1e-6)


def _net_class(lib):
  class Net(lib.nn.Module):
    def __init__(self):
      super().__init__()
      self.tau = lib.nn.Param(jnp.array([5.0, 10.0]), t=lib.nn.SoftplusT(1.0),
                              reg=lib.nn.L2Reg(0.01))
      self.w = lib.nn.Param(jnp.array([[0.5, -0.2], [0.1, 0.3]]), reg=lib.nn.L1Reg(0.1))
      self.k = lib.nn.Const(jnp.array(0.5))

    def __call__(self, x):
      return (x @ self.w.value()) / self.tau.value() * self.k.value()

  return Net


def test_module_training_step_matches_brainstate():
  ours, ref = _net_class(bsn)(), _net_class(brainstate)()
  x = jnp.array([[1.0, 2.0], [-1.0, 0.5]])

  def loss_fn(net):
    return lambda: jnp.sum(net(x) ** 2) + net.reg_loss()

  _close(ours.reg_loss(), ref.reg_loss())
  s1, s2 = ours.states(bsn.ParamState), ref.states(brainstate.ParamState)
  assert list(s1.keys()) == list(s2.keys())
  g1 = bsn.transform.grad(loss_fn(ours), grad_states=s1)()
  g2 = brainstate.transform.grad(loss_fn(ref), grad_states=s2)()
  for k in s2.keys():
    _close(g1[k], g2[k], rtol=1e-5)

  # one SGD step on the unconstrained values with nnx.Optimizer == manual BrainState step
  opt = nnx.Optimizer(ours, optax.sgd(0.1), wrt=nnx.Param)

  @nnx.jit
  def step(model, opt):
    def f(m):
      return jnp.sum(m(x) ** 2) + m.reg_loss()
    grads = nnx.grad(f, argnums=nnx.DiffState(0, nnx.Param))(model)
    opt.update(model, grads)

  step(ours, opt)
  for k, s in s2.items():
    s.value = s.value - 0.1 * g2[k]
  for k in s2.keys():
    _close(s1[k].value, s2[k].value, rtol=1e-5)
  _close(ours.tau.value(), ref.tau.value())


def test_param_with_brainunit_quantities_matches_brainstate():
  import brainunit as u

  def build(lib):
    return (lib.nn.Param(jnp.array([5.0, 20.0]) * u.ms, t=lib.nn.SoftplusT(1.0 * u.ms)),
            lib.nn.Param(jnp.array([-65.0, -50.0]) * u.mV,
                         t=lib.nn.SigmoidT(-80.0 * u.mV, -40.0 * u.mV)))

  for p, q in zip(build(bsn), build(brainstate)):
    _close(p.val.value, q.val.value)
    assert u.get_unit(p.value()) == u.get_unit(q.value())
    _close(p.value(), q.value())
    g1 = bsn.transform.grad(lambda: jnp.sum(_m(p.value()) ** 2), grad_states=p.states())()
    g2 = brainstate.transform.grad(lambda: jnp.sum(_m(q.value()) ** 2), grad_states=q.states())()
    _close(g1[('val',)], g2[('val',)], rtol=1e-5)
    unit = u.get_unit(q.value())
    p.clip(max_val=10.0 * unit)
    q.clip(max_val=10.0 * unit)
    _close(p.val.value, q.val.value)


def test_module_param_precompute_and_param_modules_match_brainstate():
  ours, ref = _net_class(bsn)(), _net_class(brainstate)()
  assert [n for n, _ in ours.named_param_modules()] == [n for n, _ in ref.named_param_modules()]
  with ours.param_precompute(), ref.param_precompute():
    assert all(p.cache_stats['valid'] for p in ours.param_modules())
    _close(ours.tau.value(), ref.tau.value())
  assert not any(p.cache_stats['valid'] for p in ours.param_modules())


def test_param_init_matches_brainstate():
  for lib in (bsn, brainstate):
    assert lib.nn.Param.init(None) is None
    c = lib.nn.Param.init(2.0, sizes=3)
    assert isinstance(c, lib.nn.Const)
    a = lib.nn.Param.init(jnp.ones((2, 3)), sizes=(2, 3))
    np.testing.assert_array_equal(a.value(), np.ones((2, 3)))
    p = lib.nn.Param(jnp.ones(3))
    assert lib.nn.Param.init(p, sizes=[3]) is p
    z = lib.nn.Param.init(lambda s: jnp.zeros(s), sizes=(2, 4))
    np.testing.assert_array_equal(z.value(), np.zeros((2, 4)))
    with pytest.raises(ValueError, match='but we got None'):
      lib.nn.Param.init(None, allow_none=False)
    with pytest.raises(ValueError, match='does not match with the given size'):
      lib.nn.Param.init(jnp.ones((2, 3)), sizes=(2, 4))
    with pytest.raises(TypeError, match='Unknown parameter type'):
      lib.nn.Param.init([1.0, 2.0], sizes=2)
    with pytest.raises(TypeError):
      lib.nn.Param.init('abc', sizes=3)
    with pytest.raises(ValueError, match='Cannot make a size'):
      lib.nn.Param.init(1.0, sizes='abc')


def test_bad_input_errors_match_brainstate():
  for lib in (bsn, brainstate):
    with pytest.raises(TypeError, match='t must be an instance of Transform'):
      lib.nn.Param(1.0, t=jnp.exp)
    with pytest.raises(ValueError, match='Regularization must be None or instance'):
      lib.nn.Param(1.0, reg=0.1)
    with pytest.raises(ValueError, match='must be non-trainable'):
      lib.nn.Const(1.0, fit=True)
    with pytest.raises(AssertionError, match='precompute must be a callable'):
      lib.nn.Param(1.0, precompute=3)


def test_cache_logging(caplog):
  import logging
  p = bsn.nn.Param(jnp.ones(2), t=bsn.nn.SoftplusT(0.0), enable_cache_logging=True)
  with caplog.at_level(logging.INFO):
    p.cache()
    p.value()
    p.set_value(jnp.ones(2) * 2)
  text = caplog.text
  assert 'Cache HIT' in text and 'INVALIDATED' in text and 'set_value' in text


def test_const_and_init_with_quantity_match_brainstate():
  import brainunit as u
  for lib in (bsn, brainstate):
    c = lib.nn.Param.init(jnp.ones(3) * u.mV, sizes=(3,))
    assert isinstance(c, lib.nn.Const) and u.get_unit(c.value()) == u.mV
    c.set_value(jnp.full(3, 2.0) * u.mV)
    np.testing.assert_allclose(u.get_mantissa(c.value()), 2.0)
