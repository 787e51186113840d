"""make_jaxpr / StatefulFunction / eval_shape / checkpoint (remat) / named_call / named_scope.

Differential where deterministic: the same program is written against a
namespace ``T`` and run with real BrainState 0.5.4 and with brainstate_nnx;
the States found (and which are read / written), the jaxpr interfaces, the
output shapes, the values and the gradients must agree.
"""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.core import jaxpr_as_fun

import brainstate_nnx as bs
from conftest import assert_close
from brainstate_nnx import BrainStateError


def _api(lib):
  T = lib.transform
  return types.SimpleNamespace(lib=lib, T=T, State=lib.State, ParamState=lib.ParamState,
                               HiddenState=lib.HiddenState)


@pytest.fixture
def ns():
  return _api(bs)


@pytest.fixture
def both(bst):
  return _api(bs), _api(bst)


def _np(tree):
  return jax.tree.map(np.asarray, tree)


def _names(states):
  return [s.name for s in states]


def _close(a, b):
  assert_close(a, b, check_structure=False)


# --------------------------------------------------------------------------
# a stateful program, built once per library
# --------------------------------------------------------------------------

def _program(api):
  """States: w (read only), h (read+written), log (written only), k (never used)."""
  w = api.ParamState(jnp.array([1.0, -2.0, 0.5]), name='w')
  h = api.HiddenState(jnp.zeros(3), name='h')
  log = api.State(jnp.zeros(()), name='log')
  k = api.State(jnp.ones(()), name='k')

  def step(x, scale=1.0):
    h.value = 0.5 * h.value + w.value * x
    log.value = jnp.sum(h.value) * scale
    return h.value * 2.0, {'norm': jnp.linalg.norm(h.value)}

  return types.SimpleNamespace(w=w, h=h, log=log, k=k, step=step)


def test_make_jaxpr_matches_brainstate(both):
  x = jnp.array([0.3, 0.1, -0.7])
  results = []
  for api in both:
    p = _program(api)
    jaxpr, states = api.T.make_jaxpr(p.step)(x)
    jaxpr_w, states_w = api.T.make_jaxpr(p.step, return_only_write=True)(x)
    j3, s3, shapes = api.T.make_jaxpr(p.step, return_shape=True)(x)
    outs = jaxpr_as_fun(jaxpr)(x, *[s.value for s in states])
    outs_w = jaxpr_as_fun(jaxpr_w)(x, *[s.value for s in states_w])
    results.append(dict(
      names=_names(states), names_w=_names(states_w),
      n_in=len(jaxpr.jaxpr.invars), n_out=len(jaxpr.jaxpr.outvars),
      n_out_w=len(jaxpr_w.jaxpr.outvars),
      prims=[e.primitive.name for e in jaxpr.eqns],
      outs=_np(outs), outs_w=_np(outs_w),
      shapes=jax.tree.map(lambda s: (s.shape, s.dtype), shapes),
      h=np.asarray(p.h.value), log=np.asarray(p.log.value),
    ))
  ours, ref = results
  assert ours['names'] == ref['names'] == ['h', 'w', 'log']
  assert ours['names_w'] == ref['names_w']
  for key in ('n_in', 'n_out', 'n_out_w', 'prims', 'shapes'):
    assert ours[key] == ref[key], key
  _close(ours['outs'], ref['outs'])
  _close(ours['outs_w'], ref['outs_w'])
  # tracing changes no State
  np.testing.assert_array_equal(ours['h'], np.zeros(3))
  np.testing.assert_array_equal(ours['log'], np.zeros(()))


def test_stateful_function_queries_match_brainstate(both):
  x = jnp.array([0.3, 0.1, -0.7])
  results = []
  for api in both:
    p = _program(api)
    sf = api.T.StatefulFunction(p.step)
    assert sf.make_jaxpr(x) is sf
    out_shapes = sf.get_out_shapes(x)
    results.append(dict(
      states=_names(sf.get_states(x)),
      read=_names(sf.get_read_states(x)),
      write=_names(sf.get_write_states(x)),
      shapes=jax.tree.map(lambda s: (s.shape, s.dtype), out_shapes),
      treedef=str(sf.get_out_treedef(x)),
      n_eqns=len(sf.get_jaxpr(x).eqns),
    ))
  ours, ref = results
  assert ours == ref
  assert ours['read'] == ['w'] and ours['write'] == ['h', 'log']
  # the read-only State has no output slot with return_only_write=True
  assert ours['shapes'][1][1] is None


def test_stateful_function_calls_match_brainstate(both):
  x = jnp.array([0.3, 0.1, -0.7])
  results = []
  for api in both:
    p = _program(api)
    sf = api.T.StatefulFunction(p.step)
    key = sf.get_arg_cache_key(x, compile_if_miss=True)
    states = sf.get_states_by_cache(key)
    vals = [s.value for s in states]
    new_vals, out = sf.jaxpr_call(vals, x)
    untouched = np.asarray(p.h.value)
    outs = [sf(x) for _ in range(3)]
    h, log = np.asarray(p.h.value), np.asarray(p.log.value)
    # (BrainState's debug path also assigns the States; brainstate_nnx's does not)
    with jax.disable_jit():
      dbg_vals, dbg_out = sf.jaxpr_call([s.value for s in states], x)
    results.append(dict(new_vals=_np(new_vals), out=_np(out), untouched=untouched,
                        outs=_np(outs), h=h, log=log, dbg=_np((dbg_vals, dbg_out))))
  ours, ref = results
  assert ours['new_vals'][1] is None and ref['new_vals'][1] is None
  _close(ours['new_vals'], ref['new_vals'])
  _close(ours['out'], ref['out'])
  np.testing.assert_array_equal(ours['untouched'], np.zeros(3))
  _close(ours['outs'], ref['outs'])
  _close((ours['h'], ours['log']), (ref['h'], ref['log']))
  _close(ours['dbg'], ref['dbg'])


def test_static_arguments_match_brainstate(both):
  x = jnp.arange(3.0)
  results = []
  for api in both:
    s = api.State(jnp.ones(3), name='s')

    def f(x, n, mode='add'):
      if mode == 'add':
        s.value = s.value + x ** n
      else:
        s.value = s.value * n
      return s.value.sum()

    sf = api.T.StatefulFunction(f, static_argnums=1, static_argnames='mode')
    k1 = sf.get_arg_cache_key(x, 2, mode='add')
    k2 = sf.get_arg_cache_key(x, 3, mode='add')
    k3 = sf.get_arg_cache_key(jnp.zeros(3), 2, mode='add')
    out1 = sf(x, 2, mode='add')
    out2 = sf(x, 3, mode='mul')
    jaxpr, states = api.T.make_jaxpr(f, static_argnums=1, static_argnames='mode')(x, 2, mode='mul')
    results.append(dict(distinct=k1 != k2, same=k1 == k3, out=_np((out1, out2)),
                        s=np.asarray(s.value), n_in=len(jaxpr.jaxpr.invars),
                        prims=[e.primitive.name for e in jaxpr.eqns]))
  ours, ref = results
  assert ours['distinct'] and ours['same']
  for key in ('distinct', 'same', 'n_in', 'prims'):
    assert ours[key] == ref[key]
  _close((ours['out'], ours['s']), (ref['out'], ref['s']))


def test_state_arguments_and_outputs_are_rejected(both):
  for api in both:
    st = api.State(jnp.ones(2))
    with pytest.raises(ValueError):
      api.T.StatefulFunction(lambda a: a.value).make_jaxpr(st)
    with pytest.raises(ValueError):
      api.T.StatefulFunction(lambda a: api.State(a)).make_jaxpr(1.0)
    with pytest.raises(ValueError):
      api.T.StatefulFunction(lambda x, n: x * n, static_argnums=1).make_jaxpr(1.0)


def test_cache_management(ns):
  st = ns.State(jnp.array([1.0, 2.0]))

  def f(x):
    st.value = st.value + x
    return st.value

  sf = ns.T.StatefulFunction(f)
  sf.make_jaxpr(jnp.ones(2))
  sf.make_jaxpr(jnp.ones(2))
  sf.make_jaxpr(jnp.ones(2, jnp.int32))
  stats = sf.get_cache_stats()['compilation_cache']
  assert stats['size'] == 2 and set(stats) >= {'size', 'maxsize', 'hits', 'misses', 'hit_rate'}
  key = sf.get_arg_cache_key(jnp.ones(2))
  assert sf.validate_states(key) is True
  assert list(sf.validate_all_states().values()) == [True, True]
  sf.clear_cache()
  assert sf.get_cache_stats()['compilation_cache']['size'] == 0
  with pytest.raises(ValueError, match='Requested key:'):
    sf.get_jaxpr_by_cache(key)
  with pytest.raises(ValueError, match='State length mismatch'):
    sf.jaxpr_call([], jnp.ones(2))
  trace = sf.get_state_trace(jnp.ones(2))
  assert trace.get_write_states() == (st,) and trace.been_writen == [True]
  assert repr(sf).startswith('StatefulFunction(')


def test_state_shape_change_recompiles(ns):
  st = ns.State(jnp.zeros(2))
  sf = ns.T.StatefulFunction(lambda: st.value.sum())
  assert sf.get_jaxpr().in_avals[0].shape == (2,)
  st.value = jnp.zeros(5)
  assert sf.get_jaxpr().in_avals[0].shape == (5,)
  assert float(sf()) == 0.0


def test_states_created_inside_are_not_inputs(ns):
  outer = ns.State(jnp.ones(()))

  def f(x):
    local = ns.State(x * 2)
    local.value = local.value + outer.value
    return local.value

  jaxpr, states = ns.T.make_jaxpr(f)(jnp.ones(()))
  assert states == (outer,)
  assert len(jaxpr.jaxpr.invars) == 2


def test_nested_in_jit_threads_states(ns):
  st = ns.State(jnp.zeros(()))

  def inc(x):
    st.value = st.value + x
    return st.value

  sf = ns.T.StatefulFunction(inc)
  jitted = ns.T.jit(lambda x: sf(x) * 2)
  assert float(jitted(1.0)) == 2.0
  assert float(jitted(1.0)) == 4.0
  assert float(st.value) == 2.0
  assert jitted.states == [st]


def test_make_jaxpr_inside_make_jaxpr(both):
  for api in both:
    st = api.State(jnp.ones(4))

    def inner(x):
      st.value = x + st.value

    def outer(x):
      api.T.make_jaxpr(inner)(x)
      return x + 1.0

    jaxpr, states = api.T.make_jaxpr(outer)(jnp.zeros(4))
    assert states == (st,)
    np.testing.assert_allclose(jaxpr_as_fun(jaxpr)(jnp.zeros(4), st.value)[0], np.ones(4))


def test_ir_optimizations_option(ns):
  def f(x):
    a = jnp.sin(x)
    b = jnp.sin(x)
    dead = jnp.cos(x) * 3.0
    return a + b

  plain = ns.T.StatefulFunction(f).get_jaxpr(jnp.ones(3))
  opt = ns.T.StatefulFunction(f, ir_optimizations=['cse', 'dce']).get_jaxpr(jnp.ones(3))
  assert len(plain.eqns) == 5 and len(opt.eqns) == 2
  assert_close(jaxpr_as_fun(opt)(jnp.ones(3))[0], 2 * np.sin(1.0) * np.ones(3), atol=0)


# --------------------------------------------------------------------------
# eval_shape
# --------------------------------------------------------------------------

def test_eval_shape_matches_brainstate(both):
  results = []
  for api in both:
    st = api.State(jnp.zeros((2, 3)), name='st')
    w = api.ParamState(jnp.ones(3), name='w')

    def f(x):
      st.value = st.value + x * w.value
      return st.value.sum(axis=0), jnp.outer(x[0], w.value)

    out = api.T.eval_shape(f, jnp.ones((2, 3)))
    shapes, out2 = api.T.eval_shape(f, jnp.ones((2, 3)), return_state_shapes=True)
    results.append(dict(
      out=jax.tree.map(lambda s: (s.shape, s.dtype), out),
      out2=jax.tree.map(lambda s: (s.shape, s.dtype), out2),
      shapes={k.name: (v.shape, v.dtype) for k, v in shapes.items()},
      st=np.asarray(st.value),
    ))
  ours, ref = results
  assert ours['out'] == ref['out'] == ours['out2']
  assert ours['shapes'] == ref['shapes']
  np.testing.assert_array_equal(ours['st'], np.zeros((2, 3)))


def test_eval_shape_builds_abstract_modules(ns):
  class Net(bs.nn.Module):
    def __init__(self, n):
      super().__init__()
      self.w = bs.ParamState(jnp.ones((n, 2 * n)))
      self.tied = self.w
      self.h = bs.HiddenState(jnp.zeros(n))

  net = ns.T.eval_shape(lambda: Net(500))
  assert isinstance(net, Net)
  assert net.w.value == jax.ShapeDtypeStruct((500, 1000), jnp.float32)
  assert net.tied is net.w
  # a Module argument is used as is
  real = Net(2)
  out = ns.T.eval_shape(lambda m, x: x @ m.w.value, real, jax.ShapeDtypeStruct((3, 2), jnp.float32))
  assert out.shape == (3, 4)


def test_eval_shape_inside_grad_and_jit(ns):
  w = ns.ParamState(jnp.ones(3))
  other = ns.State(jnp.zeros(3))

  def loss(x):
    shape = ns.T.eval_shape(lambda: other.value * x)
    assert shape.shape == (3,)
    return jnp.sum(w.value * x)

  g = ns.T.grad(loss, w)(jnp.arange(3.0))
  np.testing.assert_allclose(g, np.arange(3.0))
  out = ns.T.jit(lambda x: ns.T.eval_shape(lambda: other.value + x).shape[0] * x)(2.0)
  assert float(out) == 6.0


# --------------------------------------------------------------------------
# checkpoint / remat
# --------------------------------------------------------------------------

def _remat_program(api, use_remat):
  w1 = api.ParamState(jnp.array([[0.5, -1.0], [2.0, 0.3]]), name='w1')
  w2 = api.ParamState(jnp.array([1.5, -0.7]), name='w2')
  count = api.State(jnp.zeros(()), name='count')

  def block(x):
    count.value = count.value + 1.0
    return jnp.tanh(x @ w1.value) * w2.value

  if use_remat:
    block = api.T.checkpoint(block)

  def loss(x):
    return jnp.sum(jnp.sin(block(block(x))))

  return types.SimpleNamespace(w1=w1, w2=w2, count=count, loss=loss)


def test_remat_grads_match_plain_and_brainstate(both):
  x = jnp.array([[0.1, 0.2], [-0.3, 0.4]])
  results = []
  for api in both:
    for use in (False, True):
      p = _remat_program(api, use)
      grads = api.T.grad(p.loss, {'w1': p.w1, 'w2': p.w2}, return_value=True)(x)
      results.append((_np(grads), float(p.count.value)))
  ref_plain = results[0]
  for grads, count in results:
    _close(grads, ref_plain[0])
    assert count == 2.0


def test_remat_appears_in_jaxpr_and_runs_under_jit(ns):
  p = _remat_program(ns, True)
  jaxpr, states = ns.T.make_jaxpr(p.loss)(jnp.ones((2, 2)))
  assert 'remat' in str(jaxpr) or 'checkpoint' in str(jaxpr)
  assert set(_names(states)) == {'w1', 'w2', 'count'}
  f = ns.T.jit(ns.T.grad(p.loss, p.w2))
  g1 = f(jnp.ones((2, 2)))
  plain = _remat_program(ns, False)
  g2 = ns.T.grad(plain.loss, plain.w2)(jnp.ones((2, 2)))
  _close(g1, g2)
  assert float(p.count.value) == 2.0


def test_remat_options(both):
  for api in both:
    f = api.T.checkpoint(lambda x, n: x * n, static_argnums=1)
    assert float(f(jnp.asarray(3.0), 2.0)) == 6.0
    g = api.T.checkpoint(prevent_cse=False, policy=jax.checkpoint_policies.everything_saveable)(
      jnp.sin)
    _close(jax.grad(lambda x: g(x).sum())(jnp.ones(2)), np.cos(np.ones(2)))
    with pytest.raises(ValueError, match='negative'):
      api.T.checkpoint(lambda x, n: x * n, static_argnums=-1)
    assert api.T.remat is api.T.checkpoint

  st = bs.State(jnp.zeros(()))

  @bs.transform.checkpoint(static_argnums=1)
  def branchy(x, add):
    if add:
      st.value = st.value + x
    return x * 2

  branchy(jnp.ones(()), True)
  branchy(jnp.ones(()), False)
  assert float(st.value) == 1.0


def test_remat_on_module_and_method(ns):
  class Lin(bs.nn.Module):
    def __init__(self):
      super().__init__()
      self.w = bs.ParamState(jnp.eye(2) * 3)

    @bs.transform.checkpoint
    def apply(self, x):
      return x @ self.w.value

  lin = Lin()
  np.testing.assert_allclose(lin.apply(jnp.ones((1, 2))), [[3.0, 3.0]])
  g = ns.T.grad(lambda x: lin.apply(x).sum(), lin.w)(jnp.ones((1, 2)))
  np.testing.assert_allclose(g, np.ones((2, 2)))
  wrapped = ns.T.remat(lin)  # a callable object
  assert wrapped.fun is lin


def test_remat_unpredicted_write_is_an_error(ns):
  a, b = ns.State(jnp.zeros(())), ns.State(jnp.zeros(()))
  calls = []

  @ns.T.checkpoint
  def f(x):
    calls.append(1)
    (a if len(calls) % 2 else b).value = x
    return x

  with pytest.raises(BrainStateError, match='checkpoint'):
    f(jnp.ones(()))


# --------------------------------------------------------------------------
# named_call / named_scope
# --------------------------------------------------------------------------

def _stacks(closed):
  return {str(e.source_info.name_stack) for e in closed.eqns}


def test_named_call(both):
  for api in both:
    @api.T.named_call(name='block')
    def block(x):
      return jnp.sin(x) * 2.0

    def plain(x):
      return jnp.cos(x)

    assert_close(block(jnp.ones(2)), 2 * np.sin(np.ones(2)), atol=0)
    assert _stacks(jax.make_jaxpr(block)(1.0)) == {'block'}
    assert _stacks(jax.make_jaxpr(api.T.named_call(plain))(1.0)) == {'plain'}
    assert block.__name__ == 'block'


def test_named_call_keeps_state_handling(ns):
  st = ns.State(jnp.zeros(()))

  @ns.T.named_call
  def inc(x):
    st.value = st.value + x
    return st.value

  f = ns.T.jit(inc)
  f(1.0), f(2.0)
  assert float(st.value) == 3.0
  jaxpr, states = ns.T.make_jaxpr(inc)(1.0)
  assert states == (st,) and _stacks(jaxpr) == {'inc'}


def test_named_scope(both):
  # eager by default; under BrainState's ``ir_compilation`` switch the
  # function is jitted once per value of the static argument and reused
  out = []
  for api in both:
    st = api.State(jnp.zeros(()))
    runs = []  # one entry per Python execution (eager call or trace)

    @api.T.named_scope('power', static_argnums=lambda *a, **k: (1,))
    def power(x, n):
      runs.append(n)
      st.value = st.value + 1.0
      return x ** n

    jaxpr = api.T.make_jaxpr(power, static_argnums=1)(1.0, 2)[0]
    runs.clear()  # (how often make_jaxpr runs the function is not compared)
    assert float(power(jnp.array(3.0), 2)) == 9.0
    assert float(power(jnp.array(3.0), 2)) == 9.0
    eager = list(runs)
    with api.lib.environ.context(ir_compilation=True):  # BrainState's switch
      values = [float(power(jnp.array(2.0), 3)), float(power(jnp.array(2.0), 3)),
                float(power(jnp.array(4.0), 3)), float(power(jnp.array(2.0), 1))]
    out.append((eager, runs[len(eager):], values, float(st.value)))
    if api is both[0]:
      assert _stacks(jaxpr) == {'power'}
  assert out[0] == out[1], out
  assert out[0] == (
    [2, 2],              # two eager calls
    [3, 1],              # jitted: one trace per static n
    [8.0, 8.0, 64.0, 2.0],
    6.0,                 # every call, compiled or not, incremented the State
  )


def test_named_scope_brainstate_parity(bst):
  for lib in (bs, bst):
    scope = lib.transform.named_scope

    @scope('layer')
    def layer(x, w):
      return x @ w

    out = layer(jnp.ones((1, 2)), jnp.ones((2, 3)))
    np.testing.assert_allclose(out, 2 * np.ones((1, 3)))
