"""State-aware branching: ``cond``, ``switch`` and ``ifelse``.

Each branch may read and write States through closures, exactly as in plain
Python. Before the JAX primitive is built, every branch is traced abstractly
(:func:`~brainstate_nnx._context.probe_states`) to learn which States it
touches. The States written by *any* branch become explicit operands and
outputs of :func:`jax.lax.cond` / :func:`jax.lax.switch`; a branch that does
not write one of them hands its incoming value straight back, so the State
keeps its old value when that branch is taken. States that are only read are
swapped in as they are (an enclosing transform threads them). After the
primitive returns, the selected values are assigned to the States.

Called inside the abstract dry run of an enclosing transform (the innermost
frame is a :class:`~brainstate_nnx._context.ProbeFrame`), a control-flow
call neither probes nor builds a primitive: it runs its function(s) once
directly, so the enclosing probe records every State they touch, and returns
abstract outputs of the right structure, shapes and dtypes (see
:func:`_in_dry_run`). Without this shortcut the innermost body of ``k``
nested control-flow calls would be traced ``2 ** k`` times.

The machinery shared with the loops (:mod:`._loops`) lives here too:
:class:`_StatePlan` decides which States a control-flow call carries and runs
a user function with their values swapped in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _context
from .._context import ArgWriteGuard, CaptureFrame, probe_states
from .._error import BrainStateError

__all__ = ['cond', 'switch', 'ifelse']


# --------------------------------------------------------------------------
# shared machinery (also used by _loops.py)
# --------------------------------------------------------------------------

def _out_struct(x):
  """An abstract description of one output leaf (shape, dtype, weak type)."""
  try:
    aval = jax.typeof(x)
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)
  except Exception:  # a non-array leaf: keep its type for error messages
    return type(x)


def _probe(fn: Callable, *args) -> tuple[list, list, Any]:
  """``(touched, written, out_structs)`` of ``fn(*args)``, found abstractly."""
  box = {}

  def run(*a):
    out = fn(*a)
    box['out'] = jax.tree.map(_out_struct, out)

  # Abstract evaluation must trace even when the caller disabled jit.
  with jax.disable_jit(False):
    touched, written = probe_states(run, *args)
  return touched, written, box.get('out')


def _is_tracer(x) -> bool:
  return isinstance(x, jax.core.Tracer)


# --------------------------------------------------------------------------
# the dry-run shortcut (also used by _loops.py)
# --------------------------------------------------------------------------

def _in_dry_run() -> bool:
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
          and _context._staging())


_ARRAY_LIKE = (jax.Array, np.ndarray, np.generic, bool, int, float, complex)


def _is_variable(x) -> bool:
  from flax import nnx

  return isinstance(x, nnx.Variable)


def _abstract(tree):
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


def _dry_calls(what: str, calls: Sequence[tuple], keep: int | None) -> list:
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
        + ', '.join(_context._describe(s) for s in wrote) + '.'
      )
    outs.append(out)
    for st in wrote:
      written.setdefault(id(st), st)
      if k == keep:
        kept[id(st)] = st._raw_value
      setattr_(st, '_raw_value', value_before(st))
  restored = [st for i, st in written.items() if i not in kept]
  for st, v in zip(restored, _abstract([st._raw_value for st in restored])):
    setattr_(st, '_raw_value', v)
  for i, v in kept.items():
    setattr_(written[i], '_raw_value', v)
  return outs


def _func_name(fn) -> str:
  return getattr(fn, '__name__', None) or type(fn).__name__


class _BodyFrame(CaptureFrame):
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


class _StatePlan:
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

  # -- outside the primitive --------------------------------------------------
  @staticmethod
  def _outer_value(st):
    # Outside every brainstate_nnx transform, reading a State under a raw
    # compiling JAX transformation would bake it in as a constant.
    if not _context.frames() and not st._trace_state.is_valid():
      _context.check_foreign_read(st)
    return _context.read_value(st)

  def initial(self) -> list:
    """Current values of the written States (the primitive's extra operands)."""
    self._outer_staging = not _context.frames() and _context._staging()
    self._read_values = [self._outer_value(st) for st in self.read_only]
    return [self._outer_value(st) for st in self.written]

  def assign(self, values: Sequence[Any]) -> None:
    """Writes the primitive's results back into the written States."""
    write = _context.write_value
    for st, v in zip(self.written, values):
      write(st, v)

  # -- inside the primitive ---------------------------------------------------
  def run(self, fn: Callable, written_values: Sequence[Any], args: tuple,
          *, name: str | None = None, may_write: bool = True):
    """Runs ``fn(*args)`` with the States' values swapped in.

    Returns ``(out, new_written_values)``. Raises if ``fn`` writes a State
    the probe did not report as written (or any State when ``may_write`` is
    false), instead of silently dropping the write.
    """
    frame = _BodyFrame(self, self.owned)
    frame.outer_staging = self._outer_staging
    frame.enter(list(written_values) + list(self._read_values))
    try:
      guard = ArgWriteGuard(args, {}, frame)
      out = fn(*args)
      guard.check(self.what)
      n = len(self.written)
      if may_write:
        bad = [self.owned[i] for i in frame.written_owned() if i >= n]
      else:
        bad = [self.owned[i] for i in frame.written_owned()]
      bad += frame.written_other()
      if bad:
        raise self._undiscovered(bad, name or _func_name(fn), may_write)
      new_values = [st._raw_value for st in self.written]
    finally:
      frame.exit()
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
          + ', '.join(_context._describe(s) for s in self.written)
          + '. Each State must keep its structure, shape and dtype.'
        )
      raise

  def _undiscovered(self, states, name, may_write):
    desc = ', '.join(_context._describe(s) for s in states)
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


def _check_same_outputs(what: str, names: Sequence[str], outs: Sequence[Any]):
  """Raises a TypeError naming the user functions when branch outputs differ."""
  ref_tree = jax.tree.structure(outs[0])
  ref_leaves = jax.tree.leaves(outs[0])
  for name, out in zip(names[1:], outs[1:]):
    tree = jax.tree.structure(out)
    if tree != ref_tree:
      raise TypeError(
        f'{what}: all branches must return the same pytree structure, but '
        f'{names[0]} returned {ref_tree} and {name} returned {tree}.'
      )
    for k, (a, b) in enumerate(zip(ref_leaves, jax.tree.leaves(out))):
      if isinstance(a, jax.ShapeDtypeStruct) and isinstance(b, jax.ShapeDtypeStruct):
        if a.shape != b.shape or a.dtype != b.dtype:
          raise TypeError(
            f'{what}: all branches must return arrays of the same shape and '
            f'dtype, but output leaf {k} is {a.dtype}{list(a.shape)} in '
            f'{names[0]} and {b.dtype}{list(b.shape)} in {name}.'
          )


def _run_branches(what: str, select: Callable, branches: Sequence[Callable],
                  operands: tuple, names: Sequence[str] | None = None):
  """Builds the stateful branches and calls ``select(branch_fns, *ops)``."""
  if names is None:
    names = [f'branch {k} ({_func_name(b)})' for k, b in enumerate(branches)]
  if _in_dry_run():
    # every branch runs (a State may be written by one branch only); the
    # primitive's outputs have the abstract values of branch 0's outputs
    operands = _abstract(operands)
    outs = _dry_calls(what, [(n, b, operands, True) for n, b in zip(names, branches)],
                      keep=0)
    _check_same_outputs(what, names, [jax.tree.map(_out_struct, o) for o in outs])
    return _abstract(outs[0])
  probes = [_probe(b, *operands) for b in branches]
  _check_same_outputs(what, names, [p[2] for p in probes])
  plan = _StatePlan(what, [p[:2] for p in probes])

  def make(fn, name):
    def branch(written_values, *ops):
      out, new_values = plan.run(fn, written_values, ops, name=name)
      return new_values, out
    return branch

  fns = [make(b, n) for b, n in zip(branches, names)]
  with plan.explained():
    new_values, out = select(fns, plan.initial(), *operands)
  plan.assign(new_values)
  return out


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

def cond(pred, true_fun: Callable, false_fun: Callable, *operands) -> Any:
  """Runs ``true_fun(*operands)`` if ``pred`` holds, else ``false_fun(*operands)``.

  A compiled ``if``/``else``: the choice is made at run time (``pred`` may be
  a traced value inside ``jit``), and only the selected branch's effects take
  place. Both branches may read and write States through closures; a State
  that only one branch writes keeps its old value when the other branch runs.
  Both branches must return outputs of the same structure, shapes and dtypes.

  Args:
    pred: a scalar boolean, or a scalar number (non-zero means true).
    true_fun: called with ``*operands`` when ``pred`` is true.
    false_fun: called with ``*operands`` when ``pred`` is false.
    *operands: arguments passed to the selected branch (pytrees of arrays).

  Returns:
    What the selected branch returned.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> hits = brainstate.State(jnp.array(0))
    >>> def count(x):
    ...   hits.value += 1
    ...   return x * 2
    >>> @brainstate.transform.jit
    ... def f(x):
    ...   return brainstate.transform.cond(x > 0, count, lambda x: -x, x)
    >>> float(f(3.0)), float(f(-2.0))
    (6.0, 2.0)
    >>> int(hits.value)  # only the first call took the branch that counts
    1
  """
  if not (callable(true_fun) and callable(false_fun)):
    raise TypeError('cond: true_fun and false_fun must be callable.')
  if pred is None:
    raise TypeError('cond: the predicate is None.')
  if isinstance(pred, Sequence) or np.ndim(pred) != 0:
    raise TypeError(
      f'cond: the predicate must be a scalar, got {type(pred).__name__} with '
      f'shape {np.shape(pred)}.'
    )
  try:
    kind = jax.dtypes.result_type(pred).kind
  except TypeError as e:
    raise TypeError(
      f'cond: the predicate must be a boolean or a number, got {pred!r}.'
    ) from e
  if kind != 'b':
    if kind not in 'iuf':
      raise TypeError(
        f'cond: the predicate must be a boolean or a number, got dtype '
        f'{jax.dtypes.result_type(pred)}.'
      )
    pred = pred != 0

  if jax.config.jax_disable_jit and not _is_tracer(pred):
    return true_fun(*operands) if pred else false_fun(*operands)

  def select(fns, written_values, *ops):
    false_b, true_b = fns
    return jax.lax.cond(pred, true_b, false_b, written_values, *ops)

  names = [f'false_fun ({_func_name(false_fun)})', f'true_fun ({_func_name(true_fun)})']
  return _run_branches('cond', select, [false_fun, true_fun], operands, names)


def switch(index, branches: Sequence[Callable], *operands) -> Any:
  """Runs ``branches[index](*operands)``, choosing the branch at run time.

  ``index`` is clamped to ``[0, len(branches) - 1]``. Branches may read and
  write States through closures; a State written by some branches keeps its
  old value when another branch runs. All branches must return outputs of
  the same structure, shapes and dtypes.

  Args:
    index: a scalar integer (may be traced).
    branches: a sequence of callables, each called with ``*operands``.
    *operands: arguments passed to the selected branch.

  Returns:
    What the selected branch returned.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> mode = brainstate.State(jnp.array(0.0))
    >>> def rest(x): return x
    >>> def fire(x):
    ...   mode.value = x
    ...   return x + 1
    >>> def reset(x):
    ...   mode.value = jnp.zeros_like(x)
    ...   return x - 1
    >>> out = brainstate.transform.switch(1, [rest, fire, reset], jnp.array(5.0))
    >>> float(out), float(mode.value)
    (6.0, 5.0)
    >>> out = brainstate.transform.switch(7, [rest, fire, reset], jnp.array(5.0))  # clamped
    >>> float(out), float(mode.value)
    (4.0, 0.0)
  """
  branches = tuple(branches)
  if not all(callable(b) for b in branches):
    raise TypeError('switch: branches must be a sequence of callables.')
  if np.ndim(index) != 0:
    raise TypeError(
      f'switch: the branch index must be a scalar, got shape {np.shape(index)}.'
    )
  try:
    dtype = jax.dtypes.result_type(index)
  except TypeError as e:
    raise TypeError(f'switch: the branch index must be an integer, got {index!r}.') from e
  if dtype.kind not in 'iu':
    raise TypeError(f'switch: the branch index must be an integer, got dtype {dtype}.')
  if not branches:
    raise ValueError('switch: the sequence of branches is empty.')
  if len(branches) == 1:
    return branches[0](*operands)

  index = jax.lax.clamp(
    np.int32(0), jax.lax.convert_element_type(index, np.int32),
    np.int32(len(branches) - 1),
  )
  if jax.config.jax_disable_jit and not _is_tracer(index):
    return branches[int(index)](*operands)

  def select(fns, written_values, *ops):
    return jax.lax.switch(index, fns, written_values, *ops)

  return _run_branches('switch', select, branches, operands)


def _check_exactly_one(flags) -> None:
  """Host-side check (a debug callback) that exactly one condition holds."""
  flags = np.asarray(flags)
  if np.any(flags.sum(axis=-1) != 1):
    raise ValueError(
      'ifelse: exactly one condition must be True, but got '
      f'{flags.astype(bool).tolist()}.'
    )


def ifelse(conditions, branches: Sequence[Callable], *operands,
           check_cond: bool = True) -> Any:
  """A compiled ``if / elif / ... / else`` chain over mutually exclusive conditions.

  ``branches[k](*operands)`` runs for the condition ``conditions[k]`` that is
  true. With ``check_cond=True`` (the default) exactly one condition must be
  true; otherwise a ``ValueError`` is raised (immediately for concrete
  conditions, when the compiled program runs for traced ones). With
  ``check_cond=False`` the first true condition wins, and the last branch
  runs when none is true. States are handled as in :func:`switch`.

  Args:
    conditions: a sequence of scalar booleans (may be traced).
    branches: one callable per condition.
    *operands: arguments passed to the selected branch.
    check_cond: verify that exactly one condition is true.

  Returns:
    What the selected branch returned.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> def sign(x):
    ...   return brainstate.transform.ifelse(
    ...     [x > 0, x == 0, x < 0],
    ...     [lambda: 1.0, lambda: 0.0, lambda: -1.0])
    >>> float(sign(jnp.array(3.0))), float(sign(jnp.array(-0.5)))
    (1.0, -1.0)
  """
  branches = tuple(branches)
  if not all(callable(b) for b in branches):
    raise TypeError('ifelse: branches must be a sequence of callables.')
  if not branches:
    raise ValueError('ifelse: the sequence of branches is empty.')
  if len(conditions) != len(branches):
    raise ValueError(
      f'ifelse: got {len(conditions)} conditions for {len(branches)} branches; '
      'there must be one condition per branch.'
    )
  if len(branches) == 1:
    return branches[0](*operands)

  flags = jnp.asarray([jnp.asarray(c) for c in conditions]).astype(np.int32)
  if check_cond:
    if _is_tracer(flags):
      jax.debug.callback(_check_exactly_one, flags, ordered=True)
    else:
      _check_exactly_one(flags)
  n = len(branches)
  index = jnp.where(jnp.any(flags != 0), jnp.argmax(flags != 0), n - 1)
  return switch(index, branches, *operands)
