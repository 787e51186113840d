"""Sequential, Flatten/Unflatten, EnvironContext/Vmap/Map, collective ops,
count_parameters and clip_grad_norm, differential against BrainState 0.5.4."""


import sys
import types

from conftest import oracle
bst = oracle()  # real BrainState 0.5.4, the oracle
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import brainstate_nnx as bsn

LIBS = (bst, bsn)
X = jnp.asarray(np.random.RandomState(0).randn(4, 8).astype(np.float32))


def _close(a, b, rtol=1e-5, atol=1e-6):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _values(m):
  return {k: v.value for k, v in m.states().items()}


def _tree_equal(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


# ---------------------------------------------------------------------------
# Sequential
# ---------------------------------------------------------------------------

def _seqs(lib):
  """Sequentials exercising every kind of layer the size inference handles."""
  nn = lib.nn
  return {
    'desc': nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear.desc(out_size=5)),
    'fn': nn.Sequential(nn.Linear(8, 4), jax.nn.relu, nn.Linear(4, 2)),
    'dropout_first': nn.Sequential(nn.Dropout(0.8), nn.Linear(8, 2)),
    'dropout_mid': nn.Sequential(nn.Linear(8, 6), nn.Dropout(0.5), nn.GELU(),
                                 nn.Linear.desc(out_size=2)),
    'flatten': nn.Sequential(nn.Flatten(in_size=(2, 4)), nn.Tanh(), nn.Linear.desc(out_size=3)),
    'unsized': nn.Sequential(nn.Identity(), nn.Softmax()),
  }


def test_sequential_sizes_states_and_numbers_match_brainstate():
  built = []
  for lib in LIBS:
    lib.random.seed(0)
    built.append(_seqs(lib))
  ref, ours = built
  for key in ref:
    r, o = ref[key], ours[key]
    assert isinstance(o, nnx.Module)
    assert o.in_size == r.in_size and o.out_size == r.out_size, key
    assert list(o.states().keys()) == list(r.states().keys()), key
    _tree_equal(_values(o), _values(r))
    assert len(o.layers) == len(r.layers)
    assert [type(l).__name__ for l in o.layers] == [type(l).__name__ for l in r.layers]
    x = X.reshape(4, 2, 4) if key == 'flatten' else X
    for fit in ((False, True) if key.startswith('dropout') else (False,)):
      for lib in LIBS:
        lib.random.seed(1)
      with bst.environ.context(fit=fit):
        y_ref = r(x)
      with bsn.environ.context(fit=fit):
        y = o(x)
      _close(y, y_ref)


def test_sequential_gradients_under_jit_match_brainstate():
  out = []
  for lib in LIBS:
    lib.random.seed(0)
    seq = lib.nn.Sequential(lib.nn.Linear(8, 6), lib.nn.Dropout(0.5), lib.nn.GELU(),
                            lib.nn.Linear.desc(out_size=2))
    params = seq.states(lib.ParamState)

    def loss(x, seq=seq):
      return jnp.sum(jnp.sin(seq(x)))

    lib.random.seed(3)
    with lib.environ.context(fit=True):
      g, v = lib.transform.jit(lib.transform.grad(loss, params, return_value=True))(X)
    out.append((dict(g), v))
  (g_ref, v_ref), (g, v) = out
  _close(v, v_ref)
  assert g.keys() == g_ref.keys()
  jax.tree.map(_close, g, g_ref)


def test_sequential_container_api():
  for lib in LIBS:
    lib.random.seed(0)
  r = bst.nn.Sequential(bst.nn.Linear(8, 4), jax.nn.relu, bst.nn.Linear(4, 2))
  o = bsn.nn.Sequential(bsn.nn.Linear(8, 4), jax.nn.relu, bsn.nn.Linear(4, 2))
  assert isinstance(o[0], bsn.nn.Linear) and o[1] is jax.nn.relu
  for key in (slice(0, 1), slice(2, None), (0, 2), slice(5, 9), ()):
    sub_r, sub_o = r[key], o[key]
    assert isinstance(sub_o, bsn.nn.Sequential)
    assert len(sub_o.layers) == len(sub_r.layers)
    assert sub_o.in_size == sub_r.in_size and sub_o.out_size == sub_r.out_size
  with pytest.raises(KeyError):
    o['bad']
  with pytest.raises(TypeError, match='first layer'):
    o[1:]  # would start with a plain function (an AssertionError in BrainState)

  o.append(bsn.nn.Linear.desc(out_size=7))
  r.append(bst.nn.Linear.desc(out_size=7))
  o.extend([jnp.tanh, bsn.nn.Linear.desc(out_size=3)])
  r.extend([jnp.tanh, bst.nn.Linear.desc(out_size=3)])
  o.insert(1, bsn.nn.ReLU())
  r.insert(1, bst.nn.ReLU())
  o.insert(-1, bsn.nn.Identity())
  r.insert(-1, bst.nn.Identity())
  o.insert(0, bsn.nn.Linear(5, 8))
  r.insert(0, bst.nn.Linear(5, 8))
  assert [type(l).__name__ for l in o.layers] == [type(l).__name__ for l in r.layers]
  assert o.in_size == r.in_size == (5,) and o.out_size == r.out_size == (3,)
  assert list(o.states().keys()) == list(r.states().keys())
  with pytest.raises(IndexError):
    o.insert(99, bsn.nn.ReLU())
  # new layers are part of the nnx graph
  assert len(nnx.to_flat_state(nnx.state(o, nnx.Param))) == 5


def test_sequential_errors_like_brainstate():
  seq = bsn.nn.Sequential(bsn.nn.Linear(10, 20))
  with pytest.raises(bsn.BrainStateError):
    seq(jnp.ones((2, 5)))  # a failing layer is wrapped, naming the layer
  with pytest.raises(bsn.BrainStateError):
    seq.append(12345)
  unsized = bsn.nn.Sequential(bsn.nn.Identity())
  with pytest.raises(bsn.BrainStateError, match='output size'):
    unsized.append(bsn.nn.Linear.desc(out_size=4))
  with pytest.raises(TypeError, match='first layer'):
    bsn.nn.Sequential(jax.nn.relu)

  empty = bsn.nn.Sequential(bsn.nn.Linear(3, 4))[1:1]
  assert len(empty.layers) == 0 and empty.in_size is None
  with pytest.raises(ValueError):
    empty.append(jax.nn.relu)
  with pytest.raises(ValueError):
    empty.extend([bsn.nn.Linear(2, 2)])
  with pytest.raises(ValueError):
    empty.insert(1, bsn.nn.Linear(2, 2))
  with pytest.raises(ValueError):
    empty.insert(0, lambda x: x)
  empty.insert(0, bsn.nn.Linear(3, 7))
  assert empty.in_size == (3,) and empty.out_size == (7,)
  assert list(empty.states().keys()) == [('layers', 0, 'weight')]


def test_sequential_is_a_flax_citizen():
  bsn.random.seed(0)
  seq = bsn.nn.Sequential(bsn.nn.Linear(8, 6), bsn.nn.ReLU(), jnp.tanh, bsn.nn.Linear(6, 1))
  graphdef, state = nnx.split(seq)
  clone = nnx.merge(graphdef, state)
  _close(clone(X), seq(X))
  y = jnp.ones((4, 1))
  opt = nnx.Optimizer(seq, optax.sgd(0.05), wrt=nnx.Param)

  def loss_fn(m):
    return jnp.mean((m(X) - y) ** 2)

  @nnx.jit
  def step(m, opt):
    loss, grads = nnx.value_and_grad(loss_fn)(m)
    opt.update(m, grads)
    return loss

  losses = [float(step(seq, opt)) for _ in range(3)]
  assert losses[2] < losses[0]


# ---------------------------------------------------------------------------
# Flatten / Unflatten
# ---------------------------------------------------------------------------

FLATTEN = [dict(), dict(start_axis=1), dict(start_axis=1, end_axis=2),
           dict(in_size=(3, 4, 5)), dict(start_axis=1, in_size=(3, 4, 5)),
           dict(start_axis=-2, in_size=(4, 5)), dict(end_axis=-2, in_size=(3, 4, 5))]
UNFLATTEN = [dict(axis=-1, sizes=(5, 1)), dict(axis=1, sizes=(3, 1)),
             dict(axis=1, sizes=[2, 2], in_size=(3, 4, 5)),
             dict(axis=-1, sizes=(-1, 5), in_size=(4, 10))]


def test_flatten_unflatten_match_brainstate():
  x = jnp.arange(120.).reshape(2, 3, 4, 5)
  for kw in FLATTEN:
    r, o = bst.nn.Flatten(**kw), bsn.nn.Flatten(**kw)
    assert o.in_size == r.in_size and o.out_size == r.out_size, kw
    np.testing.assert_array_equal(o(x), r(x))
  for kw in UNFLATTEN:
    r, o = bst.nn.Unflatten(**kw), bsn.nn.Unflatten(**kw)
    assert o.out_size == r.out_size, kw
    if 'in_size' not in kw:
      np.testing.assert_array_equal(o(x), r(x))
  np.testing.assert_array_equal(bsn.nn.Unflatten(-1, (-1, 5), in_size=(4, 10))(jnp.ones((4, 10))),
                                jnp.ones((4, 2, 5)))


def test_flatten_unflatten_errors():
  with pytest.raises(ValueError, match='expected shape'):
    bsn.nn.Flatten(in_size=(3, 4))(jnp.ones((2, 3, 5)))
  with pytest.raises(ValueError):
    bsn.nn.Flatten(in_size=(3, 4))(jnp.ones((4,)))
  with pytest.raises(TypeError, match='tuple or list'):
    bsn.nn.Unflatten(0, 4)
  with pytest.raises(TypeError, match='tuple of ints'):
    bsn.nn.Unflatten(0, (2, 2.0))
  with pytest.raises(TypeError):
    bsn.nn.Unflatten(0, (3, 3), in_size=(4,))
  with pytest.raises(TypeError):
    bst.nn.Unflatten(0, (3, 3), in_size=(4,))


# ---------------------------------------------------------------------------
# EnvironContext, Vmap, Map
# ---------------------------------------------------------------------------

def test_environ_context_drives_dropout_like_brainstate():
  out = []
  for lib in LIBS:
    lib.random.seed(0)
    m = lib.nn.EnvironContext(lib.nn.Dropout(0.5), fit=True)
    lib.random.seed(4)
    a = m(X)
    m.add_context(fit=False)
    b = m(X)
    out.append((a, b, m.context))
  (a_r, b_r, c_r), (a, b, c) = out
  _close(a, a_r)
  _close(b, b_r)
  _close(b, X)  # eval: identity
  assert c == c_r == {'fit': False}
  with pytest.raises(TypeError):
    bsn.nn.EnvironContext(jax.nn.relu)


def _scale_module(lib):
  class Scale(lib.nn.Module):
    def __init__(self):
      super().__init__()
      self.w = lib.ParamState(jnp.array([1., 2., 3.]))

    def __call__(self, x):
      return jnp.sum(self.w.value * x)

  return Scale()


def test_vmap_module_matches_brainstate():
  xs = jnp.array([[1., 0., 1.], [2., 2., 2.], [0., 1., 0.]])
  r = bst.nn.Vmap(_scale_module(bst), in_axes=0, vmap_states=bst.ParamState)
  o = bsn.nn.Vmap(_scale_module(bsn), in_axes=0, vmap_states=bsn.ParamState)
  _close(o(xs), r(xs))
  _close(o(xs), [2., 12., 3.])  # w batched on axis 0
  # {filter: axis} means the same here (BrainState 0.5.4 drops a single
  # {filter: axis} group and leaves w unbatched)
  o = bsn.nn.Vmap(_scale_module(bsn), in_axes=0, vmap_states={bsn.ParamState: 0})
  _close(o(xs), [2., 12., 3.])
  r = bst.nn.Vmap(_scale_module(bst), in_axes=0)
  o = bsn.nn.Vmap(_scale_module(bsn), in_axes=0)
  _close(o(xs), r(xs))
  assert list(o.states().keys()) == list(r.states().keys()) == [('module', 'w')]
  with pytest.raises(TypeError):
    bsn.nn.Vmap(_scale_module(bsn), vmap_states={bsn.ParamState: 'x'})


def _acc_module(lib):
  class Acc(lib.nn.Module):
    def __init__(self):
      super().__init__()
      self.w = lib.ParamState(jnp.array([1., 2.]))

    def init_state(self):
      self.total = lib.ShortTermState(lib.random.rand(2))

    def __call__(self, x):
      self.total.value += x * self.w.value
      return self.total.value

    def peek(self, s):
      return self.total.value * s

  return Acc()


def test_map_module_matches_brainstate():
  out = []
  for lib in LIBS:
    lib.random.seed(0)
    m = lib.nn.Map(_acc_module(lib), init_map_size=3)
    with pytest.raises(ValueError, match='init_all_states'):
      m(jnp.ones((3, 2)))
    m.init_all_states()
    y1 = m(jnp.arange(6.).reshape(3, 2))
    y2 = m(jnp.ones((3, 2)))
    z = m.map('peek', in_axes=None)(2.)
    out.append((y1, y2, z, list(m.states().keys()), m.module.total.value))
  for a, b in zip(out[0], out[1]):
    if isinstance(a, list):
      assert a == b
    else:
      _close(b, a)
  with pytest.raises(ValueError):
    bsn.nn.Map(_acc_module(bsn), init_map_size=2, behavior='bad')


# ---------------------------------------------------------------------------
# collective operations
# ---------------------------------------------------------------------------

def _ordered_tree(lib, log):
  class Leaf(lib.nn.Module):
    def __init__(self, tag, level=None):
      super().__init__()
      self.tag = tag
      if level is not None:
        fn = lambda *a, **k: log.append((self.tag, a, k))
        self.reset_state = lib.nn.call_order(level)(fn)

    def reset_state(self, *args, **kwargs):
      log.append((self.tag, args, kwargs))

  class Root(lib.nn.Module):
    def __init__(self):
      super().__init__()
      self.a = Leaf('a', 2)
      self.b = Leaf('b')
      self.c = Leaf('c', 0)
      self.d = [Leaf('d'), Leaf('e', 1)]

    def reset_state(self, *args, **kwargs):
      log.append(('root', args, kwargs))

  return Root()


def test_call_order_and_call_all_fns_match_brainstate():
  logs = []
  for lib in LIBS:
    log = []
    root = _ordered_tree(lib, log)
    lib.nn.call_all_fns(root, 'reset_state', args=3, kwargs={'k': 1})
    lib.nn.reset_all_states(root, 5)
    lib.nn.reset_all_states(root, node_to_exclude=lambda path, node: getattr(node, 'tag', '') == 'b')
    logs.append(log)
  assert logs[0] == logs[1]
  assert [t for t, _, _ in logs[1][:6]] == ['b', 'd', 'root', 'c', 'e', 'a']

  with pytest.raises(ValueError, match=r'\[0, 10\)'):
    bsn.nn.call_order(10)
  assert bsn.nn.call_order(12, check_order_boundary=False)(lambda: 0).call_order == 12
  root = _ordered_tree(bsn, [])
  with pytest.raises(TypeError):
    bsn.nn.call_all_fns(root, 3)
  with pytest.raises(TypeError):
    bsn.nn.call_all_fns(root, 'reset_state', kwargs=[1])
  with pytest.raises(AttributeError, match='no_such'):
    bsn.nn.call_all_fns(root, 'no_such')
  bsn.nn.call_all_fns(root, 'no_such', fn_if_not_exist='pass')
  with pytest.warns(UserWarning, match='Skipping'):
    bsn.nn.call_all_fns(root, 'no_such', fn_if_not_exist='warn')
  with pytest.raises(ValueError, match='fn_if_not_exist'):
    bsn.nn.call_all_fns(root, 'no_such', fn_if_not_exist='bad')


def _cell(lib):
  class Cell(lib.nn.Module):
    def __init__(self):
      super().__init__()
      self.sub = lib.nn.GRUCell(2, 3, state_init=lib.nn.init.Normal())

    def init_state(self, batch_size=None):
      self.v = lib.HiddenState(lib.random.rand(4))

    def reset_state(self, batch_size=None):
      self.v.value = lib.random.rand(4)

  return Cell()


def test_vmap_init_all_states_and_vmap_call_all_fns_match_brainstate():
  out = []
  for lib in LIBS:
    lib.random.seed(0)
    a = lib.nn.vmap_init_all_states(_cell(lib), axis_size=3)
    b = lib.nn.vmap_call_all_fns(_cell(lib), 'init_state', axis_size=2)
    out.append((_values(a), _values(b)))
  for r, o in zip(*out):
    assert list(r.keys()) == list(o.keys())
    jax.tree.map(_close, o, r)
  assert out[1][0][('v',)].shape == (3, 4) and out[1][0][('sub', 'h')].shape == (3, 3)
  with pytest.raises(ValueError, match='axis_size'):
    bsn.nn.vmap_call_all_fns(_cell(bsn), 'init_state')


def test_vmap_reset_all_states_resets_each_member():
  """BrainState 0.5.4 leaks a tracer into the States here; brainstate_nnx
  resets every member on its own and keeps the member axis."""
  def run(seed):
    bsn.random.seed(0)
    cell = bsn.nn.vmap_init_all_states(_cell(bsn), axis_size=3)
    before = _values(cell)
    bsn.random.seed(seed)
    bsn.nn.vmap_reset_all_states(cell, axis_size=3)
    return before, _values(cell)

  before, after = run(1)
  _, again = run(1)
  for k in (('v',), ('sub', 'h')):
    assert after[k].shape == before[k].shape
    assert isinstance(after[k], jax.Array)
    assert not np.allclose(after[k], before[k])
    assert not np.allclose(after[k][0], after[k][1])  # members draw their own numbers
    np.testing.assert_array_equal(after[k], again[k])  # deterministic
  _tree_equal(after[('sub', 'Wh', 'weight')], before[('sub', 'Wh', 'weight')])
  # the same as mapping reset_state over the members by hand with vmap2
  bsn.random.seed(0)
  cell = bsn.nn.vmap_init_all_states(_cell(bsn), axis_size=3)
  bsn.random.seed(1)
  bsn.transform.vmap2(lambda: bsn.nn.reset_all_states(cell), axis_size=3)()
  _close(cell.v.value, after[('v',)])


def test_init_all_states_batch_size_on_a_model():
  for lib in LIBS:
    lib.random.seed(0)
  r = bst.nn.Sequential(bst.nn.LSTMCell(3, 5), bst.nn.Linear(5, 2))
  o = bsn.nn.Sequential(bsn.nn.LSTMCell(3, 5), bsn.nn.Linear(5, 2))
  bst.nn.init_all_states(r, batch_size=7)
  bsn.nn.init_all_states(o, batch_size=7)
  assert list(o.states(bsn.HiddenState).keys()) == [('layers', 0, 'c'), ('layers', 0, 'h')]
  assert o.layers[0].h.value.shape == (7, 5)
  xs = jnp.ones((4, 7, 3))
  _close(bsn.transform.for_loop(o, xs), bst.transform.for_loop(r, xs))


def test_assign_state_values_matches_brainstate():
  results = []
  for lib in LIBS:
    lib.random.seed(0)
    m = lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.PReLU(3))
    vals = {
      ('layers', 0, 'weight'): {'weight': jnp.ones((2, 3)), 'bias': jnp.zeros(3)},
      'layers.1.weight': np.array([0.5, 0.5, 0.5]),
      'nope': 1.0,
    }
    res = lib.nn.assign_state_values(m, vals)
    results.append((res, _values(m)))
  assert results[0][0] == results[1][0] == (['nope'], [])
  _tree_equal(results[1][1], results[0][1])
  assert isinstance(results[1][1][('layers', 1, 'weight')], jax.Array)


# ---------------------------------------------------------------------------
# count_parameters, clip_grad_norm
# ---------------------------------------------------------------------------

class _RecordingTable:
  """Stands in for ``prettytable.PrettyTable`` (not installed here), which
  BrainState's ``count_parameters`` imports when called: it keeps the cells
  BrainState computes, so the counts and their formatting are compared; how
  prettytable draws the borders is not BrainState's behaviour."""

  def __init__(self, field_names):
    self.field_names = list(field_names)
    self.rows = []

  def add_row(self, row):
    self.rows.append(list(row))

  def __str__(self):
    return '\n'.join(' | '.join(str(c) for c in r) for r in [self.field_names] + self.rows)


def _param_module(lib, sizes):
  """A Module with one ``ParamState`` per entry of ``sizes`` (free: every
  value is a zero-stride view of one float) and a non-parameter State."""
  nn = lib.nn

  class M(nn.Module):
    def __init__(self):
      super().__init__()
      for i, n in enumerate(sizes):
        setattr(self, f'w{i}', lib.ParamState(np.broadcast_to(np.float32(0), (n,))))
      self.h = lib.ShortTermState(jnp.zeros(5))  # not a parameter: not counted

  return M()


# Parameter counts at the formatting edges: a plain integer below 1000, the
# suffix steps, values that round up to the next suffix at precision 2 (and
# not at 3), and counts that reach the last suffix (E; numpy sizes end below
# 10 ** 19).
_COUNT_EDGES = (0, 7, 999, 1000, 1234, 999_994, 999_995, 999_999, 1_000_000, 12_345_678,
                999_999_999, 10 ** 12, 1_234_567_890_123, 10 ** 18, 999_999_999_999_999_999)


@pytest.mark.parametrize('precision', [0, 1, 2, 3])
def test_count_parameters_formats_like_brainstate(precision, monkeypatch, capsys):
  monkeypatch.setitem(sys.modules, 'prettytable',
                      types.SimpleNamespace(PrettyTable=_RecordingTable))
  cases = [(n,) for n in _COUNT_EDGES] + [(999_994, 1), (600, 400), (), (0, 0)]
  for sizes in cases:
    ref_table, ref_total = bst.nn.count_parameters(
      _param_module(bst, sizes), precision=precision, return_table=True)
    ref_out = capsys.readouterr().out
    table, total = bsn.nn.count_parameters(
      _param_module(bsn, sizes), precision=precision, return_table=True)
    out = capsys.readouterr().out
    assert total == ref_total == sum(sizes), sizes
    assert table.field_names == ref_table.field_names == ['Modules', 'Parameters']
    assert table.rows == ref_table.rows, (sizes, precision)
    assert len(table.rows) == len(sizes) + 1
    # both print their table
    assert ref_out == str(ref_table) + '\n'
    assert out == str(table) + '\n'
  # the default precision is BrainState's, and so is the plain return value
  tables = []
  for lib in LIBS:
    m = _param_module(lib, (1234, 5))
    assert lib.nn.count_parameters(m) == 1239
    tables.append(lib.nn.count_parameters(m, return_table=True)[0].rows)
  assert tables[1] == tables[0] == [[('w0',), '1.23K'], [('w1',), '5'], ['Total', '1.24K']]


def test_count_parameters(capsys):
  seq = bsn.nn.Sequential(bsn.nn.Linear(30, 40), bsn.nn.PReLU(40), bsn.nn.Linear(40, 2))
  expect = 30 * 40 + 40 + 40 + 40 * 2 + 2
  assert bsn.nn.count_parameters(seq) == expect
  printed = capsys.readouterr().out
  assert "('layers', 0, 'weight')" in printed and '1.24K' in printed and 'Total' in printed
  table, total = bsn.nn.count_parameters(seq, precision=3, return_table=True)
  assert total == expect
  assert table.field_names == ['Modules', 'Parameters']
  assert table.rows[-1] == ['Total', '1.362K']
  with pytest.raises(TypeError):
    bsn.nn.count_parameters({'w': 1})


@pytest.mark.parametrize('norm_type', [2.0, 1, 'inf', '-inf', None, 3])
def test_clip_grad_norm_matches_brainstate(norm_type):
  g = {'a': jnp.array([3., -4.]), 'b': [jnp.array([[1., 2.], [0.5, -6.]])]}
  for max_norm in (0.5, 100.):
    r, rn = bst.nn.clip_grad_norm(g, max_norm, norm_type=norm_type, return_norm=True)
    o, on = bsn.nn.clip_grad_norm(g, max_norm, norm_type=norm_type, return_norm=True)
    _close(on, rn)
    jax.tree.map(_close, o, r)
  jax.tree.map(_close, bsn.nn.clip_grad_norm(g, 1.0), bst.nn.clip_grad_norm(g, 1.0))


def test_clip_grad_norm_empty_and_jit():
  assert bsn.nn.clip_grad_norm({}, 1.0) == {}
  empty, n = bsn.nn.clip_grad_norm({}, 1.0, return_norm=True)
  assert empty == {} and float(n) == 0.0
  clipped = jax.jit(lambda t: bsn.nn.clip_grad_norm(t, 1.0))({'w': jnp.array([3., 4.])})
  _close(clipped['w'], [0.6, 0.8], rtol=1e-5)
