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
import weakref
from typing import Any, Callable, Iterable, Sequence

import jax

from .. import _context
from .._context import DiscoverFrame, Rediscover
from jax.extend.core import get_opaque_trace_state as _opaque_trace

def _raw_value(st):
  return st._raw_value


# The trace JAX runs under outside any transformation; a call that sees
# another one takes the checked slow path.
_EVAL_TRACE = _opaque_trace()

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


class JittedFunction:
  """The callable returned by :func:`jit`.

  Attributes:
    fun: the wrapped function.
    states: the States discovered so far (threaded as inputs on each call).
  """

  def __init__(self, fun: Callable, **options):
    if not callable(fun):
      raise TypeError(f'jit expects a callable, got {type(fun).__name__}')
    functools.update_wrapper(self, fun, updated=())
    self.fun = fun
    self.states: list = []
    self._ids: dict[int, int] = {}
    self._options = options
    # the State values are argument 0 of the compiled function
    jit_options = dict(options)
    jit_options['static_argnums'] = _shift(options.get('static_argnums'))
    jit_options['donate_argnums'] = _shift(options.get('donate_argnums'))
    self._jitted = jax.jit(self._traced, **jit_options)
    self._bound = weakref.WeakKeyDictionary()

  # -- the traced body ----------------------------------------------------
  def _traced(self, values, *args, **kwargs):
    frame = DiscoverFrame(self, self.states)
    frame.enter(values)
    try:
      guard = _context.ArgWriteGuard(args, kwargs, frame)
      out = self.fun(*args, **kwargs)
      guard.check('jit')
      if frame.found:
        raise Rediscover(self, list(frame.found.values()))
      updates = frame.written_owned()
    finally:
      frame.exit()
    return out, updates

  def _add_states(self, states: Iterable) -> None:
    ids = self._ids
    added = 0
    for st in states:
      if id(st) not in ids:
        ids[id(st)] = len(self.states)
        self.states.append(st)
        added += 1
    if not added:  # pragma: no cover - would otherwise retrace forever
      raise RuntimeError(
        'brainstate_nnx.transform.jit: State discovery made no progress; '
        'please report this with the function that triggered it.'
      )

  # -- calling -------------------------------------------------------------
  def __call__(self, *args, **kwargs):
    if _context._CTX.frames or _opaque_trace() != _EVAL_TRACE:
      return self._call_slow(*args, **kwargs)
    # The discovery loop of _with_discovery, inlined: this is the hot path.
    states = self.states
    while True:
      values = [st._raw_value for st in states]
      try:
        out, updates = self._jitted(values, *args, **kwargs)
        break
      except Rediscover as e:
        if e.owner is not self:
          raise
        self._add_states(e.states)
        states = self.states
    if updates:
      set_ = object.__setattr__
      for i, v in updates.items():
        set_(states[i], '_raw_value', v)
    return out

  def _call_slow(self, *args, **kwargs):
    # Either another brainstate_nnx transform is tracing (reads and writes of
    # the threaded States are reported to it, so it threads them too), or a
    # raw JAX transformation is active around this call.
    nested = bool(_context._CTX.frames)
    out, updates = self._with_discovery(
      lambda values: self._jitted(values, *args, **kwargs), _context.read_value)
    if not nested and self.states and _context._staging():
      raise _context.TraceContextError(
        f'{self!r} uses {len(self.states)} State(s) but was called inside a '
        'raw JAX transformation that compiles (jax.jit, jax.lax.scan, ...): '
        'their current values would be baked in as constants and their '
        'updates lost. Use brainstate_nnx.transform.jit (or the matching '
        'brainstate_nnx transform) for the outer transformation.'
      )
    for i, v in updates.items():
      _context.write_value(self.states[i], v)
    return out

  def _with_discovery(self, call, read):
    """``call(values of the States)``, adding the States it finds until none is new."""
    while True:
      try:
        return call([read(st) for st in self.states])
      except Rediscover as e:
        if e.owner is not self:
          raise
        self._add_states(e.states)

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

  # -- introspection -------------------------------------------------------
  def _ensure_states(self, args, kwargs):
    """Runs discovery without executing the compiled program."""
    return self._with_discovery(
      lambda values: self._jitted.trace(values, *args, **kwargs), _raw_value)

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

  def clear_cache(self) -> None:
    """Forgets compiled programs (the discovered States are kept)."""
    self._jitted.clear_cache()

  def __repr__(self):
    return f'<brainstate_nnx jit of {getattr(self.fun, "__name__", self.fun)!r}>'


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
