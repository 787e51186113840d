"""BrainState's multi-line ``repr`` of modules.

Rules (as ``brainstate.nn.Module``): one attribute per line as ``name=value``
in assignment order (strings unquoted); attributes whose value is ``None`` or that are listed in
``graph_invisible_attrs`` are left out; a leading underscore is dropped from
the name (``_in_size`` shows as ``in_size``); lists print one item per line,
dicts as ``{'key': value}`` one entry per line; a module already being printed
(a cycle) prints as ``Type(...)``; an empty module prints as ``Type()``.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator, Tuple

__all__ = ['module_repr']

_INDENT = '  '
_SEEN = threading.local()


def _block(opening: str, closing: str, entries, empty: str = '') -> str:
  body = ',\n'.join(_INDENT + e.replace('\n', '\n' + _INDENT) for e in entries)
  if not body:
    return f'{opening}{empty}{closing}'
  return f'{opening}\n{body}\n{closing}'


def _value(v: Any) -> str:
  if isinstance(v, str):  # BrainState prints strings as they are, without quotes
    return v
  if isinstance(v, list):
    return _block('[', ']', [_value(x) for x in v])
  if isinstance(v, dict):
    return _block('{', '}', [f'{k!r}: {_value(x)}' for k, x in v.items()])
  return repr(v)


def _items(module) -> Iterator[Tuple[str, Any]]:
  for k, v in vars(module).items():
    if k.startswith('_pytree__') or k.startswith('_object__'):
      continue
    item = module.__pretty_repr_item__(k, v)
    if item is None:
      continue
    yield item


def module_repr(module) -> str:
  """The BrainState-style ``repr`` of ``module``."""
  seen = getattr(_SEEN, 'ids', None)
  top = seen is None
  if top:
    seen = _SEEN.ids = set()
  name = type(module).__name__
  if id(module) in seen:
    return f'{name}(...)'
  seen.add(id(module))
  try:
    return _block(f'{name}(', ')', [f'{k}={_value(v)}' for k, v in _items(module)])
  finally:
    if top:
      _SEEN.ids = None
