"""``StatefulFunction`` and ``make_jaxpr``: a function's jaxpr with its States.

A :class:`StatefulFunction` traces a user function with :func:`jax.make_jaxpr`
and turns every State the function reads or writes -- found through closures,
bound methods and modules -- into explicit jaxpr inputs and outputs:

* inputs: the flattened dynamic positional arguments, then the dynamic keyword
  arguments (sorted by name), then the values of the States, in the order the
  function first used them;
* outputs: the flattened function output, then the State values (only the
  written ones when ``return_only_write=True``; read-only States contribute
  nothing).

State discovery follows :mod:`._jit`: the trace runs under a
:class:`~brainstate_nnx._context.DiscoverFrame`; when it meets a State it does
not own, the trace is abandoned and repeated with that State added to the
inputs. Results are cached per argument signature (static arguments and the
shape/dtype of the dynamic ones), and recompiled when a State's shape or
dtype changed since.
"""

from __future__ import annotations

import functools
import operator
import threading
from typing import Any, Callable, Dict, Hashable, Iterable, NamedTuple, Optional, Sequence, Tuple, Union

import jax
from jax.api_util import shaped_abstractify

from .. import _context
from .._context import CaptureFrame, DiscoverFrame, Rediscover
from .._state import State
from ..util import PrettyObject
from ..util._cache import BoundedCache

__all__ = ['StatefulFunction', 'make_jaxpr', 'CacheKey', 'StateTrace']


class CacheKey(NamedTuple):
  """The hashable signature one compilation of a :class:`StatefulFunction` is cached under.

  Example::

    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import StatefulFunction
    >>> key = StatefulFunction(lambda x, n: x * n, static_argnums=1).get_arg_cache_key(jnp.ones(2), 3)
    >>> key.static_args
    (3,)
  """
  static_args: tuple
  dyn_args: tuple
  static_kwargs: tuple
  dyn_kwargs: tuple


# --------------------------------------------------------------------------
# argument helpers
# --------------------------------------------------------------------------

def _index_tuple(x) -> tuple[int, ...]:
  if x is None:
    return ()
  try:
    return (operator.index(x),)
  except TypeError:
    return tuple(operator.index(i) for i in x)


def _str_tuple(x) -> tuple[str, ...]:
  if x is None:
    return ()
  if isinstance(x, str):
    return (x,)
  out = tuple(x)
  for name in out:
    if not isinstance(name, str):
      raise TypeError(f'argument names must be strings, got {name!r}')
  return out


def _is_state(x) -> bool:
  return isinstance(x, State)


def _reject_states(tree, where: str) -> None:
  for leaf in jax.tree.leaves(tree, is_leaf=_is_state):
    if isinstance(leaf, State):
      raise ValueError(
        f'{where} of a brainstate_nnx transformation cannot be a State (got '
        f'{_context.describe(leaf)}). Close over the State instead of passing '
        'or returning it; its value is threaded automatically.'
      )


_outer_read = _context.read_input


def _hashable(obj):
  """A hashable stand-in for a static argument (lists/dicts/sets converted)."""
  if isinstance(obj, (list, tuple)):
    return tuple(_hashable(o) for o in obj)
  if isinstance(obj, dict):
    return tuple(sorted((k, _hashable(v)) for k, v in obj.items()))
  if isinstance(obj, (set, frozenset)):
    return frozenset(_hashable(o) for o in obj)
  try:
    hash(obj)
    return obj
  except TypeError:
    pass
  leaves, tree = jax.tree.flatten(obj)
  for leaf in leaves:
    try:
      hash(leaf)
    except TypeError:
      raise TypeError(
        f'Static arguments must be hashable; {type(obj).__name__} holds an '
        f'unhashable {type(leaf).__name__} leaf. Pass arrays as dynamic '
        'arguments instead.'
      ) from None
  return tree, tuple(leaves)


def _abstract_tree(tree):
  leaves, treedef = jax.tree.flatten(tree)
  return treedef, tuple(shaped_abstractify(x) for x in leaves)


def _arg_cache_key(static_argnums, static_argnames, args, kwargs, check_states=True) -> CacheKey:
  """The :class:`CacheKey` of a call: static values plus dynamic shapes/dtypes."""
  static_args, dyn_args = [], []
  for i, a in enumerate(args):
    (static_args if i in static_argnums else dyn_args).append(a)
  static_kwargs, dyn_kwargs = [], []
  for k in sorted(kwargs):
    (static_kwargs if k in static_argnames else dyn_kwargs).append((k, kwargs[k]))
  if check_states:
    _reject_states((dyn_args, dyn_kwargs), 'Inputs')
  return CacheKey(
    static_args=_hashable(tuple(static_args)),
    dyn_args=_abstract_tree(tuple(dyn_args)),
    static_kwargs=_hashable(tuple(static_kwargs)),
    dyn_kwargs=_abstract_tree(dict(dyn_kwargs)),
  )


# --------------------------------------------------------------------------
# what one compilation records
# --------------------------------------------------------------------------

class StateTrace:
  """The States one trace of a :class:`StatefulFunction` used, in first-use order.

  ``states[i]`` was written iff ``been_writen[i]`` (BrainState's spelling).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform import StatefulFunction
    >>> a, b = brainstate.State(jnp.ones(2)), brainstate.State(jnp.zeros(2))
    >>> def f():
    ...   b.value = a.value * 2
    >>> trace = StatefulFunction(f).get_state_trace()
    >>> trace.get_read_states() == (a,), trace.get_write_states() == (b,)
    (True, True)
  """

  __slots__ = ('states', 'been_writen')

  def __init__(self, states: Sequence[State], written: Sequence[bool]):
    self.states = list(states)
    self.been_writen = list(written)

  def __repr__(self) -> str:
    return f'StateTrace(states={len(self.states)}, written={sum(self.been_writen)})'

  def get_states(self) -> tuple:
    """All the States, read or written.

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform._make_jaxpr import StateTrace
      >>> a = brainstate.State(1.0)
      >>> StateTrace([a], [False]).get_states() == (a,)
      True
    """
    return tuple(self.states)

  def get_read_states(self, replace_writen: bool = False) -> tuple:
    """The States only read (``None`` in place of written ones if ``replace_writen``).

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform._make_jaxpr import StateTrace
      >>> a, b = brainstate.State(1.0), brainstate.State(2.0)
      >>> StateTrace([a, b], [False, True]).get_read_states(True) == (a, None)
      True
    """
    if replace_writen:
      return tuple(None if w else s for s, w in zip(self.states, self.been_writen))
    return tuple(s for s, w in zip(self.states, self.been_writen) if not w)

  def get_write_states(self, replace_read: bool = False) -> tuple:
    """The States written (``None`` in place of read-only ones if ``replace_read``).

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform._make_jaxpr import StateTrace
      >>> a, b = brainstate.State(1.0), brainstate.State(2.0)
      >>> StateTrace([a, b], [False, True]).get_write_states(True) == (None, b)
      True
    """
    if replace_read:
      return tuple(s if w else None for s, w in zip(self.states, self.been_writen))
    return tuple(s for s, w in zip(self.states, self.been_writen) if w)

  def get_state_values(self) -> list:
    """Current values of all the States.

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform._make_jaxpr import StateTrace
      >>> StateTrace([brainstate.State(1.0)], [True]).get_state_values()
      [1.0]
    """
    return [_context.read_value(s) for s in self.states]

  def get_read_state_values(self, replace_writen: bool = False) -> tuple:
    """Current values of the read-only States (see :meth:`get_read_states`).

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform._make_jaxpr import StateTrace
      >>> a, b = brainstate.State(1.0), brainstate.State(2.0)
      >>> StateTrace([a, b], [False, True]).get_read_state_values()
      (1.0,)
    """
    return tuple(None if s is None else _context.read_value(s)
                 for s in self.get_read_states(replace_writen))

  def get_write_state_values(self, replace_read: bool = False) -> tuple:
    """Current values of the written States (see :meth:`get_write_states`).

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform._make_jaxpr import StateTrace
      >>> a, b = brainstate.State(1.0), brainstate.State(2.0)
      >>> StateTrace([a, b], [False, True]).get_write_state_values(True)
      (None, 2.0)
    """
    return tuple(None if s is None else _context.read_value(s)
                 for s in self.get_write_states(replace_read))


class _Compilation:
  __slots__ = ('jaxpr', 'out_shapes', 'out_treedef', 'state_trace', 'state_avals')

  def __init__(self, jaxpr, out_shapes, out_treedef, state_trace, state_avals):
    self.jaxpr = jaxpr
    self.out_shapes = out_shapes
    self.out_treedef = out_treedef
    self.state_trace = state_trace
    self.state_avals = state_avals


def _leaf_avals(value):
  leaves, tree = jax.tree.flatten(value)
  return tree, tuple((tuple(x.shape), x.dtype) for x in map(shaped_abstractify, leaves))


# --------------------------------------------------------------------------
# StatefulFunction
# --------------------------------------------------------------------------

class StatefulFunction(PrettyObject):
  """A function together with the jaxpr of its computation, States included.

  ``StatefulFunction(fun, static_argnums=(), static_argnames=(), axis_env=None,
  name=None, return_only_write=True, ir_optimizations=None)``

  :meth:`make_jaxpr` traces ``fun`` for example arguments and caches, per
  argument signature, the ``ClosedJaxpr``, the output shapes and the States
  used. Inputs of the jaxpr are the dynamic arguments then the State values;
  outputs are the function output then the State values (with
  ``return_only_write=True`` only the written States' values; the read-only
  ones are ``None`` in :meth:`get_out_shapes`). Calling the object runs the
  cached jaxpr and writes the new values into the States
  (:meth:`jaxpr_call_auto`).

  Args:
    fun: the function. States must be reached through closures, not passed as
      arguments or returned.
    static_argnums / static_argnames: arguments that are compile-time
      constants (hashable), as in :func:`jax.jit`.
    axis_env: ``[(axis_name, size), ...]`` for collectives, as in
      :func:`jax.make_jaxpr`.
    name: an optional name.
    return_only_write: return only the written States from the jaxpr.
    ir_optimizations: IR passes applied to each new jaxpr (a name or a list
      of ``'constant_fold'``, ``'algebraic_simplification'``,
      ``'copy_propagation'``, ``'cse'``, ``'dce'``; see
      :func:`~brainstate_nnx.transform._ir.optimize_jaxpr`).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform import StatefulFunction
    >>> acc = brainstate.State(jnp.zeros(2))
    >>> w = brainstate.ParamState(jnp.ones(2))
    >>> def step(x):
    ...   acc.value = acc.value + w.value * x
    ...   return acc.value.sum()
    >>> sf = StatefulFunction(step).make_jaxpr(jnp.ones(2))
    >>> sf.get_states(jnp.ones(2)) == (acc, w)
    True
    >>> sf.get_write_states(jnp.ones(2)) == (acc,)
    True
    >>> float(sf(jnp.ones(2))), acc.value
    (2.0, Array([1., 1.], dtype=float32))
  """

  __module__ = 'brainstate_nnx.transform'

  def __init__(
    self,
    fun: Callable,
    static_argnums: Union[int, Iterable[int]] = (),
    static_argnames: Union[str, Iterable[str]] = (),
    axis_env: Optional[Sequence[tuple[Hashable, int]]] = None,
    name: Optional[str] = None,
    return_only_write: bool = True,
    ir_optimizations: Union[str, Sequence[str], None] = None,
  ):
    if not callable(fun):
      raise TypeError(f'StatefulFunction expects a callable, got {type(fun).__name__}')
    self.fun = fun
    self.static_argnums = _index_tuple(static_argnums)
    if any(i < 0 for i in self.static_argnums):
      raise ValueError(f'negative static_argnums are not supported: {self.static_argnums}')
    self.static_argnames = _str_tuple(static_argnames)
    self.axis_env = axis_env
    self.name = name
    self.return_only_write = return_only_write
    if isinstance(ir_optimizations, str):
      ir_optimizations = (ir_optimizations,)
    self.ir_optimizations = None if ir_optimizations is None else tuple(ir_optimizations)
    self._compilation_cache = BoundedCache(maxsize=128)
    self._cache_lock = threading.RLock()

  def __pretty_repr_item__(self, k, v):
    return None if k.startswith('_') else (k, v)

  # -- cache keys ------------------------------------------------------------
  def get_arg_cache_key(self, *args, compile_if_miss: bool = False, **kwargs) -> CacheKey:
    """The :class:`CacheKey` of these arguments (compiling first if asked and missing).

    Example::

      >>> import jax.numpy as jnp
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> sf = StatefulFunction(lambda x: x + 1)
      >>> sf.get_arg_cache_key(jnp.ones(3)) == sf.get_arg_cache_key(jnp.zeros(3))
      True
    """
    key = _arg_cache_key(self.static_argnums, self.static_argnames, args, kwargs)
    if compile_if_miss:
      comp = self._compilation_cache.get(key)
      if comp is None or self._is_stale(comp):
        self.make_jaxpr(*args, **kwargs)
    return key

  def _get_compilation(self, cache_key) -> _Compilation:
    comp = self._compilation_cache.get(cache_key)
    if comp is None:
      keys = self._compilation_cache.keys()
      listed = '\n'.join(f'  [{i}] {k}' for i, k in enumerate(keys, 1)) or '  (none)'
      raise ValueError(
        f'No compilation of {self._fun_name()} for these arguments.\n'
        f'Requested key: {cache_key}\nAvailable keys ({len(keys)}):\n{listed}\n'
        'Call make_jaxpr() with the arguments first (or use compile_if_miss=True).'
      )
    return comp

  def _is_stale(self, comp: _Compilation) -> bool:
    """True when a traced State's value changed shape/dtype since compilation."""
    for st, aval in zip(comp.state_trace.states, comp.state_avals):
      try:
        if _leaf_avals(st._raw_value) != aval:
          return True
      except Exception:  # pragma: no cover - exotic values
        return True
    return False

  def _fun_name(self) -> str:
    return getattr(self.fun, '__name__', None) or type(self.fun).__name__

  # -- compiling ---------------------------------------------------------------
  def make_jaxpr(self, *args, **kwargs) -> 'StatefulFunction':
    """Traces the function for these arguments and caches the result; returns ``self``.

    Raises ``ValueError`` if a State is passed as a dynamic argument or
    returned, or if ``static_argnums`` points past the arguments given.

    Example::

      >>> import jax.numpy as jnp
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> sf = StatefulFunction(lambda x: x * 2).make_jaxpr(jnp.ones(3))
      >>> sf.get_jaxpr(jnp.ones(3)).eqns[0].primitive.name
      'mul'
    """
    if self.static_argnums and max(self.static_argnums) >= len(args):
      raise ValueError(
        f'static_argnums contains index {max(self.static_argnums)}, but only '
        f'{len(args)} positional arguments were provided.'
      )
    key = self.get_arg_cache_key(*args, **kwargs)
    comp = self._compilation_cache.get(key)
    if comp is not None and not self._is_stale(comp):
      return self
    with self._cache_lock:
      comp = self._compile(args, kwargs)
      if key in self._compilation_cache:
        self._compilation_cache.replace(key, comp)
      else:
        self._compilation_cache.set(key, comp)
    return self

  def _compile(self, args, kwargs) -> _Compilation:
    static_kwargs = {k: v for k, v in kwargs.items() if k in self.static_argnames}
    dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
    nums = set(self.static_argnums)
    dyn_args = tuple(a for i, a in enumerate(args) if i not in nums)
    static_pos = {i: args[i] for i in nums}
    n_args = len(args)
    token = object()
    found = _context.StateList()
    states = found.states
    box: dict = {}
    return_only_write = self.return_only_write

    def collect(frame):
      if frame.found:
        raise Rediscover(token, list(frame.found.values()))
      written = frame.written_owned()
      if return_only_write:
        new_values = tuple(
          states[i]._raw_value if i in written else None for i in range(len(states)))
      else:
        new_values = tuple(st._raw_value for st in states)
      box['written'] = [i in written for i in range(len(states))]
      return new_values

    def traced(dyn_args_, dyn_kwargs_, state_values):
      it = iter(dyn_args_)
      full = [static_pos[i] if i in static_pos else next(it) for i in range(n_args)]
      frame = DiscoverFrame(token, states)
      out, new_values = _context.run_in_frame(
        frame, state_values, self.fun, tuple(full), {**dyn_kwargs_, **static_kwargs},
        what='StatefulFunction', collect=collect)
      _reject_states(out, 'Outputs')
      return out, new_values

    maker = jax.make_jaxpr(traced, axis_env=self.axis_env, return_shape=True)

    def attempt():
      values = [_context.read_value(st) for st in states]
      return maker(dyn_args, dyn_kwargs, values), values

    (jaxpr, out_shapes), values = _context.retrace(token, attempt, found.add)

    if self.ir_optimizations:
      from ._ir import optimize_jaxpr

      jaxpr = optimize_jaxpr(jaxpr, optimizations=list(self.ir_optimizations))
    trace = StateTrace(states, box['written'])
    state_avals = tuple(_leaf_avals(v) for v in values)
    return _Compilation(
      jaxpr=jaxpr,
      out_shapes=out_shapes,
      out_treedef=jax.tree.structure(out_shapes),
      state_trace=trace,
      state_avals=state_avals,
    )

  # -- cached results -------------------------------------------------------------
  def get_jaxpr_by_cache(self, cache_key) -> jax.extend.core.ClosedJaxpr:
    """The ``ClosedJaxpr`` compiled for ``cache_key`` (``ValueError`` if none).

    Example::

      >>> import jax.numpy as jnp
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> sf = StatefulFunction(jnp.sin).make_jaxpr(1.0)
      >>> len(sf.get_jaxpr_by_cache(sf.get_arg_cache_key(1.0)).eqns)
      1
    """
    return self._get_compilation(cache_key).jaxpr

  def get_jaxpr(self, *args, compile_if_miss: bool = True, **kwargs):
    """The ``ClosedJaxpr`` for these arguments.

    Example::

      >>> import jax.numpy as jnp
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> StatefulFunction(lambda x: x + 1).get_jaxpr(jnp.ones(2)).in_avals
      [ShapedArray(float32[2])]
    """
    key = self.get_arg_cache_key(*args, compile_if_miss=compile_if_miss, **kwargs)
    return self.get_jaxpr_by_cache(key)

  def get_out_shapes_by_cache(self, cache_key):
    """``(output shapes, State value shapes)`` for ``cache_key``.

    Example::

      >>> from brainstate_nnx.transform import StatefulFunction
      >>> sf = StatefulFunction(lambda x: x * 2).make_jaxpr(1.0)
      >>> sf.get_out_shapes_by_cache(sf.get_arg_cache_key(1.0))[0].shape
      ()
    """
    return self._get_compilation(cache_key).out_shapes

  def get_out_shapes(self, *args, compile_if_miss: bool = True, **kwargs):
    """``(output shapes, State value shapes)`` as ``jax.ShapeDtypeStruct`` pytrees.

    The State part has one entry per State (see :meth:`get_states`); with
    ``return_only_write=True`` the read-only ones are ``None``.

    Example::

      >>> import jax.numpy as jnp
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> StatefulFunction(lambda x: x.sum()).get_out_shapes(jnp.ones(3))
      (ShapeDtypeStruct(shape=(), dtype=float32), ())
    """
    key = self.get_arg_cache_key(*args, compile_if_miss=compile_if_miss, **kwargs)
    return self.get_out_shapes_by_cache(key)

  def get_out_treedef_by_cache(self, cache_key):
    """The treedef of ``(output, State values)`` for ``cache_key``.

    Example::

      >>> from brainstate_nnx.transform import StatefulFunction
      >>> sf = StatefulFunction(lambda x: [x]).make_jaxpr(1.0)
      >>> sf.get_out_treedef_by_cache(sf.get_arg_cache_key(1.0))
      PyTreeDef(([*], ()))
    """
    return self._get_compilation(cache_key).out_treedef

  def get_out_treedef(self, *args, compile_if_miss: bool = True, **kwargs):
    """The treedef of ``(output, State values)``: how the jaxpr's flat outputs nest.

    Example::

      >>> import jax.numpy as jnp
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> StatefulFunction(lambda x: (x, x)).get_out_treedef(1.0)
      PyTreeDef(((*, *), ()))
    """
    key = self.get_arg_cache_key(*args, compile_if_miss=compile_if_miss, **kwargs)
    return self.get_out_treedef_by_cache(key)

  def get_state_trace_by_cache(self, cache_key) -> StateTrace:
    """The :class:`StateTrace` (States and which were written) for ``cache_key``.

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> s = brainstate.State(1.0)
      >>> sf = StatefulFunction(lambda: s.value).make_jaxpr()
      >>> sf.get_state_trace_by_cache(sf.get_arg_cache_key()).been_writen
      [False]
    """
    return self._get_compilation(cache_key).state_trace

  def get_state_trace(self, *args, compile_if_miss: bool = True, **kwargs) -> StateTrace:
    """The :class:`StateTrace` for these arguments.

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> s = brainstate.State(1.0)
      >>> def f():
      ...   s.value = s.value + 1
      >>> StatefulFunction(f).get_state_trace().get_write_states() == (s,)
      True
    """
    key = self.get_arg_cache_key(*args, compile_if_miss=compile_if_miss, **kwargs)
    return self.get_state_trace_by_cache(key)

  def get_states_by_cache(self, cache_key) -> Tuple[State, ...]:
    """All the States used, in first-use order, for ``cache_key``.

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> a, b = brainstate.State(1.0), brainstate.State(2.0)
      >>> sf = StatefulFunction(lambda: b.value + a.value).make_jaxpr()
      >>> sf.get_states_by_cache(sf.get_arg_cache_key()) == (b, a)
      True
    """
    return tuple(self.get_state_trace_by_cache(cache_key).states)

  def get_states(self, *args, compile_if_miss: bool = True, **kwargs) -> Tuple[State, ...]:
    """All the States the function reads or writes, in first-use order.

    Example::

      >>> import jax.numpy as jnp
      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> s = brainstate.State(jnp.ones(2))
      >>> StatefulFunction(lambda: s.value * 2).get_states() == (s,)
      True
    """
    key = self.get_arg_cache_key(*args, compile_if_miss=compile_if_miss, **kwargs)
    return self.get_states_by_cache(key)

  def get_read_states_by_cache(self, cache_key) -> Tuple[State, ...]:
    """The States only read, for ``cache_key``.

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> a = brainstate.State(1.0)
      >>> sf = StatefulFunction(lambda: a.value * 2).make_jaxpr()
      >>> sf.get_read_states_by_cache(sf.get_arg_cache_key()) == (a,)
      True
    """
    return self.get_state_trace_by_cache(cache_key).get_read_states()

  def get_read_states(self, *args, compile_if_miss: bool = True, **kwargs) -> Tuple[State, ...]:
    """The States the function reads but never writes.

    Example::

      >>> import jax.numpy as jnp
      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> a, b = brainstate.State(1.0), brainstate.State(2.0)
      >>> def f():
      ...   b.value = a.value + b.value
      >>> StatefulFunction(f).get_read_states() == (a,)
      True
    """
    key = self.get_arg_cache_key(*args, compile_if_miss=compile_if_miss, **kwargs)
    return self.get_read_states_by_cache(key)

  def get_write_states_by_cache(self, cache_key) -> Tuple[State, ...]:
    """The States written, for ``cache_key``.

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> a = brainstate.State(1.0)
      >>> def f():
      ...   a.value = 3.0
      >>> sf = StatefulFunction(f).make_jaxpr()
      >>> sf.get_write_states_by_cache(sf.get_arg_cache_key()) == (a,)
      True
    """
    return self.get_state_trace_by_cache(cache_key).get_write_states()

  def get_write_states(self, *args, compile_if_miss: bool = True, **kwargs) -> Tuple[State, ...]:
    """The States the function writes.

    Example::

      >>> import jax.numpy as jnp
      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> a, b = brainstate.State(1.0), brainstate.State(2.0)
      >>> def f():
      ...   b.value = a.value + b.value
      >>> StatefulFunction(f).get_write_states() == (b,)
      True
    """
    key = self.get_arg_cache_key(*args, compile_if_miss=compile_if_miss, **kwargs)
    return self.get_write_states_by_cache(key)

  # -- cache management -------------------------------------------------------------
  def clear_cache(self) -> None:
    """Forgets every cached compilation.

    Example::

      >>> from brainstate_nnx.transform import StatefulFunction
      >>> sf = StatefulFunction(lambda x: x).make_jaxpr(1.0)
      >>> sf.clear_cache(); sf.get_cache_stats()['compilation_cache']['size']
      0
    """
    with self._cache_lock:
      self._compilation_cache.clear()

  def get_cache_stats(self) -> Dict[str, Any]:
    """``{'compilation_cache': {size, maxsize, hits, misses, hit_rate}}``.

    Example::

      >>> from brainstate_nnx.transform import StatefulFunction
      >>> StatefulFunction(lambda x: x).make_jaxpr(1.0).get_cache_stats()['compilation_cache']['size']
      1
    """
    return {'compilation_cache': self._compilation_cache.get_stats()}

  def validate_states(self, cache_key) -> bool:
    """Checks that the States recorded for ``cache_key`` still hold a value.

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> s = brainstate.State(1.0)
      >>> sf = StatefulFunction(lambda: s.value).make_jaxpr()
      >>> sf.validate_states(sf.get_arg_cache_key())
      True
    """
    trace = self.get_state_trace_by_cache(cache_key)
    bad = [i for i, st in enumerate(trace.states) if not hasattr(st, '_raw_value')]
    if bad:
      raise ValueError(f'Found {len(bad)} invalid states at indices: {bad}.')
    return True

  def validate_all_states(self) -> Dict[Any, Any]:
    """:meth:`validate_states` for every cached key (``True`` or the error text).

    Example::

      >>> from brainstate_nnx.transform import StatefulFunction
      >>> sf = StatefulFunction(lambda x: x).make_jaxpr(1.0)
      >>> list(sf.validate_all_states().values())
      [True]
    """
    results = {}
    for key in self._compilation_cache.keys():
      try:
        results[key] = self.validate_states(key)
      except ValueError as e:
        results[key] = str(e)
    return results

  # -- running ---------------------------------------------------------------------
  def _dynamic(self, args, kwargs):
    nums = set(self.static_argnums)
    dyn_args = tuple(a for i, a in enumerate(args) if i not in nums)
    dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
    return dyn_args, dyn_kwargs

  def jaxpr_call(self, state_vals, *args, **kwargs):
    """Evaluates the cached jaxpr: returns ``(new_state_vals, out)``; changes no State.

    ``state_vals`` gives one value per State of :meth:`get_states`.
    ``new_state_vals`` has one entry per State too (``None`` for the read-only
    ones when ``return_only_write=True``). Under ``jax.disable_jit()`` the
    function itself runs (:meth:`debug_call`).

    Example::

      >>> import jax.numpy as jnp
      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> s = brainstate.State(jnp.zeros(()))
      >>> def inc(x):
      ...   s.value = s.value + x
      ...   return s.value * 10
      >>> sf = StatefulFunction(inc)
      >>> sf.jaxpr_call([jnp.array(1.0)], 2.0)
      ((Array(3., dtype=float32),), Array(30., dtype=float32))
      >>> s.value
      Array(0., dtype=float32)
    """
    if jax.config.jax_disable_jit:
      return self.debug_call(state_vals, *args, **kwargs)
    key = self.get_arg_cache_key(*args, compile_if_miss=True, **kwargs)
    comp = self._get_compilation(key)
    self._check_state_vals(comp, state_vals)
    dyn_args, dyn_kwargs = self._dynamic(args, kwargs)
    flat = jax.tree.leaves((dyn_args, dyn_kwargs, list(state_vals)))
    closed = comp.jaxpr
    outs = jax.core.eval_jaxpr(closed.jaxpr, closed.consts, *flat)
    out, new_state_vals = comp.out_treedef.unflatten(outs)
    return new_state_vals, out

  @staticmethod
  def _check_state_vals(comp, state_vals):
    n = len(comp.state_trace.states)
    if len(state_vals) != n:
      raise ValueError(f'State length mismatch: expected {n} states, got {len(state_vals)}')
    missing = [i for i, v in enumerate(state_vals) if v is None]
    if missing:
      raise ValueError(
        f'state_vals contains None at index(es) {missing}; every State needs a value.'
      )

  def debug_call(self, state_vals, *args, **kwargs):
    """Like :meth:`jaxpr_call` but runs the Python function itself (no jaxpr).

    Example::

      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> s = brainstate.State(1.0)
      >>> def f():
      ...   s.value = s.value * 3
      >>> StatefulFunction(f).debug_call([2.0])
      ((6.0,), None)
    """
    key = self.get_arg_cache_key(*args, compile_if_miss=True, **kwargs)
    comp = self._get_compilation(key)
    self._check_state_vals(comp, state_vals)
    states = comp.state_trace.states
    return_only_write = self.return_only_write

    def collect(frame):
      written = frame.written_owned()
      if return_only_write:
        return tuple(states[i]._raw_value if i in written else None
                     for i in range(len(states)))
      return tuple(st._raw_value for st in states)

    out, new = _context.run_in_frame(
      CaptureFrame(self, states), list(state_vals), self.fun, args, kwargs,
      what='StatefulFunction', collect=collect)
    return new, out

  def jaxpr_call_auto(self, *args, **kwargs):
    """Runs the cached jaxpr with the States' current values and writes the new ones back.

    Compiles first when these arguments (or a State's shape) were not seen.

    Example::

      >>> import jax.numpy as jnp
      >>> import brainstate_nnx as brainstate
      >>> from brainstate_nnx.transform import StatefulFunction
      >>> s = brainstate.State(jnp.zeros(()))
      >>> def inc():
      ...   s.value = s.value + 1
      >>> sf = StatefulFunction(inc)
      >>> sf.jaxpr_call_auto(); sf.jaxpr_call_auto(); s.value
      Array(2., dtype=float32)
    """
    key = self.get_arg_cache_key(*args, compile_if_miss=True, **kwargs)
    trace = self.get_state_trace_by_cache(key)
    values = [_outer_read(st) for st in trace.states]
    new_values, out = self.jaxpr_call(values, *args, **kwargs)
    written = [(st, v) for st, w, v in zip(trace.states, trace.been_writen, new_values) if w]
    _context.write_back([st for st, _ in written], [v for _, v in written])
    return out

  def __call__(self, *args, **kwargs):
    """Same as :meth:`jaxpr_call_auto`.

    Example::

      >>> from brainstate_nnx.transform import StatefulFunction
      >>> StatefulFunction(lambda x: x + 1)(1.0)
      Array(2., dtype=float32, weak_type=True)
    """
    return self.jaxpr_call_auto(*args, **kwargs)


def make_jaxpr(
  fun: Callable,
  static_argnums: Union[int, Iterable[int]] = (),
  static_argnames: Union[str, Iterable[str]] = (),
  axis_env: Optional[Sequence[tuple[Hashable, int]]] = None,
  return_shape: bool = False,
  return_only_write: bool = False,
) -> Callable:
  """Like :func:`jax.make_jaxpr`, with the States of ``fun`` as extra inputs and outputs.

  ``make_jaxpr(fun, ...)(*args, **kwargs)`` returns ``(jaxpr, states)``, or
  ``(jaxpr, states, out_shapes)`` with ``return_shape=True``. ``states`` is
  the tuple of States ``fun`` uses, in first-use order; the jaxpr takes the
  flattened dynamic arguments followed by their values and returns the
  flattened output followed by their new values (all of them, or only the
  written ones with ``return_only_write=True``). No State changes value.

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform import make_jaxpr
    >>> h = brainstate.HiddenState(jnp.zeros(3))
    >>> def step(x):
    ...   h.value = 0.9 * h.value + x
    ...   return h.value.sum()
    >>> jaxpr, states = make_jaxpr(step)(jnp.ones(3))
    >>> states == (h,), len(jaxpr.jaxpr.invars), len(jaxpr.jaxpr.outvars)
    (True, 2, 2)
    >>> out, new_h = jax.extend.core.jaxpr_as_fun(jaxpr)(jnp.ones(3), h.value)
    >>> float(out), h.value
    (3.0, Array([0., 0., 0.], dtype=float32))
  """
  sf = StatefulFunction(
    fun,
    static_argnums=static_argnums,
    static_argnames=static_argnames,
    axis_env=axis_env,
    return_only_write=return_only_write,
    name='make_jaxpr',
  )

  def make_jaxpr_f(*args, **kwargs):
    sf.make_jaxpr(*args, **kwargs)
    key = sf.get_arg_cache_key(*args, **kwargs)
    if return_shape:
      return (sf.get_jaxpr_by_cache(key), sf.get_states_by_cache(key),
              sf.get_out_shapes_by_cache(key)[0])
    return sf.get_jaxpr_by_cache(key), sf.get_states_by_cache(key)

  try:
    functools.update_wrapper(make_jaxpr_f, fun)
  except (AttributeError, TypeError):  # pragma: no cover - odd callables
    pass
  name = getattr(fun, '__name__', None)
  if name is not None:
    make_jaxpr_f.__name__ = f'make_jaxpr({name})'
  qualname = getattr(fun, '__qualname__', None)
  if qualname is not None:
    make_jaxpr_f.__qualname__ = f'make_jaxpr({qualname})'
  return make_jaxpr_f
