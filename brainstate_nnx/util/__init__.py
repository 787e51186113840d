"""Utilities: the filter language, State dictionaries and small helpers.

* :mod:`~brainstate_nnx.util.filter` -- ``to_predicate``, ``OfType``,
  ``WithTag``, ``PathContains``, ``Any``, ``All``, ``Not``, ``Everything``,
  ``Nothing`` (also importable from here).
* :class:`FlattedDict` / :class:`NestedDict` -- path-keyed and nested dicts
  of States with ``split`` / ``filter`` / ``merge``; JAX pytrees.
* helpers -- ``split_total``, ``get_unique_name``, ``DictManager``,
  ``DotDict``, ``merge_dicts``, ``flatten_dict``, ``BoundedCache``, ...
* :mod:`~brainstate_nnx.util.struct` -- Flax's pytree dataclasses and
  ``FrozenDict``, re-exported.

Example::

  >>> import jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> from brainstate_nnx import util
  >>> states = util.FlattedDict({
  ...   ('w',): brainstate.ParamState(jnp.ones(2), tag='fast'),
  ...   ('h',): brainstate.HiddenState(jnp.zeros(2)),
  ... })
  >>> list(states.filter('fast')), list(states.filter(util.filter.Not('fast')))
  ([('w',)], [('h',)])
"""

from . import filter
from . import struct
from ._cache import BoundedCache
from ._dicts import (
  PrettyDict,
  NestedDict,
  FlattedDict,
  PrettyList,
  PrettyObject,
  flat_mapping,
  nest_mapping,
  empty_node,
)
from ._others import (
  split_total,
  clear_buffer_memory,
  not_instance_eval,
  is_instance_eval,
  DictManager,
  DotDict,
  get_unique_name,
  merge_dicts,
  flatten_dict,
  unflatten_dict,
)
from .filter import (
  to_predicate,
  WithTag,
  PathContains,
  OfType,
  Any,
  All,
  Nothing,
  Not,
  Everything,
)
from .struct import (
  field,
  is_dataclass,
  dataclass,
  PyTreeNode,
  FrozenDict,
  freeze,
  unfreeze,
  copy,
  pop,
  pretty_repr,
)

__all__ = [
  'filter',
  'struct',
  # filters
  'to_predicate', 'WithTag', 'PathContains', 'OfType', 'Any', 'All',
  'Nothing', 'Not', 'Everything',
  # State dictionaries
  'PrettyDict', 'NestedDict', 'FlattedDict', 'PrettyList', 'PrettyObject',
  'flat_mapping', 'nest_mapping', 'empty_node',
  # helpers
  'BoundedCache', 'split_total', 'clear_buffer_memory', 'not_instance_eval',
  'is_instance_eval', 'DictManager', 'DotDict', 'get_unique_name',
  'merge_dicts', 'flatten_dict', 'unflatten_dict',
  # struct
  'field', 'is_dataclass', 'dataclass', 'PyTreeNode', 'FrozenDict', 'freeze',
  'unfreeze', 'copy', 'pop', 'pretty_repr',
]
