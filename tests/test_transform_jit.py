"""transform.jit: discovery through closures, write-back, retracing, nesting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import brainstate_nnx as bs
from conftest import assert_close


class Counter(bs.nn.Module):
  def __init__(self):
    super().__init__()
    self.n = bs.State(jnp.array(0))

  def __call__(self):
    self.n.value += 1
    return self.n.value


def test_zero_arg_module_counter():
  c = Counter()
  f = bs.transform.jit(c)
  assert [int(f()) for _ in range(4)] == [1, 2, 3, 4]
  assert int(c.n.value) == 4


def test_closure_counter_matches_brainstate(bst):
  def run(lib):
    n = lib.State(jnp.array(0.0))
    w = lib.ParamState(jnp.array(2.0))

    @lib.transform.jit
    def step(x):
      n.value = n.value + x * w.value
      return n.value * 2

    return [float(step(jnp.float32(i))) for i in range(4)], float(n.value)

  assert run(bs) == run(bst)


def test_traces_once_on_first_call_then_never():
  traces = []
  s = bs.State(jnp.zeros(3))

  @bs.transform.jit
  def f(x):
    traces.append(1)
    s.value = s.value + x
    return s.value.sum()

  for _ in range(5):
    f(jnp.ones(3))
  assert len(traces) == 1  # States found before the trace: one trace
  np.testing.assert_allclose(s.value, 5 * np.ones(3))
  assert f.states == [s]


def test_state_found_while_tracing_costs_one_more_trace():
  traces = []
  holder = type('Holder', (), {})()   # an arbitrary object: not walked
  holder.s = bs.State(jnp.zeros(3))

  @bs.transform.jit
  def f(x):
    traces.append(1)
    holder.s.value = holder.s.value + x
    return holder.s.value.sum()

  for _ in range(3):
    f(jnp.ones(3))
  assert len(traces) == 2  # discovery of holder.s, then the real trace
  np.testing.assert_allclose(holder.s.value, 3 * np.ones(3))


def test_read_only_state_not_stale():
  w = bs.State(jnp.array(1.0))
  f = bs.transform.jit(lambda: w.value * 2)
  assert float(f()) == 2.0
  w.value = jnp.array(5.0)
  assert float(f()) == 10.0


def test_bound_method_and_decorator_on_method():
  class M(bs.nn.Module):
    def __init__(self):
      super().__init__()
      self.h = bs.HiddenState(jnp.zeros(2))

    @bs.transform.jit
    def step(self, x):
      self.h.value = self.h.value + x
      return self.h.value

  m1, m2 = M(), M()
  m1.step(jnp.ones(2))
  m1.step(jnp.ones(2))
  m2.step(jnp.ones(2) * 3)
  np.testing.assert_allclose(m1.h.value, [2, 2])
  np.testing.assert_allclose(m2.h.value, [3, 3])
  g = bs.transform.jit(m1.step)
  g(jnp.ones(2))
  np.testing.assert_allclose(m1.h.value, [3, 3])


def test_static_argnums_and_argnames():
  s = bs.State(jnp.array(0.0))
  traces = []

  @bs.transform.jit(static_argnums=1, static_argnames='mode')
  def f(x, k, mode='add'):
    traces.append(k)
    if mode == 'add':
      s.value = s.value + x * k
    else:
      s.value = s.value - x * k
    return s.value

  f(jnp.float32(1.0), 2)
  f(jnp.float32(1.0), 2)
  f(jnp.float32(1.0), 3, mode='sub')
  assert float(s.value) == 1.0
  with pytest.raises(ValueError):
    bs.transform.jit(lambda x: x, static_argnums=-1)


def test_retrace_on_new_shape_and_dtype():
  s = bs.State(jnp.zeros(()))  # not weakly typed: writes keep its aval
  traces = []

  @bs.transform.jit
  def f(x):
    traces.append(x.shape)
    s.value = s.value + x.sum()
    return x * 2

  f(jnp.ones(2))
  f(jnp.ones(2))
  assert len(traces) == 1
  out = f(jnp.ones((2, 3)))
  assert out.shape == (2, 3)
  assert len(traces) == 2
  out = f(jnp.ones(2, jnp.int32))
  assert out.dtype == jnp.int32
  assert float(s.value) == 2 + 2 + 6 + 2


def test_state_shape_change_outside_retraces():
  s = bs.State(jnp.zeros(2))
  f = bs.transform.jit(lambda: s.value + 1)
  assert f().shape == (2,)
  s.value = jnp.zeros(5)
  assert f().shape == (5,)


def test_state_first_touched_on_later_call():
  a = bs.State(jnp.array(1.0))
  b = bs.State(jnp.array(10.0))

  @bs.transform.jit
  def f(x):
    if x.shape[0] > 2:
      b.value = b.value + 1
    a.value = a.value + 1
    return a.value

  f(jnp.ones(2))
  f(jnp.ones(3))
  f(jnp.ones(3))
  assert float(a.value) == 4.0
  assert float(b.value) == 12.0
  assert set(map(id, f.states)) == {id(a), id(b)}


def test_states_created_inside_stay_local():
  s = bs.State(jnp.array(1.0))

  @bs.transform.jit
  def f():
    tmp = bs.State(s.value * 3)
    tmp.value = tmp.value + 1
    return tmp.value

  assert float(f()) == 4.0
  assert f.states == [s]


def test_pytree_state_values():
  s = bs.State({'a': jnp.zeros(2), 'b': (jnp.ones(()), 3.0)})

  @bs.transform.jit
  def f():
    v = s.value
    s.value = {'a': v['a'] + 1, 'b': (v['b'][0] * 2, v['b'][1] + 1)}

  f()
  f()
  np.testing.assert_allclose(s.value['a'], [2, 2])
  assert float(s.value['b'][0]) == 4.0
  assert float(s.value['b'][1]) == 5.0


def test_nested_jit():
  s = bs.State(jnp.array(0.0))
  inner = bs.transform.jit(lambda x: s.__setattr__('value', s.value + x))

  @bs.transform.jit
  def outer(x):
    inner(x)
    inner(x * 10)
    return s.value

  assert float(outer(jnp.float32(1.0))) == 11.0
  assert float(outer(jnp.float32(1.0))) == 22.0
  assert float(s.value) == 22.0


def test_stock_nnx_linear_inside_module_is_tracked():
  class Net(bs.nn.Module):
    def __init__(self):
      super().__init__()
      self.lin = nnx.Linear(2, 1, rngs=nnx.Rngs(0))

    def __call__(self, x):
      return self.lin(x)

  net = Net()
  f = bs.transform.jit(net)
  x = jnp.ones((1, 2))
  before = f(x)
  net.lin.kernel.value = net.lin.kernel.value + 1.0
  after = f(x)
  assert_close(after - before, [[2.0]], atol=0)


def test_under_disable_jit():
  c = Counter()
  f = bs.transform.jit(c)
  with jax.disable_jit():
    assert [int(f()) for _ in range(3)] == [1, 2, 3]


def test_outputs_and_eval_shape():
  s = bs.State(jnp.ones((2, 3)))
  f = bs.transform.jit(lambda x: (s.value * x, {'k': x}))
  shapes = f.eval_shape(jnp.ones(3))
  assert shapes[0].shape == (2, 3)
  np.testing.assert_allclose(s.value, np.ones((2, 3)))


def test_state_passed_as_argument_and_written_is_loud():
  c = Counter()
  f = bs.transform.jit(lambda m: m())
  with pytest.raises(TypeError, match='argument'):
    f(c)
  assert int(c.n.value) == 0


def test_module_as_static_argument_works():
  c = Counter()
  f = bs.transform.jit(lambda m: m(), static_argnums=0)
  assert [int(f(c)) for _ in range(3)] == [1, 2, 3]


def test_state_passed_as_argument_read_only_is_fine():
  s = bs.State(jnp.array(2.0))
  f = bs.transform.jit(lambda st, x: st.value * x)
  assert float(f(s, 3.0)) == 6.0


def test_compile_lower_trace():
  s = bs.State(jnp.ones(2))
  f = bs.transform.jit(lambda k: s.value * k)
  compiled = f.compile(jnp.float32(2.0))
  out = compiled([s.value], jnp.float32(3.0))  # states come first, as input 0
  np.testing.assert_allclose(out[0], [3.0, 3.0])
  assert 'mul' in str(f.trace(jnp.float32(1.0)).jaxpr)
