"""``HiData``: a named, nestable bundle of arrays that is a JAX pytree."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict

import jax

__all__ = ['HiData']


class HiData:
  """A named mapping of children (arrays, ``None`` or nested ``HiData``) that is a pytree.

  Children are read as attributes or items; ``add``/``pop``/``replace`` return
  new objects. ``name`` is static; the children are the pytree's leaves (in
  sorted key order), so a ``HiData`` passes through ``jit``, ``vmap`` and
  ``jax.tree.map``. Subclasses are pytrees too.

  Example::

    >>> import jax, jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> s = brainstate.nn.HiData(name='hh', V=jnp.zeros(2), m=jnp.ones(2))
    >>> s.V, s.state_size
    (Array([0., 0.], dtype=float32), 2)
    >>> jax.tree.map(lambda x: x + 1, s).m
    Array([2., 2.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  _brainstate_dataclass = True
  name: str = None
  children: Dict[str, Any] = dataclasses.field(default_factory=dict)

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)
    dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
    _register(cls)

  def __init__(self, children: Dict[str, Any] = None, name: str = None, **kwargs):
    object.__setattr__(self, 'children', dict(children) if children is not None else {})
    object.__setattr__(self, 'name', name)
    self.children.update(kwargs)

  def __setattr__(self, key, value):
    raise dataclasses_frozen(key)

  def __len__(self):
    return len(self.children)

  def __getattr__(self, key: str) -> Any:
    if key.startswith('__') or key in ('children', 'name'):
      raise AttributeError(key)
    try:
      return self.children[key]
    except KeyError:
      raise AttributeError(f"'{type(self).__name__}' has no attribute '{key}'") from None

  def __getitem__(self, key: str) -> Any:
    return self.children[key]

  def __contains__(self, key: str) -> bool:
    return key in self.children

  def keys(self):
    return self.children.keys()

  def items(self):
    return self.children.items()

  def values(self):
    return self.children.values()

  def __repr__(self) -> str:
    return self._repr(0)

  def _repr(self, indent: int) -> str:
    pad = '  ' * indent
    name = f"'{self.name}'" if self.name else 'None'
    if not self.children:
      return f'{pad}HiData(name={name})'
    lines = [f'{pad}HiData(', f'{pad}  name={name},']
    items = list(self.children.items())
    for i, (k, v) in enumerate(items):
      comma = '' if i == len(items) - 1 else ','
      if isinstance(v, HiData):
        body = v._repr(indent + 1).lstrip()
      else:
        body = _fmt(v)
      lines.append(f'{pad}  {k}={body}{comma}')
    lines.append(f'{pad})')
    return '\n'.join(lines)

  def clone(self) -> 'HiData':
    """A copy (children with a ``clone`` method are cloned)."""
    kids = {k: (v.clone() if v is not None and hasattr(v, 'clone') else v)
            for k, v in self.children.items()}
    return self.__class__(children=kids, name=self.name)

  @property
  def state_size(self) -> int:
    """The number of non-``None`` leaves, nested ``HiData`` counted through."""
    n = 0
    for v in self.children.values():
      if isinstance(v, HiData):
        n = n + v.state_size
      elif v is not None:
        n += 1
    return n

  @property
  def dtype(self):
    """The dtype of the first array child (searching nested ``HiData``)."""
    for v in self.children.values():
      if v is None:
        continue
      if isinstance(v, HiData):
        try:
          return v.dtype
        except ValueError:
          continue
      if hasattr(v, 'dtype'):
        return v.dtype
    raise ValueError('No array children found to determine dtype')

  def add(self, *args, **updates) -> 'HiData':
    """A copy with the entries of ``args`` (HiData or dicts) and ``updates`` added."""
    kids = dict(self.children)
    for arg in args:
      assert isinstance(arg, (HiData, dict)), (
        'Argument must be of type HiData or Dict, got {}'.format(type(arg)))
      for k, v in arg.items():
        kids[k] = v
    kids.update(updates)
    return self.__class__(children=kids, name=self.name)

  def pop(self, *args) -> 'HiData':
    """A copy without the children ``args``."""
    kids = dict(self.children)
    for k in args:
      kids.pop(k)
    return self.__class__(children=kids, name=self.name)

  def replace(self, **updates) -> 'HiData':
    """A copy with some children replaced."""
    kids = dict(self.children)
    kids.update(updates)
    return self.__class__(children=kids, name=self.name)

  def to_dict(self) -> Dict:
    """Nested plain dicts."""
    return {k: v.to_dict() if isinstance(v, HiData) else v for k, v in self.children.items()}

  @classmethod
  def from_dict(cls, d: Dict) -> 'HiData':
    """The inverse of :meth:`to_dict` (nested dicts become nested ``HiData``)."""
    return cls(children={k: cls.from_dict(v) if isinstance(v, dict) else v for k, v in d.items()})


def dataclasses_frozen(key):
  import dataclasses
  return dataclasses.FrozenInstanceError(f"cannot assign to field '{key}'")


def _fmt(v) -> str:
  if v is None:
    return 'None'
  if hasattr(v, 'shape') and hasattr(v, 'dtype'):
    return f'Array(shape={v.shape}, dtype={v.dtype})'
  s = repr(v)
  return s if len(s) <= 60 else f'{s[:57]}...'


def _register(cls):
  def flatten_with_keys(x):
    return ((jax.tree_util.GetAttrKey('children'), x.children),), x.name

  def flatten(x):
    return (x.children,), x.name

  def unflatten(name, kids):
    obj = object.__new__(cls)
    object.__setattr__(obj, 'children', dict(kids[0]))
    object.__setattr__(obj, 'name', name)
    return obj

  jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)


HiData = dataclasses.dataclass(init=False, repr=False, eq=False)(HiData)
_register(HiData)


def is_dataclass(cls) -> bool:
  """Whether ``cls`` is a HiData-style dataclass (HiData and its subclasses are)."""
  return hasattr(cls, '_brainstate_dataclass')
