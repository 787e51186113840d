"""``to_nnx`` / ``from_nnx``: brainstate_nnx models and Flax NNX models.

A brainstate_nnx model already *is* an NNX model, so ``to_nnx(model)`` returns
it unchanged (zero copy) and ``from_nnx`` of a brainstate_nnx model too. Flax
layers with a brainstate_nnx counterpart (``nnx.Linear``, ``nnx.Embed``,
``nnx.Conv``, ``nnx.LayerNorm``, ``nnx.LSTMCell``, ``nnx.Sequential`` of those) are converted to
it with their weights, so outputs are equal; any other NNX module is
*adopted* in place (its Variables become trackable States) and returned.

Example::

  >>> import jax.numpy as jnp
  >>> from flax import nnx
  >>> import brainstate_nnx as brainstate
  >>> lin = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
  >>> ours = brainstate.interop.from_nnx(lin)
  >>> type(ours).__name__, bool(jnp.allclose(ours(jnp.ones(3)), lin(jnp.ones(3))))
  ('Linear', True)
  >>> brainstate.interop.to_nnx(ours) is ours       # already an nnx.Module
  True
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import jax.numpy as jnp
import numpy as np
from flax import nnx

from .._state import adopt
from ._errors import ConversionError, MissingShapeError, UnmappedLayerError

__all__ = ['to_nnx', 'from_nnx', 'register_layer_mapping', 'supported_layers', 'LayerMapping']


class LayerMapping:
  """One conversion: ``flax`` class -> brainstate_nnx layer (``to_ours``) and,
  optionally, back (``to_nnx``). Our layer is named by class name (looked up
  in :mod:`brainstate_nnx.nn` when used)."""

  def __init__(self, ours: str, foreign: type, to_ours: Callable, to_foreign: Optional[Callable] = None):
    self.ours = ours
    self.foreign = foreign
    self.to_ours = to_ours
    self.to_foreign = to_foreign

  def __repr__(self):
    return f'LayerMapping({self.ours} <-> {self.foreign.__module__}.{self.foreign.__name__})'


_BY_FOREIGN: Dict[type, LayerMapping] = {}
_BY_OURS: Dict[str, LayerMapping] = {}


def register_layer_mapping(mapping: LayerMapping) -> None:
  """Adds (or replaces) a conversion between a Flax NNX layer and ours."""
  _BY_FOREIGN[mapping.foreign] = mapping
  _BY_OURS[mapping.ours] = mapping


def supported_layers() -> Dict[str, str]:
  """``{our layer name: flax class name}`` of the registered conversions."""
  return {k: f'{m.foreign.__module__}.{m.foreign.__name__}' for k, m in _BY_OURS.items()}


def _ours(name: str):
  from .. import nn

  cls = getattr(nn, name, None)
  if cls is None:
    raise UnmappedLayerError(f'brainstate_nnx.nn.{name} does not exist in this version.')
  return cls


# -- the table ------------------------------------------------------------------

def _linear_in(m, ctx):
  w = m.kernel[...]
  b = None if m.bias is None else m.bias[...]
  # the weights are passed as initial values: no random initialisation
  return _ours('Linear')(w.shape[0], w.shape[1], w_init=w, b_init=b)


def _linear_out(layer, ctx):
  p = layer.weight.value
  w = p['weight']
  m = nnx.Linear(w.shape[0], w.shape[1], use_bias='bias' in p, dtype=w.dtype,
                 param_dtype=w.dtype, rngs=nnx.Rngs(0))
  m.kernel[...] = w
  if 'bias' in p:
    m.bias[...] = p['bias']
  return m


def _embed_in(m, ctx):
  table = m.embedding[...]
  return _ours('Embedding')(table.shape[0], table.shape[1], embedding_init=table)


def _embed_out(layer, ctx):
  table = layer.weight.value
  m = nnx.Embed(table.shape[0], table.shape[1], dtype=table.dtype,
                param_dtype=table.dtype, rngs=nnx.Rngs(0))
  m.embedding[...] = table
  return m


def _conv_in(m, ctx):
  w = m.kernel[...]
  nd = w.ndim - 2
  if ctx.get('sample_input') is None:
    raise MissingShapeError(
      'converting an nnx.Conv needs sample_input= (one unbatched example or its '
      'shape, channels last): brainstate_nnx convolutions know their in_size.'
    )
  in_size = tuple(ctx['sample_input'])
  if any(d != 1 for d in np.atleast_1d(m.input_dilation or 1)):
    raise ConversionError('nnx.Conv with input_dilation != 1 is not supported.')
  groups = int(m.feature_group_count)
  if int(in_size[-1]) != int(w.shape[-2]) * groups:
    raise ConversionError(
      f'the nnx.Conv kernel expects {int(w.shape[-2]) * groups} input channels, '
      f'sample_input has {in_size[-1]} (channels last).'
    )
  bias = None if m.bias is None else jnp.reshape(m.bias[...], (1,) * nd + (-1,))
  return _ours(f'Conv{nd}d')(
    in_size, w.shape[-1], tuple(w.shape[:-2]), stride=m.strides or 1, padding=m.padding,
    rhs_dilation=m.kernel_dilation or 1, groups=groups, w_init=w, b_init=bias)


def _lstm_in(m, ctx):
  ki = [m.ii.kernel[...], m.ig.kernel[...], m.if_.kernel[...], m.io.kernel[...]]
  kh = [m.hi.kernel[...], m.hg.kernel[...], m.hf.kernel[...], m.ho.kernel[...]]
  b = [m.hi.bias[...], m.hg.bias[...], m.hf.bias[...] - 1.0, m.ho.bias[...]]
  num_in, h = ki[0].shape
  return _ours('LSTMCell')(
    num_in, h, w_init=jnp.concatenate([jnp.concatenate(ki, -1), jnp.concatenate(kh, -1)], 0),
    b_init=jnp.concatenate(b, -1))


def _lstm_out(layer, ctx):
  p = layer.W.weight.value
  h = layer.num_out
  num_in = p['weight'].shape[0] - h
  wi, wh = p['weight'][:num_in], p['weight'][num_in:]
  i_, g_, f_, o_ = jnp.split(wi, 4, -1)
  hi, hg, hf, ho = jnp.split(wh, 4, -1)
  bi, bg, bf, bo = jnp.split(p['bias'], 4, -1)
  m = nnx.LSTMCell(num_in, h, rngs=nnx.Rngs(0))
  for name, k in dict(ii=i_, ig=g_, if_=f_, io=o_, hi=hi, hg=hg, hf=hf, ho=ho).items():
    getattr(m, name).kernel[...] = k
  for name, bias in dict(hi=bi, hg=bg, hf=bf + 1.0, ho=bo).items():
    getattr(m, name).bias[...] = bias
  return m


def _conv_out(layer, ctx):
  p = layer.weight.value
  w = p['weight']
  m = nnx.Conv(w.shape[-2] * layer.groups, w.shape[-1], tuple(w.shape[:-2]),
               strides=tuple(layer.stride), padding=layer.padding,
               kernel_dilation=tuple(layer.rhs_dilation), feature_group_count=layer.groups,
               use_bias='bias' in p, dtype=w.dtype, param_dtype=w.dtype, rngs=nnx.Rngs(0))
  m.kernel[...] = w
  if 'bias' in p:
    m.bias[...] = jnp.reshape(p['bias'], (-1,))
  return m


def _layernorm_in(m, ctx):
  scale = None if m.scale is None else m.scale[...]
  bias = None if m.bias is None else m.bias[...]
  n = int(m.num_features)
  kw = {}
  if scale is not None:
    kw['scale_init'] = lambda *a, **k: scale
  if bias is not None:
    kw['bias_init'] = lambda *a, **k: bias
  return _ours('LayerNorm')((n,), epsilon=float(m.epsilon), use_scale=scale is not None,
                            use_bias=bias is not None, **kw)


def _layernorm_out(layer, ctx):
  p = layer.weight.value if getattr(layer, 'weight', None) is not None else {}
  n = int(layer.in_size[-1])
  m = nnx.LayerNorm(n, epsilon=float(layer.epsilon), use_scale='scale' in p,
                    use_bias='bias' in p, rngs=nnx.Rngs(0))
  if 'scale' in p:
    m.scale[...] = p['scale']
  if 'bias' in p:
    m.bias[...] = p['bias']
  return m


for _m in (
  LayerMapping('LayerNorm', nnx.LayerNorm, _layernorm_in, _layernorm_out),
  LayerMapping('Linear', nnx.Linear, _linear_in, _linear_out),
  LayerMapping('Embedding', nnx.Embed, _embed_in, _embed_out),
  LayerMapping('LSTMCell', nnx.LSTMCell, _lstm_in, _lstm_out),
  LayerMapping('Conv1d', nnx.Conv, _conv_in, _conv_out),
  LayerMapping('Conv2d', nnx.Conv, _conv_in, _conv_out),
  LayerMapping('Conv3d', nnx.Conv, _conv_in, _conv_out),
):
  register_layer_mapping(_m)


def _is_ours(model) -> bool:
  from ..nn import Module

  return isinstance(model, Module)


def _out_size(layer, in_size):
  out = getattr(layer, 'out_size', None)
  return tuple(out) if out is not None else in_size


def from_nnx(model: Any, *, sample_input: Any = None) -> Any:
  """A brainstate_nnx model equivalent to the Flax NNX ``model``.

  * a brainstate_nnx model is returned as it is;
  * a layer with a registered counterpart (see :func:`supported_layers`),
    or an ``nnx.Sequential`` of such layers and plain functions, becomes the
    brainstate_nnx layer(s) with the same weights (convolutions need
    ``sample_input``: one unbatched example or its shape);
  * any other NNX module is adopted in place (:func:`brainstate_nnx.adopt`)
    and returned: brainstate_nnx transforms then track its Variables.
  """
  if _is_ours(model):
    return model
  if not isinstance(model, nnx.Module):
    raise UnmappedLayerError(f'from_nnx expects an nnx.Module, got {type(model).__name__}')
  size = None if sample_input is None else tuple(np.shape(sample_input) if hasattr(sample_input, 'shape') else sample_input)
  if isinstance(model, nnx.Sequential):
    from ..nn import Sequential

    layers = []
    for layer in model.layers:
      if isinstance(layer, nnx.Module):
        conv = from_nnx(layer, sample_input=size)
        size = _out_size(conv, size)
        layers.append(conv)
      else:
        layers.append(layer)
    if not layers or not isinstance(layers[0], nnx.Module):
      raise ConversionError('the first element of an nnx.Sequential must be a layer.')
    seq = Sequential(*layers)
    return seq
  mapping = _BY_FOREIGN.get(type(model))
  if mapping is None:
    return adopt(model)
  if mapping.foreign is nnx.Conv:
    nd = model.kernel[...].ndim - 2
    mapping = _BY_OURS[f'Conv{nd}d']
  return mapping.to_ours(model, {'sample_input': size})


def to_nnx(model: Any) -> Any:
  """The model as a Flax NNX module.

  A brainstate_nnx model is an ``nnx.Module`` already and is returned as it
  is (no copy: ``nnx.split / state / jit / Optimizer`` work on it). Use
  :func:`to_flax_layers` for an equivalent model made of Flax's own layers.
  """
  if not isinstance(model, nnx.Module):
    raise UnmappedLayerError(f'to_nnx expects a Module, got {type(model).__name__}')
  return model


def to_flax_layers(model: Any) -> Any:
  """An equivalent model built from Flax's own layers (``nnx.Linear``, ...).

  Works for the layers of :func:`supported_layers` and ``Sequential`` s of
  them; raises :class:`UnmappedLayerError` naming the layer otherwise.

  Example::

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import brainstate_nnx as brainstate
    >>> ours = brainstate.nn.Linear(3, 2)
    >>> flax_lin = brainstate.interop.to_flax_layers(ours)
    >>> type(flax_lin).__name__, bool(jnp.allclose(flax_lin(jnp.ones(3)), ours(jnp.ones(3))))
    ('Linear', True)
  """
  from ..nn import Sequential

  if isinstance(model, Sequential):
    layers = [to_flax_layers(l) if isinstance(l, nnx.Module) else l for l in model.layers]
    return nnx.Sequential(*layers)
  mapping = _BY_OURS.get(type(model).__name__)
  if mapping is None or mapping.to_foreign is None or not _is_ours(model):
    raise UnmappedLayerError(
      f'no Flax counterpart registered for {type(model).__name__}; '
      f'supported: {sorted(_BY_OURS)}. The model itself is an nnx.Module: use it '
      'directly (to_nnx returns it).'
    )
  return mapping.to_foreign(model, {})
