"""BrainState's filter language: turning filter specs into ``pred(path, x)``.

A *predicate* is a callable ``pred(path, x) -> bool`` where ``path`` is a tuple
of keys (``str``/``int``, or JAX key-path entries) locating ``x`` inside a
structure, and ``x`` is the object found there (usually a State).

A *filter* is anything :func:`to_predicate` understands:

==========================  =============================================
filter                      matches
==========================  =============================================
a type ``T``                ``isinstance(x, T)`` (:class:`OfType`)
a string ``'t'``            objects tagged ``'t'`` (:class:`WithTag`)
a callable                  used as the predicate itself
``...`` or ``True``         everything (:class:`Everything`)
``None`` or ``False``       nothing (:class:`Nothing`)
a list or tuple             any of its items (:class:`Any`)
an ``nnx.filterlib`` object its brainstate_nnx equivalent
==========================  =============================================

Example::

  >>> import jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> from brainstate_nnx.util import filter as F
  >>> w = brainstate.ParamState(jnp.ones(2), tag='fast')
  >>> h = brainstate.HiddenState(jnp.zeros(2))
  >>> pred = F.to_predicate([brainstate.HiddenState, 'fast'])
  >>> pred(('w',), w), pred(('h',), h), pred(('n',), 3)
  (True, True, False)
  >>> F.All(brainstate.ParamState, F.Not(F.PathContains('skip')))(('a', 'skip'), w)
  False
"""

from __future__ import annotations

import builtins
import dataclasses
import typing

from flax.nnx import filterlib as _nnx_filterlib

__all__ = [
  'to_predicate',
  'WithTag',
  'PathContains',
  'OfType',
  'Any',
  'All',
  'Nothing',
  'Not',
  'Everything',
]

Key = typing.Union[str, int, typing.Hashable]
PathParts = typing.Tuple[Key, ...]
Predicate = typing.Callable[[PathParts, typing.Any], bool]
Filter = typing.Any  # see the module docstring for what is accepted


def _is_catch_all(f: typing.Any) -> bool:
  """True for the filters that match everything: ``...`` and ``True``."""
  return f is Ellipsis or (isinstance(f, bool) and f)


def to_predicate(the_filter: Filter) -> Predicate:
  """Turns a filter spec into a predicate ``pred(path, x) -> bool``.

  Accepted specs: a type (``isinstance``), a str (tag), a callable (returned
  unchanged), ``...``/``True`` (everything), ``None``/``False`` (nothing), a
  list/tuple (matches when any item matches) and Flax ``nnx.filterlib``
  objects (``nnx.OfType``, ``nnx.WithTag``, ``nnx.Any``, ...), which become
  their brainstate_nnx equivalents so that tag sets are understood. Anything
  else raises ``TypeError``.

  Example::

    >>> from brainstate_nnx.util.filter import to_predicate
    >>> to_predicate(int)((), 3), to_predicate(...)((), 'x'), to_predicate(None)((), 'x')
    (True, True, False)
    >>> to_predicate([str, float])(('k',), 2.0)
    True
  """
  if isinstance(the_filter, str):
    return WithTag(the_filter)
  if isinstance(the_filter, type):
    return OfType(the_filter)
  if isinstance(the_filter, bool):
    return Everything() if the_filter else Nothing()
  if the_filter is Ellipsis:
    return Everything()
  if the_filter is None:
    return Nothing()
  translated = _from_nnx(the_filter)
  if translated is not None:
    return translated
  if callable(the_filter):
    return the_filter
  if isinstance(the_filter, (list, tuple)):
    return Any(*the_filter)
  raise TypeError(
    f'Invalid filter: {the_filter!r} (of type {type(the_filter).__name__}). '
    'A filter must be a type, a str tag, a callable predicate(path, x), '
    '`...`, True, False, None, or a list/tuple of filters.'
  )


def _from_nnx(f: typing.Any) -> typing.Optional[Predicate]:
  """The brainstate_nnx equivalent of an ``nnx.filterlib`` object, or None."""
  fl = _nnx_filterlib
  if isinstance(f, fl.WithTag):
    return WithTag(f.tag)
  if isinstance(f, fl.OfType):
    return OfType(f.type)
  if isinstance(f, fl.PathContains) and getattr(f, 'exact', True):
    return PathContains(f.key)
  if isinstance(f, fl.Everything):
    return Everything()
  if isinstance(f, fl.Nothing):
    return Nothing()
  if isinstance(f, fl.Any):
    return Any(*f.predicates)
  if isinstance(f, fl.All):
    return All(*f.predicates)
  if isinstance(f, fl.Not):
    return Not(f.predicate)
  return None


@dataclasses.dataclass(frozen=True)
class WithTag:
  """Matches objects carrying the tag ``tag``.

  The object's ``tag`` attribute may be a single string (compared with ``==``)
  or a collection of strings (list/tuple/set/frozenset, tested with ``in``);
  a brainstate_nnx State stores its tags as a frozenset. Objects without a
  ``tag`` attribute never match.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.util.filter import WithTag
    >>> s = brainstate.State(1.0, tag='slow')
    >>> WithTag('slow')((), s), WithTag('fast')((), s)
    (True, False)
  """

  tag: str

  def __post_init__(self):
    if not isinstance(self.tag, str):
      raise TypeError(
        f'WithTag expects a str tag, got {type(self.tag).__name__}: {self.tag!r}.'
      )

  def __call__(self, path: PathParts, x: typing.Any) -> bool:
    try:
      tag = x.tag
    except AttributeError:
      return False
    if isinstance(tag, str):
      return tag == self.tag
    if isinstance(tag, (list, tuple, set, frozenset)):
      return self.tag in tag
    return False

  def __repr__(self) -> str:
    return f'WithTag({self.tag!r})'


def _plain_key(part: typing.Any) -> typing.Any:
  """Unwraps JAX key-path entries (``DictKey``, ``GetAttrKey``, ...)."""
  for attr in ('key', 'name', 'idx'):
    if hasattr(part, attr):
      return getattr(part, attr)
  return part


@dataclasses.dataclass(frozen=True)
class PathContains:
  """Matches when ``key`` is one of the entries of the path.

  JAX key-path entries (``DictKey('w')``, ``GetAttrKey('w')``,
  ``SequenceKey(0)``) are compared by the key they wrap.

  Example::

    >>> from brainstate_nnx.util.filter import PathContains
    >>> PathContains('layer1')(('layer1', 'weight'), None)
    True
    >>> PathContains(0)(('layers', 1, 'bias'), None)
    False
  """

  key: Key

  def __call__(self, path: PathParts, x: typing.Any) -> bool:
    return any(_plain_key(part) == self.key for part in path)

  def __repr__(self) -> str:
    return f'PathContains({self.key!r})'


@dataclasses.dataclass(frozen=True)
class OfType:
  """Matches instances of ``type``.

  Also matches objects whose ``type`` attribute is a subclass of ``type``
  (references that describe a State class without being one).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> from flax import nnx
    >>> from brainstate_nnx.util.filter import OfType
    >>> p = brainstate.ParamState(1.0)
    >>> OfType(brainstate.LongTermState)((), p), OfType(nnx.Param)((), p)
    (True, True)
    >>> OfType(brainstate.HiddenState)((), p)
    False
  """

  type: builtins.type

  def __call__(self, path: PathParts, x: typing.Any) -> bool:
    if isinstance(x, self.type):
      return True
    x_type = getattr(x, 'type', None)
    return isinstance(x_type, builtins.type) and issubclass(x_type, self.type)

  def __repr__(self) -> str:
    return f'OfType({self.type!r})'


def _hash_or_fallback(value: typing.Any, fallback: typing.Any) -> int:
  try:
    return hash(value)
  except TypeError:
    # An unhashable user predicate: keep the filter hashable (equal filters
    # still share a hash).
    return hash(fallback)


class Any:
  """Matches when at least one of ``filters`` matches (logical OR).

  ``Any()`` with no filters matches nothing.

  Example::

    >>> from brainstate_nnx.util.filter import Any
    >>> pred = Any(int, 'fast')
    >>> pred((), 1), pred((), 'text')
    (True, False)
  """

  def __init__(self, *filters: Filter):
    self.predicates = tuple(to_predicate(f) for f in filters)

  def __call__(self, path: PathParts, x: typing.Any) -> bool:
    return any(p(path, x) for p in self.predicates)

  def __repr__(self) -> str:
    return f'Any({", ".join(map(repr, self.predicates))})'

  def __eq__(self, other) -> bool:
    return isinstance(other, Any) and self.predicates == other.predicates

  def __hash__(self) -> int:
    return _hash_or_fallback(self.predicates, Any)


class All:
  """Matches when every one of ``filters`` matches (logical AND).

  ``All()`` with no filters matches everything.

  Example::

    >>> from brainstate_nnx.util.filter import All, PathContains
    >>> pred = All(float, PathContains('lr'))
    >>> pred(('opt', 'lr'), 0.1), pred(('opt', 'beta'), 0.9)
    (True, False)
  """

  def __init__(self, *filters: Filter):
    self.predicates = tuple(to_predicate(f) for f in filters)

  def __call__(self, path: PathParts, x: typing.Any) -> bool:
    return all(p(path, x) for p in self.predicates)

  def __repr__(self) -> str:
    return f'All({", ".join(map(repr, self.predicates))})'

  def __eq__(self, other) -> bool:
    return isinstance(other, All) and self.predicates == other.predicates

  def __hash__(self) -> int:
    return _hash_or_fallback(self.predicates, All)


class Not:
  """Matches exactly when ``the_filter`` does not (logical NOT).

  Example::

    >>> from brainstate_nnx.util.filter import Not
    >>> Not(int)((), 1.5), Not(int)((), 1)
    (True, False)
  """

  def __init__(self, the_filter: Filter, /):
    self.predicate = to_predicate(the_filter)

  def __call__(self, path: PathParts, x: typing.Any) -> bool:
    return not self.predicate(path, x)

  def __repr__(self) -> str:
    return f'Not({self.predicate!r})'

  def __eq__(self, other) -> bool:
    return isinstance(other, Not) and self.predicate == other.predicate

  def __hash__(self) -> int:
    return _hash_or_fallback(self.predicate, Not)


class Everything:
  """Matches everything; what ``...`` and ``True`` turn into.

  Example::

    >>> from brainstate_nnx.util.filter import Everything
    >>> Everything()(('any', 'path'), object())
    True
  """

  def __call__(self, path: PathParts, x: typing.Any) -> bool:
    return True

  def __repr__(self) -> str:
    return 'Everything()'

  def __eq__(self, other) -> bool:
    return isinstance(other, Everything)

  def __hash__(self) -> int:
    return hash(Everything)


class Nothing:
  """Matches nothing; what ``None`` and ``False`` turn into.

  Example::

    >>> from brainstate_nnx.util.filter import Nothing
    >>> Nothing()(('any', 'path'), object())
    False
  """

  def __call__(self, path: PathParts, x: typing.Any) -> bool:
    return False

  def __repr__(self) -> str:
    return 'Nothing()'

  def __eq__(self, other) -> bool:
    return isinstance(other, Nothing)

  def __hash__(self) -> int:
    return hash(Nothing)


def filters_to_predicates(filters: typing.Sequence[Filter]) -> tuple:
  """Converts a filter list for ``split``/``filter`` into predicates.

  ``...``/``True`` may only appear at the end of the list (several trailing
  catch-alls are allowed); elsewhere it raises ``ValueError``.

  Example::

    >>> from brainstate_nnx.util.filter import filters_to_predicates
    >>> filters_to_predicates([int, ...])
    (OfType(<class 'int'>), Everything())
  """
  filters = tuple(filters)
  for i, f in enumerate(filters):
    if _is_catch_all(f) and not all(_is_catch_all(g) for g in filters[i + 1:]):
      raise ValueError(
        f'`...`/`True` matches everything, so it can only come last in the '
        f'filter list; got it at index {i} of {filters!r}.'
      )
  return tuple(to_predicate(f) for f in filters)
