"""Normalization layers: differential against BrainState 0.5.4, and Flax interop.

BatchNorm's running statistics follow ``environ`` ``fit`` exactly as in
BrainState (also after several compiled training steps); ``BatchNorm2d`` and
``LayerNorm`` give ``nnx.BatchNorm`` / ``nnx.LayerNorm``'s numbers with the
weights copied across.
"""

from conftest import oracle
bst = oracle()  # real BrainState 0.5.4, the oracle
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import brainstate_nnx as bsn


def _x(*shape, seed=0):
  return np.asarray(jax.random.normal(jax.random.key(seed), shape) * 2. + 0.5)


# (layer, args, kwargs, batched input, whether an unbatched input is valid)
CASES = [
  ('BatchNorm0d', (6,), {}, _x(8, 6), False),
  ('BatchNorm1d', ((5, 6),), {}, _x(4, 5, 6), True),
  ('BatchNorm1d', ((5, 6),), dict(momentum=0.9, epsilon=1e-3, use_fast_variance=False),
   _x(4, 5, 6), False),
  ('BatchNorm1d', ((5, 6),), dict(track_running_stats=False, affine=False), _x(4, 5, 6), False),
  ('BatchNorm2d', ((5, 4, 3),), {}, _x(2, 5, 4, 3), True),
  ('BatchNorm3d', ((3, 4, 2, 3),), {}, _x(2, 3, 4, 2, 3), False),
  ('LayerNorm', (6,), {}, _x(4, 5, 6), True),
  ('LayerNorm', ((5, 6),), dict(reduction_axes=(-2, -1), feature_axes=(-2, -1)), _x(4, 5, 6), False),
  ('LayerNorm', (6,), dict(use_bias=False, use_fast_variance=False, epsilon=1e-3), _x(4, 6), True),
  ('RMSNorm', (6,), {}, _x(4, 5, 6), True),
  ('RMSNorm', (6,), dict(use_scale=False), _x(4, 6), False),
  ('GroupNorm', (6,), dict(num_groups=3), _x(4, 5, 6), False),
  ('GroupNorm', (6,), dict(num_groups=None, group_size=3, use_scale=False), _x(2, 3, 5, 6), False),
]


def _ids(case):
  return f'{case[0]}{case[1]}{case[2]}'.replace(' ', '')


def _random_init_kwargs(lib, name):
  """Random initializers, so that 'same seed => same parameters' means something."""
  init = lib.nn.init
  if name.startswith('BatchNorm'):
    return dict(bias_initializer=init.Normal(0.5), scale_initializer=init.Uniform(0.5, 1.5))
  if name == 'RMSNorm':
    return dict(scale_init=init.Uniform(0.5, 1.5))
  return dict(bias_init=init.Normal(0.5), scale_init=init.Uniform(0.5, 1.5))


def _run(lib, name, args, kwargs, x, unbatched):
  """Parameters; train output + grads (params and input), running stats; eval output."""
  lib.random.seed(3)
  kw = dict(kwargs)
  if not (kw.get('affine', True) is False):
    kw.update(_random_init_kwargs(lib, name))
  layer = getattr(lib.nn, name)(*args, **kw)
  init_states = {k: jax.tree.map(np.asarray, v.value) for k, v in layer.states().items()}
  params = layer.states(lib.ParamState)

  def step(v):
    f = lambda u: jnp.sum(jnp.sin(layer(u)) * jnp.arange(u.shape[-1]))
    if len(params):
      gp, gx = lib.transform.grad(f, grad_states=params, argnums=0)(v)
    else:
      gp, gx = {}, lib.transform.grad(f)(v)
    single = layer(v[0]) if unbatched else jnp.zeros(())
    return layer(v), single, gp, gx

  # one jitted function per phase: BrainState 0.5.4's jit would reuse a trace
  # made under the other phase
  with lib.environ.context(fit=True):
    train = lib.transform.jit(step)(jnp.asarray(x))
  with lib.environ.context(fit=False):
    ev = lib.transform.jit(step)(jnp.asarray(x))
  after = {k: jax.tree.map(np.asarray, v.value) for k, v in layer.states().items()}
  return init_states, jax.tree.map(np.asarray, train), jax.tree.map(np.asarray, ev), after


def _close(a, b, **kw):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(u, v, **kw)


@pytest.mark.parametrize('case', CASES, ids=[_ids(c) for c in CASES])
def test_params_outputs_grads_and_running_stats_match_brainstate(case):
  name, args, kwargs, x, unbatched = case
  theirs = _run(bst, name, args, kwargs, x, unbatched)
  ours = _run(bsn, name, args, kwargs, x, unbatched)
  # same seed => identical parameters and the same state paths
  assert list(ours[0].keys()) == list(theirs[0].keys())
  _close(ours[0], theirs[0], rtol=0, atol=0)
  # train (fit=True) and eval (fit=False): outputs, grads; running stats afterwards
  _close(ours[1], theirs[1], rtol=1e-5, atol=1e-5)
  _close(ours[2], theirs[2], rtol=1e-5, atol=1e-5)
  _close(ours[3], theirs[3], rtol=1e-6, atol=1e-7)


def _bn_training(lib):
  """Three compiled training steps (new data each), then evaluation."""
  lib.random.seed(0)
  net = lib.nn.BatchNorm2d((4, 4, 3), momentum=0.8)
  train_step = lib.transform.jit(lambda v: net(v))
  xs = [_x(6, 4, 4, 3, seed=s) * (s + 1) for s in range(3)]
  with lib.environ.context(fit=True):
    train = [np.asarray(train_step(v)) for v in xs]
  stats = [np.asarray(net.running_mean.value), np.asarray(net.running_var.value)]
  with lib.environ.context(fit=False):
    ev = np.asarray(lib.transform.jit(lambda v: net(v))(xs[0]))
  return net, train_step, xs, (train, stats, ev)


def test_batchnorm_running_stats_after_jitted_train_steps_then_eval():
  _, _, _, theirs = _bn_training(bst)
  net, train_step, xs, ours = _bn_training(bsn)
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  train, stats, ev = ours
  # evaluation used the running statistics, not the batch's
  assert not np.allclose(ev, train[0], atol=1e-3)
  # hand-computed: r = 0.8 r + 0.2 mean_batch, from r = 0
  r = np.zeros(3)
  for v in xs:
    r = 0.8 * r + 0.2 * v.mean(axis=(0, 1, 2))
  np.testing.assert_allclose(stats[0].reshape(3), r, rtol=1e-5)
  # the *same* jitted function follows a change of fit: never a stale trace, and
  # evaluation leaves the running statistics alone (BrainState 0.5.4 reuses the
  # training trace here and keeps updating them)
  with bsn.environ.context(fit=False):
    np.testing.assert_allclose(train_step(xs[0]), ev, rtol=1e-6)
  np.testing.assert_array_equal(net.running_mean.value, stats[0])
  with bsn.environ.context(fit=True):
    np.testing.assert_allclose(train_step(xs[0]), train[0], rtol=1e-6)
  assert not np.allclose(net.running_mean.value, stats[0])


def test_batchnorm_states_and_attributes_as_brainstate():
  for lib in (bst, bsn):
    bn = lib.nn.BatchNorm2d((4, 4, 3))
    assert sorted(bn.states().keys()) == [('running_mean',), ('running_var',), ('weight',)]
    assert isinstance(bn.running_mean, lib.BatchState)
    assert isinstance(bn.weight, lib.ParamState)
    assert sorted(bn.weight.value) == ['bias', 'scale']
    assert bn.weight.value['scale'].shape == bn.running_var.value.shape == (1, 1, 3)
    assert bn.feature_axes == (2,) and bn.in_size == bn.out_size == (4, 4, 3)
    assert float(bn.momentum) == pytest.approx(0.99) and float(bn.epsilon) == pytest.approx(1e-5)
  assert isinstance(bsn.nn.BatchNorm0d(3).weight, nnx.Param)
  r = bsn.nn.RMSNorm(4)
  assert list(r.states().keys()) == [('scale',)] and list(r.scale.value) == ['scale']


def test_weight_standardization_matches_brainstate():
  w = jnp.asarray(_x(3, 4, 2))  # (BrainState needs a jax array)
  gain = jnp.asarray(_x(2, seed=1))
  for kw in ({}, {'eps': 0.5}, {'gain': gain}, {'out_axis': 0}, {'out_axis': 1, 'eps': 1e-2}):
    np.testing.assert_allclose(bsn.nn.weight_standardization(w, **kw),
                               bst.nn.weight_standardization(w, **kw), rtol=1e-6, atol=1e-6)
  # the weights are centred and scaled per output unit
  out = np.asarray(bsn.nn.weight_standardization(w, eps=0.0))
  np.testing.assert_allclose(out.mean(axis=(0, 1)), 0.0, atol=1e-6)
  np.testing.assert_allclose((out ** 2).sum(axis=(0, 1)), 1.0, rtol=1e-5)


# -- bad input ---------------------------------------------------------------------

@pytest.mark.parametrize('make,x,exc,match', [
  (lambda lib: lib.nn.BatchNorm2d((4, 4, 3)), jnp.ones((2, 2, 4, 4, 3)), ValueError,
   'expected 4D .with batch. or 3D'),
  (lambda lib: lib.nn.BatchNorm1d((5, 3)), jnp.ones((2, 5, 4)), ValueError,
   'expected input shape is'),
  (lambda lib: lib.nn.BatchNorm0d(3), jnp.ones((2, 4)), ValueError, 'expected input shape is'),
  (lambda lib: lib.nn.LayerNorm(3, reduction_axes=3), jnp.ones((2, 3)), ValueError,
   'Invalid axis'),
])
def test_bad_input_at_call(make, x, exc, match):
  for lib in (bst, bsn):
    with lib.environ.context(fit=True), pytest.raises(exc, match=match):
      make(lib)(x)


@pytest.mark.parametrize('make,exc', [
  (lambda lib: lib.nn.GroupNorm(6, num_groups=4), ValueError),
  (lambda lib: lib.nn.GroupNorm(6, num_groups=2, group_size=3), ValueError),
  (lambda lib: lib.nn.GroupNorm(6, num_groups=None, group_size=4), ValueError),
  (lambda lib: lib.nn.GroupNorm((4, 6), num_groups=2, feature_axis=(0, 1)), AssertionError),
  (lambda lib: lib.nn.BatchNorm1d((4, 3), track_running_stats=False), AssertionError),
  (lambda lib: lib.nn.BatchNorm1d((4, 3), feature_axis=2), ValueError),
  (lambda lib: lib.nn.LayerNorm(3, scale_init=jnp.ones(4)), ValueError),
])
def test_bad_constructor_arguments(make, exc):
  for lib in (bst, bsn):
    with pytest.raises(exc):
      make(lib)


def test_batchnorm_needs_fit_as_in_brainstate():
  for lib in (bst, bsn):
    with pytest.raises(KeyError, match="'fit'"):
      lib.nn.BatchNorm0d(3)(jnp.ones((2, 3)))


# -- Flax: weight copies, nnx.jit, nnx.Optimizer -------------------------------------

def test_batchnorm2d_equals_nnx_batchnorm_train_and_eval():
  bsn.random.seed(1)
  ours = bsn.nn.BatchNorm2d((5, 4, 3), scale_initializer=bsn.nn.init.Uniform(0.5, 1.5),
                            bias_initializer=bsn.nn.init.Normal())
  theirs = nnx.BatchNorm(3, rngs=nnx.Rngs(0))            # same momentum/epsilon defaults
  theirs.scale[...] = ours.weight.value['scale'].reshape(3)
  theirs.bias[...] = ours.weight.value['bias'].reshape(3)
  x = jnp.asarray(_x(4, 5, 4, 3))
  for _ in range(2):                                      # train: batch stats, running update
    with bsn.environ.context(fit=True):
      y = ours(x)
    np.testing.assert_allclose(y, theirs(x, use_running_average=False), rtol=1e-5, atol=1e-5)
    x = x * 1.5 + 0.3
  np.testing.assert_allclose(ours.running_mean.value.reshape(3), theirs.mean[...], rtol=1e-6)
  np.testing.assert_allclose(ours.running_var.value.reshape(3), theirs.var[...], rtol=1e-6)
  with bsn.environ.context(fit=False):                    # eval: running stats
    np.testing.assert_allclose(ours(x), theirs(x, use_running_average=True), rtol=1e-5,
                               atol=1e-5)


def test_layernorm_equals_nnx_layernorm_train_and_eval():
  bsn.random.seed(2)
  ours = bsn.nn.LayerNorm(6, scale_init=bsn.nn.init.Uniform(0.5, 1.5),
                          bias_init=bsn.nn.init.Normal())
  theirs = nnx.LayerNorm(6, rngs=nnx.Rngs(0))             # epsilon 1e-6 as BrainState
  theirs.scale[...] = ours.weight.value['scale']
  theirs.bias[...] = ours.weight.value['bias']
  x = jnp.asarray(_x(3, 4, 6))
  for fit in (True, False):                               # no train/eval difference
    with bsn.environ.context(fit=fit):
      np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-6)
  # and the other way round: Flax weights into ours
  theirs.scale[...] = jnp.linspace(0.5, 2., 6)
  ours.weight.value = {'scale': theirs.scale[...], 'bias': theirs.bias[...]}
  np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-6)


class _CNN(nnx.Module):
  """A plain nnx.Module built from brainstate_nnx layers."""

  def __init__(self):
    self.conv = bsn.nn.Conv2d((6, 6, 1), 4, (3, 3))
    self.bn = bsn.nn.BatchNorm2d((6, 6, 4))
    self.pool = bsn.nn.MaxPool2d(2)
    self.norm = bsn.nn.LayerNorm(36)
    self.head = bsn.nn.Linear(36, 1)

  def __call__(self, x):
    h = self.pool(jax.nn.relu(self.bn(self.conv(x))))
    return self.head(self.norm(h.reshape(x.shape[0], -1)))


def test_cnn_of_brainstate_nnx_layers_trains_under_nnx_jit():
  bsn.random.seed(0)
  model = _CNN()
  x, y = jnp.asarray(_x(8, 6, 6, 1)), jnp.asarray(_x(8, 1, seed=1))
  params = nnx.state(model, nnx.Param)
  flat = {'/'.join(map(str, k)) for k, _ in nnx.to_flat_state(params)}
  assert {'bn/weight', 'norm/weight'} <= flat
  assert not any('running' in k for k in flat)          # running stats are not Params
  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer):
    with bsn.environ.context(fit=True):
      loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
    optimizer.update(model, grads)
    return loss

  mean0 = np.asarray(model.bn.running_mean.value)
  losses = [float(step(model, optimizer)) for _ in range(3)]
  assert losses[-1] < losses[0]
  assert not np.allclose(model.bn.running_mean.value, mean0)   # stats came back out of nnx.jit
  # Flax's eval switch: running statistics, nnx.jit retraces
  model.eval()
  ev = nnx.jit(lambda m: m(x))(model)
  with bsn.environ.context(fit=False):
    model.train()
    model.bn.use_running_average = None                  # back to environ fit
    np.testing.assert_allclose(ev, nnx.jit(lambda m: m(x))(model), rtol=1e-5)
