"""Event-driven connectivity vs BrainState 0.5.4 (which runs them on brainevent's kernels).

Same seed => the same connectivity indices and weights; the same outputs for
boolean, 0/1 and graded inputs, with and without a batch axis; the same
gradients with respect to spikes and weights; BrainState's construction errors.
"""

import brainevent.config
import brainstate as bst
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import brainstate_nnx as bsn

# brainevent's default CPU kernels need numba; its pure-JAX backend is the same math.
brainevent.config.set_backend('cpu', 'jax_raw')

N_IN, N_OUT = 20, 30


def _inputs():
  x = np.random.RandomState(0).rand(3, N_IN).astype(np.float32) - 0.3
  x = jnp.asarray(x)
  return {
    'graded': x[0],
    'graded_batch': x,
    'bool': x[0] > 0,
    'binary_batch': (x > 0).astype(jnp.float32),
  }


def _pair(ctor):
  out = []
  for lib in (bst, bsn):
    lib.random.seed(3)
    out.append(ctor(lib))
  return out


FIXED = {
  'homo': lambda lib: lib.nn.EventFixedProb(N_IN, N_OUT, 0.2, 1.5, seed=5),
  'hetero': lambda lib: lib.nn.EventFixedProb(N_IN, N_OUT, 0.2, lib.nn.init.Normal(), seed=5),
  'no_multi_vmap': lambda lib: lib.nn.EventFixedProb(
    N_IN, N_OUT, 0.2, lib.nn.init.Normal(), seed=5, allow_multi_conn=False),
  'no_multi_loop': lambda lib: lib.nn.EventFixedNumConn(
    N_IN, N_OUT, 4, 0.7, seed=9, allow_multi_conn=False, conn_init='for_loop'),
  'afferent': lambda lib: lib.nn.EventFixedProb(
    N_IN, N_OUT, 0.2, lib.nn.init.Normal(), seed=5, afferent_ratio=0.5),
  'float_conn': lambda lib: lib.nn.FixedNumConn(N_IN, N_OUT, 0.2, lib.nn.init.Normal(), seed=5),
  'float_conn_aff': lambda lib: lib.nn.FixedNumConn(N_IN, N_OUT, 3, 0.5, seed=2, afferent_ratio=0.6),
}


@pytest.mark.parametrize('kind', list(FIXED))
def test_fixed_num_conn_matches_brainstate(kind):
  a, b = _pair(FIXED[kind])
  np.testing.assert_array_equal(np.asarray(a.conn.indices), np.asarray(b.conn.indices))
  np.testing.assert_allclose(np.asarray(a.weight.value), np.asarray(b.weight.value))
  assert a.conn_num == b.conn_num
  if hasattr(a, 'pre_selected'):
    np.testing.assert_array_equal(np.asarray(a.pre_selected), np.asarray(b.pre_selected))
  assert [k for k in a.states()] == [k for k in b.states()]
  names = ['graded', 'bool', 'graded_batch', 'binary_batch'] if kind in ('homo', 'hetero') else ['graded']
  if not kind.startswith('float_conn'):  # brainevent's float path has no batched product to compare with
    names.append('binary_batch')
  for name in dict.fromkeys(names):
    x = _inputs()[name]
    ya, yb = a(x), b(x)
    assert ya.shape == yb.shape and ya.dtype == yb.dtype, name
    np.testing.assert_allclose(np.asarray(ya), np.asarray(yb), rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize('kind,xname', [
  ('homo', 'graded'), ('homo', 'binary_batch'), ('hetero', 'graded'),
  ('hetero', 'binary_batch'), ('float_conn', 'graded'),
])
def test_fixed_num_conn_gradients(kind, xname):
  x = _inputs()[xname]
  grads = []
  for lib, m in zip((bst, bsn), _pair(FIXED[kind])):
    w = m.weight.value

    def loss(x, w, m=m):
      m.weight.value = w
      return (m(x) ** 2).sum()

    grads.append(lib.transform.grad(loss, argnums=(0, 1))(x, w))
  for ga, gb in zip(*grads):
    np.testing.assert_allclose(np.asarray(ga), np.asarray(gb), rtol=1e-4, atol=1e-5)


def test_fixed_num_conn_jvp_and_reference():
  """The event product against a hand-written scatter; its JVP against BrainState's."""
  a, b = _pair(FIXED['hetero'])
  x = _inputs()['graded']
  idx, w = np.asarray(b.conn.indices), np.asarray(b.weight.value)
  ref = np.zeros(N_OUT, np.float32)
  for i in range(N_IN):
    np.add.at(ref, idx[i], w[i] * float(x[i] > 0))
  np.testing.assert_allclose(np.asarray(b(x)), ref, rtol=1e-5, atol=1e-6)

  outs = []
  for lib, m in zip((bst, bsn), (a, b)):
    def f(x, w, m=m):
      m.weight.value = w
      return m(x)
    outs.append(lib.transform.jvp(f, (x, jnp.asarray(w)), (0.5 * jnp.ones_like(x), jnp.ones_like(w))))
  for oa, ob in zip(*outs):
    np.testing.assert_allclose(np.asarray(oa), np.asarray(ob), rtol=1e-4, atol=1e-5)


def test_fixed_num_conn_in_jit_and_zero_conn():
  a, b = _pair(lambda lib: lib.nn.EventFixedProb(N_IN, N_OUT, 0.1, 0.3, seed=1))
  x = _inputs()['bool']
  np.testing.assert_allclose(np.asarray(bst.transform.jit(a)(x)), np.asarray(bsn.transform.jit(b)(x)))
  za, zb = _pair(lambda lib: lib.nn.FixedNumConn(N_IN, N_OUT, 0.0, 1.0, seed=1))
  assert za.conn_num == zb.conn_num == 0
  assert type(zb.weight).__name__ == 'FakeState'
  ya, yb = za(jnp.ones(N_IN)), zb(jnp.ones(N_IN))
  assert ya.shape == yb.shape == (N_OUT,) and not np.asarray(yb).any()


def test_fixed_num_conn_errors_and_alias():
  assert bsn.nn.EventFixedProb is bsn.nn.EventFixedNumConn
  assert issubclass(bsn.nn.EventFixedNumConn, bsn.nn.FixedNumConn)
  for kwargs in (dict(efferent_target='sideways'), dict(afferent_ratio=1.5)):
    for lib in (bst, bsn):
      with pytest.raises(AssertionError):
        lib.nn.FixedNumConn(N_IN, N_OUT, 0.1, 1.0, seed=1, **kwargs)
  for lib in (bst, bsn):
    with pytest.raises(AssertionError):
      lib.nn.FixedNumConn(N_IN, N_OUT, 1.5, 1.0, seed=1)
    with pytest.raises(NotImplementedError):
      lib.nn.FixedNumConn(N_IN, N_OUT, 0.2, 1.0, efferent_target='pre', seed=1)
  with pytest.raises(ValueError, match='Unknown method'):
    bsn.nn.FixedNumConn(N_IN, N_OUT, 3, 1.0, seed=1, allow_multi_conn=False, conn_init='bogus')
  with pytest.raises(ValueError, match='presynaptic'):
    bsn.nn.EventFixedProb(N_IN, N_OUT, 3, 1.0, seed=1)(jnp.ones(N_IN + 1))


LINEAR = {
  'matrix': lambda lib: lib.nn.EventLinear(N_IN, N_OUT, lib.nn.init.Normal()),
  'matrix_float': lambda lib: lib.nn.EventLinear(N_IN, N_OUT, lib.nn.init.Normal(), float_as_event=False),
  'scalar': lambda lib: lib.nn.EventLinear(N_IN, N_OUT, 1.5),
  'scalar_float': lambda lib: lib.nn.EventLinear(N_IN, N_OUT, 1.5, float_as_event=False),
}


@pytest.mark.parametrize('kind', list(LINEAR))
def test_event_linear_matches_brainstate(kind):
  a, b = _pair(LINEAR[kind])
  np.testing.assert_allclose(np.asarray(a.weight.value), np.asarray(b.weight.value))
  for name, x in _inputs().items():
    ya, yb = a(x), b(x)
    assert ya.shape == yb.shape and ya.dtype == yb.dtype, name
    np.testing.assert_allclose(np.asarray(ya), np.asarray(yb), rtol=1e-5, atol=1e-5, err_msg=name)
  x = _inputs()['graded_batch']
  grads = []
  for lib, m in zip((bst, bsn), (a, b)):
    w = m.weight.value

    def loss(x, w, m=m):
      m.weight.value = w
      return (m(x) ** 2).sum()

    grads.append(lib.transform.grad(loss, argnums=(0, 1))(x, w))
  for ga, gb in zip(*grads):
    np.testing.assert_allclose(np.asarray(ga), np.asarray(gb), rtol=1e-4, atol=1e-4)


def test_event_layers_are_flax_citizens():
  import optax
  m = bsn.nn.EventFixedProb(N_IN, N_OUT, 0.2, bsn.nn.init.Normal(), seed=5)
  lin = bsn.nn.EventLinear(N_IN, N_OUT, bsn.nn.init.Normal())
  for mod in (m, lin):
    params = nnx.state(mod, nnx.Param)
    assert list(params.keys()) == ['weight']
  x = (_inputs()['graded'] > 0).astype(jnp.float32)
  opt = nnx.Optimizer(m, optax.sgd(0.1), wrt=nnx.Param)

  @nnx.jit
  def step(m, opt):
    loss, g = nnx.value_and_grad(lambda m: (m(x) ** 2).sum())(m)
    opt.update(m, g)
    return loss

  w0 = np.asarray(m.weight.value)
  step(m, opt)
  assert not np.allclose(w0, np.asarray(m.weight.value))


def test_event_layers_with_brainunit_quantities():
  import brainunit as u
  x = _inputs()['graded']
  for ctor in (
    lambda lib: lib.nn.EventFixedProb(N_IN, N_OUT, 0.2, 1.5 * u.mS, seed=1),
    lambda lib: lib.nn.FixedNumConn(N_IN, N_OUT, 0.2, 1.5 * u.mS, seed=1),
    lambda lib: lib.nn.FixedNumConn(N_IN, N_OUT, 0., 1.5 * u.mS, seed=1),
    lambda lib: lib.nn.EventLinear(N_IN, 3, jnp.linspace(0., 1., N_IN * 3).reshape(N_IN, 3) * u.mS),
    lambda lib: lib.nn.EventLinear(N_IN, 3, 2. * u.mS),
  ):
    a, b = _pair(ctor)
    ya, yb = a(x), b(x)
    assert u.get_unit(ya) == u.get_unit(yb) == u.mS
    np.testing.assert_allclose(np.asarray(u.get_mantissa(ya)), np.asarray(u.get_mantissa(yb)), rtol=1e-5)



def test_event_path_large_population_matches_brainstate():
  """With >= 1024 presynaptic neurons only the rows that fired are scattered, in passes of
  n_pre // 32 rows: outputs bit-identical to BrainState (one pass or several), gradients equal."""
  pre, post = 1200, 300
  a, b = _pair(lambda lib: lib.nn.EventFixedProb(
    pre, post, 0.05, lib.nn.init.Normal(), seed=3))   # scalar weights: tests/test_ei_network.py
  rs = np.random.RandomState(0)
  for frac in (0.0, 0.01, 0.1, 0.5):  # 0 and 12 events: one pass; 120: four; 600: seventeen
    x = jnp.asarray(rs.rand(pre) - (1 - frac), jnp.float32)
    np.testing.assert_array_equal(np.asarray(a(x)), np.asarray(b(x)))
    np.testing.assert_array_equal(np.asarray(bsn.transform.jit(b)(x > 0)), np.asarray(a(x > 0)))
  grads = []
  for lib, m in zip((bst, bsn), (a, b)):
    def loss(x, w, m=m):
      m.weight.value = w
      return (m(x) ** 2).sum()
    grads.append(lib.transform.grad(loss, argnums=(0, 1))(x * 0.02 / 0.5, m.weight.value))
  for ga, gb in zip(*grads):
    np.testing.assert_allclose(np.asarray(ga), np.asarray(gb), rtol=1e-5, atol=1e-5)
