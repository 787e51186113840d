"""Filter-driven, state-aware mapping: ``StatefulMapping``, ``vmap2`` and ``pmap2``.

(``map`` lives in :mod:`._map`, the ``*_new_states`` ensemble builders in
:mod:`._new_states`, the lane helpers they share in :mod:`._lanes`.)

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

import functools
import warnings
from typing import Any, Callable, Hashable, Iterable, Optional, Sequence, Tuple

import jax
from .. import _context
from .._context import Frame, Rediscover
from .._error import BatchAxisError
from ._lanes import (
  SizeError, batch_dim, mapped_size, close_static, current_trace, ensure_tuple, first_match, is_vmap, lane_placeholder, leaf_axis_size, normalize_state_axes, random_state_type, run_one_lane, signature, static_positions,
)

__all__ = ['StatefulMapping', 'vmap2', 'pmap2', 'INIT_NO_BATCHING']

AxisName = Hashable

#: Tag of States that ``*_new_states`` transforms must not batch.
INIT_NO_BATCHING = 'INIT_NO_BATCHING'

_POLICIES = ('auto', 'raise', 'warn', 'ignore')
_MAX_PASSES = 8
_MAX_PLANS = 32


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
    self.rng_type = random_state_type()

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
        placeholder = lane_placeholder(st._raw_value, axis)
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
    >>> from brainstate_nnx.transform import StatefulMapping
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
    self.state_in_axes = normalize_state_axes(state_in_axes)
    self.state_out_axes = normalize_state_axes(state_out_axes)
    self.unexpected_out_state_mapping = unexpected_out_state_mapping
    self.static_argnums = ensure_tuple(static_argnums)
    self.static_argnames = ensure_tuple(static_argnames)
    self.axis_env = axis_env
    self.return_only_write = return_only_write
    self.axis_size = axis_size
    self.axis_name = axis_name
    self.mapping_fn = mapping_fn
    self.mapping_kwargs = dict(mapping_kwargs or {})
    self._vmap_like = is_vmap(mapping_fn)
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
    positions = static_positions(self.static_argnums, len(args))
    f, dyn_args, dyn_axes, fixed = close_static(self.origin_fun, in_axes, positions, args)
    static_kwargs = {k: v for k, v in kwargs.items() if k in self.static_argnames}
    dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
    key = signature((fixed, tuple(sorted(static_kwargs.items()))), dyn_args, dyn_kwargs)

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
      except SizeError:
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
    batch_size = mapped_size(args, in_axes, kwargs,
                             [(v, ax) for v, (_, ax) in zip(fed_vals, fed)], self.axis_size)

    # read-modify-write States whose value is already sized like the batch
    # are fed per lane too
    fed_ids = {id(st) for st, _ in fed}
    for i, (st, ax) in plan.cands.items():
      if i not in fed_ids:
        v = read(st)
        if leaf_axis_size(v, ax) == batch_size:
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
      box['trace'] = current_trace()
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
    run_one_lane(frame, functools.partial(f, **static_kwargs), args, in_axes, kwargs,
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
      matched, out_ax = first_match(self.state_out_axes, st)
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
      det = batch_dim(st._raw_value, trace)
      matched, out_ax = first_match(self.state_out_axes, st)
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
        size = leaf_axis_size(original, det)
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
    >>> from brainstate_nnx.transform import vmap2
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
    >>> from brainstate_nnx.transform import pmap2
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


