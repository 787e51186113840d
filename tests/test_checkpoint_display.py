"""Checkpoints (orbax, as Flax recommends for NNX) and display of brainstate_nnx models."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import treescope
from flax import nnx

import brainstate_nnx as bs


class Net(bs.nn.Module):
  def __init__(self, seed):
    super().__init__()
    k1, k2 = jax.random.split(jax.random.key(seed))
    self.w = bs.ParamState(jax.random.normal(k1, (3, 2)))
    self.b = bs.ParamState(jax.random.normal(k2, (2,)))

  def __call__(self, x):
    return x @ self.w.value + self.b.value


class PureNet(nnx.Module):
  def __init__(self):
    self.w = nnx.Param(jnp.zeros((3, 2)))
    self.b = nnx.Param(jnp.zeros(2))

  def __call__(self, x):
    return x @ self.w[...] + self.b[...]


def _save(tmp_path, model):
  path = os.path.join(tmp_path, 'ckpt')
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(path, nnx.state(model))
  ckpt.wait_until_finished()
  return ckpt, path


def test_restore_into_fresh_model_gives_identical_outputs(tmp_path):
  src = Net(0)
  ckpt, path = _save(tmp_path, src)
  dst = Net(1)
  x = jnp.ones((4, 3))
  assert not np.allclose(src(x), dst(x))
  nnx.update(dst, ckpt.restore(path, nnx.state(dst)))
  np.testing.assert_array_equal(src(x), dst(x))
  assert type(dst.w) is bs.ParamState


def test_checkpoint_loads_into_equivalent_pure_nnx_model(tmp_path):
  src = Net(0)
  ckpt, path = _save(tmp_path, src)
  pure = PureNet()
  nnx.update(pure, ckpt.restore(path, nnx.state(pure)))
  x = jnp.arange(6.0).reshape(2, 3)
  np.testing.assert_array_equal(src(x), pure(x))


def test_flax_serialization_roundtrip():
  from flax import serialization

  src, dst = Net(0), Net(3)
  data = serialization.to_bytes(nnx.to_pure_dict(nnx.state(src)))
  target = nnx.to_pure_dict(nnx.state(dst))
  restored = serialization.from_bytes(target, data)
  state = nnx.state(dst)
  nnx.replace_by_pure_dict(state, restored)
  nnx.update(dst, state)
  np.testing.assert_array_equal(src.w.value, dst.w.value)


def test_repr_display_and_treescope_show_type_shape_dtype(capsys):
  m = Net(0)
  text = repr(m)  # BrainState's module repr: one attribute per line
  assert 'ParamState' in text and 'float32[3,2]' in text
  nnx.display(m)  # Flax's own display is kept
  shown = capsys.readouterr().out
  assert 'ParamState' in shown and '(3, 2)' in shown
  rendered = treescope.render_to_text(m)
  assert 'ParamState' in rendered and 'float32(3, 2)' in rendered
