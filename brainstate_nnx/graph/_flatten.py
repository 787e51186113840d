"""``flatten`` / ``unflatten``: a graph as (``GraphDef``, path-keyed States).

These are BrainState's low-level graph encoders, on Flax NNX's own
(:func:`flax.nnx.graphlib.flatten`): the ``GraphDef`` is an
``nnx.GraphDef`` and the sharing bookkeeping an ``nnx`` :class:`RefMap`.

Example::

  >>> import jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> from brainstate_nnx import graph
  >>> class Net(brainstate.nn.Module):
  ...   def __init__(self):
  ...     super().__init__()
  ...     self.w = brainstate.ParamState(jnp.ones(2))
  >>> net = Net()
  >>> graphdef, states = graph.flatten(net)
  >>> type(states['w']).__name__, states['w'].type.__name__
  ('TreefyState', 'ParamState')
  >>> copy = graph.unflatten(graphdef, states)
  >>> copy.w is net.w, copy.w.value
  (False, Array([1., 1.], dtype=float32))
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from flax import nnx

from .._state import State
from .._state_treefy import TreefyState
from ..util import FlattedDict, NestedDict

__all__ = ['flatten', 'unflatten', 'GraphDef', 'RefMap', 'register_graph_node_type']

GraphDef = nnx.graphlib.GraphDef
RefMap = nnx.graphlib.RefMap


def flatten(node: Any, /, ref_index: Optional[RefMap] = None,
            treefy_state: bool = True) -> Tuple[GraphDef, NestedDict]:
  """Encodes the graph ``node`` as ``(graphdef, states)``.

  ``states`` is a :class:`~brainstate_nnx.util.NestedDict` keyed by attribute
  path: :class:`~brainstate_nnx.TreefyState` snapshots (``treefy_state=True``)
  or the live States themselves. A State or node reached twice is stored
  once (the ``graphdef`` records the sharing). ``ref_index`` (a
  :class:`RefMap`) collects the objects seen, and can be shared between
  calls to keep the sharing across several roots.
  """
  if ref_index is None:
    ref_index = RefMap()
  elif not isinstance(ref_index, RefMap):
    raise TypeError(f'ref_index must be a RefMap, got: {type(ref_index)}')
  if not nnx.graphlib.is_node(node):
    raise ValueError(f'Cannot flatten a non-node root of type {type(node).__name__}: {node!r}')
  graphdef, flat = nnx.graphlib.flatten(node, ref_index=ref_index, graph=True)
  out = {}
  for path, var in flat:
    if treefy_state and isinstance(var, nnx.Variable):
      var = TreefyState(type(var), var.get_raw_value(), **var.get_metadata())
    out[tuple(path)] = var
  return graphdef, FlattedDict(out).to_nest()


def _to_variable(value, path):
  if isinstance(value, TreefyState):
    return value.to_state()
  if isinstance(value, nnx.Variable):
    return value
  raise ValueError(f'Expected a State/TreefyState at {path}, got {type(value)}.')


def unflatten(graphdef: GraphDef, state_mapping: Any, /, *,
              index_ref: Optional[dict] = None,
              index_ref_cache: Optional[dict] = None) -> Any:
  """Rebuilds a node from :func:`flatten`'s output.

  Live States in ``state_mapping`` are used as they are (so flattening with
  ``treefy_state=False`` and unflattening gives back the same States);
  :class:`~brainstate_nnx.TreefyState` s become new States. ``index_ref``
  (a dict) receives the rebuilt objects by graph index. ``index_ref_cache``
  is not supported (``nnx`` rebuilds nodes itself).
  """
  if not isinstance(graphdef, GraphDef):
    raise TypeError(f'graphdef must be a GraphDef, got: {type(graphdef)}')
  if index_ref_cache is not None:
    raise NotImplementedError(
      'index_ref_cache is not supported by brainstate_nnx.graph.unflatten; '
      'update an existing model with graph.update_states(model, states) instead.'
    )
  flat = (state_mapping.to_flat() if hasattr(state_mapping, 'to_flat')
          else FlattedDict(NestedDict(state_mapping).to_flat()))
  state = nnx.from_flat_state(
    [(tuple(p), _to_variable(v, p)) for p, v in flat.items()])
  index_map = nnx.graphlib.IndexMap()
  node = nnx.graphlib.unflatten(graphdef, state, index_ref=index_map)
  if index_ref is not None:
    index_ref.update(index_map.items() if hasattr(index_map, 'items') else index_map)
  return node


def register_graph_node_type(type: type, flatten, set_key, pop_key, create_empty,
                             clear, init=None) -> None:
  """Registers a mutable container type as a graph node (BrainState's
  signature; ``init(node, items)`` defaults to ``set_key`` for each item).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> class Bag:
    ...   def __init__(self):
    ...     self.items = {}
    >>> brainstate.graph.register_graph_node_type(
    ...   Bag,
    ...   flatten=lambda n: (sorted(n.items.items()), None),
    ...   set_key=lambda n, k, v: n.items.__setitem__(k, v),
    ...   pop_key=lambda n, k: n.items.pop(k),
    ...   create_empty=lambda meta: Bag(),
    ...   clear=lambda n: n.items.clear())
    >>> bag = Bag(); bag.items['s'] = brainstate.State(1.0)
    >>> list(brainstate.graph.states(bag).keys())
    [('s',)]
  """
  if init is None:
    def init(node, items):
      for key, value in items:
        set_key(node, key, value)
  nnx.graphlib.register_graph_node_type(
    type, flatten=flatten, set_key=set_key, pop_key=pop_key,
    create_empty=create_empty, clear=clear, init=init)
