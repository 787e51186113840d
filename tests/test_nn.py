"""nn.Module: an nnx.Module with BrainState's tree API, checked against BrainState."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import brainstate_nnx as bs


def _build(lib):
  class L(lib.nn.Module):
    def __init__(self, n):
      super().__init__()
      self.w = lib.ParamState(jnp.ones(n))
      self.h = lib.HiddenState(jnp.zeros(n))

  class D(lib.nn.Module):
    def __init__(self):
      super().__init__()
      self.a = L(2)
      self.b = lib.ParamState(jnp.ones(1))

  class Net(lib.nn.Module):
    def __init__(self):
      super().__init__()
      self.d = D()
      self.layers = [L(1), L(2)]
      self.t = (lib.LongTermState(jnp.zeros(1)),)
      self.dd = {'x': L(3)}
      self.shared = self.layers[0]
      self.w = lib.ParamState(jnp.zeros(1))

  return Net()


def _summary(lib):
  n = _build(lib)
  p, h = n.states(lib.ParamState, lib.HiddenState)
  return {
    'states': list(n.states().keys()),
    'params': list(n.states(lib.ParamState).keys()),
    'split': (list(p.keys()), list(h.keys())),
    'nodes': list(n.nodes().keys()),
    'named_modules': [k for k, _ in n.named_modules()],
    'named_modules_no_self': [k for k, _ in n.named_modules(include_self=False)],
    'children': [type(c).__name__ for c in n.children()],
    'named_children': [k for k, _ in n.named_children()],
    'hier01': list(n.states(allowed_hierarchy=(0, 1)).keys()),
    'hier11': list(n.states(allowed_hierarchy=(1, 1)).keys()),
    'nodes11': list(n.nodes(allowed_hierarchy=(1, 1)).keys()),
    'values': {k: np.asarray(v) for k, v in n.states(lib.ParamState).to_dict_values().items()},
  }


def test_tree_api_matches_brainstate(bst):
  mine, theirs = _summary(bs), _summary(bst)
  for key in mine:
    if key == 'values':
      assert mine[key].keys() == theirs[key].keys()
      for k in mine[key]:
        np.testing.assert_array_equal(mine[key][k], theirs[key][k])
    else:
      assert mine[key] == theirs[key], key


def test_module_is_nnx_module_and_shared_state_once():
  net = _build(bs)
  assert isinstance(net, nnx.Module)
  assert ('shared', 'w') not in net.states()
  graphdef, state = nnx.split(net)
  flat = dict(nnx.to_flat_state(nnx.state(net, bs.ParamState)))
  assert set(flat) == set(net.states(bs.ParamState))
  # the split leaves are the live States
  assert flat[('w',)] is net.w
  merged = nnx.merge(graphdef, state)
  assert isinstance(merged, type(net))


def test_states_mapping_methods():
  net = _build(bs)
  st = net.states()
  params = st.filter(bs.ParamState)
  assert set(params) == set(net.states(bs.ParamState))
  sub = st.subset(bs.HiddenState)
  assert all(isinstance(v, bs.HiddenState) for v in sub.values())
  vals = params.to_dict_values()
  params.assign_dict_values({k: v + 1 for k, v in vals.items()})
  np.testing.assert_allclose(net.w.value, [1.0])
  merged = type(params).merge(params, sub)
  assert len(merged) == len(params) + len(sub)


def test_list_append_after_init_and_dict_attributes():
  class M(bs.nn.Module):
    def __init__(self):
      super().__init__()
      self.items = []

  m = M()
  m.items = [bs.State(jnp.zeros(1))]
  m.items.append(bs.State(jnp.ones(1)))
  assert list(m.states().keys()) == [('items', 0), ('items', 1)]


def test_init_and_reset_all_states_order_matches_brainstate(bst):
  def run(lib):
    calls = []

    class Leaf(lib.nn.Module):
      def __init__(self, name):
        super().__init__()
        self.tag_ = name

      def init_state(self, batch_size=None):
        calls.append(('init', self.tag_, batch_size))
        self.v = lib.HiddenState(jnp.zeros((batch_size or 1, 2)))

      def reset_state(self, batch_size=None):
        calls.append(('reset', self.tag_, batch_size))
        self.v.value = jnp.ones((batch_size or 1, 2))

    class Top(lib.nn.Module):
      def __init__(self):
        super().__init__()
        self.a = Leaf('a')
        self.b = [Leaf('b0'), Leaf('b1')]

    t = Top()
    lib.nn.init_all_states(t, batch_size=3)
    lib.nn.reset_all_states(t, batch_size=3)
    return calls, [k for k in t.states().keys()]

  assert run(bs) == run(bst)


def test_stock_flax_layer_inside_is_adopted():
  class Net(bs.nn.Module):
    def __init__(self):
      super().__init__()
      self.lin = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
      self.p = bs.ParamState(jnp.ones(3))

  net = Net()
  assert isinstance(net.lin.kernel, nnx.Param)
  assert isinstance(net.lin.kernel, bs.State)
  assert set(net.states(nnx.Param)) == {('lin', 'bias'), ('lin', 'kernel'), ('p',)}


def test_update_and_call():
  class M(bs.nn.Module):
    def update(self, x):
      return x + 1

  assert M()(1) == 2
  with pytest.raises(NotImplementedError):
    bs.nn.Module()(1)
