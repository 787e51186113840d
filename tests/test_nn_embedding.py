"""Embedding: differential against BrainState 0.5.4, Flax interop, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import brainstate_nnx as bsn
from _layer_diff import bst, assert_tree_close, build, run_both

IDX = jnp.array([[1, 3, 3], [0, 5, 1]])

SPECS = {
  'plain': lambda b: b.nn.Embedding(7, 4),
  'tuple_size': lambda b: b.nn.Embedding(7, (2, 3)),
  'padding': lambda b: b.nn.Embedding(7, 4, padding_idx=3),
  'freq_padding': lambda b: b.nn.Embedding(7, 4, padding_idx=1, scale_grad_by_freq=True),
  'freeze': lambda b: b.nn.Embedding(7, 4, freeze=True),
  'normal_init': lambda b: b.nn.Embedding(7, 4, embedding_init=b.nn.init.Normal(0., 2.)),
  'max_norm': lambda b: b.nn.Embedding(7, 4, max_norm=0.5),
}


CASES = [(n, '2d') for n in sorted(SPECS)] + [
  ('plain', '1d'), ('plain', 'scalar'), ('freq_padding', '1d'), ('max_norm', 'scalar')]
INDICES = {'2d': IDX, '1d': IDX[0], 'scalar': jnp.array(2)}


@pytest.mark.parametrize('name,idx', CASES, ids=[f'{n}-{i}' for n, i in CASES])
def test_same_params_outputs_grads(name, idx):
  """Same seed: identical tables; same indices: same outputs and gradients
  under each library's own jit + grad."""
  run_both(SPECS[name], INDICES[idx])


def test_grad_options_hand_computed():
  """padding_idx rows get no gradient; scale_grad_by_freq divides by counts."""
  emb = bsn.nn.Embedding(4, 2, padding_idx=0, scale_grad_by_freq=True)
  idx = jnp.array([0, 2, 2, 3])
  g = bsn.transform.grad(lambda: emb(idx).sum(), emb.states(bsn.ParamState))()
  np.testing.assert_allclose(g[('weight',)], [[0, 0], [0, 0], [1, 1], [1, 1]])
  frozen = bsn.nn.Embedding(4, 2, freeze=True)
  g = bsn.transform.grad(lambda: frozen(idx).sum(), frozen.states(bsn.ParamState))()
  np.testing.assert_allclose(g[('weight',)], 0.)


def test_max_norm_eager_writes_back_and_jit_does_not():
  """As BrainState: an eager call renormalizes the looked-up rows in place; under
  a transform the output uses renormalized rows but the table is left alone."""
  for lib in (bst, bsn):
    lib.random.seed(0)
  ref = bst.nn.Embedding(6, 3, max_norm=0.3, embedding_init=bst.nn.init.Normal())
  ours = bsn.nn.Embedding(6, 3, max_norm=0.3, embedding_init=bsn.nn.init.Normal())
  before = ours.weight.value
  y_jit = bsn.transform.jit(lambda i: ours(i))(jnp.array([1, 2]))
  np.testing.assert_array_equal(ours.weight.value, before)
  np.testing.assert_allclose(y_jit, bst.transform.jit(lambda i: ref(i))(jnp.array([1, 2])),
                             rtol=1e-6)
  y_ref, y = ref(jnp.array([1, 2])), ours(jnp.array([1, 2]))
  np.testing.assert_allclose(y, y_ref, rtol=1e-6)
  np.testing.assert_allclose(ours.weight.value, ref.weight.value, rtol=1e-6)
  norms = np.linalg.norm(np.asarray(ours.weight.value), axis=1)
  assert (norms[[1, 2]] <= 0.3 + 1e-6).all() and (norms[[0, 3]] > 0.3).all()


def test_max_norm_with_padding_under_jit():
  """BrainState's boolean indexing fails under jit with padding_idx; ours works."""
  bsn.random.seed(0)
  emb = bsn.nn.Embedding(5, 2, padding_idx=0, max_norm=0.1, embedding_init=bsn.nn.init.Normal())
  emb.weight.value = emb.weight.value.at[0].set(jnp.array([3., 4.]))
  y = bsn.transform.jit(lambda i: emb(i))(jnp.array([0, 2]))
  np.testing.assert_allclose(y[0], [3., 4.])  # the padding row is not renormalized
  np.testing.assert_allclose(np.linalg.norm(y[1]), 0.1, rtol=1e-5)


def test_from_pretrained():
  table = jnp.arange(12.).reshape(4, 3)
  for lib in (bst, bsn):
    emb = lib.nn.Embedding.from_pretrained(table, padding_idx=1)
    assert emb.freeze and emb.num_embeddings == 4 and emb.embedding_size == (3,)
    np.testing.assert_array_equal(emb.weight.value, table)  # padding row kept as given
    np.testing.assert_array_equal(emb(jnp.array([1, 3])), table[jnp.array([1, 3])])
  ref = bst.nn.Embedding.from_pretrained(table, freeze=False)
  ours = bsn.nn.Embedding.from_pretrained(table, freeze=False)
  assert ref.freeze is ours.freeze is False


def test_attributes_and_train_eval():
  ref, ours = build(bst, SPECS['padding']), build(bsn, SPECS['padding'])
  for attr in ('num_embeddings', 'embedding_size', 'out_size', 'padding_idx', 'max_norm',
               'norm_type', 'scale_grad_by_freq', 'freeze', 'in_size'):
    assert getattr(ref, attr) == getattr(ours, attr), attr
  for fit in (True, False):
    with bst.environ.context(fit=fit), bsn.environ.context(fit=fit):
      np.testing.assert_array_equal(ours(IDX), ref(IDX))


BAD = [
  ('float_indices', lambda b: b.nn.Embedding(5, 3)(jnp.ones(3)), TypeError),
  ('negative_num', lambda b: b.nn.Embedding(-1, 3), ValueError),
  ('negative_size', lambda b: b.nn.Embedding(5, (3, -1)), ValueError),
  ('empty_size', lambda b: b.nn.Embedding(5, ()), ValueError),
  ('padding_idx_range', lambda b: b.nn.Embedding(5, 3, padding_idx=5), ValueError),
  ('padding_idx_negative', lambda b: b.nn.Embedding(5, 3, padding_idx=-1), ValueError),
  ('max_norm', lambda b: b.nn.Embedding(5, 3, max_norm=0.), ValueError),
  ('pretrained_1d', lambda b: b.nn.Embedding.from_pretrained(jnp.ones(3)), ValueError),
]


@pytest.mark.parametrize('name,fn,err', BAD, ids=[b[0] for b in BAD])
def test_bad_input(name, fn, err):
  with pytest.raises(err):
    fn(bst)
  with pytest.raises(err):
    fn(bsn)


def test_float_indices_message_names_fix():
  with pytest.raises(TypeError, match='astype'):
    bsn.nn.Embedding(5, 3)(jnp.ones(3))


# -- Flax citizenship -------------------------------------------------------------

def test_weights_copy_to_and_from_nnx_embed():
  """``Embedding.weight`` is ``nnx.Embed.embedding``."""
  ours = bsn.nn.Embedding(7, 4)
  flax_emb = nnx.Embed(7, 4, rngs=nnx.Rngs(0))
  flax_emb.embedding[...] = ours.weight.value
  np.testing.assert_array_equal(flax_emb(IDX), ours(IDX))
  other = nnx.Embed(7, 4, rngs=nnx.Rngs(1))
  ours.weight.value = other.embedding[...]
  np.testing.assert_array_equal(ours(IDX), other(IDX))


class Classifier(nnx.Module):
  def __init__(self):
    self.emb = bsn.nn.Embedding(7, 4, padding_idx=0)
    self.fc = bsn.nn.Linear(4, 2)

  def __call__(self, idx):
    return self.fc(self.emb(idx).mean(axis=-2))


def test_nnx_optimizer_step_in_plain_nnx_module():
  bsn.random.seed(0)
  model = Classifier()
  params = nnx.state(model, nnx.Param)
  assert sorted('/'.join(map(str, k)) for k, _ in nnx.to_flat_state(params)) == [
    'emb/weight', 'fc/weight']
  y = jnp.array([[1., 0.], [0., 1.]])
  table0, fc0 = model.emb.weight.value, dict(model.fc.weight.value)

  def pure(p):
    h = p['table'][IDX].mean(axis=-2)
    return jnp.mean((h @ p['w'] + p['b'] - y) ** 2)

  p = {'table': table0, 'w': fc0['weight'], 'b': fc0['bias']}
  g = jax.grad(pure)(p)
  g['table'] = g['table'].at[0].set(0.)  # padding row gets no gradient
  tx = optax.sgd(0.5)
  upd, _ = tx.update(g, tx.init(p), p)
  p = optax.apply_updates(p, upd)

  optimizer = nnx.Optimizer(model, optax.sgd(0.5), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(IDX) - y) ** 2))(model)
    optimizer.update(model, grads)
    return loss

  np.testing.assert_allclose(step(model, optimizer), pure({'table': table0, 'w': fc0['weight'],
                                                           'b': fc0['bias']}), rtol=1e-6)
  np.testing.assert_allclose(model.emb.weight.value, p['table'], rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(model.emb.weight.value[0], 0.)
  assert_tree_close(dict(model.fc.weight.value), {'weight': p['w'], 'bias': p['b']})
