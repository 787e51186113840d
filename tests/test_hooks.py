"""State hooks: BrainState's own hook tests, run on brainstate_nnx, and
differential checks against real BrainState 0.5.4."""

import gc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import oracle
brainstate = oracle()  # real BrainState 0.5.4, the oracle
import brainstate_nnx as bsn

from _bs_port import collect, run_case
from _call_count import python_calls, read_write_calls

_FILES = [
  '_state_hook_core_test.py',
  '_state_hook_context_test.py',
  '_state_hook_manager_test.py',
  '_state_global_hooks_test.py',
  '_state_hooks_test.py',
]
# (file, test id): why brainstate_nnx differs
_DIFFERENT = {
  ('_state_hook_context_test.py', 'TestHookContext.test_state_property_after_gc'):
    'a State cannot be weakly referenced (nnx.Variable has __slots__); the '
    'context holds it strongly while it exists',
}

_CASES = []
for _f in _FILES:
  for _name, _case in collect(_f):
    if (_f, _name) not in _DIFFERENT:
      _CASES.append(pytest.param(_case, id=f'{_f[:-3]}::{_name}'))


@pytest.fixture(autouse=True)
def _no_global_hooks():
  bsn.clear_state_hooks()
  brainstate.clear_state_hooks()
  yield
  bsn.clear_state_hooks()
  brainstate.clear_state_hooks()


@pytest.mark.parametrize('case', _CASES)
def test_brainstate_hook_suite(case):
  run_case(case)


def test_port_covers_brainstate_suite():
  assert len(_CASES) >= 75


def _program(lib, log):
  """One hook program; returns the log of hook calls and the final value."""
  s = lib.State(jnp.array([1.0, 2.0]), name='s')
  lib.register_state_hook('read', lambda c: log.append(('g-read', c.state_name)), priority=0)
  s.register_hook('read', lambda c: log.append(('read', float(c.value.sum()))))
  s.register_hook('write_before', lambda c: log.append(('wb-low', float(c.transformed_value.sum()))), priority=-1)

  def clip(c):
    c.transformed_value = jnp.clip(c.transformed_value, -1.0, 1.0)
    log.append(('wb-clip', float(c.value.sum())))

  s.register_hook('write_before', clip, priority=5)
  s.register_hook('write_after', lambda c: log.append(('wa', float(c.old_value.sum()), float(c.value.sum()))))
  s.register_hook('restore', lambda c: log.append(('restore', float(c.value.sum()))))
  _ = s.value
  s.value = jnp.array([3.0, -4.0])

  def cancel(c):
    c.cancel = True
    c.cancel_reason = 'no'

  h = s.register_hook('write_before', cancel, priority=10)
  with pytest.raises(lib.HookCancellationError):
    s.value = jnp.array([0.5, 0.5])
  h.remove()
  s.restore_value(jnp.array([7.0, 7.0]))
  log.append(('hooks', len(s.list_hooks()), len(lib.list_state_hooks('read'))))
  return s.value


def test_hook_program_matches_brainstate():
  log_bs, log_nnx = [], []
  v_bs = _program(brainstate, log_bs)
  v_nnx = _program(bsn, log_nnx)
  np.testing.assert_allclose(v_nnx, v_bs)
  assert log_nnx == log_bs


def test_init_hook_matches_brainstate():
  out = {}
  for lib in (brainstate, bsn):
    seen = []
    lib.register_state_hook('init', lambda c: seen.append((c.operation, c.init_metadata.get('_name'),
                                                          sorted(c.init_metadata.get('tag') or []),
                                                          float(c.value))))
    lib.ParamState(jnp.array(2.0), name='w', tag='t')
    lib.clear_state_hooks()
    out[lib.__name__] = seen
  assert out['brainstate_nnx'] == out['brainstate'] == [('init', 'w', ['t'], 2.0)]


def test_no_hook_means_fast_path():
  # Reading or writing a State costs a fixed number of Python calls while no
  # hook exists anywhere; a hook on another State (or a global one) makes
  # every read and write take the checked path (more calls), and removing it
  # brings back exactly the short one.
  gc.collect()
  s = bsn.State(jnp.zeros(2))
  x = jnp.ones(2)
  fast = read_write_calls(s, x)

  def slower():
    cost = read_write_calls(s, x)
    return cost[0] > fast[0] and cost[1] > fast[1]

  # a check_state_value_tree block takes the checked path with no hook to
  # run: reads cost more there, so ``fast`` is the short path itself
  with bsn.check_state_value_tree():
    assert python_calls(lambda: s.value) > fast[0]
  assert read_write_calls(s, x) == fast
  other = bsn.State(jnp.zeros(2))
  h = other.register_hook('read', lambda c: None)
  assert slower()  # the measurement tells the two paths apart
  h.remove()
  assert read_write_calls(s, x) == fast
  w = other.register_hook('write_after', lambda c: None)
  assert slower()
  w.remove()
  assert read_write_calls(s, x) == fast
  bsn.register_state_hook('write_after', lambda c: None)
  assert slower()
  bsn.clear_state_hooks()
  assert read_write_calls(s, x) == fast
  # a State dropped with its hooks still registered (here in a reference
  # cycle through the callback) releases the switch once collected
  s2 = bsn.State(jnp.zeros(1))
  s2.register_hook('read', lambda c, s2=s2: None)
  assert slower()
  del s2
  gc.collect()
  assert read_write_calls(s, x) == fast
  # the short path still reads and writes the value
  s.value = x
  np.testing.assert_array_equal(s.value, x)
  # and a hook on the State itself still runs
  seen = []
  h = s.register_hook('read', lambda c: seen.append(1))
  s.value
  h.remove()
  s.value
  assert seen == [1]


def test_hooks_under_jit_see_the_traced_read_and_values_are_correct():
  s = bsn.State(jnp.array([1.0, 2.0]))
  calls = []
  s.register_hook('read', lambda c: calls.append(type(c.value)))

  def clip(c):
    c.transformed_value = jnp.clip(c.transformed_value, -1.0, 1.0)

  s.register_hook('write_before', clip)

  @bsn.transform.jit
  def step(x):
    s.value = s.value + x
    return s.value

  ref = np.array([1.0, 2.0])
  for x in (0.5, -3.0, 2.0):
    ref = np.clip(ref + x, -1, 1)
    np.testing.assert_allclose(step(x), ref)
    np.testing.assert_allclose(s.value, ref)
  # hooks run while tracing (on tracers), not on every compiled call
  assert any(issubclass(t, jax.core.Tracer) for t in calls)


def test_hook_errors_follow_config():
  s = bsn.State(jnp.zeros(2))
  s.register_hook('read', lambda c: 1 / 0, name='bad')
  with pytest.warns(bsn.HookWarning, match="bad"):
    _ = s.value
  s.hooks.config = bsn.HookConfig(on_error='raise')
  with pytest.raises(bsn.HookExecutionError):
    _ = s.value
  with pytest.raises(bsn.HookRegistrationError):
    s.register_hook('nope', lambda c: None)


def test_copies_do_not_share_hooks():
  import copy
  s = bsn.State(jnp.zeros(2))
  s.register_hook('read', lambda c: None)
  for c in (s.copy(), copy.deepcopy(s), copy.copy(s), s.replace(jnp.ones(2))):
    assert isinstance(c, bsn.State) and not c.has_hooks()
  assert s.has_hooks('read')
