"""vmap2 / StatefulMapping / *_new_states / map / unvmap / pmap2 / shard_map.

Most tests are differential: one program is written against a ``lib``
namespace and run with real BrainState 0.5.4 and with brainstate_nnx; outputs
and final State values (random numbers included) must agree. The
multi-device transforms run in a child process with 4 host CPU devices.
"""

import json
import os
import subprocess
import sys
import textwrap
import types
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bs
from conftest import assert_close

def _api(lib):
  """``lib`` with ``T`` (transforms), ``F`` (filters) and ``vmap_init_all_states``."""
  T = lib.transform
  init_all = lib.nn.vmap_init_all_states
  return types.SimpleNamespace(
    lib=lib, T=T, F=lib.util.filter, random=lib.random, Module=lib.nn.Module,
    State=lib.State, ShortTermState=lib.ShortTermState,
    LongTermState=lib.LongTermState, HiddenState=lib.HiddenState,
    ParamState=lib.ParamState, BatchState=lib.BatchState,
    vmap_init_all_states=init_all,
  )


@pytest.fixture
def L():
  return _api(bs)


@pytest.fixture
def libs(bst):
  """``(brainstate_nnx api, brainstate api)``."""
  return _api(bs), _api(bst)


def _assert_same(mine, theirs):
  assert_close(mine, theirs)


def _differential(libs, program):
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    mine, theirs = (program(L) for L in libs)
  _assert_same(mine, theirs)
  return mine


# --------------------------------------------------------------------------
# vmap2 / StatefulMapping
# --------------------------------------------------------------------------

def _filters_program(L):
  F = L.F
  w = L.ParamState(jnp.arange(3.0) + 1.0)          # matches no filter: broadcast
  h = L.HiddenState(jnp.zeros((4, 3)))              # mapped on axis 0
  b = L.BatchState(jnp.ones((3, 4)))                # mapped on axis 1
  cnt = L.ShortTermState(jnp.zeros(()))             # unbatched write: one value
  tot = L.LongTermState(jnp.zeros(()))              # batched write: axis inferred
  col = L.State(jnp.zeros(3), tag='col')            # declared: written on axis 1

  def f(x):
    h.value = h.value + x * w.value
    b.value = b.value * 2 + h.value
    cnt.value = cnt.value + 1.0
    tot.value = (h.value * x).sum()
    col.value = h.value - x
    return h.value.sum() + b.value.sum()

  g = L.T.vmap2(f, state_in_axes={0: F.OfType(L.HiddenState), 1: F.OfType(L.BatchState)},
                state_out_axes={1: 'col'})
  outs = [g(jnp.arange(4.0) + k) for k in range(2)]   # cold, then warm call
  return outs, h.value, b.value, cnt.value, tot.value, col.value, w.value


def test_vmap2_filters_match_brainstate(libs):
  out = _differential(libs, _filters_program)
  _, h, b, cnt, tot, col, _ = out
  assert h.shape == (4, 3) and b.shape == (3, 4) and col.shape == (3, 4)
  assert cnt.shape == () and float(cnt) == 2.0 and tot.shape == (4,)


def _selectors_program(L):
  a = L.ShortTermState(jnp.zeros(5))
  c = L.ShortTermState(jnp.zeros(5))
  d = L.ShortTermState(jnp.arange(5.0))

  def f(x):
    a.value = a.value + x
    c.value = c.value + 2 * x
    return a.value + c.value + d.value

  out1 = L.T.vmap2(f, state_in_axes={0: [a, c]}, state_out_axes={0: [a, c]})(jnp.arange(5.0))
  out2 = L.T.vmap2(lambda x: d.value * x, state_in_axes=d, in_axes=None)(2.0)
  m = L.T.StatefulMapping(lambda x: x * d.value, in_axes=None, axis_size=5,
                          state_in_axes={0: L.F.OfType(L.ShortTermState)})
  return out1, out2, m(3.0), a.value, c.value


def test_state_instances_and_collections_as_selectors(libs):
  _differential(libs, _selectors_program)


def _policies_program(L):
  res = {}
  for policy in ('auto', 'warn', 'ignore'):
    w = L.ShortTermState(jnp.zeros(3))

    def rmw(x):
      w.value = w.value + x
      return w.value

    g = L.T.vmap2(rmw, unexpected_out_state_mapping=policy)
    res[policy] = [(g(jnp.array([1.0, 2.0, 3.0])), w.value) for _ in range(2)]
  p = L.ShortTermState(jnp.zeros(()))

  def pure_out(x):
    p.value = x * 2.0
    return x

  res['pure'] = (L.T.vmap2(pure_out)(jnp.array([1.0, 2.0, 3.0])), p.value)
  return res


def test_unexpected_write_policies_match_brainstate(libs):
  res = _differential(libs, _policies_program)
  # 'auto' feeds a read-modify-write State already sized like the batch per lane
  assert res['auto'][1][1].shape == (3,)
  np.testing.assert_allclose(res['auto'][1][1], [2.0, 4.0, 6.0])
  assert res['ignore'][0][1].shape == (3, 3)


def test_warn_and_raise_policies(L):
  w = L.ShortTermState(jnp.zeros(3), name='acc')

  def rmw(x):
    w.value = w.value + x
    return w.value

  with pytest.raises(bs.BatchAxisError, match='acc'):
    L.T.vmap2(rmw, unexpected_out_state_mapping='raise')(jnp.ones(3))
  np.testing.assert_allclose(w.value, np.zeros(3))
  with pytest.warns(UserWarning, match='acc'):
    L.T.vmap2(rmw, unexpected_out_state_mapping='warn')(jnp.ones(3))
  s = L.ShortTermState(jnp.zeros(()), name='scalar_acc')
  with pytest.warns(UserWarning, match='gains a new axis'):
    L.T.vmap2(lambda x: setattr(s, 'value', s.value + x))(jnp.ones(4))
  assert s.value.shape == (4,)
  with pytest.raises(ValueError):
    L.T.vmap2(rmw, unexpected_out_state_mapping='bogus')


def _rng_program(L):
  L.random.seed(1)
  r1 = L.random.RandomState(42)
  r2 = L.random.RandomState(43)

  def f(x):
    return L.random.rand(2) + x, r1.randn(2), r2.random(2)

  g = L.T.vmap2(f)
  a = g(jnp.zeros((4, 2)))
  b = g(jnp.zeros((4, 2)))
  return a, b, L.random.randn(2), r1.randn(), r2.randn()


def test_random_numbers_per_lane_match_brainstate(libs):
  a, b, *_ = _differential(libs, _rng_program)
  assert not np.allclose(a[0][0], a[0][1])      # lanes draw independently
  assert not np.allclose(a[0], b[0])            # and the key advances per call


def _kwargs_static_program(L):
  def f(x, *, scale):
    return x * scale

  a = L.T.vmap2(f)(jnp.arange(3.0), scale=jnp.full(3, 2.0))        # mapped kwarg
  b = L.T.StatefulMapping(f, static_argnames=('scale',))(jnp.arange(3.0), scale=3.0)

  def g(x, flag):
    return x * 2 if flag else -x

  m = L.T.StatefulMapping(g, in_axes=(0, None), static_argnums=1)
  return a, b, m(jnp.arange(3.0), True), m(jnp.arange(3.0), False)


def test_kwargs_and_static_arguments(libs):
  _differential(libs, _kwargs_static_program)


def _collectives_program(L):
  s = L.ShortTermState(jnp.zeros(()))

  def f(x):
    s.value = jax.lax.psum(x, 'i')
    return x - jax.lax.pmean(x, 'i'), jax.lax.axis_index('i')

  return L.T.vmap2(f, axis_name='i')(jnp.arange(4.0)), s.value


def test_axis_name_collectives(libs):
  _differential(libs, _collectives_program)


def _jit_program(L):
  L.random.seed(5)
  F = L.F
  w = L.ParamState(jnp.arange(3.0))
  h = L.HiddenState(jnp.zeros((3, 2)))

  @L.T.jit
  def step(x):
    def member(x):
      h.value = h.value + x * w.value + L.random.rand()
      return h.value.sum()
    sel = F.Any(F.OfType(L.ParamState), F.OfType(L.HiddenState))
    return L.T.vmap2(member, in_axes=None, state_in_axes=sel)(x)

  return step(jnp.float32(1.0)), step(jnp.float32(2.0)), h.value, L.random.rand()


def test_vmap2_inside_jit(libs):
  _differential(libs, _jit_program)


def _scan_grad_program(L):
  L.random.seed(4)
  F = L.F
  h = L.HiddenState(jnp.zeros(3))

  def step(c, x):
    def lane(x):
      h.value = h.value * 0.5 + x + L.random.rand()
      return h.value
    y = L.T.vmap2(lane, state_in_axes=F.OfType(L.HiddenState))(x)
    return c + y.sum(), y

  c, ys = L.T.scan(step, jnp.float32(0.0), jnp.ones((4, 3)))
  w = L.ParamState(jnp.array([1.0, 2.0, 3.0]))
  xs = jnp.array([0.5, 1.0, 2.0])

  def loss():
    return L.T.vmap2(lambda x: x * w.value ** 2,
                     state_in_axes=F.OfType(L.ParamState))(xs).sum()

  g = L.T.grad(loss, w)() if L.lib is bs else L.T.grad(loss, grad_states=w)()
  return c, ys, h.value, L.random.rand(), g


def test_vmap2_inside_scan_and_grad(libs):
  _differential(libs, _scan_grad_program)


def _nested_program(L):
  L.random.seed(2)
  sel = L.F.OfType(L.ShortTermState)
  c = L.ShortTermState(jnp.zeros((2, 3)))

  def inner(x):
    c.value = c.value + x + L.random.rand()
    return c.value

  out = L.T.vmap2(lambda x: L.T.vmap2(inner, state_in_axes=sel)(x),
                  state_in_axes=sel)(jnp.ones((2, 3)))
  return out, c.value, L.random.randn()


def test_nested_vmap2(libs):
  _differential(libs, _nested_program)


def _control_flow_program(L):
  flag = L.ShortTermState(jnp.array(1.0))
  h = L.HiddenState(jnp.zeros(3))

  def f(x, k):
    # Python control flow on a broadcast State and an unmapped argument
    if flag.value > 0 and k > 1:
      h.value = h.value + x
    else:
      h.value = h.value - x
    return h.value

  g = L.T.vmap2(f, in_axes=(0, None), state_in_axes=L.F.OfType(L.HiddenState))
  return g(jnp.arange(3.0), 2), g(jnp.arange(3.0), 0), h.value


def test_control_flow_on_concrete_values(libs):
  _differential(libs, _control_flow_program)


def test_raw_jit_around_stateful_mapping_raises(L):
  h = L.HiddenState(jnp.zeros(3))
  g = L.T.vmap2(lambda x: h.value * x, state_in_axes=L.HiddenState)
  with pytest.raises(bs.TraceContextError, match='raw JAX'):
    jax.jit(g)(jnp.ones(3))
  np.testing.assert_allclose(jax.jit(L.T.vmap2(lambda x: x * 2))(jnp.ones(3)), 2.0)


def test_decorator_forms_and_attributes(L):
  builder = L.T.vmap2(in_axes=0, state_in_axes=L.ShortTermState)
  mapped = builder(lambda x: x * 2.0)
  assert isinstance(mapped, bs.transform.StatefulMapping)
  np.testing.assert_allclose(mapped(jnp.arange(3.0)), [0.0, 2.0, 4.0])
  assert mapped.name == 'vmap2' and 0 in mapped.state_in_axes
  m = L.T.StatefulMapping(lambda x: x, static_argnums=1, static_argnames=['k'])
  assert m.static_argnums == (1,) and m.static_argnames == ('k',)
  with pytest.raises(ValueError, match='axis_size'):
    L.T.vmap2(lambda x: x, axis_size=5)(jnp.arange(3.0))
  with pytest.raises(ValueError, match='in_axes'):
    L.T.vmap2(lambda x: x, in_axes=(0, 0))(jnp.arange(3.0))


def test_plan_cache_follows_reinitialized_states(L):
  class Net(L.Module):
    def init_state(self, n):
      self.h = L.HiddenState(jnp.zeros((n, 2)))

    def update(self, x):
      self.h.value = self.h.value + x
      return self.h.value.sum()

  net = Net()
  net.init_state(3)
  step = L.T.vmap2(net.update, in_axes=None, state_in_axes=L.F.OfType(L.HiddenState))
  np.testing.assert_allclose(step(1.0), [2.0, 2.0, 2.0])
  net.init_state(5)              # new State objects, another ensemble size
  np.testing.assert_allclose(step(1.0), [2.0] * 5)
  np.testing.assert_allclose(net.h.value, np.ones((5, 2)))


def test_written_values_never_leak_tracers(L):
  h = L.HiddenState(jnp.zeros(3))
  w = L.ShortTermState(jnp.zeros(()))

  def f(x):
    h.value = h.value + x
    w.value = x                      # batched, undeclared: axis inferred
    raise RuntimeError('boom')

  with pytest.raises(RuntimeError, match='boom'):
    L.T.vmap2(f, state_in_axes=L.F.OfType(L.HiddenState))(jnp.ones(3))
  for st in (h, w):
    assert not isinstance(st.value, jax.core.Tracer)
  np.testing.assert_allclose(h.value, np.zeros(3))


# --------------------------------------------------------------------------
# ensembles: vmap_new_states / vmap2_new_states / vmap_init_all_states
# --------------------------------------------------------------------------

def _make_neuron(L):
  class Neuron(L.Module):
    def __init__(self, n):
      super().__init__()
      self.n = n
      self.tau = L.LongTermState(jnp.full(n, 10.0))

    def init_state(self, v0):
      self.v = L.HiddenState(L.random.normal(size=self.n) + v0)
      self.w = L.ParamState(L.random.uniform(-1.0, 1.0, size=(self.n,)) * self.tau.value)
      self.shared = L.ShortTermState(jnp.zeros(self.n), tag='INIT_NO_BATCHING')

    def update(self, x):
      self.v.value = self.v.value + (x - self.v.value) / self.tau.value + self.w.value
      return self.v.value

  return Neuron


def _ensemble_program(L):
  L.random.seed(42)
  net = _make_neuron(L)(3)
  build = L.T.vmap_new_states(lambda v0: (net.init_state(v0), v0 * 2)[1], state_tag='member')
  out = build(jnp.arange(4.0))
  # the new States are ordinary eager States afterwards
  sel = L.F.Any(L.F.OfType(L.HiddenState), L.F.OfType(L.ParamState))
  step = L.T.vmap2(net.update, in_axes=None, state_in_axes=sel)
  ys = [step(jnp.float32(1.0)) for _ in range(2)]
  ys.append(L.T.jit(step)(jnp.float32(2.0)))
  tags = [sorted(net.v.tag), sorted(net.shared.tag)]
  return out, net.v.value, net.w.value, net.shared.value, ys, L.random.rand(2), tags


def test_vmap_new_states_ensemble_matches_brainstate(libs):
  out, v, w, shared, ys, _, tags = _differential(libs, _ensemble_program)
  assert v.shape == (4, 3) and w.shape == (4, 3) and shared.shape == (3,)
  assert not np.allclose(w[0], w[1])             # independent members
  assert ys[0].shape == (4, 3)
  assert tags == [['member'], ['INIT_NO_BATCHING', 'member']]


def test_new_states_usable_eagerly_and_no_leaks(L):
  L.random.seed(0)
  net = _make_neuron(L)(2)
  L.T.vmap_new_states(net.init_state, in_axes=None, axis_size=3)(0.0)
  for st in (net.v, net.w, net.shared):
    assert not isinstance(st.value, jax.core.Tracer)
  net.v.value = net.v.value + 1.0                  # plain eager write works
  assert net.v.value.shape == (3, 2)
  assert isinstance(net.v, bs.HiddenState)
  # pre-existing States written with an unbatched value are assigned
  count = L.ShortTermState(jnp.zeros(()))

  def init(v0):
    count.value = count.value + 1.0
    net.init_state(v0)

  L.T.vmap_new_states(init, in_axes=None, axis_size=3)(0.0)
  assert float(count.value) == 1.0
  with pytest.raises(bs.BatchAxisError):
    L.T.vmap_new_states(lambda x: setattr(count, 'value', x))(jnp.ones(3))


def _exclude_program(L):
  L.random.seed(0)

  class N(L.Module):
    def init_state(self):
      self.a = L.ParamState(L.random.rand(2))
      self.b = L.ShortTermState(jnp.ones(2), tag='keep')

  n = N()
  L.T.vmap_new_states(n.init_state, axis_size=3, state_to_exclude=L.F.WithTag('keep'))()
  return n.a.value, n.b.value, L.random.rand()


def test_vmap_new_states_state_to_exclude(libs):
  a, b, _ = _differential(libs, _exclude_program)
  assert a.shape == (3, 2) and b.shape == (2,)


def _vmap2_new_states_program(L):
  L.random.seed(11)
  F = L.F

  class Member(L.Module):
    def init_state(self, k=2):
      self.a = L.ParamState(L.random.randn(k))
      self.c = L.ShortTermState(L.random.rand(k))
      self.n = L.LongTermState(jnp.zeros(k), tag='fixed')

  m = Member()
  groups = L.T.vmap2_new_states(
    m, {'k': 3}, axis_size=4,
    state_out_axes={1: F.OfType(L.ShortTermState), None: 'fixed'},
  )
  sizes = {str(k): len(v) for k, v in groups.items()}
  return m.a.value, m.c.value, m.n.value, L.random.rand(), sizes


def test_vmap2_new_states_axes_match_brainstate(libs):
  a, c, n, _, sizes = _differential(libs, _vmap2_new_states_program)
  assert a.shape == (4, 3) and c.shape == (3, 4) and n.shape == (3,)


def _init_all_program(L):
  L.random.seed(8)

  class Cell(L.Module):
    def init_state(self, n, scale=1.0):
      self.h = L.HiddenState(L.random.randn(n) * scale)

  class Net(L.Module):
    def __init__(self):
      super().__init__()
      self.cells = [Cell(), Cell()]

  net = L.vmap_init_all_states(Net(), 2, axis_size=5, scale=3.0, state_tag='ens')
  return [c.h.value for c in net.cells], L.random.rand()


def test_vmap_init_all_states_matches_brainstate(libs):
  hs, _ = _differential(libs, _init_all_program)
  assert hs[0].shape == (5, 2) and not np.allclose(hs[0], hs[1])


def _probe_flag_program(L):
  seen = []

  def build():
    seen.append(L.T.in_new_state_probe())
    return L.State(jnp.zeros(())).value

  out = L.T.vmap_new_states(build, axis_size=2)()
  return out, np.array(seen)


def test_in_new_state_probe(libs):
  _, seen = _differential(libs, _probe_flag_program)
  assert seen.tolist() == [True, False]
  assert not bs.transform.in_new_state_probe()


def test_new_states_errors(L):
  with pytest.raises(ValueError):
    L.T.vmap_new_states(lambda: None, axis_size=0)
  with pytest.raises(ValueError, match='in_states'):
    L.T.vmap_new_states(lambda: None, axis_size=2, in_states=L.State(1.0))
  with pytest.raises(NotImplementedError):
    L.T.vmap_new_states(lambda x: x, axis_size=2)(x=jnp.ones(2))
  with pytest.raises(ValueError, match='axis_size'):
    L.T.vmap2_new_states(L.Module(), {})
  with pytest.raises(NotImplementedError):
    L.T.pmap2(lambda x: x, static_broadcasted_argnums=0)
  with pytest.raises(NotImplementedError):
    L.T.pmap2(lambda x: x, donate_argnums=(0,))


# --------------------------------------------------------------------------
# map
# --------------------------------------------------------------------------

def _map_program(L):
  L.random.seed(3)
  c = L.ShortTermState(jnp.zeros(()))

  def acc(x):
    c.value = c.value + x
    return c.value * 2

  seq = L.T.map(acc, jnp.arange(5.0))
  noisy = L.T.map(lambda x, y: x * y + L.random.normal(), jnp.arange(5.0),
                  jnp.full(5, 2.0), batch_size=2)
  exact = L.T.map(lambda x: {'sq': x ** 2}, jnp.arange(6.0).reshape(6, 1), batch_size=3)
  return seq, c.value, noisy, exact, L.random.rand()


def test_map_matches_brainstate(libs):
  seq, c, noisy, exact, _ = _differential(libs, _map_program)
  np.testing.assert_allclose(seq, 2 * np.cumsum(np.arange(5.0)))
  assert noisy.shape == (5,) and len(set(np.round(np.asarray(noisy), 5).tolist())) == 5
  assert exact['sq'].shape == (6, 1)


def test_map_errors(L):
  c = L.ShortTermState(jnp.zeros(()))

  def writes(x):
    c.value = c.value + x
    return x

  with pytest.raises(ValueError, match='batch_size'):
    L.T.map(writes, jnp.arange(4.0), batch_size=2)
  with pytest.raises(ValueError):
    L.T.map(lambda x: x, jnp.arange(4.0), batch_size=0)
  with pytest.raises(ValueError):
    L.T.map(lambda a, b: a + b, jnp.arange(4.0), jnp.arange(3.0))
  with pytest.raises(ValueError):
    L.T.map(lambda x: x, jnp.float32(1.0))


# --------------------------------------------------------------------------
# unvmap
# --------------------------------------------------------------------------

def _unvmap_program(L):
  u = L.T.unvmap
  bools = jnp.array([[True, False], [True, True]])
  vals = jnp.array([[1.0, 5.0], [2.0, 3.0]])
  eager = [u(bools, 'all'), u(bools, 'any'), u(vals, 'max'), u(vals, 'none')]
  mapped = [
    jax.vmap(lambda r: u(r, 'all'))(bools),
    jax.vmap(lambda r: u(r > 4.0, 'any'))(vals),
    jax.vmap(lambda r: u(r, 'max'))(vals),
    jax.vmap(lambda r: u(r, 'none'))(vals),
    jax.jit(jax.vmap(lambda r: u(r, 'max')))(vals),
  ]
  return eager, mapped


def test_unvmap_matches_brainstate(libs):
  eager, mapped = _differential(libs, _unvmap_program)
  assert mapped[0].tolist() == [False, False]
  np.testing.assert_allclose(mapped[2], [5.0, 5.0])


def test_unvmap_invalid_op(L):
  with pytest.raises(ValueError):
    L.T.unvmap(jnp.ones(2), op='bogus')


# --------------------------------------------------------------------------
# pmap2 / pmap2_new_states / shard_map on 4 host devices (child process)
# --------------------------------------------------------------------------

_MULTI_DEVICE_SCRIPT = textwrap.dedent('''
  import json, types, warnings
  import jax, jax.numpy as jnp, numpy as np
  from jax.sharding import PartitionSpec as P
  import brainstate
  import brainstate_nnx as bs

  assert jax.device_count() == 4, jax.devices()

  def api(lib):
    return lib, lib.transform

  def pmap_broadcast_in_batched_out(lib):
    lib, T = api(lib)
    lib.random.seed(0)
    param = lib.ParamState(jnp.ones(4))
    cnt = lib.ShortTermState(jnp.zeros(()))
    @T.pmap2(axis_name='d', state_out_axes={0: lib.util.filter.OfType(lib.ParamState)})
    def update(delta):
      param.value = param.value + delta + lib.random.rand()
      cnt.value = cnt.value + 1.0
      return jax.lax.psum(delta, 'd')
    out = update(jnp.arange(16.0).reshape(4, 4))
    return out, param.value, cnt.value, lib.random.rand()

  def pmap_batched_states(lib):
    lib, T = api(lib)
    h = lib.HiddenState(jnp.arange(8.0).reshape(4, 2))
    @T.pmap2(axis_name='d', state_in_axes=lib.util.filter.OfType(lib.HiddenState))
    def step(x):
      h.value = h.value * 2 + x
      return jax.lax.pmax(h.value.sum(), 'd')
    return step(jnp.ones((4, 2))), step(jnp.ones((4, 2))), h.value

  def pmap_new_states(lib):
    lib, T = api(lib)
    lib.random.seed(7)
    class Ens(lib.nn.Module):
      def init_state(self, k):
        self.w = lib.ParamState(lib.random.randn(k))
        self.c = lib.ShortTermState(jnp.zeros(()))
    class Counter(lib.nn.Module):
      def init_state(self):
        self.count = lib.ShortTermState(jnp.zeros(()))
    m, c = Ens(), Counter()
    T.pmap2_new_states(m, init_kwargs={'k': 3}, axis_size=4)
    T.pmap2_new_states(c, init_kwargs={})
    return m.w.value, m.c.value, c.count.value, lib.random.rand()

  def shard_map_states(lib):
    lib, T = api(lib)
    mesh = jax.make_mesh((4,), ('x',))
    total = lib.State(jnp.zeros(()))
    buf = lib.State(jnp.zeros(8))
    w = lib.State(jnp.array(3.0))
    def f(data):
      total.value = total.value + jax.lax.psum(data.sum(), 'x')
      buf.value = buf.value + data * w.value
      return data * 2
    g = T.shard_map(f, mesh, in_specs=(P('x'),), out_specs=P('x'),
                    state_in_specs={buf: P('x')}, state_out_specs={buf: P('x')})
    g(jnp.arange(8.0))
    return g(jnp.arange(8.0)), total.value, buf.value, w.value

  report = {}
  for program in (pmap_broadcast_in_batched_out, pmap_batched_states, pmap_new_states,
                  shard_map_states):
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')
      theirs = jax.tree.map(np.asarray, program(brainstate))
      mine = jax.tree.map(np.asarray, program(bs))
    a, b = jax.tree.leaves(mine), jax.tree.leaves(theirs)
    same = (jax.tree.structure(mine) == jax.tree.structure(theirs) and all(
      x.shape == y.shape and np.allclose(x, y, rtol=1e-5, atol=1e-6) for x, y in zip(a, b)))
    report[program.__name__] = {'same': bool(same), 'shapes': [list(x.shape) for x in a]}
  print('REPORT ' + json.dumps(report))
''')


def test_pmap2_pmap2_new_states_shard_map_on_four_devices(bst):
  env = dict(os.environ)
  env['XLA_FLAGS'] = '--xla_force_host_platform_device_count=4'
  env['JAX_PLATFORMS'] = 'cpu'
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env['PYTHONPATH'] = root + os.pathsep + env.get('PYTHONPATH', '')
  proc = subprocess.run([sys.executable, '-c', _MULTI_DEVICE_SCRIPT], env=env, cwd=root,
                        capture_output=True, text=True, timeout=240)
  assert proc.returncode == 0, proc.stderr[-4000:]
  line = [ln for ln in proc.stdout.splitlines() if ln.startswith('REPORT ')][-1]
  report = json.loads(line[len('REPORT '):])
  assert {k: v['same'] for k, v in report.items()} == {k: True for k in report}, report
  shapes = report['pmap_broadcast_in_batched_out']['shapes']
  assert shapes[:3] == [[4, 4], [4, 4], []]             # psum out, per-device param, counter
  assert report['pmap_new_states']['shapes'][:3] == [[4, 3], [4], [4]]
  assert report['shard_map_states']['shapes'][:3] == [[8], [], [8]]
