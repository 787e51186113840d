"""A small thread-safe LRU cache.

Example::

  >>> from brainstate_nnx.util import BoundedCache
  >>> c = BoundedCache(maxsize=2)
  >>> c.set('a', 1); c.set('b', 2); c.get('a'); c.set('c', 3)
  1
  >>> c.keys()          # 'b' was least recently used, so it was evicted
  ['a', 'c']
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Dict

__all__ = ['BoundedCache']

_MISS = object()


class BoundedCache:
  """A thread-safe least-recently-used cache holding at most ``maxsize`` items.

  ``set`` refuses to overwrite an existing key (use ``replace``); ``get``
  returns ``default`` on a miss, or raises ``ValueError`` listing the cached
  keys when ``raise_on_miss=True``. ``maxsize=0`` caches nothing.

  Example::

    >>> from brainstate_nnx.util import BoundedCache
    >>> c = BoundedCache(4)
    >>> c.set(('f', 1), 'compiled')
    >>> c.get(('f', 1)), c.get(('f', 2), default='none'), ('f', 1) in c
    ('compiled', 'none', True)
    >>> c.get_stats()['hits']
    1
  """

  __module__ = 'brainstate_nnx.util'

  def __init__(self, maxsize: int = 128):
    if isinstance(maxsize, bool) or not isinstance(maxsize, int):
      raise TypeError(f'maxsize must be an int, got {type(maxsize).__name__}.')
    if maxsize < 0:
      raise ValueError(f'maxsize must be non-negative, got {maxsize}.')
    self._maxsize = maxsize
    self._data: OrderedDict = OrderedDict()
    self._lock = threading.RLock()
    self._hits = 0
    self._misses = 0

  @property
  def maxsize(self) -> int:
    """The maximum number of cached items."""
    return self._maxsize

  def get(self, key: Any, default: Any = None, raise_on_miss: bool = False,
          error_context: str = 'item') -> Any:
    """The value for ``key`` (marking it recently used), else ``default``."""
    with self._lock:
      value = self._data.get(key, _MISS)
      if value is not _MISS:
        self._data.move_to_end(key)
        self._hits += 1
        return value
      self._misses += 1
      if raise_on_miss:
        cached = '\n'.join(f'  [{i}] {k}' for i, k in enumerate(self._data, 1))
        raise ValueError(
          f'{error_context} not found in the cache for key:\n  {key}\n'
          f'Cached keys ({len(self._data)}):\n{cached or "  (none)"}'
        )
      return default

  def set(self, key: Any, value: Any) -> None:
    """Caches ``key -> value``, evicting the LRU item when full; a key already cached raises ``ValueError``."""
    with self._lock:
      if key in self._data:
        raise ValueError(f'Key already cached: {key}. Use replace() or clear() first.')
      if self._maxsize == 0:
        return
      while len(self._data) >= self._maxsize:
        self._data.popitem(last=False)
      self._data[key] = value

  def replace(self, key: Any, value: Any) -> None:
    """Overwrites an existing ``key`` (``KeyError`` if absent) and marks it recently used."""
    with self._lock:
      if key not in self._data:
        raise KeyError(f'Key not cached: {key}. Use set() to add it.')
      self._data[key] = value
      self._data.move_to_end(key)

  def pop(self, key: Any, default: Any = None) -> Any:
    """Removes ``key`` and returns its value, or ``default`` if absent."""
    with self._lock:
      return self._data.pop(key, default)

  def __contains__(self, key: Any) -> bool:
    with self._lock:
      return key in self._data

  def __len__(self) -> int:
    with self._lock:
      return len(self._data)

  def clear(self) -> None:
    """Empties the cache and resets the hit/miss counters."""
    with self._lock:
      self._data.clear()
      self._hits = self._misses = 0

  def keys(self) -> list:
    """The cached keys, least recently used first."""
    with self._lock:
      return list(self._data)

  def get_stats(self) -> Dict[str, Any]:
    """``size``, ``maxsize``, ``hits``, ``misses`` and ``hit_rate`` (percent)."""
    with self._lock:
      total = self._hits + self._misses
      return {
        'size': len(self._data),
        'maxsize': self._maxsize,
        'hits': self._hits,
        'misses': self._misses,
        'hit_rate': 100.0 * self._hits / total if total else 0.0,
      }
