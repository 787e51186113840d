"""The :class:`Initializer` base class and the shape helpers of ``nn.init``."""

from __future__ import annotations

import sys
from typing import Optional, Tuple

import numpy as np

from ... import _units

__all__ = ['Initializer', 'to_size', 'are_broadcastable_shapes']


class Initializer:
  """Base class of the initializers: ``init(shape, dtype=..., rng=...)`` returns an array.

  Subclasses draw from the stream ``self.rng`` (the default stream unless a
  ``seed`` was given) unless ``rng=`` is passed at call time, and use
  ``environ.dftype()`` unless ``dtype=`` is passed. The repr lists the public
  attributes.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> init = brainstate.nn.init.Constant(0.5)
    >>> init((2,))
    Array([0.5, 0.5], dtype=float32)
    >>> init
    Constant(
      value=0.5
    )
  """

  def __call__(self, *args, **kwargs):
    raise NotImplementedError(f'{type(self).__name__} does not define __call__')

  def __repr__(self) -> str:
    lines = []
    for k, v in vars(self).items():
      if k.startswith('_'):
        continue
      lines.append('  ' + f'{k}={v!r}'.replace('\n', '\n  '))
    if not lines:
      return f'{type(self).__name__}()'
    return f'{type(self).__name__}(\n' + ',\n'.join(lines) + '\n)'


def to_size(x) -> Optional[Tuple[int, ...]]:
  """A shape as a tuple: ``3 -> (3,)``, lists become tuples, ``None`` stays ``None``.

  Example::

    >>> from brainstate_nnx.nn.init import to_size
    >>> to_size(3), to_size([2, 4]), to_size(None)
    ((3,), (2, 4), None)
  """
  if isinstance(x, (tuple, list)):
    return tuple(x)
  if isinstance(x, (int, np.integer)):
    return (x,)
  if x is None:
    return None
  raise ValueError(f'Cannot make a size for {x}')


def are_broadcastable_shapes(shape1, shape2) -> bool:
  """Whether two shapes agree on their trailing axes (equal or 1), as NumPy broadcasting.

  Example::

    >>> from brainstate_nnx.nn.init import are_broadcastable_shapes
    >>> are_broadcastable_shapes((3, 1), (2, 3, 4)), are_broadcastable_shapes((3,), (4,))
    (True, False)
  """
  for a, b in zip(reversed(tuple(shape1)), reversed(tuple(shape2))):
    if a != b and 1 not in (a, b):
      return False
  return True


def _unit_lib():
  """The loaded ``brainunit`` (or ``saiunit``) module; only called when a unit is in play."""
  mod = sys.modules.get('brainunit') or sys.modules.get('saiunit')
  if mod is None:  # a unit object exists, so its package is importable
    import brainunit as mod  # noqa: F811
  return mod


def _with_unit(x, unit):
  """``x`` expressed in ``unit`` (BrainState's ``maybe_decimal(Quantity(x, unit=unit))``).

  With no unit and a plain ``x``, ``x`` itself is returned; brainunit is
  only touched when ``x`` or ``unit`` carries a unit.
  """
  if unit is None and not _units.is_quantity(x):
    return x
  bu = _unit_lib()
  if unit is None:
    unit = bu.UNITLESS
  return bu.maybe_decimal(bu.Quantity(x, unit=unit))


def _split(x):
  """``(mantissa, unit or None)``."""
  return _units.split_mantissa_unit(x)


def _times_unit(x, unit):
  """``x * unit`` as BrainState's random functions return it (``x`` when no unit)."""
  if unit is None:
    return x
  return _unit_lib().maybe_decimal(x * unit)


def _shared_unit(a, b):
  """BrainState's rule for a ``(loc, scale)``-like pair: mantissas in one unit.

  Both Quantities: ``b`` converted to ``a``'s unit. One Quantity: the plain
  other one is read in that unit. None: no unit.
  """
  qa, qb = _units.is_quantity(a), _units.is_quantity(b)
  if not qa and not qb:
    return a, b, None
  if qa and qb:
    return a.mantissa, b.to(a.unit).mantissa, a.unit
  if qa:
    return a.mantissa, b, a.unit
  return a, b.mantissa, b.unit
