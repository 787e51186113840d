"""State family: nnx.Variable subclasses with BrainState's behaviour."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import brainstate_nnx as bs


STATE_TYPES = [bs.State, bs.ShortTermState, bs.LongTermState, bs.ParamState,
               bs.HiddenState, bs.BatchState]


@pytest.mark.parametrize('cls', STATE_TYPES)
def test_every_state_is_nnx_variable(cls):
  s = cls(jnp.ones(2))
  assert isinstance(s, nnx.Variable)
  assert isinstance(s, bs.State)


def test_hierarchy_matches_brainstate(bst):
  for name in ['ShortTermState', 'LongTermState', 'ParamState', 'HiddenState', 'BatchState']:
    mine = [c.__name__ for c in getattr(bs, name).__mro__ if issubclass(c, bs.State)]
    theirs = [c.__name__ for c in getattr(bst, name).__mro__ if issubclass(c, bst.State)]
    assert mine == theirs, name
  assert issubclass(bs.ParamState, nnx.Param)


def test_value_get_set_without_warnings():
  s = bs.ParamState(jnp.zeros(2))
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    s.value = s.value + 1
    s[...] = s[...] * 3
    assert s.value.tolist() == [3.0, 3.0]


def test_pytree_values_and_names():
  s = bs.State({'a': jnp.zeros(2), 'b': (1.0, jnp.ones(3))}, name='mixed')
  assert s.name == 'mixed'
  assert s.value['b'][0] == 1.0
  s.name = 'renamed'
  assert s.name == 'renamed'
  assert s.numel() == 2 + 1 + 3


def test_identity_equality_and_hash():
  a, b = bs.State(jnp.zeros(2)), bs.State(jnp.zeros(2))
  assert a == a and a != b
  assert {a: 1, b: 2}[b] == 2
  assert b in [a, b] and a in [b, a]
  assert [a, b].index(b) == 1


def test_repr_readable_like_brainstate(bst):
  mine = repr(bs.ParamState(jnp.ones(3), name='w'))
  assert 'ParamState' in mine and 'float32[3]' in mine and "'w'" in mine
  theirs = repr(bst.ParamState(jnp.ones(3), name='w'))
  assert 'float32[3]' in theirs


def test_set_to_state_rejected():
  with pytest.raises(ValueError):
    bs.State(1.0).value = bs.State(2.0)


def test_fake_state_is_not_tracked():
  f = bs.FakeState(3, name='f')
  assert not isinstance(f, bs.State)
  f.value = 4
  assert f.value == 4 and repr(f) == 'FakedState(value=4)'


def test_tags_and_catch_new_states():
  with bs.catch_new_states('new') as catcher:
    a = bs.State(jnp.zeros(1))
    b = bs.ParamState(jnp.zeros(1), tag='p')
  assert catcher.get_states() == [a, b]
  assert a.tag == frozenset({'new'}) and b.tag == frozenset({'p', 'new'})


def test_pytree_flatten_roundtrip_keeps_type_and_metadata():
  s = bs.ParamState(jnp.ones(2), name='w')
  leaves, tree = jax.tree.flatten(s)
  t = jax.tree.unflatten(tree, [leaves[0] * 2])
  assert type(t) is bs.ParamState and t.name == 'w'
  np.testing.assert_allclose(t.value, [2.0, 2.0])


def test_maybe_state():
  assert bs.maybe_state(bs.State(3)) == 3
  assert bs.maybe_state(4) == 4
