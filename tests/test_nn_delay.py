"""Delays beyond tests/test_nn_dynamics.py: StateWithDelay, prefetch handles, the
interpolation registry, pytree histories, reset, and delay reads inside for_loop --
each program run on BrainState 0.5.4 and on brainstate_nnx with the same numbers."""

import brainstate
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bsn

LIBS = [brainstate, bsn]


def _eq(a, b, tol=1e-6):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def _state_with_delay(lib):
  class Mod(lib.nn.Module):
    def __init__(self):
      super().__init__()
      self.V = lib.State(jnp.zeros(3))
      self.plain = jnp.zeros(3)

  with lib.environ.context(dt=0.1):
    mod = Mod()
    swd = lib.nn.StateWithDelay(mod, 'V')
    assert swd.state is mod.V
    swd.register_entry('e', 0.5)
    late = swd.access('late', 0.3)
    swd.init_state()
    reads = []
    for i in range(9):
      mod.V.value = jnp.arange(3.0) * i
      swd.update()
      with lib.environ.context(t=i * 0.1):
        reads.append((swd.at('e'), late(), swd.retrieve_at_time(i * 0.1 - 0.25)))
    ptr = int(swd.write_ptr.value)
    swd.reset_state()
    after = (int(swd.write_ptr.value), swd.history.value)
    with pytest.raises(TypeError):
      _ = lib.nn.StateWithDelay(mod, 'plain').state
  return reads, ptr, after, swd.max_length, type(late).__name__


def test_state_with_delay_matches_brainstate():
  ref, ours = (_state_with_delay(lib) for lib in LIBS)
  assert ours[1:2] + ours[3:] == ref[1:2] + ref[3:]
  _eq(ours[0], ref[0])
  assert ours[2][0] == ref[2][0] == 0
  _eq(ours[2][1], ref[2][1])
  assert ours[4] == 'DelayAccess'


def _prefetch_program(lib):
  """A neuron group read through every prefetch handle, in one for_loop."""

  class Group(lib.nn.Dynamics):
    def init_state(self, batch_size=None, **kwargs):
      self.x = lib.HiddenState(jnp.zeros(self.varshape))

    def update(self, inp):
      self.x.value = self.x.value * 0.5 + inp
      return self.x.value * 2.0

  class Net(lib.nn.Module):
    def __init__(self):
      super().__init__()
      self.g = Group(4)
      self.now = self.g.prefetch('x')
      self.late_x = self.g.prefetch('x').delay.at(0.3)
      self.late_x2 = self.g.prefetch_delay('x', 0.2, 1)   # element 1 only
      self.late_out = self.g.output_delay(0.2)

    def update(self, i):
      with lib.environ.context(i=i, t=i * 0.1):
        reads = (self.now(), self.late_x(), self.late_x2(), self.late_out())
        self.g(jnp.arange(4.0) + i)
        return reads

  with lib.environ.context(dt=0.1):
    net = Net()
    lib.nn.init_all_states(net)
    out = lib.transform.for_loop(net.update, np.arange(8))
    kinds = sorted(type(h).__name__ for h in (net.now, net.late_x, net.late_x2, net.late_out))
    n_delays = len(net.states(lib.DelayState))
  return out, kinds, n_delays


def test_prefetch_handles_match_brainstate():
  (ref, kinds_ref, nd_ref), (ours, kinds, nd) = (_prefetch_program(lib) for lib in LIBS)
  _eq(ours, ref)
  assert kinds == kinds_ref == ['OutputDelayAt', 'Prefetch', 'PrefetchDelayAt', 'PrefetchDelayAt']
  assert nd == nd_ref
  assert float(np.abs(np.asarray(ours[1])).sum()) > 0   # the delayed reads saw real values


def _registry_and_pytree(lib):
  reg = lib.nn.InterpolationRegistry
  methods = sorted(reg.list_methods())

  def half(history, indices, float_idx, max_length):
    i = jnp.asarray(jnp.floor(float_idx), jnp.int32) % max_length
    return jax.tree.map(lambda h: 0.5 * h[(i,) + tuple(indices)], history)

  reg.register('half_test', half)
  assert reg.get('half_test') is half
  with lib.environ.context(dt=1.0):
    tree = {'a': jnp.zeros(2), 'b': jnp.zeros((2, 3))}
    d = lib.nn.Delay(tree, time=4.0, interpolation='half_test')
    d.init_state(batch_size=None)
    reads = []
    for i in range(7):
      d.update({'a': jnp.full(2, float(i)), 'b': jnp.full((2, 3), -float(i))})
      with lib.environ.context(t=float(i)):
        reads.append((d.retrieve_at_time(i - 1.5), d.retrieve_at_step(2), d.retrieve_at_step(1, 0)))
    hist_shapes = jax.tree.map(jnp.shape, d.history.value)
  return methods, reads, hist_shapes


def test_interpolation_registry_and_pytree_history_match_brainstate():
  (m_ref, r_ref, h_ref), (m, r, h) = (_registry_and_pytree(lib) for lib in LIBS)
  assert m == m_ref and {'linear', 'nearest', 'cubic', 'hermite'} <= set(m)
  assert h == h_ref
  _eq(r, r_ref)


@pytest.mark.parametrize('lib', LIBS, ids=['brainstate', 'brainstate_nnx'])
def test_jit_error_check_on_too_long_delay(lib):
  with lib.environ.context(dt=0.1, jit_error_check=True):
    d = lib.nn.Delay(jnp.zeros(2), time=0.2)
    d.init_state()
    d.update(jnp.ones(2))
    with pytest.raises(Exception, match='less than the maximum delay'):
      jax.block_until_ready(d.retrieve_at_step(10))
