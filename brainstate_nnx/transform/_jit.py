"""State-aware ``jit``.

``jit(fn)`` compiles ``fn`` with :func:`jax.jit`, threading every State the
function reads or writes -- found through closures, bound methods and
modules -- as explicit inputs, and assigning the written ones afterwards.

How it works: the wrapper keeps the list of States it has seen. A call passes
their raw values to one ``jax.jit``-compiled function as its first argument;
inside the trace a :class:`~brainstate_nnx._context.DiscoverFrame` swaps the
tracers into the State objects, so the user's function reads and writes them
as usual. The compiled function returns ``(out, {index: new value})`` for the
States it wrote. If the trace touches a State not in the list, the trace is
abandoned (all States restored), the State is added and the call traces again.
JAX's own C++ cache decides when to retrace (new shapes, dtypes, static args,
or a changed State list); a call that hits it does no Python work per State
beyond reading and assigning the values.
"""

from __future__ import annotations

import functools
import itertools
import weakref
from typing import Callable, Sequence

import jax
from jax.extend.core import get_opaque_trace_state as _opaque_trace

from .. import _context, _watch  # noqa: F401  (_watch: the Flax hooks)
from .._context import (
  CONTEXT, EPOCH, TRACE_LOCK, DiscoverFrame, Rediscover, StateList,
)
from .._reach import config_key, reachable
from .._state import State, adopt

# The trace JAX runs under outside any transformation; a call that sees
# another one takes the checked slow path.
_EVAL_TRACE = _opaque_trace()
_setattr = object.__setattr__
_tokens = itertools.count()

__all__ = ['jit', 'JittedFunction']


def _norm_argnums(argnums) -> tuple[int, ...]:
  if argnums is None:
    return ()
  if isinstance(argnums, int):
    return (argnums,)
  return tuple(argnums)


def _shift(argnums, by: int = 1):
  nums = _norm_argnums(argnums)
  for a in nums:
    if a < 0:
      raise ValueError(
        f'negative argnums ({a}) are not supported by brainstate_nnx.transform.jit'
      )
  return tuple(a + by for a in nums) or None


def _environ_key():
  """The settings of ``brainstate_nnx.environ`` (``None`` without that module)."""
  env = _ENVIRON[0]
  if env is None:
    try:
      from .. import environ as env
    except ImportError:  # pragma: no cover - the package without environ
      env = False
    _ENVIRON[0] = env = getattr(env, '_cache_key', None) or False
  return env() if env else None


_ENVIRON: list = [None]


class _Created:
  """The values of States a trace constructed, tagged with the trace."""

  __slots__ = ('token', 'values')

  def __init__(self, token, values):
    self.token = token
    self.values = values


jax.tree_util.register_pytree_node(
  _Created, lambda c: (c.values, c.token), lambda tok, vals: _Created(tok, vals))


def _check_output(out) -> None:
  from flax import nnx

  for leaf in jax.tree.leaves(out, is_leaf=lambda x: isinstance(x, (nnx.Variable, nnx.Pytree))):
    if isinstance(leaf, nnx.Variable):
      raise ValueError(
        'Inputs/outputs of brainstate_nnx transformations cannot be a State '
        f'(the function returned {_context.describe(leaf)}): the caller would '
        'get a detached copy. Return its value (`state.value`) instead.'
      )
    if isinstance(leaf, nnx.Pytree):
      raise TypeError(
        f'A function compiled by brainstate_nnx.transform.jit returned a '
        f'{type(leaf).__name__} (a Module/graph node): the caller would get a '
        'detached copy with stale values. Return arrays; keep the Module '
        'outside (close over it).'
      )


class JittedFunction:
  """The callable returned by :func:`jit`.

  Attributes:
    fun: the wrapped function.
    states: the States threaded as inputs on each call (found so far).
  """

  def __init__(self, fun: Callable, **options):
    if not callable(fun):
      raise TypeError(f'jit expects a callable, got {type(fun).__name__}')
    functools.update_wrapper(self, fun, updated=())
    self.fun = fun
    self._list = StateList()
    self.states: list = self._list.states
    name = options.pop('name', None)
    if name:
      self.__name__ = self.__qualname__ = name
    self._name = name
    self._options = options
    self._stateful_fun = None
    # the State values are argument 0 of the compiled function
    jit_options = dict(options)
    jit_options['static_argnums'] = _shift(options.get('static_argnums'))
    jit_options['donate_argnums'] = _shift(options.get('donate_argnums'))
    in_shardings = jit_options.pop('in_shardings', None)
    if in_shardings is not None:
      if not isinstance(in_shardings, (tuple, list)):
        raise TypeError(
          'brainstate_nnx.transform.jit takes in_shardings as a tuple/list with one '
          f'entry per positional argument (as BrainState), got {in_shardings!r}')
      jit_options['in_shardings'] = (None, *in_shardings)  # the States: unspecified
    out_shardings = jit_options.pop('out_shardings', None)
    if out_shardings is not None:
      jit_options['out_shardings'] = (out_shardings, None, None)  # output, writes, created
    self._jit_options = jit_options
    # one jax.jit per configuration (Module flags, environ settings)
    self._jits: dict = {}
    self._config = None
    self._jitted = None
    self._epoch = -1
    self._env = object()
    self._nodes: list = []
    self._predicted = None
    self._created: dict = {}
    self._prune = None
    self._bound = weakref.WeakKeyDictionary()

  # -- the traced body ----------------------------------------------------
  def _traced(self, values, *args, **kwargs):
    frame = DiscoverFrame(self, self.states)
    out, (updates, created) = _context.run_in_frame(
      frame, values, self.fun, args, kwargs, what='jit', collect=self._collect)
    _check_output(out)
    return out, updates, created

  def _collect(self, frame):
    if frame.found:
      raise Rediscover(self, list(frame.found.values()))
    updates = frame.written_owned()
    # States reached but not used (a closure over a whole model, the function
    # using a part): when many, thread only the used ones from the next call
    states = self.states
    used = frame.read.union(frame.written)
    unused = len(states) - sum(1 for st in states if id(st) in used)
    if unused > max(8, len(states) // 4):
      self._prune = used
    created = None
    fresh = [st for st in frame.created
             if id(st) not in frame.owned and _context.has_tracer(st._raw_value)]
    if fresh:
      token = next(_tokens)
      self._created[token] = fresh
      created = _Created(token, [st._raw_value for st in fresh])
    return updates, created

  # -- which compiled function -----------------------------------------------
  def _refresh(self, args, kwargs) -> None:
    """Picks the jax.jit for the current configuration (when it may have changed)."""
    if self._predicted is None:
      self._predict(args, kwargs)
    else:
      variables, self._nodes = reachable(self.fun, self._static_args(args, kwargs))
      now = {id(v) for v in variables}
      if not self._predicted <= now:
        # a State this function reached was replaced or deleted on a Module:
        # find the States afresh (compiled programs stay valid by position)
        self._list = StateList()
        self.states = self._list.states
        self._predict(args, kwargs, variables)
    self._epoch = EPOCH[0]
    env = _environ_key()
    self._env = env
    key = (config_key(self._nodes), env)
    jitted = self._jits.get(key)
    if jitted is None:
      # a function object of its own: JAX caches traces per function
      def traced(values, *args, **kwargs):
        return self._traced(values, *args, **kwargs)

      jitted = self._jits[key] = jax.jit(traced, **self._jit_options)
    self._jitted = jitted

  def _static_args(self, args, kwargs):
    nums = _norm_argnums(self._options.get('static_argnums'))
    names = self._options.get('static_argnames') or ()
    if isinstance(names, str):
      names = (names,)
    return ([args[i] for i in nums if i < len(args)],
            [kwargs[n] for n in names if n in kwargs])

  def _predict(self, args, kwargs, variables=None) -> None:
    """Threads the States reachable from the function (see ``_reach``)."""
    if variables is None:
      variables, self._nodes = reachable(self.fun, self._static_args(args, kwargs))
    for v in variables:
      if not isinstance(v, State):
        adopt(v)
    self._list.add(variables, check=False)
    self._predicted = {id(v) for v in variables}

  # -- calling -------------------------------------------------------------
  def __call__(self, *args, **kwargs):
    if CONTEXT.frames or _opaque_trace() != _EVAL_TRACE:
      return self._call_slow(*args, **kwargs)
    with TRACE_LOCK:
      if EPOCH[0] != self._epoch or _environ_key() is not self._env:
        self._refresh(args, kwargs)
      states = self.states
      try:
        out, updates, created = self._jitted(
          [st._raw_value for st in states], *args, **kwargs)
      except Rediscover as e:
        if e.owner is not self:
          raise
        self._list.add(e.states)
        return self._call_slow(*args, **kwargs)
      # all-or-nothing: one C-level loop, no Python code between the writes
      if updates:
        list(map(_setattr, map(states.__getitem__, updates), _RAW, updates.values()))
      if created is not None:
        list(map(_setattr, self._created[created.token], _RAW, created.values))
      if self._prune is not None:
        self._drop_unused()
      return out

  def _call_slow(self, *args, **kwargs):
    # Either another brainstate_nnx transform is tracing (reads and writes of
    # the threaded States are reported to it, so it threads them too), or a
    # raw JAX transformation is active around this call.
    with TRACE_LOCK:
      nested = bool(CONTEXT.frames)
      if self._jitted is None or (
          not nested and (EPOCH[0] != self._epoch or _environ_key() is not self._env)):
        self._refresh(args, kwargs)
      out, updates, created = self._with_discovery(
        lambda values: self._jitted(values, *args, **kwargs), _context.read_value)
      if not nested and self.states and _context.staging():
        raise _context.TraceContextError(
          f'{self!r} uses {len(self.states)} State(s) but was called inside a '
          'raw JAX transformation that compiles (jax.jit, jax.lax.scan, ...): '
          'their current values would be baked in as constants and their '
          'updates lost. Use brainstate_nnx.transform.jit (or the matching '
          'brainstate_nnx transform) for the outer transformation.'
        )
      states = [self.states[i] for i in updates]
      values = list(updates.values())
      if created is not None:
        states += self._created[created.token]
        values += list(created.values)
      _context.write_back(states, values)
      if self._prune is not None and not nested:
        self._drop_unused()
      return out

  def _drop_unused(self) -> None:
    used, self._prune = self._prune, None
    self._list = StateList([st for st in self.states if id(st) in used])
    self.states = self._list.states

  def _with_discovery(self, call, read):
    """``call(values of the States)``, adding the States it finds until none is new."""
    return _context.retrace(
      self, lambda: call([read(st) for st in self.states]), self._list.add)

  # -- descriptor: @jit on a method ----------------------------------------
  def __get__(self, obj, objtype=None):
    if obj is None:
      return self
    try:
      bound = self._bound.get(obj)
    except TypeError:
      bound = None
    if bound is None:
      bound = JittedFunction(self.fun.__get__(obj, objtype), **self._options)
      try:
        self._bound[obj] = bound
      except TypeError:
        pass
    return bound

  def __deepcopy__(self, memo):
    # A fresh wrapper around a deep copy of the function: a bound method of a
    # Module being copied binds to the copy (found in ``memo``), so the copy's
    # jitted method uses the copy's States. Compiled programs are not shared.
    import copy

    new = JittedFunction(copy.deepcopy(self.fun, memo), **self._options)
    memo[id(self)] = new
    return new

  def __reach__(self):
    return (self.fun,)

  # -- introspection -------------------------------------------------------
  def _ensure_states(self, args, kwargs):
    """Runs discovery without executing the compiled program."""
    with TRACE_LOCK:
      if self._jitted is None or EPOCH[0] != self._epoch or _environ_key() is not self._env:
        self._refresh(args, kwargs)
      return self._with_discovery(
        lambda values: self._jitted.trace(values, *args, **kwargs),
        lambda st: st._raw_value)

  def trace(self, *args, **kwargs):
    """``jax.jit(...).trace`` of the stateful function (states as input 0)."""
    return self._ensure_states(args, kwargs)

  def lower(self, *args, **kwargs):
    """``jax.jit(...).lower`` of the stateful function (states as input 0)."""
    return self._ensure_states(args, kwargs).lower()

  def compile(self, *args, **kwargs):
    """Lowers and compiles for these arguments (``jax.stages.Compiled``)."""
    return self.lower(*args, **kwargs).compile()

  def eval_shape(self, *args, **kwargs):
    """Shapes of the outputs, without running the function."""
    out_info = self._ensure_states(args, kwargs).out_info
    return out_info[0]

  @property
  def origin_fun(self) -> Callable:
    """The function that was jitted (BrainState's name for it)."""
    return self.fun

  @property
  def stateful_fun(self):
    """A :class:`~brainstate_nnx.transform.StatefulFunction` of the same function."""
    if self._stateful_fun is None:
      from ._make_jaxpr import StatefulFunction
      self._stateful_fun = StatefulFunction(
        self.fun, static_argnums=self._options.get('static_argnums') or (),
        static_argnames=self._options.get('static_argnames') or (),
        name=self._name or 'jit')
    return self._stateful_fun

  def clear_cache(self) -> None:
    """Forgets compiled programs (the discovered States are kept)."""
    for j in self._jits.values():
      j.clear_cache()

  def __repr__(self):
    return f'<brainstate_nnx jit of {getattr(self.fun, "__name__", self.fun)!r}>'


_RAW = itertools.repeat('_raw_value')


def jit(
  fun: Callable | None = None,
  *,
  static_argnums: int | Sequence[int] | None = None,
  static_argnames: str | Sequence[str] | None = None,
  donate_argnums: int | Sequence[int] | None = None,
  donate_argnames: str | Sequence[str] | None = None,
  keep_unused: bool = False,
  device=None,
  backend=None,
  inline: bool = False,
  **kwargs,
):
  """Compiles ``fun`` with XLA, carrying every State it reads or writes.

  Works on functions, bound methods and modules (``jit(model)``), as a
  decorator with or without options. States are found through closures; they
  do not need to be arguments. The arguments follow :func:`jax.jit`
  (``static_argnums``, ``static_argnames``, ``donate_argnums``, ...).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> n = brainstate.State(jnp.array(0))
    >>> @brainstate.transform.jit
    ... def step():
    ...   n.value += 1
    ...   return n.value
    >>> [int(step()) for _ in range(3)]
    [1, 2, 3]

  With static arguments::

    >>> @brainstate.transform.jit(static_argnums=1)
    ... def scale(x, k):
    ...   return x * k
    >>> scale(jnp.ones(2), 3)
    Array([3., 3.], dtype=float32)
  """
  options = dict(
    static_argnums=static_argnums,
    static_argnames=static_argnames,
    donate_argnums=donate_argnums,
    donate_argnames=donate_argnames,
    keep_unused=keep_unused,
    device=device,
    backend=backend,
    inline=inline,
    **kwargs,
  )
  if fun is None:
    return lambda f: JittedFunction(f, **options)
  return JittedFunction(fun, **options)
