"""BrainState's State family, as Flax NNX Variables.

Every class here is an :class:`flax.nnx.Variable`; :class:`ParamState` is also
an :class:`flax.nnx.Param`, so ``nnx.state(model, nnx.Param)`` and
``nnx.Optimizer(model, tx, wrt=nnx.Param)`` cover it.

Three cheap hooks make a State visible to brainstate_nnx transforms:
``get_value`` (reads, including ``state.value`` and ``state[...]``), writes of
the raw value (``state.value = x``, ``state[...] = x``, nnx updates) and the
pytree flatten (``nnx.state``/``jax.tree.map`` reads). Outside a transform they
cost one truthiness test.

Example::

  >>> import jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> w = brainstate.ParamState(jnp.ones(3), name='w')
  >>> w.value = w.value * 2
  >>> w.value
  Array([2., 2., 2.], dtype=float32)
  >>> w.name
  'w'
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Callable, Iterator, Optional

import jax
import numpy as np
from flax import nnx
from flax.nnx import reprlib
from flax.nnx import variablelib as _vl

from . import _context

__all__ = [
  'State',
  'ShortTermState',
  'LongTermState',
  'ParamState',
  'HiddenState',
  'BatchState',
  'FakeState',
  'maybe_state',
  'catch_new_states',
  'adopt',
]

_MISSING = _vl.MISSING


def _flatten(x):
  stack = _context._CTX.frames
  if stack:
    stack[-1].on_read(x)
  return (x._raw_value,), tuple(sorted(x._var_metadata.items()))


def _flatten_with_keys(x):
  stack = _context._CTX.frames
  if stack:
    stack[-1].on_read(x)
  return (
    ((jax.tree_util.GetAttrKey('value'), x._raw_value),),
    tuple(sorted(x._var_metadata.items())),
  )


def _unflatten(cls, static, children):
  return cls._new(children[0], dict(static))


class _Hooked(nnx.Variable):
  """Registers every subclass as a pytree whose flatten is a recorded read."""

  def __init_subclass__(cls, **kwargs):
    # Skip ``nnx.Variable.__init_subclass__``: it would register nnx's own
    # flatten, which reads ``_raw_value`` behind the transforms' back.
    super(nnx.Variable, cls).__init_subclass__(**kwargs)
    jax.tree_util.register_pytree_with_keys(
      cls,
      flatten_with_keys=_flatten_with_keys,
      unflatten_func=functools.partial(_unflatten, cls),
      flatten_func=_flatten,
    )


class _NewStateCatcher(threading.local):
  def __init__(self):
    self.catchers: list[list] = []


_CATCH = _NewStateCatcher()


class State(_Hooked):
  """A mutable value tracked by brainstate_nnx transforms.

  ``State(value, name=None, **metadata)``. ``value`` may be any pytree.
  Equality and hashing are by identity, so a State can key a dict and be found
  in a list. ``tag`` (a string or set of strings) and ``name`` are kept as
  nnx metadata.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> s = brainstate.State({'a': jnp.zeros(2), 'b': 1.0})
    >>> s.value['b']
    1.0
    >>> d = {s: 'found'}; d[s]
    'found'
  """

  __module__ = 'brainstate_nnx'
  __hash__ = object.__hash__

  def __init__(self, value: Any, name: Optional[str] = None, **metadata: Any):
    if isinstance(value, nnx.Variable):
      value = value.get_value()
    tag = metadata.pop('tag', None)
    if tag is not None:
      metadata['tag'] = frozenset({tag} if isinstance(tag, str) else tag)
    if name is not None:
      metadata['name'] = name
    super().__init__(value, **metadata)
    _context.notify_create(self, True)
    if _CATCH.catchers:
      for c in _CATCH.catchers:
        c.append(self)

  @classmethod
  def _new(cls, value, metadata):
    obj = super()._new(value, metadata)
    _context.notify_create(obj)
    return obj

  # -- identity semantics --------------------------------------------------
  def __eq__(self, other) -> bool:
    return self is other

  def __ne__(self, other) -> bool:
    return self is not other

  # -- value access ---------------------------------------------------------
  def get_value(self, *, index: Any = _MISSING):
    _context.notify_read(self)
    if index is _MISSING:
      v = self._raw_value
      # Fast path: an (immutable) array leaf needs none of nnx's copying.
      if isinstance(v, _LEAF_TYPES) and _plain(self._var_metadata, 'on_get_value'):
        return v
      # A dict/list value is handed out itself, as BrainState does, so that
      # ``s.value['a'] = x`` changes the State (transforms see the change).
      if type(v) in (dict, list) and _plain(self._var_metadata, 'on_get_value'):
        return v
    return super().get_value(index=index)

  def set_value(self, value: Any, *, index: Any = _MISSING):
    # (``isinstance(value, nnx.Variable)`` would ask JAX for a tracer's type)
    if isinstance(type(value), _vl.VariableMeta):
      raise ValueError(
        'Cannot set the value of a State to another State/Variable; '
        'use `state.copy_from(other)` or assign `other.value`.'
      )
    if (index is _MISSING and isinstance(value, _LEAF_TYPES)
        and _plain(self._var_metadata, 'on_set_value')):
      self._raw_value = value  # recorded by __setattr__
      return
    super().set_value(value, index=index)

  @property
  def value(self):
    """The current value (a pytree). Reading and writing it is tracked."""
    return self.get_value()

  @value.setter
  def value(self, v):
    self.set_value(v)

  def __setattr__(self, name: str, value: Any) -> None:
    if name == '_raw_value':
      _context.notify_write(self, value)
      object.__setattr__(self, name, value)
    elif name == 'value':
      self.set_value(value)
    elif name == 'name':
      self.set_metadata(name=value)
    else:
      super().__setattr__(name, value)

  def _check_can_update(self):
    # Inside brainstate_nnx transforms the frames decide what is legal.
    if not _context._CTX.frames:
      super()._check_can_update()

  # -- BrainState conveniences ----------------------------------------------
  @property
  def name(self) -> Optional[str]:
    """The optional name given at construction (``State(x, name='w')``)."""
    return self._var_metadata.get('name')

  @property
  def tag(self):
    """The tags of this State (a frozenset of str), or ``None``."""
    return self._var_metadata.get('tag')

  def add_tag(self, tag: str) -> None:
    """Adds ``tag`` to this State's tags."""
    tags = set(self.tag or ())
    tags.add(tag)
    self.set_metadata(tag=frozenset(tags))

  def value_call(self, func: Callable[..., Any]) -> Any:
    """``jax.tree.map(func, self.value)``."""
    return jax.tree.map(func, self.value)

  def numel(self) -> int:
    """Total number of elements of all leaves of the value."""
    return int(sum(np.size(x) for x in jax.tree.leaves(self._raw_value)))

  def restore_value(self, v: Any) -> None:
    """Sets the value, recorded as a write (BrainState compatibility)."""
    self.set_value(v)

  def replace(self, value: Any = _MISSING, **kwargs) -> 'State':
    """A new State of the same type and metadata holding ``value``."""
    return self.copy(value, **kwargs)

  def __nnx_repr__(self):
    yield reprlib.Object(type=type(self).__name__)
    yield reprlib.Attr('value', _abstract(self._raw_value))
    for key, v in self._var_metadata.items():
      if key in ('hijax', 'ref', 'eager_sharding'):
        continue
      yield reprlib.Attr(key, v)

  def __treescope_repr__(self, path, subtree_renderer):
    from flax.nnx import visualization

    children = {'value': self._raw_value}
    children.update(
      (k, v) for k, v in self._var_metadata.items()
      if k not in ('hijax', 'ref', 'eager_sharding')
    )
    return visualization.render_object_constructor(
      object_type=type(self),
      attributes=children,
      path=path,
      subtree_renderer=subtree_renderer,
    )


_LEAF_TYPES = (jax.Array, np.ndarray, np.generic, float, int, bool, complex)


def _plain(metadata: dict, hook: str) -> bool:
  """No Ref value and no (deprecated) nnx value hook: the fast path applies."""
  return not metadata.get('ref') and hook not in metadata


def _abstract(value):
  def one(x):
    try:
      return jax.core.ShapedArray(np.shape(x), jax.typeof(x).dtype)
    except Exception:
      return x

  return jax.tree.map(one, value)


class ShortTermState(State):
  """A State holding transient values (e.g. per-step membrane potentials)."""

  __module__ = 'brainstate_nnx'


class LongTermState(State):
  """A State persisting across iterations (e.g. running averages)."""

  __module__ = 'brainstate_nnx'


class BatchState(LongTermState):
  """A long-term State holding batch data."""

  __module__ = 'brainstate_nnx'


class HiddenState(ShortTermState):
  """The hidden variable of a dynamical model (membrane potential, ...)."""

  __module__ = 'brainstate_nnx'


class ParamState(LongTermState, nnx.Param):
  """A trainable parameter. Both a :class:`LongTermState` and an ``nnx.Param``.

  Example::

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import brainstate_nnx as brainstate
    >>> p = brainstate.ParamState(jnp.zeros(2))
    >>> isinstance(p, nnx.Param), isinstance(p, brainstate.LongTermState)
    (True, True)
  """

  __module__ = 'brainstate_nnx'


class FakeState:
  """A plain value holder with a State-like ``.value`` (not tracked).

  As in BrainState, it is *not* a State: transforms do not thread it.
  """

  __module__ = 'brainstate_nnx'

  def __init__(self, value: Any, name: Optional[str] = None, **kwargs):
    self._value = value
    self._name = name

  @property
  def value(self) -> Any:
    return self._value

  @value.setter
  def value(self, v) -> None:
    self._value = v

  @property
  def name(self) -> Optional[str]:
    return self._name

  @name.setter
  def name(self, name: str) -> None:
    self._name = name

  def __repr__(self) -> str:
    return f'FakedState(value={self._value})'


def maybe_state(val: Any) -> Any:
  """``val.value`` if ``val`` is a State, else ``val``."""
  if isinstance(val, State):
    return val.value
  return val


class _Catcher(list):
  def get_states(self):
    return list(self)

  def get_state_values(self):
    return [s.value for s in self]


@contextlib.contextmanager
def catch_new_states(state_tag: Optional[str] = None) -> Iterator[_Catcher]:
  """Collects the States created inside the ``with`` block.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> with brainstate.catch_new_states('new') as catcher:
    ...   a = brainstate.State(jnp.zeros(1))
    >>> catcher.get_states() == [a], a.tag
    (True, frozenset({'new'}))
  """
  catcher = _Catcher()
  _CATCH.catchers.append(catcher)
  try:
    yield catcher
  finally:
    _CATCH.catchers.remove(catcher)
    if state_tag is not None:
      for st in catcher:
        st.add_tag(state_tag)


# --------------------------------------------------------------------------
# adopting stock nnx Variables
# --------------------------------------------------------------------------

_TRACKED: dict[type, type] = {}


def _tracked_class(cls: type) -> type:
  tracked = _TRACKED.get(cls)
  if tracked is None:
    tracked = type(cls.__name__, (State, cls), {
      '__module__': cls.__module__,
      '__qualname__': cls.__qualname__,
      '__doc__': f'{cls.__name__}, tracked by brainstate_nnx transforms.',
    })
    _TRACKED[cls] = tracked
    _TRACKED[tracked] = tracked
  return tracked


def adopt(node: Any) -> Any:
  """Makes the stock ``nnx.Variable``s inside ``node`` trackable, in place.

  Each Variable keeps its identity, type (``isinstance(v, nnx.Param)`` still
  holds) and value; its class becomes a subclass of both its own class and
  :class:`State`, so brainstate_nnx transforms see its reads and writes
  through closures instead of baking it in as a constant. ``nn.Module`` does
  this automatically for Flax layers assigned as attributes.

  Example::

    >>> from flax import nnx
    >>> import brainstate_nnx as brainstate
    >>> lin = brainstate.adopt(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
    >>> isinstance(lin.kernel, brainstate.State), isinstance(lin.kernel, nnx.Param)
    (True, True)

  Returns ``node``.
  """
  if isinstance(node, nnx.Variable):
    _adopt_variable(node)
    return node
  if isinstance(node, (nnx.Module, nnx.Pytree)) or nnx.is_data(node) or isinstance(
    node, (list, tuple, dict)
  ):
    for _, v in nnx.iter_graph(node):
      if isinstance(v, nnx.Variable):
        _adopt_variable(v)
  return node


def _adopt_variable(v) -> None:
  if isinstance(v, State):
    return
  if v.hijax or v.ref:
    raise ValueError(
      f'Cannot adopt {type(v).__name__}: hijax/ref Variables are not supported.'
    )
  object.__setattr__(v, '__class__', _tracked_class(type(v)))
