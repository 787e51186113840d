"""BrainState's graph operations on Flax NNX graphs.

A *graph node* is an ``nnx.Module`` (any ``nnx.Pytree``); Lists, dicts and
tuples are containers inside the graph; States (``nnx.Variable`` s) and
plain attribute values are leaves. Splitting and merging go through
``nnx.split`` / ``nnx.merge`` (so the ``GraphDef`` is Flax's); the state
mappings are :class:`~brainstate_nnx.util.NestedDict` s whose leaves are
*detached copies* of the States (same class, metadata and value), as
BrainState's ``TreefyState`` s are snapshots: changing them does not touch
the model until it is merged or updated.

Reading a model here (``treefy_split``, ``treefy_states``, ``clone``) reads
its States through their pytree flatten, so inside a brainstate_nnx
transform the transform threads them as usual.
"""

from __future__ import annotations

from collections import abc
from typing import Any, Iterator, Tuple

import jax
from flax import nnx

from .._state import State
from .._walk import graph_items as _graph_items, split_items as _split_items
from ..util import FlattedDict, NestedDict
from ..util.filter import Filter, to_predicate

__all__ = [
  'treefy_split', 'treefy_merge', 'treefy_states', 'update_states', 'pop_states',
  'states', 'nodes', 'graphdef', 'clone', 'iter_leaf', 'iter_node',
]

_MAX_INT = 2 ** 63 - 1


# --------------------------------------------------------------------------
# conversions between nnx.State and NestedDict
# --------------------------------------------------------------------------

def _is_variable(x) -> bool:
  return isinstance(x, nnx.Variable)


def _detach(tree):
  """Copies of the Variables in ``tree`` (reads recorded through their flatten)."""
  return jax.tree.map(lambda x: x, tree)


def _to_nested(mapping) -> dict:
  out = {}
  for k, v in mapping.items():
    if isinstance(v, abc.Mapping) and not _is_variable(v):
      out[k] = _to_nested(v)
    else:
      out[k] = v
  return out


def _state_to_nested(state) -> NestedDict:
  return NestedDict(_to_nested(state))


def _nested_to_state(mapping) -> nnx.State:
  if isinstance(mapping, FlattedDict):
    mapping = mapping.to_nest()
  if not isinstance(mapping, abc.Mapping):
    raise TypeError(f'expected a NestedDict or FlattedDict, got {type(mapping).__name__}')
  return nnx.State(_to_nested(mapping))


# --------------------------------------------------------------------------
# split / merge
# --------------------------------------------------------------------------

def treefy_split(node: Any, *filters: Filter) -> Tuple[Any, ...]:
  """Splits ``node`` into its static structure and its State values.

  Returns ``(graphdef, state)``, or ``(graphdef, state_1, ..., state_n)``
  with filters (each State goes to the first filter it matches; every State
  must match one -- put ``...`` last to collect the rest). ``graphdef`` is an
  ``nnx.GraphDef``; each ``state`` is a :class:`~brainstate_nnx.util.NestedDict`
  holding detached copies of the States, keyed by attribute path. Shared
  States appear once.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.graph import treefy_split, treefy_merge
    >>> class Net(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.w = brainstate.ParamState(jnp.ones(2))
    ...     self.h = brainstate.HiddenState(jnp.zeros(2))
    >>> net = Net()
    >>> graphdef, params, others = treefy_split(net, brainstate.ParamState, ...)
    >>> list(params), list(others)
    (['w'], ['h'])
    >>> params['w'] is net.w                  # a detached copy
    False
    >>> copy = treefy_merge(graphdef, params, others)
    >>> isinstance(copy, Net), copy.w.value
    (True, Array([1., 1.], dtype=float32))
  """
  graphdef_, state = nnx.split(node)
  nested = _state_to_nested(_detach(state))
  if not filters:
    return graphdef_, nested
  parts = nested.split(*filters)
  if isinstance(parts, NestedDict):
    parts = (parts,)
  return (graphdef_, *parts)


def treefy_merge(graphdef: Any, *state_mappings: Any) -> Any:
  """Builds a new node from a ``graphdef`` and state mappings (merged first).

  The node gets fresh States (merging the same mappings twice gives two
  independent nodes). Leaves may be States or plain arrays.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.graph import treefy_split, treefy_merge
    >>> class Net(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.w = brainstate.ParamState(jnp.ones(2))
    >>> graphdef, state = treefy_split(Net())
    >>> a, b = treefy_merge(graphdef, state), treefy_merge(graphdef, state)
    >>> a.w is b.w
    False
  """
  merged = NestedDict.merge(*state_mappings) if state_mappings else NestedDict()
  return nnx.merge(graphdef, _nested_to_state(merged), copy=True)


def treefy_states(node: Any, *filters: Filter):
  """Detached copies of the States of ``node`` as a NestedDict (one per filter).

  With filters, States matching none of them are left out.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.graph import treefy_states
    >>> class Net(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.w = brainstate.ParamState(jnp.ones(2))
    ...     self.h = brainstate.HiddenState(jnp.zeros(2))
    >>> sorted(treefy_states(Net()))
    ['h', 'w']
    >>> list(treefy_states(Net(), brainstate.HiddenState))
    ['h']
  """
  _, state = treefy_split(node)
  if not filters:
    return state
  return state.filter(*filters)


def states(node: Any, *filters: Filter, allowed_hierarchy: Tuple[int, int] = (0, _MAX_INT)):
  """The States of ``node`` themselves (not copies), keyed by path, in a FlattedDict.

  With several filters, one FlattedDict per filter (each State goes to the
  first it matches; the others are dropped). A State reachable through
  several paths appears once. ``allowed_hierarchy`` bounds the depth of the
  Module owning the State.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.graph import states
    >>> class Net(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.w = brainstate.ParamState(jnp.ones(2))
    ...     self.h = brainstate.HiddenState(jnp.zeros(2))
    >>> net = Net()
    >>> states(net)[('w',)] is net.w
    True
    >>> params, hidden = states(net, brainstate.ParamState, brainstate.HiddenState)
    >>> list(params), list(hidden)
    ([('w',)], [('h',)])
  """
  items = ((p, v) for p, v in iter_leaf(node, allowed_hierarchy) if isinstance(v, State))
  return _split_items(list(items), filters)


def nodes(node: Any, *filters: Filter, allowed_hierarchy: Tuple[int, int] = (0, _MAX_INT)):
  """The Modules of ``node`` (itself at ``()``), keyed by path, children first.

  Filters and ``allowed_hierarchy`` work as in :func:`states`.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.graph import nodes
    >>> class Leaf(brainstate.nn.Module):
    ...   pass
    >>> class Net(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.leaf = Leaf()
    >>> list(nodes(Net()))
    [('leaf',), ()]
  """
  return _split_items(list(iter_node(node, allowed_hierarchy)), filters)


def graphdef(node: Any):
  """The static structure of ``node`` (an ``nnx.GraphDef``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.graph import graphdef, treefy_split
    >>> class Net(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.w = brainstate.ParamState(jnp.ones(2))
    >>> net = Net()
    >>> graphdef(net) == treefy_split(net)[0]
    True
  """
  return nnx.graphdef(node)


def clone(node: Any) -> Any:
  """A deep copy of ``node`` with new States; sharing inside it is preserved.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.graph import clone
    >>> class Net(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.w = brainstate.ParamState(jnp.ones(2))
    ...     self.tied = self.w
    >>> net = Net()
    >>> copy = clone(net)
    >>> copy.w is net.w, copy.w is copy.tied
    (False, True)
  """
  graphdef_, state = nnx.split(node)
  return nnx.merge(graphdef_, _detach(state))


def update_states(node: Any, state_dict: Any, /, *state_dicts: Any) -> None:
  """Writes the values of state mappings into the States of ``node``, in place.

  ``state_dict`` (and the others, merged into it) is a NestedDict or
  FlattedDict whose leaves are States (their values are copied) or plain
  values. The writes are recorded, so inside a brainstate_nnx transform they
  are carried out of it.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.graph import treefy_states, update_states
    >>> from brainstate_nnx.util import FlattedDict
    >>> class Net(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.w = brainstate.ParamState(jnp.ones(2))
    >>> net = Net()
    >>> update_states(net, FlattedDict({('w',): jnp.zeros(2)}))
    >>> net.w.value
    Array([0., 0.], dtype=float32)
  """
  if state_dicts:
    state_dict = NestedDict.merge(state_dict, *state_dicts)
  nnx.update(node, _nested_to_state(state_dict))


def pop_states(node: Any, *filters: Filter):
  """Removes the States matching ``filters`` from ``node`` and returns them.

  One NestedDict per filter (a single one for one filter), keyed by the
  first path of each State. Other references to a popped State in the graph
  are removed as well. At least one filter is required.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.graph import pop_states
    >>> class Net(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.w = brainstate.ParamState(jnp.ones(2))
    ...     self.h = brainstate.HiddenState(jnp.zeros(2))
    >>> net = Net()
    >>> hidden = pop_states(net, brainstate.HiddenState)
    >>> list(hidden), hasattr(net, 'h')
    (['h'], False)
  """
  if not filters:
    raise ValueError('Expected at least one filter')
  preds = tuple(to_predicate(f) for f in filters)
  popped = nnx.pop(node, *preds)
  if not isinstance(popped, tuple):
    popped = (popped,)
  gone = {id(v) for p in popped for v in jax.tree.leaves(p, is_leaf=_is_variable)}
  for path, v in list(nnx.iter_graph(node)):
    if _is_variable(v) and id(v) in gone:
      _delete(node, path)
  result = tuple(_state_to_nested(p) for p in popped)
  return result[0] if len(result) == 1 else result


def _delete(root, path) -> None:
  parent = root
  for k in path[:-1]:
    parent = parent[k] if isinstance(parent, (abc.Mapping, list, tuple)) else getattr(parent, k)
  key = path[-1]
  if isinstance(parent, dict):
    del parent[key]
  elif isinstance(parent, (list, tuple)):
    raise ValueError(f'Cannot remove item {key!r} of a {type(parent).__name__}')
  else:
    delattr(parent, key)


# --------------------------------------------------------------------------
# iteration
# --------------------------------------------------------------------------

def iter_leaf(node: Any, allowed_hierarchy: Tuple[int, int] = (0, _MAX_INT)
              ) -> Iterator[Tuple[Tuple, Any]]:
  """Iterates ``(path, value)`` over the leaves of the graph: States and plain attributes.

  Containers (Modules, lists, dicts, tuples) are not yielded; a State reached
  through several paths is yielded once. ``allowed_hierarchy=(lo, hi)``
  keeps the leaves owned by Modules at depth ``lo`` to ``hi`` (the root is at
  depth 0, its child Modules at 1, ...).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.graph import iter_leaf
    >>> class Net(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.w = brainstate.ParamState(jnp.ones(2))
    ...     self.size = 2
    >>> [(path, type(v).__name__) for path, v in iter_leaf(Net())]
    [(('size',), 'int'), (('w',), 'ParamState')]
  """
  yield from _graph_items(node, allowed_hierarchy, 'leaf')


def iter_node(node: Any, allowed_hierarchy: Tuple[int, int] = (0, _MAX_INT)
              ) -> Iterator[Tuple[Tuple, Any]]:
  """Iterates ``(path, module)`` over the graph nodes (Modules), children first, the root last.

  Each Module is yielded once; ``allowed_hierarchy`` bounds the depth (the
  root has depth 0).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.graph import iter_node
    >>> class Leaf(brainstate.nn.Module):
    ...   pass
    >>> class Net(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.layers = [Leaf(), Leaf()]
    >>> [path for path, _ in iter_node(Net())]
    [('layers', 0), ('layers', 1), ()]
  """
  yield from _graph_items(node, allowed_hierarchy, 'node')
