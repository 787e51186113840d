"""A dict of States with bulk value helpers: :class:`StateDictManager`.

Example::

  >>> import jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> m = brainstate.StateDictManager(w=brainstate.ParamState(jnp.ones(2)),
  ...                                 v=brainstate.ShortTermState(jnp.zeros(2)))
  >>> m.assign_values({'v': jnp.array([3., 3.])})
  >>> params, others = m.split_values(brainstate.ParamState)
  >>> sorted(params), others['v']
  (['w'], Array([3., 3.], dtype=float32))
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from ._state import State
from .util import DictManager

__all__ = ['StateDictManager']


class StateDictManager(DictManager):
  """A :class:`~brainstate_nnx.util.DictManager` whose values are States."""

  __module__ = 'brainstate_nnx'

  def assign_values(self, *args: Dict) -> None:
    """``self[k].value = v`` for every item of every dict given."""
    for arg in args:
      if not isinstance(arg, dict):
        raise TypeError('Must be an instance of dict.')
      for k, v in arg.items():
        self._set_elem(k, v)

  def split_values(self, *filters: type) -> Tuple[Dict, ...]:
    """The values grouped by State type: one dict per filter, plus the rest."""
    out = tuple(DictManager() for _ in range(len(filters) + 1))
    for k, st in self.items():
      for i, f in enumerate(filters):
        if isinstance(st, f):
          out[i][k] = st.value
          break
      else:
        out[-1][k] = st.value
    return out

  def collect_values(self) -> Dict:
    """``{key: value}`` as a :class:`~brainstate_nnx.util.DictManager`."""
    return DictManager((k, st.value) for k, st in self.items())

  def split(self, first: type, *others: type) -> Tuple['StateDictManager', ...]:
    """The States grouped by type (one manager per type, plus the rest)."""
    return super().split(first, *others)

  def to_dict_values(self) -> Dict:
    """``{key: value}`` as a plain dict."""
    return {k: st.value for k, st in self.items()}

  def _check_elem(self, elem):
    if not isinstance(elem, State):
      raise TypeError(f'must be instance of {State}')

  def _set_elem(self, key: Any, value: Any) -> None:
    self[key].value = value
