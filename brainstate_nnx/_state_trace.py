"""Recording which States a piece of code reads and writes: :class:`StateTraceStack`.

Inside ``with StateTraceStack() as trace:`` every State read or written (also
by brainstate_nnx transforms called in the block) is recorded, in first-use
order, with the value it had before. The recording is transparent: an
enclosing transform still sees every access.

Example::

  >>> import jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> a, b = brainstate.State(jnp.ones(2)), brainstate.State(jnp.zeros(2))
  >>> with brainstate.StateTraceStack() as trace:
  ...   b.value = a.value * 3
  >>> trace.get_read_states() == (a,), trace.get_write_states() == (b,)
  (True, True)
  >>> trace.recovery_original_values(); b.value
  Array([0., 0.], dtype=float32)
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

import jax
from flax.nnx import tracers as _nnx_tracers

from . import _context
from ._context import Frame

__all__ = ['StateTraceStack']


class _RecordFrame(Frame):
  """A frame that records accesses and hands them on to the enclosing frame."""

  __slots__ = ('recorder',)

  def __init__(self, recorder):
    super().__init__(recorder, ())
    self.recorder = recorder

  def on_read(self, st) -> None:
    if id(st) not in self.local:
      self.recorder.read_its_value(st)
      if self.parent is not None:
        self.parent.on_read(st)
      elif not st._trace_state.is_valid():
        _context.check_foreign_read(st)

  def on_write(self, st) -> None:
    if id(st) not in self.local:
      self.recorder.write_its_value(st)
      if self.parent is not None:
        self.parent.on_write(st)


class StateTraceStack:
  """Records the States used inside a ``with`` block.

  Attributes:
    states: the States met, in first-use order.
    been_writen: per State, whether it was written (BrainState's spelling).
    name: an optional label.
  """

  __module__ = 'brainstate_nnx'

  def __init__(self, new_arg: Optional[Callable] = None, name: Optional[str] = None,
               check_read: Optional[Callable] = None):
    self.name = name
    self.states: List[Any] = []
    self.been_writen: List[bool] = []
    self._index: dict = {}
    self._originals: list = []
    self._originals_released = False
    self._new_arg = new_arg
    self.check_read = check_read
    self._frame: Optional[_RecordFrame] = None

  def __repr__(self) -> str:
    return f'StateTraceStack({self.name or ""})'

  __str__ = __repr__

  # -- context -------------------------------------------------------------
  def __enter__(self) -> 'StateTraceStack':
    frame = _RecordFrame(self)
    stack = _context._CTX.frames
    frame.parent = stack[-1] if stack else None
    frame.trace_state = (frame.parent.trace_state if frame.parent
                         else _nnx_tracers.TraceState())
    stack.append(frame)
    self._frame = frame
    return self

  def __exit__(self, *exc) -> None:
    stack = _context._CTX.frames
    if not stack or stack[-1] is not self._frame:
      raise RuntimeError(
        'StateTraceStack is being exited out of order: it is not on top of the '
        'trace stack. Trace contexts must be exited last-in, first-out.'
      )
    stack.pop()
    self._frame = None

  # -- recording ------------------------------------------------------------------
  def set_new_arg(self, new_arg: Callable) -> None:
    """Sets the function ``new_arg(state)`` whose result replaces the value of
    each State when it is first met."""
    self._new_arg = new_arg

  def new_arg(self, state) -> None:
    """Applies ``new_arg`` to ``state`` (nothing when unset)."""
    if self._new_arg is not None:
      object.__setattr__(state, '_raw_value', self._new_arg(state))

  def read_its_value(self, state) -> None:
    """Records a read of ``state``."""
    if self.check_read is not None:
      self.check_read(state)
    if id(state) not in self._index:
      self._index[id(state)] = len(self.states)
      self.states.append(state)
      self.been_writen.append(False)
      self._originals.append(state._raw_value)
      self.new_arg(state)

  def write_its_value(self, state) -> None:
    """Records a write of ``state``."""
    if id(state) not in self._index:
      self.read_its_value(state)
    self.been_writen[self._index[id(state)]] = True

  # -- queries ---------------------------------------------------------------
  @property
  def original_state_values(self) -> Tuple[Any, ...]:
    """The values the States had when first met."""
    return tuple(self._originals)

  def get_state_values(self, separate: bool = False, replace: bool = False):
    """Current values: all, or ``(written, read)`` when ``separate`` (with
    ``None`` placeholders when ``replace``)."""
    if not separate:
      return tuple(st.value for st in self.states)
    writes, reads = [], []
    for st, w in zip(self.states, self.been_writen):
      if w:
        writes.append(st.value)
        if replace:
          reads.append(None)
      else:
        reads.append(st.value)
        if replace:
          writes.append(None)
    return tuple(writes), tuple(reads)

  def get_read_states(self, replace_writen: bool = False) -> Tuple[Any, ...]:
    """The States only read (``None`` in place of written ones if ``replace_writen``)."""
    if replace_writen:
      return tuple(None if w else st for st, w in zip(self.states, self.been_writen))
    return tuple(st for st, w in zip(self.states, self.been_writen) if not w)

  def get_read_state_values(self, replace_writen: bool = False) -> Tuple[Any, ...]:
    """Values of :meth:`get_read_states`."""
    return tuple(None if st is None else st.value
                 for st in self.get_read_states(replace_writen))

  def get_write_states(self, replace_read: bool = False) -> Tuple[Any, ...]:
    """The States written (``None`` in place of read ones if ``replace_read``)."""
    if replace_read:
      return tuple(st if w else None for st, w in zip(self.states, self.been_writen))
    return tuple(st for st, w in zip(self.states, self.been_writen) if w)

  def get_write_state_values(self, replace_read: bool = False) -> Tuple[Any, ...]:
    """Values of :meth:`get_write_states`."""
    return tuple(None if st is None else st.value
                 for st in self.get_write_states(replace_read))

  def state_subset(self, state_type: type) -> List[Any]:
    """The recorded States that are instances of ``state_type``."""
    return [st for st in self.states if isinstance(st, state_type)]

  # -- restoring / assigning ------------------------------------------------------
  def recovery_original_values(self) -> None:
    """Puts every recorded State back to its original value."""
    if self._originals_released:
      raise RuntimeError(
        'recovery_original_values() was called after release_original_values(); '
        'the original values are no longer kept.'
      )
    for st, val in zip(self.states, self._originals):
      st.restore_value(val)

  def release_original_values(self) -> None:
    """Forgets the original values (keeps only their shapes and dtypes)."""
    self._originals = [
      jax.tree.map(lambda x: jax.ShapeDtypeStruct(jax.numpy.shape(x), jax.numpy.result_type(x)), v)
      for v in self._originals
    ]
    self._originals_released = True
    self._new_arg = None

  def assign_state_vals(self, state_vals: Sequence[Any]) -> None:
    """Assigns one value per recorded State (written ones by ``.value``,
    the others by ``restore_value``)."""
    if len(state_vals) != len(self.states):
      raise ValueError(
        'The length of the state values must be equal to the states. '
        f'Bug got {len(state_vals)} and {len(self.states)}'
      )
    for st, w, val in zip(self.states, self.been_writen, state_vals):
      if w:
        st.value = val
      else:
        st.restore_value(val)

  def assign_state_vals_v2(self, read_state_vals: Sequence[Any],
                           write_state_vals: Sequence[Any]) -> None:
    """Like :meth:`assign_state_vals` with separate read / write value lists
    (each as long as :attr:`states`)."""
    if len(read_state_vals) != len(self.states):
      raise ValueError('The length of the read state values must be equal to the states. ')
    if len(write_state_vals) != len(self.states):
      raise ValueError('The length of the write state values must be equal to the states. ')
    for st, w, r_val, w_val in zip(self.states, self.been_writen, read_state_vals,
                                   write_state_vals):
      if w:
        st.value = w_val
      else:
        st.restore_value(r_val)

  # -- combining ----------------------------------------------------------------
  def merge(self, *traces: 'StateTraceStack') -> 'StateTraceStack':
    """Adds the records of ``traces`` to this one (in place); returns it."""
    for trace in traces:
      for st, w, orig in zip(trace.states, trace.been_writen, trace._originals):
        if id(st) not in self._index:
          self._index[id(st)] = len(self.states)
          self.states.append(st)
          self.been_writen.append(False)
          self._originals.append(orig)
        if w:
          self.been_writen[self._index[id(st)]] = True
      self._originals_released = self._originals_released or trace._originals_released
    return self

  def __add__(self, other: 'StateTraceStack') -> 'StateTraceStack':
    return StateTraceStack().merge(self, other)
