"""Dropout layers: differential against BrainState 0.5.4, and randomness in both worlds.

Requirement 5 of issue 9: stochastic layers draw from the default
``brainstate_nnx.random`` stream under brainstate_nnx transforms (BrainState's
bits), and -- given a model-owned stream (``rngs=``) -- also work inside a Flax
training step under ``nnx.jit`` + ``nnx.value_and_grad`` + ``nnx.Optimizer``.
"""

import brainstate as bst
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import brainstate_nnx as bsn

X4 = np.asarray(jax.random.normal(jax.random.key(0), (3, 4, 5, 6)))

# (layer, args, kwargs, input)
CASES = [
  ('Dropout', (0.7,), {}, X4),
  ('Dropout', (0.6,), dict(broadcast_dims=(0, 2)), X4),
  ('Dropout1d', (0.6,), {}, X4[0, 0]),          # unbatched
  ('Dropout2d', (0.5,), {}, X4),
  ('Dropout2d', (0.5,), dict(channel_axis=0), X4[0]),
  ('Dropout3d', (0.4,), {}, X4[None]),
  ('AlphaDropout', (0.7,), {}, X4),
  ('FeatureAlphaDropout', (0.6,), dict(channel_axis=1), X4),
]


def _ids(case):
  return f'{case[0]}{case[1]}{case[2]}{case[3].shape}'.replace(' ', '')


def _train_outputs(lib, name, args, kwargs, x):
  """After seed(7): a training draw and the input gradient (a second draw) in one
  compiled call of the library's own ``transform.jit``, then the eval output."""
  lib.random.seed(7)
  layer = getattr(lib.nn, name)(*args, **kwargs)

  @lib.transform.jit
  def train(v):
    y = layer(v)
    return y, lib.transform.grad(lambda u: jnp.sum(layer(u) ** 2))(v)

  with lib.environ.context(fit=True):
    y, grad = train(jnp.asarray(x))
  with lib.environ.context(fit=False):
    ev = layer(x)
  return [np.asarray(a) for a in (y, grad, ev)]


@pytest.mark.parametrize('case', CASES, ids=[_ids(c) for c in CASES])
def test_train_draws_grads_and_eval_match_brainstate(case):
  name, args, kwargs, x = case
  theirs = _train_outputs(bst, name, args, kwargs, x)
  ours = _train_outputs(bsn, name, args, kwargs, x)
  for a, b in zip(ours, theirs):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  # training changes the input (something was dropped), eval is the identity
  assert not np.allclose(ours[0], x)
  np.testing.assert_array_equal(ours[2], x)


def test_dropout_mask_statistics_and_scaling():
  bsn.random.seed(0)
  layer = bsn.nn.Dropout(0.8)
  with bsn.environ.context(fit=True):
    y = np.asarray(layer(jnp.ones((200, 50))))
  assert set(np.unique(y)) == {0.0, 1.25}
  assert abs((y > 0).mean() - 0.8) < 0.02


def test_channel_dropout_masks_whole_channels():
  bsn.random.seed(1)
  with bsn.environ.context(fit=True):
    y = np.asarray(bsn.nn.Dropout2d(0.5)(jnp.ones((4, 3, 3, 8))))
  per_channel = y.reshape(4, 9, 8)
  assert (per_channel.min(axis=1) == per_channel.max(axis=1)).all()


@pytest.mark.parametrize('prob', [1.0])
def test_prob_one_is_identity_and_draws_nothing(prob):
  bsn.random.seed(3)
  key = np.asarray(jax.random.key_data(bsn.random.get_key()))
  with bsn.environ.context(fit=True):
    for layer in (bsn.nn.Dropout(prob), bsn.nn.AlphaDropout(prob), bsn.nn.Dropout2d(prob)):
      np.testing.assert_array_equal(layer(X4), X4)
  np.testing.assert_array_equal(np.asarray(jax.random.key_data(bsn.random.get_key())), key)


def test_alpha_dropout_constants_match_brainstate():
  for prob in (0.3, 0.5, 0.9):
    a, b = bst.nn.AlphaDropout(prob), bsn.nn.AlphaDropout(prob)
    assert (a.alpha, a.a, a.b) == (b.alpha, b.a, b.b)
    a, b = bst.nn.FeatureAlphaDropout(prob), bsn.nn.FeatureAlphaDropout(prob)
    assert (a.a, a.b) == (b.a, b.b)


def test_dropout_fixed_matches_brainstate_and_keeps_its_mask():
  res = []
  for lib in (bst, bsn):
    lib.random.seed(5)
    layer = lib.nn.DropoutFixed((4, 5), prob=0.5)
    layer.init_state(batch_size=3)
    with lib.environ.context(fit=True):
      y1 = layer(X4[:, 0, :4, :5])
      y2 = lib.transform.jit(lambda v: layer(v))(X4[:, 1, :4, :5])
    res.append((list(layer.states().keys()), np.asarray(layer.mask.value), np.asarray(y1),
                np.asarray(y2)))
  assert res[0][0] == res[1][0] == [('mask',)]
  for a, b in zip(res[0][1:], res[1][1:]):
    np.testing.assert_array_equal(b, a)
  # the same units are dropped at every step
  np.testing.assert_array_equal(res[1][2] == 0, res[1][3] == 0)
  assert bsn.nn.DropoutFixed(4).out_size == (4,)


# -- bad input -------------------------------------------------------------------

def test_fit_must_be_set_as_in_brainstate():
  for lib in (bst, bsn):
    with pytest.raises(KeyError, match="'fit'"):
      lib.nn.Dropout(0.5)(jnp.ones(3))


@pytest.mark.parametrize('make', [
  lambda lib: lib.nn.Dropout(1.5),
  lambda lib: lib.nn.Dropout2d(-0.1),
  lambda lib: lib.nn.AlphaDropout(2.),
  lambda lib: lib.nn.FeatureAlphaDropout(-1.),
  lambda lib: lib.nn.DropoutFixed(3, prob=1.1),
])
def test_probability_out_of_range(make):
  for lib in (bst, bsn):
    with pytest.raises(AssertionError, match='range \\[0, 1\\]'):
      make(lib)


@pytest.mark.parametrize('name,shape', [
  ('Dropout1d', (2, 3, 4, 5)), ('Dropout2d', (3, 4)), ('Dropout3d', (2, 3, 4)),
])
def test_channel_dropout_wrong_rank_is_a_runtime_error(name, shape):
  for lib in (bst, bsn):
    with lib.environ.context(fit=True), pytest.raises(RuntimeError, match='Expected'):
      getattr(lib.nn, name)(0.5)(jnp.ones(shape))


def test_dropout_fixed_shape_mismatch_is_a_value_error():
  for lib in (bst, bsn):
    layer = lib.nn.DropoutFixed(4, prob=0.5)
    layer.init_state(batch_size=2)
    with lib.environ.context(fit=True), pytest.raises(ValueError, match='init_state'):
      layer(jnp.ones((3, 4)))


def test_bad_rngs_is_a_type_error():
  with pytest.raises(TypeError, match='rngs must be'):
    bsn.nn.Dropout(0.5, rngs='seed')


# -- randomness in both worlds (requirement 5) ------------------------------------

def test_model_owned_random_state_draws_brainstate_bits():
  """``rngs=RandomState(s)`` draws what BrainState's default stream draws after ``seed(s)``."""
  bst.random.seed(11)
  ref = bst.nn.Dropout(0.5)
  owned = bsn.nn.Dropout(0.5, rngs=bsn.random.RandomState(11))
  seeded = bsn.nn.Dropout(0.5, rngs=11)
  outs = []
  for lib, layer in ((bst, ref), (bsn, owned), (bsn, seeded)):
    with lib.environ.context(fit=True):
      outs.append([np.asarray(layer(X4)), np.asarray(lib.transform.jit(lambda: layer(X4))())])
  for a, b, c in zip(*outs):
    np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(c, a)
  # the owned stream is a State of the layer (so every transform threads it)
  assert list(owned.states().keys()) == [('rngs',)]
  assert isinstance(owned.rngs, bsn.random.RandomState)
  assert list(bsn.nn.Dropout(0.5).states().keys()) == []   # default: stateless, as BrainState


def test_nnx_rngs_gives_nnx_dropout_bits():
  """``rngs=nnx.Rngs(s)`` behaves like ``nnx.Dropout(1 - prob, rngs=nnx.Rngs(s))``."""
  ours = bsn.nn.Dropout(0.75, rngs=nnx.Rngs(dropout=4))
  flax_layer = nnx.Dropout(0.25, rngs=nnx.Rngs(dropout=4))
  with bsn.environ.context(fit=True):
    for _ in range(2):
      np.testing.assert_allclose(ours(X4), flax_layer(X4), rtol=1e-6)
  # and brainstate_nnx.transform.jit threads the (adopted) stream through closures
  with bsn.environ.context(fit=True):
    y = bsn.transform.jit(lambda: ours(X4))()
  np.testing.assert_allclose(y, flax_layer(X4), rtol=1e-6)
  assert int(ours.rngs.count[...]) == int(flax_layer.rngs.count[...]) == 3


class _Net(bsn.nn.Module):
  def __init__(self, rngs=None):
    super().__init__()
    self.lin = bsn.nn.Linear(6, 4)
    self.drop = bsn.nn.Dropout(0.6, rngs=rngs)
    self.out = bsn.nn.Linear(4, 1)

  def __call__(self, x):
    return self.out(jax.nn.relu(self.drop(self.lin(x))))


def _xy():
  kx, ky = jax.random.split(jax.random.key(9))
  return jax.random.normal(kx, (16, 6)), jax.random.normal(ky, (16, 1))


def _loss(model, x, y):
  return jnp.mean((model(x) - y) ** 2)


def test_flax_training_step_with_owned_stream_equals_brainstate_style():
  """nnx.jit + nnx.value_and_grad + nnx.Optimizer and transform.jit + grad + optax: same losses."""
  x, y = _xy()
  bsn.random.seed(0)
  base = _Net(rngs=bsn.random.RandomState(42))
  flax_model, bs_model = nnx.clone(base), nnx.clone(base)

  optimizer = nnx.Optimizer(flax_model, optax.adam(1e-2), wrt=nnx.Param)

  @nnx.jit
  def flax_step(model, optimizer, x, y):
    with bsn.environ.context(fit=True):   # fit is read while tracing
      loss, grads = nnx.value_and_grad(_loss)(model, x, y)
    optimizer.update(model, grads)
    return loss

  flax_losses = [float(flax_step(flax_model, optimizer, x, y)) for _ in range(4)]

  params = bs_model.states(bsn.ParamState)
  opt = bsn.optim.OptaxOptimizer(optax.adam(1e-2), params)

  @bsn.transform.jit
  def bs_step():
    grads, loss = bsn.transform.grad(lambda: _loss(bs_model, x, y), params,
                                     return_value=True)()
    opt.update(grads)
    return loss

  with bsn.environ.context(fit=True):
    bs_losses = [float(bs_step()) for _ in range(4)]

  np.testing.assert_allclose(flax_losses, bs_losses, rtol=1e-5)
  assert len(set(flax_losses)) == 4            # a new mask every step
  # both streams advanced identically
  np.testing.assert_array_equal(jax.random.key_data(flax_model.drop.rngs.value),
                                jax.random.key_data(bs_model.drop.rngs.value))
  # evaluation: nnx.Module.eval() switches dropout off (and nnx.jit retraces)
  flax_model.eval()
  ev = nnx.jit(lambda m: m(x))(flax_model)
  with bsn.environ.context(fit=False):
    np.testing.assert_allclose(ev, bs_model(x), rtol=1e-5)


def test_flax_training_step_with_nnx_rngs():
  x, y = _xy()
  model = _Net(rngs=nnx.Rngs(dropout=1))
  optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
  model.train()

  @nnx.jit
  def step(model, optimizer):
    loss, grads = nnx.value_and_grad(_loss)(model, x, y)
    optimizer.update(model, grads)
    return loss

  losses = [float(step(model, optimizer)) for _ in range(3)]
  assert len(set(losses)) == 3 and int(model.drop.rngs.count[...]) == 3


def test_default_stream_under_nnx_jit_names_the_way_out():
  x, y = _xy()
  model = _Net()                                  # draws from the global default stream

  @nnx.jit
  def step(model):
    with bsn.environ.context(fit=True):
      return nnx.value_and_grad(_loss)(model, x, y)[0]

  with pytest.raises(bsn.TraceContextError, match=r'rngs=brainstate_nnx\.random\.RandomState'):
    step(model)
  # ... while brainstate_nnx transforms thread the default stream, as BrainState does
  bsn.random.seed(0)
  with bsn.environ.context(fit=True):
    loss = bsn.transform.jit(lambda: _loss(model, x, y))()
  assert np.isfinite(float(loss))


def test_custom_model_drawing_in_call_both_worlds():
  """A model calling ``random.randn`` in ``__call__``: the owned-RandomState way out."""

  class Noisy(bsn.nn.Module):
    def __init__(self, rng=None):
      super().__init__()
      self.w = bsn.ParamState(jnp.ones(3))
      self.rng = rng

    def __call__(self, x):
      noise = (bsn.random if self.rng is None else self.rng).randn(3)
      return jnp.sum((x * self.w.value + noise) ** 2)

  x = jnp.arange(3.)
  with pytest.raises(bsn.TraceContextError, match='RandomState'):
    nnx.jit(lambda m: m(x))(Noisy())

  owned = Noisy(bsn.random.RandomState(5))
  clone = nnx.clone(owned)
  g1 = nnx.jit(nnx.grad(lambda m: m(x)))(owned)
  g2 = bsn.transform.jit(bsn.transform.grad(lambda: clone(x), clone.states(bsn.ParamState)))()
  np.testing.assert_allclose(g1.w.value, g2[('w',)], rtol=1e-6)
  # same bits as BrainState's default stream after seed(5)
  bst.random.seed(5)
  np.testing.assert_allclose(bsn.random.RandomState(5).randn(3), bst.random.randn(3))


def test_orbax_checkpoint_carries_the_owned_stream_and_running_stats(tmp_path):
  import orbax.checkpoint as ocp

  class Net(bsn.nn.Module):
    def __init__(self, seed):
      super().__init__()
      self.bn = bsn.nn.BatchNorm0d(3)
      self.drop = bsn.nn.Dropout(0.5, rngs=seed)

    def __call__(self, x):
      return self.drop(self.bn(x))

  x = jnp.arange(12.).reshape(4, 3)
  model = Net(0)
  with bsn.environ.context(fit=True):
    model(x)
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(tmp_path / 'ckpt', nnx.state(model))
  ckpt.wait_until_finished()
  fresh = Net(1)
  nnx.update(fresh, ckpt.restore(tmp_path / 'ckpt', nnx.state(fresh)))
  np.testing.assert_array_equal(fresh.bn.running_mean.value, model.bn.running_mean.value)
  np.testing.assert_array_equal(jax.random.key_data(fresh.drop.rngs.value),
                                jax.random.key_data(model.drop.rngs.value))
  with bsn.environ.context(fit=True):                   # the same next mask
    np.testing.assert_array_equal(fresh(x), model(x))


def test_dropout_fixed_with_owned_stream_draws_brainstate_bits():
  bst.random.seed(5)
  ref = bst.nn.DropoutFixed(6, prob=0.5)
  ref.init_state(batch_size=2)
  ours = bsn.nn.DropoutFixed(6, prob=0.5, rngs=5)
  bsn.nn.init_all_states(ours, batch_size=2)
  np.testing.assert_array_equal(ours.mask.value, ref.mask.value)
  assert sorted(ours.states().keys()) == [('mask',), ('rngs',)]
