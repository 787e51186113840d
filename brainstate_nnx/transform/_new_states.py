"""The ``*_new_states`` ensemble builders: ``vmap_new_states``,
``vmap2_new_states`` and ``pmap2_new_states``.

The function (typically a model constructor) runs once per lane under
``jax.vmap`` / ``jax.pmap``; the States it creates come out stacked along the
mapped axis (per ``state_out_axes``), random generators it draws from are
split per lane, and States it writes that already existed are written back.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp

from .. import _context
from .._context import CaptureFrame, ProbeFrame
from .._error import BatchAxisError
from flax.nnx import tracers as _nnx_tracers

from .._state import catch_new_states
from ..util.filter import Everything, to_predicate
from ._lanes import (
  mapped_size, random_state_type, run_one_lane, selector,
)
from ._mapping import INIT_NO_BATCHING, AxisName, StatefulMapping

__all__ = ['vmap_new_states', 'vmap2_new_states', 'pmap2_new_states', 'in_new_state_probe']

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
    >>> from brainstate_nnx.transform import vmap_new_states, in_new_state_probe
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
  user = {k: selector(v) for k, v in state_out_axes.items()}
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
  rng_type = random_state_type()
  ordered, axes_order = _new_state_resolver(state_out_axes)
  exclude = to_predicate(state_to_exclude) if state_to_exclude is not None else None

  # 1. discovery: which random generators does ``fun`` draw from?
  probe = ProbeFrame(owner)
  with _new_state_probe():
    run_one_lane(probe, fun, args, in_axes, None, axis_name, axis_size)
  rngs = [st for st in probe.touched.values() if isinstance(st, rng_type)]

  # 2. one mapped pass, each lane with its own keys
  n = mapped_size(args, in_axes, {}, [], axis_size)
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
    >>> from brainstate_nnx.transform import vmap_new_states
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


def _run_init(module, init_kwargs) -> None:
  """Runs ``module.init_all_states(**init_kwargs)`` for its effect (it returns the caught States)."""
  module.init_all_states(**init_kwargs)


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
    >>> from brainstate_nnx.transform import vmap2_new_states
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
    lambda: _run_init(module, init_kwargs), (), behavior='vmap',
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
    >>> from brainstate_nnx.transform import pmap2_new_states
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
    lambda: _run_init(module, init_kwargs), (), behavior='pmap',
    axis_size=axis_size, axis_name=axis_name, state_tag=state_tag,
    state_out_axes=state_out_axes, owner=module,
  )
  return result

