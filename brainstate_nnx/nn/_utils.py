"""``count_parameters`` and ``clip_grad_norm`` of ``brainstate.nn``."""

from __future__ import annotations

from typing import Any, Tuple, Union

import jax
import jax.numpy as jnp

from .._state import ParamState
from ._module import Module

__all__ = ['count_parameters', 'clip_grad_norm']

_SUFFIXES = ('', 'K', 'M', 'B', 'T', 'P', 'E')


def _format_count(n, precision: int = 2) -> str:
  """``1234 -> '1.23K'`` (plain integer below 1000)."""
  if n < 1000:
    return str(n)
  mag = 0
  x = float(n)
  while abs(x) >= 1000 and mag < len(_SUFFIXES) - 1:
    mag += 1
    x /= 1000.0
  # a value that rounds up to 1000 of this suffix moves to the next one
  if mag < len(_SUFFIXES) - 1 and x >= 1000 * (1 - 10 ** (-precision)):
    mag += 1
    x /= 1000.0
  return f'{x:.{precision}f}{_SUFFIXES[mag]}'


class ParameterTable:
  """A small text table of ``(module path, parameter count)`` rows.

  ``str(table)`` renders it with borders; ``field_names`` and ``rows`` give
  the content. (BrainState returns a ``prettytable.PrettyTable``; this one
  has no dependency.)

  Example::

    >>> from brainstate_nnx.nn._utils import ParameterTable
    >>> t = ParameterTable(['Modules', 'Parameters'])
    >>> t.add_row(['w', '6'])
    >>> print(t)
    +---------+------------+
    | Modules | Parameters |
    +---------+------------+
    |    w    |     6      |
    +---------+------------+
  """

  def __init__(self, field_names):
    self.field_names = list(field_names)
    self.rows = []

  def add_row(self, row) -> None:
    """Appends one row (one entry per field)."""
    self.rows.append(list(row))

  def get_string(self) -> str:
    """The rendered table."""
    cells = [[str(c) for c in self.field_names]] + [[str(c) for c in r] for r in self.rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(self.field_names))]
    sep = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'

    def line(r):
      return '|' + '|'.join(' ' + c.center(w) + ' ' for c, w in zip(r, widths)) + '|'

    return '\n'.join([sep, line(cells[0]), sep] + [line(r) for r in cells[1:]] + [sep])

  __str__ = get_string

  def __repr__(self):
    return self.get_string()


def count_parameters(
  module: Module,
  precision: int = 2,
  return_table: bool = False,
) -> Union[int, Tuple[Any, int]]:
  """Prints a table of the ``ParamState`` s of ``module`` and returns their total size.

  Each row is a State path and its element count (``1.23K`` style above
  999, with ``precision`` decimals), plus a ``Total`` row. With
  ``return_table`` it returns ``(table, total)``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> layer = brainstate.nn.PReLU(num_parameters=3)
    >>> brainstate.nn.count_parameters(layer)
    +-------------+------------+
    |   Modules   | Parameters |
    +-------------+------------+
    | ('weight',) |     3      |
    |    Total    |     3      |
    +-------------+------------+
    3
  """
  if not isinstance(module, Module):
    raise TypeError(
      f'count_parameters needs a brainstate_nnx.nn.Module, got {type(module).__name__}.'
    )
  table = ParameterTable(['Modules', 'Parameters'])
  total = 0
  for path, state in module.states(ParamState).items():
    n = state.numel()
    table.add_row([path, _format_count(n, precision)])
    total += n
  table.add_row(['Total', _format_count(total, precision)])
  print(table)
  if return_table:
    return table, total
  return total


def clip_grad_norm(
  grad: Any,
  max_norm: float | jax.Array,
  norm_type: int | float | str | None = 2.0,
  return_norm: bool = False,
):
  """Scales the gradient pytree ``grad`` so its global norm is at most ``max_norm``.

  The norm (order ``norm_type``: a number, ``'inf'`` or ``'-inf'``; ``None``
  means 2) is taken over all leaves flattened together; every leaf is
  multiplied by ``min(1, max_norm / (norm + 1e-6))``. With ``return_norm``
  returns ``(clipped, norm)``, the norm before clipping.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> g, n = brainstate.nn.clip_grad_norm({'w': jnp.array([3., 4.])}, 1.0, return_norm=True)
    >>> float(n), [round(float(v), 4) for v in g['w']]
    (5.0, [0.6, 0.8])
  """
  if norm_type is None:
    norm_type = 2.0
  if norm_type == 'inf':
    norm_type = jnp.inf
  elif norm_type == '-inf':
    norm_type = -jnp.inf
  leaves = jax.tree.leaves(grad)
  if not leaves:
    return (grad, jnp.array(0.0)) if return_norm else grad
  flat = jnp.concatenate([jnp.ravel(g) for g in leaves])
  norm = jnp.linalg.norm(flat, ord=norm_type)
  factor = jnp.minimum(1.0, max_norm / (norm + 1e-6))
  clipped = jax.tree.map(lambda g: g * factor, grad)
  return (clipped, norm) if return_norm else clipped
