"""jacrev / jacfwd / jacobian / hessian / fwd_grad / vjp / jvp / StateFinder.

Differential tests: the same program runs with ``lib = brainstate`` (0.5.4,
the oracle) and with brainstate_nnx, and the result structures
(``jax.tree.structure``) and values are compared; results are also checked
against plain ``jax.jacrev`` / ``jacfwd`` / ``hessian`` / ``vjp`` / ``jvp`` of
the equivalent pure function.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bs
from conftest import REORDER_RTOL, assert_close
from brainstate_nnx.transform import StateFinder


@pytest.fixture
def mine():
  """brainstate_nnx, used exactly as user code does."""
  return bs


def _np(tree):
  return jax.tree.map(np.asarray, tree)


def _same(a, b):
  assert_close(a, b)


# --------------------------------------------------------------------------
# a small model: two parameters, a hidden state updated during the forward
# --------------------------------------------------------------------------

W0 = np.array([[1.0, -2.0, 0.5], [0.5, 3.0, -1.0]], np.float32)
B0 = np.array([0.1, -0.3, 0.2], np.float32)
X0 = jnp.array([0.7, -1.2])
S0 = jnp.float32(1.5)


def _pure(w, b, x, s):
  return jnp.tanh(x @ w + b) * s


def _pure_loss(w, b, x, s):
  return jnp.sum(_pure(w, b, x, s) ** 2)


def _model(lib, has_aux=False, loss=False):
  w = lib.ParamState(jnp.asarray(W0))
  b = lib.ParamState(jnp.asarray(B0))
  h = lib.HiddenState(jnp.zeros(3))

  def f(x, s):
    y = jnp.tanh(x @ w.value + b.value) * s
    h.value = h.value + y  # a State written during the forward pass
    out = jnp.sum(y ** 2) if loss else y
    return (out, {'mean': jnp.mean(y)}) if has_aux else out

  return w, b, h, f


def _layout(kind, w, b):
  return {'single': w, 'list': [w, b], 'dict': {'w': w, 'b': b}}[kind]


def _expected(jax_t, kind, argnums, fn=_pure):
  """What the state-aware transform must return, from the pure function."""
  nums = {None: (0, 1), 0: (0, 1, 2), (0, 1): (0, 1, 2, 3)}[argnums]
  jac = jax_t(fn, argnums=nums)(jnp.asarray(W0), jnp.asarray(B0), X0, S0)
  var = {'single': jac[0], 'list': [jac[0], jac[1]],
         'dict': {'w': jac[0], 'b': jac[1]}}[kind]
  if argnums is None:
    return var
  return (var, jac[2] if argnums == 0 else (jac[2], jac[3]))


@pytest.mark.parametrize('name', ['jacrev', 'jacfwd'])
@pytest.mark.parametrize('kind', ['single', 'list', 'dict'])
@pytest.mark.parametrize('argnums', [None, 0, (0, 1)])
def test_jacobian_structures_vs_brainstate_and_jax(bst, mine, name, kind, argnums):
  def run(lib):
    w, b, h, f = _model(lib)
    jac = getattr(lib.transform, name)(f, _layout(kind, w, b), argnums=argnums)(X0, S0)
    return _np(jac), np.asarray(h.value)

  (m, mh), (t, th) = run(mine), run(bst)
  _same(m, t)
  _same(m, _expected(getattr(jax, name), kind, argnums))
  # the hidden state was updated once, as by one forward pass
  assert_close(mh, _pure(W0, B0, X0, S0), atol=0)
  assert_close(mh, th, atol=0)


@pytest.mark.parametrize('name', ['jacrev', 'jacfwd', 'jacobian'])
@pytest.mark.parametrize('has_aux', [False, True])
@pytest.mark.parametrize('return_value', [False, True])
def test_jacobian_aux_and_value_vs_brainstate(bst, mine, name, has_aux, return_value):
  def run(lib):
    w, b, h, f = _model(lib, has_aux=has_aux)
    out = getattr(lib.transform, name)(
      f, {'w': w, 'b': b}, argnums=0, has_aux=has_aux, return_value=return_value,
    )(X0, S0)
    return _np(out)

  m, t = run(mine), run(bst)
  _same(m, t)
  if return_value:
    assert_close(m[1], _pure(W0, B0, X0, S0), atol=0)


@pytest.mark.parametrize('name', ['jacrev', 'jacfwd'])
def test_jacobian_arguments_only_like_jax(bst, mine, name):
  def f(x, y):
    return jnp.stack([x[0] * y[0], 5 * x[2] * y[1], x[2] * jnp.sin(x[0])]), x[1] * y

  x, y = jnp.array([1.0, 2.0, 3.0]), jnp.array([10.0, 5.0])
  for argnums in (None, 1, (0, 1)):
    kw = {} if argnums is None else {'argnums': argnums}
    m = getattr(mine.transform, name)(f, **kw)(x, y)
    _same(m, getattr(jax, name)(f, **kw)(x, y))
    _same(m, getattr(bst.transform, name)(f, **kw)(x, y))


def test_jacobian_pytree_output_with_states_is_output_major(mine):
  # (brainstate 0.5.4 raises IndexError here; JAX's layout is the natural one)
  w = mine.ParamState(jnp.asarray(W0))
  b = mine.ParamState(jnp.asarray(B0))

  def f(x):
    y = jnp.tanh(x @ w.value + b.value)
    return {'y': y, 'total': jnp.sum(y)}

  def pure(w, b, x):
    y = jnp.tanh(x @ w + b)
    return {'y': y, 'total': jnp.sum(y)}

  for name in ('jacrev', 'jacfwd'):
    out = getattr(mine.transform, name)(f, {'w': w, 'b': b}, argnums=0)(X0)
    ref = getattr(jax, name)(pure, argnums=(0, 1, 2))(W0, B0, X0)
    _same(out, {k: ({'w': r[0], 'b': r[1]}, r[2]) for k, r in ref.items()})


def test_jacobian_module_states_mapping(mine):
  class Lin(mine.nn.Module):
    def __init__(self):
      super().__init__()
      self.w = mine.ParamState(jnp.asarray(W0))
      self.b = mine.ParamState(jnp.asarray(B0))

    def __call__(self, x):
      return x @ self.w.value + self.b.value

  m = Lin()
  jac = mine.transform.jacrev(m, m.states(mine.ParamState))(X0)
  assert type(jac) is dict and sorted(jac) == [('b',), ('w',)]
  jw, jb = jax.jacrev(lambda w, b: X0 @ w + b, argnums=(0, 1))(W0, B0)
  _same((jac[('w',)], jac[('b',)]), (jw, jb))


def test_jacobian_checks(mine):
  w = mine.ParamState(jnp.array([1.0, 2.0]))
  unused = mine.ParamState(jnp.array(1.0))
  with pytest.raises(ValueError, match='never read'):
    mine.transform.jacrev(lambda: w.value * 2, [w, unused])()
  jac = mine.transform.jacfwd(lambda: w.value * 2, [w, unused], check_states=False)()
  _same(jac, [2 * np.eye(2), np.zeros(2)])
  with pytest.raises(TypeError):
    mine.transform.jacrev(lambda: w.value, [jnp.ones(2)])
  with pytest.raises(ValueError):
    mine.transform.jacrev(lambda x: x, argnums=-1)
  with pytest.raises(NotImplementedError):
    mine.transform.jacrev(lambda x: x, unit_aware=True)


def test_jacrev_holomorphic_and_allow_int(mine):
  z = mine.State(jnp.array([1.0 + 2.0j, -0.5j]))
  jac = mine.transform.jacrev(lambda: z.value ** 2, z, holomorphic=True)()
  _same(jac, jax.jacrev(lambda v: v ** 2, holomorphic=True)(z.value))
  f = lambda x, n: x * n
  g = mine.transform.jacrev(f, argnums=(0, 1), allow_int=True)(jnp.float32(2.0), 3)
  ref = jax.jacrev(f, argnums=(0, 1), allow_int=True)(jnp.float32(2.0), 3)
  _same(g, ref)
  assert g[1].dtype == ref[1].dtype


# --------------------------------------------------------------------------
# hessian
# --------------------------------------------------------------------------

@pytest.mark.parametrize('kind', ['single', 'list', 'dict'])
def test_hessian_state_layouts_vs_brainstate_and_jax(bst, mine, kind):
  def run(lib):
    w, b, h, f = _model(lib, loss=True)
    hess = lib.transform.hessian(f, _layout(kind, w, b))(X0, S0)
    return _np(hess), np.asarray(h.value)

  (m, mh), (t, th) = run(mine), run(bst)
  _same(m, t)
  H = jax.hessian(_pure_loss, argnums=(0, 1))(W0, B0, X0, S0)
  ref = {
    'single': H[0][0],
    'list': [[H[0][0], H[0][1]], [H[1][0], H[1][1]]],
    'dict': {'w': {'w': H[0][0], 'b': H[0][1]}, 'b': {'w': H[1][0], 'b': H[1][1]}},
  }[kind]
  _same(m, ref)
  assert_close(mh, th, atol=0)
  assert_close(mh, _pure(W0, B0, X0, S0), atol=0)


@pytest.mark.parametrize('has_aux', [False, True])
@pytest.mark.parametrize('return_value', [False, True])
def test_hessian_value_and_aux_vs_brainstate(bst, mine, has_aux, return_value):
  def run(lib):
    w, b, h, f = _model(lib, has_aux=has_aux, loss=True)
    return _np(lib.transform.hessian(
      f, [w, b], has_aux=has_aux, return_value=return_value)(X0, S0))

  _same(run(mine), run(bst))


def test_hessian_arguments_only_like_jax(bst, mine):
  f = lambda x, s: jnp.sum(jnp.sin(x) ** 2) * s ** 2
  x = jnp.array([0.3, -1.0, 2.0])
  for argnums in (None, 1, (0, 1)):
    kw = {} if argnums is None else {'argnums': argnums}
    m = mine.transform.hessian(f, **kw)(x, S0)
    _same(m, jax.hessian(f, **kw)(x, S0))
    _same(m, bst.transform.hessian(f, **kw)(x, S0))


def test_hessian_of_written_grad_state_vs_brainstate(bst, mine):
  # a grad State that is also written inside: derivative at the input value,
  # new value assigned afterwards
  def run(lib):
    w = lib.ParamState(jnp.array([1.0, 2.0]))
    h = lib.HiddenState(jnp.array([3.0, 8.0]))

    def g(x):
      h.value = h.value + w.value * x
      return jnp.sum(h.value ** 2)

    hess = lib.transform.hessian(g, {'a': w, 'h': h})(jnp.array([3.0, 4.0]))
    return _np(hess), np.asarray(h.value)

  (m, mh), (t, th) = run(mine), run(bst)
  _same(m, t)
  _same(mh, th)
  _same(mh, np.array([6.0, 16.0]))


def test_hessian_pytree_valued_state_and_misuse(bst, mine):
  p = mine.State({'a': jnp.array([1.0, 2.0]), 'c': jnp.float32(0.5)})
  f = lambda v: jnp.sum(v['a'] ** 3) * v['c'] ** 2
  _same(mine.transform.hessian(lambda: f(p.value), p)(), jax.hessian(f)(p.value))
  for lib in (mine, bst):
    w = lib.ParamState(jnp.ones(2))
    with pytest.raises(NotImplementedError):
      lib.transform.hessian(lambda x: jnp.sum(w.value * x), w, argnums=0)


# --------------------------------------------------------------------------
# fwd_grad
# --------------------------------------------------------------------------

@pytest.mark.parametrize('tangent_size', [None, 4])
@pytest.mark.parametrize('argnums', [None, 0])
def test_fwd_grad_same_key_matches_brainstate(bst, mine, tangent_size, argnums):
  def run(lib):
    w = lib.ParamState(jnp.array([1.0, -2.0, 0.5]))
    h = lib.HiddenState(jnp.zeros(3))

    def loss(x):
      h.value = h.value + w.value * x
      return jnp.sum(jnp.sin(w.value * x) ** 2), {'h': h.value}

    out = lib.transform.fwd_grad(
      loss, w, argnums=argnums, has_aux=True, return_value=True,
      tangent_size=tangent_size, drct_der_clip=5.0, key=3,
    )(jnp.array([0.5, 1.0, -1.5]))
    return _np(out), np.asarray(h.value)

  (m, mh), (t, th) = run(mine), run(bst)
  _same(m, t)
  _same(mh, th)


def test_fwd_grad_global_key_and_estimate(bst, mine):
  def run(lib):
    lib.random.seed(7)
    w = lib.ParamState(jnp.array([1.0, -2.0]))

    @lib.transform.fwd_grad(grad_states={'w': w}, tangent_size=3)
    def f():
      return jnp.sum(w.value ** 2)

    return _np((f(), f())), np.asarray(jax.random.key_data(lib.random.split_key()))

  (m, mk), (t, tk) = run(mine), run(bst)
  _same(m, t)
  np.testing.assert_array_equal(mk, tk)  # the global key advanced alike
  w = mine.ParamState(jnp.array([1.0, -2.0, 0.5]))
  est = mine.transform.fwd_grad(lambda: jnp.sum(w.value ** 2), w,
                                tangent_size=20000, key=0)()
  np.testing.assert_allclose(est, 2 * w.value, atol=0.15)


def test_fwd_grad_errors(mine):
  w = mine.ParamState(jnp.array([1.0, 2.0]))
  with pytest.raises(ValueError, match='scalar'):
    mine.transform.fwd_grad(lambda: w.value * 2, w, key=0)()
  with pytest.raises(ValueError, match='scalar'):
    mine.transform.fwd_grad(lambda: w.value * 2, w, key=0, tangent_size=2)()
  n = mine.State(jnp.array([1, 2]))
  with pytest.raises(TypeError, match='float'):
    mine.transform.fwd_grad(lambda: jnp.sum(n.value), n, key=0)()


# --------------------------------------------------------------------------
# vjp
# --------------------------------------------------------------------------

@pytest.mark.parametrize('kind,argnums', [
  (k, a) for k in (None, 'single', 'list', 'dict') for a in (None, 0, 1, (0, 1), -1)
  if k is not None or a is not None  # nothing to differentiate: see test_vjp_errors
])
def test_vjp_structures_vs_brainstate_and_jax(bst, mine, kind, argnums):
  ct = jnp.array([1.0, -2.0, 0.5])

  def run(lib):
    w, b, h, f = _model(lib)
    gs = None if kind is None else _layout(kind, w, b)
    y, vjp_fn = lib.transform.vjp(f, X0, S0, grad_states=gs, argnums=argnums)
    return _np((y, vjp_fn(ct), vjp_fn(2 * ct))), np.asarray(h.value)

  (m, mh), (t, th) = run(mine), run(bst)
  _same(m, t)
  _same(mh, th)
  # against jax.vjp of the pure function
  y, pull = jax.vjp(_pure, jnp.asarray(W0), jnp.asarray(B0), X0, S0)
  cw, cb, cx, cs = pull(ct)
  var = None if kind is None else {
    'single': cw, 'list': [cw, cb], 'dict': {'w': cw, 'b': cb}}[kind]
  args = {None: None, 0: cx, 1: cs, (0, 1): (cx, cs), -1: cs}[argnums]
  ref = var if args is None else (args if var is None else (var, args))
  _same(m[1], ref)
  _same(m[0], y)


def test_vjp_has_aux_no_primals_and_writeback(bst, mine):
  def run(lib):
    w = lib.ParamState(jnp.array([[1.0, 2.0], [3.0, 4.0]]))
    b = lib.ParamState(jnp.zeros(2))
    count = lib.State(jnp.array(0.0))

    def f():
      count.value = count.value + 1.0
      y = jnp.array([1.0, 1.0]) @ w.value + b.value
      return jnp.sum(y ** 2), {'y': y}

    out, vjp_fn, aux = lib.transform.vjp(f, grad_states=[w, b], has_aux=True)
    return _np((out, vjp_fn(jnp.float32(1.0)), aux)), float(count.value)

  (m, mc), (t, tc) = run(mine), run(bst)
  _same(m, t)
  assert mc == tc == 1.0


def test_vjp_errors(bst, mine):
  for lib in (mine, bst):
    w = lib.ParamState(jnp.array(2.0))
    unused = lib.ParamState(jnp.array(1.0))
    f = lambda x, y: jnp.sum(x * y) * w.value
    x = jnp.ones(2)
    with pytest.raises(ValueError):
      lib.transform.vjp(f, x, x, argnums=2)
    with pytest.raises(ValueError):
      lib.transform.vjp(f, x, x, argnums=(0, -2))
    with pytest.raises(ValueError):
      lib.transform.vjp(lambda: w.value)
    with pytest.raises(ValueError):
      lib.transform.vjp(f, x, x, grad_states=[w, unused])
    with pytest.raises(TypeError):
      lib.transform.vjp(f, x, x, grad_states=[jnp.ones(2)])


def test_vjp_pullback_gives_jacobian_and_hvp(mine):
  w = mine.ParamState(jnp.array([1.0, 2.0, 3.0]))
  f = lambda x: jnp.stack([jnp.sum(w.value * x), jnp.sum(x ** 2)])
  x = jnp.array([0.5, -1.0, 2.0])
  _, vjp_fn = mine.transform.vjp(f, x)
  _same(jax.vmap(vjp_fn)(jnp.eye(2)), jax.jacrev(f)(x))
  # Hessian-vector product: vjp of a gradient
  loss = lambda x: jnp.sum(jnp.sin(x) * w.value)
  _, pull = mine.transform.vjp(mine.transform.grad(loss), x)
  v = jnp.array([1.0, 0.0, -1.0])
  _same(pull(v), jax.hessian(loss)(x) @ v)


# --------------------------------------------------------------------------
# jvp
# --------------------------------------------------------------------------

def test_jvp_vs_brainstate_and_jax(bst, mine):
  def run(lib, has_aux):
    w, b, h, f = _model(lib, has_aux=has_aux)
    out = lib.transform.jvp(f, (X0, S0), [jnp.array([1.0, 0.5]), jnp.float32(-1.0)],
                            has_aux=has_aux)
    return _np(out), np.asarray(h.value)

  for has_aux in (False, True):
    (m, mh), (t, th) = run(mine, has_aux), run(bst, has_aux)
    _same(m, t)
    _same(mh, th)
  y, dy = jax.jvp(lambda x, s: _pure(W0, B0, x, s), (X0, S0),
                  (jnp.array([1.0, 0.5]), jnp.float32(-1.0)))
  _same(run(mine, False)[0], (y, dy))
  for lib in (mine, bst):
    with pytest.raises(TypeError):
      lib.transform.jvp(lambda x: x, jnp.ones(2), (jnp.ones(2),))
    with pytest.raises(TypeError):
      lib.transform.jvp(lambda x: x, (jnp.ones(2),), jnp.ones(2))


# --------------------------------------------------------------------------
# inside transform.jit: States threaded, written States carried out
# --------------------------------------------------------------------------

def test_jacrev_and_hessian_in_jit_vs_brainstate(bst, mine):
  def run(lib):
    w, b, h, f = _model(lib)
    calls = lib.LongTermState(jnp.array(0))

    def step(x):
      calls.value = calls.value + 1
      jac, y = lib.transform.jacrev(f, {'w': w, 'b': b}, return_value=True)(x, S0)
      hess = lib.transform.hessian(lambda: jnp.sum(f(x, S0) ** 2), [b])()
      return jac, y, hess

    jstep = lib.transform.jit(step)
    outs = [jstep(X0 * (i + 1)) for i in range(3)]
    return _np(outs), np.asarray(h.value), int(calls.value)

  (m, mh, mc), (t, th, tc) = run(mine), run(bst)
  _same(m, t)
  _same(mh, th)
  assert mc == tc == 3
  # eager brainstate_nnx gives the same as compiled
  w, b, h, f = _model(mine)
  for i in range(3):
    jac, y = mine.transform.jacrev(f, {'w': w, 'b': b}, return_value=True)(X0 * (i + 1), S0)
    _same((jac, y), m[i][:2])
    f(X0 * (i + 1), S0)  # the hessian's forward pass writes h too
  _same(h.value, mh)


def test_vjp_jvp_fwd_grad_in_jit(mine):
  w, b, h, f = _model(mine)

  @mine.transform.jit
  def step(x):
    y, vjp_fn = mine.transform.vjp(f, x, S0, grad_states={'w': w})
    cts = vjp_fn(jnp.ones(3))
    y2, dy = mine.transform.jvp(f, (x, S0), (jnp.ones(2), jnp.float32(0.0)))
    g = mine.transform.fwd_grad(lambda: jnp.sum(f(x, S0)), b, key=1, tangent_size=2)()
    return cts, dy, g

  cts, dy, g = step(X0)
  assert_close(h.value, 3 * _pure(W0, B0, X0, S0), rtol=REORDER_RTOL, atol=0)
  h.value = jnp.zeros(3)
  ref_cts = mine.transform.vjp(f, X0, S0, grad_states={'w': w})[1](jnp.ones(3))
  ref_dy = mine.transform.jvp(f, (X0, S0), (jnp.ones(2), jnp.float32(0.0)))[1]
  ref_g = mine.transform.fwd_grad(lambda: jnp.sum(f(X0, S0)), b, key=1, tangent_size=2)()
  _same((cts, dy, g), (ref_cts, ref_dy, ref_g))


# --------------------------------------------------------------------------
# StateFinder
# --------------------------------------------------------------------------

def _finder_program(lib):
  a = lib.State(jnp.array(0.0), name='a')
  p = lib.ParamState(jnp.array(1.0), name='p')
  q = lib.ParamState(jnp.array(2.0), name='dup')
  h = lib.HiddenState(jnp.array(3.0), name='dup')

  def fn(x):
    r = a.value + q.value
    p.value = p.value * x
    h.value = x  # written without being read
    return r + p.value

  return (a, p, q, h), fn


@pytest.mark.parametrize('usage', ['all', 'read', 'write', 'both'])
@pytest.mark.parametrize('return_type', ['dict', 'list', 'tuple'])
@pytest.mark.parametrize('filt', [None, 'param'])
def test_state_finder_vs_brainstate(bst, mine, usage, return_type, filt):
  def run(lib):
    states, fn = _finder_program(lib)
    names = {id(s): i for i, s in enumerate(states)}
    finder = lib.transform.StateFinder(
      fn, filter=lib.ParamState if filt else None, usage=usage,
      return_type=return_type,
      key_fn=(lambda i, st: st.name) if return_type == 'dict' else None,
    )
    found = finder(jnp.float32(2.0))
    values = [float(s.value) for s in states]
    return jax.tree.map(lambda s: names[id(s)], found,
                        is_leaf=lambda x: isinstance(x, lib.State)), values

  (m, mv), (t, tv) = run(mine), run(bst)
  assert type(m) is type(t)
  assert m == t
  assert mv == tv == [0.0, 1.0, 2.0, 3.0]  # a dry run changes nothing


def test_state_finder_keys_and_validation(mine):
  (a, p, q, h), fn = _finder_program(mine)
  found = StateFinder(fn, key_fn=lambda i, st: None)(1.0)
  assert list(found) == ['a', 'dup', 'p', 'dup_1']
  assert list(found.values()) == [a, q, p, h]
  found = StateFinder(fn, key_fn=lambda i, st: [i])(1.0)
  assert list(found) == ['[0]', '[1]', '[2]', '[3]']
  assert StateFinder(fn, filter='nope', usage='all')(1.0) == {}
  with pytest.raises(ValueError):
    StateFinder(fn, usage='nope')
  with pytest.raises(ValueError):
    StateFinder(fn, return_type='set')


def test_state_finder_unique_keys_like_brainstate(bst, mine):
  # a missing or taken key falls back to the State's name, or ``state_<i>``
  # for an unnamed State, with ``_1``, ``_2``, ... until it is free
  def keys(lib, key_fn):
    sts = [lib.State(jnp.array(0.), name='w'), lib.State(jnp.array(1.)),
           lib.State(jnp.array(2.), name='w'), lib.State(jnp.array(3.), name='w_1'),
           lib.State(jnp.array(4.), name='w')]
    found = lib.transform.StateFinder(lambda x: sum(st.value for st in sts) * x,
                                      key_fn=key_fn)(1.0)
    return {k: sts.index(v) for k, v in found.items()}

  expect = {'w': 0, 'state_1': 1, 'w_1': 2, 'w_1_1': 3, 'w_2': 4}
  for key_fn in (lambda i, st: None, lambda i, st: 'w'):
    assert keys(mine, key_fn) == keys(bst, key_fn) == expect
  assert keys(mine, None) == keys(bst, None) == {i: i for i in range(5)}


def test_state_finder_inside_jit_and_with_module(mine):
  class Net(mine.nn.Module):
    def __init__(self):
      super().__init__()
      self.w = mine.ParamState(jnp.ones(2))
      self.h = mine.HiddenState(jnp.zeros(2))

    def __call__(self, x):
      self.h.value = self.h.value + self.w.value * x
      return self.h.value

  net = Net()
  finder = StateFinder(net, usage='both', return_type='list')
  found = finder(jnp.ones(2))
  assert found['read'] == [net.w] and found['write'] == [net.h]

  @mine.transform.jit
  def f(x):
    assert StateFinder(net, return_type='list')(x) == [net.h, net.w]
    return net(x)

  f(jnp.ones(2))
  f(jnp.ones(2))
  np.testing.assert_allclose(net.h.value, [2.0, 2.0])
