"""State-aware ``map``: a function over the leading axis, in batches.

``map(f, *xs, batch_size=None)`` runs ``f`` on each slice of ``xs`` along
the leading axis (a :func:`~brainstate_nnx.transform.scan`; with
``batch_size``, a ``vmap`` over each batch inside the scan). ``f`` may read
States but not write them.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import numpy as np

from .. import _context
from ._mapping import vmap2
from ._lanes import (
  probe_lanes, random_state_type,
)

__all__ = ['map']

# --------------------------------------------------------------------------
# map
# --------------------------------------------------------------------------

def _validate_leading_lengths(xs) -> int:
  leaves = jax.tree.leaves(xs)
  if not leaves:
    raise ValueError('map requires at least one array input.')
  for leaf in leaves:
    if np.ndim(leaf) == 0:
      raise ValueError(
        'map requires array inputs with a leading axis to map over; got a '
        '0-d (scalar) input.'
      )
  length = np.shape(leaves[0])[0]
  for leaf in leaves:
    if np.shape(leaf)[0] != length:
      raise ValueError(
        f'All inputs to map must share the same leading length; got {length} '
        f'and {np.shape(leaf)[0]}.'
      )
  return length


def _batch_and_remainder(x, batch_size: int):
  leaves, tree = jax.tree.flatten(x)
  if not leaves:
    raise ValueError('map requires at least one array input to determine the leading length.')
  length = leaves[0].shape[0]
  for leaf in leaves:
    if leaf.shape[0] != length:
      raise ValueError(f'All inputs must have the same length. Got {length} and {leaf.shape[0]}.')
  n_batches, n_rest = divmod(length, batch_size)
  full = n_batches * batch_size
  batched = [leaf[:full].reshape(n_batches, batch_size, *leaf.shape[1:]) for leaf in leaves]
  rest = [leaf[full:] for leaf in leaves] if n_rest else None
  return tree.unflatten(batched), (tree.unflatten(rest) if rest is not None else None)


def _merge_two_leading(x):
  return x.reshape(-1, *x.shape[2:])


def _ensure_no_state_writes(f, xs) -> None:
  rng_type = random_state_type()
  _, written = probe_lanes(f, tuple(xs), in_axes=0)
  written = [st for st in written if not isinstance(st, rng_type)]
  if written:
    raise ValueError(
      'map(..., batch_size=...) cannot run a function that writes State: the '
      'batched path vectorizes each block with vmap2 inside scan (found '
      f'{len(written)} written State(s): '
      + ', '.join(_context.describe(s) for s in written[:3])
      + '). Drop batch_size to map sequentially, or use vmap2 on the whole batch.'
    )


def map(f: Callable, *xs, batch_size: Optional[int] = None) -> Any:
  """Applies ``f`` to every slice of ``xs`` along their leading axis.

  Without ``batch_size`` the slices are processed one after the other by a
  state-aware :func:`~brainstate_nnx.transform.scan` (low memory; ``f`` may
  read and write States, each step seeing the previous step's writes). With
  ``batch_size`` blocks of that many slices are vectorized with
  :func:`vmap2` inside the scan and a shorter remainder block is vectorized
  last; ``f`` may then draw random numbers but must not write other States.
  The results are stacked along a new leading axis.

  Example::

    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import map
    >>> map(lambda x, y: x * y, jnp.arange(5.), jnp.full(5, 2.), batch_size=2)
    Array([0., 2., 4., 6., 8.], dtype=float32)
  """
  from ._loops import scan

  _validate_leading_lengths(xs)
  if batch_size is None:
    _, ys = scan(lambda _, x: ((), f(*x)), (), xs)
    return ys
  if not (isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size > 0):
    raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}.')
  _ensure_no_state_writes(f, xs)
  blocks, rest = _batch_and_remainder(xs, batch_size)
  vmapped = vmap2(f)
  _, ys = scan(lambda _, x: ((), vmapped(*x)), (), blocks)
  if rest is None:
    return jax.tree.map(_merge_two_leading, ys)
  rest_ys = vmap2(f)(*rest)
  return jax.tree.map(
    lambda a, b: jax.lax.concatenate([_merge_two_leading(a), b], dimension=0),
    ys, rest_ys,
  )


