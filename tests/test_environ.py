"""brainstate_nnx.environ against real BrainState's environ (same program, same result/error)."""

import subprocess
import sys
import threading
import warnings

from conftest import oracle
bst = oracle()  # real BrainState 0.5.4, the oracle
import brainunit as u
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bsn

LIBS = (bst, bsn)


def _reset(lib):
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    lib.environ.reset()


@pytest.fixture(autouse=True)
def clean_env():
  for lib in LIBS:
    _reset(lib)
  yield
  for lib in LIBS:
    _reset(lib)


def outcome(fn):
  """``('ok', value)`` or ``('err', type name, message)``."""
  try:
    return ('ok', fn())
  except Exception as e:  # noqa: BLE001 - we compare the error itself
    return ('err', type(e).__name__, str(e))


def same(program):
  """Runs ``program(lib)`` on BrainState and brainstate_nnx; returns the common outcome."""
  theirs = outcome(lambda: program(bst))
  _reset(bst)
  mine = outcome(lambda: program(bsn))
  _reset(bsn)
  assert mine == theirs
  return mine


def test_set_get_all_pop_match_brainstate():
  def program(b):
    e = b.environ
    e.set(dt=0.1, custom='a', fit=False)
    out = [e.get('dt'), e.get_dt(), e.get('custom'), e.get('missing', 3), e.all()]
    out.append(e.pop('custom'))
    out.append(e.pop('custom', 'gone'))
    out.append(e.all())
    return out

  res = same(program)
  assert res[1][4] == {'precision': 32, 'dt': 0.1, 'custom': 'a', 'fit': False}


@pytest.mark.parametrize('program', [
  lambda b: b.environ.get('nothing'),
  lambda b: b.environ.get('nothing', desc='the time step'),
  lambda b: b.environ.pop('nothing'),
  lambda b: b.environ.get_dt(),
  lambda b: b.environ.set(dt=[0.1, 0.2]),
  lambda b: b.environ.set(precision=12),
  lambda b: b.environ.set_precision('fp32'),
  lambda b: b.environ.set_platform('quantum'),
  lambda b: b.environ.set_host_device_count(0),
  lambda b: b.environ.register_default_behavior(1, print),
  lambda b: b.environ.register_default_behavior('k', 3),
], ids=['get', 'get-desc', 'pop', 'get_dt', 'dt-not-scalar', 'precision', 'set_precision',
        'platform', 'host-count', 'behaviour-key', 'behaviour-callable'])
def test_errors_match_brainstate(program):
  res = same(program)
  assert res[0] == 'err'


def test_context_nesting_and_restore_on_error_match_brainstate():
  def program(b):
    e = b.environ
    e.set(dt=1.0)
    seen = []
    with e.context(dt=0.1, fit=True) as ctx:
      seen.append((e.get_dt(), e.get('fit'), ctx['dt']))
      with e.context(dt=0.01):
        seen.append((e.get_dt(), e.get('fit')))
        try:
          with e.context(fit=False):
            seen.append(e.get('fit'))
            raise RuntimeError('boom')
        except RuntimeError:
          pass
        seen.append(e.get('fit'))
      seen.append(e.get_dt())
    seen.append((e.get_dt(), e.get('fit', None), e.all()))
    return seen

  res = same(program)
  assert res[1] == [(0.1, True, 0.1), (0.01, True), False, True, 0.1, (1.0, None, {'precision': 32, 'dt': 1.0})]


@pytest.mark.parametrize('program', [
  lambda b: b.environ.context(platform='cpu').__enter__(),
  lambda b: b.environ.context(host_device_count=2).__enter__(),
  lambda b: b.environ.context(precision=7).__enter__(),
], ids=['platform', 'host_device_count', 'precision'])
def test_context_rejections_match_brainstate(program):
  assert same(program)[0] == 'err'


def test_pop_inside_context_raises_like_brainstate():
  def program(b):
    b.environ.set(a=1)
    with b.environ.context(a=2):
      with b.environ.context(a=3):
        return b.environ.pop('a')

  res = same(program)
  assert res[:2] == ('err', 'ValueError') and '2 context(s)' in res[2]


@pytest.mark.parametrize('precision', [8, 16, 32, 64, 'bf16', '32'])
def test_dtypes_and_tolerance_follow_precision_like_brainstate(precision):
  def program(b):
    e = b.environ
    with e.context(precision=precision):
      r = [e.get_precision(), e.dftype(), e.ditype(), e.dutype(), e.dctype(), e.tolerance()]
      if precision != 8:  # BrainState cannot draw float8 normals either
        r.append(b.random.randn(2).dtype)
    r.append(e.get_precision())
    return [str(x) for x in r]

  same(program)


def test_set_precision_64_enables_x64_like_brainstate():
  import jax

  def program(b):
    b.environ.set_precision(64)
    x64 = jax.config.jax_enable_x64
    b.environ.set_precision(32)
    return x64, jax.config.jax_enable_x64, b.environ.dftype()

  assert same(program)[1] == (True, False, np.float32)


def test_default_behaviours_match_brainstate():
  def program(b):
    e = b.environ
    calls = []
    e.register_default_behavior('dt', lambda v: calls.append(('dt', v)))
    dup = outcome(lambda: e.register_default_behavior('dt', print))
    e.register_default_behavior('dt', lambda v: calls.append(('dt2', v)), replace_if_exist=True)
    e.set(dt=0.5)
    with e.context(dt=0.25):
      pass
    listed = e.list_registered_behaviors()
    removed = (e.unregister_default_behavior('dt'), e.unregister_default_behavior('dt'))
    e.set(dt=0.1)
    return calls, dup, listed, removed

  res = same(program)
  assert res[1][0] == [('dt2', 0.5), ('dt2', 0.25), ('dt2', 0.5)]


def test_failing_behaviour_warns_like_brainstate():
  def program(b):
    def bad(v):
      raise ValueError('nope')
    b.environ.register_default_behavior('x', bad)
    with warnings.catch_warnings(record=True) as w:
      warnings.simplefilter('always')
      b.environ.set(x=1)
      with b.environ.context(x=2):
        pass
    return [(type(x.message).__name__, str(x.message)) for x in w]

  res = same(program)
  assert len(res[1]) == 3 and all(k == 'RuntimeWarning' for k, _ in res[1])


def test_custom_environment_state_is_separate_like_brainstate():
  def program(b):
    env = b.environ.EnvironmentState()
    b.environ.set(dt=0.3, env=env)
    with b.environ.context(precision=64, env=env):
      inner = (b.environ.get('precision', env=env), str(b.environ.dftype(env=env)))
    return inner, b.environ.all(env=env), b.environ.get('dt', 'unset')

  assert same(program)[1] == ((64, str(np.float64)), {'precision': 32, 'dt': 0.3}, 'unset')


def test_threads_have_their_own_settings_like_brainstate():
  def program(b):
    b.environ.set(dt=0.1)
    results = {}

    def worker(i):
      results[f'start{i}'] = b.environ.all()
      b.environ.set(dt=float(i))
      with b.environ.context(fit=bool(i % 2)):
        results[f'ctx{i}'] = (b.environ.get_dt(), b.environ.get('fit'))
      results[f'end{i}'] = b.environ.get('fit', None)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    return sorted(results.items()), b.environ.get_dt()

  res = same(program)
  assert dict(res[1][0])['start1'] == {'precision': 32}   # a new thread starts fresh
  assert res[1][1] == 0.1


def test_concurrent_contexts_do_not_leak_between_threads():
  errors = []

  def worker(i):
    for k in range(50):
      with bsn.environ.context(fit=i, dt=k):
        if bsn.environ.get('fit') != i or bsn.environ.get_dt() != k:
          errors.append((i, k))

  threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert errors == [] and bsn.environ.get('fit', None) is None


def test_dt_accepts_brainunit_quantities_like_brainstate():
  def program(b):
    b.environ.set(dt=0.1 * u.ms)
    with b.environ.context(dt=0.05 * u.ms):
      inner = b.environ.get_dt()
    bad = outcome(lambda: b.environ.set(dt=u.math.ones(2) * u.ms))
    return str(inner), str(b.environ.get_dt()), bad

  res = same(program)
  assert res[1][0] == '0.05 ms' and res[1][2][0] == 'err'


def test_jit_traces_once_per_effective_settings():
  # a jitted function is traced again exactly when the effective settings
  # differ from every earlier call's: by value, and by type (``1`` is not
  # ``True``); Quantities and arrays count by value
  traces = []

  @bsn.transform.jit
  def f(x):
    traces.append(1)
    return x * 2.0

  def new_trace():
    n = len(traces)
    assert float(f(1.5)) == 3.0
    return len(traces) - n == 1

  assert new_trace()
  assert not new_trace()                    # same settings: the trace is reused
  with bsn.environ.context(fit=True):
    assert new_trace()
  assert not new_trace()
  with bsn.environ.context(fit=True):
    assert not new_trace()
  with bsn.environ.context(fit=False):
    assert new_trace()
  with bsn.environ.context(fit=1):          # same value, different type: another trace
    assert new_trace()
  with bsn.environ.context(dt=0.1 * u.ms):
    assert new_trace()
  with bsn.environ.context(dt=0.1 * u.ms):
    assert not new_trace()
  with bsn.environ.context(dt=0.2 * u.ms):
    assert new_trace()
  with bsn.environ.context(dt=jnp.asarray(0.1)):
    assert new_trace()
  with bsn.environ.context(dt=jnp.asarray(0.1)):
    assert not new_trace()
  bsn.environ.set(mode=bsn.mixin.Training())
  try:
    assert new_trace()
    bsn.environ.set(mode=bsn.mixin.Training())
    assert not new_trace()
  finally:
    bsn.environ.pop('mode')
  assert not new_trace()                    # back to the first settings


def test_core_imports_and_works_without_brainunit():
  code = (
    "import sys\n"
    "sys.modules['brainunit'] = None\n"
    "sys.modules['saiunit'] = None\n"
    "import brainstate_nnx as bs\n"
    "bs.environ.set(dt=0.1)\n"
    "with bs.environ.context(fit=True):\n"
    "  assert bs.environ.get('fit') is True\n"
    "bs.random.seed(0)\n"
    "w = bs.nn.init.KaimingNormal()((3, 2))\n"
    "p = bs.nn.init.param(bs.nn.init.Normal(unit=None), (2,), batch_size=3)\n"
    "assert w.shape == (3, 2) and p.shape == (3, 2)\n"
    "assert not isinstance(1.0, type(None)) and isinstance(1.0, bs.typing.ArrayLike)\n"
    "assert 'brainunit' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    "print('ok')\n"
  )
  r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                     env={**__import__('os').environ, 'JAX_PLATFORMS': 'cpu'})
  assert r.returncode == 0, r.stderr
  assert r.stdout.strip() == 'ok'

