"""State-aware ``vmap``.

``vmap(fn, in_states=..., out_states=...)`` vectorizes ``fn`` like
:func:`jax.vmap`. States declared in ``in_states`` are mapped on input (their
value carries the batch axis) and written back batched; States declared only
in ``out_states`` are broadcast on input and written back batched. Any other
State is broadcast: reading it is fine, writing it an unbatched value is
fine, writing it a batched value raises :class:`~brainstate_nnx.BatchAxisError`.

Implementation: ``jax.vmap`` over ``(in_state_values, *args)``; a
:class:`~brainstate_nnx._context.CaptureFrame` swaps the batch tracers into
the declared States while ``fn`` runs and captures writes, which leave the
vmapped function as outputs (``out_axes`` 0 for declared States, ``None`` for
the others) and are assigned afterwards.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Sequence

import jax
import jax.numpy as jnp

from .. import _context
from .._context import CaptureFrame
from .._error import BatchAxisError
from .._state import State
from ._lanes import mapped_size, random_state_type

__all__ = ['vmap']


def _collect_states(obj, what: str) -> list:
  """Flattens a State / sequence / dict of States."""
  if obj is None:
    return []
  if isinstance(obj, State):
    return [obj]
  if isinstance(obj, dict):
    obj = list(obj.values())
  out = []
  for x in jax.tree.leaves(obj, is_leaf=lambda x: isinstance(x, State)):
    if not isinstance(x, State):
      raise TypeError(f'{what} must contain States only, got {type(x).__name__}')
    out.append(x)
  return out


def _axis_groups(spec, what: str) -> Dict[int, list]:
  """``{axis: [states]}`` from BrainState's in_states/out_states forms."""
  if spec is None:
    return {}
  # ``{axis: {name: State}}`` (int keys, dict values) is the axis form, as in
  # BrainState; any other mapping or sequence is a collection mapped on 0.
  if isinstance(spec, dict) and all(
    isinstance(k, int) and not isinstance(k, bool) for k in spec
  ) and all(isinstance(v, dict) for v in spec.values()):
    return {k: _collect_states(v, what) for k, v in spec.items()}
  return {0: _collect_states(spec, what)}


class _NewRng(Exception):
  """Raised out of a trace that met a random generator vmap does not split yet."""

  def __init__(self, rng):
    super().__init__('internal: vmap retraces with a new random generator')
    self.rng = rng


class _VmapFrame(CaptureFrame):
  """A CaptureFrame that hands every unowned :class:`RandomState` to vmap.

  A generator read inside ``vmap`` must draw differently in every lane (as
  in BrainState): vmap splits its key into one key per lane and restores an
  advanced key afterwards. One it did not know yet stops the trace, which is
  redone with the generator added.
  """

  __slots__ = ()

  def unknown_read(self, st) -> None:
    if isinstance(st, random_state_type()):
      raise _NewRng(st)
    super().unknown_read(st)

  def unknown_write(self, st) -> None:
    if isinstance(st, random_state_type()):
      raise _NewRng(st)
    super().unknown_write(st)


class _VmapFn:
  def __init__(self, fn, in_axes, out_axes, axis_name, axis_size,
               spmd_axis_name, in_states, out_states):
    self.fn = fn
    self.in_axes = in_axes
    self.out_axes = out_axes
    self.axis_name = axis_name
    self.axis_size = axis_size
    self.spmd_axis_name = spmd_axis_name
    in_groups = _axis_groups(in_states, 'in_states')
    out_groups = _axis_groups(out_states, 'out_states')
    seen: dict[int, State] = {}
    self.in_list: list[State] = []
    self.in_axes_list: list[int] = []
    for ax, sts in in_groups.items():
      for st in sts:
        if id(st) in seen:
          raise ValueError(f'{_context.describe(st)} appears twice in in_states')
        seen[id(st)] = st
        self.in_list.append(st)
        self.in_axes_list.append(ax)
    # the axis a written State is scattered back on
    self.out_axis: dict[int, int] = {id(s): a for s, a in zip(self.in_list, self.in_axes_list)}
    for ax, sts in out_groups.items():
      for st in sts:
        if self.out_axis.get(id(st), ax) != ax:
          raise BatchAxisError(
            f'{_context.describe(st)} is mapped on axis '
            f'{self.out_axis[id(st)]} in in_states but on axis {ax} in out_states'
          )
        self.out_axis[id(st)] = ax
    self.rngs: list = []  # the random generators split per lane
    functools.update_wrapper(self, fn, updated=())

  def __call__(self, *args, **kwargs):
    if kwargs:
      raise NotImplementedError(
        'Keyword arguments are not supported by brainstate_nnx.transform.vmap; '
        'pass them positionally (with in_axes) or close over them.'
      )
    while True:
      try:
        return self._call(args)
      except _NewRng as e:
        if any(r is e.rng for r in self.rngs):
          raise
        self.rngs.append(e.rng)

  def _call(self, args):
    read = _context.read_value
    in_values = [read(st) for st in self.in_list]
    box = {}
    out_axis = self.out_axis
    in_axes = self.in_axes
    if isinstance(in_axes, list):
      in_axes = tuple(in_axes)
    if not isinstance(in_axes, tuple):
      in_axes = (in_axes,) * len(args)
    if len(in_axes) != len(args):
      raise ValueError(
        f'vmap in_axes has {len(in_axes)} entries but the function got '
        f'{len(args)} positional arguments'
      )
    rngs = list(self.rngs)
    rng_ids = {id(r) for r in rngs}
    if rngs:
      batch = mapped_size(args, in_axes, {}, list(zip(in_values, self.in_axes_list)),
                          self.axis_size)
      saved_keys = [read(r) for r in rngs]
      lane_keys = [r.split_key(batch) for r in rngs]
      backups = [r.split_key() for r in rngs]
    else:
      lane_keys = backups = saved_keys = []

    def collect(frame):
      written = [st for st in frame.written.values() if id(st) not in rng_ids]
      declared = [st for st in written if id(st) in out_axis]
      other = [st for st in written if id(st) not in out_axis]
      box['declared'], box['other'] = declared, other
      return [st._raw_value for st in declared], [st._raw_value for st in other]

    def body(state_values, *a):
      frame = _VmapFrame(self, self.in_list + rngs)
      out, (declared_values, other_values) = _context.run_in_frame(
        frame, state_values, self.fn, a, what='vmap', collect=collect)
      return out, declared_values, other_values

    mapped = jax.vmap(
      body,
      in_axes=(list(self.in_axes_list) + [0] * len(rngs), *in_axes),
      out_axes=(self.out_axes, 0, None),
      axis_name=self.axis_name,
      axis_size=self.axis_size,
      spmd_axis_name=self.spmd_axis_name,
    )
    write = _context.write_value
    try:
      out, declared_values, other_values = mapped(in_values + lane_keys, *args)
    except _NewRng:
      for r, k in zip(rngs, saved_keys):  # the retrace splits the same keys
        write(r, k)
      raise
    except ValueError as e:
      for r, k in zip(rngs, backups):
        write(r, k)
      other = box.get('other')
      if other and 'out_axes' in str(e):
        raise BatchAxisError(
          'A State was written with a batched value inside vmap but is not '
          'declared in in_states/out_states: '
          + ', '.join(_context.describe(s) for s in other)
          + '. Declare it in out_states (or in_states) to write it per batch '
          'element.'
        ) from e
      raise
    moved = []
    for st, v in zip(box['declared'], declared_values):
      ax = out_axis[id(st)]
      if ax != 0:
        v = jax.tree.map(lambda x: jnp.moveaxis(x, 0, ax), v)
      moved.append(v)
    _context.write_back(box['declared'] + box['other'] + rngs,
                        moved + list(other_values) + backups)
    return out


def vmap(
  fn: Callable | None = None,
  *,
  in_axes: int | None | Sequence[Any] = 0,
  out_axes: Any = 0,
  axis_name=None,
  axis_size: int | None = None,
  spmd_axis_name=None,
  in_states: Any = None,
  out_states: Any = None,
):
  """Vectorizes ``fn`` over a batch axis, mapping the declared States too.

  Args follow :func:`jax.vmap`; ``in_states`` / ``out_states`` declare States
  (a State, a sequence, a dict of States, or ``{axis: states}``) that are
  batched on input / written back batched. The form ``{axis: {name: State}}``
  (int keys, dict values) maps each group on its own axis.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> counter = brainstate.ShortTermState(jnp.zeros(3))
    >>> @brainstate.transform.vmap(in_states=counter)
    ... def add(x):
    ...   counter.value = counter.value + x
    ...   return counter.value
    >>> add(jnp.array([1., 2., 3.]))
    Array([1., 2., 3.], dtype=float32)
    >>> counter.value
    Array([1., 2., 3.], dtype=float32)
  """
  def build(f):
    return _VmapFn(f, in_axes, out_axes, axis_name, axis_size, spmd_axis_name,
                   in_states, out_states)

  if fn is None:
    return build
  return build(fn)
