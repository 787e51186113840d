"""``Flatten`` and ``Unflatten``: reshape layers of ``brainstate.nn``."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import jax.numpy as jnp

from .._units import is_quantity, maybe_attach_unit
from ._module import Module

__all__ = ['Flatten', 'Unflatten']


def _reshape(x, shape):
  if is_quantity(x):
    return maybe_attach_unit(jnp.reshape(x.mantissa, shape), x.unit)
  return jnp.reshape(x, shape)


def _flat_shape(shape, start_axis, end_axis):
  """The shape after merging axes ``start_axis..end_axis`` (inclusive)."""
  ndim = max(len(shape), 1)
  start = 0 if start_axis is None else (start_axis + ndim if start_axis < 0 else start_axis)
  end = ndim - 1 if end_axis is None else (end_axis + ndim if end_axis < 0 else end_axis)
  end += 1
  if start < 0 or start > ndim:
    raise ValueError(f'start_axis {start_axis} is out of range for an input of {len(shape)} dims.')
  if end < 0 or end > ndim:
    raise ValueError(f'end_axis {end_axis} is out of range for an input of {len(shape)} dims.')
  shape = tuple(shape)
  return shape[:start] + (int(math.prod(shape[start:end])),) + shape[end:]


def _unflat_shape(shape, axis, sizes):
  ndim = len(shape)
  ax = axis + ndim if axis < 0 else axis
  if ax < 0 or ax >= ndim:
    raise ValueError(f'Unflatten: axis {axis} is not a dimension of an input of {ndim} dims.')
  return tuple(shape[:ax]) + tuple(sizes) + tuple(shape[ax + 1:])


class Flatten(Module):
  """Merges the axes ``start_axis .. end_axis`` (inclusive) into one.

  With ``in_size`` (the shape of one sample), axes count within the sample,
  so leading batch axes are kept, and ``out_size`` is known (for
  :class:`Sequential`); an input whose trailing shape is not ``in_size``
  raises ``ValueError``. Without it, axes count in the whole input.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> f = brainstate.nn.Flatten(in_size=(3, 4))
    >>> f.out_size, f(jnp.ones((8, 3, 4))).shape
    ((12,), (8, 12))
    >>> brainstate.nn.Flatten()(jnp.ones((8, 3, 4))).shape
    (96,)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, start_axis: int = 0, end_axis: int = -1,
               in_size: Optional[Sequence[int]] = None) -> None:
    super().__init__()
    self.start_axis = start_axis
    self.end_axis = end_axis
    if in_size is not None:
      self.in_size = tuple(in_size)
      self.out_size = _flat_shape(tuple(in_size), start_axis, end_axis)

  def update(self, x):
    shape = jnp.shape(x)
    ndim = len(shape)
    in_size = getattr(self, 'in_size', None)
    if in_size is None:
      start = self.start_axis if self.start_axis >= 0 else ndim + self.start_axis
      end = self.end_axis if self.end_axis >= 0 else ndim + self.end_axis
    else:
      in_size = tuple(in_size)
      if ndim < len(in_size):
        raise ValueError(
          f'Flatten expects inputs ending in shape {in_size}, got shape {shape} '
          f'(fewer dimensions).'
        )
      diff = ndim - len(in_size)
      if tuple(shape[diff:]) != in_size:
        raise ValueError(f'Input tensor has shape {shape}, but expected shape {in_size}.')
      start = self.start_axis + diff if self.start_axis >= 0 else ndim + self.start_axis
      end = self.end_axis + diff if self.end_axis >= 0 else ndim + self.end_axis
    return _reshape(x, _flat_shape(shape, start, end))


class Unflatten(Module):
  """Splits axis ``axis`` into the shape ``sizes`` (one entry may be ``-1``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> u = brainstate.nn.Unflatten(-1, (3, 4), in_size=(12,))
    >>> u.out_size, u(jnp.ones((8, 12))).shape
    ((3, 4), (8, 3, 4))
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, axis: int, sizes: Sequence[int], name: Optional[str] = None,
               in_size: Optional[Sequence[int]] = None) -> None:
    super().__init__(name=name)
    if not isinstance(sizes, (tuple, list)):
      raise TypeError(
        f'unflattened sizes must be tuple or list, but found type {type(sizes).__name__}'
      )
    for i, s in enumerate(sizes):
      if not isinstance(s, int):
        raise TypeError(
          f'unflattened sizes must be tuple of ints, but found element of type '
          f'{type(s).__name__} at pos {i}'
        )
    self.axis = axis
    self.sizes = sizes
    if in_size is not None:
      self.in_size = tuple(in_size)
      shape = _unflat_shape(tuple(in_size), axis, sizes)
      if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        shape = tuple(math.prod(in_size) // max(known, 1) if s == -1 else s for s in shape)
      if math.prod(shape) != math.prod(in_size):
        raise TypeError(
          f'Unflatten cannot split axis {axis} of in_size {tuple(in_size)} into {tuple(sizes)}: '
          f'the sizes must multiply to that axis length.'
        )
      self.out_size = shape

  def update(self, x):
    return _reshape(x, _unflat_shape(jnp.shape(x), self.axis, self.sizes))
