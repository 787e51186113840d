"""HiData: differential tests against BrainState 0.5.4."""

import brainstate
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bsn


def _make(lib):
  inner = lib.nn.HiData(a=jnp.ones(2), b=None, name='gate')
  return lib.nn.HiData(children={'V': jnp.zeros(3), 'm': jnp.arange(3.0)}, name='hh', sub=inner)


def test_pytree_structure_paths_and_repr_match_brainstate():
  ours, ref = _make(bsn), _make(brainstate)
  po = jax.tree_util.tree_flatten_with_path(ours)[0]
  pr = jax.tree_util.tree_flatten_with_path(ref)[0]
  assert [p for p, _ in po] == [p for p, _ in pr]
  for (_, a), (_, b) in zip(po, pr):
    np.testing.assert_array_equal(a, b)
  assert repr(ours) == repr(ref)
  assert repr(bsn.nn.HiData()) == repr(brainstate.nn.HiData())
  assert ours.state_size == ref.state_size == 3
  assert ours.dtype == ref.dtype
  assert len(ours) == len(ref) == 3 and ('V' in ours) and ('x' not in ours)
  assert list(ours.keys()) == list(ref.keys())


def test_functional_updates_match_brainstate():
  for lib in (bsn, brainstate):
    s = _make(lib)
    t = s.replace(V=jnp.ones(3)).add({'w': jnp.full(3, 2.0)}, z=None).pop('m')
    assert sorted(t.keys()) == ['V', 'sub', 'w', 'z']
    np.testing.assert_array_equal(t.V, np.ones(3))
    np.testing.assert_array_equal(s.V, np.zeros(3))  # original unchanged
    d = s.to_dict()
    assert isinstance(d['sub'], dict)
    back = lib.nn.HiData.from_dict(d)
    assert isinstance(back.sub, lib.nn.HiData)
    c = s.clone()
    assert c is not s and c.name == 'hh'
    with pytest.raises(AttributeError, match="'HiData' has no attribute 'nope'"):
      s.nope
    with pytest.raises(ValueError, match='No array children'):
      lib.nn.HiData(x=None).dtype
    with pytest.raises(AssertionError, match='Argument must be of type HiData or Dict'):
      s.add(3)


def test_through_jit_vmap_and_subclass():
  class HH(bsn.nn.HiData):
    pass

  s = HH(V=jnp.zeros(3), m=jnp.ones(3), name='hh')
  out = bsn.transform.jit(lambda x: jax.tree.map(lambda v: v + 1, x))(s)
  assert isinstance(out, HH) and out.name == 'hh'
  np.testing.assert_array_equal(out.m, 2 * np.ones(3))
  batched = jax.vmap(lambda x: x.replace(V=x.V + x.m))(
    HH(V=jnp.zeros((2, 3)), m=jnp.ones((2, 3))))
  np.testing.assert_array_equal(batched.V, np.ones((2, 3)))
