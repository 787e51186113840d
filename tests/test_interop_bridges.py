"""brainstate_nnx.interop: Flax NNX, Flax linen, Equinox and BrainState.

Every conversion is checked by outputs (and gradients where it trains)
against the source model run by its own framework.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen, nnx

import brainstate
import brainstate_nnx as bsn

interop = bsn.interop
X = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)


class MLP(bsn.nn.Module):
  def __init__(self):
    super().__init__()
    self.l1 = bsn.nn.Linear(3, 5)
    self.l2 = bsn.nn.Linear(5, 2)
    self.calls = bsn.ShortTermState(jnp.zeros((), jnp.int32))

  def __call__(self, x):
    self.calls.value = self.calls.value + 1
    return self.l2(jnp.tanh(self.l1(x)))


# -- nnx ------------------------------------------------------------------------

def test_to_nnx_and_from_nnx_are_zero_copy_for_our_models():
  m = MLP()
  assert interop.to_nnx(m) is m and interop.from_nnx(m) is m
  graphdef, state = nnx.split(interop.to_nnx(m))
  np.testing.assert_allclose(nnx.merge(graphdef, state)(X), m(X), rtol=1e-6)


def test_flax_layers_convert_with_equal_outputs():
  rngs = nnx.Rngs(0)
  lin = nnx.Linear(3, 4, rngs=rngs)
  ours = interop.from_nnx(lin)
  assert type(ours) is bsn.nn.Linear
  np.testing.assert_allclose(ours(X), lin(X), rtol=1e-6)

  ln = nnx.LayerNorm(3, rngs=rngs)
  ln.scale[...] = jnp.array([1.0, 2.0, 3.0])
  ln.bias[...] = jnp.array([0.1, 0.2, 0.3])
  ours_ln = interop.from_nnx(ln)
  assert type(ours_ln) is bsn.nn.LayerNorm
  np.testing.assert_allclose(ours_ln(X), ln(X), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(interop.to_flax_layers(ours_ln)(X), ln(X), rtol=1e-5, atol=1e-6)

  emb = nnx.Embed(7, 3, rngs=rngs)
  idx = jnp.array([0, 3, 6])
  np.testing.assert_allclose(interop.from_nnx(emb)(idx), emb(idx))

  conv = nnx.Conv(3, 4, (3, 3), rngs=rngs)
  img = jax.random.normal(jax.random.key(1), (2, 6, 6, 3))
  with pytest.raises(interop.MissingShapeError):
    interop.from_nnx(conv)
  ours_conv = interop.from_nnx(conv, sample_input=(6, 6, 3))
  assert type(ours_conv) is bsn.nn.Conv2d
  np.testing.assert_allclose(ours_conv(img), conv(img), rtol=1e-5, atol=1e-6)

  seq = nnx.Sequential(nnx.Linear(3, 5, rngs=rngs), jax.nn.relu, nnx.Linear(5, 2, rngs=rngs))
  ours_seq = interop.from_nnx(seq)
  assert type(ours_seq) is bsn.nn.Sequential
  np.testing.assert_allclose(ours_seq(X), seq(X), rtol=1e-6)


def test_lstm_cell_converts_both_ways():
  cell = nnx.LSTMCell(3, 4, rngs=nnx.Rngs(0))
  ours = interop.from_nnx(cell)
  ours.init_state(4)
  carry = cell.initialize_carry((4, 3), rngs=nnx.Rngs(0))
  for t in range(3):
    carry, y = cell(carry, X * (t + 1))
    np.testing.assert_allclose(ours(X * (t + 1)), y, rtol=1e-5, atol=1e-6)
  back = interop.to_flax_layers(ours)
  carry2 = back.initialize_carry((4, 3), rngs=nnx.Rngs(0))
  _, y2 = back(carry2, X)
  _, y1 = cell(cell.initialize_carry((4, 3), rngs=nnx.Rngs(0)), X)
  np.testing.assert_allclose(y2, y1, rtol=1e-5, atol=1e-6)


def test_to_flax_layers_round_trip_and_errors():
  bsn.random.seed(0)
  seq = bsn.nn.Sequential(bsn.nn.Linear(3, 5), jax.nn.relu, bsn.nn.Linear(5, 2))
  flax_seq = interop.to_flax_layers(seq)
  assert isinstance(flax_seq, nnx.Sequential) and isinstance(flax_seq.layers[0], nnx.Linear)
  np.testing.assert_allclose(flax_seq(X), seq(X), rtol=1e-6)
  with pytest.raises(interop.UnmappedLayerError, match='to_nnx'):
    interop.to_flax_layers(MLP())


def test_other_nnx_modules_are_adopted_and_tracked():
  class Custom(nnx.Module):
    def __init__(self):
      self.w = nnx.Param(jnp.ones(3))

    def __call__(self, x):
      return x * self.w[...]

  c = interop.from_nnx(Custom())
  assert isinstance(c.w, bsn.State) and isinstance(c.w, nnx.Param)

  @bsn.transform.jit
  def f(x):
    return c(x)

  np.testing.assert_allclose(f(jnp.ones(3)), jnp.ones(3))
  c.w.value = jnp.full(3, 2.0)
  np.testing.assert_allclose(f(jnp.ones(3)), jnp.full(3, 2.0))   # not a stale constant


# -- linen ----------------------------------------------------------------------

def test_to_linen_runs_the_model_and_differentiates():
  bsn.random.seed(1)
  m = MLP()
  module, variables = interop.to_linen(m)
  assert set(variables) == {'params', 'ShortTermState'}
  y, updates = jax.jit(lambda v, x: module.apply(v, x, mutable=['ShortTermState']))(variables, X)
  np.testing.assert_allclose(y, m(X), rtol=1e-6)
  assert int(updates['ShortTermState']['calls']) == 1
  # gradients through linen equal brainstate_nnx's
  loss_linen = lambda p: jnp.sum(module.apply({**variables, 'params': p}, X,
                                              mutable=['ShortTermState'])[0] ** 2)
  g_linen = jax.grad(loss_linen)(variables['params'])
  params = m.states(bsn.ParamState)
  g_ours = bsn.transform.grad(lambda: jnp.sum(m(X) ** 2), params)()
  for path, g in g_ours.items():
    key = '.'.join(map(str, path))
    for k in g:
      np.testing.assert_allclose(g_linen[key][k], g[k], rtol=1e-5, atol=1e-6)
  m2 = MLP()
  assert m2.l1.weight is not m.l1.weight     # the model itself was not touched by apply


def test_from_linen_loads_variables_and_trains_with_our_transforms():
  dense = linen.Sequential([linen.Dense(5), jnp.tanh, linen.Dense(2)])
  variables = dense.init(jax.random.key(0), X)
  ours = interop.from_linen(dense, variables, sample_input=X)
  np.testing.assert_allclose(ours(X), dense.apply(variables, X), rtol=1e-6)
  params = bsn.nn.states(ours, nnx.Param)
  assert list(params) == [('params',)]

  loss = lambda p: jnp.mean(dense.apply(p, X) ** 2)
  ref = variables
  tx = optax.sgd(0.1)
  opt = bsn.optim.OptaxOptimizer(tx, params)

  @bsn.transform.jit
  def step():
    opt.update(bsn.transform.grad(lambda: jnp.mean(ours(X) ** 2), params)())

  for _ in range(2):
    step()
    g = jax.grad(loss)(ref)
    ref = jax.tree.map(lambda p, gg: p - 0.1 * gg, ref, g)
  np.testing.assert_allclose(ours(X), dense.apply(ref, X), rtol=1e-5, atol=1e-6)
  with pytest.raises(interop.ConversionError):
    interop.from_linen(dense, {'params': {'Dense_0': {'kernel': jnp.ones((2, 2))}}}, sample_input=X)
  # a collection other than params is carried as a State and updated by calls
  bn = linen.BatchNorm(use_running_average=False)
  bn_vars = bn.init(jax.random.key(0), X)
  ours_bn = interop.from_linen(bn, bn_vars)
  y_ref, upd = bn.apply(bn_vars, X, mutable=['batch_stats'])
  np.testing.assert_allclose(jax.jit(lambda: 0)() + ours_bn(X), y_ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(ours_bn.collections['batch_stats'].value['mean'],
                             upd['batch_stats']['mean'], rtol=1e-6)


# -- equinox ----------------------------------------------------------------------

def test_from_equinox_trains_like_equinox():
  eqx = pytest.importorskip('equinox')
  net = eqx.nn.MLP(3, 2, 4, 1, key=jax.random.key(0))
  ours = interop.from_equinox(net)
  x = X[0]
  np.testing.assert_allclose(ours(x), net(x), rtol=1e-6)

  def loss_eqx(model):
    return jnp.sum(jax.vmap(model)(X) ** 2)

  g_eqx = eqx.filter_grad(loss_eqx)(net)
  g_ours = bsn.transform.grad(lambda: jnp.sum(jax.vmap(ours)(X) ** 2), ours.params)()
  for a, b in zip(jax.tree.leaves(eqx.filter(g_eqx, eqx.is_inexact_array)), jax.tree.leaves(g_ours)):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_to_equinox_runs_and_differentiates():
  eqx = pytest.importorskip('equinox')
  bsn.random.seed(2)
  m = MLP()
  e = interop.to_equinox(m)
  np.testing.assert_allclose(e(X), m(X), rtol=1e-6)
  g = eqx.filter_grad(lambda mod: jnp.sum(mod(X) ** 2))(e)
  params = m.states(bsn.ParamState)
  g_ours = bsn.transform.grad(lambda: jnp.sum(m(X) ** 2), params)()
  np.testing.assert_allclose(g.values['l1']['weight'].get_value()['weight']
                             if hasattr(g.values['l1']['weight'], 'get_value')
                             else g.values['l1']['weight']['weight'],
                             g_ours[('l1', 'weight')]['weight'], rtol=1e-5, atol=1e-6)


# -- BrainState ---------------------------------------------------------------------

def _bst_and_ours():
  brainstate.random.seed(3)
  bst_model = brainstate.nn.Sequential(brainstate.nn.Linear(3, 5), brainstate.nn.ReLU(),
                                       brainstate.nn.Linear(5, 2))
  bsn.random.seed(99)
  ours = bsn.nn.Sequential(bsn.nn.Linear(3, 5), bsn.nn.ReLU(), bsn.nn.Linear(5, 2))
  return bst_model, ours


def test_from_brainstate_copies_weights_by_path():
  bst_model, ours = _bst_and_ours()
  assert not np.allclose(ours(X), bst_model(X))
  assert interop.from_brainstate(bst_model, ours) is ours
  np.testing.assert_allclose(ours(X), bst_model(X), rtol=1e-6)
  # and back
  bsn.random.seed(5)
  other = bsn.nn.Sequential(bsn.nn.Linear(3, 5), bsn.nn.ReLU(), bsn.nn.Linear(5, 2))
  interop.to_brainstate(other, bst_model)
  np.testing.assert_allclose(bst_model(X), other(X), rtol=1e-6)


def test_from_brainstate_lstm_and_mismatch_errors():
  brainstate.random.seed(4)
  cell_bs = brainstate.nn.LSTMCell(3, 4)
  cell = bsn.nn.LSTMCell(3, 4)
  interop.from_brainstate(cell_bs, cell)
  cell_bs.init_state(4)
  cell.init_state(4)
  for _ in range(2):
    np.testing.assert_allclose(cell(X), cell_bs(X), rtol=1e-5, atol=1e-6)
  bst_model, _ = _bst_and_ours()
  with pytest.raises(interop.ConversionError, match='same State paths'):
    interop.from_brainstate(bst_model, bsn.nn.Sequential(bsn.nn.Linear(3, 5)))
  with pytest.raises(interop.ConversionError, match='shape'):
    interop.from_brainstate(bst_model, bsn.nn.Sequential(bsn.nn.Linear(3, 6), bsn.nn.ReLU(),
                                                         bsn.nn.Linear(6, 2)))
