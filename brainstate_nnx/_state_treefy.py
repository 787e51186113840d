"""A State as a plain pytree: :class:`TreefyState`.

``state.to_state_ref()`` gives one; it holds the State's type, value and
metadata, is a pytree (``jax.tree.map`` maps the value), and
``to_state()`` makes a new State from it.

Example::

  >>> import jax, jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> ref = brainstate.ParamState(jnp.ones(2), name='w').to_state_ref()
  >>> doubled = jax.tree.map(lambda x: 2 * x, ref)
  >>> st = doubled.to_state()
  >>> type(st).__name__, st.name, st.value
  ('ParamState', 'w', Array([2., 2.], dtype=float32))
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import jax

__all__ = ['TreefyState']

_NNX_KEYS = ('hijax', 'ref', 'eager_sharding')


class TreefyState:
  """``TreefyState(type, value, **metadata)``: a detached State snapshot."""

  __module__ = 'brainstate_nnx'

  def __init__(self, type: type, value: Any, **metadata: Any):
    vars(self).update(metadata)
    self.type = type
    self.value = value

  @property
  def name(self) -> Optional[str]:
    """The State's name (``None`` if unnamed)."""
    meta = vars(self)
    return meta.get('name', meta.get('_name'))

  @name.setter
  def name(self, name: str) -> None:
    vars(self)['name'] = name

  def get_metadata(self) -> Dict[str, Any]:
    """Everything but ``type`` and ``value``."""
    meta = dict(vars(self))
    del meta['type'], meta['value']
    return meta

  def replace(self, value: Any) -> 'TreefyState':
    """The same snapshot with another value."""
    return TreefyState(self.type, value, **self.get_metadata())

  def copy(self) -> 'TreefyState':
    """A shallow copy."""
    return jax.tree.map(lambda x: x, self)

  def to_state(self):
    """A new State of ``type`` with this value and metadata."""
    meta = self.get_metadata()
    meta.setdefault('hijax', False)
    meta.setdefault('ref', False)
    meta.setdefault('eager_sharding', False)
    return self.type._new(self.value, meta)

  def __repr__(self) -> str:
    items = ', '.join(f'{k}={v!r}' for k, v in self.get_metadata().items()
                      if k not in _NNX_KEYS)
    value = jax.tree.map(lambda x: jax.ShapeDtypeStruct(jax.numpy.shape(x), jax.numpy.result_type(x)),
                         self.value)
    return f'TreefyState(type={self.type.__name__}, value={value}' + (f', {items})' if items else ')')


def _flatten(x: TreefyState, with_keys: bool):
  meta = tuple(sorted(x.get_metadata().items()))
  child = (jax.tree_util.GetAttrKey('value'), x.value) if with_keys else x.value
  return (child,), (x.type, meta)


def _unflatten(aux, children):
  return TreefyState(aux[0], children[0], **dict(aux[1]))


jax.tree_util.register_pytree_with_keys(
  TreefyState,
  lambda x: _flatten(x, True),
  _unflatten,
  flatten_func=lambda x: _flatten(x, False),
)
