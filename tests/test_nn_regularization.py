"""Regularizers: differential tests against BrainState 0.5.4 (loss, gradients, priors)."""

import brainstate
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bsn

_RNG = np.random.RandomState(0)
_V = _RNG.randn(3, 4).astype(np.float32)          # generic values
_POS = (np.abs(_V) + 0.05).astype(np.float32)     # positive values
_UNIT = (1 / (1 + np.exp(-_V))).astype(np.float32)  # values in (0, 1)

# (class, kwargs, input)
_CASES = [
  ('GaussianReg', dict(mean=0.5, std=2.0, weight=0.3), _V),
  ('GaussianReg', dict(mean=np.float32([0.1, -0.2, 0.3, 0.0]), std=0.7), _V),
  ('L1Reg', dict(weight=0.1), _V),
  ('L2Reg', dict(weight=0.2), _V),
  ('L2Reg', dict(weight=-0.2), _V),
  ('ElasticNetReg', dict(l1_weight=0.3, l2_weight=0.7, alpha=0.25), _V),
  ('HuberReg', dict(weight=2.0, delta=0.5), _V),
  ('GroupLassoReg', dict(weight=0.5, group_size=5), _V),
  ('GroupLassoReg', dict(group_size=3), _V),
  ('TotalVariationReg', dict(weight=0.5, order=1), _V),
  ('TotalVariationReg', dict(order=2), _V),
  ('MaxNormReg', dict(weight=3.0, max_value=1.5), _V),
  ('EntropyReg', dict(weight=0.5), _V),
  ('EntropyReg', dict(maximize=False), _V),
  ('OrthogonalReg', dict(weight=0.5), _V),
  ('OrthogonalReg', dict(), _V[:2, :2].reshape(-1)),
  ('OrthogonalReg', dict(), _V[0, :3]),
  ('OrthogonalReg', dict(), _V.reshape(3, 2, 2)),
  ('OrthogonalReg', dict(), _V[1, 1]),
  ('SpectralNormReg', dict(weight=2.0, max_value=0.5), _V),
  ('SpectralNormReg', dict(max_value=0.5), _V[0]),
  ('SpectralNormReg', dict(max_value=0.5), _V.reshape(3, 2, 2)),
  ('StudentTReg', dict(weight=0.5, df=4.0, scale=2.0), _V),
  ('CauchyReg', dict(weight=0.5, scale=0.5), _V),
  ('UniformReg', dict(weight=2.0, lower=-0.5, upper=0.8), _V),
  ('LogNormalReg', dict(weight=0.5, mu=0.2, sigma=0.7), _POS),
  ('ExponentialReg', dict(weight=0.5, rate=2.0), _V),
  ('GammaReg', dict(weight=0.5, alpha=3.0, beta=2.0), _POS),
  ('BetaReg', dict(weight=0.5, a=2.0, b=3.0), _UNIT),
  ('HorseshoeReg', dict(weight=0.5, tau=0.5), _V),
  ('InverseGammaReg', dict(weight=0.5, alpha=3.0, beta=2.0), _POS),
  ('LogUniformReg', dict(weight=0.5, lower=0.1, upper=2.0), _POS),
  ('SpikeAndSlabReg', dict(weight=0.5, spike_scale=0.1, slab_scale=2.0, pi=0.3), _V),
  ('DirichletReg', dict(weight=0.5, alpha=2.0), _V),
]
_NO_HYPER = {'L1Reg', 'L2Reg', 'GroupLassoReg', 'TotalVariationReg', 'EntropyReg',
             'OrthogonalReg'}
_SEEN = set()
_GRAD_CASES = []  # fit_hyper=True once per class that has trainable hyper-parameters
for _i, (_c, _k, _x) in enumerate(_CASES):
  _GRAD_CASES.append(pytest.param(_c, _k, _x, False, id=f'{_c}-{_i}'))
  if _c not in _NO_HYPER and _c not in _SEEN:
    _GRAD_CASES.append(pytest.param(_c, _k, _x, True, id=f'{_c}-{_i}-fit_hyper'))
  _SEEN.add(_c)


def _m(v):
  return getattr(v, 'mantissa', v)


def _close(a, b, rtol=1e-5, atol=1e-6):
  np.testing.assert_allclose(np.asarray(_m(a)), np.asarray(_m(b)), rtol=rtol, atol=atol)


def _hyper_grads(lib, reg, x):
  """Gradient of ``loss(x)`` w.r.t. x and the trainable hyper-parameters (each lib's grad)."""
  params = reg.states(lib.ParamState)
  f = lib.transform.grad(lambda v: _m(reg.loss(v)), grad_states=params, argnums=0,
                         return_value=True)
  if not params:  # no trainable hyper-parameters: d/dx only
    if lib is brainstate:  # (its OrthogonalReg cannot be traced on 1-D input; plain JAX can)
      value, g_x = jax.value_and_grad(lambda v: _m(reg.loss(v)))(jnp.asarray(x))
    else:
      g_x, value = f(jnp.asarray(x))
    return {}, g_x, value
  (g_states, g_x), value = f(jnp.asarray(x))
  return {k: g_states[k] for k in params.keys()}, g_x, value


@pytest.mark.parametrize('name,kwargs,x,fit_hyper', _GRAD_CASES)
def test_loss_and_gradients_match_brainstate(name, kwargs, x, fit_hyper):
  ours = getattr(bsn.nn, name)(**kwargs, fit_hyper=fit_hyper)
  ref = getattr(brainstate.nn, name)(**kwargs, fit_hyper=fit_hyper)
  assert sorted(ours.states().keys()) == sorted(ref.states().keys())
  for k, s in ref.states().items():
    _close(ours.states()[k].value, s.value)
  assert bool(ours.states()) == (fit_hyper and name not in _NO_HYPER)
  x = jnp.asarray(x)
  _close(ours.loss(x), ref.loss(x))
  g_ours, gx_ours, v_ours = _hyper_grads(bsn, ours, x)
  g_ref, gx_ref, v_ref = _hyper_grads(brainstate, ref, x)
  _close(v_ours, v_ref)
  _close(gx_ours, gx_ref, rtol=1e-4, atol=1e-5)
  assert g_ours.keys() == g_ref.keys()
  for k in g_ref:
    _close(g_ours[k], g_ref[k], rtol=1e-4, atol=1e-5)
  _close(ours.reset_value(), ref.reset_value())


_SAMPLE_CASES = [(c, (3, 4)) for c in sorted({c for c, _, _ in _CASES})] + [
  ('OrthogonalReg', (5,)), ('OrthogonalReg', (2, 2, 2)), ('SpectralNormReg', 6),
  ('TotalVariationReg', (2, 3, 2)), ('ChainedReg', [4])]


@pytest.mark.parametrize('name,shape', _SAMPLE_CASES, ids=str)
def test_sample_init_matches_brainstate_for_same_seed(name, shape):
  if name == 'ChainedReg':
    ours = bsn.nn.ChainedReg(bsn.nn.L1Reg(2.0), bsn.nn.L2Reg())
    ref = brainstate.nn.ChainedReg(brainstate.nn.L1Reg(2.0), brainstate.nn.L2Reg())
  else:
    kwargs = next(k for c, k, _ in _CASES if c == name)
    ours, ref = getattr(bsn.nn, name)(**kwargs), getattr(brainstate.nn, name)(**kwargs)
  brainstate.random.seed(7)
  bsn.random.seed(7)
  a, b = ours.sample_init(shape), ref.sample_init(shape)
  assert np.shape(a) == np.shape(_m(b))
  _close(a, b, rtol=1e-4, atol=1e-5)
  # the prior is part of the state of the default generator: next draws agree too
  _close(bsn.random.rand(2), brainstate.random.rand(2))


def test_chained_reg_matches_brainstate():
  def build(lib):
    nn = lib.nn
    return nn.ChainedReg(nn.L1Reg(0.1), nn.GaussianReg(0.0, 1.0, fit_hyper=True),
                         nn.TotalVariationReg(0.5), weight=0.5)

  ours, ref = build(bsn), build(brainstate)
  x = jnp.asarray(_V)
  _close(ours.loss(x), ref.loss(x))
  g1, gx1, _ = _hyper_grads(bsn, ours, x)
  g2, gx2, _ = _hyper_grads(brainstate, ref, x)
  _close(gx1, gx2)
  assert len(g1) == len(g2) == 2
  for a, b in zip(sorted(g1.items(), key=lambda kv: str(kv[0])),
                  sorted(g2.items(), key=lambda kv: str(kv[0]))):
    _close(a[1], b[1])
  _close(ours.reset_value(), ref.reset_value())
  empty, empty_ref = bsn.nn.ChainedReg(), brainstate.nn.ChainedReg()
  assert empty.loss(x) == empty_ref.loss(x) == 0.0
  np.testing.assert_array_equal(empty.sample_init(3), empty_ref.sample_init(3))


def test_hyper_parameters_are_nnx_params():
  from flax import nnx
  reg = bsn.nn.GammaReg(alpha=3.0, beta=2.0, fit_hyper=True)
  params = nnx.state(reg, nnx.Param)
  assert set(params.keys()) == {'alpha', 'beta'}
  assert isinstance(reg, nnx.Module)
  assert nnx.state(bsn.nn.GammaReg(), nnx.Param) == nnx.State({})


def test_loss_under_jit_and_vmap():
  reg = bsn.nn.HuberReg(delta=0.5, fit_hyper=True)
  x = jnp.asarray(_V)
  f = bsn.transform.jit(reg.loss)
  _close(f(x), reg.loss(x))
  per_row = jax.vmap(reg.loss)(x)
  _close(per_row, [reg.loss(r) for r in x])


def test_bad_input_errors():
  with pytest.raises(ValueError, match='group_size must be a positive integer'):
    bsn.nn.GroupLassoReg(group_size=0)
  with pytest.raises(TypeError, match='group_size must be an int'):
    bsn.nn.GroupLassoReg(group_size=2.0)
  with pytest.raises(ValueError, match='order must be 1 or 2'):
    bsn.nn.TotalVariationReg(order=3)
  with pytest.raises(ValueError, match='size must be int, tuple, or list'):
    bsn.nn.L2Reg().sample_init('3')
  with pytest.raises(TypeError, match='Regularization instances'):
    bsn.nn.ChainedReg(bsn.nn.L1Reg(), 'l2')
  with pytest.raises(NotImplementedError, match='must implement loss'):
    bsn.nn.Regularization().loss(1.0)
