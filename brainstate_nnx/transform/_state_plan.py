"""The engine of the state-aware control flow (``cond``/``switch``/``ifelse`` and the loops).

A control-flow call first traces its function(s) abstractly
(:func:`probe_fn`) to learn which States they touch. A :class:`StatePlan`
then carries the written States as explicit operands/outputs of the JAX
primitive and swaps the current values of the read-only ones in; its
:meth:`StatePlan.run` runs a user function inside the primitive (through
:func:`brainstate_nnx._context.run_in_frame`).

Inside the abstract dry run of an enclosing transform (:func:`in_dry_run`),
a control-flow call runs its function(s) once directly instead
(:func:`dry_calls`): nested loops then trace ``k + 1`` times, not ``2 ** k``.

Example::

  >>> import jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> from brainstate_nnx.transform._state_plan import StatePlan, probe_fn
  >>> s = brainstate.State(jnp.zeros(2))
  >>> def body():
  ...   s.value = s.value + 1
  >>> touched, written, _ = probe_fn(body)
  >>> plan = StatePlan('demo', [(touched, written)])
  >>> [st is s for st in plan.written]
  [True]
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from .. import _context
from .._context import CaptureFrame, probe_states
from .._error import BrainStateError

__all__ = ['out_struct', 'probe_fn', 'in_dry_run', 'abstract', 'dry_calls', 'func_name',
           'BodyFrame', 'StatePlan']

# --------------------------------------------------------------------------
# shared machinery (also used by _loops.py)
# --------------------------------------------------------------------------

def out_struct(x):
  """An abstract description of one output leaf (shape, dtype, weak type)."""
  try:
    aval = jax.typeof(x)
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)
  except Exception:  # a non-array leaf: keep its type for error messages
    return type(x)


def probe_fn(fn: Callable, *args) -> tuple[list, list, Any]:
  """``(touched, written, out_structs)`` of ``fn(*args)``, found abstractly."""
  box = {}

  def run(*a):
    out = fn(*a)
    box['out'] = jax.tree.map(out_struct, out)

  # Abstract evaluation must trace even when the caller disabled jit.
  with jax.disable_jit(False):
    touched, written = probe_states(run, *args)
  return touched, written, box.get('out')


def _is_tracer(x) -> bool:
  return isinstance(x, jax.core.Tracer)


# --------------------------------------------------------------------------
# the dry-run shortcut (also used by _loops.py)
# --------------------------------------------------------------------------

def in_dry_run() -> bool:
  """Whether the call runs inside the abstract dry run of an enclosing transform.

  True when the innermost frame is a :class:`~brainstate_nnx._context.ProbeFrame`
  whose trace is the current JAX trace and that trace stages out (the
  dry run of :func:`~brainstate_nnx._context.probe_states`, ``eval_shape``
  ...). There only the States touched and the abstract outputs matter, so a
  control-flow transform runs its function(s) once directly instead of
  probing them and tracing them again inside a JAX primitive. Under a raw
  JAX transformation nested in the dry run, or in a probe that runs on
  concrete values, the full path is taken.
  """
  stack = _context.frames()
  if not stack:
    return False
  top = stack[-1]
  return (isinstance(top, _context.ProbeFrame) and top.trace_state.is_valid()
          and _context.staging())


_ARRAY_LIKE = (jax.Array, np.ndarray, np.generic, bool, int, float, complex)


def _is_variable(x) -> bool:
  from flax import nnx

  return isinstance(x, nnx.Variable)


def abstract(tree):
  """``tree`` with its array leaves turned into tracers of the current trace.

  Inside the dry run, the values a JAX primitive would hand to (or return
  from) the user function are tracers with the same abstract values (shape,
  dtype, weak type); an ``optimization_barrier`` makes concrete leaves
  (Python scalars, constant arrays) tracers too, so Python code behaves as it
  does under the primitive. Tracers, States and other leaves are kept.
  """
  leaves, treedef = jax.tree.flatten(tree, is_leaf=_is_variable)
  idx = [i for i, x in enumerate(leaves)
         if isinstance(x, _ARRAY_LIKE) and not _is_tracer(x)]
  if idx:
    new = jax.lax.optimization_barrier([leaves[i] for i in idx])
    for i, v in zip(idx, new):
      leaves[i] = v
  return treedef.unflatten(leaves)


def _run_logging_writes(frame, fn: Callable, args: tuple):
  """``(fn(*args), States written)`` in the dry run of ``frame``."""
  before = frame.wrote
  frame.wrote = {}
  try:
    out = fn(*args)
    wrote = list(frame.wrote.values())
  finally:
    before.update(frame.wrote)
    frame.wrote = before
  return out, wrote


def dry_calls(what: str, calls: Sequence[tuple], keep: int | None) -> list:
  """Runs ``fn(*args)`` for each ``(name, fn, args, may_write)`` in the dry run.

  Like the functions of one JAX primitive, each call sees the State values
  from before the first one. Afterwards a State written by a call holds the
  value written by ``calls[keep]``, or (for ``keep=None``, or a State that
  call does not write) its abstract value from before, which is what the
  primitive returns for it. Raises like the full path when a call with
  ``may_write=False`` writes a State. Returns the outputs.
  """
  frame = _context.frames()[-1]
  # the States the dry run has met so far (also those created in it) and
  # their current values: a write to one of them replaces the value object
  pre = {}
  for known in (frame.touched, frame.local):
    for i, st in known.items():
      pre[i] = (st, st._raw_value)

  def value_before(st):
    i = id(st)
    # a State first met in the call: its value when the dry run met it
    return pre[i][1] if i in pre else frame.saved[i][1]

  setattr_ = object.__setattr__
  outs, written, kept = [], {}, {}
  for k, (name, fn, args, may_write) in enumerate(calls):
    out, logged = _run_logging_writes(frame, fn, args)
    wrote = {id(st): st for st in logged}
    for i, (st, v) in pre.items():
      if st._raw_value is not v:
        wrote.setdefault(i, st)
    wrote = list(wrote.values())
    if wrote and not may_write:
      raise ValueError(
        f'{what}: {name} must not write States, but it writes '
        + ', '.join(_context.describe(s) for s in wrote) + '.'
      )
    outs.append(out)
    for st in wrote:
      written.setdefault(id(st), st)
      if k == keep:
        kept[id(st)] = st._raw_value
      setattr_(st, '_raw_value', value_before(st))
  restored = [st for i, st in written.items() if i not in kept]
  for st, v in zip(restored, abstract([st._raw_value for st in restored])):
    setattr_(st, '_raw_value', v)
  for i, v in kept.items():
    setattr_(written[i], '_raw_value', v)
  return outs


def func_name(fn) -> str:
  return getattr(fn, '__name__', None) or type(fn).__name__


class BodyFrame(CaptureFrame):
  """The frame of a loop body or branch.

  As :class:`CaptureFrame`, except for a State read that the probe did not
  report when no brainstate_nnx transform encloses the call: the primitive
  is traced afresh on every such call, so closing over the State's current
  (concrete) value is safe -- unless the call itself runs under a raw
  compiling JAX transformation, where the value would go stale.
  """

  __slots__ = ('outer_staging',)

  def unknown_read(self, st) -> None:
    if self.parent is None and not self.outer_staging:
      return
    super().unknown_read(st)


class _SpeculativeFrame(BodyFrame):
  """The frame of a loop body run with every reachable State carried.

  Records the States the body uses in first-use order; States it reads
  without owning them are reported to the enclosing frame afterwards, in
  that order (as a probe would have reported them), not during the trace.
  """

  __slots__ = ('order',)

  def __init__(self, owner, owned):
    super().__init__(owner, owned)
    self.order: dict[int, Any] = {}

  def on_read(self, st) -> None:
    if id(st) in self.owned:
      self.order.setdefault(id(st), st)
    super().on_read(st)

  def on_write(self, st) -> None:
    if id(st) in self.owned:
      self.order.setdefault(id(st), st)
    super().on_write(st)

  def unknown_read(self, st) -> None:
    if self.parent is None:
      super().unknown_read(st)
    else:
      self.order.setdefault(id(st), st)


class _Unforeseen(Exception):
  """A speculative loop body wrote a State it could not reach beforehand."""


# the most States a loop carries speculatively (a body closing over a large
# model is probed instead, so the loop does not carry the whole model)
_SPECULATE_MAX = 64


class StatePlan:
  """The States one control-flow call threads, and how to run code with them.

  ``written`` States (written by at least one of the probed functions) are
  carried explicitly: their current values go into the primitive and the
  values they hold after the user function comes out. ``read_only`` States
  get their current outer value (a concrete array, or a tracer of the
  enclosing transform) swapped in; JAX closes over it.

  Args:
    what: the transform's name, for messages (``'cond'``, ``'scan'``...).
    probes: ``(touched, written)`` pairs, one per probed function.
  """

  def __init__(self, what: str, probes: Sequence[tuple[list, list]]):
    self.what = what
    written: dict[int, Any] = {}
    touched: dict[int, Any] = {}
    for t, w in probes:
      for st in w:
        written.setdefault(id(st), st)
      for st in t:
        touched.setdefault(id(st), st)
    self.written = list(written.values())
    self.read_only = [st for i, st in touched.items() if i not in written]
    self.owned = self.written + self.read_only
    self._read_values: list | None = None
    self._outer_staging = False
    # speculative plans: (indices of the States written, States used in order)
    self._speculative = False
    self._used: tuple[set, dict] | None = None

  @classmethod
  def speculate(cls, what: str, *fns: Callable) -> 'StatePlan | None':
    """A plan carrying every State the functions ``fns`` can reach, or ``None``.

    Saves the abstract probe: the loop body is traced once, inside the JAX
    primitive, with all the States found by walking ``fns`` (see
    ``brainstate_nnx._reach``) carried; JAX turns the carries passed through
    unchanged into constants. Afterwards only the States the body used are
    reported to the enclosing frame and only those it wrote are assigned. A
    body that writes a State not found by the walk raises inside the trace;
    the caller then takes the probed path. ``None`` when there is nothing to
    foresee, too much (more than 64 States), or no brainstate_nnx frame and a
    staging JAX trace (a raw ``jax.jit``) around the call.
    """
    from .._reach import reachable
    from .._state import State

    stack = _context.frames()
    if (stack and isinstance(stack[-1], _context.ProbeFrame)) or (
        not stack and _context.staging()):
      return None
    try:
      found, _ = reachable(fns)
    except Exception:
      return None
    states = [st for st in found if isinstance(st, State)]
    if not states or len(states) > _SPECULATE_MAX:
      return None
    from ..random import DEFAULT, RandomState
    # the default random stream is reached through the package, not a closure
    if all(st is not DEFAULT for st in states):
      states.append(DEFAULT)
    for st in states:
      if isinstance(st, RandomState):
        st._settle_key()   # carry the typed key a draw writes back
    plan = cls(what, [(states, states)])
    plan._speculative = True
    return plan

  # -- outside the primitive --------------------------------------------------
  def initial(self) -> list:
    """Current values of the written States (the primitive's extra operands)."""
    self._outer_staging = not _context.frames() and _context.staging()
    if self._speculative:
      # not reported as reads yet: only the States the body uses will be
      self._read_values = []
      self._used = (set(), {})   # (indices of States written, States used in order)
      return [st._raw_value for st in self.written]
    read = _context.read_input
    self._read_values = [read(st) for st in self.read_only]
    return [read(st) for st in self.written]

  def assign(self, values: Sequence[Any]) -> None:
    """Writes the primitive's results back into the written States."""
    if self._speculative:
      written, used = self._used
      stack = _context.frames()
      if stack:
        top = stack[-1]
        for st in used.values():
          top.on_read(st)
      written = sorted(written)
      _context.write_back([self.written[i] for i in written], [values[i] for i in written])
      return
    _context.write_back(self.written, values)

  # -- inside the primitive ---------------------------------------------------
  def run(self, fn: Callable, written_values: Sequence[Any], args: tuple,
          *, name: str | None = None, may_write: bool = True):
    """Runs ``fn(*args)`` with the States' values swapped in.

    Returns ``(out, new_written_values)``. Raises if ``fn`` writes a State
    the probe did not report as written (or any State when ``may_write`` is
    false), instead of silently dropping the write.
    """
    frame = (_SpeculativeFrame if self._speculative else BodyFrame)(self, self.owned)
    frame.outer_staging = self._outer_staging
    n = len(self.written)

    def collect(frame):
      if self._speculative:
        wrote = frame.written_owned()
        if frame.written_other() or (wrote and not may_write):
          raise _Unforeseen()   # the probed path then raises or handles it
        written, used = self._used
        written.update(wrote)
        for i, st in frame.order.items():
          used.setdefault(i, st)
        return [st._raw_value for st in self.written]
      if may_write:
        bad = [self.owned[i] for i in frame.written_owned() if i >= n]
      else:
        bad = [self.owned[i] for i in frame.written_owned()]
      bad += frame.written_other()
      if bad:
        raise self._undiscovered(bad, name or func_name(fn), may_write)
      return [st._raw_value for st in self.written]

    out, new_values = _context.run_in_frame(
      frame, list(written_values) + list(self._read_values), fn, tuple(args),
      what=self.what, collect=collect)
    return out, new_values

  @contextlib.contextmanager
  def explained(self):
    """Adds the carried States to a JAX type error raised in the block."""
    try:
      yield
    except TypeError as e:
      if self.written:
        e.add_note(
          f'brainstate_nnx: {self.what} carries the values of the States its '
          'function(s) write, as the first part of its carry/operands/outputs, '
          'in this order: '
          + ', '.join(_context.describe(s) for s in self.written)
          + '. Each State must keep its structure, shape and dtype.'
        )
      raise

  def _undiscovered(self, states, name, may_write):
    desc = ', '.join(_context.describe(s) for s in states)
    if not may_write:
      return ValueError(
        f'{self.what}: {name} must not write States, but it wrote {desc}.'
      )
    return BrainStateError(
      f'{self.what}: {name} wrote {desc}, which was not found when the '
      'function was traced abstractly beforehand to discover the States it '
      'writes. The write cannot be carried out of the JAX primitive and would '
      'be lost. This happens when the function takes a different Python path '
      'each time it is traced (e.g. it depends on a Python counter or on '
      'global mutable data); make the set of written States the same on '
      'every trace.'
    )


