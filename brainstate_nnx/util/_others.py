"""Small pure-Python helpers: name counters, dict utilities, memory cleanup.

Example::

  >>> from brainstate_nnx.util import split_total, merge_dicts
  >>> split_total(100, 0.25)
  25
  >>> merge_dicts({'a': {'x': 1}}, {'a': {'y': 2}})
  {'a': {'x': 1, 'y': 2}}
"""

from __future__ import annotations

import copy as _copy
import functools
import gc
import threading
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Dict, Optional, Tuple, Type, Union

import jax

__all__ = [
  'split_total',
  'clear_buffer_memory',
  'not_instance_eval',
  'is_instance_eval',
  'DictManager',
  'DotDict',
  'get_unique_name',
  'merge_dicts',
  'flatten_dict',
  'unflatten_dict',
]


def split_total(total: int, fraction: Union[int, float]) -> int:
  """How many of ``total`` items a ``fraction`` stands for.

  A float in ``[0, 1]`` is a proportion (``int(total * fraction)``); an int in
  ``[0, total]`` is a count returned as is. ``total`` must be a positive int.
  Booleans are rejected (``TypeError``); out-of-range values raise
  ``ValueError``.

  Example::

    >>> from brainstate_nnx.util import split_total
    >>> split_total(10, 0.5), split_total(10, 3)
    (5, 3)
  """
  if isinstance(total, bool) or not isinstance(total, int):
    raise TypeError(f"'total' must be an int, got {type(total).__name__}.")
  if total <= 0:
    raise ValueError(f"'total' must be positive, got {total}.")
  if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
    raise TypeError(f"'fraction' must be an int or float, got {type(fraction).__name__}.")
  if fraction < 0:
    raise ValueError(f"'fraction' cannot be negative, got {fraction}.")
  if isinstance(fraction, float):
    if fraction > 1:
      raise ValueError(f"A float 'fraction' cannot be greater than 1, got {fraction}.")
    return int(total * fraction)
  if fraction > total:
    raise ValueError(f"An int 'fraction' cannot exceed total ({total}), got {fraction}.")
  return fraction


class _NameCounters(threading.local):
  def __init__(self):
    self.counts: Dict[str, int] = {}


_NAMES = _NameCounters()


def get_unique_name(type_: str, prefix: str = '') -> str:
  """A fresh name ``f'{prefix}{type_}{n}'``, ``n`` counting per ``type_``.

  Counters are per thread and per ``type_`` (not per prefix).

  Example::

    >>> from brainstate_nnx.util import get_unique_name
    >>> a, b = get_unique_name('_doc_Dense'), get_unique_name('_doc_Dense', 'enc_')
    >>> a, b
    ('_doc_Dense0', 'enc__doc_Dense1')
  """
  n = _NAMES.counts.get(type_, 0)
  _NAMES.counts[type_] = n + 1
  return f'{prefix}{type_}{n}'


def _is_instance(x: Any, cls: Tuple[Type, ...]) -> bool:
  return isinstance(x, cls)


def _is_not_instance(x: Any, cls: Tuple[Type, ...]) -> bool:
  return not isinstance(x, cls)


def is_instance_eval(*cls: Type) -> Callable[[Any], bool]:
  """A one-argument function testing ``isinstance(x, cls)``.

  Example::

    >>> from brainstate_nnx.util import is_instance_eval
    >>> is_num = is_instance_eval(int, float)
    >>> is_num(1), is_num('1')
    (True, False)
  """
  return functools.partial(_is_instance, cls=cls)


def not_instance_eval(*cls: Type) -> Callable[[Any], bool]:
  """A one-argument function testing ``not isinstance(x, cls)``.

  Example::

    >>> from brainstate_nnx.util import not_instance_eval
    >>> not_str = not_instance_eval(str)
    >>> not_str(1), not_str('1')
    (True, False)
  """
  return functools.partial(_is_not_instance, cls=cls)


def clear_buffer_memory(
  platform: Optional[str] = None,
  array: bool = True,
  compilation: bool = False,
) -> None:
  """Frees device memory: deletes live JAX arrays, optionally clears caches.

  With ``array=True`` every live array of ``platform`` (default backend when
  None) is deleted -- existing references to them become unusable. With
  ``compilation=True`` JAX's compilation caches are cleared too. Ends with a
  garbage collection.

  Example::

    >>> from brainstate_nnx.util import clear_buffer_memory
    >>> clear_buffer_memory(array=False)   # just gc; keeps arrays alive
  """
  if array:
    for arr in jax.live_arrays(platform):
      try:
        arr.delete()
      except Exception as e:  # best effort: report, keep going
        warnings.warn(f'Could not delete a live array: {e}', RuntimeWarning)
  if compilation:
    jax.clear_caches()
  gc.collect()


class DictManager(dict):
  """A ``dict`` with helpers to select, split and de-duplicate its values.

  A JAX pytree (children in insertion order).

  Example::

    >>> from brainstate_nnx.util import DictManager
    >>> d = DictManager(a=1, b=2.0, c='s')
    >>> d.subset((int, float))
    DictManager({'a': 1, 'b': 2.0})
    >>> ints, rest = d.split(int)
    >>> ints, rest
    (DictManager({'a': 1}), DictManager({'b': 2.0, 'c': 's'}))
  """

  __module__ = 'brainstate_nnx.util'

  def subset(self, sep: Union[Type, Tuple[Type, ...], Callable[[Any], bool]]) -> 'DictManager':
    """Items whose value is an instance of ``sep`` (a type/tuple) or passes ``sep(value)``."""
    if callable(sep) and not isinstance(sep, type):
      return type(self)((k, v) for k, v in self.items() if sep(v))
    return type(self)((k, v) for k, v in self.items() if isinstance(v, sep))

  def not_subset(self, sep: Union[Type, Tuple[Type, ...]]) -> 'DictManager':
    """Items whose value is *not* an instance of ``sep``."""
    return type(self)((k, v) for k, v in self.items() if not isinstance(v, sep))

  def _check_elem(self, elem: Any) -> None:
    """Hook for subclasses to validate values before they are added."""

  def add_unique_key(self, key: Any, val: Any) -> None:
    """Adds ``key -> val``; an existing ``key`` must already hold this very object."""
    self._check_elem(val)
    if key in self:
      if self[key] is not val:
        raise ValueError(
          f'Key {key!r} already holds a different value: {self[key]!r} (new: {val!r}).'
        )
    else:
      self[key] = val

  def add_unique_value(self, key: Any, val: Any) -> bool:
    """Adds ``key -> val`` unless the object ``val`` is already a value here.

    Returns whether it was added. ``key`` holding another object raises.
    """
    self._check_elem(val)
    if key in self and self[key] is not val:
      raise ValueError(
        f'Key {key!r} already holds a different value: {self[key]!r} (new: {val!r}).'
      )
    if any(v is val for v in self.values()):
      return False
    self[key] = val
    return True

  def unique(self) -> 'DictManager':
    """A copy keeping only the first key of each value object (by identity)."""
    seen = set()
    out = type(self)()
    for k, v in self.items():
      if id(v) not in seen:
        seen.add(id(v))
        out[k] = v
    return out

  def unique_(self) -> 'DictManager':
    """In-place :meth:`unique`; returns self."""
    keep = self.unique()
    for k in [k for k in self if k not in keep]:
      del self[k]
    return self

  def assign(self, *args: dict, **kwargs: Any) -> None:
    """``update`` with several dicts (each must be a ``dict``) and keywords."""
    for arg in args:
      if not isinstance(arg, dict):
        raise TypeError(f'assign expects dicts, got {type(arg).__name__}.')
      self.update(arg)
    self.update(kwargs)

  def split(self, *types: Type) -> Tuple['DictManager', ...]:
    """One DictManager per type (first match wins) plus one for the rest."""
    groups = tuple(type(self)() for _ in range(len(types) + 1))
    for k, v in self.items():
      for g, t in zip(groups, types):
        if isinstance(v, t):
          g[k] = v
          break
      else:
        groups[-1][k] = v
    return groups

  def filter_by_predicate(self, predicate: Callable[[Any, Any], bool]) -> 'DictManager':
    """Items for which ``predicate(key, value)`` is true."""
    return type(self)((k, v) for k, v in self.items() if predicate(k, v))

  def map_values(self, func: Callable[[Any], Any]) -> 'DictManager':
    """A copy with ``func`` applied to every value."""
    return type(self)((k, func(v)) for k, v in self.items())

  def map_keys(self, func: Callable[[Any], Any]) -> 'DictManager':
    """A copy with ``func`` applied to every key; colliding keys raise."""
    out = type(self)()
    for k, v in self.items():
      nk = func(k)
      if nk in out:
        raise ValueError(f'map_keys: two keys map to {nk!r}.')
      out[nk] = v
    return out

  def pop_by_keys(self, keys: Iterable) -> None:
    """Removes the given keys (missing ones are ignored)."""
    for k in set(keys):
      self.pop(k, None)

  @staticmethod
  def _matcher(values: Iterable, by: str) -> Callable[[Any], bool]:
    if by == 'id':
      ids = {id(v) for v in values}
      return lambda v: id(v) in ids
    if by == 'value':
      vals = values if isinstance(values, set) else set(values)
      return lambda v: v in vals
    raise ValueError(f"'by' must be 'id' or 'value', got {by!r}.")

  def pop_by_values(self, values: Iterable, by: str = 'id') -> None:
    """Removes the items whose value is in ``values`` (by identity or equality)."""
    match = self._matcher(values, by)
    for k in [k for k, v in self.items() if match(v)]:
      del self[k]

  def difference_by_keys(self, keys: Iterable) -> 'DictManager':
    """Items whose key is not in ``keys``."""
    ks = set(keys)
    return type(self)((k, v) for k, v in self.items() if k not in ks)

  def difference_by_values(self, values: Iterable, by: str = 'id') -> 'DictManager':
    """Items whose value is not in ``values``."""
    match = self._matcher(values, by)
    return type(self)((k, v) for k, v in self.items() if not match(v))

  def intersection_by_keys(self, keys: Iterable) -> 'DictManager':
    """Items whose key is in ``keys``."""
    ks = set(keys)
    return type(self)((k, v) for k, v in self.items() if k in ks)

  def intersection_by_values(self, values: Iterable, by: str = 'id') -> 'DictManager':
    """Items whose value is in ``values``."""
    match = self._matcher(values, by)
    return type(self)((k, v) for k, v in self.items() if match(v))

  def __add__(self, other: Mapping) -> 'DictManager':
    if not isinstance(other, Mapping):
      return NotImplemented
    out = type(self)(self)
    out.update(other)
    return out

  __or__ = __add__

  def __ior__(self, other: Mapping) -> 'DictManager':
    if not isinstance(other, Mapping):
      return NotImplemented
    self.update(other)
    return self

  def to_dict(self) -> dict:
    """A plain ``dict`` copy."""
    return dict(self)

  def __copy__(self) -> 'DictManager':
    return type(self)(self)

  def __deepcopy__(self, memo) -> 'DictManager':
    return type(self)(
      (_copy.deepcopy(k, memo), _copy.deepcopy(v, memo)) for k, v in self.items()
    )

  def __repr__(self) -> str:
    return f'{type(self).__name__}({dict.__repr__(self)})'

  def tree_flatten(self):
    return tuple(self.values()), tuple(self.keys())

  @classmethod
  def tree_unflatten(cls, keys, values):
    return cls(zip(keys, values))


jax.tree_util.register_pytree_node_class(DictManager)


class DotDict(dict):
  """A ``dict`` whose keys are also attributes; nested dicts become DotDicts.

  Dicts inside lists/tuples are converted as well. ``update`` merges nested
  dicts recursively. A JAX pytree.

  Example::

    >>> from brainstate_nnx.util import DotDict
    >>> cfg = DotDict({'model': {'hidden': 128}}, lr=1e-3)
    >>> cfg.model.hidden, cfg.lr
    (128, 0.001)
    >>> cfg.update({'model': {'layers': 2}})
    >>> cfg.model.to_dict()
    {'hidden': 128, 'layers': 2}
  """

  __module__ = 'brainstate_nnx.util'

  def __init__(self, *args, **kwargs):
    super().__init__()
    for arg in args:
      if not arg:
        continue
      if isinstance(arg, Mapping):
        pairs = arg.items()
      elif isinstance(arg, tuple) and len(arg) == 2 and not isinstance(arg[0], tuple):
        pairs = [arg]
      else:
        pairs = arg
      try:
        for k, v in pairs:
          self[k] = v
      except (TypeError, ValueError) as e:
        raise TypeError(f'Cannot build a DotDict from {type(arg).__name__}.') from e
    for k, v in kwargs.items():
      self[k] = v

  @classmethod
  def _hook(cls, item: Any) -> Any:
    if isinstance(item, dict) and not isinstance(item, cls):
      return cls(item)
    if isinstance(item, tuple):
      conv = [cls._hook(e) for e in item]
      return type(item)(*conv) if hasattr(item, '_fields') else type(item)(conv)
    if isinstance(item, list):
      return type(item)(cls._hook(e) for e in item)
    return item

  def __setitem__(self, key, value) -> None:
    super().__setitem__(key, self._hook(value))

  def __setattr__(self, name: str, value: Any) -> None:
    if hasattr(type(self), name):
      raise AttributeError(f'Cannot set {name!r}: it is a method of {type(self).__name__}.')
    self[name] = value

  def __getattr__(self, name: str) -> Any:
    try:
      return self[name]
    except KeyError:
      raise AttributeError(f'{type(self).__name__} has no attribute {name!r}') from None

  def __delattr__(self, name: str) -> None:
    try:
      del self[name]
    except KeyError:
      raise AttributeError(f'{type(self).__name__} has no attribute {name!r}') from None

  def __dir__(self):
    return list(self.keys()) + dir(type(self))

  def copy(self) -> 'DotDict':
    """A shallow copy."""
    return _copy.copy(self)

  def deepcopy(self) -> 'DotDict':
    """A deep copy."""
    return _copy.deepcopy(self)

  def __copy__(self) -> 'DotDict':
    out = type(self)()
    dict.update(out, self)
    return out

  def __deepcopy__(self, memo) -> 'DotDict':
    out = type(self)()
    memo[id(self)] = out
    for k, v in self.items():
      out[_copy.deepcopy(k, memo)] = _copy.deepcopy(v, memo)
    return out

  def to_dict(self) -> dict:
    """A plain nested ``dict`` (DotDicts inside lists/tuples converted too)."""
    def conv(v):
      if isinstance(v, DotDict):
        return v.to_dict()
      if isinstance(v, tuple):
        items = [conv(e) for e in v]
        return type(v)(*items) if hasattr(v, '_fields') else type(v)(items)
      if isinstance(v, list):
        return type(v)(conv(e) for e in v)
      return v
    return {k: conv(v) for k, v in self.items()}

  @classmethod
  def from_dict(cls, d: dict) -> 'DotDict':
    """``DotDict(d)``."""
    return cls(d)

  def update(self, *args, **kwargs) -> None:
    """Like ``dict.update`` but nested dicts are merged, not replaced."""
    if len(args) > 1:
      raise TypeError(f'update expected at most 1 argument, got {len(args)}')
    try:
      other = dict(args[0]) if args else {}
    except (TypeError, ValueError) as e:
      raise TypeError(
        f'update expects a mapping or key/value pairs, got {type(args[0]).__name__}'
      ) from e
    other.update(kwargs)
    for k, v in other.items():
      cur = self.get(k)
      if isinstance(cur, dict) and isinstance(v, dict):
        if not isinstance(cur, DotDict):
          cur = type(self)(cur)
          dict.__setitem__(self, k, cur)
        cur.update(v)
      else:
        self[k] = v

  def setdefault(self, key, default=None):
    if key not in self:
      self[key] = default
    return self[key]

  def __or__(self, other: Mapping) -> 'DotDict':
    if not isinstance(other, Mapping):
      return NotImplemented
    out = self.__copy__()
    out.update(other)
    return out

  def __ror__(self, other: Mapping) -> 'DotDict':
    if not isinstance(other, Mapping):
      return NotImplemented
    out = type(self)(dict(other))
    out.update(self)
    return out

  def __ior__(self, other: Mapping) -> 'DotDict':
    if not isinstance(other, Mapping):
      return NotImplemented
    self.update(other)
    return self

  def __getstate__(self):
    return dict(self)

  def __setstate__(self, state):
    self.update(state)

  def __repr__(self) -> str:
    return f'DotDict({dict.__repr__(self)})'

  def tree_flatten(self):
    return tuple(self.values()), tuple(self.keys())

  @classmethod
  def tree_unflatten(cls, keys, values):
    return cls(zip(keys, values))


jax.tree_util.register_pytree_node_class(DotDict)


def merge_dicts(*dicts: dict, recursive: bool = True) -> dict:
  """Merges dicts left to right (later wins); nested dicts merge recursively.

  Example::

    >>> from brainstate_nnx.util import merge_dicts
    >>> merge_dicts({'a': 1, 'b': {'c': 2}}, {'b': {'d': 3}}, recursive=False)
    {'a': 1, 'b': {'d': 3}}
  """
  out: dict = {}
  for d in dicts:
    if not isinstance(d, dict):
      raise TypeError(f'merge_dicts expects dicts, got {type(d).__name__}.')
    for k, v in d.items():
      if recursive and isinstance(out.get(k), dict) and isinstance(v, dict):
        out[k] = merge_dicts(out[k], v, recursive=True)
      else:
        out[k] = v
  return out


def flatten_dict(d: dict, parent_key: str = '', sep: str = '.') -> dict:
  """Flattens nested dicts into ``sep``-joined string keys.

  Empty sub-dicts are kept as ``{}`` values so :func:`unflatten_dict`
  round-trips. Nested keys must be strings; colliding keys raise
  ``ValueError``.

  Example::

    >>> from brainstate_nnx.util import flatten_dict
    >>> flatten_dict({'a': 1, 'b': {'c': 2, 'd': {}}})
    {'a': 1, 'b.c': 2, 'b.d': {}}
  """
  if not isinstance(d, dict):
    raise TypeError(f'flatten_dict expects a dict, got {type(d).__name__}.')
  out: dict = {}

  def put(k, v):
    if k in out:
      raise ValueError(f'flatten_dict produced the key {k!r} twice.')
    out[k] = v

  for k, v in d.items():
    if parent_key and not isinstance(k, str):
      raise TypeError(f'Nested keys must be str to be joined, got {k!r}.')
    key = f'{parent_key}{sep}{k}' if parent_key else k
    if isinstance(v, dict) and v:
      for nk, nv in flatten_dict(v, key, sep).items():
        put(nk, nv)
    elif isinstance(v, dict):
      put(key, {})
    else:
      put(key, v)
  return out


def unflatten_dict(d: dict, sep: str = '.') -> dict:
  """Inverse of :func:`flatten_dict`: splits keys on ``sep`` into nested dicts.

  Example::

    >>> from brainstate_nnx.util import unflatten_dict
    >>> unflatten_dict({'a': 1, 'b.c': 2})
    {'a': 1, 'b': {'c': 2}}
  """
  if not isinstance(d, dict):
    raise TypeError(f'unflatten_dict expects a dict, got {type(d).__name__}.')
  out: dict = {}
  for key, value in d.items():
    parts = key.split(sep)
    if any(p == '' for p in parts):
      raise ValueError(f'Invalid flattened key {key!r}.')
    node = out
    for p in parts[:-1]:
      child = node.setdefault(p, {})
      if not isinstance(child, dict):
        raise ValueError(f'Key {key!r} goes through {p!r}, which holds a leaf.')
      node = child
    if isinstance(node.get(parts[-1]), dict):
      raise ValueError(f'Key {key!r} would overwrite a nested dict with a leaf.')
    node[parts[-1]] = dict(value) if isinstance(value, dict) else value
  return out
