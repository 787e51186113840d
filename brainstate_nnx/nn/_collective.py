"""Collective initialization of a module tree as a batched ensemble."""

from __future__ import annotations

from typing import Any, TypeVar

from ..transform._new_states import vmap_new_states
from ._module import init_all_states

__all__ = ['vmap_init_all_states']

T = TypeVar('T')


def vmap_init_all_states(
  target: T,
  *init_args,
  axis_size: int | None = None,
  node_to_exclude: Any = None,
  state_to_exclude: Any = None,
  state_tag: str | None = None,
  in_states: Any = None,
  out_states: Any = None,
  **init_kwargs,
) -> T:
  """Initializes every module of ``target`` as ``axis_size`` independent members.

  Runs :func:`~brainstate_nnx.nn.init_all_states` (``init_state(*init_args,
  **init_kwargs)`` on each module not matched by ``node_to_exclude``) under
  :func:`~brainstate_nnx.transform.vmap_new_states`: every State the
  initialization creates gets a leading axis of size ``axis_size``, and each
  member draws its own random numbers. New States matching
  ``state_to_exclude`` (or tagged ``INIT_NO_BATCHING``) keep a single value;
  ``state_tag`` is added to the batched ones. ``in_states`` / ``out_states``
  are not supported (a ``ValueError``, as in BrainState). Returns ``target``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.nn._collective import vmap_init_all_states
    >>> class Cell(brainstate.nn.Module):
    ...   def init_state(self, n):
    ...     self.h = brainstate.HiddenState(brainstate.random.randn(n))
    >>> cell = vmap_init_all_states(Cell(), 3, axis_size=8)
    >>> cell.h.value.shape
    (8, 3)
  """

  def init_fn():
    init_all_states(target, *init_args, node_to_exclude=node_to_exclude, **init_kwargs)

  vmap_new_states(
    init_fn,
    state_tag=state_tag,
    axis_size=axis_size,
    state_to_exclude=state_to_exclude,
    in_states=in_states,
    out_states=out_states,
  )()
  return target
