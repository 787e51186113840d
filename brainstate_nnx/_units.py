"""Optional ``brainunit`` support without importing it.

``brainunit`` is an optional dependency (extra ``units``). A Quantity can only
reach brainstate_nnx if its owner imported ``brainunit`` (or ``saiunit``, the
package that defines the class) already, so these helpers look the class up in
``sys.modules`` instead of importing: the core never pays brainunit's import
time and works where it is not installed.
"""

from __future__ import annotations

import sys
from typing import Any

import jax.numpy as jnp

__all__ = ['unit_module', 'is_quantity', 'is_scalar', 'split_mantissa_unit',
           'maybe_attach_unit', 'QuantityLike']

_MODULES = ('brainunit', 'saiunit')


def unit_module():
  """The loaded ``brainunit`` module, or ``None`` if nobody imported it."""
  return sys.modules.get('brainunit')


def _quantity_types():
  out = []
  for name in _MODULES:
    m = sys.modules.get(name)
    q = getattr(m, 'Quantity', None) if m is not None else None
    if isinstance(q, type) and q not in out:
      out.append(q)
  return tuple(out)


def is_quantity(x: Any) -> bool:
  """Whether ``x`` is a ``brainunit`` Quantity (``False`` when brainunit is not loaded)."""
  types = _quantity_types()
  return bool(types) and isinstance(x, types)


def is_scalar(x: Any) -> bool:
  """A zero-dimensional number, array or Quantity."""
  if is_quantity(x):
    return x.ndim == 0
  return bool(jnp.isscalar(x))


def split_mantissa_unit(x: Any):
  """``(mantissa, unit)`` of ``x``; ``unit`` is ``None`` for plain numbers."""
  if is_quantity(x):
    return x.mantissa, x.unit
  return x, None


def maybe_attach_unit(x: Any, unit):
  """``x * unit`` unless ``unit`` is ``None`` or dimensionless-and-unscaled."""
  if unit is None:
    return x
  bu = unit_module()
  if bu is None:  # a Quantity came from saiunit directly
    bu = sys.modules['saiunit']
  return bu.maybe_decimal(bu.Quantity(x, unit=unit))


class _QuantityMeta(type):
  def __instancecheck__(cls, obj):
    return is_quantity(obj)

  def __subclasscheck__(cls, sub):
    types = _quantity_types()
    return bool(types) and isinstance(sub, type) and issubclass(sub, types)


class QuantityLike(metaclass=_QuantityMeta):
  """``isinstance(x, QuantityLike)`` is true for ``brainunit`` Quantities, when loaded."""
