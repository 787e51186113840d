"""``StateFinder``: which States does a function read or write?

The function is traced abstractly (:func:`jax.eval_shape` through
:func:`~brainstate_nnx._context.probe_states`): nothing is computed and no
State changes value, so finding the States of a training step is cheap and
safe.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Hashable, Literal, Optional, Sequence

from .._context import probe_states
from .._state import State
from ..util.filter import Filter, to_predicate

__all__ = ['StateFinder']


class StateFinder:
  """Finds the States a function touches, optionally filtered.

  ``StateFinder(fn, filter=None, *, usage='all', return_type='dict',
  key_fn=None)``; calling it (or :meth:`find`) with arguments for ``fn`` runs
  ``fn`` abstractly and returns the States it used, in first-use order.

  Args:
    fn: the function to inspect.
    filter: keep only States matching this filter (a State type, a tag
      string, a predicate ``pred(path, state)``, ... see
      :mod:`brainstate_nnx.util.filter`). ``path`` is always ``()`` here.
    usage: ``'all'`` (read or written), ``'read'`` (read but never written),
      ``'write'`` (written) or ``'both'``: a dict
      ``{'read': ..., 'write': ...}`` of the two previous selections.
    return_type: ``'dict'``, ``'list'`` or ``'tuple'`` -- the container of the
      selected States (of each entry, with ``usage='both'``).
    key_fn: ``key_fn(index, state) -> key`` naming the entries of a
      ``'dict'`` result; by default the position. A key that is ``None`` or
      already used is replaced by the State's name (or ``'state_<index>'``),
      with ``_1``, ``_2``, ... appended until it is unique; an unhashable key
      is replaced by its ``str``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> w = brainstate.ParamState(jnp.ones(2), name='w')
    >>> h = brainstate.HiddenState(jnp.zeros(2), name='h')
    >>> def step(x):
    ...   h.value = h.value + w.value * x
    ...   return h.value
    >>> finder = brainstate.transform.StateFinder(
    ...   step, usage='both', key_fn=lambda i, st: st.name)
    >>> found = finder(jnp.ones(2))
    >>> found['read']['w'] is w, found['write']['h'] is h
    (True, True)
    >>> brainstate.transform.StateFinder(step, brainstate.ParamState, return_type='list')(1.0) == [w]
    True
    >>> h.value                  # the dry run changed nothing
    Array([0., 0.], dtype=float32)
  """

  _VALID_USAGE = ('all', 'read', 'write', 'both')
  _VALID_RETURN_TYPE = ('dict', 'list', 'tuple')

  def __init__(
    self,
    fn: Callable,
    filter: Filter = None,
    *,
    usage: Literal['all', 'read', 'write', 'both'] = 'all',
    return_type: Literal['dict', 'list', 'tuple'] = 'dict',
    key_fn: Optional[Callable[[int, State], Hashable]] = None,
  ) -> None:
    if usage not in self._VALID_USAGE:
      raise ValueError(
        f'Invalid usage {usage!r}; expected one of {self._VALID_USAGE}.'
      )
    if return_type not in self._VALID_RETURN_TYPE:
      raise ValueError(
        f'Invalid return_type {return_type!r}; expected one of '
        f'{self._VALID_RETURN_TYPE}.'
      )
    if not callable(fn):
      raise TypeError(f'fn must be callable, got {type(fn).__name__}')
    self.fn = fn
    self._usage = usage
    self._return_type = return_type
    self._key_fn = self._default_key_fn if key_fn is None else key_fn
    self._filter = None if filter is None else to_predicate(filter)

  def __call__(self, *args, **kwargs):
    """Same as :meth:`find`."""
    return self.find(*args, **kwargs)

  def find(self, *args, **kwargs):
    """The States ``fn(*args, **kwargs)`` uses, selected and formatted.

    Example::

      >>> import jax.numpy as jnp
      >>> import brainstate_nnx as brainstate
      >>> a = brainstate.State(jnp.zeros(()))
      >>> brainstate.transform.StateFinder(lambda: a.value + 1).find() == {0: a}
      True
    """
    touched, written = probe_states(self.fn, *args, **kwargs)
    wrote = {id(st) for st in written}
    groups = {
      'all': touched,
      'read': [st for st in touched if id(st) not in wrote],
      'write': written,
    }
    if self._usage == 'both':
      return {
        'read': self._format(self._select(groups['read'])),
        'write': self._format(self._select(groups['write'])),
      }
    return self._format(self._select(groups[self._usage]))

  # -- helpers -------------------------------------------------------------
  def _select(self, states: Sequence[State]) -> list:
    pred = self._filter
    if pred is None:
      return list(states)
    return [st for st in states if pred((), st)]

  def _format(self, states: list):
    if self._return_type == 'list':
      return states
    if self._return_type == 'tuple':
      return tuple(states)
    out: Dict[Hashable, State] = {}
    for i, st in enumerate(states):
      key = self._ensure_unique_key(
        self._ensure_hashable(self._key_fn(i, st)), i, st, out.keys()
      )
      out[key] = st
    return out

  @staticmethod
  def _default_key_fn(index: int, state: State) -> Hashable:
    return index

  @staticmethod
  def _ensure_hashable(key: Any) -> Hashable:
    """``key`` if it can key a dict, else ``str(key)``."""
    if key is None:
      return None
    try:
      hash(key)
    except TypeError:
      return str(key)
    return key

  @staticmethod
  def _ensure_unique_key(key: Hashable, index: int, state: State, used) -> Hashable:
    """``key``, or a name derived from ``state`` when it is None or taken."""
    if key is not None and key not in used:
      return key
    name = getattr(state, 'name', None)
    base = f'state_{index}' if name in (None, '') else name
    candidate, n = base, 0
    while candidate in used:
      n += 1
      candidate = f'{base}_{n}'
    return candidate

  def __repr__(self) -> str:
    return (
      f'StateFinder(fn={getattr(self.fn, "__name__", self.fn)!r}, '
      f'usage={self._usage!r}, return_type={self._return_type!r})'
    )
