"""Issue 8's silent cases in the jit/core: each is correct or a clear error.

Every test compares with a pure-JAX reference (or hand-computed values) and
checks that no State is left half-written or holding a tracer.
"""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import oracle
brainstate = oracle()  # real BrainState 0.5.4, the oracle
import brainstate_nnx as bs


def _no_tracer(*states):
  for st in states:
    for leaf in jax.tree.leaves(st.get_raw_value()):  # (nnx: no read tracking)
      assert not isinstance(leaf, jax.core.Tracer)


# --------------------------------------------------------------------------
# 1. stock Flax Variables and foreign States
# --------------------------------------------------------------------------

class _Holder(nnx.Module):
  """A plain nnx.Module holding a brainstate_nnx module and a Flax layer."""

  def __init__(self):
    self.inner = bs.nn.Module()
    self.inner.w = bs.ParamState(jnp.ones(3))
    self.lin = nnx.Linear(3, 2, rngs=nnx.Rngs(0))


def test_stock_linear_in_plain_module_is_not_baked_in():
  model = _Holder()
  x = jnp.arange(3.0)
  f = bs.transform.jit(lambda: model.lin(x * model.inner.w.value))
  ref = lambda: x @ model.lin.kernel[...] + model.lin.bias[...]
  np.testing.assert_allclose(f(), ref(), rtol=1e-6)
  model.lin.kernel[...] = model.lin.kernel[...] * 3.0
  np.testing.assert_allclose(f(), ref(), rtol=1e-6)


def test_stock_param_through_closure_is_threaded_and_written():
  p = nnx.Param(jnp.array([1.0, 2.0]))

  @bs.transform.jit
  def step():
    p[...] = p[...] * 2.0
    return p[...].sum()

  assert float(step()) == 6.0
  assert float(step()) == 12.0
  np.testing.assert_allclose(p[...], [4.0, 8.0])
  p[...] = jnp.array([1.0, 1.0])
  assert float(step()) == 4.0


def test_stock_param_behind_arbitrary_object_found_while_tracing():
  box = type('Box', (), {})()
  box.p = nnx.Param(jnp.array(2.0))
  f = bs.transform.jit(lambda x: box.p[...] * x)
  assert float(f(3.0)) == 6.0
  box.p[...] = jnp.array(5.0)
  assert float(f(3.0)) == 15.0


def test_states_filter_returns_flax_params():
  model = _Holder()
  params = bs.nn.states(model, nnx.Param)
  got = {id(v) for v in params.values()}
  assert {id(model.inner.w), id(model.lin.kernel), id(model.lin.bias)} <= got
  # trained BrainState style: every Param moves
  x, y = jnp.ones((4, 3)), jnp.zeros((4, 2))

  def loss():
    return jnp.mean((model.lin(x * model.inner.w.value) - y) ** 2)

  @bs.transform.jit
  def step():
    grads = bs.transform.grad(loss, params)()
    for k in params:
      params[k].value = params[k].value - 0.1 * grads[k]

  before = {k: np.asarray(v.value) for k, v in params.items()}
  step()
  for k, v in params.items():
    assert not np.allclose(before[k], v.value), k


def test_real_brainstate_state_is_a_clear_error():
  w = brainstate.ParamState(jnp.ones(2))
  f = bs.transform.jit(lambda: w.value * 2)
  with pytest.raises(TypeError, match='real `brainstate`'):
    f()


# --------------------------------------------------------------------------
# 2. configuration changes
# --------------------------------------------------------------------------

class _WithDropout(bs.nn.Module):
  def __init__(self):
    super().__init__()
    self.drop = nnx.Dropout(0.5, rngs=nnx.Rngs(0))

  def __call__(self, x):
    return self.drop(x)


def test_eval_train_switch_retraces():
  model = _WithDropout()
  x = jnp.ones(64)
  f = bs.transform.jit(lambda: model(x))
  model.train()
  trained = np.asarray(f())
  assert (trained == 0).any()          # dropout active
  model.eval()
  np.testing.assert_allclose(f(), x)   # identity, as the un-jitted layer
  model.train()
  assert (np.asarray(f()) == 0).any()


def test_plain_attribute_flag_retraces():
  class M(bs.nn.Module):
    def __init__(self):
      super().__init__()
      self.scale = 2.0
      self.w = bs.ParamState(jnp.ones(2))

  m = M()
  f = bs.transform.jit(lambda: m.w.value * m.scale)
  np.testing.assert_allclose(f(), [2.0, 2.0])
  m.scale = 3.0
  np.testing.assert_allclose(f(), [3.0, 3.0])


def test_environ_settings_change_retraces():
  # the traced program depends on an environ setting: a jitted call gives
  # what the same function gives without jit under every setting, tracing
  # once per configuration (BrainState 0.5.4 keeps its first trace instead)
  traces = []

  def scaled(x):
    traces.append(bs.environ.get('fit'))
    return x * (2.0 if bs.environ.get('fit') else 3.0)

  f = bs.transform.jit(scaled)
  steps = [lambda: bs.environ.context(fit=True), lambda: bs.environ.context(fit=False),
           lambda: bs.environ.context(fit=True)]
  for step in steps:
    with step():
      expect = float(scaled(1.0))
      del traces[-1]
      assert float(f(1.0)) == expect
  assert traces == [True, False]   # the first configuration's trace is reused
  try:  # global settings too
    bs.environ.set(fit=False)
    assert float(f(2.0)) == 6.0
    bs.environ.set(fit=True)
    assert float(f(2.0)) == 4.0
    bs.environ.set(fit='other')  # a new value: a new trace
    assert float(f(2.0)) == 4.0
  finally:
    bs.environ.pop('fit')
  assert traces == [True, False, 'other']


# --------------------------------------------------------------------------
# 3. replaced / deleted State attributes
# --------------------------------------------------------------------------

def test_replaced_state_attribute_is_used():
  m = bs.nn.Module()
  m.w = bs.ParamState(jnp.ones(2))
  f = bs.transform.jit(lambda: m.w.value + 1)
  np.testing.assert_allclose(f(), [2.0, 2.0])
  m.w = bs.ParamState(jnp.full(2, 10.0))
  np.testing.assert_allclose(f(), [11.0, 11.0])


def test_replaced_state_written_through_new_object():
  m = bs.nn.Module()
  m.h = bs.HiddenState(jnp.zeros(2))

  @bs.transform.jit
  def step():
    m.h.value = m.h.value + 1

  step()
  old = m.h
  m.h = bs.HiddenState(jnp.full(2, 5.0))
  step()
  np.testing.assert_allclose(m.h.value, [6.0, 6.0])
  np.testing.assert_allclose(old.value, [1.0, 1.0])


def test_deleted_state_attribute_raises():
  m = bs.nn.Module()
  m.w = bs.ParamState(jnp.ones(2))
  f = bs.transform.jit(lambda: m.w.value + 1)
  f()
  del m.w
  with pytest.raises(AttributeError):
    f()


# --------------------------------------------------------------------------
# 4. States created inside jit and stored on a module
# --------------------------------------------------------------------------

def test_state_created_in_jit_holds_concrete_value():
  m = bs.nn.Module()

  @bs.transform.jit
  def f(x):
    m.cache = bs.State(x * 2)
    return x

  f(jnp.ones(2))
  np.testing.assert_allclose(m.cache.value, [2.0, 2.0])
  _no_tracer(m.cache)
  f(jnp.full(2, 3.0))                    # cached trace: still updated
  np.testing.assert_allclose(m.cache.value, [6.0, 6.0])


class _Cell(bs.nn.Module):
  def __init__(self):
    super().__init__()
    self.w = bs.ParamState(jnp.full((2,), 0.5))

  def init_state(self, batch_size=None):
    self.h = bs.HiddenState(jnp.zeros((batch_size, 2)))

  def __call__(self, x):
    self.h.value = jnp.tanh(self.h.value + x * self.w.value)
    return self.h.value


def test_init_all_states_inside_jitted_step():
  cell = _Cell()

  @bs.transform.jit
  def run(xs):
    bs.nn.init_all_states(cell, batch_size=xs.shape[1])
    for t in range(xs.shape[0]):
      cell(xs[t])
    return cell.h.value

  xs = jnp.arange(12.0).reshape(3, 2, 2) / 10

  def ref(xs):
    h = jnp.zeros((2, 2))
    for t in range(3):
      h = jnp.tanh(h + xs[t] * 0.5)
    return h

  for _ in range(2):
    np.testing.assert_allclose(run(xs), ref(xs), rtol=1e-6)
    np.testing.assert_allclose(cell.h.value, ref(xs), rtol=1e-6)
    _no_tracer(cell.h)
  np.testing.assert_allclose(run(xs * 2), ref(xs * 2), rtol=1e-6)
  np.testing.assert_allclose(cell.h.value, ref(xs * 2), rtol=1e-6)


# --------------------------------------------------------------------------
# 5. returning a State or a Module
# --------------------------------------------------------------------------

def test_returning_a_state_raises():
  s = bs.State(jnp.zeros(2))
  with pytest.raises(ValueError, match='cannot be a State'):
    bs.transform.jit(lambda: s)()
  np.testing.assert_allclose(s.value, [0.0, 0.0])


def test_returning_a_module_raises():
  m = bs.nn.Module()
  m.w = bs.ParamState(jnp.ones(2))
  with pytest.raises(TypeError, match='Module'):
    bs.transform.jit(lambda: m)()
  _no_tracer(m.w)


# --------------------------------------------------------------------------
# 7. in-place mutation of a dict-valued State
# --------------------------------------------------------------------------

def test_dict_state_mutated_in_place_inside_jit():
  s = bs.State({'a': jnp.zeros(2), 'b': jnp.ones(2)})

  @bs.transform.jit
  def step(x):
    s.value['a'] = s.value['a'] + x
    return s.value['b'].sum()

  step(jnp.ones(2))
  step(jnp.ones(2))
  np.testing.assert_allclose(s.value['a'], [2.0, 2.0])
  np.testing.assert_allclose(s.value['b'], [1.0, 1.0])
  _no_tracer(s)


# --------------------------------------------------------------------------
# 8. threads
# --------------------------------------------------------------------------

class _Counter(bs.nn.Module):
  def __init__(self, k):
    super().__init__()
    self.n = bs.State(jnp.zeros(()))
    self.k = k

  @bs.transform.jit
  def step(self, x):
    self.n.value = self.n.value + x * self.k
    return self.n.value


def test_two_threads_same_jitted_function():
  shared = bs.State(jnp.zeros(()))

  @bs.transform.jit
  def add(x):
    shared.value = shared.value + x
    return shared.value

  models = [_Counter(1.0), _Counter(2.0)]
  errors = []

  def work(m):
    try:
      for _ in range(20):
        m.step(1.0)
        add(1.0)
    except Exception as e:  # pragma: no cover - the failure being tested
      errors.append(e)

  threads = [threading.Thread(target=work, args=(m,)) for m in models]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors
  assert float(models[0].n.value) == 20.0
  assert float(models[1].n.value) == 40.0
  assert float(shared.value) == 40.0


# --------------------------------------------------------------------------
# 9. interrupts
# --------------------------------------------------------------------------

def test_keyboard_interrupt_while_tracing_leaves_states_intact():
  a = bs.State(jnp.zeros(2))
  b = bs.State(jnp.zeros(2))
  fire = [True]

  @bs.transform.jit
  def step():
    a.value = a.value + 1
    if fire[0]:
      raise KeyboardInterrupt
    b.value = b.value + 1

  with pytest.raises(KeyboardInterrupt):
    step()
  np.testing.assert_allclose(a.value, [0.0, 0.0])
  np.testing.assert_allclose(b.value, [0.0, 0.0])
  _no_tracer(a, b)
  fire[0] = False
  step()
  np.testing.assert_allclose(a.value, [1.0, 1.0])
  np.testing.assert_allclose(b.value, [1.0, 1.0])


def test_keyboard_interrupt_inside_nested_transform():
  a = bs.State(jnp.zeros(()))
  fire = [True]

  def inner(x):
    a.value = a.value + x
    if fire[0]:
      raise KeyboardInterrupt
    return a.value

  @bs.transform.jit
  def step(x):
    return bs.transform.grad(lambda v: inner(v) * 1.0)(x)

  with pytest.raises(KeyboardInterrupt):
    step(1.0)
  assert float(a.value) == 0.0
  _no_tracer(a)
  fire[0] = False
  assert float(step(1.0)) == 1.0
  assert float(a.value) == 1.0


def test_jit_threads_only_used_states_of_a_large_closure():
  m = bs.nn.Module()
  m.used = bs.State(jnp.ones(2))
  m.others = [bs.State(jnp.zeros(2)) for _ in range(20)]
  f = bs.transform.jit(lambda x: m.used.value * x)
  for k in range(3):
    np.testing.assert_allclose(f(jnp.full(2, float(k))), [k, k])
  assert f.states == [m.used]


@pytest.mark.parametrize('under_jit', [False, True])
def test_state_created_inside_grad_holds_the_concrete_value(under_jit):
  """``init_all_states`` inside the loss: the new State holds a value afterwards, not a tracer."""

  class M(bs.nn.Module):
    def __init__(self):
      super().__init__()
      self.w = bs.ParamState(jnp.arange(3.))

    def init_state(self, *args, **kwargs):
      self.h = bs.HiddenState(jnp.zeros(3))

    def __call__(self, x):
      self.h.value = self.h.value + x * self.w.value
      return jnp.sum(self.h.value ** 2)

  m = M()
  bs.nn.init_all_states(m)
  params = m.states(bs.ParamState)
  x = jnp.array([1., 2., 3.])

  def loss():
    bs.nn.init_all_states(m)
    return m(x)

  f = lambda: bs.transform.grad(loss, params)()  # noqa: E731
  grads = (bs.transform.jit(f) if under_jit else f)()
  ref_grad = jax.grad(lambda w: jnp.sum((x * w) ** 2))(jnp.arange(3.))
  np.testing.assert_allclose(grads[('w',)], ref_grad)
  assert not isinstance(m.h.value, jax.core.Tracer)
  np.testing.assert_allclose(m.h.value, x * jnp.arange(3.))
