"""Linear family: differential against BrainState 0.5.4, Flax interop, bad input."""

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.experimental import sparse as jsparse

import brainstate_nnx as bsn
from _layer_diff import bst, assert_tree_close, build, rand, run_both

MASK = jnp.asarray(np.random.RandomState(3).rand(4, 3) > 0.4, jnp.float32)
SIGN = jnp.asarray(np.where(np.random.RandomState(4).rand(4, 3) > 0.5, 1., -1.), jnp.float32)

SPECS = {
  'linear': lambda b: b.nn.Linear(4, 3),
  'linear_nobias': lambda b: b.nn.Linear(4, 3, b_init=None),
  'linear_mask': lambda b: b.nn.Linear(4, 3, w_mask=MASK),
  'linear_bias_init': lambda b: b.nn.Linear((4,), (3,), b_init=b.nn.init.Normal(0.5)),
  'linear_multidim': lambda b: b.nn.Linear((2, 4), (2, 3)),
  'scaledws': lambda b: b.nn.ScaledWSLinear(4, 3),
  'scaledws_plain': lambda b: b.nn.ScaledWSLinear(4, 3, ws_gain=False, b_init=None,
                                                   w_mask=jnp.ones((4, 1)), eps=1e-2),
  'signed': lambda b: b.nn.SignedWLinear(4, 3),
  'signed_sign': lambda b: b.nn.SignedWLinear(4, 3, w_sign=SIGN),
  'all2all': lambda b: b.nn.AllToAll(4, 3),
  'all2all_noself': lambda b: b.nn.AllToAll(4, 4, include_self=False,
                                            b_init=b.nn.init.Normal()),
  'all2all_scalar_noself': lambda b: b.nn.AllToAll(4, 4, w_init=0.5, include_self=False),
  'all2all_scalar_in_gt_out': lambda b: b.nn.AllToAll(4, 3, w_init=0.5, include_self=False),
  'all2all_scalar_out_gt_in': lambda b: b.nn.AllToAll(4, 6, w_init=0.5, include_self=False),
  'one2one': lambda b: b.nn.OneToOne(4),
  'one2one_bias': lambda b: b.nn.OneToOne(4, b_init=b.nn.init.Normal()),
  'lora': lambda b: b.nn.LoRA(4, 2, 3),
  'lora_base': lambda b: b.nn.LoRA(4, 2, 3, base_module=b.nn.Linear(4, 3)),
  'lora_in_size': lambda b: b.nn.LoRA(4, 2, 3, in_size=(5, 4)),
}


UNBATCHED = ('linear', 'linear_multidim', 'signed_sign', 'all2all_scalar_out_gt_in', 'lora_base')
CASES = [(n, True) for n in sorted(SPECS)] + [(n, False) for n in UNBATCHED]


@pytest.mark.parametrize('name,batched', CASES,
                         ids=[f"{n}-{'batch' if b else 'nobatch'}" for n, b in CASES])
def test_same_params_outputs_grads(name, batched):
  """Same seed: identical parameters; same input: same outputs; batched,
  under each library's own jit + grad, also the same parameter and input
  gradients; unbatched, an eager call."""
  if name == 'linear_multidim':
    shape = (5, 2, 4) if batched else (2, 4)
  else:
    shape = (5, 4) if batched else (4,)
  run_both(SPECS[name], rand(shape), grads=batched)


@pytest.mark.parametrize('fmt', ['CSR', 'CSC', 'COO'])
def test_sparse_linear_brainunit(fmt):
  """BrainState programs pass brainunit sparse matrices; they work unchanged."""
  dense = np.random.RandomState(0).rand(6, 5).astype(np.float32)
  dense = jnp.asarray(dense * (dense > 0.6))

  def spec(b):
    mat = getattr(u.sparse, fmt).fromdense(dense)
    return b.nn.SparseLinear(mat, b_init=b.nn.init.Normal(), in_size=6)

  ours = run_both(spec, rand((3, 6)), grads=fmt == 'CSR')
  x = rand((6,), 1)
  np.testing.assert_allclose(ours(x), x @ dense + ours.weight.value['bias'], rtol=1e-5)


def test_sparse_linear_jax_bcoo():
  """A jax.experimental.sparse matrix needs no brainunit; only stored values train."""
  dense = jnp.array([[1., 0., 2.], [0., 3., 0.]])
  layer = bsn.nn.SparseLinear(jsparse.BCOO.fromdense(dense), b_init=bsn.nn.init.ZeroInit(),
                              in_size=2)
  assert layer.in_size == (2,) and layer.out_size == (3,)
  x = jnp.array([[1., 2.], [3., -1.]])
  np.testing.assert_allclose(layer(x), x @ dense)
  params = layer.states(bsn.ParamState)
  grads = bsn.transform.grad(lambda: jnp.sum(layer(x) ** 2), params)()
  g = grads[('weight',)]['weight']
  dense_g = 2 * x.T @ (x @ dense)
  np.testing.assert_allclose(g, dense_g[dense != 0])  # BCOO stores row-major non-zeros
  # the matrix is pytree data of the nnx graph: nnx.jit traces it with the model
  np.testing.assert_allclose(nnx.jit(lambda m, v: m(v))(layer, x), x @ dense)
  # a BCSR matrix too (turned into BCOO, which can be a right operand)
  layer2 = bsn.nn.SparseLinear(jsparse.BCSR.fromdense(dense))
  np.testing.assert_allclose(layer2(x), x @ dense)


def test_units_linear_and_all2all():
  """brainunit Quantities flow through like in BrainState."""
  x = rand((2, 4)) * u.mV
  specs = [
    lambda b: b.nn.Linear(4, 3, b_init=None),
    lambda b: b.nn.AllToAll(4, 3),
    lambda b: b.nn.Linear(4, 3, w_init=b.nn.init.KaimingNormal(unit=u.mS), b_init=None),
    lambda b: b.nn.SignedWLinear(4, 3, w_init=b.nn.init.KaimingNormal(unit=u.mS)),
    lambda b: b.nn.OneToOne(4, w_init=b.nn.init.Normal(unit=u.mS)),
    lambda b: b.nn.ScaledWSLinear(4, 3),
  ]
  for spec in specs:
    ref, ours = build(bst, spec), build(bsn, spec)
    y_ref, y = ref(x), ours(x)
    assert isinstance(y, u.Quantity) and y.unit == y_ref.unit
    np.testing.assert_allclose(y.mantissa, y_ref.mantissa, rtol=1e-5, atol=1e-6)
  for b in (bst, bsn):
    layer = b.nn.AllToAll(5, 5)
    layer.weight.value = {'weight': jnp.ones((5, 5)) * u.siemens}
    y = layer(jnp.ones((1, 5)) * u.volt)
    assert y.unit == u.siemens * u.volt
    np.testing.assert_allclose(y.mantissa, 5.)


def test_hand_computed():
  lin = bsn.nn.Linear(2, 2, w_init=jnp.array([[1., 2.], [3., 4.]]), b_init=jnp.array([.5, -.5]))
  np.testing.assert_allclose(lin(jnp.array([1., 1.])), [4.5, 5.5])
  a2a = bsn.nn.AllToAll(3, 3, w_init=jnp.ones((3, 3)), include_self=False)
  np.testing.assert_allclose(a2a(jnp.array([1., 2., 3.])), [5., 4., 3.])
  one = bsn.nn.OneToOne(2, w_init=jnp.array([2., 3.]), b_init=jnp.array([1., 1.]))
  np.testing.assert_allclose(one(jnp.array([1., 2.])), [3., 7.])


def test_train_eval_same():
  """No linear layer depends on ``fit``: both modes give BrainState's numbers."""
  x = rand((3, 4))
  ref, ours = build(bst, SPECS['linear']), build(bsn, SPECS['linear'])
  for fit in (True, False):
    with bst.environ.context(fit=fit), bsn.environ.context(fit=fit):
      np.testing.assert_allclose(ours(x), ref(x), rtol=1e-5)


def test_state_structure_and_attributes():
  for name, spec in SPECS.items():
    ref, ours = build(bst, spec), build(bsn, spec)
    assert list(ref.states().keys()) == list(ours.states().keys()), name
    for attr in ('in_size', 'out_size', 'w_mask', 'eps', 'include_self', 'w_sign',
                 'in_features', 'out_features'):
      if hasattr(ref, attr):
        a, b = getattr(ref, attr), getattr(ours, attr)
        if isinstance(a, (jax.Array, np.ndarray)):
          np.testing.assert_array_equal(a, b)
        else:
          assert a == b, (name, attr, a, b)
  lin = bsn.nn.Linear(4, 3)
  assert type(lin).__module__ == 'brainstate_nnx.nn' and isinstance(lin, nnx.Module)
  assert isinstance(lin.weight, nnx.Param)


# -- bad input ----------------------------------------------------------------

BAD = [
  ('leading_dims', lambda b: b.nn.Linear((2, 3), (3, 4)), AssertionError),
  ('signed_leading_dims', lambda b: b.nn.SignedWLinear((2, 3), (3, 4)), AssertionError),
  ('a2a_leading_dims', lambda b: b.nn.AllToAll((2, 3), (3, 4)), AssertionError),
  ('sparse_not_sparse', lambda b: b.nn.SparseLinear(jnp.ones((3, 3))), AssertionError),
  ('wrong_features', lambda b: b.nn.Linear(3, 4)(jnp.ones((2, 5))), TypeError),
  ('ws_wrong_features', lambda b: b.nn.ScaledWSLinear(3, 4)(jnp.ones((2, 5))), TypeError),
  ('w_init_none', lambda b: b.nn.Linear(3, 4, w_init=None), ValueError),
  ('w_init_shape', lambda b: b.nn.Linear(3, 4, w_init=jnp.ones((5, 4))), ValueError),
  ('lora_base_not_callable', lambda b: b.nn.LoRA(3, 1, 2, base_module=3)(jnp.ones(3)),
   ValueError),
]


@pytest.mark.parametrize('name,fn,err', BAD, ids=[b[0] for b in BAD])
def test_bad_input(name, fn, err):
  with pytest.raises(err):
    fn(bst)
  with pytest.raises(err):
    fn(bsn)


def test_bad_features_message_names_fix():
  with pytest.raises(TypeError, match=r'in_size=\(3,\).*in_size=5'):
    bsn.nn.Linear(3, 4)(jnp.ones((2, 5)))


# -- Flax citizenship -------------------------------------------------------------

def test_weights_copy_to_and_from_nnx_linear():
  """``Linear.weight['weight'/'bias']`` is ``nnx.Linear.kernel/bias``."""
  ours = bsn.nn.Linear(4, 3, b_init=bsn.nn.init.Normal())
  flax_lin = nnx.Linear(4, 3, rngs=nnx.Rngs(0))
  flax_lin.kernel[...] = ours.weight.value['weight']
  flax_lin.bias[...] = ours.weight.value['bias']
  x = rand((5, 4))
  np.testing.assert_allclose(flax_lin(x), ours(x), rtol=1e-6)
  # and back: a Flax-trained layer loads into ours
  other = nnx.Linear(4, 3, rngs=nnx.Rngs(1))
  ours.weight.value = {'weight': other.kernel[...], 'bias': other.bias[...]}
  np.testing.assert_allclose(ours(x), other(x), rtol=1e-6)


def test_weights_copy_lora_nnx_lora():
  """``LoRA.weight['lora_a'/'lora_b']`` are ``nnx.LoRA.lora_a/lora_b``."""
  ours = bsn.nn.LoRA(4, 2, 3, base_module=bsn.nn.Linear(4, 3))
  flax_lora = nnx.LoRA(4, 2, 3, base_module=nnx.Linear(4, 3, rngs=nnx.Rngs(1)), rngs=nnx.Rngs(0))
  flax_lora.lora_a[...] = ours.weight.value['lora_a']
  flax_lora.lora_b[...] = ours.weight.value['lora_b']
  flax_lora.base_module.kernel[...] = ours.base_module.weight.value['weight']
  flax_lora.base_module.bias[...] = ours.base_module.weight.value['bias']
  x = rand((5, 4))
  np.testing.assert_allclose(flax_lora(x), ours(x), rtol=1e-5, atol=1e-6)


class Head(nnx.Module):
  """A plain nnx.Module holding brainstate_nnx layers next to a Flax one."""

  def __init__(self):
    self.lin = bsn.nn.Linear(4, 3)
    self.ws = bsn.nn.ScaledWSLinear(3, 3)
    self.lora = bsn.nn.LoRA(3, 2, 3, base_module=bsn.nn.Linear(3, 3))
    self.out = nnx.Linear(3, 2, rngs=nnx.Rngs(0))

  def __call__(self, x):
    return self.out(jnp.tanh(self.lora(jax.nn.relu(self.ws(self.lin(x))))))


def test_nnx_optimizer_step_in_plain_nnx_module():
  bsn.random.seed(0)
  model = Head()
  params = nnx.state(model, nnx.Param)
  flat = {'/'.join(map(str, k)): v for k, v in nnx.to_flat_state(params)}
  assert sorted(flat) == ['lin/weight', 'lora/base_module/weight', 'lora/weight',
                          'out/bias', 'out/kernel', 'ws/weight']
  x, y = rand((6, 4)), rand((6, 2), 1)

  def pure_forward(p, x):
    h = x @ p['lin']['weight'] + p['lin']['bias']
    w = bsn.nn.weight_standardization(p['ws']['weight'], 1e-4, p['ws']['gain'])
    h = jax.nn.relu(h @ w + p['ws']['bias'])
    h = h @ p['lora']['lora_a'] @ p['lora']['lora_b'] + h @ p['base']['weight'] + p['base']['bias']
    return jnp.tanh(h) @ p['out']['kernel'] + p['out']['bias']

  pure = {
    'lin': dict(model.lin.weight.value), 'ws': dict(model.ws.weight.value),
    'lora': dict(model.lora.weight.value), 'base': dict(model.lora.base_module.weight.value),
    'out': {'kernel': model.out.kernel[...], 'bias': model.out.bias[...]},
  }
  tx = optax.adam(1e-2)
  pure_loss = lambda p: jnp.mean((pure_forward(p, x) - y) ** 2)

  @jax.jit
  def pure_step(p, s):
    l, g = jax.value_and_grad(pure_loss)(p)
    upd, s = tx.update(g, s, p)
    return optax.apply_updates(p, upd), s, l

  opt_state = tx.init(pure)
  ref_losses = []
  for _ in range(2):
    pure, opt_state, l = pure_step(pure, opt_state)
    ref_losses.append(float(l))

  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
    optimizer.update(model, grads)
    return loss

  losses = [float(step(model, optimizer, x, y)) for _ in range(2)]
  np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
  np.testing.assert_allclose(model.lin.weight.value['weight'], pure['lin']['weight'], rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(model.lora.weight.value['lora_b'], pure['lora']['lora_b'],
                             rtol=1e-5, atol=1e-6)
  # the layers keep working BrainState-style after the nnx update
  out = bsn.transform.jit(lambda: model(x))()
  np.testing.assert_allclose(out, jax.jit(pure_forward)(pure, x), rtol=1e-5, atol=1e-6)
