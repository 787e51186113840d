"""BrainState's low-level graph API (flatten / unflatten, graph_to_tree /
tree_to_graph, split / merge contexts, RefMap, register_graph_node_type) on
nnx's graph, compared with real BrainState 0.5.4."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import brainstate
import brainstate_nnx as bsn


def _model(lib):
  class Sub(lib.nn.Module):
    def __init__(self, k):
      super().__init__()
      self.p = lib.ParamState(jnp.full(2, float(k)))

  class Net(lib.nn.Module):
    def __init__(self):
      super().__init__()
      self.w = lib.ParamState(jnp.arange(3.0))
      self.h = lib.HiddenState(jnp.zeros(3))
      self.subs = [Sub(1), Sub(2)]

  return Net()


def _flat(mapping):
  return {tuple(k): v for k, v in mapping.to_flat().items()}


def test_flatten_matches_brainstate():
  out = {}
  for lib in (brainstate, bsn):
    net = _model(lib)
    graphdef, states = lib.graph.flatten(net)
    flat = _flat(states)
    out[lib.__name__] = {k: (type(v).__name__, v.type.__name__, np.asarray(v.value).tolist())
                         for k, v in flat.items()}
    assert isinstance(graphdef, lib.graph.GraphDef)
    # live States with treefy_state=False, and the same objects come back
    _, live = lib.graph.flatten(net, treefy_state=False)
    live = _flat(live)
    assert live[('w',)] is net.w
    rebuilt = lib.graph.unflatten(graphdef, states)
    assert type(rebuilt) is type(net) and rebuilt.w is not net.w
    np.testing.assert_array_equal(rebuilt.subs[1].p.value, net.subs[1].p.value)
    with pytest.raises(TypeError):
      lib.graph.flatten(net, ref_index={})
    with pytest.raises(ValueError):
      lib.graph.flatten(3.0)
    with pytest.raises(TypeError):
      lib.graph.unflatten('not a graphdef', states)
  assert out['brainstate'] == out['brainstate_nnx']


def test_graph_to_tree_round_trip_keeps_sharing_like_brainstate():
  res = {}
  for lib in (brainstate, bsn):
    a, b = _model(lib), _model(lib)
    b.w = a.w                                  # share one State between two models
    tree, found = lib.graph.graph_to_tree((a, {'b': b}, 3.0))
    assert isinstance(tree[0], lib.graph.NodeStates) and tree[2] == 3.0
    doubled = jax.tree.map(lambda x: x * 2, tree)
    a2, d, x = lib.graph.tree_to_graph(doubled)
    b2 = d['b']
    assert a2.w is b2.w and a2.w is not a.w
    res[lib.__name__] = (len(found), np.asarray(a2.w.value).tolist(),
                         np.asarray(b2.subs[0].p.value).tolist(), x)
  assert res['brainstate'] == res['brainstate_nnx']


def test_graph_to_tree_under_jax_jit_is_a_plain_pytree():
  net = _model(bsn)
  tree, _ = bsn.graph.graph_to_tree(net)

  @jax.jit
  def f(t):
    m = bsn.graph.tree_to_graph(t)
    m.w.value = m.w.value + 1
    return bsn.graph.graph_to_tree(m)[0]

  out = bsn.graph.tree_to_graph(f(tree))
  np.testing.assert_array_equal(out.w.value, np.arange(3.0) + 1)
  np.testing.assert_array_equal(net.w.value, np.arange(3.0))


def test_split_and_merge_context_store_shared_states_once():
  res = {}
  for lib in (brainstate, bsn):
    a, b = _model(lib), _model(lib)
    b.w = a.w
    with lib.graph.split_context() as (ctx, refs):
      ga, sa = ctx.treefy_split(a)
      gb, sb = ctx.treefy_split(b)
      params = ctx.treefy_split(a, lib.ParamState, ...)
    assert isinstance(refs, lib.graph.RefMap)
    with lib.graph.merge_context() as (mctx, _):
      a2 = mctx.treefy_merge(ga, sa)
      b2 = mctx.treefy_merge(gb, sb)
    assert a2.w is b2.w
    res[lib.__name__] = (sorted(map(tuple, _flat(sa))), sorted(map(tuple, _flat(sb))), len(params))
  assert res['brainstate'] == res['brainstate_nnx']


def test_refmap_is_keyed_by_identity():
  for lib in (brainstate, bsn):
    a, b = lib.State(jnp.zeros(1)), lib.State(jnp.zeros(1))
    m = lib.graph.RefMap()
    m[a] = 1
    m[b] = 2
    assert a in m and m[b] == 2 and len(m) == 2
    del m[a]
    assert a not in m and list(m) == [b]


def test_register_graph_node_type_like_brainstate():
  out = {}
  for lib in (brainstate, bsn):
    class Bag:
      def __init__(self):
        self.items = {}

    lib.graph.register_graph_node_type(
      Bag,
      flatten=lambda n: (sorted(n.items.items()), None),
      set_key=lambda n, k, v: n.items.__setitem__(k, v),
      pop_key=lambda n, k: n.items.pop(k),
      create_empty=lambda meta: Bag(),
      clear=lambda n: n.items.clear(),
    )
    bag = Bag()
    bag.items['x'] = lib.State(jnp.ones(2))
    bag.items['y'] = lib.ParamState(jnp.zeros(1))
    found = lib.graph.states(bag)
    graphdef, states = lib.graph.flatten(bag)
    rebuilt = lib.graph.unflatten(graphdef, states)
    assert isinstance(rebuilt, Bag) and rebuilt.items['x'] is not bag.items['x']
    out[lib.__name__] = (sorted(tuple(k) for k in found.keys()),
                         sorted(map(tuple, _flat(states))))
  assert out['brainstate'] == out['brainstate_nnx']


def test_flatten_output_works_with_nnx():
  net = _model(bsn)
  graphdef, states = bsn.graph.flatten(net, treefy_state=False)
  # the GraphDef is nnx's: nnx.merge takes it with nnx's own state
  _, nnx_state = nnx.split(net)
  again = nnx.merge(graphdef, nnx_state)
  np.testing.assert_array_equal(again.w.value, net.w.value)
