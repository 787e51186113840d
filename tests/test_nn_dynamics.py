"""Dynamics, delays and exp_euler_step: differential tests against BrainState 0.5.4."""


import brainstate
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bsn


def _close(a, b, rtol=1e-6, atol=1e-6):
  np.testing.assert_allclose(np.asarray(getattr(a, 'mantissa', a)),
                             np.asarray(getattr(b, 'mantissa', b)), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------
# Delay
# ---------------------------------------------------------------------------

_DELAY_CASES = {
  'plain': dict(time=0.5),
  'init_value': dict(time=0.3, init=-1.0),
  'init_fn': dict(time=0.3, init=lambda shape, dtype: jnp.full(shape, 2.0, dtype)),
  'entries': dict(time=0.2, entries={'a': 0.1, 'b': (0.4, 1)}),
  'update_every': dict(time=0.6, update_every=0.2),
  'cubic': dict(time=0.6, interpolation='cubic'),
  'hermite': dict(time=0.6, interpolation='hermite'),
  'poly2': dict(time=0.6, interpolation='polynomial2'),
  'poly3': dict(time=0.6, interpolation='polynomial3'),
  'nearest': dict(time=0.6, interpolation='nearest'),
}


def _drive(lib, kwargs, batch=None, jit=False):
  """Writes 9 values into a delay and reads it every way; returns everything read."""
  with lib.environ.context(dt=0.1):
    d = lib.nn.Delay(jnp.zeros(3), **kwargs)
    extra = d.register_delay(0.35)
    d.init_state(batch_size=batch)
    out = {'max_length': d.max_length, 'history0': d.history.value}

    def step(i):
      x = jnp.arange(3.0) + 10.0 * i
      if batch is not None:
        x = jnp.broadcast_to(x, (batch, 3))
      d.update(x)
      with lib.environ.context(t=i * 0.1):
        reads = [d.retrieve_at_step(k) for k in range(min(d.max_length, 4))]
        reads.append(d.retrieve_at_step(*extra))
        reads.append(d.retrieve_at_time(i * 0.1 - 0.15))
        if 'entries' in kwargs:
          reads += [d.at('a'), d.at('b')]
      return reads

    if jit:
      step = lib.transform.jit(step)
    out['reads'] = [step(i) for i in range(9)]
    out['history'] = d.history.value
    return out


@pytest.mark.parametrize('key', sorted(_DELAY_CASES))
def test_delay_matches_brainstate(key):
  ours = _drive(bsn, _DELAY_CASES[key])
  ref = _drive(brainstate, _DELAY_CASES[key])
  assert ours['max_length'] == ref['max_length']
  _close(ours['history0'], ref['history0'])
  for a, b in zip(ours['reads'], ref['reads']):
    assert len(a) == len(b)
    for x, y in zip(a, b):
      _close(x, y, rtol=1e-5, atol=1e-5)
  _close(ours['history'], ref['history'])


def test_delay_batched_and_jitted_matches_brainstate():
  ours = _drive(bsn, dict(time=0.3), batch=2, jit=True)
  ref = _drive(brainstate, dict(time=0.3), batch=2, jit=True)
  assert np.shape(ours['history']) == (ref['max_length'], 2, 3)
  for a, b in zip(ours['reads'], ref['reads']):
    for x, y in zip(a, b):
      _close(x, y, rtol=1e-5, atol=1e-5)


def test_delay_access_and_state_paths():
  for lib in (bsn, brainstate):
    with lib.environ.context(dt=1.0):
      d = lib.nn.Delay(jnp.zeros(()), time=3.0)
      acc = d.access('late', 2.0)
      d.init_state()
      for i in range(5):
        d.update(jnp.asarray(float(i)))
      assert float(acc()) == 2.0
      assert float(d.at('late')) == 2.0
      assert sorted(d.states().keys()) == [('history',), ('write_ptr',)]
      assert isinstance(d.history, lib.DelayState)
      assert 'INIT_NO_BATCHING' in d.write_ptr.tag


def test_delay_bad_input_errors_match_brainstate():
  for lib in (bsn, brainstate):
    with lib.environ.context(dt=0.1):
      with pytest.raises(ValueError, match='Unknown interpolation method'):
        lib.nn.Delay(jnp.zeros(2), time=0.2, interpolation='spline')
      with pytest.raises(TypeError, match='interpolation must be str or callable'):
        lib.nn.Delay(jnp.zeros(2), time=0.2, interpolation=3)
      with pytest.raises(TypeError, match='init should be Array, Callable, or None'):
        lib.nn.Delay(jnp.zeros(2), time=0.2, init='zero')
      with pytest.raises(ValueError, match='update_every must be >= dt'):
        lib.nn.Delay(jnp.zeros(2), time=0.2, update_every=0.05)
      d = lib.nn.Delay(jnp.zeros(2), time=0.2, entries={'a': 0.1})
      with pytest.raises(KeyError, match='Entry a has been registered'):
        d.register_entry('a', 0.2)
      d.init_state()
      with pytest.raises(KeyError, match='Does not find delay entry'):
        d.at('b')
    with pytest.raises(ValueError, match='Unknown interpolation method'):
      lib.nn.InterpolationRegistry.get('spline')


# ---------------------------------------------------------------------------
# exp_euler_step
# ---------------------------------------------------------------------------

def _euler(lib, with_noise):
  lib.random.seed(3)
  v = jnp.linspace(-1.0, 1.0, 5)
  with lib.environ.context(dt=0.1):
    drift = lambda v, I: (-v + I) / 10.0 - 0.3 * v ** 3 + jnp.sin(v)
    linear = lambda v: -0.0 * v + 1.0  # zero Jacobian: the Taylor branch
    a = lib.nn.exp_euler_step(drift, v, 0.5)
    b = lib.nn.exp_euler_step(linear, v)
    out = [a, b]
    if with_noise:
      out.append(lib.nn.exp_euler_step(drift, lambda v, I: 0.2 + 0 * v, v, 0.5))
    return out


@pytest.mark.parametrize('with_noise', [False, True])
def test_exp_euler_matches_brainstate(with_noise):
  for x, y in zip(_euler(bsn, with_noise), _euler(brainstate, with_noise)):
    _close(x, y)


def test_exp_euler_bad_input():
  for lib in (bsn, brainstate):
    with lib.environ.context(dt=0.1):
      with pytest.raises(ValueError, match='State variable dtype must be'):
        lib.nn.exp_euler_step(lambda v: -v, jnp.arange(3))
      with pytest.raises(AssertionError, match='drift function should be callable'):
        lib.nn.exp_euler_step(1.0, jnp.zeros(3))


# ---------------------------------------------------------------------------
# a LIF E/I network with delayed synapses, simulated with for_loop
# ---------------------------------------------------------------------------

def _ei_network(lib, n_exc=32, n_inh=8, steps=120):
  f32 = jnp.float32

  class LIF(lib.nn.Dynamics):
    def __init__(self, n, tau):
      super().__init__(n)
      self.tau = tau

    def init_state(self, batch_size=None, **kwargs):
      self.V = lib.HiddenState(lib.random.uniform(0.0, 1.0, self.varshape))
      self.spike = lib.HiddenState(jnp.zeros(self.varshape, f32))

    def update(self, current):
      v = lib.nn.exp_euler_step(lambda v, i: (-v + i) / self.tau, self.V.value, current)
      spk = (v >= 1.0).astype(f32)
      self.V.value = jnp.where(spk > 0, 0.0, v)
      self.spike.value = spk
      return spk

  class EINet(lib.nn.Module):
    def __init__(self):
      super().__init__()
      n = n_exc + n_inh
      self.E = LIF(n_exc, 10.0)
      self.I = LIF(n_inh, 5.0)
      conn = lib.random.rand(n, n) < 0.2
      self.w = jnp.where(conn, 1.0, 0.0) * jnp.concatenate(
        [jnp.full((n_exc, 1), 0.3), jnp.full((n_inh, 1), -1.2)])
      self.e_late = self.E.prefetch_delay('spike', 1.0)   # 10 steps
      self.i_late = self.I.output_delay(0.5)              # 5 steps

    def update(self, i):
      with lib.environ.context(i=i, t=i * lib.environ.get_dt()):
        pre = jnp.concatenate([self.e_late(), self.i_late()])
        rec = pre @ self.w
        noise = lib.random.randn(n_exc + n_inh) * 1.0
        drive = 2.0 + rec + noise
        se = self.E(drive[:n_exc])
        si = self.I(drive[n_exc:])
        return jnp.concatenate([se, si]), self.E.V.value

  with lib.environ.context(dt=0.1):
    lib.random.seed(2024)
    net = EINet()
    lib.nn.init_all_states(net)
    spikes, v = lib.transform.for_loop(net.update, np.arange(steps))
  return net, np.asarray(spikes), np.asarray(v)


def test_ei_network_spike_trains_match_brainstate():
  net, spikes, v = _ei_network(bsn)
  _, ref_spikes, ref_v = _ei_network(brainstate)
  assert spikes.shape == (120, 40)
  assert spikes.sum() > 50  # the network is active
  np.testing.assert_array_equal(spikes, ref_spikes)
  np.testing.assert_allclose(v, ref_v, rtol=1e-5, atol=1e-5)
  # the delays are States of the network, found by nnx and by states()
  from flax import nnx
  delays = net.states(bsn.DelayState)
  assert len(delays) == 2
  assert len(jax.tree.leaves(nnx.state(net, bsn.DelayState))) == 2


def test_dynamics_registries_and_errors_match_brainstate():
  for lib in (bsn, brainstate):
    d = lib.nn.Dynamics((2, 3))
    assert d.varshape == (2, 3) and d.out_size == (2, 3)
    with pytest.raises(ValueError, match='"in_size" must be int'):
      lib.nn.Dynamics('a')
    with pytest.raises(ValueError, match='"in_size" must be int'):
      lib.nn.Dynamics([])
    calls = []

    class Before(lib.nn.Module):
      def __call__(self, *args):
        calls.append(('before', args))

    class After(lib.nn.Module):
      def __call__(self, *args):
        calls.append(('after', args))

    class Echo(lib.nn.Dynamics):
      def update(self, x):
        return x * 2

    e = Echo(1)
    e.add_before_update('b', Before())
    e.add_before_update('bi', lib.nn.receive_update_input(Before()))
    e.add_after_update('a', After())
    e.add_after_update('an', lib.nn.not_receive_update_output(After()))
    with pytest.raises(KeyError, match='has been registered in before_updates'):
      e.add_before_update('b', Before())
    with pytest.raises(KeyError, match='is not registered in after_updates'):
      e.get_after_update('zz')
    assert e.has_after_update('a') and not e.has_before_update('zz')
    assert e(3) == 6
    assert calls == [('before', ()), ('before', (3,)), ('after', (6,)), ('after', ())]
    with pytest.raises(AttributeError, match='should have an `W` attribute'):
      e.prefetch('W')()
    lib.nn.init_maybe_prefetch(1.0)
    m = lib.nn.not_receive_update_input(lib.nn.receive_update_output(After()))
    assert not hasattr(m, '_receive_update_input')



def _unit_run(lib):
  import brainunit as u
  with lib.environ.context(dt=0.1 * u.ms):
    class N(lib.nn.Dynamics):
      def init_state(self, *a, **k):
        self.V = lib.ShortTermState(jnp.full(2, -70.0) * u.mV)

      def update(self, i):
        self.V.value = lib.nn.exp_euler_step(
          lambda v, i: (-(v + 65.0 * u.mV) + i) / (10.0 * u.ms), self.V.value, i)
        return self.V.value

    n = N(2)
    late = n.prefetch_delay('V', 0.3 * u.ms)
    lib.nn.init_all_states(n)
    reads = []
    for k in range(6):
      n(jnp.array([20.0, 5.0 * k]) * u.mV)
      reads.append((n.V.value, late()))
    d = lib.nn.Delay(jnp.zeros(2), time=0.5 * u.ms, update_every=0.2 * u.ms)
    d.init_state()
    for k in range(6):
      d.update(jnp.full(2, float(k)))
    return reads, d.retrieve_at_step(1), d.max_length, d.update_every_step


def test_brainunit_times_states_and_exp_euler_match_brainstate():
  import brainunit as u
  ours, ref = _unit_run(bsn), _unit_run(brainstate)
  for (v1, l1), (v2, l2) in zip(ours[0], ref[0]):
    assert u.get_unit(v1) == u.get_unit(v2) == u.mV
    _close(v1, v2, rtol=1e-6)
    _close(l1, l2, rtol=1e-6)
  _close(ours[1], ref[1])
  assert ours[2:] == ref[2:]
  # an output delay of a Quantity output keeps its unit
  with bsn.environ.context(dt=0.1 * u.ms):
    class Id(bsn.nn.Dynamics):
      def update(self, x):
        return x

    m = Id(2)
    late = m.output_delay(0.2 * u.ms)
    bsn.nn.init_all_states(m)
    for k in range(4):
      m(jnp.full(2, float(k)) * u.mV)
    assert u.get_unit(late()) == u.mV
    _close(late(), jnp.full(2, 1.0))


def test_take_aware_unit_delay_and_diffusion_unit_check_match_brainstate():
  import brainunit as u
  out = []
  for lib in (bsn, brainstate):
    with lib.environ.context(dt=0.1):
      d = lib.nn.Delay(jnp.zeros((2,)) * u.mV, time=1.0, take_aware_unit=True)
      d.register_entry('e', 0.5)
      d.init_state()
      for i in range(10):
        d.update(jnp.ones((2,)) * i * u.mV)
      r = d.at('e')
    assert u.get_unit(r) == u.mV
    out.append(u.get_mantissa(r))
    with lib.environ.context(dt=0.1 * u.ms):
      with pytest.raises(ValueError, match='Unit mismatch between drift and diffusion'):
        lib.nn.exp_euler_step(lambda v: -v / (10 * u.ms), lambda v: 1.0 * u.mV, jnp.ones(2) * u.mV)
  _close(out[0], out[1])


def test_hidata_subclasses_are_dataclasses():
  import dataclasses

  class State(bsn.nn.HiData):
    x: float

  assert dataclasses.is_dataclass(bsn.nn.HiData) and dataclasses.is_dataclass(State)
  s = State(x=1.0, name='s')
  assert s.x == 1.0 and jax.tree.leaves(s) == [1.0]
