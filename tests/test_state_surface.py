"""BrainState's State surface on brainstate_nnx.

BrainState 0.5.4's own ``_state_test.py`` is run against brainstate_nnx (see
``_bs_port``), minus the cases listed in ``_DIFFERENT`` with the reason; the
other tests are differential (same program on both packages) or check
issue 8's silent cases 6 and 10 against plain JAX.
"""

import copy
import gc
import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import oracle
brainstate = oracle()  # real BrainState 0.5.4, the oracle
import brainstate_nnx as bsn

from _bs_port import collect, run_case
from _call_count import python_calls, read_write_calls

# Python calls of one read and one write of a State before any test here ran
# (no hook anywhere yet): see test_zz_ported_suites_leave_the_hook_switch_off
gc.collect()
_FRESH_COST = read_write_calls(bsn.State(jnp.zeros(2)), jnp.ones(2))

_UNITS = 'brainstate_nnx does not use brainunit: values are plain arrays'
_DIFFERENT = {
  'TestNewStateCatcherCoverage.test_catcher_collection_methods': 'BrainState-internal class NewStateCatcher',
  'TestNewStateCatcherCoverage.test_catcher_decrease_stack_level': 'BrainState-internal class NewStateCatcher',
  'TestNewStateCatcherCoverage.test_catcher_remove_and_clear': 'BrainState-internal class NewStateCatcher',
  'TestStateAuditRegressions.test_a10_exit_out_of_order_raises_and_preserves_stack':
    "BrainState's internal TRACE_CONTEXT (StateTraceStack's own out-of-order check is tested below)",
  'TestStateAuditRegressions.test_a10_normal_nested_exit_ok': "BrainState's internal TRACE_CONTEXT",
  'TestStateAuditRegressions.test_a7_numel_poisoned_raises': "BrainState's internal poisoning API",
  'TestStateAuditRegressions.test_a8_num_state_mismatch_raises_valueerror':
    'HiddenTreeState.name2index is derived from the stored names, it cannot be corrupted',
  'TestStateAuditRegressions.test_l1_class_default_been_writen': "BrainState's internal _been_writen flag",
  'TestStateAuditRegressions.test_l1_copy_preserves_been_writen': "BrainState's internal _been_writen flag",
  'TestStateMethodsCoverage.test_init_from_state_metadata':
    'BrainState-internal class StateMetadata, not part of its public API',
  'TestStateSubclassesCoverage.test_delay_and_nonbatch_states':
    'BrainState-internal class NonBatchState, not part of its public API '
    '(its DelayState half: test_delay_state_matches_brainstate)',
  'TestStateCreatedInsideTrace.test_state_kept_from_inside_jit_read_raises':
    'issue 8 case 4: a State created inside transform.jit keeps the concrete value the '
    'call computed instead of raising on read (covered by the jit tests)',
  'TestStateSerializationRoundtrip.test_treefy_state_pytree_roundtrip': "BrainState's private _testing helpers",
  'TestTracerWriteGuard.test_read_inside_raw_jax_jit_still_works':
    'deliberately stricter: a State read under a raw jax.jit raises (its value would go stale)',
}


def _uses_units(case) -> bool:
  src = inspect.getsource(getattr(type(case), case._testMethodName))
  return bool(re.search(r'\bu\.(mV|ms|nA|mA|Quantity|math|get_unit|siemens|volt|second)', src))


_CASES = []
for _name, _case in collect('_state_test.py'):
  if _name in _DIFFERENT or _uses_units(_case):
    continue
  _CASES.append(pytest.param(_case, id=_name))


@pytest.fixture(autouse=True)
def _no_global_hooks():
  yield
  bsn.clear_state_hooks()


@pytest.mark.parametrize('case', _CASES)
def test_brainstate_state_suite(case):
  run_case(case)


def test_port_covers_most_of_brainstate_suite():
  assert len(_CASES) >= 200


# -- State family vs BrainState ---------------------------------------------

def test_hidden_group_and_tree_match_brainstate():
  x = np.arange(12.0, dtype=np.float32).reshape(4, 3)
  out = {}
  for lib in (brainstate, bsn):
    g = lib.HiddenGroupState(jnp.asarray(x))
    g.set_value({1: jnp.full(4, -1.0), '2': jnp.ones(4)})
    t = lib.HiddenTreeState({'v': jnp.zeros(4), 'i': jnp.ones(4)})
    t.set_value({'i': jnp.full(4, 7.0)})
    out[lib.__name__] = (g.value, g.get_value(0), g.varshape, g.num_state, t.value,
                         t.get_value('i'), t.get_value(-2), t.varshape, t.num_state,
                         t.name2index)
    for bad, err in [(lambda: g.get_value(3), IndexError), (lambda: g.get_value('x'), KeyError),
                     (lambda: g.get_value(1.0), TypeError), (lambda: t.set_value(3), TypeError),
                     (lambda: t.set_value({'v': jnp.ones(2)}), ValueError),
                     (lambda: lib.HiddenGroupState(jnp.ones(3)), ValueError),
                     (lambda: lib.HiddenState(1.0), TypeError),
                     (lambda: lib.HiddenTreeState({'a': jnp.ones(2), 'b': jnp.ones(3)}), ValueError)]:
      with pytest.raises(err):
        bad()
  a, b = out['brainstate'], out['brainstate_nnx']
  for x_bs, x_nnx in zip(a, b):
    if isinstance(x_bs, dict) or isinstance(x_bs, tuple) or isinstance(x_bs, int):
      assert x_bs == x_nnx
    else:
      np.testing.assert_array_equal(x_nnx, x_bs)


def test_group_state_is_an_nnx_variable_and_survives_split_merge():
  from flax import nnx

  class M(bsn.nn.Module):
    def __init__(self):
      super().__init__()
      self.h = bsn.HiddenTreeState({'v': jnp.zeros(3), 'w': jnp.ones(3)})

  m = M()
  graphdef, state = nnx.split(m)
  m2 = nnx.merge(graphdef, state)
  assert isinstance(m2.h, nnx.Variable) and m2.h.name2index == {'v': 0, 'w': 1}
  np.testing.assert_array_equal(m2.h.get_value('w'), jnp.ones(3))

  @bsn.transform.jit
  def step():
    m.h.set_value({'v': m.h.get_value('v') + 1})

  step(); step()
  np.testing.assert_array_equal(m.h.get_value('v'), jnp.full(3, 2.0))


def test_state_methods_match_brainstate():
  res = {}
  for lib in (brainstate, bsn):
    s = lib.ShortTermState(jnp.arange(3.0), name='s')
    r = s.replace(jnp.ones(3))
    c = s.copy()
    ref = s.to_state_ref()
    back = jax.tree.map(lambda v: v * 2, ref).to_state()
    s.restore_value(jnp.zeros(3))
    with pytest.raises(ValueError):
      s.restore_value((jnp.zeros(3), jnp.zeros(3)))
    with pytest.raises(ValueError):
      s.replace(lib.LongTermState(jnp.zeros(3)))
    with lib.check_state_value_tree():
      with pytest.raises(ValueError):
        s.value = {'a': jnp.zeros(3)}
    s.value = {'a': jnp.zeros(3)}  # outside the block: allowed
    res[lib.__name__] = [type(r).__name__, r.name, np.asarray(r.value), type(c).__name__,
                         np.asarray(c.value), type(back).__name__, back.name, np.asarray(back.value),
                         ref.name, s.numel(), s.stack_level, s.value_call(lambda v: v + 1)['a'].tolist(),
                         s.source_info is not None, type(s.replace(r)).__name__]
  a, b = res['brainstate'], res['brainstate_nnx']
  for x, y in zip(a, b):
    if isinstance(x, np.ndarray):
      np.testing.assert_array_equal(y, x)
    else:
      assert x == y


def test_delay_state_matches_brainstate():
  res = {}
  for lib in (brainstate, bsn):
    ds = lib.DelayState(jnp.ones((2,)))
    before = np.asarray(ds.value)
    ds.value = jnp.full((2,), 3.0)
    res[lib.__name__] = (before.tolist(), np.asarray(ds.value).tolist(),
                         [c.__name__ for c in (lib.ShortTermState, lib.State)
                          if isinstance(ds, c)], isinstance(ds, lib.LongTermState))
  assert res['brainstate_nnx'] == res['brainstate'] == (
    [1.0, 1.0], [3.0, 3.0], ['ShortTermState', 'State'], False)


def test_state_dict_manager_and_trace_stack_match_brainstate():
  res = {}
  for lib in (brainstate, bsn):
    w = lib.ParamState(jnp.ones(2))
    v = lib.ShortTermState(jnp.zeros(2))
    m = lib.StateDictManager(w=w, v=v)
    m.assign_values({'v': jnp.array([3.0, 4.0])})
    params, rest = m.split_values(lib.ParamState)
    with lib.StateTraceStack() as trace:
      v.value = w.value + v.value
    res[lib.__name__] = (sorted(params), rest['v'].tolist(), sorted(m.to_dict_values()),
                         len(trace.get_read_states()), len(trace.get_write_states()),
                         trace.been_writen, [x.tolist() for x in trace.original_state_values],
                         [x.tolist() for x in trace.get_state_values()])
    trace.recovery_original_values()
    np.testing.assert_array_equal(v.value, [3.0, 4.0])
  assert res['brainstate'] == res['brainstate_nnx']


def test_trace_stack_is_transparent_inside_jit():
  a = bsn.State(jnp.ones(2))
  b = bsn.State(jnp.zeros(2))
  seen = []

  @bsn.transform.jit
  def f():
    with bsn.StateTraceStack() as t:
      b.value = b.value + a.value
    seen.append(len(t.states))
    return b.value

  for k in range(1, 4):
    np.testing.assert_array_equal(f(), jnp.full(2, float(k)))
  assert seen and all(n == 2 for n in seen)


def test_trace_stack_exit_out_of_order_raises():
  outer, inner = bsn.StateTraceStack(), bsn.StateTraceStack()
  outer.__enter__(); inner.__enter__()
  with pytest.raises(RuntimeError):
    outer.__exit__(None, None, None)
  inner.__exit__(None, None, None); outer.__exit__(None, None, None)


def test_check_state_jax_tracer_matches_brainstate():
  for lib in (brainstate, bsn):
    a = lib.ShortTermState(jnp.zeros(2))

    @jax.jit
    def f(x):
      a.value = jnp.zeros(2)
      return x

    with lib.check_state_jax_tracer():
      with pytest.raises(lib.TraceContextError):
        f(1.0)


def test_zz_ported_suites_leave_the_hook_switch_off():
  # (runs last in this file) BrainState's suites register hooks on many
  # States; once those States are gone, reads and writes take the short path
  # again: as many Python calls as before any test ran, fewer than with a
  # hook on another State or inside a check_state_value_tree block
  gc.collect()
  s = bsn.State(jnp.zeros(2))
  now = read_write_calls(s, jnp.ones(2))
  assert now == _FRESH_COST
  with bsn.check_state_value_tree():
    assert python_calls(lambda: s.value) > now[0]
  other = bsn.State(jnp.zeros(1))
  h = other.register_hook('read', lambda c: None)
  hooked = read_write_calls(s, jnp.ones(2))
  assert hooked[0] > now[0] and hooked[1] > now[1]
  h.remove()
