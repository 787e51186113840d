"""Padding layers: reflection, replication, zero, constant and circular, in 1-3 D.

Inputs are channel-last, ``(*spatial, C)`` or ``(N, *spatial, C)``; only the
spatial axes are padded. ``padding`` is an int (every side of every spatial
axis), one int per spatial axis (both sides), or ``2 * ndim`` ints
``(left1, right1, left2, right2, ...)``.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from ._module import Module

__all__ = [
  'ReflectionPad1d', 'ReflectionPad2d', 'ReflectionPad3d',
  'ReplicationPad1d', 'ReplicationPad2d', 'ReplicationPad3d',
  'ZeroPad1d', 'ZeroPad2d', 'ZeroPad3d',
  'ConstantPad1d', 'ConstantPad2d', 'ConstantPad3d',
  'CircularPad1d', 'CircularPad2d', 'CircularPad3d',
]


def _format_padding(padding, ndim: int) -> list:
  """``padding`` as a list of ``(before, after)`` pairs, one per spatial axis."""
  if isinstance(padding, (int, np.integer)) or getattr(padding, 'ndim', None) == 0:
    p = int(padding)
    return [(p, p) for _ in range(ndim)]
  pads = list(padding)
  if len(pads) == ndim:
    return [(p, p) for p in pads]
  if len(pads) == 2 * ndim:
    return [(pads[2 * i], pads[2 * i + 1]) for i in range(ndim)]
  raise ValueError(
    f'Padding must have length {ndim} or {2 * ndim}, got {len(pads)}: give one '
    f'int for all sides, {ndim} int(s) (same before/after per axis) or '
    f'{2 * ndim} ints (before1, after1, ...).'
  )


class _PadNd(Module):
  """Shared body: ``jnp.pad`` of the spatial axes with a fixed mode."""

  __module__ = 'brainstate_nnx.nn'
  spatial_dims: int
  pad_mode: str

  def __init__(self, padding, in_size=None, name: Optional[str] = None):
    super().__init__(name=name)
    self.padding = _format_padding(padding, self.spatial_dims)
    self._infer_out_size(in_size)

  def _infer_out_size(self, in_size) -> None:
    if in_size is not None:
      from .. import environ

      self.in_size = in_size
      shape = (in_size,) if isinstance(in_size, int) else tuple(in_size)
      out = jax.eval_shape(self.update, jax.ShapeDtypeStruct(shape, environ.dftype()))
      self.out_size = out.shape

  def _pad_kwargs(self) -> dict:
    return {'mode': self.pad_mode}

  def update(self, x):
    n = self.spatial_dims
    if x.ndim == n + 1:
      widths = [*self.padding, (0, 0)]
    elif x.ndim == n + 2:
      widths = [(0, 0), *self.padding, (0, 0)]
    else:
      raise ValueError(
        f'Expected {n + 1}D or {n + 2}D input, got {x.ndim}D '
        f'({type(self).__name__} pads (*spatial, C) or (N, *spatial, C) '
        f'with {n} spatial axes; input shape {tuple(x.shape)}).'
      )
    return jnp.pad(x, widths, **self._pad_kwargs())


class _ConstantPadNd(_PadNd):
  pad_mode = 'constant'

  def __init__(self, padding, value: float = 0, in_size=None, name: Optional[str] = None):
    super().__init__(padding, name=name)
    self.value = value
    self._infer_out_size(in_size)

  def _pad_kwargs(self) -> dict:
    return {'mode': 'constant', 'constant_values': self.value}


class _ZeroPadNd(_PadNd):
  pad_mode = 'constant'

  def _pad_kwargs(self) -> dict:
    return {'mode': 'constant', 'constant_values': 0}


class ReflectionPad1d(_PadNd):
  """Pads the length axis by mirroring the input (edge not repeated).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> pad = brainstate.nn.ReflectionPad1d(2)
    >>> pad(jnp.arange(4.).reshape(4, 1))[:, 0]
    Array([2., 1., 0., 1., 2., 3., 2., 1.], dtype=float32)
  """
  spatial_dims = 1
  pad_mode = 'reflect'


class ReflectionPad2d(_PadNd):
  """Pads height and width by mirroring the input (edge not repeated).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> pad = brainstate.nn.ReflectionPad2d((1, 2))
    >>> pad(jnp.ones((2, 4, 5, 3))).shape
    (2, 6, 9, 3)
  """
  spatial_dims = 2
  pad_mode = 'reflect'


class ReflectionPad3d(_PadNd):
  """Pads depth, height and width by mirroring the input.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ReflectionPad3d(1)(jnp.ones((3, 3, 3, 2))).shape
    (5, 5, 5, 2)
  """
  spatial_dims = 3
  pad_mode = 'reflect'


class ReplicationPad1d(_PadNd):
  """Pads the length axis by repeating the edge values.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> pad = brainstate.nn.ReplicationPad1d((1, 2))
    >>> pad(jnp.arange(3.).reshape(3, 1))[:, 0]
    Array([0., 0., 1., 2., 2., 2.], dtype=float32)
  """
  spatial_dims = 1
  pad_mode = 'edge'


class ReplicationPad2d(_PadNd):
  """Pads height and width by repeating the edge values.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ReplicationPad2d(1)(jnp.ones((4, 4, 3))).shape
    (6, 6, 3)
  """
  spatial_dims = 2
  pad_mode = 'edge'


class ReplicationPad3d(_PadNd):
  """Pads depth, height and width by repeating the edge values.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ReplicationPad3d(1)(jnp.ones((1, 2, 2, 2, 1))).shape
    (1, 4, 4, 4, 1)
  """
  spatial_dims = 3
  pad_mode = 'edge'


class ZeroPad1d(_ZeroPadNd):
  """Pads the length axis with zeros.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ZeroPad1d((1, 0))(jnp.ones((2, 1)))[:, 0]
    Array([0., 1., 1.], dtype=float32)
  """
  spatial_dims = 1


class ZeroPad2d(_ZeroPadNd):
  """Pads height and width with zeros.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ZeroPad2d(1)(jnp.ones((8, 2, 2, 3))).shape
    (8, 4, 4, 3)
  """
  spatial_dims = 2


class ZeroPad3d(_ZeroPadNd):
  """Pads depth, height and width with zeros.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ZeroPad3d(1)(jnp.ones((2, 2, 2, 1))).sum()
    Array(8., dtype=float32)
  """
  spatial_dims = 3


class ConstantPad1d(_ConstantPadNd):
  """Pads the length axis with the constant ``value``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ConstantPad1d(1, value=-1.)(jnp.zeros((2, 1)))[:, 0]
    Array([-1.,  0.,  0., -1.], dtype=float32)
  """
  spatial_dims = 1


class ConstantPad2d(_ConstantPadNd):
  """Pads height and width with the constant ``value``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ConstantPad2d((1, 0, 0, 1), value=3.)(jnp.zeros((1, 1, 1))).sum()
    Array(9., dtype=float32)
  """
  spatial_dims = 2


class ConstantPad3d(_ConstantPadNd):
  """Pads depth, height and width with the constant ``value``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ConstantPad3d(1, value=2.)(jnp.zeros((1, 1, 1, 1))).sum()
    Array(52., dtype=float32)
  """
  spatial_dims = 3


class CircularPad1d(_PadNd):
  """Pads the length axis by wrapping around (periodic boundary).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.CircularPad1d(1)(jnp.arange(3.).reshape(3, 1))[:, 0]
    Array([2., 0., 1., 2., 0.], dtype=float32)
  """
  spatial_dims = 1
  pad_mode = 'wrap'


class CircularPad2d(_PadNd):
  """Pads height and width by wrapping around (periodic boundary).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.CircularPad2d(1)(jnp.ones((3, 3, 2))).shape
    (5, 5, 2)
  """
  spatial_dims = 2
  pad_mode = 'wrap'


class CircularPad3d(_PadNd):
  """Pads depth, height and width by wrapping around (periodic boundary).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.CircularPad3d(1)(jnp.ones((2, 2, 2, 1))).shape
    (4, 4, 4, 1)
  """
  spatial_dims = 3
  pad_mode = 'wrap'


for _cls in (ReflectionPad1d, ReflectionPad2d, ReflectionPad3d, ReplicationPad1d,
             ReplicationPad2d, ReplicationPad3d, ZeroPad1d, ZeroPad2d, ZeroPad3d,
             ConstantPad1d, ConstantPad2d, ConstantPad3d, CircularPad1d,
             CircularPad2d, CircularPad3d):
  _cls.__module__ = 'brainstate_nnx.nn'
del _cls
