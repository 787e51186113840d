"""Graph utilities (BrainState's ``brainstate.graph``) on Flax NNX graphs.

A model is a graph of Modules (``nnx.Module``) holding States
(``nnx.Variable``) and plain values. These functions split it into a static
structure and its States, rebuild it, read and update its States, and walk
it:

* :func:`treefy_split` / :func:`treefy_merge` / :func:`graphdef` /
  :func:`clone` -- structure and rebuilding (``nnx.split`` / ``nnx.merge``);
* :func:`treefy_states` / :func:`update_states` / :func:`pop_states` --
  State values as :class:`~brainstate_nnx.util.NestedDict` s;
* :func:`states` / :func:`nodes` -- the live States / Modules, path-keyed
  :class:`~brainstate_nnx.util.FlattedDict` s;
* :func:`iter_leaf` / :func:`iter_node` -- walking the graph.

Example::

  >>> import jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> from brainstate_nnx import graph
  >>> class Net(brainstate.nn.Module):
  ...   def __init__(self):
  ...     super().__init__()
  ...     self.w = brainstate.ParamState(jnp.ones(2))
  >>> net = Net()
  >>> graphdef, state = graph.treefy_split(net)
  >>> state['w'].value = jnp.zeros(2)       # edit the detached copy
  >>> graph.update_states(net, state)
  >>> net.w.value
  Array([0., 0.], dtype=float32)
"""

from ._operations import (
  treefy_split,
  treefy_merge,
  treefy_states,
  update_states,
  pop_states,
  states,
  nodes,
  graphdef,
  clone,
  iter_leaf,
  iter_node,
)
from ._flatten import flatten, unflatten, GraphDef, RefMap, register_graph_node_type
from ._convert import graph_to_tree, tree_to_graph, NodeStates, split_context, merge_context

__all__ = [
  'treefy_split', 'treefy_merge', 'treefy_states', 'update_states', 'pop_states',
  'states', 'nodes', 'graphdef', 'clone', 'iter_leaf', 'iter_node',
  'flatten', 'unflatten', 'GraphDef', 'RefMap', 'register_graph_node_type',
  'graph_to_tree', 'tree_to_graph', 'NodeStates', 'split_context', 'merge_context',
]
