"""Type aliases of BrainState's ``brainstate.typing``.

``ArrayLike`` includes ``brainunit`` Quantities when brainunit is loaded
(without importing it: see :class:`brainstate_nnx._units.QuantityLike`).

Example::

  >>> import brainstate_nnx as brainstate
  >>> from brainstate_nnx.typing import ArrayLike, Size, PyTree
  >>> def double(x: ArrayLike) -> ArrayLike:
  ...   return x * 2
  >>> double(3)
  6
  >>> PyTree[int].leaftype
  <class 'int'>
  >>> isinstance(3.0, ArrayLike)
  True
"""

from __future__ import annotations

import functools
import inspect
from types import EllipsisType
from typing import (Any, Callable, Generic, Hashable, List, Protocol, Sequence, Tuple,
                    TypeVar, Union, runtime_checkable)

import jax
import numpy as np

from ._units import QuantityLike as _QuantityLike

__all__ = [
  'PathParts', 'Predicate', 'Filter', 'FilterLiteral', 'Array', 'ArrayLike', 'Shape',
  'Size', 'Axes', 'DType', 'DTypeLike', 'SupportsDType', 'PyTree', 'SeedOrKey', 'Key',
  'Missing', 'K', '_T', '_Annotation',
]

K = TypeVar('K', bound='Key')
_T = TypeVar('_T')
_Annotation = TypeVar('_Annotation')


@runtime_checkable
class Key(Hashable, Protocol):
  """A hashable, orderable path key (``str``, ``int``, ...)."""

  def __lt__(self: K, value: K, /) -> bool:
    ...


Ellipsis = Any
PathParts = Tuple[Key, ...]
Predicate = Callable[[PathParts, Any], bool]
FilterLiteral = Union[type, str, Predicate, bool, EllipsisType, None]
Filter = Union[FilterLiteral, Tuple['Filter', ...], List['Filter']]


class _Array(Generic[_Annotation]):
  pass


_Array.__module__ = 'builtins'


def _item_to_str(item) -> str:
  if isinstance(item, slice):
    if item.step is not None:
      raise NotImplementedError('Slice steps are not supported in array annotations')
    return _item_to_str(item.start) + ': ' + _item_to_str(item.stop)
  if item is ...:
    return '...'
  if inspect.isclass(item):
    return item.__name__
  return repr(item)


def _maybe_tuple_to_str(item) -> str:
  if isinstance(item, tuple):
    return '()' if len(item) == 0 else ', '.join(_item_to_str(i) for i in item)
  return _item_to_str(item)


class Array:
  """Annotation of arrays with a shape description: ``Array['batch, 10']``.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> print(brainstate.typing.Array['batch, n'])
    _Array['batch, n']
  """

  def __class_getitem__(cls, item):
    class X:
      pass

    X.__module__ = 'builtins'
    X.__qualname__ = _maybe_tuple_to_str(item)
    return _Array[X]


Array.__module__ = 'builtins'


class _FakePyTree(Generic[_T]):
  pass


_FakePyTree.__name__ = 'PyTree'
_FakePyTree.__qualname__ = 'PyTree'
_FakePyTree.__module__ = 'builtins'


class _MetaPyTree(type):
  def __call__(cls, *args, **kwargs):
    raise RuntimeError('PyTree cannot be instantiated')

  def __getitem__(cls, item):
    where = '`brainstate.typing.PyTree[leaftype, struct]`'
    if isinstance(item, tuple):
      if len(item) != 2:
        raise ValueError(
          'The subscript `foo` in `brainstate.typing.PyTree[foo]` must either be a leaf type, '
          "e.g. `PyTree[int]`, or a 2-tuple of leaf and structure, e.g. `PyTree[int, 'T']`. "
          f'Received a tuple of length {len(item)}.'
        )
      leaftype, structure = item
      if not isinstance(structure, str):
        raise ValueError(
          f'The structure annotation `struct` in {where} must be be a string, '
          f"e.g. `brainstate.typing.PyTree[leaftype, 'T']`. Got '{structure}'."
        )
      pieces = structure.split()
      if not pieces:
        raise ValueError(f'The string `struct` in {where} cannot be the empty string.')
      if not [p for p in pieces if p != '...']:
        raise ValueError(
          f'The string `struct` in {where} must contain at least one structure name; '
          f"an ellipsis-only structure such as '{structure}' is not allowed."
        )
      if pieces.count('...') > 1 or any(
        p == '...' and i not in (0, len(pieces) - 1) for i, p in enumerate(pieces)
      ):
        raise ValueError(
          f"An ellipsis '...' in {where} may appear only as a single leading or single "
          "trailing marker (e.g. '... T' or 'T ...'), not in the interior nor at both ends.\n"
          f"Got structure '{structure}'."
        )
      for piece in pieces:
        if piece != '...' and not piece.isidentifier():
          raise ValueError(
            f'The string `struct` in {where} must be be a whitespace-separated sequence of '
            "identifiers, e.g. `brainstate.typing.PyTree[leaftype, 'T']` or "
            "`brainstate.typing.PyTree[leaftype, 'foo bar']`.\n(Here, 'identifier' is used in "
            'the same sense as in regular Python, i.e. a valid variable name.)\n'
            f"Got piece '{piece}' in overall structure '{structure}'."
          )
      key = (leaftype, ' '.join(pieces))
    else:
      leaftype = key = item
    if not isinstance(leaftype, Hashable):
      raise TypeError(
        'The leaf type in `brainstate.typing.PyTree[leaftype]` must be hashable; '
        f'got an unhashable {type(leaftype).__name__}.'
      )
    return cls._build(key)

  @functools.lru_cache(maxsize=None)
  def _build(cls, key):
    if isinstance(key, tuple):
      leaftype, structure = key
      name = str(_FakePyTree[leaftype])[:-1] + ', "' + structure + '"]'
    else:
      leaftype, structure = key, None
      name = str(_FakePyTree[key])

    class X(PyTree):
      pass

    X.leaftype = leaftype
    X.structure = structure
    X.__name__ = name
    X.__qualname__ = name
    X.__module__ = 'brainstate_nnx.typing'
    return X


PyTree = _MetaPyTree('PyTree', (), {})
PyTree.__module__ = 'brainstate_nnx.typing'
PyTree.__doc__ = """A PyTree annotation: ``PyTree``, ``PyTree[Leaf]`` or ``PyTree[Leaf, "T"]``.

The optional structure string names the tree structure (``"T"``, ``"S T"``,
``"... T"``, ``"T ..."``). It cannot be instantiated.
"""

Size = Union[int, Sequence[int], np.integer, Sequence[np.integer]]
Shape = Sequence[int]
Axes = Union[int, Sequence[int]]
ArrayLike = Union[jax.Array, np.ndarray, np.bool_, np.number, bool, int, float, complex,
                  _QuantityLike]
DType = np.dtype


class SupportsDType(Protocol):
  """Anything with a ``dtype`` attribute."""

  @property
  def dtype(self) -> DType:
    ...


DTypeLike = Union[str, type[Any], np.dtype, SupportsDType]
SeedOrKey = Union[int, jax.Array, np.ndarray]


class Missing:
  """Sentinel type for "no value given"."""
