"""Control flow (cond / switch / ifelse / scan / for_loop / while loops / ProgressBar).

Most tests are differential: the same program is written once against a
``lib`` namespace and run with real BrainState 0.5.4 and with brainstate_nnx;
outputs and final State values must agree.
"""

import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bs
from conftest import assert_close

def _api(lib):
  """``lib`` with a ``T`` namespace holding the transforms under test."""
  T = lib.transform
  return types.SimpleNamespace(
    name=lib.__name__, State=lib.State, ShortTermState=lib.ShortTermState,
    HiddenState=lib.HiddenState, ParamState=lib.ParamState, T=T,
  )


@pytest.fixture
def T():
  return _api(bs).T


@pytest.fixture
def libs(bst):
  """``(brainstate_nnx api, brainstate api)``."""
  return _api(bs), _api(bst)


def _assert_same(mine, theirs):
  assert_close(mine, theirs)


def _differential(libs, program):
  mine, theirs = (program(lib) for lib in libs)
  _assert_same(mine, theirs)
  return mine


# --------------------------------------------------------------------------
# conditionals
# --------------------------------------------------------------------------

def _cond_one_branch_writes(lib):
  T = lib.T
  a = lib.State(jnp.asarray(1.0))
  b = lib.State(jnp.asarray(2.0))
  r = lib.State(jnp.asarray(0.0))

  def true_fn(x):
    a.value = b.value + x
    return x * 2

  def false_fn(x):
    r.value = a.value + 1.0
    return -x

  res = []
  for pred in (True, False, jnp.asarray(1), 0):
    out = T.cond(pred, true_fn, false_fn, jnp.float32(3.0))
    res.append((out, a.value, b.value, r.value))

  @T.jit
  def step(pred, x):
    def t():
      a.value = b.value + x

    def f():
      b.value = a.value * 10.0

    T.cond(pred, t, f)
    return a.value + b.value

  for pred in (True, False, True):
    res.append((step(jnp.asarray(pred), 3.0), a.value, b.value))
  return res


def test_cond_state_written_in_one_branch(libs):
  res = _differential(libs, _cond_one_branch_writes)
  assert not isinstance(res[0][1], jax.core.Tracer)


def test_cond_untouched_in_other_branch_and_read_only(libs):
  def program(lib):
    T = lib.T
    a = lib.State(jnp.asarray(1.0))
    c = lib.State(jnp.asarray(4.0))

    def times10():
      a.value = a.value * 10.0

    out = [T.cond(False, times10, lambda: None), a.value,
           T.cond(True, times10, lambda: None), a.value,
           T.cond(True, lambda: c.value + 1.0, lambda: c.value - 1.0), c.value]
    return [x for x in out if x is not None]

  _differential(libs, program)


def _switch_program(lib):
  T = lib.T
  a = lib.State(jnp.asarray(1.0))
  c = lib.State(jnp.asarray(10.0))
  n = lib.State(jnp.asarray(0))

  def write_a(x):
    a.value = x * 2.0
    return x + a.value

  def write_c(x):
    c.value = a.value + x
    n.value += 1
    return x - c.value

  def read_only(x):
    return a.value + c.value + x

  branches = [write_a, write_c, read_only]
  res = []
  for i in (0, 1, 2, -3, 7, jnp.asarray(1)):
    res.append((T.switch(i, branches, jnp.float32(3.0)), a.value, c.value, n.value))
  f = T.jit(lambda i, x: T.switch(i, branches, x) + a.value)
  for i in (1, 0, 2):
    res.append((f(jnp.asarray(i), jnp.float32(2.0)), a.value, c.value, n.value))
  return res


def test_switch_three_branches(libs):
  _differential(libs, _switch_program)


def test_ifelse(libs):
  def program(lib):
    T = lib.T
    a = lib.State(jnp.asarray(0.0))

    def grade(x):
      def positive():
        a.value = a.value + x
        return 1.0

      return T.ifelse([x > 0, x == 0, x < 0], [positive, lambda: 0.0, lambda: -1.0])

    g = T.jit(grade)
    out = [grade(jnp.asarray(2.0)), a.value, g(jnp.asarray(-1.0)), a.value,
           g(jnp.asarray(5.0)), a.value, g(jnp.asarray(0.0)), a.value,
           T.ifelse([True, True], [lambda: 1, lambda: 2], check_cond=False),
           T.ifelse([False, False], [lambda: 1, lambda: 2], check_cond=False),
           T.ifelse([True], [lambda x: x + 1], 5)]
    return out

  _differential(libs, program)


def test_conditions_under_vmap_and_grad(libs):
  def program(lib):
    T = lib.T
    branches = [lambda x: x + 1.0, lambda x: x * 10.0, lambda x: x ** 2]
    sw = jax.vmap(lambda i, x: T.switch(i, branches, x))(jnp.array([0, 1, 2]), jnp.ones(3) * 3)
    ie = jax.vmap(lambda a: T.ifelse([a > 5, jnp.logical_and(a <= 5, a > 0), a <= 0],
                                     [lambda: 2.0, lambda: 1.0, lambda: 0.0]))(
      jnp.array([-2.0, 3.0, 8.0]))

    def f(x):
      return T.ifelse((x >= 10, x < 10), [lambda x: x, lambda x: x ** 2], x)

    w = lib.ParamState(jnp.array(3.0))

    def loss(x):
      return T.cond(x > 0, lambda: w.value * x, lambda: w.value ** 2)

    g = T.grad(loss, w)
    return sw, ie, jax.grad(f)(9.0), jax.grad(f)(11.0), g(2.0), g(-1.0)

  _differential(libs, program)


def test_cond_validation(T, bst):
  for t in (T, bst.transform):
    with pytest.raises(TypeError):
      t.cond(True, 1, 2)
    with pytest.raises(TypeError):
      t.cond(None, lambda: 1, lambda: 2)
    with pytest.raises(TypeError):
      t.cond(jnp.array([True, False]), lambda: 1, lambda: 2)
    with pytest.raises(TypeError):
      t.cond(1 + 2j, lambda: 1, lambda: 2)
    with pytest.raises(TypeError):
      t.switch(1.5, [lambda x: x, lambda x: x], 1.0)
    with pytest.raises(TypeError):
      t.switch(0, [lambda x: x, 5], 1.0)
    with pytest.raises(ValueError):
      t.switch(0, [], 1.0)
    with pytest.raises(ValueError):
      t.ifelse([True, False], [lambda: 42.0])
    with pytest.raises(ValueError):
      t.ifelse([], [])


def test_branch_output_mismatch_raises(T, bst):
  for t in (T, bst.transform):
    with pytest.raises(TypeError):
      t.cond(True, lambda x: (x, x), lambda x: x, 1.0)
    with pytest.raises(TypeError):
      t.cond(True, lambda x: x, lambda x: jnp.int32(1), 1.0)
    with pytest.raises(TypeError):
      t.switch(1, [lambda x: x, lambda x: x, lambda x: jnp.ones(3)], 1.0)
  with pytest.raises(TypeError, match='true_fun'):
    T.cond(True, lambda x: {'a': x}, lambda x: [x], 1.0)


def test_ifelse_not_exclusive_raises(T):
  with pytest.raises(ValueError, match='exactly one'):
    T.ifelse([True, True], [lambda: 1, lambda: 2])
  f = T.jit(lambda x: T.ifelse([x > 0, x > 1], [lambda: 1.0, lambda: 2.0]))
  assert float(f(0.5)) == 1.0
  with pytest.raises(Exception, match='exactly one'):
    f(3.0)
    jax.effects_barrier()


def test_disable_jit_paths(libs):
  def program(lib):
    T = lib.T
    a = lib.State(jnp.array(0.0))

    def body(v):
      a.value = a.value + 1.0
      return v + 1.0

    with jax.disable_jit():
      out = [T.cond(True, lambda: 1.0, lambda: 2.0),
             T.switch(1, [lambda x: x, lambda x: x + 100], 1.0),
             T.while_loop(lambda v: a.value < 5, body, 0.0), a.value,
             T.scan(lambda c, x: (c + x, c * x), 0.0, jnp.arange(1.0, 4.0), reverse=True),
             jax.vmap(lambda p, x: T.cond(p, lambda v: v + 1.0, lambda v: v - 1.0, x))(
               jnp.array([True, False]), jnp.array([10.0, 20.0]))]
    return out

  _differential(libs, program)


# --------------------------------------------------------------------------
# loops
# --------------------------------------------------------------------------

def test_for_loop_counters(libs):
  def program(lib):
    T = lib.T
    a = lib.ShortTermState(0.0)
    b = lib.ShortTermState(0.0)
    n = lib.State(jnp.array(0))

    def f(i):
      a.value += 1 + b.value
      n.value = n.value + i
      return a.value

    r1 = T.for_loop(f, np.arange(10))
    r2 = T.for_loop(f, jnp.arange(4), reverse=True, unroll=2)
    r3 = T.for_loop(lambda x, y: x * y + a.value, jnp.arange(3.0), jnp.ones(3))
    return r1, r2, r3, a.value, b.value, n.value

  _differential(libs, program)


def _lif(lib, jit: bool):
  """A leaky integrate-and-fire neuron driven by a current, run with for_loop."""
  T = lib.T
  V = lib.HiddenState(jnp.zeros(3))
  spk_count = lib.State(jnp.zeros(3))
  tau, v_th, dt = 10.0, 1.0, 0.5

  def step(t, current):
    v = V.value + dt / tau * (-V.value + current)
    spike = (v >= v_th).astype(jnp.float32)
    V.value = jnp.where(spike > 0, 0.0, v)
    spk_count.value = spk_count.value + spike
    return spike, V.value * t

  currents = jnp.stack([jnp.linspace(0.5, 4.0, 3)] * 60)
  ts = jnp.arange(60.0)
  run = lambda: T.for_loop(step, ts, currents)
  if jit:
    run = T.jit(run)
  spikes, vs = run()
  spikes2, _ = run()  # continues from the final State values
  return spikes, vs, spikes2, V.value, spk_count.value


@pytest.mark.parametrize('jit', [False, True])
def test_lif_neuron(libs, jit):
  spikes = _differential(libs, lambda lib: _lif(lib, jit))[0]
  assert spikes.shape == (60, 3) and spikes[:, 0].sum() == 0 and spikes[:, 2].sum() > 3


def test_scan_carry_and_states(libs):
  def program(lib):
    T = lib.T
    acc = lib.ShortTermState(jnp.asarray(0.0))
    hist = lib.State(jnp.zeros(2))

    def f(carry, x):
      acc.value = acc.value + x
      hist.value = jnp.stack([hist.value[1], acc.value])
      return {'a': carry['a'] + x, 'b': carry['b'] * 2}, (carry['a'] * x, hist.value)

    c1, ys1 = T.scan(f, {'a': 0.0, 'b': jnp.float32(1.0)}, jnp.arange(1.0, 6.0))
    c2, ys2 = T.scan(f, {'a': 0.0, 'b': jnp.float32(1.0)}, jnp.arange(1.0, 4.0), reverse=True)
    c3, ys3 = T.scan(lambda c, _: (c + acc.value, c), 0.0, None, length=3)
    c4, ys4 = T.checkpointed_scan(f, {'a': 0.0, 'b': jnp.float32(1.0)}, jnp.arange(5.0), base=2)
    return c1, ys1, c2, ys2, c3, ys3, c4, ys4, acc.value, hist.value

  _differential(libs, program)


def test_checkpointed_for_loop(libs):
  def program(lib):
    T = lib.T
    a = lib.ShortTermState(0.0)

    def f(i):
      a.value += 1.0
      return a.value * i

    out = [T.checkpointed_for_loop(f, jnp.arange(18.0), base=2), a.value,
           T.checkpointed_for_loop(f, jnp.arange(5.0)), a.value,
           T.checkpointed_for_loop(lambda x, y: x * y, jnp.arange(4.0), jnp.arange(4.0), base=3)]
    return out

  _differential(libs, program)


def test_while_loops(libs):
  def program(lib):
    T = lib.T
    i = lib.State(jnp.array(0))
    a = lib.State(1.0)
    b = lib.State(20.0)

    def body(v):
      i.value = i.value + 1
      a.value += v
      return v * 1.5

    out = [T.while_loop(lambda v: a.value < b.value, body, 1.0), i.value, a.value]
    out += [T.while_loop(lambda v: v[0] < 5, lambda v: (v[0] + 1, v[1] * 2), (0, 1.0))]
    out += [T.jit(lambda: T.while_loop(lambda v: i.value < 20, body, 1.0))(), i.value]
    cnt = lib.State(jnp.asarray(0.0))

    def cbody(x):
      cnt.value = cnt.value + 1.0
      return x + 10.0

    out += [T.bounded_while_loop(lambda x: cnt.value < 3.0, cbody, 0.0, max_steps=8, base=2),
            cnt.value,
            T.bounded_while_loop(lambda x: cnt.value < 1000.0, cbody, 0.0, max_steps=5, base=2),
            cnt.value,
            T.bounded_while_loop(lambda v: v < 3.0, lambda v: v + 5.0, 100.0, max_steps=1),
            T.bounded_while_loop(lambda v: v < 10, lambda v: v + 1, 3.0, max_steps=0)]
    for init in (0.0, 50.0, 200.0):
      for steps, base in ((1, 16), (3, 2), (10, 16), (100, 4)):
        out.append(T.bounded_while_loop(lambda x: x < 100.0, lambda x: x * 2.0 + 1.0,
                                        init, max_steps=steps, base=base))
    return out

  _differential(libs, program)


def test_nested_loops_inside_jit(libs):
  def program(lib):
    T = lib.T
    w = lib.ParamState(jnp.array([0.5, -1.0]))
    h = lib.HiddenState(jnp.zeros(2))
    total = lib.State(jnp.array(0.0))
    n_reset = lib.State(jnp.array(0))

    def inner(x):
      h.value = jnp.tanh(h.value * w.value + x)
      return h.value.sum()

    def reset():
      h.value = jnp.zeros(2)
      n_reset.value += 1

    def outer(row):
      s = T.for_loop(inner, row)
      total.value = total.value + s.sum()
      T.cond(total.value > 1.0, reset, lambda: None)
      return s

    run = T.jit(lambda xs: T.for_loop(outer, xs))
    xs = jnp.linspace(-1.0, 1.0, 24).reshape(4, 3, 2)
    return run(xs), run(xs * 0.5), h.value, total.value, n_reset.value

  _differential(libs, program)


def test_while_scan_cond_nested_in_for_loop(libs):
  def program(lib):
    T = lib.T
    cnt = lib.State(jnp.array(0))
    acc = lib.State(jnp.array(0.0))

    def outer(x):
      def wbody(v):
        cnt.value += 1
        return v * 2.0

      v = T.while_loop(lambda v: v < 50.0, wbody, x + 1.0)

      def sc(c, y):
        acc.value = acc.value + y * c
        return c + 1.0, acc.value

      c, ys = T.scan(sc, v, jnp.arange(3.0))
      T.cond(c > 60.0, lambda: setattr(acc, 'value', acc.value * 0.5), lambda: None)
      return ys

    r1 = T.for_loop(outer, jnp.arange(4.0))
    r2 = T.jit(lambda: T.for_loop(outer, jnp.arange(4.0)))()
    p = lib.ParamState(jnp.array(1.5))

    def loss():
      def body(x):
        return T.cond(x > 1.0, lambda: p.value * x, lambda: p.value ** 2 * x)
      return T.for_loop(body, jnp.arange(4.0)).sum()

    return r1, r2, cnt.value, acc.value, T.grad(loss, p)(), T.jit(T.grad(loss, p))()

  _differential(libs, program)


def test_grad_through_for_loop_over_params(libs):
  def program(lib):
    T = lib.T
    w = lib.ParamState(jnp.array([[0.5, -0.2], [0.1, 0.3]]))
    b = lib.ParamState(jnp.array([0.1, -0.1]))
    h = lib.HiddenState(jnp.zeros(2))
    xs = jnp.linspace(-1.0, 1.0, 10).reshape(5, 2)

    def loss():
      h.value = jnp.zeros(2)

      def step(x):
        h.value = jnp.tanh(h.value @ w.value + x + b.value)
        return h.value

      return jnp.sum(T.for_loop(step, xs) ** 2)

    grads, value = T.grad(loss, {'w': w, 'b': b}, return_value=True)()
    jitted = T.jit(T.grad(loss, {'w': w, 'b': b}))()

    def sloss():
      h.value = jnp.zeros(2)
      return jnp.sum(T.scan(lambda c, x: (c * w.value[0, 0] + x, c), 0.0, xs[:, 0])[1])

    def closs():
      return jnp.sum(T.checkpointed_for_loop(lambda x: w.value[0] * x, xs, base=2))

    return grads, value, jitted, h.value, T.grad(sloss, w)(), T.grad(closs, w)()

  _differential(libs, program)


def test_grad_through_bounded_while_and_not_while(T, bst):
  for t in (T, bst.transform):
    f = lambda x: t.bounded_while_loop(lambda v: v < 5.0, lambda v: v * 2.0, x,
                                       max_steps=8, base=2)
    assert float(f(1.0)) == 8.0 and float(jax.grad(f)(1.0)) == 8.0
    g = lambda x: t.while_loop(lambda v: v < 5.0, lambda v: v * 2.0, x)
    with pytest.raises(Exception, match='[Rr]everse-mode'):
      jax.grad(g)(1.0)


def test_bsn_vmap_of_for_loop(T):
  v = bs.HiddenState(jnp.zeros(3))

  @T.vmap(in_states=v)
  def run(inp):
    def step(x):
      v.value = v.value * 0.5 + x
      return v.value
    return T.for_loop(step, jnp.ones(4) * inp)

  out = run(jnp.array([1.0, 2.0, 3.0]))
  np.testing.assert_allclose(out[:, -1], [1.875, 3.75, 5.625])
  np.testing.assert_allclose(v.value, [1.875, 3.75, 5.625])

  # a batched predicate: each lane takes its own branch
  @T.vmap(in_states=v)
  def clip(x):
    T.cond(x > 0, lambda: setattr(v, 'value', v.value * 0), lambda: None)
    return v.value

  np.testing.assert_allclose(clip(jnp.array([1.0, -1.0, 1.0])), [0.0, 3.75, 0.0])
  np.testing.assert_allclose(v.value, [0.0, 3.75, 0.0])


def test_loop_validation(T, bst):
  for t in (T, bst.transform):
    with pytest.raises(TypeError):
      t.scan(42, 0.0, jnp.arange(3.0))
    with pytest.raises(ValueError):
      t.scan(lambda c, x: (c, x), 0.0, [1, 2, 3])
    with pytest.raises(ValueError):
      t.scan(lambda c, x: (c, x[0]), 0.0, (jnp.arange(3.0), jnp.arange(4.0)))
    with pytest.raises(ValueError):
      t.scan(lambda c, x: (c, x), 0.0, [])
    with pytest.raises(ValueError):
      t.scan(lambda c, x: (c, x), 0.0, jnp.arange(5.0), length=3)
    with pytest.raises(TypeError):
      t.scan(lambda c, x: (c, x), 0.0, jnp.arange(4.0), pbar='invalid')
    for bad in ((lambda c, x: c + x), (lambda c, x: (c, x, x))):
      with pytest.raises(ValueError):
        t.checkpointed_scan(bad, 0.0, jnp.arange(4.0))
    with pytest.raises(ValueError, match='length'):
      t.checkpointed_scan(lambda c, x: (c, c), 0.0, jnp.zeros((0,)))
    for base in (1, 0, -2, True):
      with pytest.raises(ValueError, match='base'):
        t.checkpointed_scan(lambda c, x: (c, c), 0.0, jnp.arange(5.0), base=base)
      with pytest.raises(ValueError, match='base'):
        t.bounded_while_loop(lambda v: v < 3, lambda v: v + 1, 0, max_steps=10, base=base)
    with pytest.raises(ValueError):
      t.bounded_while_loop(lambda v: True, lambda v: v, 0.0, max_steps=-1)
    with pytest.raises(TypeError):
      t.while_loop(1, lambda v: v, 0.0)
    a = bst.State(jnp.array(0.0)) if t is bst.transform else bs.State(jnp.array(0.0))

    def bad_cond(v):
      a.value = a.value + 1.0
      return a.value < 5

    with pytest.raises(ValueError):
      t.while_loop(bad_cond, lambda v: v, 0.0)
    with pytest.raises(ValueError):
      t.bounded_while_loop(bad_cond, lambda v: v, 0.0, max_steps=10)
    assert float(a.value) == 0.0


# --------------------------------------------------------------------------
# brainstate_nnx-specific errors
# --------------------------------------------------------------------------

def _changes_on_retrace(st):
  """A body that writes ``st`` only from its second trace on.

  ``st`` sits behind a plain object, which the walk for a loop's States does
  not enter: the loop probes the body first, then traces it again (a body
  reaching its States through closures is traced once and cannot change).
  """
  calls = []
  holder = types.SimpleNamespace(st=st)

  def body(*args):
    calls.append(1)
    if len(calls) > 1:
      holder.st.value = holder.st.value + 1.0
    return args[-1] if args else jnp.float32(0.0)

  return body


def test_write_to_undiscovered_state_raises(T):
  hidden = bs.State(jnp.array(0.0), name='hidden')
  # (a loop body that can reach its States is traced once, so it cannot take
  # another path on a second trace; one that reaches them through an object
  # the walk does not enter is probed first, then traced)
  holder = types.SimpleNamespace(st=hidden)
  calls = []

  def body(x):
    calls.append(1)
    if len(calls) > 1:
      holder.st.value = holder.st.value + 1.0
    return x

  with pytest.raises(bs.BrainStateError, match='hidden'):
    T.for_loop(body, jnp.arange(3.0))
  with pytest.raises(bs.BrainStateError, match='hidden'):
    T.cond(True, _changes_on_retrace(hidden), lambda x: x, jnp.float32(1.0))
  with pytest.raises(bs.BrainStateError, match='hidden'):
    T.while_loop(lambda v: v < 3.0, _changes_on_retrace(hidden), 0.0)
  with pytest.raises(bs.BrainStateError, match='hidden'):
    T.jit(lambda: T.switch(1, [lambda: 0.0, _changes_on_retrace(hidden)]))()
  assert float(hidden.value) == 0.0
  assert not isinstance(hidden.value, jax.core.Tracer)

  # read on every trace, written only on the second one
  seen = bs.State(jnp.array(1.0), name='seen')
  box = types.SimpleNamespace(seen=seen)
  calls = []

  def body(x):
    calls.append(1)
    if len(calls) > 1:
      box.seen.value = x
    return x + box.seen.value

  with pytest.raises(bs.BrainStateError, match='seen'):
    T.scan(lambda c, x: (c, body(x)), 0.0, jnp.arange(2.0))
  assert float(seen.value) == 1.0


def test_write_to_state_passed_as_operand_raises(T):
  s = bs.State(jnp.array(1.0))

  def branch(st):
    st.value = st.value + 1.0

  with pytest.raises(TypeError, match='argument'):
    T.cond(True, branch, lambda st: None, s)


def test_state_read_under_raw_jax_jit_raises(T):
  s = bs.State(jnp.array(1.0))
  with pytest.raises(bs.TraceContextError):
    jax.jit(lambda x: T.cond(x > 0, lambda: s.value, lambda: -s.value))(1.0)


def test_while_cond_may_not_write_at_run_time(T):
  s = bs.State(jnp.array(0.0), name='s')
  box = types.SimpleNamespace(s=s)    # not walked: the loop probes, then traces
  calls = []

  def cond_fun(v):
    calls.append(1)
    if len(calls) > 1:
      box.s.value = box.s.value + 1.0
    return v < 3.0

  with pytest.raises(ValueError, match='must not write'):
    T.while_loop(cond_fun, lambda v: v + 1.0, 0.0)


# --------------------------------------------------------------------------
# ProgressBar
# --------------------------------------------------------------------------

def test_progress_bar_validation(T, bst):
  for PB in (T.ProgressBar, bst.transform.ProgressBar):
    with pytest.raises(ValueError):
      PB(freq=-3)
    with pytest.raises(ValueError):
      PB(freq=2, count=2)
    with pytest.raises(TypeError):
      PB(desc=3)
    with pytest.raises(ValueError):
      PB(desc=('a', lambda d: d, 1))
    with pytest.raises(TypeError):
      PB(desc=('a', 3))
    assert PB(freq=2).print_freq == 2
  with pytest.raises(ValueError):
    T.for_loop(lambda x: x, jnp.arange(4.0), pbar=T.ProgressBar(count=100))
  with pytest.raises(ValueError):
    T.for_loop(lambda x: x, jnp.arange(4.0), pbar=T.ProgressBar(freq=100))


def test_progress_bar_output(T, capsys):
  n = bs.State(jnp.array(0))

  def step(x):
    n.value += 1
    return x * 2

  ys = T.for_loop(step, jnp.arange(10.0), pbar=T.ProgressBar(freq=3, desc='run'))
  jax.effects_barrier()
  np.testing.assert_allclose(ys, np.arange(10.0) * 2)
  err = capsys.readouterr().err
  assert 'run' in err and '10/10' in err and '100%' in err and '3/10' in err
  assert '11/10' not in err

  fmt = ('iter {i} carry={c:.1f}', lambda d: {'i': d['i'], 'c': d['carry']})
  run = T.jit(lambda xs: T.scan(lambda c, x: (c + x, c), 0.0, xs, pbar=T.ProgressBar(desc=fmt)))
  carry, _ = run(jnp.arange(6.0))
  jax.effects_barrier()
  assert float(carry) == 15.0
  err = capsys.readouterr().err
  assert 'iter 5 carry=15.0' in err and '6/6' in err

  T.checkpointed_for_loop(step, jnp.arange(5.0), base=2, pbar=2)
  jax.effects_barrier()
  err = capsys.readouterr().err
  assert '5/5' in err and '6/5' not in err
  assert int(n.value) == 15


def test_random_draws_in_loops_and_branches(bst):
  def program(lib):
    T = _api(lib).T
    lib.random.seed(0)
    a = T.for_loop(lambda x: lib.random.rand(2) + x, jnp.arange(3.0))
    b = T.cond(True, lambda: lib.random.rand(3), lambda: lib.random.rand(3))
    c = T.cond(False, lambda: lib.random.rand(3), lambda: jnp.zeros(3))  # key unchanged
    return a, b, c, lib.random.rand(2)

  _assert_same(program(bs), program(bst))


def test_cond_under_grad_reading_unowned_state():
  import brainstate_nnx as bsn
  w = bsn.ParamState(jnp.array([1., 2.]))
  c = bsn.State(jnp.array(0.5))
  f = lambda x: bsn.transform.cond(
    x.sum() > 0, lambda: (w.value * x).sum() + c.value, lambda: 0.0)
  g = bsn.transform.grad(f, w)(jnp.ones(2))
  np.testing.assert_allclose(g, [1.0, 1.0])
  g = bsn.transform.jit(lambda x: bsn.transform.grad(f, w)(x))(jnp.ones(2))
  np.testing.assert_allclose(g, [1.0, 1.0])


# --------------------------------------------------------------------------
# nested control flow: the dry-run shortcut
# --------------------------------------------------------------------------
#
# A control-flow transform called inside the abstract dry run of an enclosing
# one (the innermost frame is a ProbeFrame) runs its function(s) once
# directly instead of probing them and tracing them again in a JAX
# primitive. The innermost body of k nested loops is then traced k + 1 times
# (2 ** k before); jit's first call traces once.


def _full_path_only(monkeypatch):
  """Disables the shortcut: every nested call probes and builds its primitive."""
  # the switch is internal: reach it through the modules defining cond / for_loop
  for public in (bs.transform.cond, bs.transform.for_loop):
    monkeypatch.setattr(sys.modules[public.__module__], 'in_dry_run', lambda: False)


def _count_nested_for_loops(T, depth, jit, lib=bs):
  V = lib.HiddenState(jnp.zeros(3))
  count = [0]

  def leaf(i):
    count[0] += 1
    V.value = jnp.tanh(V.value + i)
    return V.value.sum()

  body = leaf
  for _ in range(depth - 1):
    body = (lambda inner: lambda i: T.for_loop(inner, jnp.arange(3.0) + i).sum())(body)
  run = lambda: T.for_loop(body, jnp.arange(3.0))
  out = T.jit(run)() if jit else run()
  return count[0], out, V.value


@pytest.mark.parametrize('jit', [False, True])
def test_nested_for_loop_trace_count(T, bst, jit):
  # a loop body that reaches its States through closures is traced once, at
  # every nesting depth, as in BrainState (which traces every body once)
  ours = {d: _count_nested_for_loops(T, d, jit) for d in (1, 2, 3)}
  theirs = {d: _count_nested_for_loops(bst.transform, d, jit, lib=bst) for d in (1, 2, 3)}
  assert [ours[d][0] for d in (1, 2, 3)] == [theirs[d][0] for d in (1, 2, 3)] == [1, 1, 1]
  for d in (1, 2, 3):
    _assert_same(ours[d][1:], theirs[d][1:])


def test_loop_body_reaching_states_indirectly_is_probed(T):
  # States behind an object the walk does not enter: probed, then traced
  V = bs.HiddenState(jnp.zeros(3))
  holder = types.SimpleNamespace(V=V)
  count = [0]

  def leaf(i):
    count[0] += 1
    holder.V.value = jnp.tanh(holder.V.value + i)
    return holder.V.value.sum()

  out = T.for_loop(leaf, jnp.arange(3.0))
  assert count[0] == 2
  v, expect = jnp.zeros(3), []
  for i in range(3):
    v = jnp.tanh(v + i)
    expect.append(v.sum())
  assert_close(out, jnp.stack(expect))
  assert_close(V.value, v)


def test_nested_mixed_control_flow_trace_count(T, monkeypatch):
  def program():
    n = {'t': 0, 'f': 0, 'body': 0}
    s = bs.State(jnp.array(0.0))

    def t():
      n['t'] += 1
      s.value = s.value + 1.0

    def f():
      n['f'] += 1

    def wbody(v):
      n['body'] += 1
      T.cond(v > 2.0, t, f)
      return v * 2.0

    out = T.for_loop(lambda x: T.while_loop(lambda v: v < 10.0, wbody, x + 1.0),
                     jnp.arange(3.0))
    return n, out, s.value

  new = program()
  with monkeypatch.context() as m:
    _full_path_only(m)
    old = program()
  # cond in while_loop in for_loop: the loop bodies are traced once (see
  # test_nested_for_loop_trace_count), the cond probes its branches and
  # traces them: no loop runs a dry run any more, so the shortcut is unused
  assert new[0] == old[0] == {'t': 2, 'f': 2, 'body': 1}
  _assert_same(new[1:], old[1:])


def _nested_program(lib):
  T = lib.T
  V = lib.HiddenState(jnp.zeros(3))
  n = lib.State(jnp.array(0))
  flag = lib.State(jnp.array(0.0))
  acc = lib.State(jnp.array(0.0))

  def leaf(i):
    V.value = jnp.tanh(V.value * 0.9 + i)
    return V.value.sum()

  def mid(i):
    s = T.for_loop(leaf, jnp.arange(3.0) + i)
    # a State written in only one branch (the true one) of a nested cond
    T.cond(s.sum() > 2.0, lambda: setattr(flag, 'value', flag.value + 1.0), lambda: None)
    return s.sum()

  def outer(i):
    return T.for_loop(mid, jnp.arange(2.0) * i - 1.0)

  res = [T.for_loop(outer, jnp.arange(3.0)),
         T.jit(lambda xs: T.for_loop(outer, xs))(jnp.arange(3.0) * 0.5),
         V.value, flag.value]

  # a while_loop inside a scan
  def sc(c, x):
    def wbody(v):
      n.value += 1
      return v * 2.0

    v = T.while_loop(lambda v: v < 10.0, wbody, c + x)
    acc.value = acc.value + v
    return c + 1.0, v

  res += [T.scan(sc, 1.0, jnp.arange(4.0)),
          T.jit(lambda: T.scan(sc, 0.5, jnp.arange(3.0)))(), n.value, acc.value]

  # a switch and a bounded while loop inside a checkpointed loop inside a for_loop
  def inner(x):
    def grow(v):
      acc.value = acc.value + 1.0
      return v + 3.0

    v = T.bounded_while_loop(lambda v: v < 7.0, grow, x, max_steps=4, base=2)
    idx = (v > 8.0).astype(jnp.int32) + (v > 9.0).astype(jnp.int32)
    return T.switch(idx, [lambda: v, lambda: -v, lambda: setattr(n, 'value', n.value + 1) or v],)

  res += [T.for_loop(lambda r: T.checkpointed_for_loop(inner, r, base=2), jnp.arange(6.0).reshape(2, 3)),
          acc.value, n.value]
  return res


def test_nested_control_flow_results(libs):
  _differential(libs, _nested_program)


def test_nested_control_flow_same_as_full_path(monkeypatch):
  api = _api(bs)
  new = _nested_program(api)
  with monkeypatch.context() as m:
    _full_path_only(m)
    old = _nested_program(api)
  _assert_same(new, old)


def _grad_nested_program(lib):
  T = lib.T
  w = lib.ParamState(jnp.array([0.5, -0.3]))
  h = lib.HiddenState(jnp.zeros(2))
  xs = jnp.linspace(-1.0, 1.0, 12).reshape(2, 3, 2)

  def loss():
    h.value = jnp.zeros(2)

    def inner(x):
      h.value = jnp.tanh(h.value * w.value + x)
      return T.cond(h.value.sum() > 0, lambda: h.value.sum() * w.value[0],
                    lambda: h.value.sum())

    def outer(row):
      return T.for_loop(inner, row).sum()

    return T.for_loop(outer, xs).sum()

  def closs():
    def outer(row):
      return T.checkpointed_for_loop(lambda x: (w.value * x).sum(), row, base=2).sum()

    return T.for_loop(outer, xs).sum()

  return (T.grad(loss, w)(), T.jit(T.grad(loss, w))(), h.value,
          T.grad(closs, w)(), T.jit(T.grad(closs, w))())


def test_grad_through_nested_loops(libs):
  _differential(libs, _grad_nested_program)


def test_grad_through_nested_loops_same_as_full_path(monkeypatch):
  api = _api(bs)
  new = _grad_nested_program(api)
  with monkeypatch.context() as m:
    _full_path_only(m)
    old = _grad_nested_program(api)
  _assert_same(new, old)


def _avals(tree):
  return jax.tree.map(lambda x: str(jax.typeof(x)), tree)


def _weak_strong_cases():
  """``(name, make)``; ``make()`` -> (call, States) mixing weak and strong types."""
  weak, strong = (lambda: 1.0), (lambda: jnp.float32(1.0))
  cases = []

  def loops(init_weak, body_weak):
    def make():
      T = _api(bs).T
      a = bs.State(1.0)
      b = bs.State(jnp.zeros(2))
      inc = (lambda: 1.0) if body_weak else (lambda: jnp.float32(1.0))

      def f(c, x):
        a.value = a.value + inc()
        b.value = b.value * 2
        return c * 2.0 + inc(), (c, 1.0, jnp.int32(1), x)

      def body(v):
        a.value = a.value + inc()
        return v * 2.0 + inc()

      init = (weak if init_weak else strong)()
      calls = lambda: (
        T.scan(f, init, np.arange(3)),
        T.checkpointed_scan(f, init, jnp.arange(3.0), base=2),
        T.for_loop(lambda x: f(init, x)[1], jnp.arange(3.0)),
        T.checkpointed_for_loop(lambda x: f(init, x)[1], jnp.arange(3.0), base=2),
        T.while_loop(lambda v: v < 5.0, body, init),
        T.bounded_while_loop(lambda v: v < 5.0, body, init, max_steps=5, base=2),
      )
      return calls, [a, b]

    return make

  for iw in (False, True):
    for bw in (False, True):
      cases.append((f'loops-init{"weak" if iw else "strong"}-body{"weak" if bw else "strong"}',
                    loops(iw, bw)))

  def branches():
    T = _api(bs).T
    a, b, c = bs.State(1.0), bs.State(2.0), bs.State(jnp.ones(2))

    def b0(x):
      b.value = b.value * jnp.float32(2.0)
      return x * 2.0, 1.0

    def b1(x):
      a.value = a.value + jnp.float32(1.0)
      c.value = c.value + 1
      return x + jnp.float32(1.0), jnp.float32(2.0)

    def b2(x):
      return x, 3.0

    def calls():
      p = jnp.zeros(()) > 0
      return (T.cond(p, b1, b0, 3.0), T.switch(p.astype(jnp.int32), [b0, b1, b2], 3.0),
              T.ifelse([p, ~p], [lambda: 1.0, lambda: b1(jnp.float32(0.0))[0]]))

    return calls, [a, b, c]

  cases.append(('branches', branches))
  return cases


@pytest.mark.parametrize('name,make', _weak_strong_cases(), ids=lambda x: x if isinstance(x, str) else '')
@pytest.mark.parametrize('created_inside', [False, True])
def test_dry_run_gives_the_primitives_abstract_values(name, make, created_inside):
  """Outputs and State values after a call: same shapes, dtypes and weak types."""
  box = {}

  def program(key, made):
    calls, states = made or make()
    out = calls()
    box[key] = (_avals(out), _avals([st.get_raw_value() for st in states]))

  made = None if created_inside else make()
  bs.transform.StateFinder(lambda: program('dry', made))()  # the shortcut
  made = None if created_inside else make()
  bs.transform.jit(lambda: program('full', made))()  # probe + primitive
  assert box['dry'] == box['full']


def test_nested_calls_in_dry_runs(T):
  a = bs.State(jnp.zeros(2), name='a')
  b = bs.State(jnp.array(1.0), name='b')
  c = bs.State(jnp.array(3.0), name='c')

  def step(x):
    def body(v):
      a.value = a.value + v
      return v * 2.0

    v = T.while_loop(lambda v: v.sum() < c.value, body, x)
    T.cond(v.sum() > 0, lambda: setattr(b, 'value', b.value + 1.0), lambda: None)
    return jnp.outer(v, a.value)

  run = lambda x: T.for_loop(step, x)
  found = bs.transform.StateFinder(run, usage='both', return_type='list')(jnp.ones((4, 2)))
  assert [id(s) for s in found['read']] == [id(c)]
  assert sorted(id(s) for s in found['write']) == sorted([id(a), id(b)])
  shapes, out = bs.transform.eval_shape(run, jnp.ones((4, 2)), return_state_shapes=True)
  assert out.shape == (4, 2, 2) and out.dtype == jnp.float32
  assert shapes[a].shape == (2,) and shapes[b].shape == ()
  assert not np.any(np.asarray(a.value)) and float(b.value) == 1.0

  # a cond_fun that writes is still rejected inside an enclosing loop
  def bad_cond(v):
    b.value = b.value + 1.0
    return v < 3.0

  with pytest.raises(ValueError, match='must not write'):
    T.for_loop(lambda x: T.while_loop(bad_cond, lambda v: v + 1.0, x), jnp.arange(3.0))
  with pytest.raises(ValueError, match='must not write'):
    T.scan(lambda cr, x: (cr, T.bounded_while_loop(bad_cond, lambda v: v + 1.0, x, max_steps=3)),
           0.0, jnp.arange(3.0))
  assert float(b.value) == 1.0
  # branch outputs are still checked
  with pytest.raises(TypeError, match='true_fun'):
    T.for_loop(lambda x: T.cond(x > 0, lambda: {'a': x}, lambda: [x]), jnp.arange(3.0))


def test_loop_body_drawing_from_default_rng_traced_once(bst):
  # the default random stream is not reached through a closure; a loop still
  # traces its body once, and draws what BrainState draws
  def program(lib):
    lib.random.seed(7)
    s = lib.State(jnp.zeros(3))
    count = [0]

    def body(i):
      count[0] += 1
      s.value = s.value + lib.random.randn(3) * i
      return s.value.sum()

    out = lib.transform.for_loop(body, jnp.arange(4.0))
    return count[0], out, s.value

  ours, theirs = program(bs), program(bst)
  assert ours[0] == theirs[0] == 1
  _assert_same(ours[1:], theirs[1:])
