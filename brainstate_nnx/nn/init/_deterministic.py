"""Deterministic initializers: ZeroInit, Constant, Identity."""

from __future__ import annotations

import jax.numpy as jnp

from ... import environ
from ... import _units
from ._base import Initializer, to_size, _unit_lib, _with_unit

__all__ = ['ZeroInit', 'Constant', 'Identity']


class ZeroInit(Initializer):
  """All zeros (in ``unit`` if given); the default ``Linear`` bias init.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.init.ZeroInit()((2,))
    Array([0., 0.], dtype=float32)
  """

  def __init__(self, unit=None):
    self.unit = unit

  def __call__(self, shape, **kwargs):
    dtype = kwargs.get('dtype', environ.dftype())
    shape = to_size(shape)
    return _with_unit(jnp.zeros(shape, dtype=dtype), self.unit)


class Constant(Initializer):
  """Every entry equal to ``value`` (a number, an array broadcast to the shape, or a Quantity).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.init.Constant(3.0)((2, 2))
    Array([[3., 3.],
           [3., 3.]], dtype=float32)
  """

  def __init__(self, value=1.0):
    self.value = value

  def __call__(self, shape, **kwargs):
    dtype = kwargs.get('dtype', environ.dftype())
    shape = to_size(shape)
    if _units.is_quantity(self.value):
      return _unit_lib().maybe_decimal(_unit_lib().math.full(shape, self.value, dtype=dtype))
    return jnp.full(shape, self.value, dtype=dtype)


class Identity(Initializer):
  """An identity matrix with ``value`` on the diagonal (1-D or 2-D shapes only).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.init.Identity(2.0)((2, 3))
    Array([[2., 0., 0.],
           [0., 2., 0.]], dtype=float32)
  """

  def __init__(self, value=1.0, unit=None):
    self.value = value
    self.unit = unit

  def __call__(self, shape, **kwargs):
    dtype = kwargs.get('dtype', environ.dftype())
    shape = to_size(shape)
    if len(shape) > 2:
      raise ValueError(f'Only support initialize 2D weights for {type(self).__name__}.')
    eye = jnp.eye(*shape, dtype=dtype)
    if _units.is_quantity(self.value):
      eye = _unit_lib().math.fill_diagonal(eye, self.value)
    else:
      eye = jnp.fill_diagonal(eye, self.value, inplace=False)
    return _with_unit(eye, self.unit)
