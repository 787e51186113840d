"""Filter-driven, state-aware mapping: ``vmap2``, ``pmap2``, ``map`` and the
``*_new_states`` ensemble builders.

The mapped function reads and writes States through closures, as everywhere
in brainstate_nnx. Which States carry the mapped axis is decided by *filters*
(``state_in_axes`` / ``state_out_axes``), not by listing every State: the
first time the function touches a State, the State is classified.

How a call works
----------------

A :class:`StatefulMapping` keeps, per argument signature, a *plan*: the
States fed batched (with their axis), the random generators to split per
lane, and the States the function writes together with the axis each one is
written back on (``None``: a single, unbatched value). A call runs the
function once under ``jax.vmap`` (or the configured mapping primitive) with a
:class:`_MapFrame` that swaps the batch tracers into the planned States.

The first call with a signature starts from a probe: one lane of the
arguments runs (with concrete values) under a frame that records the States
matching ``state_in_axes`` and the random generators. While the mapped
function runs the frame checks the plan: such a State that is not planned
yet, and -- once the function returned -- a written State whose batch axis
(read off the JAX batch tracer) differs from the plan, make the call abandon
its trace, fix the plan and run again. A first call therefore traces the
function two or three times; later calls with the same signature once. With
``jax.pmap`` (whose tracers carry no batch axis) the plan is checked by
``jax.vmap`` passes before the ``jax.pmap`` one.

Random numbers: every :class:`RandomState` the function draws from is split
into one key per lane before the call and set to a fresh key afterwards, so
each lane draws independently and the numbers are those of BrainState for the
same seed.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings
from typing import Any, Callable, Dict, Hashable, Iterable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax.nnx import tracers as _nnx_tracers

try:
  from jax.api_util import flatten_axes as _flatten_axes
except ImportError:  # pragma: no cover - older JAX layout
  from jax._src.api_util import flatten_axes as _flatten_axes

try:  # the tracer type of jax.vmap, read to learn the batch axis of a write
  from jax._src.interpreters.batching import BatchTracer as _BatchTracer
except ImportError:  # pragma: no cover
  _BatchTracer = ()

try:
  from jax._src.core import trace_ctx as _trace_ctx

  def _current_trace():
    return _trace_ctx.trace
except ImportError:  # pragma: no cover
  def _current_trace():
    return None

from .. import _context
from .._context import CaptureFrame, Frame, ProbeFrame, Rediscover
from .._error import BatchAxisError
from .._state import State, catch_new_states
from ..util.filter import Everything, to_predicate

__all__ = [
  'StatefulMapping',
  'vmap2',
  'pmap2',
  'map',
  'vmap_new_states',
  'vmap2_new_states',
  'pmap2_new_states',
  'in_new_state_probe',
  'INIT_NO_BATCHING',
]

AxisName = Hashable

#: Tag of States that ``*_new_states`` transforms must not batch.
INIT_NO_BATCHING = 'INIT_NO_BATCHING'

_POLICIES = ('auto', 'raise', 'warn', 'ignore')
_MAX_PASSES = 8
_MAX_PLANS = 32


def _random_state_type():
  from ..random._state import RandomState

  return RandomState


# --------------------------------------------------------------------------
# state selectors
# --------------------------------------------------------------------------

def _identity_predicate(states) -> Callable:
  states = list(states)  # (kept alive, so that their ids stay theirs)
  ids = frozenset(id(s) for s in states)

  def is_one_of(path, x, _states=states):
    return id(x) in ids

  return is_one_of


def _selector(value) -> Callable:
  """A predicate from a filter, a State, or a non-empty collection of States."""
  if isinstance(value, State):
    return _identity_predicate([value])
  if (isinstance(value, (list, tuple, set, frozenset)) and value
      and all(isinstance(v, State) for v in value)):
    return _identity_predicate(value)
  return to_predicate(value)


def _normalize_state_axes(spec) -> Dict[Any, Callable]:
  """``{axis: predicate}`` from a ``state_in_axes`` / ``state_out_axes`` spec."""
  if spec is None:
    return {}
  if isinstance(spec, dict):
    return {axis: _selector(v) for axis, v in spec.items()}
  return {0: _selector(spec)}


def _first_match(preds: Dict[Any, Callable], st) -> tuple[bool, Any]:
  for axis, pred in preds.items():
    if pred((), st):
      return True, axis
  return False, None


# --------------------------------------------------------------------------
# axes, sizes and signatures
# --------------------------------------------------------------------------

def _leaf_axes(args: tuple, in_axes) -> tuple[list, Any, list]:
  """``(leaves, treedef, axis per leaf)`` of the positional arguments."""
  leaves, tree = jax.tree.flatten(tuple(args))
  if in_axes is None:
    return leaves, tree, [None] * len(leaves)
  spec = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
  return leaves, tree, list(_flatten_axes('vmap in_axes', tree, spec))


def _axis_len(x, axis: int) -> int:
  shape = np.shape(x)
  if not shape:
    raise ValueError(
      f'Cannot map axis {axis} of a value without array dimensions '
      f'({type(x).__name__}); broadcast it with an in_axes entry of None.'
    )
  return shape[axis]


class _SizeError(ValueError):
  """The mapped inputs disagree on the mapped size."""


def _batch_size(args, in_axes, kwargs, fed, axis_size) -> int:
  """The mapped size, checked for consistency like BrainState does.

  ``fed`` lists ``(State value, axis)`` of the States mapped on input.
  """
  sizes = []
  if args:
    leaves, _, axes = _leaf_axes(args, in_axes)
    sizes.extend(_axis_len(x, ax) for x, ax in zip(leaves, axes) if ax is not None)
  for x in jax.tree.leaves(kwargs):
    sizes.append(_axis_len(x, 0))
  for value, ax in fed:
    leaves = jax.tree.leaves(value)
    if leaves:
      sizes.append(_axis_len(leaves[0], ax))
  if not sizes:
    if axis_size is None:
      raise ValueError(
        'Unable to determine the mapped axis size: no argument, keyword '
        'argument or State is mapped. Specify axis_size.'
      )
    return int(axis_size)
  if axis_size is not None and axis_size not in set(sizes):
    raise _SizeError(
      f'axis_size={axis_size} conflicts with the mapped axis size(s) '
      f'{sorted(set(sizes))} of the arguments/States.'
    )
  if len(set(sizes)) > 1:
    raise _SizeError(f'Inconsistent mapped axis sizes: {sorted(set(sizes))}')
  return int(sizes[0])


def _leaf_axis_size(value, axis: int) -> Optional[int]:
  leaves = jax.tree.leaves(value)
  if not leaves:
    return None
  shape = np.shape(leaves[0])
  if axis < 0:
    axis += len(shape)
  return shape[axis] if 0 <= axis < len(shape) else None


def _abstract_key(x):
  try:
    t = jax.typeof(x)
    return (t.shape, str(t.dtype), bool(getattr(t, 'weak_type', False)))
  except Exception:
    return (type(x),)


def _signature(static: tuple, dyn_args: tuple, dyn_kwargs: dict) -> Hashable:
  leaves, tree = jax.tree.flatten((dyn_args, dyn_kwargs))
  key = (static, tree, tuple(_abstract_key(x) for x in leaves))
  try:
    hash(key)
  except TypeError:
    return ('<unhashable static arguments>', tree)
  return key


def _lane_placeholder(value, axis: int):
  """A trace-free value shaped like one lane of ``value`` along ``axis``."""

  def one(x):
    shape = tuple(np.shape(x))
    a = axis + len(shape) if axis < 0 else axis
    if not 0 <= a < len(shape):
      raise ValueError(
        f'Mapped axis {axis} is out of bounds for a State value of shape {shape}.'
      )
    lane = shape[:a] + shape[a + 1:]
    try:
      return np.zeros(lane, dtype=jax.typeof(x).dtype)
    except TypeError:  # extended dtypes (PRNG keys): one real lane
      return jax.lax.index_in_dim(x, 0, a, keepdims=False)

  return jax.tree.map(one, value)


def _take_lane(x, axis: int):
  """Lane 0 of ``x`` along ``axis``."""
  if isinstance(x, np.ndarray):
    return np.take(x, 0, axis=axis)
  if not np.shape(x):
    _axis_len(x, axis)  # raises a clear error
  return jax.lax.index_in_dim(x, 0, axis, keepdims=False)


def _run_one_lane(frame: Frame, fn: Callable, args: tuple, in_axes, kwargs,
                  axis_name=None, axis_size=None) -> None:
  """Runs ``fn`` on lane 0 of ``args`` / ``kwargs`` with ``frame`` active.

  The lane runs under a ``jax.vmap`` that maps nothing: values stay concrete
  (Python control flow on them works as under a real ``jax.vmap``), the
  frame gets a trace of its own and ``axis_name`` is bound for collectives.
  """
  leaves, tree, axes = _leaf_axes(args, in_axes)
  lane_args = tree.unflatten(
    [x if ax is None else _take_lane(x, ax) for x, ax in zip(leaves, axes)])
  lane_kwargs = jax.tree.map(lambda x: _take_lane(x, 0), kwargs or {})
  try:
    size = _batch_size(args, in_axes, kwargs or {}, [], axis_size)
  except ValueError:
    size = axis_size or 1

  def run():
    frame.enter(())
    try:
      fn(*lane_args, **lane_kwargs)
    finally:
      frame.exit()
    return 0

  jax.vmap(run, in_axes=(), out_axes=None, axis_size=size, axis_name=axis_name)()


def _batch_dim(value, trace) -> Optional[int]:
  """The axis ``value`` is batched on by the ``jax.vmap`` trace ``trace``."""
  dims = set()
  for leaf in jax.tree.leaves(value):
    if isinstance(leaf, _BatchTracer) and (trace is None or leaf._trace is trace):
      d = leaf.batch_dim
      if d is not None:
        dims.add(int(d))
  if not dims:
    return None
  if len(dims) > 1:
    raise BatchAxisError(
      f'A State value is batched on different axes in different leaves: '
      f'{sorted(dims)}. All leaves of a State must share their batch axis.'
    )
  return dims.pop()


def _is_vmap(fn) -> bool:
  while isinstance(fn, functools.partial):
    fn = fn.func
  return fn is jax.vmap


# --------------------------------------------------------------------------
# static arguments (closed over, as jax.jit does)
# --------------------------------------------------------------------------

def _ensure_tuple(x) -> tuple:
  if x is None:
    return ()
  if isinstance(x, (int, str)):
    return (x,)
  return tuple(x)


def _static_positions(static_argnums, n: int) -> frozenset:
  out = set()
  for i in static_argnums:
    j = i + n if i < 0 else i
    if not 0 <= j < n:
      raise ValueError(
        f'static_argnums={tuple(static_argnums)} refers to positional argument '
        f'{i}, but the function was called with {n} positional argument(s).'
      )
    out.add(j)
  return frozenset(out)


def _close_static(f, in_axes, positions: frozenset, args: tuple):
  if not positions:
    return f, args, in_axes, ()
  n = len(args)
  fixed = {i: args[i] for i in positions}
  dyn = tuple(a for i, a in enumerate(args) if i not in positions)

  @functools.wraps(f)
  def closed(*dyn_args, **kwargs):
    it = iter(dyn_args)
    return f(*[fixed[i] if i in fixed else next(it) for i in range(n)], **kwargs)

  if isinstance(in_axes, tuple) and len(in_axes) == n:
    in_axes = tuple(ax for i, ax in enumerate(in_axes) if i not in positions)
  return closed, dyn, in_axes, tuple(sorted(fixed.items(), key=lambda kv: kv[0]))


# --------------------------------------------------------------------------
# the frame and the plan
# --------------------------------------------------------------------------

_RNG = object()  # the "axis" of a discovered random generator


class _MapFrame(Frame):
  """The frame of one pass of a mapped function.

  Owns the planned random generators and batched States. A State it does
  not own is classified when first touched: a :class:`RandomState`, or a
  State matching an ``state_in_axes`` filter with an integer axis, is
  *found* (the pass will be redone with it as an input; meanwhile it holds a
  one-lane placeholder); any other State is a broadcast read (passed on to
  the enclosing frame) or a captured write.
  """

  __slots__ = ('in_preds', 'reads', 'found', 'rng_type', 'outer_staging')

  def __init__(self, owner, owned, in_preds, outer_staging: bool = True):
    super().__init__(owner, owned)
    self.in_preds = in_preds
    # False when no compiling transformation encloses the call: the mapping
    # is traced afresh on every call, so closing over a State's current value
    # is safe.
    self.outer_staging = outer_staging
    self.reads: set[int] = set()
    self.found: list[tuple] = []
    self.rng_type = _random_state_type()

  def on_read(self, st) -> None:
    self.reads.add(id(st))
    super().on_read(st)

  def _found(self, st) -> bool:
    if isinstance(st, self.rng_type):
      self._touch(st)
      self.found.append((st, _RNG))
      return True
    for axis, pred in self.in_preds.items():
      if pred((), st):
        if axis is None:  # explicitly broadcast
          return False
        placeholder = _lane_placeholder(st._raw_value, axis)
        self._touch(st)
        object.__setattr__(st, '_raw_value', placeholder)
        self.found.append((st, axis))
        return True
    return False

  def unknown_read(self, st) -> None:
    if self._found(st):
      return
    parent = self.parent
    if parent is not None:
      parent.on_read(st)
    elif self.outer_staging and not st._trace_state.is_valid():
      _context.check_foreign_read(st)

  def unknown_write(self, st) -> None:
    if self._found(st):
      return
    if self.parent is not None:
      self.parent.on_read(st)
    self._touch(st)


class _NewStatesFrame(CaptureFrame):
  """A :class:`CaptureFrame` that may close over State values when the
  mapping is traced afresh (no compiling transformation around the call)."""

  __slots__ = ('outer_staging',)

  def __init__(self, owner, owned, outer_staging: bool):
    super().__init__(owner, owned)
    self.outer_staging = outer_staging

  def unknown_read(self, st) -> None:
    if self.parent is None and not self.outer_staging:
      return
    super().unknown_read(st)


class _Plan:
  """What one call feeds in and writes back (see the module docstring)."""

  __slots__ = ('in_states', 'rngs', 'writes', 'cands', 'verified')

  def __init__(self, in_states=(), rngs=(), writes=(), cands=None, verified=False):
    self.in_states: list = list(in_states)   # [(state, axis)]
    self.rngs: list = list(rngs)             # [RandomState]
    self.writes: list = list(writes)         # [(state, axis or None)]
    self.cands: dict = dict(cands or {})     # id -> (state, axis): auto read-modify-write
    self.verified = verified

  def write_key(self):
    return [(id(st), ax) for st, ax in self.writes]

  def prune(self, used: set) -> None:
    """Forgets the inputs a successful pass did not touch."""
    if any(id(st) not in used for st, _ in self.in_states):
      self.in_states = [(st, ax) for st, ax in self.in_states if id(st) in used]
    if any(id(r) not in used for r in self.rngs):
      self.rngs = [r for r in self.rngs if id(r) in used]


_RMW_WARNED: set = set()


# --------------------------------------------------------------------------
# StatefulMapping
# --------------------------------------------------------------------------

class StatefulMapping:
  """A mapped function whose States are batched according to filters.

  The engine behind :func:`vmap2` and :func:`pmap2`; build it directly to use
  a custom mapping primitive or static arguments.

  Args:
    fun: the function to map; it may read and write States via closures.
    in_axes, out_axes: as in :func:`jax.vmap`. Keyword arguments of a call
      are mapped over axis 0, except the ones named in ``static_argnames``.
    state_in_axes: which States are batched on input: ``{axis: selector}``
      or a bare selector (meaning ``{0: selector}``). A selector is a filter
      (a State type, a tag, a predicate, ... see
      :mod:`brainstate_nnx.util.filter`), a State, or a collection of States.
      Axis ``None`` marks States as explicitly broadcast.
    state_out_axes: the axis a *written* State is written back on, with the
      same selectors. A written State matching no selector follows
      ``unexpected_out_state_mapping``.
    unexpected_out_state_mapping: what to do with a State written with a
      batched value but not covered by ``state_out_axes``: ``'auto'``
      (default: write it back on the axis it is batched on; a State that is
      read and written and whose size along that axis already equals the
      mapped size is fed per lane instead, so it keeps its shape), ``'warn'``
      (written back batched, with a warning), ``'ignore'`` (written back
      batched, silently) or ``'raise'`` (:class:`~brainstate_nnx.BatchAxisError`).
    static_argnums, static_argnames: arguments that are not mapped but closed
      over (as compile-time constants, like ``jax.jit``'s).
    axis_env, return_only_write: accepted for BrainState compatibility; unused.
    axis_size, axis_name: as in :func:`jax.vmap`.
    name: a name used in messages.
    mapping_fn: the mapping primitive (``jax.vmap`` by default, or
      ``jax.pmap``), called as ``mapping_fn(f, in_axes=, out_axes=,
      axis_size=, axis_name=, **mapping_kwargs)``.
    mapping_kwargs: extra keyword arguments for ``mapping_fn``.

  Every :class:`~brainstate_nnx.random.RandomState` the function draws from
  is split into one key per lane, and advanced once per call.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.util.filter import OfType
    >>> from brainstate_nnx.transform._mapping import StatefulMapping
    >>> counter = brainstate.ShortTermState(jnp.zeros(3))
    >>> def accumulate(x):
    ...   counter.value = counter.value + x
    ...   return counter.value
    >>> f = StatefulMapping(accumulate, state_in_axes={0: OfType(brainstate.ShortTermState)})
    >>> f(jnp.asarray([1., 2., 3.]))
    Array([1., 2., 3.], dtype=float32)
    >>> counter.value
    Array([1., 2., 3.], dtype=float32)
  """

  def __init__(
    self,
    fun: Callable,
    in_axes: Any = 0,
    out_axes: Any = 0,
    state_in_axes: Any = None,
    state_out_axes: Any = None,
    unexpected_out_state_mapping: str = 'auto',
    static_argnums: Any = (),
    static_argnames: Any = (),
    axis_env: Optional[Sequence[tuple[Hashable, int]]] = None,
    return_only_write: bool = True,
    axis_size: Optional[int] = None,
    axis_name: AxisName | None = None,
    name: Optional[str] = None,
    mapping_fn: Callable = jax.vmap,
    mapping_kwargs: Optional[dict] = None,
  ):
    if not callable(fun):
      raise TypeError(f'StatefulMapping expects a callable, got {type(fun).__name__}')
    if unexpected_out_state_mapping not in _POLICIES:
      raise ValueError(
        f'Invalid unexpected_out_state_mapping {unexpected_out_state_mapping!r}; '
        f'expected one of {_POLICIES}.'
      )
    if isinstance(in_axes, list):
      in_axes = tuple(in_axes)
    self.origin_fun = fun
    self.name = name
    self.in_axes = in_axes
    self.out_axes = out_axes
    self._state_in_axes_spec = state_in_axes
    self._state_out_axes_spec = state_out_axes
    self.state_in_axes = _normalize_state_axes(state_in_axes)
    self.state_out_axes = _normalize_state_axes(state_out_axes)
    self.unexpected_out_state_mapping = unexpected_out_state_mapping
    self.static_argnums = _ensure_tuple(static_argnums)
    self.static_argnames = _ensure_tuple(static_argnames)
    self.axis_env = axis_env
    self.return_only_write = return_only_write
    self.axis_size = axis_size
    self.axis_name = axis_name
    self.mapping_fn = mapping_fn
    self.mapping_kwargs = dict(mapping_kwargs or {})
    self._vmap_like = _is_vmap(mapping_fn)
    self._plans: dict = {}
    self.__wrapped__ = fun
    self.__doc__ = getattr(fun, '__doc__', None)

  def __repr__(self):
    fname = getattr(self.origin_fun, '__name__', self.origin_fun)
    return f'<brainstate_nnx {self.name or "StatefulMapping"} of {fname!r}>'

  @property
  def _label(self) -> str:
    return self.name or 'StatefulMapping'

  # -- calling -------------------------------------------------------------
  def __call__(self, *args, **kwargs):
    in_axes = self.in_axes
    if isinstance(in_axes, tuple) and len(in_axes) != len(args):
      raise ValueError(
        f'{self._label}: in_axes has {len(in_axes)} entries but the function '
        f'got {len(args)} positional arguments.'
      )
    positions = _static_positions(self.static_argnums, len(args))
    f, dyn_args, dyn_axes, fixed = _close_static(self.origin_fun, in_axes, positions, args)
    static_kwargs = {k: v for k, v in kwargs.items() if k in self.static_argnames}
    dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
    key = _signature((fixed, tuple(sorted(static_kwargs.items()))), dyn_args, dyn_kwargs)

    plan = self._plans.get(key)
    cur = {'plan': plan, 'fresh': plan is None}
    if plan is None:
      cur['plan'] = self._probe_plan(f, dyn_args, dyn_axes, dyn_kwargs, static_kwargs)

    def attempt():
      plan = cur['plan']
      discovering = not self._vmap_like and not plan.verified
      try:
        out = self._run(plan, f, dyn_args, dyn_axes, dyn_kwargs, static_kwargs,
                        discovering=discovering)
      except _SizeError:
        if cur['fresh']:
          raise
        # a cached plan may list States the function no longer uses (e.g.
        # the model was re-initialized with another size): plan afresh
        cur['fresh'] = True
        raise Rediscover(
          self, self._probe_plan(f, dyn_args, dyn_axes, dyn_kwargs, static_kwargs))
      plan.verified = True
      if discovering:
        # the vmap passes agree; now run the real primitive
        raise Rediscover(self, plan)
      return out

    def update(new_plan):
      cur['plan'] = new_plan

    try:
      out = _context.retrace(self, attempt, update, limit=_MAX_PASSES)
    except RuntimeError as e:
      if 'kept changing' not in str(e):
        raise
      raise RuntimeError(  # pragma: no cover - would need an unstable function
        f'{self._label}: the States used by '
        f'{getattr(self.origin_fun, "__name__", "the function")} kept changing '
        f'between {_MAX_PASSES} traces; make the set of States it touches '
        'independent of the mapped values.'
      ) from None
    plan = cur['plan']
    if key not in self._plans and len(self._plans) >= _MAX_PLANS:
      self._plans.pop(next(iter(self._plans)))
    self._plans[key] = plan
    return out

  def _run(self, plan: _Plan, f, args, in_axes, kwargs, static_kwargs, discovering: bool):
    verify = self._vmap_like or discovering
    # (read through the frames first: an enclosing mapping may batch them)
    read = _context.read_value
    fed = list(plan.in_states)
    fed_vals = [read(st) for st, _ in fed]
    batch_size = _batch_size(args, in_axes, kwargs,
                             [(v, ax) for v, (_, ax) in zip(fed_vals, fed)], self.axis_size)

    # read-modify-write States whose value is already sized like the batch
    # are fed per lane too
    fed_ids = {id(st) for st, _ in fed}
    for i, (st, ax) in plan.cands.items():
      if i not in fed_ids:
        v = read(st)
        if _leaf_axis_size(v, ax) == batch_size:
          fed.append((st, ax))
          fed_vals.append(v)
          fed_ids.add(i)
    rngs = plan.rngs
    outer_staging = bool(_context.frames()) or _context.staging()
    if outer_staging and not _context.frames() and (fed or rngs):
      raise _context.TraceContextError(
        f'{self!r} maps {len(fed) + len(rngs)} State(s) but was called inside a '
        'raw JAX transformation that compiles (jax.jit, jax.lax.scan, ...): their '
        'current values would be baked in as constants and their updates lost. '
        'Use brainstate_nnx.transform.jit (or the matching brainstate_nnx '
        'transform) for the outer transformation.'
      )
    saved_keys = [read(r) for r in rngs]
    lane_keys = [r.split_key(batch_size) for r in rngs]
    backups = [r.split_key() for r in rngs]

    owned = [*rngs, *(st for st, _ in fed)]
    fed_axes = {id(st): ax for st, ax in fed}
    rng_ids = {id(r) for r in rngs}
    in_preds = self.state_in_axes
    label = self._label
    used: dict = {}
    box: dict = {}

    def collect(frame):
      if frame.found:
        return self._with_found(plan, frame.found), None
      if verify:
        spec, cands = self._classify(frame, box['trace'], plan, fed_axes, rng_ids, batch_size)
        if [(id(s), ax) for s, ax in spec] != plan.write_key():
          return _Plan(plan.in_states, plan.rngs, spec, cands), None
      else:
        written = {i for i in frame.written if i not in rng_ids}
        if written != {id(s) for s, _ in plan.writes}:
          return _Plan(plan.in_states, plan.rngs, plan.writes, plan.cands), None
      used['ids'] = frame.read | set(frame.written)
      return None, [st._raw_value for st, _ in plan.writes]

    def run(*a, **k):
      box['trace'] = _current_trace()
      return f(*a, **k)

    def body(a, k, keys, vals):
      frame = _MapFrame(self, owned, in_preds, outer_staging)
      out, (new_plan, write_vals) = _context.run_in_frame(
        frame, [*keys, *vals], run, a, {**k, **static_kwargs}, what=label,
        collect=collect)
      if new_plan is not None:
        raise Rediscover(self, new_plan)
      return out, write_vals

    if discovering:
      mapping = functools.partial(jax.vmap, axis_size=self.axis_size, axis_name=self.axis_name)
    else:
      mapping = functools.partial(self.mapping_fn, axis_size=self.axis_size,
                                  axis_name=self.axis_name, **self.mapping_kwargs)
    mapped = mapping(
      body,
      in_axes=(in_axes, 0, 0 if rngs else None, [ax for _, ax in fed] or 0),
      out_axes=(self.out_axes, [ax for _, ax in plan.writes] or 0),
    )
    write = _context.write_value
    try:
      out, write_vals = mapped(args, kwargs, lane_keys, fed_vals)
    except Rediscover:
      for r, k in zip(rngs, saved_keys):
        write(r, k)
      raise
    except BaseException:
      for r, k in zip(rngs, backups):
        write(r, k)
      raise
    if discovering:
      # the result of a discovery pass is not used: rewind the generators
      for r, k in zip(rngs, saved_keys):
        write(r, k)
      return None
    for (st, _), v in zip(plan.writes, write_vals):
      write(st, v)
    for r, k in zip(rngs, backups):
      write(r, k)
    ids = used.get('ids')
    if ids is not None:
      plan.prune(ids)
    return out

  # -- plan updates --------------------------------------------------------
  def _probe_plan(self, f, args, in_axes, kwargs, static_kwargs) -> _Plan:
    """A first plan, from one lane run through a :class:`_MapFrame`.

    The lane runs under a ``jax.vmap`` that maps nothing: values stay
    concrete (Python control flow on them works as under a real ``jax.vmap``)
    and the axis name is bound for collectives. State changes are undone.
    """
    frame = _MapFrame(self, (), self.state_in_axes)
    _run_one_lane(frame, functools.partial(f, **static_kwargs), args, in_axes, kwargs,
                  self.axis_name, self.axis_size)
    return self._with_found(_Plan(), frame.found)

  def _with_found(self, plan: _Plan, found) -> _Plan:
    in_states = list(plan.in_states)
    rngs = list(plan.rngs)
    have = {id(s) for s, _ in in_states} | {id(r) for r in rngs}
    for st, ax in found:
      if id(st) in have:
        continue
      have.add(id(st))
      if ax is _RNG:
        rngs.append(st)
        continue
      matched, out_ax = _first_match(self.state_out_axes, st)
      if matched and out_ax is not None and out_ax != ax:
        raise BatchAxisError(
          f'{_context.describe(st)} is batched on input axis {ax} but '
          f'state_out_axes maps it to axis {out_ax}.'
        )
      in_states.append((st, ax))
    return _Plan(in_states, rngs, plan.writes, plan.cands)

  def _classify(self, frame: _MapFrame, trace, plan: _Plan, fed_axes, rng_ids, batch):
    """``(spec, candidates)``: the write-back axis of every written State."""
    spec = []
    cands = {}
    planned = {id(s) for s, _ in plan.writes}
    policy = self.unexpected_out_state_mapping
    for i, st in frame.written.items():
      if i in rng_ids:
        continue
      if i in fed_axes:
        spec.append((st, fed_axes[i]))
        if i in plan.cands:
          cands[i] = plan.cands[i]
        continue
      det = _batch_dim(st._raw_value, trace)
      matched, out_ax = _first_match(self.state_out_axes, st)
      if matched:
        if out_ax is None and det is not None:
          raise BatchAxisError(
            f'{_context.describe(st)} is declared unbatched (axis None) in '
            f'state_out_axes but was written with a value batched on axis {det}.'
          )
        spec.append((st, out_ax if det is not None else None))
        continue
      if det is None:
        spec.append((st, None))
        continue
      if policy == 'raise':
        raise BatchAxisError(
          f'{_context.describe(st)} was written with a value batched on axis '
          f'{det} but is not covered by state_out_axes. Declare it in '
          "state_out_axes or set unexpected_out_state_mapping to 'auto', 'warn' "
          "or 'ignore'."
        )
      if policy == 'warn' and i not in planned:
        warnings.warn(
          f'{_context.describe(st)} was written with a value batched on axis '
          f'{det} but is not covered by state_out_axes; it is written back '
          'batched.',
          UserWarning,
          stacklevel=2,
        )
      spec.append((st, det))
      if policy == 'auto' and i in frame.reads:
        cands[i] = (st, det)
        original = frame.saved[i][1] if i in frame.saved else st._raw_value
        size = _leaf_axis_size(original, det)
        if i not in planned and i not in _RMW_WARNED:
          if size != batch:
            _RMW_WARNED.add(i)
            warnings.warn(
              f'{_context.describe(st)} is read and written with a value '
              f'batched on axis {det}, is not declared in state_in_axes / '
              f'state_out_axes, and its size along that axis ({size}) is not '
              f'the mapped size ({batch}): it gains a new axis. Declare it to '
              'make the intent explicit.',
              UserWarning,
              stacklevel=2,
            )
    return spec, cands


# --------------------------------------------------------------------------
# vmap2 / pmap2
# --------------------------------------------------------------------------

def vmap2(
  fn: Callable | None = None,
  *,
  in_axes: Any = 0,
  out_axes: Any = 0,
  axis_name: AxisName | None = None,
  axis_size: Optional[int] = None,
  spmd_axis_name: AxisName | Tuple[AxisName, ...] | None = None,
  state_in_axes: Any = None,
  state_out_axes: Any = None,
  unexpected_out_state_mapping: str = 'auto',
):
  """Vectorizes ``fn`` like :func:`jax.vmap`, batching States chosen by filters.

  States matching ``state_in_axes`` (``{axis: filter}``, or a bare filter for
  axis 0) are fed one slice per lane and written back batched. A State the
  function writes is written back on the axis given by ``state_out_axes``, or
  -- when no selector covers it -- on the axis its new value is batched on
  (``unexpected_out_state_mapping='auto'``); a State written with an
  unbatched value keeps a single value. Random generators are split per lane.
  Used as a decorator when ``fn`` is omitted. Keyword arguments of the call
  are mapped over axis 0.

  Returns a :class:`StatefulMapping`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.util.filter import OfType
    >>> from brainstate_nnx.transform._mapping import vmap2
    >>> w = brainstate.ParamState(jnp.array([1., 2., 3.]))   # one weight per lane
    >>> total = brainstate.ShortTermState(jnp.zeros(()))     # written batched
    >>> @vmap2(state_in_axes=OfType(brainstate.ParamState))
    ... def step(x):
    ...   total.value = w.value * x
    ...   return w.value + x
    >>> step(jnp.ones(3))
    Array([2., 3., 4.], dtype=float32)
    >>> total.value                                          # axis inferred
    Array([1., 2., 3.], dtype=float32)
  """
  if fn is None:
    return functools.partial(
      vmap2, in_axes=in_axes, out_axes=out_axes, axis_name=axis_name,
      axis_size=axis_size, spmd_axis_name=spmd_axis_name,
      state_in_axes=state_in_axes, state_out_axes=state_out_axes,
      unexpected_out_state_mapping=unexpected_out_state_mapping,
    )
  return StatefulMapping(
    fn,
    in_axes=in_axes,
    out_axes=out_axes,
    state_in_axes=state_in_axes,
    state_out_axes=state_out_axes,
    axis_name=axis_name,
    axis_size=axis_size,
    unexpected_out_state_mapping=unexpected_out_state_mapping,
    mapping_fn=functools.partial(jax.vmap, spmd_axis_name=spmd_axis_name),
    name='vmap2',
  )


def _argnums_given(x) -> bool:
  if x is None:
    return False
  if isinstance(x, int):
    return True
  try:
    return len(tuple(x)) > 0
  except TypeError:
    return True


def pmap2(
  fn: Callable | None = None,
  axis_name: AxisName | None = None,
  *,
  in_axes: Any = 0,
  out_axes: Any = 0,
  static_broadcasted_argnums: int | Iterable[int] = (),
  devices=None,
  backend: Optional[str] = None,
  axis_size: Optional[int] = None,
  donate_argnums: int | Iterable[int] = (),
  global_arg_shapes=None,
  state_in_axes: Any = None,
  state_out_axes: Any = None,
  unexpected_out_state_mapping: str = 'auto',
):
  """Runs ``fn`` once per device like :func:`jax.pmap`, with :func:`vmap2`'s
  State semantics.

  The plan (which States are per-device inputs, on which axis each written
  State comes back) is found by ``jax.vmap`` traces on the first call; then
  the function runs under ``jax.pmap``. ``static_broadcasted_argnums`` and
  ``donate_argnums`` are not supported (the arguments are regrouped before
  they reach ``jax.pmap``) and raise :class:`NotImplementedError`;
  ``global_arg_shapes`` is ignored by current JAX.

  Example (on a machine with several devices)::

    >>> import jax, jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform._mapping import pmap2
    >>> n = jax.local_device_count()
    >>> param = brainstate.ParamState(jnp.ones(2))
    >>> @pmap2(axis_name='d', state_out_axes={0: brainstate.ParamState})
    ... def update(delta):
    ...   param.value = param.value + delta        # one copy per device
    ...   return jax.lax.psum(delta, 'd')          # the same on every device
    >>> update(jnp.ones((n, 2))).shape == (n, 2) and param.value.shape == (n, 2)
    True
  """
  if fn is None:
    return functools.partial(
      pmap2, axis_name=axis_name, in_axes=in_axes, out_axes=out_axes,
      static_broadcasted_argnums=static_broadcasted_argnums, devices=devices,
      backend=backend, axis_size=axis_size, donate_argnums=donate_argnums,
      global_arg_shapes=global_arg_shapes, state_in_axes=state_in_axes,
      state_out_axes=state_out_axes,
      unexpected_out_state_mapping=unexpected_out_state_mapping,
    )
  if _argnums_given(static_broadcasted_argnums):
    raise NotImplementedError(
      'pmap2 does not support static_broadcasted_argnums: the arguments are '
      'regrouped before they reach jax.pmap. Close over static values instead.'
    )
  if _argnums_given(donate_argnums):
    raise NotImplementedError(
      'pmap2 does not support donate_argnums: the arguments are regrouped '
      'before they reach jax.pmap, so the indices would donate the wrong buffers.'
    )
  return StatefulMapping(
    fn,
    in_axes=in_axes,
    out_axes=out_axes,
    state_in_axes=state_in_axes,
    state_out_axes=state_out_axes,
    axis_name=axis_name,
    axis_size=axis_size,
    mapping_fn=functools.partial(jax.pmap, devices=devices, backend=backend),
    unexpected_out_state_mapping=unexpected_out_state_mapping,
    name='pmap2',
  )


# --------------------------------------------------------------------------
# abstract probing
# --------------------------------------------------------------------------

def _probe(fn: Callable, args: tuple = (), in_axes=None, kwargs=None,
           axis_env=None, trace_all: bool = False) -> tuple[list, list]:
  """``(touched, written)`` States of ``fn(*args, **kwargs)``, found abstractly.

  Leaves of ``args`` mapped by ``in_axes`` are replaced by abstract one-lane
  values; with ``trace_all`` the other array leaves are abstract too (at
  their full shape); the remaining leaves and ``kwargs`` are closed over
  unchanged. ``axis_env`` binds axis names for collectives.
  """
  leaves, tree, axes = _leaf_axes(args, in_axes)
  traced = []
  structs = []
  for i, (x, ax) in enumerate(zip(leaves, axes)):
    if ax is None and not (trace_all and isinstance(x, (jax.Array, np.ndarray))):
      continue
    t = jax.typeof(x)
    shape = tuple(t.shape)
    if ax is not None:
      a = ax + len(shape) if ax < 0 else ax
      shape = shape[:a] + shape[a + 1:]
    traced.append(i)
    structs.append(jax.ShapeDtypeStruct(shape, t.dtype))
  def run(*lane):
    filled = list(leaves)
    for i, v in zip(traced, lane):
      filled[i] = v
    fn(*tree.unflatten(filled), **(kwargs or {}))

  return _context.probe(run, tuple(structs), axis_env=axis_env, report=False)


# --------------------------------------------------------------------------
# map
# --------------------------------------------------------------------------

def _validate_leading_lengths(xs) -> int:
  leaves = jax.tree.leaves(xs)
  if not leaves:
    raise ValueError('map requires at least one array input.')
  for leaf in leaves:
    if np.ndim(leaf) == 0:
      raise ValueError(
        'map requires array inputs with a leading axis to map over; got a '
        '0-d (scalar) input.'
      )
  length = np.shape(leaves[0])[0]
  for leaf in leaves:
    if np.shape(leaf)[0] != length:
      raise ValueError(
        f'All inputs to map must share the same leading length; got {length} '
        f'and {np.shape(leaf)[0]}.'
      )
  return length


def _batch_and_remainder(x, batch_size: int):
  leaves, tree = jax.tree.flatten(x)
  if not leaves:
    raise ValueError('map requires at least one array input to determine the leading length.')
  length = leaves[0].shape[0]
  for leaf in leaves:
    if leaf.shape[0] != length:
      raise ValueError(f'All inputs must have the same length. Got {length} and {leaf.shape[0]}.')
  n_batches, n_rest = divmod(length, batch_size)
  full = n_batches * batch_size
  batched = [leaf[:full].reshape(n_batches, batch_size, *leaf.shape[1:]) for leaf in leaves]
  rest = [leaf[full:] for leaf in leaves] if n_rest else None
  return tree.unflatten(batched), (tree.unflatten(rest) if rest is not None else None)


def _merge_two_leading(x):
  return x.reshape(-1, *x.shape[2:])


def _ensure_no_state_writes(f, xs) -> None:
  rng_type = _random_state_type()
  _, written = _probe(f, tuple(xs), in_axes=0)
  written = [st for st in written if not isinstance(st, rng_type)]
  if written:
    raise ValueError(
      'map(..., batch_size=...) cannot run a function that writes State: the '
      'batched path vectorizes each block with vmap2 inside scan (found '
      f'{len(written)} written State(s): '
      + ', '.join(_context.describe(s) for s in written[:3])
      + '). Drop batch_size to map sequentially, or use vmap2 on the whole batch.'
    )


def map(f: Callable, *xs, batch_size: Optional[int] = None) -> Any:
  """Applies ``f`` to every slice of ``xs`` along their leading axis.

  Without ``batch_size`` the slices are processed one after the other by a
  state-aware :func:`~brainstate_nnx.transform.scan` (low memory; ``f`` may
  read and write States, each step seeing the previous step's writes). With
  ``batch_size`` blocks of that many slices are vectorized with
  :func:`vmap2` inside the scan and a shorter remainder block is vectorized
  last; ``f`` may then draw random numbers but must not write other States.
  The results are stacked along a new leading axis.

  Example::

    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform._mapping import map
    >>> map(lambda x, y: x * y, jnp.arange(5.), jnp.full(5, 2.), batch_size=2)
    Array([0., 2., 4., 6., 8.], dtype=float32)
  """
  from ._loops import scan

  _validate_leading_lengths(xs)
  if batch_size is None:
    _, ys = scan(lambda _, x: ((), f(*x)), (), xs)
    return ys
  if not (isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size > 0):
    raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}.')
  _ensure_no_state_writes(f, xs)
  blocks, rest = _batch_and_remainder(xs, batch_size)
  vmapped = vmap2(f)
  _, ys = scan(lambda _, x: ((), vmapped(*x)), (), blocks)
  if rest is None:
    return jax.tree.map(_merge_two_leading, ys)
  rest_ys = vmap2(f)(*rest)
  return jax.tree.map(
    lambda a, b: jax.lax.concatenate([_merge_two_leading(a), b], dimension=0),
    ys, rest_ys,
  )


# --------------------------------------------------------------------------
# ensembles: States created inside the mapped function
# --------------------------------------------------------------------------

class _ProbeDepth(threading.local):
  def __init__(self):
    self.depth = 0


_PROBE_DEPTH = _ProbeDepth()


@contextlib.contextmanager
def _new_state_probe():
  _PROBE_DEPTH.depth += 1
  try:
    yield
  finally:
    _PROBE_DEPTH.depth -= 1


def in_new_state_probe() -> bool:
  """Whether the code runs inside the discovery pass of a ``*_new_states`` call.

  :func:`vmap_new_states`, :func:`vmap2_new_states` and
  :func:`pmap2_new_states` first run the function on one lane to find the
  random generators it uses (undoing its State changes), then run it for
  real under the mapping. The States created by the discovery pass are
  thrown away. Code with a one-off
  side effect tied to the created States (say, building and caching a graph
  over them) can skip it while this returns ``True``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform._mapping import vmap_new_states, in_new_state_probe
    >>> seen = []
    >>> @vmap_new_states(axis_size=2)
    ... def build():
    ...   seen.append(in_new_state_probe())
    ...   return brainstate.State(jnp.zeros(())).value
    >>> build().shape, seen
    ((2,), [True, False])
  """
  return _PROBE_DEPTH.depth > 0


def _new_state_resolver(state_out_axes) -> tuple[list, list]:
  """``([(axis, predicate)], axes in output order)`` for newly created States.

  First match wins: axis ``None`` (States tagged ``INIT_NO_BATCHING`` or
  selected by a ``None`` entry), then the user's non-zero axes in order, then
  axis 0 (the user's selector, or everything).
  """
  if state_out_axes is None:
    state_out_axes = {}
  if not isinstance(state_out_axes, dict):
    state_out_axes = {0: state_out_axes}
  user = {k: _selector(v) for k, v in state_out_axes.items()}
  no_batch = to_predicate(INIT_NO_BATCHING)
  ordered = []
  if None in user:
    un = user[None]
    ordered.append((None, lambda p, s: un(p, s) or no_batch(p, s)))
  else:
    ordered.append((None, no_batch))
  for axis, pred in user.items():
    if axis is not None and axis != 0:
      ordered.append((axis, pred))
  ordered.append((0, user.get(0, Everything())))
  axes = list(dict.fromkeys(a for a, _ in ordered))
  return ordered, axes


def _resolve_axis(st, ordered):
  for axis, pred in ordered:
    if pred((), st):
      return axis
  return 0


def _settle(st, value) -> None:
  """Gives a State created inside a trace its value outside it."""
  object.__setattr__(st, '_trace_state', _nnx_tracers.TraceState())
  object.__setattr__(st, '_raw_value', value)


def _map_new_states(
  fun: Callable,
  args: tuple,
  *,
  behavior: str,
  in_axes: Any = 0,
  out_axes: Any = 0,
  axis_size: Optional[int] = None,
  axis_name: AxisName | None = None,
  spmd_axis_name=None,
  state_tag: Optional[str] = None,
  state_to_exclude=None,
  state_out_axes=None,
  owner=None,
):
  """Runs ``fun(*args)`` mapped, batching the States it creates.

  Returns ``(out, {axis: [new States]})``.
  """
  if behavior not in ('vmap', 'pmap'):
    raise ValueError(f"Invalid behavior {behavior!r}; must be 'vmap' or 'pmap'.")
  rng_type = _random_state_type()
  ordered, axes_order = _new_state_resolver(state_out_axes)
  exclude = to_predicate(state_to_exclude) if state_to_exclude is not None else None

  # 1. discovery: which random generators does ``fun`` draw from?
  probe = ProbeFrame(owner)
  with _new_state_probe():
    _run_one_lane(probe, fun, args, in_axes, None, axis_name, axis_size)
  rngs = [st for st in probe.touched.values() if isinstance(st, rng_type)]

  # 2. one mapped pass, each lane with its own keys
  n = _batch_size(args, in_axes, {}, [], axis_size)
  lane_keys = [r.split_key(n) for r in rngs]
  backups = [r.split_key() for r in rngs]
  box: dict = {}
  outer_staging = bool(_context.frames()) or _context.staging()

  def collect(frame):
    catcher = box.pop('catcher')
    groups = {ax: [] for ax in axes_order}
    excluded = []
    seen = set()
    for st in catcher:
      if id(st) in seen:
        continue
      seen.add(id(st))
      if exclude is not None and exclude((), st):
        excluded.append(st)
      else:
        groups[_resolve_axis(st, ordered)].append(st)
    others = frame.written_other()
    box.update(groups=groups, excluded=excluded, others=others)
    return (tuple([st._raw_value for st in groups[ax]] for ax in axes_order),
            [st._raw_value for st in excluded], [st._raw_value for st in others])

  def run(*a):
    with catch_new_states() as catcher:
      box['catcher'] = catcher
      return fun(*a)

  def body(a, keys, _dummy):
    frame = _NewStatesFrame(owner, rngs, outer_staging)
    out, (vals, ex_vals, other_vals) = _context.run_in_frame(
      frame, list(keys), run, a, what=f'{behavior}_new_states', collect=collect)
    return out, vals, ex_vals, other_vals

  out_spec = (out_axes, tuple(axes_order), None, None)
  write = _context.write_value
  try:
    if behavior == 'vmap':
      mapped = jax.vmap(body, in_axes=(in_axes, 0 if rngs else None, None),
                        out_axes=out_spec, axis_size=axis_size, axis_name=axis_name,
                        spmd_axis_name=spmd_axis_name)
      res = mapped(args, lane_keys, None)
    elif rngs:
      mapped = jax.pmap(body, in_axes=(in_axes, 0, None), out_axes=out_spec,
                        axis_size=axis_size, axis_name=axis_name)
      res = mapped(args, lane_keys, None)
    else:  # jax.pmap needs one mapped argument
      mapped = jax.pmap(body, in_axes=(in_axes, None, 0), out_axes=out_spec,
                        axis_size=axis_size, axis_name=axis_name)
      res = mapped(args, lane_keys, jnp.arange(n))
  except ValueError as e:
    for r, k in zip(rngs, backups):
      write(r, k)
    if 'out_axes' in str(e) and (box.get('excluded') or box.get('others')):
      raise BatchAxisError(
        'A State that is not batched by this transform (a pre-existing State, '
        'or a new State excluded by state_to_exclude) was written with a '
        'batched value: '
        + ', '.join(_context.describe(s) for s in box.get('excluded', []) + box.get('others', []))
      ) from e
    raise
  except BaseException:
    for r, k in zip(rngs, backups):
      write(r, k)
    raise
  out, vals, ex_vals, other_vals = res

  groups = box['groups']
  result: dict = {}
  for ax, vs in zip(axes_order, vals):
    for st, v in zip(groups[ax], vs):
      _settle(st, v)
      result.setdefault(ax, []).append(st)
  for st, v in zip(box['excluded'], ex_vals):
    _settle(st, v)
  for st, v in zip(box['others'], other_vals):
    write(st, v)
  for r, k in zip(rngs, backups):
    write(r, k)
  if state_tag is not None:
    for sts in result.values():
      for st in sts:
        st.add_tag(state_tag)
  return out, result


def vmap_new_states(
  fun: Callable | None = None,
  *,
  in_axes: Any = 0,
  out_axes: Any = 0,
  axis_name: AxisName | None = None,
  axis_size: Optional[int] = None,
  spmd_axis_name: AxisName | Tuple[AxisName, ...] | None = None,
  state_tag: Optional[str] = None,
  state_to_exclude: Any = None,
  in_states: Any = None,
  out_states: Any = None,
):
  """Vectorizes ``fun`` over the States it *creates*: builds an ensemble.

  Every State constructed while ``fun`` runs (for instance by a module's
  ``init_state`` assigning new States to attributes) gets a leading batch
  axis: lane ``i`` holds member ``i``'s value. Random generators are split
  per lane, so every member draws its own numbers (the same numbers as
  BrainState for the same seed). States tagged ``INIT_NO_BATCHING`` keep a
  single value, as do new States matching ``state_to_exclude``; ``state_tag``
  is added to the batched new States.

  ``fun`` runs twice: once on one lane to find the random generators it uses
  (see :func:`in_new_state_probe`; its State changes are undone), then
  mapped. ``in_states`` /
  ``out_states`` are not supported (use :func:`vmap2` for existing States);
  keyword arguments of the call are not supported.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform._mapping import vmap_new_states
    >>> class Neuron(brainstate.nn.Module):
    ...   def init_state(self):
    ...     self.v = brainstate.HiddenState(brainstate.random.normal(size=2))
    >>> net = Neuron()
    >>> brainstate.random.seed(0)
    >>> _ = vmap_new_states(net.init_state, axis_size=4)()
    >>> net.v.value.shape                      # 4 members, 2 values each
    (4, 2)
    >>> bool((net.v.value[0] != net.v.value[1]).all())
    True
  """
  if fun is None:
    return functools.partial(
      vmap_new_states, in_axes=in_axes, out_axes=out_axes, axis_name=axis_name,
      axis_size=axis_size, spmd_axis_name=spmd_axis_name, state_tag=state_tag,
      state_to_exclude=state_to_exclude, in_states=in_states, out_states=out_states,
    )
  if isinstance(axis_size, int) and axis_size <= 0:
    raise ValueError(f'axis_size must be greater than 0, got {axis_size}.')
  if in_states is not None or out_states is not None:
    raise ValueError(
      'vmap_new_states does not take in_states/out_states: it batches the '
      'States created inside the function. Use vmap (or vmap2) to map over '
      'existing States.'
    )
  if isinstance(in_axes, list):
    in_axes = tuple(in_axes)

  @functools.wraps(fun)
  def mapped(*args, **kwargs):
    if kwargs:
      raise NotImplementedError(
        'Keyword arguments are not supported by vmap_new_states; pass them '
        'positionally or close over them.'
      )
    out, _ = _map_new_states(
      fun, args, behavior='vmap', in_axes=in_axes, out_axes=out_axes,
      axis_size=axis_size, axis_name=axis_name, spmd_axis_name=spmd_axis_name,
      state_tag=state_tag, state_to_exclude=state_to_exclude, owner=mapped,
    )
    return out

  return mapped


def _discard(_result) -> None:
  """Drops a value (``Module.init_all_states`` returns the caught States)."""


def vmap2_new_states(
  module,
  init_kwargs: Dict,
  state_tag: Optional[str] = None,
  axis_size: Optional[int] = None,
  state_out_axes: Any = None,
  spmd_axis_name: AxisName | Tuple[AxisName, ...] | None = None,
) -> Dict:
  """Runs ``module.init_all_states(**init_kwargs)`` as ``axis_size`` members.

  The States the initialization creates get a batch axis -- axis 0, or the
  one ``state_out_axes`` (``{axis: selector}``) assigns; axis ``None`` and the
  ``INIT_NO_BATCHING`` tag keep a single value -- and every member draws its
  own random numbers. Returns ``{axis: [new States]}``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform._mapping import vmap2_new_states
    >>> class Counter(brainstate.nn.Module):
    ...   def init_state(self):
    ...     self.count = brainstate.ShortTermState(jnp.zeros(()))
    >>> m = Counter()
    >>> groups = vmap2_new_states(m, init_kwargs={}, axis_size=5)
    >>> m.count.value.shape, groups[0] == [m.count]
    ((5,), True)
  """
  if axis_size is None:
    raise ValueError('vmap2_new_states requires an explicit axis_size.')
  _, result = _map_new_states(
    lambda: _discard(module.init_all_states(**init_kwargs)), (), behavior='vmap',
    axis_size=axis_size, spmd_axis_name=spmd_axis_name, state_tag=state_tag,
    state_out_axes=state_out_axes, owner=module,
  )
  return result


def pmap2_new_states(
  module,
  init_kwargs: Dict,
  state_tag: Optional[str] = None,
  axis_size: Optional[int] = None,
  state_out_axes: Any = None,
  axis_name: AxisName | None = None,
) -> Dict:
  """:func:`vmap2_new_states` across devices with ``jax.pmap``.

  ``axis_size`` defaults to ``jax.local_device_count()``. Returns
  ``{axis: [new States]}``; each batched State holds one member per device.

  Example::

    >>> import jax, jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform._mapping import pmap2_new_states
    >>> class Member(brainstate.nn.Module):
    ...   def init_state(self):
    ...     self.w = brainstate.ParamState(brainstate.random.randn(3))
    >>> m = Member()
    >>> _ = pmap2_new_states(m, init_kwargs={})
    >>> m.w.value.shape == (jax.local_device_count(), 3)
    True
  """
  if axis_size is None:
    axis_size = jax.local_device_count()
  _, result = _map_new_states(
    lambda: _discard(module.init_all_states(**init_kwargs)), (), behavior='pmap',
    axis_size=axis_size, axis_name=axis_name, state_tag=state_tag,
    state_out_axes=state_out_axes, owner=module,
  )
  return result
