"""The state-plumbing core: which transform is tracing, and what it has seen.

Every brainstate_nnx transform that runs a user function pushes a
:class:`Frame` while the function is traced. ``State`` reads and writes notify
the innermost frame (``State.get_value``, ``State.__setattr__('_raw_value')``
and the pytree flatten of a State call :func:`notify_read` /
:func:`notify_write`). A frame *owns* the States its transform threads as
explicit inputs: their values are swapped in place for the transform's tracers
while the function runs, so closures, bound methods and zero-argument
functions see tracers, and the originals are put back afterwards.

A State the frame does not own is handled by the frame's policy:

* :class:`DiscoverFrame` (``jit``): record it, keep tracing on a snapshot, and
  make the transform trace again with the State added to its inputs.
* :class:`CaptureFrame` (``grad``, ``vmap``, ...): a read is passed on to the
  enclosing frame (which threads it), a write is captured and handed back to
  the transform, which returns it as an output and assigns it afterwards.

States created while a frame is active are local to that trace and are never
discovered.

Nothing here is public API; transforms use the frames, :func:`read_value`,
:func:`write_value` and :func:`probe_states`.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

import jax
import numpy as np
from flax.nnx import tracers as _nnx_tracers

from ._error import TraceContextError

__all__ = [
  'Frame',
  'DiscoverFrame',
  'CaptureFrame',
  'ProbeFrame',
  'Rediscover',
  'ArgWriteGuard',
  'CONTEXT',
  'frames',
  'run_in_frame',
  'retrace',
  'StateList',
  'read_input',
  'write_back',
  'describe',
  'has_tracer',
  'staging',
  'notify_read',
  'notify_write',
  'notify_create',
  'read_value',
  'write_value',
  'probe_states',
  'probe',
  'check_foreign_read',
  'check_tracer_write',
]


class _Context(threading.local):
  def __init__(self):
    self.frames: list[Frame] = []


_CTX = _Context()

# While a thread traces, the States its frames own hold that thread's
# tracers. Top-level transform calls hold this (re-entrant) lock, so two
# threads calling transforms are serialised instead of seeing each other's
# tracers.
TRACE_LOCK = threading.RLock()

# The structure epoch: bumped when, outside every transform, a Module
# attribute changes (a State replaced or deleted, a configuration flag such
# as ``deterministic`` set). Compiled transforms compare it on every call and
# check their cached traces only when it moved.
EPOCH = [0]


def bump_epoch() -> None:
  """Marks that the structure or configuration of some Module changed."""
  EPOCH[0] += 1
_CONTAINERS = (dict, list)

# the thread-local context, for hot paths that test ``CONTEXT.frames`` directly
CONTEXT = _CTX


def frames() -> list['Frame']:
  """The active frames of this thread, innermost last."""
  return _CTX.frames


class Rediscover(Exception):
  """Raised out of a trace when a DiscoverFrame met States it did not own."""

  def __init__(self, owner, states):
    super().__init__('internal: new States found; the transform traces again')
    self.owner = owner
    self.states = states


class Frame:
  """The record of one transform's trace of a user function.

  Args:
    owner: the transform object (used to route :class:`Rediscover`).
    owned: the States threaded as explicit inputs of the trace.
  """

  __slots__ = (
    'owner', 'owned', 'states', 'local', 'saved', 'written', 'read',
    'trace_state', 'parent', 'saved_owned', 'created', 'containers',
  )

  def __init__(self, owner: Any, owned: Sequence[Any]):
    self.owner = owner
    self.states = list(owned)
    self.owned = {id(s): i for i, s in enumerate(self.states)}
    self.local: dict[int, Any] = {}
    # id -> (state, raw value, trace state) of touched States not owned
    self.saved: dict[int, tuple] = {}
    # id -> state, every non-local State written while the frame was active
    self.written: dict[int, Any] = {}
    # ids of owned States that were read
    self.read: set[int] = set()
    self.trace_state = None
    self.parent: Frame | None = None
    self.saved_owned: list[tuple] = []
    # States constructed by the user function while the frame was active
    self.created: list[Any] = []
    self.containers: Any = ()

  # -- life cycle ---------------------------------------------------------
  def enter(self, values: Sequence[Any]) -> None:
    """Swaps ``values`` into the owned States and makes this frame current."""
    stack = _CTX.frames
    self.parent = stack[-1] if stack else None
    ts = _nnx_tracers.TraceState()
    self.trace_state = ts
    originals = []
    setattr_ = object.__setattr__
    for st, v in zip(self.states, values):
      originals.append((st._raw_value, st._trace_state))
      setattr_(st, '_raw_value', v)
      setattr_(st, '_trace_state', ts)
    self.saved_owned = originals
    # container values (dicts, lists) may be changed in place: remember their
    # leaves to tell (see written_owned)
    self.containers = [
      (i, v, jax.tree.leaves(v)) for i, v in enumerate(values) if type(v) in _CONTAINERS
    ] if values else ()
    stack.append(self)

  def exit(self) -> None:
    """Restores every State this frame touched and pops it."""
    stack = _CTX.frames
    if stack and stack[-1] is self:
      stack.pop()
    else:  # pragma: no cover - defensive: unbalanced frames
      try:
        stack.remove(self)
      except ValueError:
        pass
    setattr_ = object.__setattr__
    for st, (raw, ts) in zip(self.states, self.saved_owned):
      setattr_(st, '_raw_value', raw)
      setattr_(st, '_trace_state', ts)
    for st, raw, ts in self.saved.values():
      setattr_(st, '_raw_value', raw)
      setattr_(st, '_trace_state', ts)

  def written_owned(self) -> dict[int, Any]:
    """``{index: new value}`` of the owned States written in the frame.

    An owned State whose dict/list value was changed in place
    (``s.value['a'] = x``) counts as written.
    """
    owned = self.owned
    idx = {owned[i] for i in self.written if i in owned}
    states = self.states
    for i, v, leaves in self.containers:
      if i not in idx:
        raw = states[i]._raw_value
        if raw is not v or any(a is not b for a, b in zip(jax.tree.leaves(raw), leaves)) \
            or len(jax.tree.leaves(raw)) != len(leaves):
          idx.add(i)
    return {i: states[i]._raw_value for i in sorted(idx)}

  def written_states(self) -> list[Any]:
    """Every State written in the frame: owned ones (in owned order), then others."""
    states = self.states
    return [states[i] for i in self.written_owned()] + self.written_other()

  def written_other(self) -> list[Any]:
    """The non-owned States written in the frame, in first-write order."""
    owned = self.owned
    return [st for i, st in self.written.items() if i not in owned]

  # -- hooks --------------------------------------------------------------
  def _touch(self, st) -> None:
    """Snapshots a State the frame does not own before it is used."""
    self.saved[id(st)] = (st, st._raw_value, st._trace_state)
    object.__setattr__(st, '_trace_state', self.trace_state)

  def _is_local(self, st) -> bool:
    # A Variable made in this very trace (e.g. JAX's copy of an argument) is
    # local to it, like a State constructed inside the function.
    if st._trace_state == self.trace_state:
      self.local[id(st)] = st
      return True
    return False

  def on_read(self, st) -> None:
    i = id(st)
    if i in self.owned:
      self.read.add(i)
    elif i not in self.local and i not in self.saved and not self._is_local(st):
      self.unknown_read(st)

  def on_write(self, st) -> None:
    i = id(st)
    if i in self.local:
      return
    if i not in self.owned and i not in self.saved:
      if self._is_local(st):
        return
      self.unknown_write(st)
    self.written[i] = st

  def unknown_read(self, st) -> None:
    raise NotImplementedError

  def unknown_write(self, st) -> None:
    raise NotImplementedError


class DiscoverFrame(Frame):
  """Frame of a compiling transform: unknown States are discovered."""

  __slots__ = ('found',)

  def __init__(self, owner, owned):
    super().__init__(owner, owned)
    self.found: dict[int, Any] = {}

  def unknown_read(self, st) -> None:
    self.found[id(st)] = st
    self._touch(st)

  def unknown_write(self, st) -> None:
    self.found[id(st)] = st
    self._touch(st)


class CaptureFrame(Frame):
  """Frame of a transform that runs its function once per call.

  Unknown reads are threaded by the enclosing frame; unknown writes are
  captured (the transform returns them and assigns them afterwards).
  """

  __slots__ = ()

  def unknown_read(self, st) -> None:
    parent = self.parent
    if parent is not None:
      parent.on_read(st)
    elif not st._trace_state.is_valid():
      check_foreign_read(st)

  def unknown_write(self, st) -> None:
    parent = self.parent
    if parent is not None:
      # the new value usually depends on the old one: let the enclosing
      # frame thread the State before it is overwritten here.
      parent.on_read(st)
    self._touch(st)


# --------------------------------------------------------------------------
# hooks called by State
# --------------------------------------------------------------------------

def notify_read(st) -> None:
  stack = _CTX.frames
  if stack:
    stack[-1].on_read(st)
  elif not st._trace_state.is_valid():
    check_foreign_read(st)


def notify_write(st, value) -> None:
  stack = _CTX.frames
  if stack:
    top = stack[-1]
    if id(st) in top.local:
      return
    top.on_write(st)
    if not top.trace_state.is_valid() and has_tracer(value):
      raise TraceContextError(_nested_raw_msg(st))
  elif not st._trace_state.is_valid() and has_tracer(value):
    raise TraceContextError(raw_write_msg(st))


def notify_create(st, fresh: bool = False) -> None:
  """Marks ``st`` local to every active frame; ``fresh``: built by user code."""
  for f in _CTX.frames:
    f.local[id(st)] = st
    if fresh:
      f.created.append(st)


def read_value(st) -> Any:
  """The raw value of ``st`` as a transform input, recorded as a read."""
  stack = _CTX.frames
  if stack:
    stack[-1].on_read(st)
  return st._raw_value


def write_value(st, value) -> None:
  """Assigns a transform output to ``st``, recorded as a write."""
  stack = _CTX.frames
  if stack:
    stack[-1].on_write(st)
  elif has_tracer(value) and not st._trace_state.is_valid():
    raise TraceContextError(raw_write_msg(st))
  object.__setattr__(st, '_raw_value', value)


# --------------------------------------------------------------------------
# misuse detection
# --------------------------------------------------------------------------

def has_tracer(value) -> bool:
  """Whether ``value`` (a pytree) holds a JAX tracer."""
  if isinstance(value, jax.core.Tracer):
    return True
  if isinstance(value, (np.ndarray, jax.Array, int, float, bool, complex)):
    return False
  return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(value))


def describe(st) -> str:
  """``'ParamState 'w' with value f32[3]'``: a State for error messages."""
  name = st.get_metadata('name', None)
  desc = type(st).__name__
  if name is not None:
    desc += f' {name!r}'
  try:
    aval = jax.tree.map(lambda x: jax.typeof(x).str_short(), st._raw_value)
    desc += f' with value {aval}'
  except Exception:  # pragma: no cover - purely cosmetic
    pass
  return desc


def staging() -> bool:
  """True when the current JAX trace stages out a program (jit, scan, ...)."""
  probe = jax.lax.add(np.int32(0), np.int32(0))
  return isinstance(probe, jax.core.Tracer)


def check_foreign_read(st) -> None:
  """Raises when ``st`` is read under a raw staging transform (jax.jit...)."""
  if staging():
    raise TraceContextError(
      f'{describe(st)} was read inside a raw JAX transformation that '
      'compiles (jax.jit, jax.lax.scan, jax.eval_shape, ...). Its current value '
      'would be baked into the compiled program as a constant and silently go '
      'stale when the State changes. Use brainstate_nnx.transform.jit (or '
      'transform.scan / for_loop / cond / eval_shape), or pass the value in as '
      'an argument. Under Flax transforms (nnx.jit, nnx.value_and_grad, ...) '
      'only Variables reachable from the arguments are threaded; a global State '
      'such as the default stream of brainstate_nnx.random is not. Give the '
      'model its own random stream instead: rngs=brainstate_nnx.random.'
      'RandomState(seed) (or an int seed, or nnx.Rngs(seed)) on Dropout and the '
      'other stochastic layers, or a model attribute self.rng = brainstate_nnx.'
      'random.RandomState(seed) that __call__ draws from (self.rng.randn(...)).'
    )


def raw_write_msg(st) -> str:
  return (
    f'A JAX tracer was written into {describe(st)} under a raw JAX '
    'transformation (jax.jit, jax.vmap, jax.grad, jax.lax.scan, ...), which '
    'cannot carry State updates: the write would be lost or leak a tracer. '
    'Use the state-aware brainstate_nnx.transform equivalent '
    '(transform.jit / vmap / grad / scan / for_loop / cond), or thread the '
    'value through function arguments and return values.'
  )


def _nested_raw_msg(st) -> str:
  return (
    f'{describe(st)} was written inside a raw JAX transformation '
    '(jax.lax.scan / fori_loop / cond / while_loop, jax.vmap, jax.checkpoint, '
    '...) nested in a brainstate_nnx transform. The tracer would escape its '
    'trace. Use brainstate_nnx.transform.scan / for_loop / cond / while_loop / '
    'vmap instead, or return the value out of the raw transformation and '
    'assign it outside.'
  )


# --------------------------------------------------------------------------
# States passed as explicit arguments
# --------------------------------------------------------------------------

def _is_variable(x) -> bool:
  from flax import nnx

  return isinstance(x, nnx.Variable)


class ArgWriteGuard:
  """Catches writes to Variables that reached a traced function as arguments.

  JAX flattens arguments, so inside the trace such a Variable is a copy and a
  write to it would be silently lost. Created inside the trace, checked
  after the user function returned; costs nothing when the arguments hold no
  Variables.
  """

  __slots__ = ('vars', 'before')

  def __init__(self, args, kwargs, frame: Frame):
    leaves = jax.tree.leaves((args, kwargs), is_leaf=_is_variable)
    # Copies made by JAX for this trace belong to the current trace; original
    # objects (static arguments) do not, unless the frame owns them.
    owned = frame.owned
    self.vars = [
      x for x in leaves
      if _is_variable(x) and id(x) not in owned and x._trace_state.is_valid()
    ]
    self.before = [v._raw_value for v in self.vars]

  def check(self, transform: str) -> None:
    for v, b in zip(self.vars, self.before):
      if v._raw_value is not b:
        raise TypeError(
          f'{describe(v)} was passed to brainstate_nnx.transform.{transform} as '
          'an argument (directly or inside a Module) and written. JAX copies '
          'arguments, so the write would be lost. Close over the State or '
          'Module instead of passing it (BrainState style), or pass the Module '
          'as a static argument (static_argnums), or use nnx.jit for '
          'Flax-style explicit arguments.'
        )


# --------------------------------------------------------------------------
# finding the States of a function without running it for real
# --------------------------------------------------------------------------

class ProbeFrame(Frame):
  """Frame of a dry run: records every State touched, changes nothing.

  Writes are shadowed and undone on exit; :func:`probe_states` reports the
  touched States to the enclosing frame afterwards.
  """

  __slots__ = ('touched', 'wrote')

  def __init__(self, owner):
    super().__init__(owner, ())
    self.touched: dict[int, Any] = {}
    self.wrote: dict[int, Any] = {}

  def unknown_read(self, st) -> None:
    self.touched[id(st)] = st
    self._touch(st)

  def unknown_write(self, st) -> None:
    self.unknown_read(st)

  def on_write(self, st) -> None:
    super().on_write(st)
    if id(st) not in self.local:
      self.wrote[id(st)] = st


def probe_states(fn: Callable, *args, **kwargs) -> tuple[list, list]:
  """``(touched, written)``: the States ``fn(*args, **kwargs)`` reads or writes.

  ``fn`` is traced abstractly (``jax.eval_shape``): nothing is computed and
  every State keeps its value. ``touched`` holds all States read or written,
  in first-use order; ``written`` the subset that was written.
  """
  return probe(fn, args, kwargs)


def probe(fn: Callable, args: tuple = (), kwargs: dict | None = None, *,
          axis_env: Sequence[tuple] | None = None, report: bool = True
          ) -> tuple[list, list]:
  """:func:`probe_states` with options.

  ``axis_env``: ``[(axis name, size), ...]`` bound while tracing (for
  collectives; the trace then uses ``jax.make_jaxpr``). ``report``: pass the
  touched States on to the enclosing frame as reads (default).
  """
  frame = ProbeFrame(None)
  kwargs = kwargs or {}

  def run(*a, **k):
    frame.enter(())
    try:
      fn(*a, **k)
    finally:
      frame.exit()
    return None

  with jax.disable_jit(False):  # the dry run must stay abstract
    if axis_env:
      jax.make_jaxpr(run, axis_env=list(axis_env))(*args, **kwargs)
    else:
      jax.eval_shape(run, *args, **kwargs)
  touched = list(frame.touched.values())
  # Report the reads to the enclosing transform here, outside the abstract
  # trace (whose own staging must not be mistaken for a raw jax.jit).
  stack = _CTX.frames
  if stack and report:
    top = stack[-1]
    for st in touched:
      top.on_read(st)
  written = [st for st in touched if id(st) in frame.wrote]
  return touched, written


# aliases of the names used before they became public
_has_tracer = has_tracer
_describe = describe
_staging = staging
_raw_write_msg = raw_write_msg


# --------------------------------------------------------------------------
# the driver: how every transform runs a user function
# --------------------------------------------------------------------------

def read_input(st) -> Any:
  """The value of ``st`` handed to a transform call as an input.

  Recorded as a read by the enclosing frame (which then threads ``st``).
  Outside every brainstate_nnx transform, under a raw compiling JAX
  transformation, the read raises: the value would be baked in.
  """
  stack = _CTX.frames
  if stack:
    stack[-1].on_read(st)
  elif not st._trace_state.is_valid():
    check_foreign_read(st)
  return st._raw_value


def write_back(states: Sequence[Any], values: Sequence[Any]) -> None:
  """Assigns a transform's outputs to ``states``: all of them or none.

  Every assignment is checked before the first one is made, so a bad value
  (a tracer leaking out of a raw JAX transformation) leaves every State as it
  was; the assignments themselves cannot fail.
  """
  stack = _CTX.frames
  if stack:
    top = stack[-1]
    for st in states:
      top.on_write(st)
  else:
    for st, v in zip(states, values):
      if not st._trace_state.is_valid() and has_tracer(v):
        raise TraceContextError(raw_write_msg(st))
  setattr_ = object.__setattr__
  for st, v in zip(states, values):
    setattr_(st, '_raw_value', v)


def run_in_frame(
  frame: Frame,
  values: Sequence[Any],
  fn: Callable,
  args: tuple = (),
  kwargs: dict | None = None,
  *,
  what: str,
  collect: Callable[[Frame], Any] | None = None,
):
  """Runs ``fn(*args, **kwargs)`` under ``frame``: the one way transforms do it.

  ``values`` are swapped into the States ``frame`` owns; arguments holding
  Variables are guarded (a write to such a copy raises instead of being
  lost); ``collect(frame)`` gathers what the transform needs (the written
  States and their values) while the frame is still active; the frame is
  exited -- every State restored -- also when ``fn`` raises.

  Returns ``(fn's output, collect's result)``.
  """
  if kwargs is None:
    kwargs = {}
  frame.enter(values)
  try:
    guard = ArgWriteGuard(args, kwargs, frame)
    out = fn(*args, **kwargs)
    guard.check(what)
    collected = collect(frame) if collect is not None else None
  finally:
    frame.exit()
  return out, collected


class StateList:
  """The growing, ordered list of States a transform threads as inputs."""

  __slots__ = ('states', 'ids')

  def __init__(self, states: Sequence[Any] = ()):
    self.states: list = []
    self.ids: dict[int, int] = {}
    self.add(states, check=False)

  def add(self, found, check: bool = True) -> None:
    """Appends the States of ``found`` not listed yet."""
    ids, states = self.ids, self.states
    n = len(states)
    for st in found:
      if id(st) not in ids:
        ids[id(st)] = len(states)
        states.append(st)
    if check and len(states) == n:  # pragma: no cover - would retrace forever
      raise RuntimeError(
        'brainstate_nnx: State discovery made no progress; please report this '
        'with the function that triggered it.'
      )


def retrace(owner: Any, attempt: Callable[[], Any], update: Callable[[Any], None],
            limit: int | None = None):
  """``attempt()``, repeated while it raises :class:`Rediscover` for ``owner``.

  The one retrace loop: a trace that met something it must thread (new
  States, a new mapping plan) raises ``Rediscover(owner, found)``;
  ``update(found)`` records it and the function is traced again.
  """
  n = 0
  while True:
    try:
      return attempt()
    except Rediscover as e:
      if e.owner is not owner:
        raise
      update(e.states)
      n += 1
      if limit is not None and n >= limit:
        raise RuntimeError(
          f'the States used by {owner!r} kept changing between {limit} traces; '
          'make the set of States the function touches independent of the '
          'traced values.'
        ) from None
