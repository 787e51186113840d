"""Walking a Module graph the way BrainState does (shared by ``nn`` and ``graph``).

Paths are nnx paths (tuples of attribute names and indices); the hierarchy
of an item is the number of graph nodes between it and the root.
"""

from __future__ import annotations

from flax import nnx

from .util import FlattedDict
from .util.filter import to_predicate

MAX_INT = 2 ** 63 - 1
_INTERNAL = '_pytree__'


def _is_variable(x) -> bool:
  return isinstance(x, nnx.Variable)


def _is_graph_node(x) -> bool:
  return isinstance(x, nnx.Pytree)


def graph_items(node, allowed_hierarchy, want: str):
  """Depth-first walk of the graph, nnx's order (attributes sorted by name).

  Yields ``(path, leaf)`` (``want='leaf'``, in visiting order) or
  ``(path, module)`` (``want='node'``, children before parents). The depth
  grows by one when entering a Module; nothing deeper than ``hi`` is visited,
  so a State shared with a deeper Module is found through its shallow path.
  Containers are visited once; a State is yielded once (first path).
  """
  lo, hi = allowed_hierarchy
  visited: set = set()

  def walk(x, path, level):
    if level > hi:
      return
    if _is_variable(x):
      if want == 'leaf' and level >= lo and id(x) not in visited:
        visited.add(id(x))
        yield path, x
      return
    impl = nnx.graphlib.get_node_impl(x) if nnx.graphlib.is_node(x) else None
    if impl is None:
      if want == 'leaf' and level >= lo:
        yield path, x
      return
    if id(x) in visited:
      return
    visited.add(id(x))
    for key, child in impl.node_dict(x).items():
      if isinstance(key, str) and key.startswith(_INTERNAL):
        continue
      yield from walk(child, (*path, key), level + 1 if _is_graph_node(child) else level)
    if want == 'node' and _is_graph_node(x) and level >= lo:
      yield path, x

  yield from walk(node, (), 0)


def split_items(items, filters):
  num = len(filters)
  filters = (*filters, ...) if num else (...,)
  preds = [to_predicate(f) for f in filters]
  groups = tuple([] for _ in preds)
  for path, value in items:
    for i, pred in enumerate(preds):
      if pred(path, value):
        groups[i].append((path, value))
        break
  maps = tuple(FlattedDict(g) for g in groups)
  return maps[0] if num < 2 else maps[:num]
