"""Convolutions: differential against BrainState 0.5.4, Flax interop, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import brainstate_nnx as bsn
from _layer_diff import bst, build, rand, run_both

# (spec, unbatched input shape)
SPECS = {
  'conv1d_valid_stride_bias': (lambda b: b.nn.Conv1d((9, 2), 4, 3, stride=2, padding='VALID',
                                                     b_init=b.nn.init.Normal()), (9, 2)),
  'conv1d_cf_pad': (lambda b: b.nn.Conv1d((2, 8), 3, 3, padding=(1, 2), channel_first=True,
                                          b_init=b.nn.init.Normal()), (2, 8)),
  'conv2d': (lambda b: b.nn.Conv2d((6, 6, 2), 3, 3), (6, 6, 2)),
  'conv2d_groups_dil': (lambda b: b.nn.Conv2d((7, 7, 4), 6, (3, 2), rhs_dilation=2, groups=2,
                                              padding=1, b_init=b.nn.init.Normal()), (7, 7, 4)),
  'conv2d_lhs_dil_mask': (lambda b: b.nn.Conv2d((5, 5, 2), 2, 3, lhs_dilation=2, padding=1,
                                                w_mask=jnp.asarray(np.random.RandomState(0).rand(
                                                  3, 3, 2, 2) > .3, jnp.float32)), (5, 5, 2)),
  'conv2d_cf': (lambda b: b.nn.Conv2d((2, 6, 5), 3, 3, stride=(2, 1), channel_first=True,
                                      b_init=b.nn.init.ZeroInit()), (2, 6, 5)),
  'conv3d': (lambda b: b.nn.Conv3d((4, 4, 3, 2), 2, 2, padding='VALID',
                                   b_init=b.nn.init.Normal()), (4, 4, 3, 2)),
  'ws1d': (lambda b: b.nn.ScaledWSConv1d((8, 2), 3, 3, b_init=b.nn.init.Normal()), (8, 2)),
  'ws2d': (lambda b: b.nn.ScaledWSConv2d((6, 6, 2), 4, 3), (6, 6, 2)),
  'ws2d_nogain_cf': (lambda b: b.nn.ScaledWSConv2d((2, 6, 6), 4, 3, ws_gain=False, eps=1e-2,
                                                   channel_first=True), (2, 6, 6)),
  'ws3d': (lambda b: b.nn.ScaledWSConv3d((3, 3, 3, 2), 2, 2, groups=2), (3, 3, 3, 2)),
  'convT1d': (lambda b: b.nn.ConvTranspose1d((5, 2), 3, 3, stride=2,
                                             b_init=b.nn.init.Normal()), (5, 2)),
  'convT1d_valid': (lambda b: b.nn.ConvTranspose1d((5, 2), 3, 4, stride=3, padding='VALID'),
                    (5, 2)),
  'convT2d': (lambda b: b.nn.ConvTranspose2d((4, 4, 2), 3, 3, stride=2), (4, 4, 2)),
  'convT2d_groups_cf': (lambda b: b.nn.ConvTranspose2d((4, 3, 3), 2, (2, 3), stride=(2, 1),
                                                       groups=2, channel_first=True,
                                                       rhs_dilation=(1, 2),
                                                       b_init=b.nn.init.Normal()), (4, 3, 3)),
  'convT2d_explicit': (lambda b: b.nn.ConvTranspose2d((4, 4, 2), 2, 3, stride=2,
                                                      padding=[(1, 0), (2, 1)]), (4, 4, 2)),
  'convT3d': (lambda b: b.nn.ConvTranspose3d((2, 3, 2, 1), 2, 2, stride=2), (2, 3, 2, 1)),
}


@pytest.mark.parametrize('name', sorted(SPECS))
def test_same_params_outputs_grads(name):
  """Same seed: identical kernels/biases; same input: same outputs and gradients.
  Batched inputs through jit + grad, then one unbatched eager call."""
  spec, shape = SPECS[name]
  ours = run_both(spec, rand((2,) + shape))
  ref = build(bst, spec)
  x = rand(shape, 1)
  y = ours(x)
  assert y.shape == tuple(ours.out_size)
  np.testing.assert_allclose(y, ref(x), rtol=1e-5, atol=1e-6)


def test_attributes_match_brainstate():
  for name, (spec, _) in SPECS.items():
    ref, ours = build(bst, spec), build(bsn, spec)
    for attr in ('in_size', 'out_size', 'in_channels', 'out_channels', 'kernel_size', 'stride',
                 'padding', 'lhs_dilation', 'rhs_dilation', 'groups', 'kernel_shape',
                 'channel_first', 'channels_last', 'dimension_numbers', 'padding_mode', 'eps'):
      if hasattr(ref, attr):
        assert getattr(ref, attr) == getattr(ours, attr), (name, attr)
    assert list(ref.states().keys()) == list(ours.states().keys()) == [('weight',)]


def test_hand_computed_conv1d():
  """A 1-D 'VALID' convolution with a known kernel is a sliding dot product."""
  conv = bsn.nn.Conv1d((5, 1), 1, 2, padding='VALID', w_init=jnp.array([1., 2.]).reshape(2, 1, 1),
                       b_init=jnp.full((1, 1), .5))
  x = jnp.arange(5.).reshape(5, 1)
  np.testing.assert_allclose(conv(x)[:, 0], [2.5, 5.5, 8.5, 11.5])


def test_train_eval_same():
  spec, shape = SPECS['conv2d']
  ref, ours = build(bst, spec), build(bsn, spec)
  x = rand((1,) + shape)
  for fit in (True, False):
    with bst.environ.context(fit=fit), bsn.environ.context(fit=fit):
      np.testing.assert_allclose(ours(x), ref(x), rtol=1e-5, atol=1e-6)


def test_vmap_over_unbatched_calls():
  """``transform.vmap`` maps the unbatched call; it equals the batched call, as in BrainState."""
  spec, shape = SPECS['conv2d']
  ref, ours = build(bst, spec), build(bsn, spec)
  x = rand((3,) + shape)
  y = bsn.transform.vmap(ours)(x)
  np.testing.assert_allclose(y, ours(x), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(y, bst.transform.vmap(ref)(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('padding', [1, (1, 2), [(1, 2)], [(0, 1), (2, 0)], 'VALID'])
def test_padding_forms(padding):
  for cls in ('Conv2d', 'ConvTranspose2d'):
    ref = getattr(bst.nn, cls)((6, 6, 2), 2, 3, padding=padding)
    ours = getattr(bsn.nn, cls)((6, 6, 2), 2, 3, padding=padding)
    assert ours.padding == ref.padding and ours.out_size == ref.out_size


# -- bad input ----------------------------------------------------------------

BAD = [
  ('in_size_length', lambda b: b.nn.Conv2d((6, 6), 2, 3), ValueError),
  ('T_in_size_length', lambda b: b.nn.ConvTranspose2d((6, 6), 2, 3), ValueError),
  ('padding_mode', lambda b: b.nn.Conv2d((6, 6, 2), 2, 3, padding='FULL'), ValueError),
  ('padding_mode_lower', lambda b: b.nn.Conv1d((6, 2), 2, 3, padding='same'), ValueError),
  ('padding_empty', lambda b: b.nn.Conv2d((6, 6, 2), 2, 3, padding=()), ValueError),
  ('padding_len', lambda b: b.nn.Conv2d((6, 6, 2), 2, 3, padding=(1, 2, 3)), ValueError),
  ('padding_type', lambda b: b.nn.Conv2d((6, 6, 2), 2, 3, padding=1.5), ValueError),
  ('padding_elem', lambda b: b.nn.Conv2d((6, 6, 2), 2, 3, padding=['a', 'b']), ValueError),
  ('kernel_size_len', lambda b: b.nn.Conv2d((6, 6, 2), 2, (3, 3, 3)), TypeError),
  ('lhs_dilation_string_padding', lambda b: b.nn.Conv2d((6, 6, 2), 2, 3, lhs_dilation=2),
   ValueError),
  ('groups_out', lambda b: b.nn.Conv2d((6, 6, 4), 3, 3, groups=2), ValueError),
  ('groups_in', lambda b: b.nn.Conv2d((6, 6, 3), 4, 3, groups=2), ValueError),
  ('T_groups_in', lambda b: b.nn.ConvTranspose1d((6, 3), 4, 3, groups=2), ValueError),
  ('wrong_rank', lambda b: b.nn.Conv2d((6, 6, 2), 2, 3)(jnp.ones((6, 2))), ValueError),
  ('wrong_rank_high', lambda b: b.nn.Conv1d((6, 2), 2, 3)(jnp.ones((1, 1, 6, 2))), ValueError),
  ('wrong_channels', lambda b: b.nn.Conv2d((6, 6, 2), 2, 3)(jnp.ones((1, 6, 6, 3))), ValueError),
  ('wrong_spatial', lambda b: b.nn.ScaledWSConv2d((6, 6, 2), 2, 3)(jnp.ones((5, 6, 2))),
   ValueError),
]


@pytest.mark.parametrize('name,fn,err', BAD, ids=[b[0] for b in BAD])
def test_bad_input(name, fn, err):
  with pytest.raises(err):
    fn(bst)
  with pytest.raises(err):
    fn(bsn)


def test_kernel_larger_than_input_is_an_error():
  """BrainState silently builds a layer with an empty output (out_size
  ``(0, 0, C)``); brainstate_nnx refuses with a message that names the fix."""
  assert bst.nn.Conv2d((4, 4, 3), 5, 7, padding='VALID').out_size == (0, 0, 5)
  with pytest.raises(ValueError, match='does not fit the input.*padding="SAME"'):
    bsn.nn.Conv2d((4, 4, 3), 5, 7, padding='VALID')
  with pytest.raises(ValueError, match='does not fit'):
    bsn.nn.Conv1d((4, 2), 1, 3, rhs_dilation=2, padding='VALID')
  # 'SAME' pads, so a large kernel is fine (as in BrainState)
  assert bsn.nn.Conv2d((4, 4, 3), 5, 7).out_size == (4, 4, 5)


# -- Flax citizenship -------------------------------------------------------------

@pytest.mark.parametrize('kw', [
  dict(stride=1, padding='SAME', groups=1, rhs_dilation=1),
  dict(stride=2, padding='VALID', groups=2, rhs_dilation=1),
  dict(stride=1, padding=((1, 0), (2, 1)), groups=1, rhs_dilation=2),
], ids=['same', 'valid_stride_groups', 'explicit_dilated'])
def test_weights_copy_conv2d_nnx_conv(kw):
  """``Conv2d.weight['weight']`` is ``nnx.Conv.kernel`` (both HWIO); the bias
  ``(1, 1, C_out)`` is ``nnx.Conv.bias`` ``(C_out,)`` reshaped."""
  ours = bsn.nn.Conv2d((7, 7, 4), 6, 3, stride=kw['stride'], padding=kw['padding'],
                       groups=kw['groups'], rhs_dilation=kw['rhs_dilation'],
                       b_init=bsn.nn.init.Normal())
  flax_conv = nnx.Conv(4, 6, (3, 3), strides=kw['stride'], padding=kw['padding'],
                       feature_group_count=kw['groups'], kernel_dilation=kw['rhs_dilation'],
                       rngs=nnx.Rngs(0))
  assert flax_conv.kernel[...].shape == ours.weight.value['weight'].shape
  flax_conv.kernel[...] = ours.weight.value['weight']
  flax_conv.bias[...] = ours.weight.value['bias'].reshape(-1)
  x = rand((2, 7, 7, 4))
  np.testing.assert_allclose(flax_conv(x), ours(x), rtol=1e-5, atol=1e-6)
  # and back
  other = nnx.Conv(4, 6, (3, 3), strides=kw['stride'], padding=kw['padding'],
                   feature_group_count=kw['groups'], kernel_dilation=kw['rhs_dilation'],
                   rngs=nnx.Rngs(1))
  ours.weight.value = {'weight': other.kernel[...], 'bias': other.bias[...].reshape(1, 1, -1)}
  np.testing.assert_allclose(ours(x), other(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('padding', ['SAME', 'VALID'])
def test_weights_copy_conv_transpose2d_nnx(padding):
  """``ConvTranspose2d`` is ``nnx.ConvTranspose(transpose_kernel=True)``: the
  kernel ``(kh, kw, C_out, C_in)`` copies as is, the bias is reshaped."""
  ours = bsn.nn.ConvTranspose2d((4, 5, 3), 2, 3, stride=2, padding=padding,
                                b_init=bsn.nn.init.Normal())
  flax_ct = nnx.ConvTranspose(3, 2, (3, 3), strides=2, padding=padding, transpose_kernel=True,
                              rngs=nnx.Rngs(0))
  assert flax_ct.kernel[...].shape == ours.weight.value['weight'].shape
  flax_ct.kernel[...] = ours.weight.value['weight']
  flax_ct.bias[...] = ours.weight.value['bias'].reshape(-1)
  x = rand((2, 4, 5, 3))
  np.testing.assert_allclose(flax_ct(x), ours(x), rtol=1e-5, atol=1e-6)


class CNN(nnx.Module):
  """A plain nnx.Module built from brainstate_nnx convolutions and a Linear."""

  def __init__(self):
    self.c1 = bsn.nn.Conv2d((6, 6, 1), 3, 3, b_init=bsn.nn.init.ZeroInit())
    self.c2 = bsn.nn.ScaledWSConv2d((6, 6, 3), 2, 3, stride=2)
    self.up = bsn.nn.ConvTranspose1d((9, 2), 2, 2, stride=1)
    self.fc = bsn.nn.Linear(18, 2)

  def __call__(self, x):
    h = jax.nn.relu(self.c1(x))
    h = jax.nn.relu(self.c2(h))                 # (B, 3, 3, 2)
    h = self.up(h.reshape(h.shape[0], 9, 2))    # (B, 9, 2)
    return self.fc(h.reshape(h.shape[0], -1))


def test_nnx_optimizer_step_in_plain_nnx_module():
  """One nnx.Optimizer step under nnx.jit equals the same step through
  brainstate_nnx's own grad + optax (and keeps the model usable both ways)."""
  bsn.random.seed(0)
  model = CNN()
  x, y = rand((4, 6, 6, 1)), rand((4, 2), 1)
  loss_fn = lambda m: jnp.mean((m(x) - y) ** 2)
  params = nnx.state(model, nnx.Param)
  assert {k: sorted(v.value) for k, v in nnx.to_flat_state(params)} == {
    ('c1', 'weight'): ['bias', 'weight'], ('c2', 'weight'): ['gain', 'weight'],
    ('up', 'weight'): ['weight'], ('fc', 'weight'): ['bias', 'weight']}
  clone = nnx.clone(model)

  # reference: brainstate_nnx grad over the clone's ParamStates + optax by hand
  ps = bsn.nn.states(clone, bsn.ParamState)
  tx = optax.adam(1e-2)

  @bsn.transform.jit
  def ref_step(opt_state):
    grads, l = bsn.transform.grad(lambda: loss_fn(clone), ps, return_value=True)()
    values = {k: v.value for k, v in ps.items()}
    upd, opt_state = tx.update(dict(grads), opt_state, values)
    new = optax.apply_updates(values, upd)
    for k in ps:
      ps[k].value = new[k]
    return opt_state, l

  opt_state = tx.init({k: v.value for k, v in ps.items()})
  ref_losses = []
  for _ in range(2):
    opt_state, l = ref_step(opt_state)
    ref_losses.append(float(l))

  optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer):
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

  losses = [float(step(model, optimizer)) for _ in range(2)]
  np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
  np.testing.assert_allclose(model.c2.weight.value['gain'], clone.c2.weight.value['gain'],
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(bsn.transform.jit(lambda: model(x))(), clone(x), rtol=1e-5,
                             atol=1e-6)


def test_orbax_checkpoint_round_trip(tmp_path):
  """``nnx.state`` of a model of these layers saves and restores with orbax,
  dict-valued ParamStates and the masks' data arrays included."""
  import orbax.checkpoint as ocp

  def make(seed):
    bsn.random.seed(seed)
    return bsn.nn.Conv2d((6, 6, 2), 3, 3, b_init=bsn.nn.init.Normal(),
                         w_mask=jnp.ones((3, 3, 2, 3)))

  src, dst = make(0), make(1)
  x = rand((1, 6, 6, 2))
  assert not np.allclose(src(x), dst(x))
  ckpt = ocp.StandardCheckpointer()
  path = tmp_path / 'ckpt'
  ckpt.save(path, nnx.state(src))
  ckpt.wait_until_finished()
  nnx.update(dst, ckpt.restore(path, nnx.state(dst)))
  np.testing.assert_array_equal(src(x), dst(x))
  assert type(dst.weight) is bsn.ParamState
