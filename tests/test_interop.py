"""brainstate_nnx models are Flax NNX models: nnx transforms, nnx.Optimizer, optax.

Every check compares numbers with a hand-written pure-JAX (+ optax) reference.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import brainstate_nnx as bs
from conftest import REORDER_RTOL, assert_close


class MLP(bs.nn.Module):
  def __init__(self, key):
    super().__init__()
    k1, k2 = jax.random.split(key)
    self.w1 = bs.ParamState(jax.random.normal(k1, (3, 8)) * 0.5)
    self.b1 = bs.ParamState(jnp.zeros(8))
    self.w2 = bs.ParamState(jax.random.normal(k2, (8, 1)) * 0.5)
    self.b2 = bs.ParamState(jnp.zeros(1))
    self.calls = bs.HiddenState(jnp.zeros((), jnp.int32))

  def __call__(self, x):
    self.calls.value = self.calls.value + 1
    return jnp.tanh(x @ self.w1.value + self.b1.value) @ self.w2.value + self.b2.value


def _data():
  kx, ky = jax.random.split(jax.random.key(1))
  return jax.random.normal(kx, (32, 3)), jax.random.normal(ky, (32, 1))


def _pure_losses(tx, steps=5):
  model = MLP(jax.random.key(0))
  params = {k: model.states()[(k,)].value for k in ['w1', 'b1', 'w2', 'b2']}
  x, y = _data()

  def loss(p):
    h = jnp.tanh(x @ p['w1'] + p['b1'])
    return jnp.mean((h @ p['w2'] + p['b2'] - y) ** 2)

  @jax.jit
  def step(p, s):
    l, g = jax.value_and_grad(loss)(p)
    u, s = tx.update(g, s, p)
    return optax.apply_updates(p, u), s, l

  state = tx.init(params)
  out = []
  for _ in range(steps):
    params, state, l = step(params, state)
    out.append(float(l))
  return out


TXS = {
  'adam': lambda: optax.adam(1e-2),
  'chain_schedule': lambda: optax.chain(
    optax.clip_by_global_norm(1.0),
    optax.adamw(optax.exponential_decay(1e-2, 2, 0.5), weight_decay=1e-3)),
}


@pytest.mark.parametrize('name', sorted(TXS))
def test_nnx_optimizer_train_step_matches_pure_optax(name):
  model = MLP(jax.random.key(0))
  opt = nnx.Optimizer(model, TXS[name](), wrt=nnx.Param)
  x, y = _data()

  @nnx.jit
  def train_step(model, optimizer, x, y):
    def loss_fn(m):
      return jnp.mean((m(x) - y) ** 2)
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

  losses = [float(train_step(model, opt, x, y)) for _ in range(5)]
  assert_close(losses, _pure_losses(TXS[name]()), rtol=REORDER_RTOL, atol=0)
  assert int(model.calls.value) == 5  # HiddenState write inside nnx.jit propagated


@pytest.mark.parametrize('name', sorted(TXS))
def test_brainstate_style_with_optax_bridge_matches(name):
  model = MLP(jax.random.key(0))
  params = model.states(bs.ParamState)
  opt = bs.optim.OptaxOptimizer(TXS[name](), params)
  x, y = _data()

  @bs.transform.jit
  def step():
    loss_fn = lambda: jnp.mean((model(x) - y) ** 2)
    grads, loss = bs.transform.grad(loss_fn, params, return_value=True)()
    opt.update(grads)
    return loss

  losses = [float(step()) for _ in range(5)]
  assert_close(losses, _pure_losses(TXS[name]()), rtol=REORDER_RTOL, atol=0)
  assert int(model.calls.value) == 5
  assert int(opt.step.value) == 5


def test_optax_bridge_rejects_mismatched_grads():
  w = bs.ParamState(jnp.ones(2))
  opt = bs.optim.OptaxOptimizer(optax.sgd(0.1), {('w',): w})
  with pytest.raises(KeyError):
    opt.update({('v',): jnp.ones(2)})


class Counter(bs.nn.Module):
  def __init__(self):
    super().__init__()
    self.count = bs.HiddenState(jnp.array(0))
    self.w = bs.ParamState(jnp.array(2.0))

  def __call__(self, x):
    self.count.value = self.count.value + 1
    return x * self.w.value


@pytest.mark.parametrize('graph', [True, False])
def test_nnx_jit_propagates_state_writes(graph):
  m = Counter()
  f = nnx.jit(lambda m, x: m(x), graph=graph)
  for i in range(3):
    f(m, 1.0)
    assert int(m.count.value) == i + 1


@pytest.mark.parametrize('graph', [True, False])
def test_nnx_grad_and_value_and_grad(graph):
  m = Counter()
  loss = lambda m, x: m(x) ** 2
  if graph:
    g = nnx.grad(loss, graph=True)(m, 3.0)
    np.testing.assert_allclose(g['w'][...], 2 * 3.0 * 2.0 * 3.0)
  else:
    # tree mode differentiates the whole module (the int counter too)
    v, g = nnx.value_and_grad(loss, graph=False, allow_int=True)(m, 3.0)
    assert float(v) == 36.0
    np.testing.assert_allclose(g.w[...], 36.0)


def test_split_merge_state_update_clone_graphdef_iter_graph():
  m = Counter()
  graphdef, params, rest = nnx.split(m, nnx.Param, ...)
  assert set(dict(nnx.to_flat_state(params))) == {('w',)}
  assert type(params['w']) is bs.ParamState
  m2 = nnx.merge(graphdef, params, rest, copy=True)
  assert isinstance(m2, Counter) and m2.w is not m.w
  nnx.update(m2, jax.tree.map(lambda x: x * 0 + 5.0, nnx.state(m2, nnx.Param)))
  assert float(m2.w.value) == 5.0 and float(m.w.value) == 2.0
  c = nnx.clone(m)
  c.w.value = jnp.array(7.0)
  assert float(m.w.value) == 2.0
  assert nnx.graphdef(m) == graphdef
  kinds = {type(v).__name__ for _, v in nnx.iter_graph(m)}
  assert {'ParamState', 'HiddenState', 'Counter'} <= kinds


@pytest.mark.parametrize('graph', [True, False])
def test_nnx_vmap_scan_fori_remat(graph):
  m = Counter()
  xs = jnp.arange(4.0)
  out = nnx.vmap(lambda m, x: x * m.w[...], in_axes=(None, 0), graph=graph)(m, xs)
  np.testing.assert_allclose(out, xs * 2.0)

  def body(m, x):
    m.count[...] = m.count[...] + 1
    return m, x * m.w[...]

  m2, ys = nnx.scan(body, in_axes=(nnx.Carry, 0), out_axes=(nnx.Carry, 0), graph=graph)(m, xs)
  np.testing.assert_allclose(ys, xs * 2.0)
  assert int(m.count.value) == 4

  def fbody(i, m):
    m.count[...] = m.count[...] + 1
    return m

  nnx.fori_loop(0, 3, fbody, m, graph=graph)
  assert int(m.count.value) == 7
  r = nnx.remat(lambda m, x: m(x), graph=graph)(m, 3.0)
  assert float(r) == 6.0


def test_flax_layers_inside_brainstate_module_train_both_styles():
  class Net(bs.nn.Module):
    def __init__(self):
      super().__init__()
      self.lin = nnx.Linear(3, 4, rngs=nnx.Rngs(0))
      self.norm = nnx.LayerNorm(4, rngs=nnx.Rngs(1))
      self.out = bs.ParamState(jnp.ones((4, 1)) * 0.1)

    def __call__(self, x):
      return self.norm(self.lin(x)) @ self.out.value

  x, y = _data()

  def pure_reference():
    net = Net()
    graphdef, params = nnx.split(net, nnx.Param)
    flat = nnx.to_pure_dict(params)
    tx = optax.sgd(0.1)

    def loss(p):
      nnx.replace_by_pure_dict(params, p)
      return jnp.mean((nnx.merge(graphdef, params)(x) - y) ** 2)

    s = tx.init(flat)
    out = []
    for _ in range(3):
      l, g = jax.value_and_grad(loss)(flat)
      u, s = tx.update(g, s)
      flat = optax.apply_updates(flat, u)
      out.append(float(l))
    return out

  net = Net()
  params = net.states(nnx.Param)
  assert set(params) == {('lin', 'kernel'), ('lin', 'bias'), ('norm', 'scale'),
                         ('norm', 'bias'), ('out',)}
  opt = bs.optim.OptaxOptimizer(optax.sgd(0.1), params)

  @bs.transform.jit
  def step():
    grads, l = bs.transform.grad(lambda: jnp.mean((net(x) - y) ** 2), params,
                                 return_value=True)()
    opt.update(grads)
    return l

  ours = [float(step()) for _ in range(3)]
  assert_close(ours, pure_reference(), rtol=REORDER_RTOL, atol=0)


def test_stock_param_read_through_closure_reflects_outside_changes():
  lin = bs.adopt(nnx.Linear(2, 1, rngs=nnx.Rngs(0)))
  f = bs.transform.jit(lambda x: lin(x))
  x = jnp.ones((1, 2))
  a = f(x)
  lin.bias[...] = lin.bias[...] + 3.0
  assert_close(f(x) - a, [[3.0]], atol=0)


def test_brainstate_module_inside_plain_nnx_module():
  class Outer(nnx.Module):
    def __init__(self):
      self.inner = Counter()
      self.lin = nnx.Linear(1, 1, rngs=nnx.Rngs(0))

  o = Outer()
  f = nnx.jit(lambda o, x: o.lin(o.inner(x)))
  f(o, jnp.ones((1, 1)))
  f(o, jnp.ones((1, 1)))
  assert int(o.inner.count.value) == 2
  g = bs.transform.jit(lambda x: o.inner(x))
  g(1.0)
  assert int(o.inner.count.value) == 3


class ConvNet(bs.nn.Module):
  """Stock Flax layers (Conv, BatchNorm, Dropout with Rngs, LayerNorm, Linear) inside."""

  def __init__(self):
    super().__init__()
    self.conv = nnx.Conv(1, 4, kernel_size=(3, 3), rngs=nnx.Rngs(0))
    self.bn = nnx.BatchNorm(4, rngs=nnx.Rngs(1))
    self.drop = nnx.Dropout(0.25, rngs=nnx.Rngs(dropout=2))
    self.ln = nnx.LayerNorm(4 * 6 * 6, rngs=nnx.Rngs(3))
    self.head = nnx.Linear(4 * 6 * 6, 1, rngs=nnx.Rngs(4))
    self.scale = bs.ParamState(jnp.ones(1))

  def __call__(self, x):
    h = jax.nn.relu(self.bn(self.conv(x)))
    h = self.drop(h).reshape(x.shape[0], -1)
    return self.head(self.ln(h)) * self.scale.value


def _conv_data():
  kx, ky = jax.random.split(jax.random.key(5))
  return jax.random.normal(kx, (8, 6, 6, 1)), jax.random.normal(ky, (8, 1))


def test_stock_conv_batchnorm_dropout_both_styles_agree():
  x, y = _conv_data()
  base = ConvNet()
  nnx_model, bs_model = nnx.clone(base), nnx.clone(base)

  # nnx / optax style
  opt = nnx.Optimizer(nnx_model, optax.adam(1e-2), wrt=nnx.Param)

  @nnx.jit
  def nnx_step(model, optimizer):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
    optimizer.update(model, grads)
    return loss

  nnx_losses = [float(nnx_step(nnx_model, opt)) for _ in range(4)]

  # BrainState style on the clone: closure step, path-keyed grads, optax bridge
  params = bs_model.states(nnx.Param)
  bopt = bs.optim.OptaxOptimizer(optax.adam(1e-2), params)

  @bs.transform.jit
  def bs_step():
    grads, loss = bs.transform.grad(lambda: jnp.mean((bs_model(x) - y) ** 2), params,
                                    return_value=True)()
    bopt.update(grads)
    return loss

  bs_losses = [float(bs_step()) for _ in range(4)]
  assert_close(bs_losses, nnx_losses, rtol=REORDER_RTOL, atol=0)
  # BatchNorm running stats and the dropout RNG count advanced identically
  assert_close(bs_model.bn.mean[...], nnx_model.bn.mean[...], rtol=REORDER_RTOL, atol=0)
  assert int(bs_model.drop.rngs.count[...]) == int(nnx_model.drop.rngs.count[...]) == 4
  assert len(set(nnx_losses)) == 4  # it trains


def test_brainstate_module_inside_nnx_module_trained_nnx_style():
  class Outer(nnx.Module):
    def __init__(self):
      self.body = MLP(jax.random.key(0))

    def __call__(self, x):
      return self.body(x)

  outer = Outer()
  opt = nnx.Optimizer(outer, optax.adam(1e-2), wrt=nnx.Param)
  x, y = _data()

  @nnx.jit
  def step(m, o):
    loss, g = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(m)
    o.update(m, g)
    return loss

  losses = [float(step(outer, opt)) for _ in range(5)]
  assert_close(losses, _pure_losses(optax.adam(1e-2)), rtol=REORDER_RTOL, atol=0)
