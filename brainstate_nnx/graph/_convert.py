"""``graph_to_tree`` / ``tree_to_graph``, ``split_context`` / ``merge_context``.

A pytree that holds Modules (graph nodes) is turned into a plain pytree --
each Module replaced by a :class:`NodeStates` (its ``GraphDef`` and state
mappings) -- and back, keeping the sharing between the Modules. The split
and merge contexts are the shared bookkeeping behind it.

Example::

  >>> import jax, jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> from brainstate_nnx import graph
  >>> class Net(brainstate.nn.Module):
  ...   def __init__(self):
  ...     super().__init__()
  ...     self.w = brainstate.ParamState(jnp.ones(2))
  >>> a = Net(); b = Net(); b.w = a.w                   # shared State
  >>> tree, found = graph.graph_to_tree((a, b, 3.0))
  >>> type(tree[0]).__name__, tree[2], len(found)
  ('NodeStates', 3.0, 1)
  >>> a2, b2, _ = graph.tree_to_graph(jax.tree.map(lambda x: x * 2, tree))
  >>> a2.w is b2.w, a2.w.value
  (True, Array([2., 2.], dtype=float32))
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, Iterator, Tuple

import jax
from flax import nnx

from .._state import State
from ..util import FlattedDict, NestedDict
from ._flatten import GraphDef, RefMap, flatten, unflatten

__all__ = ['graph_to_tree', 'tree_to_graph', 'NodeStates', 'split_context', 'merge_context']

NodeStates = nnx.extract.NodeStates


def _is_graph_node(x) -> bool:
  return nnx.graphlib.is_graph_node(x)


def _split_mapping(mapping: NestedDict, filters) -> Tuple[NestedDict, ...]:
  if not filters:
    return (mapping,)
  parts = mapping.split(*filters)
  return (parts,) if isinstance(parts, NestedDict) else tuple(parts)


@dataclasses.dataclass
class SplitContext:
  """Splits several nodes with one shared :class:`RefMap`, so objects they
  share are stored once."""

  ref_index: RefMap

  def treefy_split(self, node: Any, *filters) -> Tuple[Any, ...]:
    """``(graphdef, states...)`` of ``node`` (states: ``TreefyState`` s,
    one mapping per filter)."""
    graphdef, states = flatten(node, self.ref_index)
    return (graphdef, *_split_mapping(states, filters))


@contextlib.contextmanager
def split_context() -> Iterator[Tuple[SplitContext, RefMap]]:
  """``with split_context() as (ctx, ref_index):`` -- see :class:`SplitContext`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx import graph
    >>> class Net(brainstate.nn.Module):
    ...   def __init__(self, w=None):
    ...     super().__init__()
    ...     self.w = w if w is not None else brainstate.ParamState(jnp.ones(2))
    >>> a = Net(); b = Net(a.w)
    >>> with graph.split_context() as (ctx, refs):
    ...   _, sa = ctx.treefy_split(a)
    ...   _, sb = ctx.treefy_split(b)
    >>> 'w' in sa, 'w' in sb                # the shared State is stored once
    (True, False)
  """
  ref_index = RefMap()
  ctx = SplitContext(ref_index)
  try:
    yield ctx, ref_index
  finally:
    del ctx.ref_index


@dataclasses.dataclass
class MergeContext:
  """Merges several (graphdef, states) with one shared index, restoring the
  sharing recorded by a :class:`SplitContext`."""

  index_ref: dict

  def treefy_merge(self, graphdef: GraphDef, state_mapping: Any, *state_mappings: Any) -> Any:
    """Rebuilds one node."""
    merged = NestedDict.merge(state_mapping, *state_mappings)
    return _unflatten_shared(graphdef, merged, self.index_ref)


def _unflatten_shared(graphdef, mapping, index_ref: dict):
  from ._flatten import _to_variable

  flat = mapping.to_flat() if hasattr(mapping, 'to_flat') else NestedDict(mapping).to_flat()
  state = nnx.from_flat_state([(tuple(p), _to_variable(v, p)) for p, v in flat.items()])
  index_map = index_ref.setdefault('__nnx_index_map__', nnx.graphlib.IndexMap())
  return nnx.graphlib.unflatten(graphdef, state, index_ref=index_map)


@contextlib.contextmanager
def merge_context() -> Iterator[Tuple[MergeContext, dict]]:
  """``with merge_context() as (ctx, index_ref):`` -- see :class:`MergeContext`."""
  index_ref: dict = {}
  ctx = MergeContext(index_ref)
  try:
    yield ctx, index_ref
  finally:
    del ctx.index_ref


def _default_split(ctx: SplitContext, path, prefix, leaf):
  return NodeStates.from_split(*ctx.treefy_split(leaf))


def _broadcast_prefix(prefix, tree, is_leaf):
  if prefix is _NO_PREFIX:
    return [None] * len(jax.tree_util.tree_leaves(tree, is_leaf=is_leaf))
  out = []
  count = lambda t: len(jax.tree_util.tree_leaves(t, is_leaf=is_leaf))
  jax.tree.map(lambda p, sub: out.extend([p] * count(sub)), prefix, tree,
               is_leaf=lambda x: x is None)
  return out


_NO_PREFIX = object()


def graph_to_tree(tree: Any, /, *, prefix: Any = _NO_PREFIX,
                  split_fn: Callable = _default_split,
                  map_non_graph_nodes: bool = False,
                  check_aliasing: bool = True) -> Tuple[Any, FlattedDict]:
  """Replaces every graph node in the pytree ``tree`` with ``split_fn``'s
  result (by default a :class:`NodeStates`), all split in one
  :func:`split_context`.

  Returns ``(pytree, found_states)``: ``found_states`` maps ``(index,)`` to
  every State met, by graph index. ``split_fn(ctx, keypath, prefix, leaf)``
  is also called on the other leaves when ``map_non_graph_nodes``.
  """
  leaves, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_graph_node)
  prefixes = _broadcast_prefix(prefix, tree, _is_graph_node)
  if len(prefixes) != len(leaves):
    raise ValueError(
      f'Mismatched number of leaves ({len(leaves)}) and broadcast prefixes '
      f'({len(prefixes)}); the `prefix` is not a valid prefix tree of the input.'
    )
  if check_aliasing and prefix is not _NO_PREFIX:
    _check_aliasing(leaves, prefixes)
  with split_context() as (ctx, ref_index):
    out = []
    for (keypath, leaf), pre in zip(leaves, prefixes):
      if _is_graph_node(leaf) or map_non_graph_nodes:
        leaf = split_fn(ctx, keypath, pre, leaf)
      out.append(leaf)
    found = FlattedDict({(idx,): obj for obj, idx in ref_index.items() if isinstance(obj, State)})
  return jax.tree_util.tree_unflatten(treedef, out), found


def _check_aliasing(leaves, prefixes) -> None:
  seen: dict = {}
  for (keypath, leaf), pre in zip(leaves, prefixes):
    if not _is_graph_node(leaf):
      continue
    for _, obj in nnx.graphlib.iter_graph(leaf):
      if isinstance(obj, (nnx.Variable, nnx.Module)):
        seen.setdefault(id(obj), (obj, []))[1].append((keypath, pre))
  msgs = []
  for obj, uses in seen.values():
    if len({repr(p) for _, p in uses}) > 1:
      lines = '\n'.join(f'  {jax.tree_util.keystr(k) or "<root>"}: {p}' for k, p in uses)
      msgs.append(f'Node: {type(obj)}\n{lines}')
  if msgs:
    raise ValueError('Inconsistent aliasing detected. The following nodes have '
                     'different prefixes:\n' + '\n'.join(msgs))


def _is_node_states(x) -> bool:
  return isinstance(x, NodeStates)


def _default_merge(ctx: MergeContext, path, prefix, leaf):
  if not isinstance(leaf, NodeStates):
    raise ValueError(f'Expected TreeNode, got {type(leaf)} at path {path}')
  return ctx.treefy_merge(leaf.graphdef, *leaf.states)


def tree_to_graph(tree: Any, /, *, prefix: Any = _NO_PREFIX,
                  merge_fn: Callable = _default_merge,
                  is_node_leaf: Callable[[Any], bool] = _is_node_states,
                  is_leaf: Callable[[Any], bool] = _is_node_states,
                  map_non_graph_nodes: bool = False) -> Any:
  """The inverse of :func:`graph_to_tree`: every :class:`NodeStates` leaf is
  merged back into a node (sharing restored, in one :func:`merge_context`)."""
  leaves, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)
  prefixes = _broadcast_prefix(prefix, tree, is_leaf)
  if len(prefixes) != len(leaves):
    raise ValueError(
      f'Mismatched number of leaves ({len(leaves)}) and broadcast prefixes '
      f'({len(prefixes)}); the `prefix` is not a valid prefix tree of `tree`.'
    )
  with merge_context() as (ctx, _):
    out = []
    for (keypath, leaf), pre in zip(leaves, prefixes):
      if is_node_leaf(leaf) or map_non_graph_nodes:
        leaf = merge_fn(ctx, keypath, pre, leaf)
      out.append(leaf)
  return jax.tree_util.tree_unflatten(treedef, out)
