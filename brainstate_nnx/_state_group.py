"""Several hidden variables in one array: :class:`HiddenGroupState`, :class:`HiddenTreeState`.

The last axis of the value indexes the variables; ``varshape`` is the shape
of one variable. Both are :class:`~brainstate_nnx.HiddenState` s (so
``nnx.Variable`` s); the variable names live in the metadata, so they survive
``nnx.split`` / ``merge`` and ``jax.tree.map``.

Example::

  >>> import jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> g = brainstate.HiddenTreeState({'v': jnp.zeros(3), 'w': jnp.ones(3)})
  >>> g.varshape, g.num_state
  ((3,), 2)
  >>> g.set_value({'v': jnp.full(3, 5.)})
  >>> g.get_value('v')
  Array([5., 5., 5.], dtype=float32)
"""

from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from ._state import HiddenState, ShortTermState, _MISSING

__all__ = ['HiddenGroupState', 'HiddenTreeState']


def _is_array(x) -> bool:
  return isinstance(x, (np.ndarray, jax.Array))


class HiddenGroupState(HiddenState):
  """``n`` hidden variables stacked on the last axis of one array.

  ``get_value(i)`` / ``get_value('i')`` gives variable ``i``;
  ``set_value({i: array, ...})`` (or a list) writes some of them. Plain
  ``state.value`` is the whole stacked array.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> g = brainstate.HiddenGroupState(jnp.zeros((4, 2)))
    >>> g.set_value({1: jnp.ones(4)})
    >>> g.get_value(1), g.varshape, g.num_state
    (Array([1., 1., 1., 1.], dtype=float32), (4,), 2)
  """

  __module__ = 'brainstate_nnx'

  def __init__(self, value: Any, **metadata: Any):
    value = self._check_value(value)
    ShortTermState.__init__(self, value, **metadata)

  def _check_value(self, value):
    if not _is_array(value):
      raise TypeError(
        f'Currently, {type(self).__name__} only supports numpy.ndarray, '
        f'jax.Array or brainunit.Quantity. But we got {type(value)}.'
      )
    if value.ndim < 2:
      raise ValueError(
        f'Currently, {type(self).__name__} only supports hidden states with '
        'more than 2 dimensions, where the last dimension is the number of '
        'state size and the other dimensions are the hidden shape. '
        f'But we got {value.ndim} dimensions.'
      )
    return value

  @property
  def name2index(self) -> Dict[str, int]:
    """``{'0': 0, '1': 1, ...}``: variable names to positions."""
    return {str(i): i for i in range(np.shape(self._raw_value)[-1])}

  @property
  def varshape(self) -> Tuple[int, ...]:
    """The shape of one hidden variable (all axes but the last)."""
    return tuple(np.shape(self.value)[:-1])

  @property
  def num_state(self) -> int:
    """The number of hidden variables (size of the last axis)."""
    return int(np.shape(self.value)[-1])

  def _index(self, item) -> int:
    n = np.shape(self.value)[-1]
    if isinstance(item, bool) or not isinstance(item, (int, str)):
      raise TypeError(
        f'Currently, {type(self).__name__} only supports int or str for '
        f'getting the hidden state. But we got {type(item)}.'
      )
    if isinstance(item, str):
      names = self.name2index
      if item not in names:
        raise KeyError(
          f'Hidden state name {item} not found. Please check the hidden state names.')
      return names[item]
    if item >= n or item < -n:
      raise IndexError(f'Index {item} out of range. The maximum index is {n - 1}.')
    return item + n if item < 0 else item

  def get_value(self, item: Any = _MISSING, *, index: Any = _MISSING):
    """The whole value (no argument), or variable ``item`` (int or name)."""
    if item is _MISSING:
      return super().get_value(index=index)
    return self.value[..., self._index(item)]

  def _updates(self, val) -> Tuple[list, list]:
    if isinstance(val, (tuple, list)):
      val = dict(enumerate(val))
    if not isinstance(val, dict):
      raise TypeError(
        f'Currently, {type(self).__name__}.set_value() only supports '
        f'dictionary of hidden states. But we got {type(val)}.'
      )
    indices, values = [], []
    num, varshape = self.num_state, self.varshape
    for key, v in val.items():
      if isinstance(key, str):
        key = self.name2index[key]
      if isinstance(key, bool) or not isinstance(key, int):
        raise TypeError(f'Key {key} should be int or str. But we got {type(key)}.')
      if not 0 <= key < num:
        raise ValueError(f'Index {key} out of range. The number of hidden states is {num}.')
      if tuple(np.shape(v)) != varshape:
        raise ValueError(
          f'The shape of the hidden state should be {varshape}. But we got {np.shape(v)}.')
      indices.append(key)
      values.append(v)
    return indices, values

  def set_value(self, val: Any, *, index: Any = _MISSING) -> None:
    """Writes some variables: ``{i or name: array}`` or a list in order.

    An array (or ``index=``) sets the whole stacked value, as for any State."""
    if index is not _MISSING or not isinstance(val, (dict, list, tuple)):
      if index is _MISSING and not _is_array(val):
        raise TypeError(
          f'Currently, {type(self).__name__}.set_value() only supports '
          f'dictionary of hidden states. But we got {type(val)}.'
        )
      return super().set_value(val, index=index)
    indices, values = self._updates(val)
    if not indices:
      raise ValueError('No hidden state is set. Please check the hidden state names or indices.')
    whole = jnp.asarray(self.value)
    super().set_value(whole.at[..., np.asarray(indices)].set(jnp.stack(values, axis=-1)))


class HiddenTreeState(HiddenGroupState):
  """Named hidden variables of the same shape, stacked on the last axis.

  Built from ``{name: array}`` (or a list, named ``'0'``, ``'1'``, ...);
  ``get_value(name)`` / ``set_value({name: array})`` address them by name.
  (BrainState also keeps per-variable ``brainunit`` units; brainstate_nnx
  does not use brainunit, so every variable is unitless.)

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> s = brainstate.HiddenTreeState([jnp.zeros(2), jnp.ones(2)])
    >>> s.name2index
    {'0': 0, '1': 1}
  """

  __module__ = 'brainstate_nnx'

  def __init__(self, value: Dict[str, Any] | Sequence[Any], **metadata: Any):
    value, names = self._check_tree(value)
    ShortTermState.__init__(self, value, hidden_names=names, **metadata)

  def _check_tree(self, value):
    if isinstance(value, (tuple, list)):
      value = {str(i): v for i, v in enumerate(value)}
    if not isinstance(value, dict):
      raise TypeError(
        f'Currently, {type(self).__name__} only supports dictionary/sequence '
        f'of hidden states. But we got {type(value)}.'
      )
    for k, v in value.items():
      if not _is_array(v):
        raise TypeError(
          f'Currently, {type(self).__name__} only supports numpy.ndarray, '
          f'jax.Array or brainunit.Quantity. But we got {type(v)} for key {k}.'
        )
    if len({np.shape(v) for v in value.values()}) > 1:
      info = {k: np.shape(v) for k, v in value.items()}
      raise ValueError(
        f'Currently, {type(self).__name__} only supports hidden states with '
        f'the same shape. But we got {info}.'
      )
    names = tuple(value.keys())
    return jnp.stack([jnp.asarray(v) for v in value.values()], axis=-1), names

  @property
  def name2index(self) -> Dict[str, int]:
    """Variable names to positions on the last axis."""
    return {k: i for i, k in enumerate(self._var_metadata['hidden_names'])}

  @property
  def index2name(self) -> Dict[int, str]:
    """Positions to variable names."""
    return dict(enumerate(self._var_metadata['hidden_names']))

  @property
  def name2unit(self) -> Dict[str, None]:
    """Always ``None`` per name (no units in brainstate_nnx)."""
    return {k: None for k in self._var_metadata['hidden_names']}

  @property
  def index2unit(self) -> Dict[int, None]:
    """Always ``None`` per position (no units in brainstate_nnx)."""
    return {i: None for i in range(len(self._var_metadata['hidden_names']))}

  @property
  def num_state(self) -> int:
    n = int(np.shape(self.value)[-1])
    names = self._var_metadata['hidden_names']
    if n != len(names):
      raise ValueError(
        f'The number of hidden states ({n}) is not equal to the number of '
        f'hidden state names ({len(names)}).'
      )
    return n
