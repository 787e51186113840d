"""Issue 8, silent cases 6, 10 and 11: each now correct or loud.

6: array methods / protocols on a State under jit read through the hook
   (compared with plain JAX over several calls with changing values);
10: deep copies of States and of Modules holding jitted methods;
11: bad arguments to ``grad`` and ``OptaxOptimizer`` raise clear errors.
"""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import brainstate
import brainstate_nnx as bsn

# -- issue 8, case 6: array protocols under jit go through the read hook ------

def test_array_protocols_under_jit_are_not_stale():
  s = bsn.State(jnp.arange(3.0))

  @bsn.transform.jit
  def f():
    return dict(
      sum=s.sum(), T=s.T, reshape=s.reshape(3), astype=s.astype(jnp.int32),
      mean=s.mean(), add=s + 1, radd=2 * s, neg=-s, getitem=s[1], matmul=s @ s,
      jnp=jnp.asarray(s) * 1, jax_array=jnp.sin(s), len=len(s) + s[0],
      iter=sum(x for x in s), shape=s.shape[0] + s.max(),
    )

  def ref(v):
    return dict(
      sum=v.sum(), T=v.T, reshape=v.reshape(3), astype=v.astype(jnp.int32),
      mean=v.mean(), add=v + 1, radd=2 * v, neg=-v, getitem=v[1], matmul=v @ v,
      jnp=v, jax_array=jnp.sin(v), len=len(v) + v[0], iter=v.sum(),
      shape=v.shape[0] + v.max(),
    )

  for k in range(3):
    s.value = jnp.arange(3.0) * (k + 1) - k
    got, want = f(), ref(s.value)
    for key in want:
      np.testing.assert_allclose(got[key], want[key], rtol=1e-6, err_msg=key)


def test_bool_and_numpy_protocols():
  for lib in (brainstate, bsn):
    assert bool(lib.State(jnp.zeros(3))) is True
    assert bool(lib.State(jnp.array(0.0))) is True
    assert bool(lib.State(jnp.zeros(0))) is True
  s = bsn.State(jnp.arange(3.0))
  np.testing.assert_array_equal(np.asarray(s), np.arange(3.0))
  assert np.asarray(s, dtype=np.int32).dtype == np.int32


# -- issue 8, case 10: copies -------------------------------------------------

def test_deepcopy_state_returns_an_independent_state():
  s = bsn.ParamState(jnp.ones(2), name='w', tag='t')
  c = copy.deepcopy(s)
  assert type(c) is bsn.ParamState and c is not s
  assert c.name == 'w' and c.tag == frozenset({'t'})
  c.value = jnp.zeros(2)
  np.testing.assert_array_equal(s.value, jnp.ones(2))
  # a shared State stays shared inside one deep copy
  a, b = copy.deepcopy([s, s])
  assert a is b and a is not s
  # numpy values are copied, not aliased
  n = bsn.State(np.zeros(2))
  m = copy.deepcopy(n)
  m.value[0] = 5.0
  assert n.value[0] == 0.0


class _Net(bsn.nn.Module):
  def __init__(self):
    super().__init__()
    self.w = bsn.ParamState(jnp.array([1.0, 2.0]))
    self.n = bsn.State(jnp.array(0))
    self.step = bsn.transform.jit(self._step)   # a jitted bound method as attribute
    self.alias = [self.w]

  def _step(self, x):
    self.n.value += 1
    return x @ self.w.value

  @bsn.transform.jit
  def decorated(self, x):
    return x * self.w.value.sum()


def test_deepcopy_module_with_jitted_method():
  m = _Net()
  x = jnp.ones(2)
  np.testing.assert_allclose(m.step(x), 3.0)
  m2 = copy.deepcopy(m)                        # used to recurse forever
  assert m2.w is not m.w and m2.alias[0] is m2.w
  m2.w.value = jnp.array([10.0, 0.0])
  # the copy's jitted method works on the copy's States, the original on its own
  np.testing.assert_allclose(m2.step(x), 10.0)
  np.testing.assert_allclose(m.step(x), 3.0)
  assert int(m.n.value) == 2 and int(m2.n.value) == 2
  np.testing.assert_allclose(m2.decorated(x), [10.0, 10.0])
  np.testing.assert_allclose(m.decorated(x), [3.0, 3.0])
  # still an nnx module
  graphdef, state = nnx.split(m2)
  assert isinstance(nnx.merge(graphdef, state), _Net)


# -- case 11: bad arguments ---------------------------------------------------

def test_grad_states_module_raises_type_error_like_brainstate():
  for lib in (brainstate, bsn):
    class M(lib.nn.Module):
      def __init__(self):
        super().__init__()
        self.w = lib.ParamState(jnp.ones(2))

    m = M()
    with pytest.raises(TypeError) as err:
      lib.transform.grad(lambda: (m.w.value ** 2).sum(), grad_states=m)()
    if lib is bsn:
      assert 'states(' in str(err.value)
    with pytest.raises(TypeError):
      lib.transform.grad(lambda: (m.w.value ** 2).sum(), grad_states=[m.w, 3])()


def test_optimizer_rejects_gradient_of_wrong_shape():
  w = bsn.ParamState(jnp.ones(3))
  opt = bsn.optim.OptaxOptimizer(optax.sgd(0.1), {'w': w})
  with pytest.raises(ValueError, match=r"shape \(1,\).*shape \(3,\)"):
    opt.update({'w': jnp.ones(1)})
  with pytest.raises(ValueError, match='structure'):
    opt.update({'w': (jnp.ones(3), jnp.ones(3))})
  np.testing.assert_array_equal(w.value, jnp.ones(3))
  assert int(opt.step.value) == 0


def _loss(w, b, x, y):
  return jnp.mean((x @ w + b - y) ** 2)


def test_optimizer_from_module_and_from_list_train_like_the_mapping():
  x = jnp.arange(8.0).reshape(4, 2) / 8
  y = jnp.ones((4, 1))

  class Lin(bsn.nn.Module):
    def __init__(self):
      super().__init__()
      self.w = bsn.ParamState(jnp.full((2, 1), 0.5))
      self.b = bsn.ParamState(jnp.zeros(1))

  # plain JAX reference
  w, b = jnp.full((2, 1), 0.5), jnp.zeros(1)
  tx = optax.adam(0.1)
  st = tx.init((w, b))
  for _ in range(3):
    g = jax.grad(lambda p: _loss(*p, x, y))((w, b))
    upd, st = tx.update(g, st, (w, b))
    w, b = optax.apply_updates((w, b), upd)

  m1 = Lin()
  opt1 = bsn.optim.OptaxOptimizer(optax.adam(0.1), m1)      # a Module
  params = m1.states(nnx.Param)

  @bsn.transform.jit
  def step1():
    opt1.update(bsn.transform.grad(lambda: _loss(m1.w.value, m1.b.value, x, y), params)())

  m2 = Lin()
  opt2 = bsn.optim.OptaxOptimizer(optax.adam(0.1), [m2.w, m2.b])   # a list

  @bsn.transform.jit
  def step2():
    opt2.update(bsn.transform.grad(lambda: _loss(m2.w.value, m2.b.value, x, y), [m2.w, m2.b])())

  for _ in range(3):
    step1(); step2()
  for m in (m1, m2):
    np.testing.assert_allclose(m.w.value, w, rtol=1e-5)
    np.testing.assert_allclose(m.b.value, b, rtol=1e-5)

  with pytest.raises(ValueError, match='list'):
    opt2.update({'w': jnp.ones((2, 1))})
  with pytest.raises(TypeError, match='states'):
    bsn.optim.OptaxOptimizer(optax.sgd(0.1), m1.w)
  with pytest.raises(TypeError, match='mapping'):
    bsn.optim.OptaxOptimizer(optax.sgd(0.1), 3)
