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
import dataclasses
import copy as _copy
import functools
import threading
from typing import Any, Callable, Iterator, Optional, Tuple

from jax._src import source_info_util as _source_info

import jax
import numpy as np
from flax import nnx
from flax.nnx import reprlib
from flax.nnx import variablelib as _vl

from . import _context
from . import _units
from ._error import TraceContextError
from . import _state_hook_manager as _hooks
from ._state_global_hooks import GlobalHookRegistry

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
  'DelayState',
  'check_state_value_tree',
  'check_state_jax_tracer',
]

_MISSING = _vl.MISSING

# ``True`` while a State hook is registered anywhere or a
# ``check_state_value_tree`` / ``check_state_jax_tracer`` block is active: the
# only test the hot read/write path pays for those features.
_SLOW = False


class _Checks(threading.local):
  def __init__(self):
    self.tree: list[bool] = [False]
    self.tracer: list[bool] = [False]


_CHECKS = _Checks()
_active_checks = [0]


def _refresh_slow() -> None:
  global _SLOW
  _SLOW = bool(_hooks.live_hook_count() or _active_checks[0])


_hooks._listeners.append(_refresh_slow)


class _Meta(dict):
  """The metadata dict of a State, with per-object extras nnx never sees.

  ``extras`` (hook manager, source info, stack level) is an attribute of the
  dict object, not an item: it stays out of pytree aux data and nnx graph
  definitions, and every copy nnx makes of the metadata (``dict(meta)``,
  ``meta | updates``, pickling) drops it, so copies get their own.
  """

  __slots__ = ('extras',)

  def __reduce__(self):
    return dict, (dict(self),)


def _extras(st) -> dict:
  meta = st._var_metadata
  if type(meta) is not _Meta:
    meta = _Meta(meta)
    meta.extras = {}
    object.__setattr__(st, '_var_metadata', meta)
  return meta.extras


def _extra(st, key: str, default=None):
  meta = st._var_metadata
  if type(meta) is _Meta:
    return meta.extras.get(key, default)
  return default


class _Ref:
  """``state_ref`` of a hook context: calling it gives the State back."""

  __slots__ = ('obj',)

  def __init__(self, obj):
    self.obj = obj

  def __call__(self):
    return self.obj


@contextlib.contextmanager
def check_state_value_tree(val: bool = True) -> Iterator[None]:
  """Inside the block, writing a value whose pytree structure differs from
  the State's current one raises ``ValueError``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> s = brainstate.ShortTermState(jnp.zeros(2))
    >>> with brainstate.check_state_value_tree():
    ...   s.value = jnp.ones(2)                     # same structure: fine
    ...   try:
    ...     s.value = (jnp.ones(2), jnp.ones(2))
    ...   except ValueError:
    ...     print('rejected')
    rejected
  """
  _CHECKS.tree.append(val)
  _active_checks[0] += 1
  _refresh_slow()
  try:
    yield
  finally:
    _CHECKS.tree.pop()
    _active_checks[0] -= 1
    _refresh_slow()


@contextlib.contextmanager
def check_state_jax_tracer(val: bool = True) -> Iterator[None]:
  """Inside the block, assigning to a State that belongs to another JAX
  trace level raises :class:`~brainstate_nnx.TraceContextError`.

  Example::

    >>> import jax, jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> a = brainstate.ShortTermState(jnp.zeros(2))
    >>> @jax.jit
    ... def f(x):
    ...   a.value = jnp.zeros(2)                    # a constant, not a tracer
    ...   return x
    >>> with brainstate.check_state_jax_tracer():
    ...   try:
    ...     f(1.0)
    ...   except brainstate.TraceContextError:
    ...     print('rejected')
    rejected
  """
  _CHECKS.tracer.append(val)
  _active_checks[0] += 1
  _refresh_slow()
  try:
    yield
  finally:
    _CHECKS.tracer.pop()
    _active_checks[0] -= 1
    _refresh_slow()


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


@dataclasses.dataclass
class StateMetadata:
  """A value plus extra metadata, accepted by ``State(...)`` in place of a value."""

  raw_value: Any
  metadata: dict = dataclasses.field(default_factory=dict)


class State(_Hooked):
  """A mutable value tracked by brainstate_nnx transforms.

  ``State(value, name=None, **metadata)``. ``value`` may be any pytree.
  Equality and hashing are by identity, so a State can key a dict and be found
  in a list. ``tag`` (a string or set of strings) and ``name`` are kept as
  nnx metadata.

  Array protocols (``s + 1``, ``s[0]``, ``s.sum()``, ``s.T``, ``len(s)``,
  ``np.asarray(s)``, ...) read the value like ``s.value`` does, so they are
  tracked by the transforms too; ``bool(s)`` is ``True`` as for any object.

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
    if isinstance(value, StateMetadata):
      metadata = {**value.metadata, **metadata}
      value = value.raw_value
    if isinstance(value, nnx.Variable):
      value = value.get_value()
    tag = metadata.pop('tag', None)
    if tag is not None:
      metadata['tag'] = frozenset({tag} if isinstance(tag, str) else tag)
    if name is not None:
      metadata['name'] = name
    super().__init__(value, **metadata)
    meta = _Meta(self._var_metadata)
    level = len(_context._CTX.frames)
    meta.extras = {'source_info': _source_info.current(), 'level': level}
    object.__setattr__(self, '_var_metadata', meta)
    _context.notify_create(self, True)
    if _CATCH.catchers:
      for c in _CATCH.catchers:
        c.append(self)
    if _SLOW and GlobalHookRegistry.instance().has_hooks('init'):
      init_metadata = {'_name': name, 'tag': metadata.get('tag')}
      init_metadata.update((k, v) for k, v in metadata.items() if k not in ('name', 'tag'))
      GlobalHookRegistry.instance().execute_init_hooks(value, _Ref(self), init_metadata)

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

  def __bool__(self) -> bool:
    return True

  # -- value access ---------------------------------------------------------
  def get_value(self, *, index: Any = _MISSING):
    if _SLOW:
      return self._get_value_checked(index)
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
    if _SLOW:
      return self._set_value_checked(value, index)
    if (index is _MISSING and isinstance(value, _LEAF_TYPES)
        and _plain(self._var_metadata, 'on_set_value')):
      self._raw_value = value  # recorded by __setattr__
      return
    super().set_value(value, index=index)

  # The checked paths: only while a hook is registered or a check is active.
  def _get_value_checked(self, index):
    _context.notify_read(self)
    v = super().get_value(index=index)
    if _hooks.live_hook_count():
      self._run_hooks('read', 'execute_read_hooks', v)
    return v

  def _set_value_checked(self, value, index):
    frames = _context._CTX.frames
    if _CHECKS.tracer[-1] and not frames and not self._trace_state.is_valid():
      raise TraceContextError(
        f'Cannot mutate {type(self).__name__} from a different trace level: it '
        'was created outside the JAX transformation that is running. Use the '
        'brainstate_nnx transform (transform.jit / vmap / scan, ...) instead.'
      )
    if _CHECKS.tree[-1] and index is _MISSING:
      self._check_tree(value)
    old = self._raw_value
    if _hooks.live_hook_count():
      value = self._run_hooks('write_before', 'execute_write_before_hooks', value, old)
    if (index is _MISSING and isinstance(value, _LEAF_TYPES)
        and _plain(self._var_metadata, 'on_set_value')):
      self._raw_value = value
    else:
      super().set_value(value, index=index)
    if _hooks.live_hook_count():
      self._run_hooks('write_after', 'execute_write_after_hooks', value, old)

  def _run_hooks(self, kind: str, method: str, *args):
    """Global hooks, then this State's own; returns the (maybe new) value."""
    glob = GlobalHookRegistry.instance()
    own = _extra(self, 'hooks')
    ref = _Ref(self)
    result = args[0]
    for manager in (glob, own):
      if manager is not None and manager.has_hooks(kind):
        out = getattr(manager, method)(result, *args[1:], ref)
        if kind == 'write_before':
          result = out
    return result

  def _check_tree(self, value) -> None:
    new_tree = jax.tree.structure(value)
    own_tree = jax.tree.structure(self._raw_value)
    if new_tree != own_tree:
      raise ValueError(
        f'The given value {new_tree} does not match with the origin tree '
        f'structure {own_tree}.'
      )

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
    elif name == '_var_metadata':
      old = self._var_metadata
      if type(old) is _Meta and type(value) is not _Meta:
        value = _Meta(value)
        value.extras = old.extras
      super().__setattr__(name, value)
    else:
      super().__setattr__(name, value)

  def __getattr__(self, name: str) -> Any:
    # nnx forwards unknown attributes to the raw value, which would bypass
    # the read tracking (``s.sum()`` under jit would bake the value in).
    if name in _SLOTS:
      raise AttributeError(name)
    meta = object.__getattribute__(self, '_var_metadata')
    if name in meta:
      return meta[name]
    if name.startswith('__') and name.endswith('__') and name in _NO_FORWARD:
      raise AttributeError(name)
    return getattr(self.get_value(), name)

  def __array__(self, dtype=None, copy=None):
    value = np.asarray(self.get_value(), dtype=dtype)
    return value.copy() if copy else value

  def __deepcopy__(self, memo):
    value = jax.tree.map(
      lambda x: x if isinstance(x, (jax.Array, jax.core.Tracer)) else _copy.deepcopy(x, memo),
      self.get_value(),
    )
    obj = type(self)._new(value, _copy.deepcopy(dict(self._var_metadata), memo))
    _extras(obj).update(source_info=_source_info.current(),
                        level=len(_context._CTX.frames))
    memo[id(self)] = obj
    return obj

  def __copy__(self):
    obj = type(self)._new(self._raw_value, dict(self._var_metadata))
    _extras(obj).update(source_info=_source_info.current(),
                        level=len(_context._CTX.frames))
    return obj

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
    """Puts back a value of the same pytree structure (``ValueError``
    otherwise), running ``'restore'`` hooks instead of write hooks.

    Unlike BrainState, a restore inside a transform is kept like a write.
    """
    if isinstance(type(v), _vl.VariableMeta):
      raise ValueError('Cannot set value to a State, use `copy_from` method instead')
    self._check_tree(v)
    old = self._raw_value
    self._raw_value = v  # recorded by __setattr__
    if _SLOW and _hooks.live_hook_count():
      self._run_hooks('restore', 'execute_restore_hooks', v, old)

  def replace(self, value: Any = _MISSING, **kwargs) -> 'State':
    """A new State of the same type and metadata holding ``value``.

    ``value`` may be a State of the same type, which is then returned
    (updated with ``kwargs`` when given).
    """
    if isinstance(value, State):
      if type(value) is not type(self):
        raise ValueError(
          f'Cannot replace value from incompatible container, expected '
          f'{type(self).__name__}, got {type(value).__name__}'
        )
      return value.replace(**kwargs) if kwargs else value
    for key in ('value', '_value'):
      if key in kwargs and value is _MISSING:
        value = kwargs.pop(key)
    if '_name' in kwargs:
      kwargs['name'] = kwargs.pop('_name')
    if value is _MISSING:
      value = self._raw_value
    obj = type(self)._new(value, {**self._var_metadata, **kwargs})
    _extras(obj).update(source_info=_extra(self, 'source_info'),
                        level=_extra(self, 'level', 0))
    return obj

  def copy(self, value: Any = _MISSING, **updates) -> 'State':
    """A new State of the same type with the same value and metadata
    (``value`` / metadata keywords override); it has its own hooks."""
    obj = super().copy(value, **updates)
    _extras(obj).update(source_info=_source_info.current(),
                        level=len(_context._CTX.frames))
    return obj

  def to_state_ref(self) -> 'TreefyState':
    """A :class:`~brainstate_nnx.TreefyState`: a detached pytree snapshot
    (type, value, metadata) that :meth:`TreefyState.to_state` turns back
    into a State."""
    from ._state_treefy import TreefyState

    return TreefyState(type(self), self._raw_value, **dict(self._var_metadata))

  def update_from_ref(self, state_ref: 'TreefyState') -> None:
    """Takes the value and metadata of a :class:`~brainstate_nnx.TreefyState`."""
    meta = state_ref.get_metadata()
    meta.pop('hijax', None)
    meta.pop('ref', None)
    self._var_metadata.update(meta)
    self.value = state_ref.value

  # -- bookkeeping BrainState exposes ---------------------------------------------
  @property
  def source_info(self):
    """Where the State was created (a ``jax`` ``SourceInfo``; ``None`` for
    States nnx rebuilt, e.g. by ``nnx.merge``)."""
    return _extra(self, 'source_info')

  @property
  def stack_level(self) -> int:
    """How many brainstate_nnx transforms were tracing when it was created."""
    return _extra(self, 'level', 0)

  @stack_level.setter
  def stack_level(self, level: int) -> None:
    _extras(self)['level'] = level

  def increase_stack_level(self) -> None:
    """``stack_level += 1``."""
    self.stack_level = self.stack_level + 1

  def decrease_stack_level(self) -> None:
    """``stack_level -= 1`` (not below 0)."""
    self.stack_level = max(self.stack_level - 1, 0)

  def check_valid_trace(self, error_msg: Callable[[], str]) -> None:
    """Raises ``TraceContextError(error_msg())`` when the State belongs to
    another JAX trace than the current one."""
    if not self._trace_state.is_valid():
      raise TraceContextError(error_msg())

  def raise_error_with_source_info(self, error: Exception):
    """Raises ``error`` with the State's creation site in the traceback."""
    info = self.source_info
    if info is None:
      raise error
    with _source_info.user_context(info.traceback, name_stack=info.name_stack):
      raise error

  def check_if_deleted(self) -> None:
    """Nothing to check (BrainState compatibility)."""

  # -- hooks -------------------------------------------------------------
  @property
  def hooks(self) -> '_hooks.HookManager':
    """This State's own :class:`~brainstate_nnx.HookManager` (made on first use)."""
    extras = _extras(self)
    manager = extras.get('hooks')
    if manager is None:
      manager = extras['hooks'] = _hooks.HookManager()._count_in_switch()
    return manager

  @property
  def _hooks_manager(self) -> '_hooks.HookManager':
    # BrainState's attribute name for :attr:`hooks`
    return self.hooks

  @_hooks_manager.setter
  def _hooks_manager(self, manager: '_hooks.HookManager') -> None:
    _extras(self)['hooks'] = manager._count_in_switch()

  @property
  def _source_info(self):
    return self.source_info

  def register_hook(self, hook_type: str, callback: Callable, priority: int = 0,
                    name: Optional[str] = None, enabled: bool = True):
    """Registers a hook for this State only (runs after the global ones).

    ``hook_type`` is ``'read'``, ``'write_before'``, ``'write_after'``,
    ``'restore'`` or ``'init'``; higher ``priority`` runs first. Returns a
    :class:`~brainstate_nnx.HookHandle`.

    Example::

      >>> import jax.numpy as jnp
      >>> import brainstate_nnx as brainstate
      >>> s = brainstate.State(jnp.zeros(2))
      >>> def clip(ctx):
      ...   ctx.transformed_value = jnp.clip(ctx.transformed_value, -1, 1)
      >>> h = s.register_hook('write_before', clip)
      >>> s.value = jnp.array([3., -0.5])
      >>> s.value
      Array([ 1. , -0.5], dtype=float32)
    """
    return self.hooks.register_hook(hook_type, callback, priority, name, enabled)

  def unregister_hook(self, handle) -> bool:
    """Removes one of this State's hooks."""
    manager = _extra(self, 'hooks')
    return False if manager is None else manager.unregister_hook(handle)

  def list_hooks(self, hook_type: Optional[str] = None):
    """This State's hooks (of one type, or all value hooks)."""
    manager = _extra(self, 'hooks')
    return [] if manager is None else manager.get_hooks(hook_type)

  def clear_hooks(self, hook_type: Optional[str] = None) -> None:
    """Removes this State's hooks (of one type, or all)."""
    manager = _extra(self, 'hooks')
    if manager is not None:
      manager.clear_hooks(hook_type)

  def has_hooks(self, hook_type: Optional[str] = None) -> bool:
    """Whether this State has hooks of its own (of an enabled ``hook_type``)."""
    manager = _extra(self, 'hooks')
    if manager is None:
      if hook_type is not None and hook_type not in _hooks.HOOK_TYPES:
        raise ValueError(f'Invalid hook type: {hook_type}')
      return False
    return manager.has_hooks(hook_type)

  @contextlib.contextmanager
  def temporary_hook(self, hook_type: str, callback: Callable, priority: int = 0):
    """A hook registered for the duration of a ``with`` block."""
    handle = self.register_hook(hook_type, callback, priority)
    try:
      yield handle
    finally:
      self.unregister_hook(handle)

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


_SLOTS = frozenset({'_raw_value', '_trace_state', '_var_metadata'})

# dunder names never forwarded to the value (copying/pickling protocols)
_NO_FORWARD = frozenset({
  '__deepcopy__', '__copy__', '__getstate__', '__setstate__', '__reduce__',
  '__reduce_ex__', '__getnewargs__', '__getnewargs_ex__', '__dict__', '__slots__',
  '__weakref__', '__length_hint__',
})


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
  """The hidden variable of a dynamical model (membrane potential, ...).

  Its value must be an array (``numpy`` or ``jax``), as in BrainState.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> v = brainstate.HiddenState(jnp.zeros((4, 3)))
    >>> v.varshape, v.num_state
    ((4, 3), 1)
  """

  __module__ = 'brainstate_nnx'

  def __init__(self, value: Any, name: Optional[str] = None, **metadata: Any):
    self._check_value(value)
    super().__init__(value, name=name, **metadata)

  def _check_value(self, value):
    if isinstance(value, nnx.Variable):
      value = value.get_value()
    if not isinstance(value, (np.ndarray, jax.Array)) and not _units.is_quantity(value):
      raise TypeError(
        f'Currently, {HiddenState.__name__} only supports numpy.ndarray, '
        f'jax.Array or brainunit.Quantity. But we got {type(value)}.'
      )

  @property
  def varshape(self) -> Tuple[int, ...]:
    """The shape of the hidden variable (the value's shape)."""
    return tuple(np.shape(self.value))

  @property
  def num_state(self) -> int:
    """How many hidden variables this State holds (1)."""
    return 1


class DelayState(ShortTermState):
  """A short-term State holding a delay buffer (its own type, so filters and
  transforms can single delay buffers out)."""

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

  @property
  def values(self):
    return self.get_state_values()

  def get_by_tag(self, tag: str):
    """The caught States carrying ``tag``."""
    return [st for st in self if st.tag is not None and tag in st.tag]

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


class NonBatchState(ShortTermState):
  """A short-term State whose value has no batch axis (transforms that add
  one, e.g. ``vmap_new_states``, can leave it alone)."""

  __module__ = 'brainstate_nnx'


from ._state_trace import StateTraceStack  # noqa: E402  (re-export, BrainState's location)
