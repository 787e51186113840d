"""``unvmap``: reductions that see through ``vmap``.

Each reduction is a small JAX primitive. Outside ``vmap`` it is the plain
NumPy reduction; inside ``vmap`` its batching rule reduces the *whole*
batched array -- every lane included -- and returns one unbatched result, so
all lanes agree on it (e.g. "has any lane spiked?" to stop a batched loop).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from .._lane_ops import unvmap_all, unvmap_any, unvmap_max, without_vmap

__all__ = ['unvmap']


def unvmap(x: Any, op: str = 'any') -> Any:
  """Reduces ``x`` over everything, including the lanes of an enclosing ``vmap``.

  ``op`` is ``'any'`` (default), ``'all'``, ``'max'`` or ``'none'``. The
  first three return a scalar (``jnp.any`` / ``jnp.all`` / ``jnp.max`` of
  all elements of all lanes), shared by every lane. ``'none'`` returns ``x``
  itself, but as an unbatched value: inside ``vmap`` the lanes are exposed as
  an ordinary leading axis. ``x`` must be a single array.

  Example::

    >>> import jax, jax.numpy as jnp
    >>> from brainstate_nnx.transform import unvmap
    >>> unvmap(jnp.array([False, True]), op='any')
    Array(True, dtype=bool)
    >>> spikes = jnp.array([[0., 0.], [0., 1.]])   # lane 1 spiked
    >>> jax.vmap(lambda s: unvmap(s > 0, op='any'))(spikes)
    Array([ True,  True], dtype=bool)
    >>> jax.vmap(lambda s: unvmap(s, op='max'))(jnp.array([[1., 5.], [2., 3.]]))
    Array([5., 5.], dtype=float32)
  """
  if op == 'all':
    return unvmap_all(x)
  if op == 'any':
    return unvmap_any(x)
  if op == 'none':
    return without_vmap(x)
  if op == 'max':
    return unvmap_max(x)
  raise ValueError(f"unvmap: unsupported op {op!r}; use 'any', 'all', 'max' or 'none'.")

