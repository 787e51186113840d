"""Tests for brainstate_nnx.util: filters, FlattedDict/NestedDict, helpers.

Most checks are differential: the same structure is built from real
``brainstate`` States and from ``brainstate_nnx`` States, the same operation
is run on both, and keys / values are compared.
"""

import copy
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import brainstate_nnx as bn
from conftest import oracle
from brainstate_nnx import util as U
from brainstate_nnx.util import filter as F

bs = oracle()  # real BrainState


# ---------------------------------------------------------------------------
# mirrored structures
# ---------------------------------------------------------------------------

def _spec():
  """(path, state class name, value, tag) rows; None class = plain value."""
  return [
    (('enc', 'w'), 'ParamState', np.arange(3.0), 'fast'),
    (('enc', 'b'), 'ParamState', np.zeros(3), None),
    (('enc', 'h'), 'HiddenState', np.ones(2), 'slow'),
    (('dec', 0, 'w'), 'ParamState', np.full((2, 2), 2.0), ['fast', 'slow']),
    (('dec', 1, 'mean'), 'LongTermState', np.array(0.5), None),
    (('count',), 'ShortTermState', np.array(7), None),
    (('batch',), 'BatchState', np.ones((2, 1)), 'slow'),
    (('plain',), None, np.array([9.0]), None),
  ]


def _build(M):
  out = {}
  for path, cls, value, tag in _spec():
    if cls is None:
      out[path] = jnp.asarray(value)
    else:
      kw = {} if tag is None else {'tag': tag}
      out[path] = getattr(M, cls)(jnp.asarray(value), **kw)
  return out


def _flat(M):
  return M.util.FlattedDict(_build(M))


def _val(x):
  return np.asarray(x.value if isinstance(x, (bs.State, bn.State)) else x)


def _assert_same(a, b):
  """Same paths in the same order, same leaf classes and values."""
  assert list(a.keys()) == list(b.keys())
  for k in a:
    ta, tb = type(a[k]).__name__, type(b[k]).__name__
    assert ta == tb or ('Array' in ta and 'Array' in tb), (k, ta, tb)
    np.testing.assert_array_equal(_val(a[k]), _val(b[k]))


def _assert_same_groups(ra, rb):
  if isinstance(ra, tuple):
    assert isinstance(rb, tuple) and len(ra) == len(rb)
    for x, y in zip(ra, rb):
      _assert_same(x, y)
  else:
    assert not isinstance(rb, tuple)
    _assert_same(ra, rb)


# Each filter is a function (state module, its filter module) -> filter spec.
FILTERS = {
  'param': lambda M, Fm: M.ParamState,
  'long': lambda M, Fm: M.LongTermState,
  'short': lambda M, Fm: M.ShortTermState,
  'hidden': lambda M, Fm: M.HiddenState,
  'tag_fast': lambda M, Fm: 'fast',
  'tag_slow': lambda M, Fm: 'slow',
  'tag_none': lambda M, Fm: 'nope',
  'path_enc': lambda M, Fm: Fm.PathContains('enc'),
  'path_int': lambda M, Fm: Fm.PathContains(1),
  'not_param': lambda M, Fm: Fm.Not(M.ParamState),
  'all': lambda M, Fm: Fm.All(M.ParamState, Fm.PathContains('enc')),
  'any': lambda M, Fm: Fm.Any('slow', M.ShortTermState),
  'list': lambda M, Fm: [M.HiddenState, 'fast'],
  'tuple': lambda M, Fm: (M.BatchState, Fm.PathContains('count')),
  'ellipsis': lambda M, Fm: ...,
  'true': lambda M, Fm: True,
  'false': lambda M, Fm: False,
  'none': lambda M, Fm: None,
  'everything': lambda M, Fm: Fm.Everything(),
  'nothing': lambda M, Fm: Fm.Nothing(),
  'callable': lambda M, Fm: (lambda path, x: len(path) == 3),
  'array_type': lambda M, Fm: jax.Array,
}


def _both(*names):
  return ([FILTERS[n](bs, bs.util.filter) for n in names],
          [FILTERS[n](bn, F) for n in names])


# ---------------------------------------------------------------------------
# filter language
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('name', sorted(FILTERS))
def test_predicate_matches_brainstate(name):
  (fa,), (fb,) = _both(name)
  pa, pb = bs.util.filter.to_predicate(fa), F.to_predicate(fb)
  a, b = _build(bs), _build(bn)
  got_a = [p for p, x in a.items() if pa(p, x)]
  got_b = [p for p, x in b.items() if pb(p, x)]
  assert got_a == got_b


def test_predicate_hand_computed():
  b = _build(bn)
  sel = lambda f: sorted(map(str, (p for p, x in b.items() if F.to_predicate(f)(p, x))))
  assert sel('fast') == sorted(map(str, [('enc', 'w'), ('dec', 0, 'w')]))
  assert sel(bn.LongTermState) == sorted(map(str, [
    ('enc', 'w'), ('enc', 'b'), ('dec', 0, 'w'), ('dec', 1, 'mean'), ('batch',)]))
  assert sel(F.All('fast', 'slow')) == [str(('dec', 0, 'w'))]
  assert sel(nnx.Param) == sorted(map(str, [('enc', 'w'), ('enc', 'b'), ('dec', 0, 'w')]))


def test_to_predicate_kinds():
  assert F.to_predicate('t') == F.WithTag('t')
  assert F.to_predicate(int) == F.OfType(int)
  assert F.to_predicate(...) == F.Everything() == F.to_predicate(True)
  assert F.to_predicate(None) == F.Nothing() == F.to_predicate(False)
  assert F.to_predicate([int, 't']) == F.Any(int, 't')
  assert F.to_predicate((int,)) == F.Any(int)
  fn = lambda p, x: True
  assert F.to_predicate(fn) is fn
  assert F.Any()((), 1) is False and F.All()((), 1) is True


@pytest.mark.parametrize('bad', [3, 2.5, object(), {'a': 1}, b'x'])
def test_unknown_filter_raises(bad):
  with pytest.raises(TypeError, match='Invalid filter') as e:
    F.to_predicate(bad)
  assert repr(bad) in str(e.value)
  with pytest.raises(TypeError):
    F.Any(int, bad)


def test_withtag_forms():
  class Obj:
    def __init__(self, tag):
      self.tag = tag
  w = F.WithTag('a')
  assert w((), Obj('a')) and not w((), Obj('b'))
  for coll in (['a', 'b'], ('a',), {'a'}, frozenset({'a'})):
    assert w((), Obj(coll))
  assert not w((), Obj(None)) and not w((), Obj(1)) and not w((), 5)
  assert w((), bn.State(1.0, tag='a')) and w((), bn.State(1.0, tag=['x', 'a']))
  assert not w((), bn.State(1.0))
  with pytest.raises(TypeError):
    F.WithTag(['a'])
  assert repr(w) == "WithTag('a')" and hash(w) == hash(F.WithTag('a'))


def test_path_contains_and_oftype():
  pc = F.PathContains('w')
  assert pc(('a', 'w'), None) and not pc(('a', 'b'), None)
  keys = (jax.tree_util.DictKey('w'), jax.tree_util.SequenceKey(0))
  assert pc(keys, None) and F.PathContains(0)(keys, None)
  assert F.PathContains(0)(('a', 0), None) and not F.PathContains(0)(('a', 1), None)
  assert repr(pc) == "PathContains('w')"

  class Ref:
    type = bn.ParamState
  assert F.OfType(bn.LongTermState)((), Ref())
  assert not F.OfType(bn.HiddenState)((), Ref())

  class BadRef:
    type = 'not a type'
  assert not F.OfType(int)((), BadRef())


def test_combinators_eq_hash_repr():
  assert F.Any(int, 'a') == F.Any(int, 'a') and F.Any(int) != F.All(int)
  assert hash(F.All(int, 'a')) == hash(F.All(int, 'a'))
  assert F.Not(int) == F.Not(int) and hash(F.Not(int)) == hash(F.Not(int))
  assert repr(F.Not(F.Any(int, 'a'))) == "Not(Any(OfType(<class 'int'>), WithTag('a')))"
  assert {F.Everything(), F.Everything(), F.Nothing()} == {F.Everything(), F.Nothing()}

  class Unhashable:
    __hash__ = None

    def __call__(self, path, x):
      return True
  for f in (F.Any(Unhashable()), F.All(Unhashable()), F.Not(Unhashable())):
    hash(f)


def test_nnx_filters_translate():
  s = bn.ParamState(1.0, tag='fast')
  assert F.to_predicate(nnx.WithTag('fast')) == F.WithTag('fast')
  # nnx's own WithTag compares ``tag == 'fast'`` and misses a tag set;
  # the translated predicate understands it.
  assert not nnx.WithTag('fast')((), s)
  assert F.to_predicate(nnx.WithTag('fast'))((), s)
  assert F.to_predicate(nnx.OfType(nnx.Param)) == F.OfType(nnx.Param)
  assert F.to_predicate(nnx.Any(nnx.Param, 'slow')) == F.Any(nnx.Param, 'slow')
  assert F.to_predicate(nnx.All(nnx.Param, 'fast'))((), s)
  assert F.to_predicate(nnx.Not(nnx.Param)) == F.Not(nnx.Param)
  assert F.to_predicate(nnx.Everything()) == F.Everything()
  assert F.to_predicate(nnx.Nothing()) == F.Nothing()
  assert F.to_predicate(nnx.PathContains('a')) == F.PathContains('a')
  loose = nnx.PathContains('a', exact=False)
  assert F.to_predicate(loose) is loose
  pin = nnx.filterlib.PathIn(('a',))
  assert F.to_predicate(pin) is pin
  flat = U.FlattedDict(_build(bn))
  assert list(flat.filter(nnx.Any(bn.HiddenState, 'fast'))) == \
    list(flat.filter(F.Any(bn.HiddenState, 'fast')))


def test_reexported_filter_names():
  for name in bs.util.filter.__all__:
    assert getattr(F, name) is getattr(U, name)


# ---------------------------------------------------------------------------
# FlattedDict
# ---------------------------------------------------------------------------

SPLITS = [
  ('param', 'ellipsis'),
  ('param', 'hidden', 'ellipsis'),
  ('tag_fast', 'path_enc', 'true'),
  ('hidden', 'tag_slow', 'long', 'array_type', 'short'),
  ('everything',),
  ('ellipsis',),
  ('callable', 'not_param', 'ellipsis', 'ellipsis'),
  ('nothing', 'ellipsis'),
]


@pytest.mark.parametrize('names', SPLITS, ids=lambda n: '-'.join(n))
def test_flat_split_matches_brainstate(names):
  fa, fb = _both(*names)
  _assert_same_groups(_flat(bs).split(*fa), _flat(bn).split(*fb))


FILTER_CALLS = [
  ('param',), ('tag_slow',), ('path_int',), ('param', 'hidden'),
  ('any', 'all', 'list'), ('tuple', 'not_param'), ('none',), ('false', 'ellipsis'),
  ('tag_none',),
]


@pytest.mark.parametrize('names', FILTER_CALLS, ids=lambda n: '-'.join(n))
def test_flat_filter_and_subset_match_brainstate(names):
  fa, fb = _both(*names)
  _assert_same_groups(_flat(bs).filter(*fa), _flat(bn).filter(*fb))
  _assert_same_groups(_flat(bs).subset(*fa), _flat(bn).subset(*fb))


def test_flat_split_hand_computed():
  flat = _flat(bn)
  params, hidden, rest = flat.split(bn.ParamState, bn.HiddenState, ...)
  assert isinstance(params, U.FlattedDict)
  assert list(params) == [('enc', 'w'), ('enc', 'b'), ('dec', 0, 'w')]
  assert list(hidden) == [('enc', 'h')]
  assert list(rest) == [('dec', 1, 'mean'), ('count',), ('batch',), ('plain',)]
  assert params[('enc', 'w')] is flat[('enc', 'w')]  # same State objects
  one = flat.split(...)
  assert isinstance(one, U.FlattedDict) and list(one) == list(flat)
  # an item goes to the first filter it matches
  fast, params2 = flat.filter('fast', bn.ParamState)
  assert list(fast) == [('enc', 'w'), ('dec', 0, 'w')]
  assert list(params2) == [('enc', 'b')]


def test_flat_split_errors_match_brainstate():
  fa, fb = _both('param')
  with pytest.raises(ValueError):
    _flat(bs).split(*fa)
  with pytest.raises(ValueError, match='Non-exhaustive') as e:
    _flat(bn).split(*fb)
  assert "('enc', 'h')" in str(e.value)
  fa, fb = _both('ellipsis', 'param')
  with pytest.raises(ValueError):
    _flat(bs).split(*fa)
  with pytest.raises(ValueError, match='last'):
    _flat(bn).split(*fb)
  with pytest.raises(ValueError, match='last'):
    _flat(bn).filter(True, bn.ParamState)
  with pytest.raises(TypeError):
    _flat(bn).split()
  with pytest.raises(TypeError, match='Invalid filter'):
    _flat(bn).split(42, ...)


def test_flat_values_roundtrip_matches_brainstate():
  fa, fb = _flat(bs), _flat(bn)
  va, vb = fa.to_dict_values(), fb.to_dict_values()
  assert type(vb) is dict and list(va) == list(vb)
  for k in va:
    np.testing.assert_array_equal(np.asarray(va[k]), np.asarray(vb[k]))
  new = {k: np.asarray(v) + 1 for k, v in vb.items()}
  fa.assign_dict_values(new)
  fb.assign_dict_values(new)
  _assert_same(fa, fb)
  # States were updated in place, plain values replaced in the dict
  state = fb[('enc', 'w')]
  np.testing.assert_array_equal(state.value, np.arange(3.0) + 1)
  np.testing.assert_array_equal(fb[('plain',)], [10.0])
  missing = dict(new)
  del missing[('count',)]
  with pytest.raises(KeyError):
    fa.assign_dict_values(missing)
  with pytest.raises(KeyError, match='count'):
    fb.assign_dict_values(missing)
  fb.assign_dict_values({**new, ('extra',): 1})  # extra paths are ignored
  assert ('extra',) not in fb


def test_flat_plain_nnx_variable_leaf():
  v = nnx.Variable(jnp.array(1.0))
  fd = U.FlattedDict({('v',): v})
  assert fd.to_dict_values()[('v',)] == 1.0
  fd.assign_dict_values({('v',): jnp.array(3.0)})
  assert v.get_value() == 3.0


def test_flat_nest_merge_ops_match_brainstate():
  fa, fb = _flat(bs), _flat(bn)
  na, nb = fa.to_nest(), fb.to_nest()
  assert isinstance(nb, U.NestedDict)
  assert list(na) == list(nb) and list(na['dec']) == list(nb['dec'])
  assert nb['dec'][0]['w'] is fb[('dec', 0, 'w')]
  _assert_same(bs.util.FlattedDict.from_nest(na), U.FlattedDict.from_nest(nb))
  pa, ra = fa.split(bs.ParamState, ...)
  pb, rb = fb.split(bn.ParamState, ...)
  _assert_same(bs.util.FlattedDict.merge(ra, pa), U.FlattedDict.merge(rb, pb))
  _assert_same(bs.util.FlattedDict.merge(ra, pa.to_nest()),
               U.FlattedDict.merge(rb, pb.to_nest()))
  _assert_same(ra | pa, rb | pb)
  _assert_same(fa - pa, fb - pb)
  assert (fb | U.FlattedDict()) is fb and (fb - U.FlattedDict()) is fb
  with pytest.raises(TypeError):
    U.FlattedDict.merge(fb, {('a',): 1})
  with pytest.raises(TypeError):
    fb | {('a',): 1}
  # merge is static, as in brainstate: ``a.merge(b)`` is just ``b``
  assert list(pb.merge(rb)) == list(rb)
  assert fb.to_dict() == dict(fb) and type(fb.to_dict()) is dict


def test_flat_pytree_matches_brainstate():
  fa, fb = _flat(bs), _flat(bn)
  is_a = lambda x: isinstance(x, bs.State)
  is_b = lambda x: isinstance(x, bn.State)
  ka = [p for p, _ in jax.tree_util.tree_flatten_with_path(fa, is_leaf=is_a)[0]]
  kb = [p for p, _ in jax.tree_util.tree_flatten_with_path(fb, is_leaf=is_b)[0]]
  assert ka == kb  # sorted path order, DictKey entries
  doubled = jax.tree.map(lambda x: x * 2, fb)
  assert isinstance(doubled, U.FlattedDict) and list(doubled) == sorted(fb)
  assert isinstance(doubled[('enc', 'w')], bn.ParamState)
  assert doubled[('enc', 'w')] is not fb[('enc', 'w')]
  np.testing.assert_array_equal(doubled[('enc', 'w')].value, np.arange(3.0) * 2)
  assert doubled[('enc', 'w')].tag == frozenset({'fast'})
  leaves, tree = jax.tree.flatten(fb)
  assert len(leaves) == len(fb)
  back = jax.tree.unflatten(tree, leaves)
  assert isinstance(back, U.FlattedDict) and set(back) == set(fb)


def test_flat_pytree_unorderable_keys():
  fd = U.FlattedDict({('a', 1): 1, ('a', 'b'): 2, (0,): 3})
  leaves, tree = jax.tree.flatten(fd)
  assert sorted(leaves) == [1, 2, 3]
  assert jax.tree.unflatten(tree, leaves) == fd
  jax.jit(lambda d: jax.tree.map(lambda x: x + 1, d))(fd)


def test_flat_jit_passthrough():
  fd = U.FlattedDict({('a',): jnp.ones(2), ('b', 'c'): jnp.zeros(1)})
  out = jax.jit(lambda d: jax.tree.map(lambda x: x + 1, d))(fd)
  assert isinstance(out, U.FlattedDict)
  np.testing.assert_array_equal(out[('b', 'c')], [1.0])


# ---------------------------------------------------------------------------
# NestedDict
# ---------------------------------------------------------------------------

def _nest(M):
  return M.util.NestedDict.from_flat(_build(M))


@pytest.mark.parametrize('names', SPLITS, ids=lambda n: '-'.join(n))
def test_nested_split_matches_brainstate(names):
  fa, fb = _both(*names)
  ra, rb = _nest(bs).split(*fa), _nest(bn).split(*fb)
  if isinstance(ra, tuple):
    for x, y in zip(ra, rb, strict=True):
      assert isinstance(y, U.NestedDict)
      _assert_same(x.to_flat(), y.to_flat())
  else:
    _assert_same(ra.to_flat(), rb.to_flat())


@pytest.mark.parametrize('names', FILTER_CALLS, ids=lambda n: '-'.join(n))
def test_nested_filter_matches_brainstate(names):
  fa, fb = _both(*names)
  ra, rb = _nest(bs).filter(*fa), _nest(bn).filter(*fb)
  if isinstance(ra, tuple):
    for x, y in zip(ra, rb, strict=True):
      _assert_same(x.to_flat(), y.to_flat())
  else:
    _assert_same(ra.to_flat(), rb.to_flat())
  sub = _nest(bn).subset(*fb)
  first_sub, first_a = (sub, ra) if len(fb) == 1 else (sub[0], ra[0])
  _assert_same(first_a.to_flat(), first_sub.to_flat())


def test_nested_split_errors():
  fa, fb = _both('param')
  with pytest.raises(ValueError):
    _nest(bs).split(*fa)
  with pytest.raises(ValueError, match='Non-exhaustive'):
    _nest(bn).split(*fb)
  with pytest.raises(ValueError, match='last'):
    U.NestedDict({'a': 1}).split(..., lambda p, v: v > 1)


def test_nested_ops_match_brainstate():
  na, nb = _nest(bs), _nest(bn)
  assert list(na) == list(nb)
  assert nb.enc['w'] is nb['enc']['w']  # attribute access
  _assert_same(na.to_flat(), nb.to_flat())
  pa, ra = na.split(bs.ParamState, ...)
  pb, rb = nb.split(bn.ParamState, ...)
  for ma, mb in [(bs.util.NestedDict.merge(pa, ra), U.NestedDict.merge(pb, rb)),
                 (bs.util.NestedDict.merge(pa, ra.to_flat()), U.NestedDict.merge(pb, rb.to_flat())),
                 (pa | ra, pb | rb),
                 (na - pa, nb - pb)]:
    assert isinstance(mb, U.NestedDict)
    _assert_same(ma.to_flat(), mb.to_flat())
  with pytest.raises(TypeError):
    U.NestedDict.merge(pb, {'a': 1})
  pure_a, pure_b = na.to_pure_dict(), nb.to_pure_dict()
  assert type(pure_b) is dict and type(pure_b['dec'][0]) is dict
  assert pure_b['dec'][0]['w'] is nb['dec'][0]['w']
  assert list(pure_a) == list(pure_b)
  assert U.NestedDict({'a': {}, 'b': 1}).to_pure_dict() == {'a': {}, 'b': 1}


def test_nested_replace_by_pure_dict_matches_brainstate():
  na, nb = _nest(bs), _nest(bn)
  old = nb['enc']['w']
  new_values = {'enc': {'w': jnp.full(3, 5.0)}, 'plain': jnp.array([1.0])}
  na.replace_by_pure_dict(new_values)
  nb.replace_by_pure_dict(new_values)
  _assert_same(na.to_flat(), nb.to_flat())
  w = nb['enc']['w']
  assert isinstance(w, bn.ParamState) and w is not old and w.tag == frozenset({'fast'})
  np.testing.assert_array_equal(w.value, np.full(3, 5.0))
  with pytest.raises(ValueError):
    nb.replace_by_pure_dict({'nope': 1})
  nb.replace_by_pure_dict({'count': 3}, replace_fn=lambda old, new: new)
  assert nb['count'] == 3


def test_nested_pytree_matches_brainstate():
  na, nb = _nest(bs), _nest(bn)
  ka = [p for p, _ in jax.tree_util.tree_flatten_with_path(
    na, is_leaf=lambda x: isinstance(x, bs.State))[0]]
  kb = [p for p, _ in jax.tree_util.tree_flatten_with_path(
    nb, is_leaf=lambda x: isinstance(x, bn.State))[0]]
  assert ka == kb
  out = jax.tree.map(lambda x: x + 1, U.NestedDict({'b': 1, 'a': {'c': 2}}))
  assert isinstance(out, U.NestedDict) and out == {'a': {'c': 3}, 'b': 2}
  assert list(out) == ['a', 'b']
  assert jax.tree.leaves(U.NestedDict()) == []


def test_flat_and_nest_mapping():
  xs = {'foo': 1, 'bar': {'a': 2, 'b': {}}}
  assert dict(U.flat_mapping(xs)) == dict(bs.util.flat_mapping(xs))
  assert dict(U.flat_mapping(xs, sep='/')) == {'foo': 1, 'bar/a': 2}
  kept = U.flat_mapping(xs, keep_empty_nodes=True)
  assert kept[('bar', 'b')] is U.empty_node
  assert U.nest_mapping(kept).to_dict() == xs
  assert dict(U.flat_mapping({}, keep_empty_nodes=True)) == {}
  leafy = U.flat_mapping({'a': {'b': {'c': 1}}}, is_leaf=lambda p, m: p == ('a', 'b'))
  assert dict(leafy) == {('a', 'b'): {'c': 1}}
  assert U.nest_mapping({'x/y': 1}, sep='/').to_dict() == {'x': {'y': 1}}
  for bad in ({('a',): 1, ('a', 'b'): 2}, {('a', 'b'): 2, ('a',): 1}, {(): 1}):
    with pytest.raises(ValueError):
      U.nest_mapping(bad)
    with pytest.raises(ValueError):
      bs.util.nest_mapping(bad)
  with pytest.raises(TypeError):
    U.flat_mapping([1])
  assert jax.tree.leaves(U.empty_node) == []
  assert pickle.loads(pickle.dumps(U.empty_node)) is U.empty_node


def test_prettydict_protocol_and_repr():
  d = U.NestedDict({'a': 1, 'b': {'c': 2}})
  assert d.a == 1
  with pytest.raises(KeyError):
    d.missing
  assert not hasattr(d, 'missing') and not hasattr(d, '__deepcopy__')
  assert copy.deepcopy(d).to_dict() == {'a': 1, 'b': {'c': 2}}
  assert pickle.loads(pickle.dumps(d)) == d
  with pytest.raises(NotImplementedError):
    U.PrettyDict().split(int)
  r = repr(U.FlattedDict({('a', 'b'): bn.ParamState(jnp.ones(2)), ('c',): 3}))
  assert r.startswith('FlattedDict({') and "('a', 'b'): ParamState(" in r and "('c',): 3" in r
  assert repr(U.FlattedDict()) == 'FlattedDict({})'
  assert repr(d) == "NestedDict({\n  'a': 1,\n  'b': {'c': 2}\n})"
  cyc = U.NestedDict({'x': 1})
  cyc['self'] = cyc
  assert 'NestedDict(...)' in repr(cyc)
  assert repr(U.PrettyList([1, 2])) == '[\n  1,\n  2\n]'
  lst = jax.tree.map(lambda x: x + 1, U.PrettyList([1, {'a': 2}]))
  assert isinstance(lst, U.PrettyList) and lst == [2, {'a': 3}]

  class Cfg(U.PrettyObject):
    def __init__(self):
      self.lr = 0.1
      self._hidden = 1

    def __pretty_repr_item__(self, k, v):
      return None if k.startswith('_') else (k, v)
  assert repr(Cfg()) == 'Cfg(\n  lr=0.1\n)'


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def test_split_total_matches_brainstate():
  for total, frac in [(100, 0.5), (10, 3), (10, 0), (7, 1.0), (3, 0.34), (5, 5)]:
    assert U.split_total(total, frac) == bs.util.split_total(total, frac)
  for total, frac, err in [(10, 1.5, ValueError), (10, 11, ValueError), (10, -1, ValueError),
                           (0, 0.5, ValueError), (10.0, 0.5, TypeError), (True, 1, TypeError),
                           (10, True, TypeError), (10, '1', TypeError)]:
    with pytest.raises(err):
      bs.util.split_total(total, frac)
    with pytest.raises(err):
      U.split_total(total, frac)


def test_get_unique_name():
  a = U.get_unique_name('_t_uniq')
  b = U.get_unique_name('_t_uniq', prefix='p_')
  assert a == '_t_uniq0' and b == 'p__t_uniq1'


def test_instance_eval():
  assert U.is_instance_eval(int, str)('x') and not U.is_instance_eval(int)('x')
  assert U.not_instance_eval(int)('x') and not U.not_instance_eval(str)('x')


def test_dict_utils_match_brainstate():
  nested = {'a': 1, 'b': {'c': 2, 'd': {'e': 3}, 'f': {}}}
  assert U.flatten_dict(nested) == bs.util.flatten_dict(nested)
  assert U.flatten_dict(nested, sep='/') == bs.util.flatten_dict(nested, sep='/')
  flat = U.flatten_dict(nested)
  assert U.unflatten_dict(flat) == bs.util.unflatten_dict(flat) == nested
  ds = ({'a': 1, 'b': {'c': 2}}, {'b': {'d': 3}, 'e': 4})
  for rec in (True, False):
    assert U.merge_dicts(*ds, recursive=rec) == bs.util.merge_dicts(*ds, recursive=rec)
  for fn, arg in [(U.flatten_dict, {'a': {1: 2}}), (U.flatten_dict, [1]),
                  (U.unflatten_dict, {'a..b': 1}), (U.merge_dicts, [1])]:
    with pytest.raises((TypeError, ValueError)):
      fn(arg)


def test_dict_manager():
  x, y = object(), object()
  d = U.DictManager(a=1, b=2.0, c='s')
  assert d.subset(int) == {'a': 1} and d.subset(lambda v: v == 's') == {'c': 's'}
  assert d.not_subset((int, float)) == {'c': 's'}
  ints, floats, rest = d.split(int, float)
  assert (ints, floats, rest) == ({'a': 1}, {'b': 2.0}, {'c': 's'})
  assert isinstance(ints, U.DictManager)
  m = U.DictManager()
  m.add_unique_key('x', x)
  m.add_unique_key('x', x)
  with pytest.raises(ValueError):
    m.add_unique_key('x', y)
  assert m.add_unique_value('y', x) is False and 'y' not in m
  assert m.add_unique_value('y', y) is True
  m['z'] = x
  assert list(m.unique()) == ['x', 'y']
  m.unique_()
  assert list(m) == ['x', 'y']
  assert m.difference_by_values([x]) == {'y': y}
  assert m.intersection_by_keys(['x']) == {'x': x}
  m.pop_by_values([y])
  assert list(m) == ['x']
  assert (d + {'z': 0})['z'] == 0 and isinstance(d | {'z': 0}, U.DictManager)
  assert d.map_values(str) == {'a': '1', 'b': '2.0', 'c': 's'}
  with pytest.raises(ValueError):
    d.map_keys(lambda k: 0)
  out = jax.tree.map(lambda v: v * 2, U.DictManager(a=1, b=2))
  assert isinstance(out, U.DictManager) and out == {'a': 2, 'b': 4}
  assert repr(U.DictManager(a=1)) == "DictManager({'a': 1})"


def test_dot_dict():
  cfg = U.DotDict({'model': {'hidden': 4}, 'layers': [{'n': 1}]}, lr=0.1)
  assert cfg.model.hidden == 4 and cfg.layers[0].n == 1 and cfg.lr == 0.1
  cfg.opt = {'beta': 0.9}
  assert isinstance(cfg.opt, U.DotDict)
  cfg.update({'model': {'depth': 2}})
  assert cfg.model.to_dict() == {'hidden': 4, 'depth': 2}
  assert cfg.to_dict()['layers'] == [{'n': 1}] and type(cfg.to_dict()['layers'][0]) is dict
  with pytest.raises(AttributeError):
    cfg.missing
  with pytest.raises(AttributeError):
    cfg.update = 1
  del cfg.opt
  assert 'opt' not in cfg
  deep = cfg.deepcopy()
  deep.model.hidden = 9
  assert cfg.model.hidden == 4
  assert isinstance(cfg | {'x': 1}, U.DotDict)
  assert pickle.loads(pickle.dumps(cfg)) == cfg
  leaves = jax.tree.leaves(U.DotDict(a=1, b={'c': 2}))
  assert sorted(leaves) == [1, 2]


def test_bounded_cache():
  c = U.BoundedCache(maxsize=2)
  c.set('a', 1)
  c.set('b', 2)
  assert c.get('a') == 1
  c.set('c', 3)
  assert c.keys() == ['a', 'c'] and 'b' not in c and len(c) == 2
  with pytest.raises(ValueError):
    c.set('a', 5)
  c.replace('a', 5)
  assert c.get('a') == 5
  with pytest.raises(KeyError):
    c.replace('zz', 1)
  with pytest.raises(ValueError, match='zz'):
    c.get('zz', raise_on_miss=True)
  assert c.pop('a') == 5 and c.pop('a', 'd') == 'd'
  stats = c.get_stats()
  assert stats['hits'] == 2 and stats['misses'] == 1 and stats['size'] == 1
  c.clear()
  assert len(c) == 0 and c.get_stats()['hits'] == 0
  zero = U.BoundedCache(0)
  zero.set('a', 1)
  assert 'a' not in zero
  with pytest.raises(ValueError):
    U.BoundedCache(-1)
  with pytest.raises(TypeError):
    U.BoundedCache(1.5)


def test_struct_reexports():
  @U.dataclass
  class P:
    x: float
    name: str = U.field(pytree_node=False, default='p')

  assert jax.tree.leaves(P(1.0)) == [1.0] and U.is_dataclass(P)
  assert P(1.0).replace(x=2.0).x == 2.0
  fd = U.freeze({'a': {'b': 1}})
  assert isinstance(fd, U.FrozenDict) and U.unfreeze(fd) == {'a': {'b': 1}}
  assert U.copy(fd, {'c': 2})['c'] == 2
  rest, val = U.pop(fd, 'a')
  assert val == {'b': 1} and 'a' not in rest
  assert 'a' in U.pretty_repr({'a': 1})


def test_clear_buffer_memory(monkeypatch):
  x = jnp.arange(3.0) + 1
  U.clear_buffer_memory(array=False)
  assert float(x.sum()) == 6.0
  # Deleting every live array would break other tests in this process, so
  # only ``x`` is offered for deletion.
  seen = []

  def fake_live_arrays(platform=None):
    seen.append(platform)
    return [x]
  monkeypatch.setattr(jax, 'live_arrays', fake_live_arrays)
  U.clear_buffer_memory('cpu', compilation=True)
  assert x.is_deleted() and seen == ['cpu']


def test_util_all_exports_exist():
  for name in U.__all__:
    assert hasattr(U, name), name
  skipped = {'StateJaxTracer', 'yield_unique_pretty_repr_items', 'PrettyType',
             'PrettyAttr', 'PrettyRepr', 'PrettyMapping', 'MappingReprMixin',
             'breakpoint_if'}
  assert set(bs.util.__all__) - set(U.__all__) == skipped
