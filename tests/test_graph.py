"""brainstate_nnx.graph against brainstate.graph: same paths, structures and values.

The same model is defined once against a library namespace and built with
real BrainState 0.5.4 and with brainstate_nnx.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bs
from brainstate_nnx import graph as G
from brainstate_nnx.util import FlattedDict, NestedDict


def _build(lib):
  class Layer(lib.nn.Module):
    def __init__(self, n):
      super().__init__()
      self.w = lib.ParamState(jnp.arange(n, dtype=jnp.float32) + 1.0)
      self.h = lib.HiddenState(jnp.zeros(n))
      self.size = n

  class Net(lib.nn.Module):
    def __init__(self):
      super().__init__()
      self.a = Layer(2)
      self.blocks = [Layer(3), Layer(4)]
      self.table = {'x': Layer(1), 'y': lib.State(jnp.ones(()) * 7)}
      self.tied = self.a.w
      self.top = lib.LongTermState(jnp.full(5, 2.0))

  return Net()


def _graph(lib):
  return G if lib is bs else lib.graph


@pytest.fixture
def nets(bst):
  return (bs, _build(bs)), (bst, _build(bst))


def _desc(items):
  return [(p, type(v).__name__) for p, v in items]


def _flat_values(nested):
  return {p: np.asarray(v.value) for p, v in nested.to_flat().items()}


def _assert_values_equal(a, b):
  assert list(a) == list(b)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])


HIERARCHIES = [(0, 2 ** 63 - 1), (0, 0), (1, 1), (0, 1), (1, 5), (2, 5)]


@pytest.mark.parametrize('hierarchy', HIERARCHIES)
def test_iter_leaf_and_iter_node_match(nets, hierarchy):
  (ours_lib, ours), (ref_lib, ref) = nets
  assert _desc(G.iter_leaf(ours, hierarchy)) == _desc(ref_lib.graph.iter_leaf(ref, hierarchy))
  assert _desc(G.iter_node(ours, hierarchy)) == _desc(ref_lib.graph.iter_node(ref, hierarchy))


def test_iter_leaf_values(nets):
  (_, ours), (ref_lib, ref) = nets
  leaves = list(G.iter_leaf(ours))
  assert ('size',) not in dict(leaves)
  assert dict(leaves)[('a', 'size')] == 2
  assert dict(leaves)[('a', 'w')] is ours.a.w            # the live States
  assert [p for p, v in leaves if v is ours.a.w] == [('a', 'w')]   # tied: once
  assert [p for p, _ in G.iter_node(ours)][-1] == ()


@pytest.mark.parametrize('hierarchy', HIERARCHIES)
def test_states_and_nodes_match(nets, hierarchy):
  (_, ours), (ref_lib, ref) = nets
  for filters in [(), (bs.ParamState,), (bs.ParamState, bs.HiddenState)]:
    ref_filters = tuple(getattr(ref_lib, f.__name__) for f in filters)
    a = G.states(ours, *filters, allowed_hierarchy=hierarchy)
    b = ref_lib.graph.states(ref, *ref_filters, allowed_hierarchy=hierarchy)
    a, b = (a, b) if len(filters) >= 2 else ((a,), (b,))
    for x, y in zip(a, b):
      assert isinstance(x, FlattedDict)
      assert _desc(x.items()) == _desc(y.items())
  assert _desc(G.nodes(ours, allowed_hierarchy=hierarchy).items()) == \
    _desc(ref_lib.graph.nodes(ref, allowed_hierarchy=hierarchy).items())


def test_treefy_split_matches(nets):
  (_, ours), (ref_lib, ref) = nets
  gd, state = G.treefy_split(ours)
  rgd, rstate = ref_lib.graph.treefy_split(ref)
  assert isinstance(state, NestedDict)
  assert list(state) == list(rstate)
  assert list(state.to_flat()) == list(rstate.to_flat())
  _assert_values_equal(_flat_values(state), _flat_values(rstate))
  # leaves are detached copies of the right classes
  assert type(state['a']['w']) is bs.ParamState and state['a']['w'] is not ours.a.w
  state['a']['w'].value = jnp.zeros(2)
  np.testing.assert_array_equal(ours.a.w.value, [1.0, 2.0])
  # filters
  parts = G.treefy_split(ours, bs.HiddenState, bs.ParamState, ...)
  rparts = ref_lib.graph.treefy_split(ref, ref_lib.HiddenState, ref_lib.ParamState, ...)
  assert len(parts) == len(rparts) == 4
  for p, r in zip(parts[1:], rparts[1:]):
    _assert_values_equal(_flat_values(p), _flat_values(r))
  with pytest.raises(ValueError):
    G.treefy_split(ours, bs.HiddenState)
  assert G.graphdef(ours) == gd
  hash(gd)


def test_treefy_merge_roundtrip(nets):
  (_, ours), (ref_lib, ref) = nets
  gd, params, rest = G.treefy_split(ours, bs.ParamState, ...)
  rgd, rparams, rrest = ref_lib.graph.treefy_split(ref, ref_lib.ParamState, ...)
  new = G.treefy_merge(gd, params, rest)
  rnew = ref_lib.graph.treefy_merge(rgd, rparams, rrest)
  assert type(new) is type(ours)
  assert new.tied is new.a.w and new.a.w is not ours.a.w
  assert rnew.tied is rnew.a.w
  _assert_values_equal(_flat_values(G.treefy_states(new)),
                       _flat_values(ref_lib.graph.treefy_states(rnew)))
  again = G.treefy_merge(gd, params, rest)
  assert again.a.w is not new.a.w
  assert new.blocks[1].size == 4


def test_treefy_states_filters(nets):
  (_, ours), (ref_lib, ref) = nets
  a = G.treefy_states(ours, bs.HiddenState)
  b = ref_lib.graph.treefy_states(ref, ref_lib.HiddenState)
  _assert_values_equal(_flat_values(a), _flat_values(b))
  a2 = G.treefy_states(ours, bs.HiddenState, bs.ParamState)
  b2 = ref_lib.graph.treefy_states(ref, ref_lib.HiddenState, ref_lib.ParamState)
  assert len(a2) == len(b2) == 2
  for x, y in zip(a2, b2):
    _assert_values_equal(_flat_values(x), _flat_values(y))


def test_clone(nets):
  for lib, net in nets:
    copy = _graph(lib).clone(net)
    assert type(copy) is type(net)
    assert copy.a.w is not net.a.w and copy.tied is copy.a.w
    copy.a.w.value = copy.a.w.value * 10
    np.testing.assert_array_equal(net.a.w.value, [1.0, 2.0])
    np.testing.assert_array_equal(copy.tied.value, [10.0, 20.0])


def test_update_states_matches(nets):
  results = []
  for lib, net in nets:
    graph = _graph(lib)
    _, state = graph.treefy_split(net)
    state['a']['w'].value = jnp.array([5.0, 6.0])
    state['blocks'][1]['h'].value = jnp.ones(4) * 3
    graph.update_states(net, state)
    hidden = graph.treefy_states(net, lib.HiddenState).to_flat()
    hidden[('a', 'h')].value = jnp.array([-1.0, -1.0])
    # brainstate_nnx takes the FlattedDict itself (BrainState 0.5.4 needs it nested)
    graph.update_states(net, hidden if lib is bs else hidden.to_nest())
    results.append(_flat_values(graph.treefy_states(net)))
    assert net.tied is net.a.w
  _assert_values_equal(*results)
  ours = nets[0][1]
  np.testing.assert_array_equal(ours.tied.value, [5.0, 6.0])
  # plain values and several mappings
  G.update_states(ours, FlattedDict({('top',): jnp.zeros(5)}),
                  NestedDict({'table': {'y': jnp.array(1.0)}}))
  assert float(ours.top.value.sum()) == 0.0 and float(ours.table['y'].value) == 1.0


def test_pop_states_matches(nets):
  results = []
  for lib, net in nets:
    popped = _graph(lib).pop_states(net, lib.HiddenState)
    results.append((_flat_values(popped), _desc(_graph(lib).iter_leaf(net))))
  assert results[0][0].keys() == results[1][0].keys()
  _assert_values_equal(results[0][0], results[1][0])
  assert results[0][1] == results[1][1]
  with pytest.raises(ValueError):
    G.pop_states(nets[0][1])


def test_graph_ops_inside_jit():
  net = _build(bs)

  @bs.transform.jit
  def step(x):
    state = G.treefy_states(net, bs.HiddenState)
    for p, st in state.to_flat().items():
      st.value = st.value + x
    G.update_states(net, state)
    return sum(v.value.sum() for v in G.states(net, bs.HiddenState).values())

  assert float(step(1.0)) == 10.0
  assert float(step(1.0)) == 20.0
  np.testing.assert_array_equal(net.blocks[0].h.value, [2.0, 2.0, 2.0])
  assert set(map(id, step.states)) >= {id(net.a.h), id(net.blocks[1].h)}
