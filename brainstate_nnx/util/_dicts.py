"""State dictionaries: :class:`FlattedDict` (path -> leaf) and :class:`NestedDict`.

Both are plain ``dict`` subclasses registered as JAX pytrees (children in
sorted-key order). Leaves are usually States, but any value is allowed.

Example::

  >>> import jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> from brainstate_nnx.util import FlattedDict
  >>> flat = FlattedDict({
  ...   ('lin', 'w'): brainstate.ParamState(jnp.ones(2)),
  ...   ('lin', 'v'): brainstate.HiddenState(jnp.zeros(2)),
  ... })
  >>> params, rest = flat.split(brainstate.ParamState, ...)
  >>> list(params), list(rest)
  ([('lin', 'w')], [('lin', 'v')])
  >>> flat.to_nest()['lin']['w'] is params[('lin', 'w')]
  True
"""

from __future__ import annotations

import threading
from collections import abc
from typing import Any, Callable, Dict, Iterable, Optional, Tuple, Union

import jax
from flax import nnx

from .filter import Filter, filters_to_predicates

__all__ = [
  'PrettyDict',
  'NestedDict',
  'FlattedDict',
  'PrettyList',
  'PrettyObject',
  'flat_mapping',
  'nest_mapping',
  'empty_node',
]

PathParts = Tuple[Any, ...]


# ---------------------------------------------------------------------------
# empty-node sentinel
# ---------------------------------------------------------------------------

class _EmptyNode:
  """Stands for an empty sub-mapping in a flattened dict (no pytree leaves)."""

  _instance = None

  def __new__(cls):
    if cls._instance is None:
      cls._instance = super().__new__(cls)
    return cls._instance

  def __repr__(self) -> str:
    return 'empty_node'

  def __reduce__(self):
    return (_EmptyNode, ())


empty_node = _EmptyNode()
jax.tree_util.register_pytree_node(
  _EmptyNode, lambda _: ((), None), lambda _, __: empty_node
)


# ---------------------------------------------------------------------------
# repr helpers
# ---------------------------------------------------------------------------

_REPR = threading.local()
_INLINE_WIDTH = 80


def _indent_tail(text: str, pad: str) -> str:
  return text.replace('\n', '\n' + pad)


def _fmt(value: Any, pad: str, top: bool = False) -> str:
  """Readable representation of ``value`` at indentation ``pad``.

  Short nested containers stay on one line; the top-level container and long
  ones get one item per line.
  """
  seen = getattr(_REPR, 'seen', None)
  if seen is None:
    seen = _REPR.seen = set()
  if isinstance(value, (dict, list, PrettyObject)):
    if id(value) in seen:
      return f'{type(value).__name__}(...)'
    seen.add(id(value))
    try:
      return _fmt_container(value, pad, top)
    finally:
      seen.discard(id(value))
  return _indent_tail(repr(value), pad)


def _fmt_container(value: Any, pad: str, top: bool) -> str:
  inner = pad + '  '
  if isinstance(value, PrettyObject):
    name = type(value).__name__
    items = [f'{k}={_fmt(v, inner)}' for k, v in _pretty_items(value)]
    opening, closing = name + '(', ')'
  elif isinstance(value, dict):
    items = [f'{k!r}: {_fmt(v, inner)}' for k, v in value.items()]
    opening, closing = '{', '}'
  else:
    items = [_fmt(v, inner) for v in value]
    opening, closing = '[', ']'
  if not items:
    return opening + closing
  if not top and not isinstance(value, PrettyObject):
    one_line = opening + ', '.join(items) + closing
    if len(one_line) <= _INLINE_WIDTH and '\n' not in one_line:
      return one_line
  return opening + '\n' + ',\n'.join(inner + i for i in items) + '\n' + pad + closing


def _pretty_items(obj: 'PrettyObject'):
  for k, v in vars(obj).items():
    item = obj.__pretty_repr_item__(k, v)
    if item is not None:
      yield item


# ---------------------------------------------------------------------------
# flatten / nest
# ---------------------------------------------------------------------------

def flat_mapping(
  xs: abc.Mapping,
  /,
  *,
  keep_empty_nodes: bool = False,
  is_leaf: Optional[Callable[[PathParts, abc.Mapping], bool]] = None,
  sep: Optional[str] = None,
) -> 'FlattedDict':
  """Flattens a nested mapping into a :class:`FlattedDict` of path tuples.

  Every non-mapping value becomes a leaf keyed by its path. Empty
  sub-mappings are dropped unless ``keep_empty_nodes`` (then they map to
  ``empty_node``). ``is_leaf(path, mapping)`` may stop the descent at a
  mapping. With ``sep``, keys are ``sep``-joined strings instead of tuples.

  Example::

    >>> from brainstate_nnx.util import flat_mapping
    >>> dict(flat_mapping({'a': 1, 'b': {'c': 2, 'd': {}}}))
    {('a',): 1, ('b', 'c'): 2}
    >>> dict(flat_mapping({'a': {'b': 1}}, sep='/'))
    {'a/b': 1}
  """
  if not isinstance(xs, abc.Mapping):
    raise TypeError(f'flat_mapping expects a Mapping, got {type(xs).__qualname__}.')

  def make_key(path):
    return path if sep is None else sep.join(map(str, path))

  out: Dict[Any, Any] = {}

  def walk(node, path):
    if not isinstance(node, abc.Mapping) or (is_leaf is not None and is_leaf(path, node)):
      out[make_key(path)] = node
      return
    if not node:
      if keep_empty_nodes and path:
        out[make_key(path)] = empty_node
      return
    for k, v in node.items():
      walk(v, path + (k,))

  walk(xs, ())
  return FlattedDict(out)


def nest_mapping(xs: abc.Mapping, /, *, sep: Optional[str] = None) -> 'NestedDict':
  """Rebuilds a :class:`NestedDict` from a mapping of paths to leaves.

  The inverse of :func:`flat_mapping`: a path ``('a', 'b')`` becomes
  ``{'a': {'b': leaf}}`` (inner levels are plain dicts). With ``sep``, string
  keys are split on it first. ``empty_node`` leaves become empty dicts. Raises
  ``ValueError`` for an empty path or when one path is a prefix of another.

  Example::

    >>> from brainstate_nnx.util import nest_mapping
    >>> nest_mapping({('a',): 1, ('b', 'c'): 2}).to_dict()
    {'a': 1, 'b': {'c': 2}}
    >>> nest_mapping({'x/y': 3}, sep='/').to_dict()
    {'x': {'y': 3}}
  """
  if not isinstance(xs, abc.Mapping):
    raise TypeError(f'nest_mapping expects a Mapping, got {type(xs).__qualname__}.')
  root: Dict[Any, Any] = {}
  for path, leaf in xs.items():
    if sep is not None:
      path = path.split(sep)
    path = tuple(path)
    if not path:
      raise ValueError('nest_mapping cannot place a leaf at the empty path ().')
    if leaf is empty_node:
      leaf = {}
    node = root
    for k in path[:-1]:
      child = node.setdefault(k, {})
      if not isinstance(child, abc.Mapping):
        raise ValueError(
          f'Path {path!r} goes through {k!r}, which already holds a leaf.'
        )
      node = child
    last = path[-1]
    if isinstance(node.get(last), abc.Mapping):
      raise ValueError(
        f'Path {path!r} would overwrite a sub-mapping with a leaf.'
      )
    node[last] = leaf
  return NestedDict(root)


# ---------------------------------------------------------------------------
# dict classes
# ---------------------------------------------------------------------------

class _MissingKey(KeyError, AttributeError):
  """A missing key looked up as an attribute: both KeyError and AttributeError."""


class PrettyDict(dict):
  """Base class of :class:`NestedDict` and :class:`FlattedDict`.

  A ``dict`` whose items can also be read as attributes (``d.key``), with a
  readable multi-line repr. ``split``/``filter``/``merge`` are provided by the
  subclasses; ``subset`` is ``filter``.

  Example::

    >>> from brainstate_nnx.util import NestedDict
    >>> d = NestedDict({'w': 1})
    >>> d.w, d.to_dict()
    (1, {'w': 1})
  """

  __module__ = 'brainstate_nnx.util'

  def __getattr__(self, key):
    if key.startswith('__') and key.endswith('__'):
      raise AttributeError(key)
    try:
      return self[key]
    except KeyError:
      raise _MissingKey(key) from None

  def to_dict(self) -> dict:
    """A plain ``dict`` with the same (top-level) items.

    Example::

      >>> from brainstate_nnx.util import FlattedDict
      >>> type(FlattedDict({('a',): 1}).to_dict())
      <class 'dict'>
    """
    return dict(self)

  def __repr__(self) -> str:
    return f'{type(self).__name__}({_fmt(self, "", top=True)})'

  def split(self, *filters: Filter):
    """Partition by filters (implemented by the subclasses)."""
    raise NotImplementedError

  def filter(self, *filters: Filter):
    """Select by filters (implemented by the subclasses)."""
    raise NotImplementedError

  def merge(self, *dicts):
    """Combine dicts (implemented by the subclasses)."""
    raise NotImplementedError

  def subset(self, *filters: Filter):
    """Same as :meth:`filter`: the items matching each filter.

    Example::

      >>> from brainstate_nnx.util import FlattedDict
      >>> dict(FlattedDict({('a',): 1, ('b',): 'x'}).subset(int))
      {('a',): 1}
    """
    return self.filter(*filters)


def _partition(items: Iterable[Tuple[Any, Any]], filters) -> list:
  """``len(filters) + 1`` dicts; each item goes to the first matching filter.

  The last dict collects the items no filter matched.
  """
  predicates = filters_to_predicates(filters)
  groups = [{} for _ in range(len(predicates) + 1)]
  for path, leaf in items:
    for group, pred in zip(groups, predicates):
      if pred(path, leaf):
        group[path] = leaf
        break
    else:
      groups[-1][path] = leaf
  return groups


def _non_exhaustive(rest: dict) -> ValueError:
  paths = list(rest)
  shown = ', '.join(map(repr, paths[:10])) + (', ...' if len(paths) > 10 else '')
  return ValueError(
    f'Non-exhaustive filters: {len(paths)} item(s) matched none of them, '
    f'at path(s) {shown}. Add `...` as the last filter to collect the rest.'
  )


def _one_or_tuple(groups: list):
  return groups[0] if len(groups) == 1 else tuple(groups)


class NestedDict(PrettyDict):
  """A nested ``dict`` of States/values, keyed by str or int at each level.

  Inner levels may be plain dicts or other mappings. A JAX pytree.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.util import NestedDict
    >>> nd = NestedDict({'enc': {'w': brainstate.ParamState(1.0)}, 'step': 0})
    >>> sorted(nd.to_flat())
    [('enc', 'w'), ('step',)]
    >>> params = nd.filter(brainstate.ParamState)
    >>> params['enc']['w'] is nd['enc']['w']
    True
  """

  __module__ = 'brainstate_nnx.util'

  def __or__(self, other: 'NestedDict') -> 'NestedDict':
    if not other:
      return self
    if not isinstance(other, NestedDict):
      raise TypeError(f'expected a NestedDict, got {type(other).__qualname__}')
    return NestedDict.merge(self, other)

  def __sub__(self, other: 'NestedDict') -> 'NestedDict':
    if not other:
      return self
    if not isinstance(other, NestedDict):
      raise TypeError(f'expected a NestedDict, got {type(other).__qualname__}')
    other_flat = other.to_flat()
    return NestedDict.from_flat(
      {k: v for k, v in self.to_flat().items() if k not in other_flat}
    )

  def to_flat(self) -> 'FlattedDict':
    """The :class:`FlattedDict` mapping each leaf's path tuple to the leaf.

    Example::

      >>> from brainstate_nnx.util import NestedDict
      >>> dict(NestedDict({'a': {'b': 1}}).to_flat())
      {('a', 'b'): 1}
    """
    return flat_mapping(self)

  @classmethod
  def from_flat(
    cls, flat_dict: Union[abc.Mapping, Iterable[Tuple[PathParts, Any]]]
  ) -> 'NestedDict':
    """Builds a NestedDict from a path -> leaf mapping (or pairs).

    Example::

      >>> from brainstate_nnx.util import NestedDict
      >>> NestedDict.from_flat({('a', 'b'): 1}).to_dict()
      {'a': {'b': 1}}
    """
    return cls(nest_mapping(dict(flat_dict)))

  def split(self, *filters: Filter):
    """Partitions the leaves by ``filters`` into NestedDicts.

    Each leaf goes to the first filter that matches it (``pred(path, leaf)``
    with the full path tuple). Every leaf must be matched: put ``...`` last to
    collect the rest, otherwise ``ValueError``. Returns one NestedDict for one
    filter, else a tuple.

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.util import NestedDict
      >>> nd = NestedDict({'w': brainstate.ParamState(1.0), 'n': 3})
      >>> params, rest = nd.split(brainstate.ParamState, ...)
      >>> list(params), list(rest)
      (['w'], ['n'])
    """
    *groups, rest = _partition(self.to_flat().items(), filters)
    if rest:
      raise _non_exhaustive(rest)
    return _one_or_tuple([NestedDict.from_flat(g) for g in groups])

  def filter(self, *filters: Filter):
    """Like :meth:`split` but unmatched leaves are simply dropped.

    Example::

      >>> from brainstate_nnx.util import NestedDict
      >>> NestedDict({'a': 1, 'b': 'x', 'c': 2.0}).filter(int).to_dict()
      {'a': 1}
    """
    groups = _partition(self.to_flat().items(), filters)
    return _one_or_tuple([NestedDict.from_flat(g) for g in groups[:-1]])

  @staticmethod
  def merge(*dicts: Union['NestedDict', 'FlattedDict']) -> 'NestedDict':
    """Combines Nested/Flatted dicts into one NestedDict (inverse of split).

    A static method: later dicts win on equal paths. Note that
    ``a.merge(b)`` merges only ``b``; write ``NestedDict.merge(a, b)`` or
    ``a | b``.

    Example::

      >>> from brainstate_nnx.util import NestedDict
      >>> NestedDict.merge(NestedDict({'a': {'x': 1}}), NestedDict({'a': {'y': 2}})).to_dict()
      {'a': {'x': 1, 'y': 2}}
    """
    return NestedDict.from_flat(_merge_flat(dicts))

  def to_pure_dict(self) -> dict:
    """The same nesting as plain ``dict``s (leaves are kept as they are).

    Empty sub-dicts are preserved.

    Example::

      >>> from brainstate_nnx.util import NestedDict
      >>> NestedDict({'a': {'b': 1}, 'e': {}}).to_pure_dict()
      {'a': {'b': 1}, 'e': {}}
    """
    return nest_mapping(flat_mapping(self, keep_empty_nodes=True)).to_dict()

  def replace_by_pure_dict(
    self,
    pure_dict: dict,
    replace_fn: Optional[Callable[[Any, Any], Any]] = None,
  ) -> None:
    """Replaces leaves in place from a nested plain dict with the same paths.

    By default a leaf with a ``replace`` method (a State) becomes
    ``leaf.replace(new)`` -- a new State of the same type and metadata --
    and any other leaf is overwritten by ``new``. ``replace_fn(old, new)``
    overrides this. Paths of ``pure_dict`` missing here raise ``ValueError``.

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.util import NestedDict
      >>> nd = NestedDict({'w': brainstate.ParamState(1.0), 'n': 2})
      >>> nd.replace_by_pure_dict({'w': 5.0, 'n': 3})
      >>> nd['w'].value, nd['n']
      (5.0, 3)
    """
    if replace_fn is None:
      replace_fn = _default_replace
    current = self.to_flat()
    for path, new in flat_mapping(pure_dict).items():
      if path not in current:
        raise ValueError(f'Path {path!r} of pure_dict does not exist in this NestedDict.')
      current[path] = replace_fn(current[path], new)
    self.update(nest_mapping(current))


def _default_replace(old: Any, new: Any) -> Any:
  if isinstance(old, nnx.Variable) or (
    hasattr(old, 'replace') and not isinstance(old, (str, bytes))
  ):
    return old.replace(new)
  return new


def _merge_flat(dicts) -> dict:
  merged: Dict[Any, Any] = {}
  for d in dicts:
    if isinstance(d, NestedDict):
      merged.update(d.to_flat())
    elif isinstance(d, FlattedDict):
      merged.update(d)
    else:
      raise TypeError(
        f'merge expects NestedDict or FlattedDict arguments, got {type(d).__qualname__}.'
      )
  return merged


def _leaf_value(leaf: Any) -> Any:
  # (a State is an nnx.Variable whose get_value is its tracked read)
  if isinstance(leaf, nnx.Variable):
    return leaf.get_value()
  return leaf


class FlattedDict(PrettyDict):
  """A flat ``dict`` from path tuples (of str/int) to leaves (States or values).

  What ``module.states()`` returns in BrainState. A JAX pytree.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.util import FlattedDict
    >>> fd = FlattedDict({('a', 'w'): brainstate.ParamState(jnp.ones(2)), ('a', 'n'): 3})
    >>> fd.to_dict_values()[('a', 'n')]
    3
    >>> sorted(fd.to_nest()['a'])
    ['n', 'w']
  """

  __module__ = 'brainstate_nnx.util'

  def __or__(self, other: 'FlattedDict') -> 'FlattedDict':
    if not other:
      return self
    if not isinstance(other, FlattedDict):
      raise TypeError(f'expected a FlattedDict, got {type(other).__qualname__}')
    return FlattedDict.merge(self, other)

  def __sub__(self, other: 'FlattedDict') -> 'FlattedDict':
    if not other:
      return self
    if not isinstance(other, FlattedDict):
      raise TypeError(f'expected a FlattedDict, got {type(other).__qualname__}')
    return FlattedDict({k: v for k, v in self.items() if k not in other})

  def to_nest(self) -> NestedDict:
    """The equivalent :class:`NestedDict`.

    Example::

      >>> from brainstate_nnx.util import FlattedDict
      >>> FlattedDict({('a', 'b'): 1}).to_nest().to_dict()
      {'a': {'b': 1}}
    """
    return nest_mapping(self)

  @classmethod
  def from_nest(cls, nested_dict: Union[abc.Mapping, Iterable[Tuple[Any, Any]]]) -> 'FlattedDict':
    """Flattens a nested mapping (or key/value pairs) into a FlattedDict.

    Example::

      >>> from brainstate_nnx.util import FlattedDict
      >>> dict(FlattedDict.from_nest({'a': {'b': 1}}))
      {('a', 'b'): 1}
    """
    return flat_mapping(dict(nested_dict))

  def split(self, first: Filter, /, *filters: Filter):
    """Partitions the items by filters into FlattedDicts.

    Each ``(path, leaf)`` goes to the first filter that matches it. Every item
    must be matched: put ``...`` last to collect the rest, otherwise
    ``ValueError``. ``...`` is only allowed last. Returns one FlattedDict for
    one filter, else a tuple with one per filter.

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.util import FlattedDict
      >>> fd = FlattedDict({('w',): brainstate.ParamState(1.0), ('n',): 3})
      >>> params, rest = fd.split(brainstate.ParamState, ...)
      >>> list(params), list(rest)
      ([('w',)], [('n',)])
    """
    *groups, rest = _partition(self.items(), (first, *filters))
    if rest:
      raise _non_exhaustive(rest)
    return _one_or_tuple([FlattedDict(g) for g in groups])

  def filter(self, first: Filter, /, *filters: Filter):
    """Like :meth:`split` but unmatched items are dropped.

    Example::

      >>> from brainstate_nnx.util import FlattedDict
      >>> fd = FlattedDict({('a',): 1, ('b',): 'x', ('c',): 2.0})
      >>> ints, floats = fd.filter(int, float)
      >>> dict(ints), dict(floats)
      ({('a',): 1}, {('c',): 2.0})
    """
    groups = _partition(self.items(), (first, *filters))
    return _one_or_tuple([FlattedDict(g) for g in groups[:-1]])

  @staticmethod
  def merge(*dicts: Union['FlattedDict', NestedDict]) -> 'FlattedDict':
    """Combines Flatted/Nested dicts into one FlattedDict (inverse of split).

    A static method: later dicts win on equal paths. ``a.merge(b)`` merges
    only ``b``; write ``FlattedDict.merge(a, b)`` or ``a | b``.

    Example::

      >>> from brainstate_nnx.util import FlattedDict
      >>> dict(FlattedDict.merge(FlattedDict({('a',): 1}), FlattedDict({('b',): 2})))
      {('a',): 1, ('b',): 2}
    """
    return FlattedDict(_merge_flat(dicts))

  def to_dict_values(self) -> dict:
    """A plain dict ``path -> value``: ``state.value`` for States, else the leaf.

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.util import FlattedDict
      >>> FlattedDict({('w',): brainstate.State(2.0), ('n',): 1}).to_dict_values()
      {('w',): 2.0, ('n',): 1}
    """
    return {k: _leaf_value(v) for k, v in self.items()}

  def assign_dict_values(self, data: abc.Mapping) -> None:
    """Writes ``data[path]`` into each item: ``state.value = ...`` for States.

    Non-State leaves are replaced in this dict. Every path of this dict must
    be in ``data`` (``KeyError`` otherwise); extra paths in ``data`` are
    ignored.

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.util import FlattedDict
      >>> s = brainstate.State(0.0)
      >>> fd = FlattedDict({('s',): s, ('n',): 1})
      >>> fd.assign_dict_values({('s',): 4.0, ('n',): 2})
      >>> s.value, fd[('n',)]
      (4.0, 2)
    """
    for k in list(self.keys()):
      if k not in data:
        raise KeyError(f'assign_dict_values: no value given for path {k!r}.')
      leaf = self[k]
      if isinstance(leaf, nnx.Variable):  # States included (tracked write)
        leaf.set_value(data[k])
      else:
        self[k] = data[k]


# ---------------------------------------------------------------------------
# pytree registration
# ---------------------------------------------------------------------------

def _sorted_items(d: dict) -> list:
  items = list(d.items())
  try:
    return sorted(items, key=lambda kv: kv[0])
  except TypeError:
    # Keys of mixed, mutually unorderable types: order by a type-tagged key.
    return sorted(items, key=lambda kv: _safe_sort_key(kv[0]))


def _safe_sort_key(k: Any):
  if isinstance(k, tuple):
    return (1, tuple(_safe_sort_key(p) for p in k))
  if isinstance(k, (int, float)) and not isinstance(k, bool):
    return (0, 'number', k, '')
  if isinstance(k, str):
    return (0, 'str', 0, k)
  return (0, type(k).__name__, 0, repr(k))


def _flatten_with_keys(d: dict):
  items = _sorted_items(d)
  children = tuple((jax.tree_util.DictKey(k), v) for k, v in items)
  return children, tuple(k for k, _ in items)


def _flatten(d: dict):
  items = _sorted_items(d)
  return tuple(v for _, v in items), tuple(k for k, _ in items)


def _register(cls):
  jax.tree_util.register_pytree_with_keys(
    cls,
    _flatten_with_keys,
    lambda keys, leaves: cls(zip(keys, leaves)),
    _flatten,
  )


_register(NestedDict)
_register(FlattedDict)


# ---------------------------------------------------------------------------
# PrettyList / PrettyObject
# ---------------------------------------------------------------------------

class PrettyList(list):
  """A ``list`` with a readable multi-line repr; a JAX pytree.

  Example::

    >>> import jax
    >>> from brainstate_nnx.util import PrettyList
    >>> jax.tree.map(lambda x: x * 2, PrettyList([1, {'a': 2}]))
    [
      2,
      {'a': 4}
    ]
  """

  __module__ = 'brainstate_nnx.util'

  def __repr__(self) -> str:
    return _fmt(self, '', top=True)


jax.tree_util.register_pytree_node(
  PrettyList, lambda x: (list(x), None), lambda _, children: PrettyList(children)
)


class PrettyObject:
  """Mixin giving a class a readable ``Name(attr=value, ...)`` repr.

  Override ``__pretty_repr_item__(key, value)`` to rename an attribute
  (return a new ``(key, value)``) or hide it (return ``None``).

  Example::

    >>> from brainstate_nnx.util import PrettyObject
    >>> class Config(PrettyObject):
    ...   def __init__(self):
    ...     self.lr = 0.1
    ...     self._cache = {}
    ...   def __pretty_repr_item__(self, k, v):
    ...     return None if k.startswith('_') else (k, v)
    >>> Config()
    Config(
      lr=0.1
    )
  """

  def __pretty_repr_item__(self, k: Any, v: Any) -> Optional[Tuple[Any, Any]]:
    """The ``(key, value)`` to show for attribute ``k``, or None to hide it."""
    return k, v

  def __repr__(self) -> str:
    return _fmt(self, '', top=True)
