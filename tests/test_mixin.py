"""brainstate_nnx.mixin and brainstate_nnx.typing against real BrainState."""

import pickle

import brainstate as bst
import brainunit as u
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bsn

LIBS = (bst, bsn)


def outcome(fn):
  try:
    return ('ok', fn())
  except Exception as e:  # noqa: BLE001
    return ('err', type(e).__name__, str(e))


def same(program):
  theirs, mine = outcome(lambda: program(bst)), outcome(lambda: program(bsn))
  assert mine == theirs
  return mine


class Cell:
  def __init__(self, size, tau=1.0, *rest, **extra):
    self.size, self.tau, self.rest, self.extra = size, tau, rest, extra


def test_param_describer_builds_like_brainstate():
  def program(b):
    class Syn(b.mixin.ParamDesc, Cell):
      pass

    d = Syn.desc(3, z=2.0)
    obj = d(9, w=1, z=0.5)
    obj2 = d.init()
    return (repr(d), obj.size, obj.tau, obj.rest, obj.extra, obj2.tau,
            isinstance(d, b.mixin.ParamDescriber), isinstance(d, b.mixin.ParamDescriber[Syn]),
            isinstance(d, b.mixin.ParamDescriber[b.mixin.Mode]), hash(d.identifier) == hash(Syn.desc(3, z=2.0).identifier))

  res = same(program)
  assert res[1][:6] == ('ParamDescriber(Syn(3, z=2.0))', 3, 9, (), {'z': 0.5, 'w': 1}, 1.0)


def test_param_describer_rules_like_brainstate():
  same(lambda b: b.mixin.ParamDescriber(Cell, 1).__setattr__('identifier', 2))
  same(lambda b: type('Sub', (b.mixin.ParamDescriber,), {}))
  same(lambda b: b.mixin.ParamDescriber(dict, a=[1, 2]).identifier[2])   # unhashable -> str


def test_joint_and_one_of_types_like_brainstate():
  def program(b):
    class A: pass
    class B: pass
    class AB(A, B): pass
    J, O = b.mixin.JointTypes, b.mixin.OneOfTypes
    jab = J[A, B]
    return (isinstance(AB(), jab), isinstance(A(), jab), issubclass(AB, jab), issubclass(A, jab),
            isinstance(A(), O[A, B]), isinstance(1, O[A, B]), issubclass(B, O(A, B)),
            J[A] is A, O[A, A] is A, J[A, B] == J[B, A], hash(J[A, B]) == hash(J[B, A]),
            O[A, B] == O[B, A], J[A, B] == O[A, B], repr(jab).replace('brainstate_nnx', 'brainstate'))

  same(program)
  same(lambda b: b.mixin.JointTypes())
  same(lambda b: b.mixin.OneOfTypes())
  same(lambda b: b.mixin.JointTypes[int, float]())


def test_joint_types_pickle_roundtrip():
  jt = bsn.mixin.JointTypes[int, bsn.mixin.Mode]
  assert pickle.loads(pickle.dumps(jt)) == jt


def test_modes_like_brainstate():
  def program(b):
    m = b.mixin
    jm = m.JointMode(m.Batching(8, 1), m.Training())
    return (repr(m.Training()), repr(m.Batching()), repr(jm), m.Training() == m.Training(),
            hash(m.Training()) == hash(m.Training()), m.Batching(2).is_a(m.Batching),
            m.Batching().has(m.Mode), m.Training().is_a(m.Mode), jm.has(m.Training),
            jm.has(m.Batching), jm.batch_size, jm.batch_axis,
            jm.is_a(m.JointTypes[m.Batching, m.Training]), jm.is_a(m.Training))

  same(program)
  same(lambda b: b.mixin.JointMode(b.mixin.Training(), 3))
  same(lambda b: b.mixin.Training().has('Training'))
  same(lambda b: b.mixin.Training() == 1)


def test_not_implemented_helpers_like_brainstate():
  def program(b):
    f = b.mixin.not_implemented(lambda: 1)
    return b.mixin.is_not_implemented(f), b.mixin.is_not_implemented(print), outcome(f)

  assert same(program)[1][2][1] == 'NotImplementedError'


def test_mode_in_environ_settings():
  bsn.environ.set(mode=bsn.mixin.Training())
  try:
    assert bsn.environ.get('mode') == bsn.mixin.Training()
  finally:
    bsn.environ.pop('mode')


# -- typing ---------------------------------------------------------------------------

def test_typing_names_match_brainstate():
  assert set(bst.typing.__all__) <= set(dir(bsn.typing))


@pytest.mark.parametrize('value', [jnp.ones(2), np.ones(2), np.float32(1), True, 3, 2.5, 1j,
                                   1.0 * u.mV, 'x', [1.0], None])
def test_arraylike_isinstance_like_brainstate(value):
  assert isinstance(value, bsn.typing.ArrayLike) == isinstance(value, bst.typing.ArrayLike)


def test_pytree_annotations_like_brainstate():
  def program(b):
    P = b.typing.PyTree
    return (P[int].leaftype, P[int, 'T'].structure, P[int, ' S  T '].structure,
            P[int, '... T'].structure, P[int] is P[int], issubclass(P[int], P))

  same(program)


@pytest.mark.parametrize('item', [(int, 'T', 'x'), (int, 3), (int, ''), (int, '...'),
                                  (int, 'a ... b'), (int, '1x'), ([],)],
                         ids=['len3', 'nonstr', 'empty', 'ellipsis', 'interior', 'ident', 'unhashable'])
def test_pytree_annotation_errors_like_brainstate(item):
  def program(b):
    return b.typing.PyTree[item if len(item) > 1 else item[0]]

  res = same(program) if item != ([],) else None
  if res is not None:
    assert res[0] == 'err'
  else:
    with pytest.raises(TypeError):
      bsn.typing.PyTree[[]]
  with pytest.raises(RuntimeError):
    bsn.typing.PyTree()


def test_array_annotation_like_brainstate():
  assert str(bsn.typing.Array['batch, 10']) == str(bst.typing.Array['batch, 10'])
  assert str(bsn.typing.Array[int, 3]) == str(bst.typing.Array[int, 3])
