"""nn.Module construction as BrainState: name, in_size/out_size, repr, desc, param_precompute."""

from conftest import oracle
bst = oracle()  # real BrainState 0.5.4, the oracle
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import brainstate_nnx as bsn


def outcome(fn):
  try:
    return ('ok', fn())
  except Exception as e:  # noqa: BLE001
    return ('err', type(e).__name__)


def same(program):
  theirs, mine = outcome(lambda: program(bst)), outcome(lambda: program(bsn))
  assert mine == theirs
  return mine


def test_defaults_like_brainstate():
  assert same(lambda b: (b.nn.Module().name, b.nn.Module().in_size, b.nn.Module().out_size)) == \
    ('ok', (None, None, None))


def test_name_is_stored_validated_and_read_only_like_brainstate():
  assert same(lambda b: b.nn.Module(name='layer').name) == ('ok', 'layer')
  assert same(lambda b: b.nn.Module(name=3)) == ('err', 'AssertionError')

  def rename(b):
    m = b.nn.Module(name='a')
    m.name = 'b'

  assert same(rename) == ('err', 'AttributeError')


@pytest.mark.parametrize('size', [10, np.int64(4), np.array(5), (3, 4), [2, 3], (), '10', 2.0, None],
                         ids=['int', 'np-int', 'np-0d', 'tuple', 'list', 'empty', 'str', 'float', 'none'])
@pytest.mark.parametrize('attr', ['in_size', 'out_size'])
def test_sizes_normalised_like_brainstate(size, attr):
  def program(b):
    m = b.nn.Module()
    setattr(m, attr, size)
    return getattr(m, attr)

  res = same(program)
  if res[0] == 'ok':
    assert isinstance(res[1], tuple)


def test_bad_size_message_names_the_fix():
  m = bsn.nn.Module()
  with pytest.raises(AssertionError, match=r'in_size=10'):
    m.in_size = 'ten'


def _repr_program(b):
  class Tiny(b.nn.Module):
    def __init__(self):
      super().__init__(name='t')
      self.in_size = 3
      self.scale = 2.0
      self.bias = None
      self._hidden = [1, {'a': 2, 'b': [3]}]
      self.w = b.ParamState(jnp.ones((3, 2)))
      self.child = b.nn.Module()
      self.empty = []

  class Loop(b.nn.Module):
    def __init__(self):
      super().__init__()
      self.me = self

  class Invisible(b.nn.Module):
    graph_invisible_attrs = ('secret',)

    def __init__(self):
      super().__init__()
      self.secret = 1
      self.shown = 2

  return repr(Tiny()), repr(b.nn.Module()), repr(Loop()), repr(Invisible())


def test_repr_like_brainstate():
  mine = _repr_program(bsn)
  theirs = _repr_program(bst)
  assert mine == theirs
  assert mine[1] == 'Module()'
  assert mine[2] == 'Loop(\n  me=Loop(...)\n)'


def test_pretty_repr_item_like_brainstate():
  def program(b):
    m = b.nn.Module(name='abc')
    return (m.__pretty_repr_item__('_name', 'abc'), m.__pretty_repr_item__('_in_size', None),
            m.__pretty_repr_item__('pub', 7), m.__pretty_repr_item__('w_mask', None))

  assert same(program) == ('ok', (('name', 'abc'), None, ('pub', 7), None))


def test_module_is_param_desc_like_brainstate():
  def program(b):
    class Layer(b.nn.Module):
      def __init__(self, in_size, out_size, scale=1.0):
        super().__init__()
        self.in_size, self.out_size, self.scale = in_size, out_size, scale

    d = Layer.desc(out_size=4, scale=2.0)
    layer = d(in_size=3)
    return (isinstance(d, b.mixin.ParamDescriber), isinstance(layer, b.mixin.ParamDesc),
            layer.in_size, layer.out_size, layer.scale)

  assert same(program) == ('ok', (True, True, (3,), (4,), 2.0))


def test_bare_update_not_implemented_and_call_like_brainstate():
  assert same(lambda b: b.nn.Module()(1.0)) == ('err', 'NotImplementedError')
  assert bsn.mixin.is_not_implemented(bsn.nn.Module.update)

  def program(b):
    class AddOne(b.nn.Module):
      def update(self, x):
        return x + 1
    return AddOne()(1.0), 5.0 >> AddOne()

  assert same(program) == ('ok', (2.0, 6.0))


def test_init_all_states_returns_new_states_like_brainstate():
  def program(b):
    class Cell(b.nn.Module):
      def init_state(self, batch_size=None):
        shape = (3,) if batch_size is None else (batch_size, 3)
        self.h = b.HiddenState(jnp.zeros(shape))

    class Net(b.nn.Module):
      def __init__(self):
        super().__init__()
        self.a, self.b = Cell(), Cell()

    caught = Net().init_all_states(batch_size=2, state_tag='rnn')
    states = caught.get_states()
    return len(states), [s.value.shape for s in states], [s.tag for s in states]

  assert same(program) == ('ok', (2, [(2, 3), (2, 3)], [frozenset({'rnn'})] * 2))


def test_state_trees_nested_like_brainstate():
  def program(b):
    class Inner(b.nn.Module):
      def __init__(self):
        super().__init__()
        self.w = b.ParamState(jnp.ones(2))
        self.s = b.ShortTermState(jnp.zeros(1))

    class Outer(b.nn.Module):
      def __init__(self):
        super().__init__()
        self.inner = Inner()

    m = Outer()
    tree = m.state_trees()
    params = m.state_trees(b.ParamState)
    return sorted(tree['inner']), sorted(params['inner'])

  assert same(program) == ('ok', (['s', 'w'], ['w']))


def test_param_precompute_caches_param_modules():
  def program(b):
    computed = []  # one entry per computation of a constrained value

    def precompute(x):
      computed.append(x.shape)
      return x

    class Net(b.nn.Module):
      def __init__(self):
        super().__init__()
        self.p1 = b.nn.Param(jnp.array(1.0), t=b.nn.SoftplusT(0.0), reg=b.nn.L2Reg(0.5),
                             precompute=precompute)
        self.sub = b.nn.Module()
        self.sub.p2 = b.nn.Param(jnp.array([2.0, 3.0]), reg=b.nn.L2Reg(1.0), precompute=precompute)
        self.w = b.ParamState(jnp.ones(2))  # a parameter State, not a Param module

    def valid(net):
      return net.p1.cache_stats['valid'], net.sub.p2.cache_stats['valid']

    net = Net()
    out = {'names': [n for n, _ in net.named_param_modules()],
           'modules': [type(m).__name__ for m in net.param_modules()],
           'reg_loss': round(float(net.reg_loss()), 5),
           'empty_reg_loss': b.nn.Module().reg_loss()}
    computed.clear()
    net.p1.value(), net.sub.p2.value()
    out['uncached_reads'] = len(computed)
    computed.clear()
    with net.param_precompute():
      out['cached_on_entry'] = len(computed)
      out['valid_inside'] = valid(net)
      computed.clear()
      vals = [float(net.p1.value()), [float(v) for v in net.sub.p2.value()]]
      out['reads_inside'] = (len(computed), vals)
    out['valid_after'] = valid(net)
    computed.clear()
    try:
      with net.param_precompute(allowed_hierarchy=(1, 1)):
        out['valid_level_1'] = valid(net)
        raise RuntimeError('boom')
    except RuntimeError as e:
      out['raised'] = str(e)
    out['valid_after_error'] = valid(net)  # cleared on error too
    out['computed_level_1'] = len(computed)
    return out

  result = same(program)
  assert result == ('ok', {
    'names': ['p1', 'sub.p2'], 'modules': ['Param', 'Param'],
    'reg_loss': 0.5 * 1.0 + 1.0 * (4.0 + 9.0), 'empty_reg_loss': 0.0,
    'uncached_reads': 2, 'cached_on_entry': 2, 'valid_inside': (True, True),
    'reads_inside': (0, [1.0, [2.0, 3.0]]), 'valid_after': (False, False),
    'valid_level_1': (True, False), 'raised': 'boom', 'valid_after_error': (False, False),
    'computed_level_1': 1,
  }), result


def test_constructed_module_stays_a_flax_module():
  class Layer(bsn.nn.Module):
    def __init__(self):
      super().__init__(name='layer')
      self.in_size, self.out_size = 3, 2
      self.w = bsn.ParamState(jnp.ones((3, 2)))

    def update(self, x):
      return x @ self.w.value

  m = Layer()
  graphdef, state = nnx.split(m)
  m2 = nnx.merge(graphdef, state)
  assert m2.in_size == (3,) and m2.out_size == (2,) and m2.name == 'layer'
  params = nnx.state(m, nnx.Param)
  assert [p for p, _ in nnx.to_flat_state(params)] == [('w',)]
  np.testing.assert_array_equal(m2(jnp.ones(3)), jnp.full(2, 3.0))


def test_element_wise_block():
  class Double(bsn.nn.ElementWiseBlock):
    def update(self, x):
      return 2 * x

  assert issubclass(bsn.nn.ElementWiseBlock, bsn.nn.Module)
  assert float(Double()(1.5)) == 3.0 and repr(Double()) == 'Double()'
