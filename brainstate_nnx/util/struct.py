"""Frozen pytree dataclasses and frozen dicts, taken from Flax.

BrainState ships its own copies of these; brainstate_nnx simply re-exports
Flax's (``flax.struct`` and ``flax.core.frozen_dict``), which have the same
API.

Example::

  >>> import jax
  >>> from brainstate_nnx.util import struct
  >>> @struct.dataclass
  ... class Point:
  ...   x: float
  ...   tag: str = struct.field(pytree_node=False, default='p')
  >>> jax.tree.leaves(Point(1.0)), struct.is_dataclass(Point)
  ([1.0], True)
  >>> struct.freeze({'a': 1})['a']
  1
"""

import dataclasses
from typing import Any

from flax.core.frozen_dict import FrozenDict, copy, freeze, pop, pretty_repr, unfreeze
from flax.struct import PyTreeNode, dataclass, field

__all__ = [
  'field',
  'is_dataclass',
  'dataclass',
  'PyTreeNode',
  'FrozenDict',
  'freeze',
  'unfreeze',
  'copy',
  'pop',
  'pretty_repr',
]


def is_dataclass(cls: Any) -> bool:
  """Whether ``cls`` (a class or instance) was made by :func:`dataclass`.

  Example::

    >>> import dataclasses
    >>> from brainstate_nnx.util.struct import dataclass, is_dataclass
    >>> @dataclass
    ... class A:
    ...   x: int
    >>> @dataclasses.dataclass
    ... class B:
    ...   x: int
    >>> is_dataclass(A), is_dataclass(B)
    (True, False)
  """
  return dataclasses.is_dataclass(cls) and getattr(cls, '_flax_dataclass', False) is True
