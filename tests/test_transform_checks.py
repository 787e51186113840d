"""Run-time checks and debugging (jit_error_if / checkify / debug_nan / breakpoint_if).

Most tests are differential: the same program is written once against a
``lib`` namespace and run with real BrainState 0.5.4 and with brainstate_nnx;
outputs, error messages and final State values must agree. Where the two
differ on purpose (see the module docstrings), the test says so.
"""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify as jcfy

import brainstate_nnx as bs
from brainstate_nnx import TraceContextError

def _api(lib):
  """``lib`` with a ``T`` namespace holding the transforms under test."""
  T = lib.transform
  return types.SimpleNamespace(name=lib.__name__, State=lib.State, T=T, lib=lib)


@pytest.fixture
def T():
  return _api(bs).T


@pytest.fixture
def libs(bst):
  """``(brainstate_nnx api, brainstate api)``."""
  return _api(bs), _api(bst)


def _np(tree):
  return jax.tree.map(np.asarray, tree)


def _msg(exc_info) -> str:
  return str(exc_info.value)


# --------------------------------------------------------------------------
# exports
# --------------------------------------------------------------------------

def test_error_sets_are_jax_sets(bst):
  for name in ('all_checks', 'user_checks', 'nan_checks', 'div_checks',
               'index_checks', 'float_checks', 'automatic_checks'):
    mine = getattr(bs.transform, name)
    assert mine is getattr(jcfy, name)
    assert mine == getattr(bst.transform, name)
    assert isinstance(mine, frozenset)


# jax.debug.breakpoint flattens the locals of every frame on the stack when
# it is traced; pytest's generators there make JAX warn.
_BREAKPOINT_FRAMES = pytest.mark.filterwarnings(
  "ignore:Python iterable type 'generator':DeprecationWarning")


# --------------------------------------------------------------------------
# jit_error_if
# --------------------------------------------------------------------------

@pytest.mark.parametrize('call, text', [
  (lambda T: T.jit_error_if(True, 'plain error'), 'plain error'),
  (lambda T: T.jit_error_if(jnp.asarray(True), 'value is %d', 42), 'value is 42'),
  (lambda T: T.jit_error_if(True, 'bad value {}', jnp.asarray(5)), 'bad value 5'),
  (lambda T: T.jit_error_if(True, '{} vs {}', 1, 2), '1 vs 2'),
  (lambda T: T.jit_error_if(True, 'got {x}', x=jnp.asarray(3.0)), 'got 3.0'),
  (lambda T: T.jit_error_if(jnp.array([0, 1]) > 0, 'any element: {x}',
                            x=jnp.array([0, 1])), r'any element: \[0 1\]'),
])
def test_jit_error_if_eager_raises_with_message(libs, call, text):
  for api in libs:
    with pytest.raises(Exception, match=text):
      call(api.T)
  # deviation: brainstate_nnx raises the user's ValueError itself when no
  # transformation is active (brainstate wraps it in a JaxRuntimeError).
  with pytest.raises(ValueError, match=text):
    call(libs[0].T)


def test_jit_error_if_eager_callable_and_false(libs):
  def err_f(x):
    raise KeyError(f'custom error {x}')

  for api in libs:
    assert api.T.jit_error_if(False, err_f, 1.0) is None
    assert api.T.jit_error_if(jnp.zeros(3) > 1, 'never') is None
    with pytest.raises(Exception, match='custom error 1.0'):
      api.T.jit_error_if(True, err_f, 1.0)
  with pytest.raises(KeyError):
    libs[0].T.jit_error_if(True, err_f, 1.0)
  with pytest.raises(TypeError):
    libs[0].T.jit_error_if(True, 3)


def test_jit_error_if_in_jit_with_states(libs):
  def program(api):
    T = api.T
    total = api.State(jnp.array(0.0))
    count = api.State(jnp.array(0))

    @T.jit
    def add(x):
      T.jit_error_if(x + total.value > 5.0, 'sum {s} exceeds the limit at step {n}',
                     s=x + total.value, n=count.value)
      total.value = total.value + x
      count.value = count.value + 1
      return total.value * 2

    outs = [add(1.0), add(2.0)]
    with pytest.raises(jax.errors.JaxRuntimeError,
                       match='ValueError: sum 6.0 exceeds the limit at step 2'):
      jax.block_until_ready(add(3.0))
    outs.append(add(0.5))  # still usable after the error
    return _np((outs, total.value, count.value))

  mine, ref = (program(api) for api in libs)
  jax.tree.map(np.testing.assert_array_equal, mine, ref)
  assert float(mine[1]) == 3.5 and int(mine[2]) == 3


def test_jit_error_if_under_vmap(libs):
  for api in libs:
    def f(x):
      api.T.jit_error_if(x > 1, 'bad lanes: {x}', x=x)
      return x * 2

    np.testing.assert_array_equal(jax.vmap(f)(jnp.array([0, 1])), [0, 2])
    with pytest.raises(Exception, match=r'bad lanes: \[0 1 2\]'):
      jax.block_until_ready(jax.vmap(f)(jnp.array([0, 1, 2])))
    with pytest.raises(Exception, match='bad lanes'):
      jax.block_until_ready(jax.vmap(jax.vmap(f))(jnp.array([[0, 1], [2, 0]])))


def test_jit_error_if_under_grad_and_raw_jit(T):
  def loss(x):
    T.jit_error_if(x < 0, 'negative {x}', x=x)
    return x ** 2

  assert float(jax.grad(loss)(3.0)) == 6.0
  assert float(jax.jit(jax.grad(loss))(3.0)) == 6.0
  with pytest.raises(jax.errors.JaxRuntimeError, match='negative -1.0'):
    jax.block_until_ready(jax.jit(loss)(-1.0))


# --------------------------------------------------------------------------
# checkify / check / check_error
# --------------------------------------------------------------------------

def test_checkify_states_written_and_errors(libs):
  def program(api):
    T = api.T
    w = api.State(jnp.array(2.0))     # read only
    acc = api.State(jnp.array(0.0))   # written

    def step(x):
      T.check(x > 0, 'x must be positive, got {v}', v=x)
      acc.value = acc.value + x * w.value
      return x * w.value

    checked = T.checkify(step)
    res = []
    for x in (3.0, -1.0, 2.0):
      err, out = checked(jnp.array(x))
      res.append((err.get(), np.asarray(out), np.asarray(acc.value)))
    assert not isinstance(acc.value, jax.core.Tracer)
    return res, np.asarray(w.value)

  mine, ref = (program(api) for api in libs)
  assert mine[0][1][0] == 'x must be positive, got -1.0 (`check` failed)'
  assert [r[0] for r in mine[0]] == [r[0] for r in ref[0]]
  jax.tree.map(np.testing.assert_array_equal,
               [r[1:] for r in mine[0]], [r[1:] for r in ref[0]])
  assert float(mine[1]) == float(ref[1]) == 2.0
  assert float(mine[0][-1][2]) == 8.0  # writes are kept after a failed check


def test_checkify_inside_jit_with_states(libs):
  def program(api):
    T = api.T
    s = api.State(jnp.array(1.0))
    k = api.State(jnp.array(10.0))

    def f(x):
      T.check(s.value + x < k.value, 'limit crossed: {}', s.value + x)
      s.value = s.value + x
      return s.value

    @T.jit
    def run(x):
      err, out = T.checkify(f)(x)
      return err, out * 2

    res = []
    for x in (2.0, 4.0, 5.0):
      err, out = run(jnp.asarray(x))
      res.append((err.get(), np.asarray(out), np.asarray(s.value)))
    with pytest.raises(jcfy.JaxRuntimeError, match='limit crossed: 12.0'):
      err.throw()
    return res

  mine, ref = (program(api) for api in libs)
  assert [r[0] for r in mine] == [r[0] for r in ref]
  jax.tree.map(np.testing.assert_array_equal, [r[1:] for r in mine], [r[1:] for r in ref])
  assert float(mine[-1][2]) == 12.0


@pytest.mark.parametrize('errors, fn, arg', [
  ('nan_checks', lambda x: jnp.log(x), jnp.array([-1.0, 1.0])),
  ('nan_checks', lambda x: jnp.sin(x) * 2, jnp.array([1.0, 2.0])),
  ('div_checks', lambda x: 10 // x, jnp.array([1, 0])),
  ('index_checks', lambda x: jnp.arange(3)[x], jnp.array(5)),
  ('index_checks', lambda x: jnp.arange(3)[x], jnp.array(1)),
  ('float_checks', lambda x: jnp.log(x) + 1.0 / x, jnp.array([0.0])),
  ('automatic_checks', lambda x: jnp.arange(3.0)[x] / 0.0, jnp.array(7)),
  ('all_checks', lambda x: jnp.log(x), jnp.array(-2.0)),
])
def test_checkify_error_categories(libs, errors, fn, arg):
  results = []
  for api in libs:
    err, out = api.T.checkify(fn, errors=getattr(api.T, errors))(arg)
    results.append((err.get(), np.asarray(out)))
  (m_err, m_out), (r_err, r_out) = results
  assert m_err == r_err
  np.testing.assert_array_equal(m_out, r_out)


def test_checkify_with_states_and_float_checks(libs):
  def program(api):
    T = api.T
    h = api.State(jnp.array([1.0, 4.0]))

    def step(x):
      h.value = jnp.sqrt(h.value - x)
      return jnp.sum(h.value)

    checked = T.checkify(step, errors=T.nan_checks | T.user_checks)
    e1, o1 = checked(1.0)
    e2, o2 = checked(jnp.array(2.0))
    return e1.get(), e2.get(), _np((o1, o2, h.value))

  mine, ref = (program(api) for api in libs)
  assert mine[:2] == ref[:2] == (None, 'nan generated by primitive: sqrt.')
  np.testing.assert_array_equal(mine[2][2], ref[2][2])
  np.testing.assert_array_equal(mine[2][0], ref[2][0])


def test_check_error_propagates(libs):
  for api in libs:
    T = api.T
    inner = T.checkify(lambda x: T.check(x > 0, 'inner failed {}', x))

    def outer(x):
      err, _ = inner(x)
      T.check_error(err)
      return x + 1

    err, out = T.checkify(outer)(jnp.array(-3.0))
    assert err.get() == 'inner failed -3.0 (`check` failed)'
    assert float(out) == -2.0
    assert T.checkify(outer)(jnp.array(3.0))[0].get() is None


def test_checkify_under_jax_transforms(T):
  w = bs.State(jnp.array(3.0))

  def safe(x):
    T.check(x > 0, 'x must be positive')
    return x * 2.0

  err, out = jax.jit(T.checkify(safe))(jnp.array(4.0))
  err.throw()
  assert float(out) == 8.0
  # vmap: one error per lane, read-only States are fine under raw vmap
  errs, outs = jax.vmap(T.checkify(lambda x: (T.check(x > 0, 'neg'), x * w.value)[1]))(
    jnp.array([1.0, -1.0]))
  np.testing.assert_array_equal(outs, [3.0, -3.0])
  assert 'neg' in errs.get()
  # grad through a checkified stateful function
  g = bs.transform.grad(lambda x: T.checkify(lambda: w.value * x)()[1], w)(2.0)
  assert float(g) == 2.0


def test_checkify_raw_transform_misuse(bst, T):
  s = bs.State(jnp.asarray(1.0))

  def f(x):
    s.value = s.value + x
    return s.value

  # writes under raw vmap would leak a tracer: refused, nothing assigned (as brainstate)
  with pytest.raises(TraceContextError):
    jax.vmap(lambda x: T.checkify(f)(x)[1])(jnp.arange(3.0))
  assert float(s.value) == 1.0
  # deviation: a read under raw jax.jit would bake the State's current value
  # into the compiled program (brainstate allows it); brainstate_nnx refuses,
  # like its jit and cond do. brainstate_nnx.transform.jit is the fix.
  with pytest.raises(TraceContextError):
    jax.jit(lambda x: T.checkify(lambda y: s.value + y)(x)[1])(2.0)
  out = bs.transform.jit(lambda x: T.checkify(lambda y: s.value + y)(x)[1])(2.0)
  assert float(out) == 3.0
  assert not isinstance(s.value, jax.core.Tracer)


def test_checkify_failure_restores_states(T):
  s = bs.State(jnp.asarray(0.0))
  calls = {'n': 0}

  def f(x):
    s.value = s.value + x
    calls['n'] += 1
    if calls['n'] >= 2:  # 1st call: abstract discovery; 2nd: checkify
      raise RuntimeError('boom')
    return x

  with pytest.raises(RuntimeError, match='boom'):
    T.checkify(f)(jnp.asarray(3.0))
  assert not isinstance(s.value, jax.core.Tracer)
  assert float(s.value) == 0.0
  with pytest.raises(TypeError):
    T.checkify(3)


# --------------------------------------------------------------------------
# debug_nan / debug_nan_if
# --------------------------------------------------------------------------

def _log_twice(x):
  y = jnp.log(x)   # the NaN source
  return y * 2.0


def test_debug_nan_locates_source(libs):
  msgs = []
  for api in libs:
    with pytest.raises(RuntimeError) as exc:
      api.T.debug_nan(_log_twice, jnp.array([-1.0, 1.0]), phase='forward')
    msgs.append(_msg(exc))
  assert msgs[0] == msgs[1]
  assert 'NaN/Inf detected [forward]' in msgs[0]
  assert 'Introduced by primitive : `log`' in msgs[0]
  assert 'in _log_twice\n    y = jnp.log(x)   # the NaN source' in msgs[0]
  assert 'test_transform_checks.py' in msgs[0]
  assert 'output[0]: shape=(2,) dtype=float32 NaNs=1 Infs=0' in msgs[0]


@pytest.mark.parametrize('fn, arg, words', [
  (lambda x: 1.0 / x, jnp.array([0.0, 1.0]), ['division by zero', 'Infs=1']),
  (lambda x: jnp.exp(x), jnp.array([1e30]), ['<unknown source>', 'Infs=1']),
  (lambda x: x * 0.0, jnp.array([jnp.inf]), ['`mul`']),
  (lambda x: jax.lax.scan(lambda c, v: (c + jnp.log(v), c), 0.0, x)[0],
   jnp.array([1.0, -1.0]), ['`log`', 'in <lambda>']),
  (jax.checkpoint(lambda x: jnp.log(x)), jnp.array([-1.0]), ['`log`']),
  (jax.grad(lambda x: jnp.sqrt(x).sum()), jnp.array([0.0, 4.0]), ['NaN/Inf']),
])
def test_debug_nan_reports(libs, fn, arg, words):
  msgs = []
  for api in libs:
    with pytest.raises(RuntimeError) as exc:
      api.T.debug_nan(fn, arg)
    msgs.append(_msg(exc))
  assert msgs[0] == msgs[1]
  for w in words:
    assert w in msgs[0]


@pytest.mark.parametrize('fn, arg', [
  (lambda x: x * 2.0 + 1.0, jnp.array([1.0, 2.0])),
  (lambda x: jnp.where(x > 0, jnp.log(x), 0.0), jnp.array([0.0, -1.0, 1.0])),
  (jax.vmap(lambda x: jax.lax.cond(x > 0, jnp.log, lambda y: y * 2.0, x)),
   jnp.array([1.0, -1.0])),
  (lambda x: jax.nn.softmax(x), jnp.array([1.0, 2.0])),
  (lambda x: jnp.arange(3) * x, jnp.array(2)),
])
def test_debug_nan_clean_is_silent(libs, fn, arg):
  for api in libs:
    assert api.T.debug_nan(fn, arg) is None


def test_debug_nan_with_states(libs):
  def program(api):
    T = api.T
    w = api.State(jnp.array([1.0, -1.0]))
    s = api.State(jnp.array([5.0]))

    def reads(x):
      return jnp.log(w.value) + x

    def writes(x):
      s.value = jnp.log(x)   # NaN only in the written State
      return jnp.sum(x)

    msgs = []
    for fn, x in ((reads, jnp.array([1.0, 2.0])), (writes, jnp.array([-1.0]))):
      with pytest.raises(RuntimeError) as exc:
        T.debug_nan(fn, x)
      msgs.append(_msg(exc))
    T.debug_nan(writes, jnp.array([2.0]))
    return msgs, _np((w.value, s.value))

  mine, ref = (program(api) for api in libs)
  assert 'return jnp.log(w.value) + x' in mine[0][0]
  assert 's.value = jnp.log(x)' in mine[0][1]
  assert 'NaNs=1' in mine[0][1]
  for m, r in zip(mine[0], ref[0]):
    assert m.splitlines()[:5] == r.splitlines()[:5]
  jax.tree.map(np.testing.assert_array_equal, mine[1], ref[1])  # nothing written


def test_debug_nan_inside_jit(libs):
  msgs = []
  for api in libs:
    T = api.T
    k = api.State(jnp.array(2.0))

    @T.jit
    def g(x):
      T.debug_nan(lambda y: jnp.log(y * k.value), x)
      return x * k.value

    assert float(g(jnp.asarray(1.5))) == 3.0
    with pytest.raises(Exception) as exc:
      jax.block_until_ready(g(jnp.asarray(-1.0)))
    msgs.append(_msg(exc))
    assert 'Introduced by primitive : `log`' in msgs[-1]
    assert float(k.value) == 2.0
  # brainstate reports '<unknown source>' here; brainstate_nnx still finds it
  assert 'T.debug_nan(lambda y: jnp.log(y * k.value), x)' in msgs[0]


def test_jit_error_if_in_loop_and_branch(T):
  s = bs.State(jnp.array(0.0))

  def body(i):
    T.jit_error_if(s.value > 2, 'too big at step {i}: {v}', i=i, v=s.value)
    s.value = s.value + 1.0

  bs.transform.for_loop(body, jnp.arange(3))
  assert float(s.value) == 3.0
  with pytest.raises(jax.errors.JaxRuntimeError, match='too big at step 0: 3.0'):
    bs.transform.for_loop(body, jnp.arange(2))

  @bs.transform.jit
  def f(x):
    return bs.transform.cond(
      x > 0, lambda: x, lambda: (T.jit_error_if(True, 'negative {}', x), x)[1])

  assert float(f(1.0)) == 1.0   # the branch holding the error is not taken
  with pytest.raises(jax.errors.JaxRuntimeError, match='negative -2.0'):
    jax.block_until_ready(f(-2.0))


def test_debug_nan_if(libs):
  for api in libs:
    T = api.T
    T.debug_nan_if(False, jnp.log, jnp.array([-1.0]))
    T.debug_nan_if(jnp.array(False), jnp.log, jnp.array([-1.0]))
    with pytest.raises(RuntimeError, match='`log`'):
      T.debug_nan_if(jnp.array([False, True]), jnp.log, jnp.array([-1.0]))

    @jax.jit
    def f(x, trigger):
      T.debug_nan_if(trigger, jnp.log, x)
      return x

    f(jnp.array([-1.0, 1.0]), jnp.array(False))   # NaN-prone, not triggered
    f(jnp.array([2.0, 1.0]), jnp.array(True))     # triggered, clean
    with pytest.raises(Exception, match='`log`'):
      jax.block_until_ready(f(jnp.array([-1.0, 1.0]), jnp.array(True)))

    def g(x, trig):
      T.debug_nan_if(trig, jnp.log, x)
      return x

    with pytest.raises(Exception, match='NaN/Inf'):
      jax.block_until_ready(jax.vmap(g)(jnp.array([-1.0, 1.0]), jnp.array([True, False])))


def test_debug_nan_if_with_states_in_jit(T):
  h = bs.State(jnp.array([1.0, 2.0]))

  @bs.transform.jit
  def step(x):
    h.value = h.value - x
    y = jnp.sqrt(h.value)
    T.debug_nan_if(jnp.any(jnp.isnan(y)), lambda: jnp.sqrt(h.value), phase='step')
    return y

  np.testing.assert_allclose(step(1.0), [0.0, 1.0])
  with pytest.raises(jax.errors.JaxRuntimeError, match=r'\[step\][\s\S]*`sqrt`'):
    jax.block_until_ready(step(1.0))


# --------------------------------------------------------------------------
# breakpoint_if
# --------------------------------------------------------------------------

@pytest.fixture
def fake_debugger():
  """A JAX debugger backend that records its calls instead of prompting."""
  from jax._src.debugger import core as dbg

  calls = []
  name = 'brainstate_nnx_test_recorder'
  dbg.register_debugger(name, lambda frames, thread_id, **kw: calls.append(frames),
                        priority=-1000)
  try:
    yield name, calls
  finally:
    dbg._debugger_registry.pop(name, None)


@_BREAKPOINT_FRAMES
def test_breakpoint_if_false_is_quiet(libs):
  for api in libs:
    assert api.T.breakpoint_if(False) is None
    assert api.T.breakpoint_if(jnp.array(False)) is None

    @jax.jit
    def f(x):
      api.T.breakpoint_if(x > 0.5)
      return x * 2

    assert float(f(jnp.array(0.0))) == 0.0


def test_breakpoint_if_enters_debugger(T, fake_debugger):
  backend, calls = fake_debugger
  k = bs.State(jnp.array(1.0))

  @bs.transform.jit
  def f(x):
    T.breakpoint_if(x > k.value, backend=backend, num_frames=1)
    k.value = k.value + 1
    return x * 2

  assert float(f(0.0)) == 0.0 and calls == []
  assert float(f(5.0)) == 10.0 and len(calls) == 1
  (frame,) = calls[0]   # the debugger opens on the user's function
  assert frame.filename.endswith('test_transform_checks.py')
  assert 'T.breakpoint_if(x > k.value' in frame.source[frame.offset]
  assert float(k.value) == 3.0
  kw = dict(backend=backend, num_frames=1)
  T.breakpoint_if(jnp.array([False, True]), **kw)   # eager
  assert len(calls) == 2
  tok = jnp.array(7.0)
  out = jax.jit(lambda x: T.breakpoint_if(x > 0, token=tok, **kw))(1.0)
  assert float(out) == 7.0 and len(calls) == 3
  jax.vmap(lambda x: T.breakpoint_if(x > 0, **kw))(jnp.array([-1.0, -2.0]))
  assert len(calls) == 3


def test_breakpoint_if_patched(T, monkeypatch):
  seen = []
  monkeypatch.setattr(jax.debug, 'breakpoint',
                      lambda **kw: jax.debug.callback(lambda: seen.append(kw)))

  @jax.jit
  def f(x):
    T.breakpoint_if(x > 0, num_frames=1)
    return x

  f(-1.0)
  assert seen == []
  f(1.0)
  assert seen == [{'num_frames': 1}]
