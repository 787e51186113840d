"""Collective operations over a module tree: ordered calls, batched
(ensemble) initialization and reset, and assigning State values by path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, TypeVar

import jax

from .._error import BatchAxisError
from ..random import DEFAULT
from ..transform._mapping import vmap2
from ..transform._new_states import vmap_new_states
from ._module import call_all_fns, init_all_states

__all__ = ['call_order', 'vmap_call_all_fns', 'vmap_init_all_states',
           'vmap_reset_all_states', 'assign_state_values']

MAX_ORDER = 10

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
    >>> from brainstate_nnx.nn import vmap_init_all_states
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


def call_order(level: int = 0, check_order_boundary: bool = True) -> Callable[[Callable], Callable]:
  """Marks a method so :func:`~brainstate_nnx.nn.call_all_fns` calls it late, by ``level``.

  Methods without a level run first (in module order), then the marked ones
  from the lowest ``level`` up. ``level`` must lie in ``[0, 10)`` unless
  ``check_order_boundary`` is false.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> log = []
    >>> class A(brainstate.nn.Module):
    ...   @brainstate.nn.call_order(1)
    ...   def reset_state(self):
    ...     log.append('A')
    >>> class B(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.a = A()
    ...   def reset_state(self):
    ...     log.append('B')
    >>> _ = brainstate.nn.reset_all_states(B())
    >>> log
    ['B', 'A']
  """
  if check_order_boundary and (level < 0 or level >= MAX_ORDER):
    raise ValueError(f'"level" must be an integer in [0, {MAX_ORDER}), but got {level}.')

  def wrap(fun: Callable) -> Callable:
    fun.call_order = level
    return fun

  return wrap


def _vmap_call(call_fn, axis_size, state_tag, existing_only=False):
  """Runs ``call_fn`` as ``axis_size`` members.

  New States get a member axis (``vmap_new_states``). Writes to States that
  already exist -- a ``reset_state`` of an ensemble made by
  :func:`vmap_init_all_states` -- go through ``vmap2`` instead, which stores
  one value per member. (BrainState 0.5.4 leaks a tracer into such States.)
  """
  if not existing_only:
    key = DEFAULT.value
    try:
      vmap_new_states(call_fn, state_tag=state_tag, axis_size=axis_size)()
      return
    except BatchAxisError:
      # it writes pre-existing States: map them per member instead, drawing
      # from the random stream as if the first attempt had not happened
      DEFAULT.value = key
  vmap2(call_fn, axis_size=axis_size)()


def vmap_call_all_fns(
  target: T,
  fn_name: str,
  args: Any = (),
  kwargs: Mapping | None = None,
  axis_size: int | None = None,
  node_to_exclude: Any = None,
  state_tag: str | None = None,
  fn_if_not_exist: str = 'raise',
) -> T:
  """:func:`~brainstate_nnx.nn.call_all_fns` run ``axis_size`` times in parallel.

  Every State the calls create gets a leading axis of size ``axis_size``
  (``state_tag`` is added to them); each member draws its own random
  numbers. Calls that write existing States (e.g. ``reset_state`` after
  :func:`vmap_init_all_states`) store one value per member.
  ``axis_size`` must be a positive integer.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> class Cell(brainstate.nn.Module):
    ...   def init_state(self):
    ...     self.h = brainstate.HiddenState(brainstate.random.rand(2))
    >>> cell = brainstate.nn.vmap_call_all_fns(Cell(), 'init_state', axis_size=5)
    >>> cell.h.value.shape
    (5, 2)
  """
  if axis_size is None or axis_size <= 0:
    raise ValueError(f'axis_size must be a positive integer, got {axis_size}')
  args = args if isinstance(args, tuple) else (args,)
  kwargs = kwargs or {}
  if not isinstance(kwargs, Mapping):
    raise TypeError(f'kwargs must be a mapping, but got {type(kwargs).__name__}.')

  def call_fn():
    call_all_fns(target, fn_name=fn_name, args=args, kwargs=kwargs,
                 node_to_exclude=node_to_exclude, fn_if_not_exist=fn_if_not_exist)

  _vmap_call(call_fn, axis_size, state_tag)
  return target


def vmap_reset_all_states(
  target: T,
  *reset_args,
  axis_size: int | None = None,
  node_to_exclude: Any = None,
  state_tag: str | None = None,
  **reset_kwargs,
) -> T:
  """``reset_state(*reset_args, **reset_kwargs)`` on every module, as in
  :func:`vmap_call_all_fns`: each of the ``axis_size`` members is reset on
  its own (its own random draws), States keep their member axis.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> class Cell(brainstate.nn.Module):
    ...   def init_state(self):
    ...     self.h = brainstate.HiddenState(brainstate.random.rand(2))
    ...   def reset_state(self):
    ...     self.h.value = brainstate.random.rand(2)
    >>> cell = brainstate.nn.vmap_init_all_states(Cell(), axis_size=3)
    >>> brainstate.nn.vmap_reset_all_states(cell, axis_size=3).h.value.shape
    (3, 2)
  """
  return vmap_call_all_fns(target, 'reset_state', args=reset_args, kwargs=reset_kwargs,
                           axis_size=axis_size, node_to_exclude=node_to_exclude,
                           state_tag=state_tag)


def assign_state_values(target, *state_by_abs_path: Mapping) -> tuple[list, list]:
  """Sets the States of ``target`` from mappings ``path -> value``.

  Paths may be tuples (as ``target.states()`` keys them) or dotted strings
  (``'layer.weight'``). Returns ``(unexpected, missing)``: the given paths
  that match no State, and the State paths that got no value (each sorted).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> class M(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.w = brainstate.ParamState(jnp.zeros(2))
    ...     self.b = brainstate.ParamState(jnp.zeros(2))
    >>> m = M()
    >>> brainstate.nn.assign_state_values(m, {'w': jnp.ones(2), 'c': 1.})
    (['c'], [('b',)])
    >>> m.w.value
    Array([1., 1.], dtype=float32)
  """
  incoming = {}
  for d in state_by_abs_path:
    incoming.update(d)
  variables = target.states()

  def norm(k):
    return '.'.join(str(p) for p in k) if isinstance(k, tuple) else str(k)

  have = {norm(k): k for k in variables.keys()}
  given = {norm(k): k for k in incoming.keys()}
  for n in set(have) & set(given):
    variables[have[n]].value = jax.tree.map(jax.numpy.asarray, incoming[given[n]])
  unexpected = sorted((given[n] for n in set(given) - set(have)), key=norm)
  missing = sorted((have[n] for n in set(have) - set(given)), key=norm)
  return unexpected, missing
