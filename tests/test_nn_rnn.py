"""Recurrent cells, differential against BrainState 0.5.4, and LSTMCell <-> Flax."""

import brainstate as bst
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import brainstate_nnx as bsn

CELLS = ['ValinaRNNCell', 'GRUCell', 'MGUCell', 'LSTMCell', 'URLSTMCell']
N_IN, N_OUT, T, B = 3, 4, 5, 2
XS = jnp.asarray(np.random.RandomState(0).randn(T, B, N_IN).astype(np.float32))


def _close(a, b, rtol=1e-5, atol=1e-6):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _tree_equal(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def _values(cell):
  return {k: v.value for k, v in cell.states().items()}


def _build(lib, name, seed=3, **kw):
  lib.random.seed(seed)
  return getattr(lib.nn, name)(N_IN, N_OUT, **kw)


def _train_pass(lib, cell, xs):
  """Outputs of a for_loop over ``xs``, its loss and parameter gradients
  (with ``lib``'s own jit / grad / for_loop); the cell's hidden States are
  left at their final value."""
  params = cell.states(lib.ParamState)

  def loss():
    ys = lib.transform.for_loop(cell, xs)
    return jnp.sum(jnp.sin(ys)), ys

  grads, value, ys = lib.transform.jit(
    lib.transform.grad(loss, grad_states=params, has_aux=True, return_value=True))()
  return dict(grads), value, ys


@pytest.mark.parametrize('name', CELLS)
def test_cell_matches_brainstate(name):
  ref, ours = _build(bst, name), _build(bsn, name)
  assert isinstance(ours, bsn.nn.RNNCell) and isinstance(ours, nnx.Module)
  assert ours.in_size == ref.in_size == (N_IN,) and ours.out_size == ref.out_size == (N_OUT,)
  assert ours.num_in == N_IN and ours.num_out == N_OUT
  # same seed => the same parameters
  assert list(ours.states().keys()) == list(ref.states().keys())
  _tree_equal(_values(ours), _values(ref))
  for p in ours.states(bsn.ParamState).values():
    assert isinstance(p, nnx.Param)

  # hidden states through init_all_states(batch_size=...)
  bst.nn.init_all_states(ref, batch_size=B)
  bsn.nn.init_all_states(ours, batch_size=B)
  hidden = list(ours.states(bsn.HiddenState).keys())
  assert hidden == list(ref.states(bst.HiddenState).keys())
  assert hidden == ([('c',), ('h',)] if 'LSTM' in name else [('h',)])
  for k in hidden:
    assert ours.states()[k].value.shape == (B, N_OUT)
    assert isinstance(ours.states()[k], nnx.Variable)

  # a sequence via for_loop: same outputs, final hidden states and gradients
  g_ref, v_ref, ys_ref = _train_pass(bst, ref, XS)
  g, v, ys = _train_pass(bsn, ours, XS)
  assert ys.shape == (T, B, N_OUT)
  _close(ys, ys_ref)
  _close(v, v_ref)
  for k in hidden:
    _close(ours.states()[k].value, ref.states()[k].value)
  assert g.keys() == g_ref.keys()
  jax.tree.map(_close, g, g_ref)

  # reset_state goes back to the initial (zero) state
  ours.reset_state(batch_size=B)
  for k in hidden:
    np.testing.assert_array_equal(ours.states()[k].value, np.zeros((B, N_OUT)))


@pytest.mark.parametrize('name', ['GRUCell', 'LSTMCell'])
def test_unbatched_step(name):
  ref, ours = _build(bst, name), _build(bsn, name)
  ref.init_state()
  ours.init_state()
  assert ours.h.value.shape == (N_OUT,)
  for t in range(2):
    _close(ours(XS[t, 0]), ref(XS[t, 0]))
  assert ours.h.value.shape == (N_OUT,)
  _close(ours.h.value, ref.h.value)


def test_custom_initializers_activation_and_draw_order():
  kw = lambda lib: dict(state_init=lib.nn.init.Normal(0.5), w_init=lib.nn.init.Orthogonal(),
                        activation='gelu')
  ref = _build(bst, 'LSTMCell', seed=9, **kw(bst))
  ours = _build(bsn, 'LSTMCell', seed=9, **kw(bsn))
  ref.init_state(batch_size=B)  # random initial c then h (order matters)
  ours.init_state(batch_size=B)
  _tree_equal(_values(ours), _values(ref))
  _close(ours(XS[0]), ref(XS[0]))
  ref.reset_state(batch_size=B)
  ours.reset_state(batch_size=B)
  _tree_equal(_values(ours), _values(ref))

  # a callable activation
  r = _build(bst, 'ValinaRNNCell', activation=jnp.tanh)
  o = _build(bsn, 'ValinaRNNCell', activation=jnp.tanh)
  r.init_state(B)
  o.init_state(B)
  _close(o(XS[0]), r(XS[0]))


def test_bad_arguments():
  with pytest.raises(ValueError, match='Unknown activation'):
    bsn.nn.GRUCell(2, 3, activation='no_such_fn')
  with pytest.raises(TypeError, match='string or a callable'):
    bsn.nn.GRUCell(2, 3, activation=3)
  cell = bsn.nn.LSTMCell(2, 3)
  cell.init_state(batch_size=4)
  with pytest.raises(Exception):
    cell(jnp.ones((4, 5)))  # wrong input features


def test_vmap_init_all_states_ensemble():
  cell = bsn.nn.GRUCell(N_IN, N_OUT, state_init=bsn.nn.init.Uniform())
  bsn.nn.vmap_init_all_states(cell, axis_size=3)
  assert cell.h.value.shape == (3, N_OUT)
  assert not np.allclose(cell.h.value[0], cell.h.value[1])  # each member draws its own


# ---------------------------------------------------------------------------
# Flax
# ---------------------------------------------------------------------------

def _split_lstm(cell):
  """BrainState's fused ``W`` ([x, h] -> [i, g, f, o]) as per-gate kernels/biases."""
  W = np.asarray(cell.W.weight.value['weight'])
  b = np.asarray(cell.W.weight.value['bias'])
  n_in = cell.num_in
  blocks = dict(zip('igfo', np.split(np.arange(W.shape[1]), 4)))
  out = {}
  for gate, cols in blocks.items():
    out[gate] = (W[:n_in, cols], W[n_in:, cols], b[cols] + (1.0 if gate == 'f' else 0.0))
  return out


def test_lstm_weights_copy_to_flax_lstm_cell():
  """brainstate LSTMCell -> nnx.LSTMCell: split the fused kernel by gate
  ([i, g, f, o] -> ii/if_/ig/io and hi/hf/hg/ho) and fold the +1 forget
  bias into hf.bias; the two cells then agree step by step."""
  bsn.random.seed(0)
  ours = bsn.nn.LSTMCell(N_IN, N_OUT)
  ours.W.weight.value = jax.tree.map(
    lambda w: w + 0.1 * jnp.arange(w.size, dtype=w.dtype).reshape(w.shape) / w.size,
    ours.W.weight.value)  # a non-zero bias too
  ours.init_state(batch_size=B)
  flax_cell = nnx.LSTMCell(N_IN, N_OUT, rngs=nnx.Rngs(0))
  for gate, (wi, wh, bh) in _split_lstm(ours).items():
    suffix = 'f_' if gate == 'f' else gate
    getattr(flax_cell, 'i' + suffix).kernel[...] = jnp.asarray(wi)
    getattr(flax_cell, 'h' + gate).kernel[...] = jnp.asarray(wh)
    getattr(flax_cell, 'h' + gate).bias[...] = jnp.asarray(bh)
  carry = flax_cell.initialize_carry((B, N_IN), rngs=nnx.Rngs(1))
  for t in range(T):
    carry, y_flax = flax_cell(carry, XS[t])
    y = ours(XS[t])
    _close(y, y_flax, rtol=1e-5, atol=1e-6)
  _close(ours.c.value, carry[0])
  _close(ours.h.value, carry[1])


def test_lstm_weights_copy_to_flax_optimized_lstm_cell():
  """brainstate LSTMCell -> nnx.OptimizedLSTMCell: the fused kernels are in
  Flax's [i, f, g, o] order, so swap the middle two gate blocks."""
  bsn.random.seed(1)
  ours = bsn.nn.LSTMCell(N_IN, N_OUT)
  ours.init_state(batch_size=B)
  gates = _split_lstm(ours)
  order = 'ifgo'
  flax_cell = nnx.OptimizedLSTMCell(N_IN, N_OUT, rngs=nnx.Rngs(0))
  flax_cell.dense_i.kernel[...] = jnp.concatenate([gates[g][0] for g in order], axis=1)
  flax_cell.dense_h.kernel[...] = jnp.concatenate([gates[g][1] for g in order], axis=1)
  flax_cell.dense_h.bias[...] = jnp.concatenate([gates[g][2] for g in order])
  carry = flax_cell.initialize_carry((B, N_IN), rngs=nnx.Rngs(1))
  for t in range(T):
    carry, y_flax = flax_cell(carry, XS[t])
    _close(ours(XS[t]), y_flax)


def _pure_classifier_loss(p, xs, labels):
  """The classifier below written by hand in plain JAX (the oracle)."""
  W, b = p['rnn']['W']['weight']['weight'], p['rnn']['W']['weight']['bias']
  h = c = jnp.zeros((xs.shape[1], N_OUT))
  for t in range(xs.shape[0]):
    i, g, f, o = jnp.split(jnp.concatenate([xs[t], h], -1) @ W + b, 4, -1)
    c = jax.nn.sigmoid(f + 1.) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
  logits = h @ p['out']['weight']['weight'] + p['out']['weight']['bias']
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def test_lstm_classifier_trains_with_nnx_optimizer():
  """An LSTM classifier made of brainstate_nnx layers inside a plain
  nnx.Module, trained one step by nnx.Optimizer under nnx.jit, equals the
  same step written in plain JAX."""

  class Classifier(nnx.Module):
    def __init__(self):
      self.rnn = bsn.nn.LSTMCell(N_IN, N_OUT)
      self.out = bsn.nn.Linear(N_OUT, 2)

    def __call__(self, xs):
      self.rnn.reset_state(batch_size=xs.shape[1])
      for t in range(xs.shape[0]):
        h = self.rnn(xs[t])
      return self.out(h)

  bsn.random.seed(0)
  model = Classifier()
  model.rnn.init_state(batch_size=B)
  labels = jnp.array([0, 1])
  def params_of(m):
    return {'rnn': {'W': {'weight': dict(m.rnn.W.weight.value)}},
            'out': {'weight': dict(m.out.weight.value)}}

  params = params_of(model)
  flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
  assert sorted('/'.join(map(str, k)) for k, _ in flat) == ['out/weight', 'rnn/W/weight']
  loss0, g = jax.jit(jax.value_and_grad(_pure_classifier_loss))(params, XS, labels)
  expected = jax.tree.map(lambda p, gi: p - 0.1 * gi, params, g)

  opt = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)

  @nnx.jit
  def step(model, opt):
    def loss_fn(m):
      return optax.softmax_cross_entropy_with_integer_labels(m(XS), labels).mean()
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    opt.update(model, grads)
    return loss

  _close(step(model, opt), loss0)
  jax.tree.map(_close, params_of(model), expected)
  assert model.rnn.h.value.shape == (B, N_OUT)  # the hidden State came back from nnx.jit


def test_orbax_round_trip_of_a_recurrent_model(tmp_path):
  """Parameters and hidden States of a model made of LSTMCell, Sequential,
  activation layers and plain functions save with orbax and restore into a
  fresh model (nnx.state / nnx.update)."""
  ocp = pytest.importorskip('orbax.checkpoint')

  def make(seed):
    bsn.random.seed(seed)
    m = bsn.nn.Sequential(bsn.nn.LSTMCell(N_IN, N_OUT), bsn.nn.PReLU(N_OUT), jnp.tanh,
                          bsn.nn.Linear.desc(out_size=2))
    bsn.nn.init_all_states(m, batch_size=B)
    return m

  src, dst = make(0), make(1)
  src(XS[0])  # non-zero hidden state
  path = str(tmp_path / 'ckpt')
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(path, nnx.state(src))
  ckpt.wait_until_finished()
  nnx.update(dst, ckpt.restore(path, nnx.state(dst)))
  _tree_equal(_values(dst), _values(src))
  assert type(dst.layers[0].h) is bsn.HiddenState
  _close(dst(XS[1]), src(XS[1]))
