"""Delays: ring buffers of past values (BrainState's ``Delay`` family).

A :class:`Delay` keeps the last ``max_length`` values written by ``update`` in
a :class:`~brainstate_nnx.DelayState` (``history``, leading axis = slot) and a
write pointer. ``retrieve_at_step(n)`` reads the value written ``n`` updates
ago; ``retrieve_at_time(t)`` reads the value at time ``t`` (interpolating).
Delay times are converted to steps with ``environ.get_dt()`` (or
``update_every``) exactly as BrainState does (``ceil(time / dt)``). Times, dt
and delayed values may be ``brainunit`` Quantities (``max_time`` is kept as a
static float in the unit of dt).
"""

from __future__ import annotations

import numbers
import warnings
from functools import partial
from typing import Callable, Dict, Optional, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np

from .. import environ
from .._state import DelayState, ShortTermState, State
from .._units import is_quantity, maybe_attach_unit, split_mantissa_unit
from ..transform import cond, jit_error_if
from ..transform._mapping import INIT_NO_BATCHING
from ._collective import call_order
from ._module import Module

__all__ = ['Delay', 'DelayAccess', 'StateWithDelay', 'InterpolationRegistry']

_ROTATE = 'rotation'
_CONCAT = 'concat'
_ALIASES = {'linear_interp': 'linear', 'round': 'nearest'}


class InterpolationRegistry:
  """Named interpolation methods for :meth:`Delay.retrieve_at_time`.

  A method is ``f(history, indices, float_idx, max_length) -> value`` where
  ``float_idx`` is a fractional slot of the ring buffer.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> 'linear' in brainstate.nn.InterpolationRegistry.list_methods()
    True
  """

  __module__ = 'brainstate_nnx.nn'

  _methods: Dict[str, Callable] = {}

  @classmethod
  def register(cls, name: str, method: Callable) -> None:
    """Registers ``method`` under ``name``."""
    cls._methods[name] = method

  @classmethod
  def get(cls, name: str) -> Callable:
    """The method registered as ``name``."""
    if name not in cls._methods:
      raise ValueError(
        f'Unknown interpolation method: {name}. Available methods: {cls.list_methods()}'
      )
    return cls._methods[name]

  @classmethod
  def list_methods(cls) -> list:
    """Names of the registered methods."""
    return list(cls._methods.keys())


def _taps(history, indices, slots):
  return [jax.tree.map(lambda h, s=s: h[(s,) + indices], history) for s in slots]


def _combine(weights, values):
  return jax.tree.map(lambda *vs: sum(w * v for w, v in zip(weights, vs)), *values)


def _nearest(history, indices, float_idx, max_length):
  i = jnp.round(float_idx).astype(jnp.int32) % max_length
  return jax.tree.map(lambda h: h[(i,) + indices], history)


def _linear(history, indices, float_idx, max_length):
  i0 = jnp.floor(float_idx).astype(jnp.int32) % max_length
  i1 = jnp.ceil(float_idx).astype(jnp.int32) % max_length
  t = float_idx - jnp.floor(float_idx)
  v0, v1 = _taps(history, indices, (i0, i1))
  return jax.tree.map(lambda a, b: a * (1 - t) + b * t, v0, v1)


def _four_slots(float_idx, max_length):
  i0 = jnp.floor(float_idx).astype(jnp.int32)
  t = float_idx - jnp.floor(float_idx)
  return [(i0 + k) % max_length for k in (-1, 0, 1, 2)], t


def _cubic(history, indices, float_idx, max_length):
  slots, t = _four_slots(float_idx, max_length)
  w = (-0.5 * t ** 3 + t ** 2 - 0.5 * t,
       1.5 * t ** 3 - 2.5 * t ** 2 + 1.0,
       -1.5 * t ** 3 + 2.0 * t ** 2 + 0.5 * t,
       0.5 * t ** 3 - 0.5 * t ** 2)
  return _combine(w, _taps(history, indices, slots))


def _hermite(history, indices, float_idx, max_length):
  slots, t = _four_slots(float_idx, max_length)
  h00 = 2 * t ** 3 - 3 * t ** 2 + 1
  h10 = t ** 3 - 2 * t ** 2 + t
  h01 = -2 * t ** 3 + 3 * t ** 2
  h11 = t ** 3 - t ** 2

  def f(vm1, v0, v1, v2):
    return h00 * v0 + h10 * (0.5 * (v1 - vm1)) + h01 * v1 + h11 * (0.5 * (v2 - v0))

  return jax.tree.map(f, *_taps(history, indices, slots))


def _poly2(history, indices, float_idx, max_length):
  slots, t = _four_slots(float_idx, max_length)
  w = (0.5 * t * (t - 1), (1 - t) * (1 + t), 0.5 * t * (t + 1))
  return _combine(w, _taps(history, indices, slots[:3]))


def _poly3(history, indices, float_idx, max_length):
  slots, t = _four_slots(float_idx, max_length)
  w = (-t * (t - 1) * (t - 2) / 6, (t + 1) * (t - 1) * (t - 2) / 2,
       -t * (t + 1) * (t - 2) / 2, t * (t + 1) * (t - 1) / 6)
  return _combine(w, _taps(history, indices, slots))


for _name, _fn in (('nearest', _nearest), ('round', _nearest), ('linear', _linear),
                   ('linear_interp', _linear), ('cubic', _cubic), ('hermite', _hermite),
                   ('polynomial2', _poly2), ('polynomial3', _poly3)):
  InterpolationRegistry.register(_name, _fn)


def _decimal(x):
  """A dimensionless brainunit Quantity as a plain array (anything else unchanged)."""
  if is_quantity(x):
    if not x.is_unitless:
      raise ValueError(
        f'The time_and_idx should have time dimension. Got delay time/dt of unit {x.unit}.')
    return x.to_decimal()
  return x


def _delay_steps(delay_time, dt):
  """``(time, ceil(time / dt))``; ``None`` means no delay."""
  if delay_time is None:
    return 0. * dt, 0
  return delay_time, jnp.ceil(_decimal(delay_time / dt)).astype(environ.ditype())


def _time_float(t, unit):
  """A (max) delay time as a static float, in the unit of dt when it has one."""
  t = np.max(np.asarray(_decimal(t / unit) if unit is not None else t))
  return float(t)


class _Entries(dict):
  """Registered delay entries; a dict subclass, so nnx keeps it static (a leaf)."""

  def __hash__(self):
    return id(self)


class DelayAccess(Module):
  """A named read of a :class:`Delay` at a fixed delay; calling it returns the value.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> with brainstate.environ.context(dt=0.1):
    ...   d = brainstate.nn.Delay(jnp.zeros(2), time=0.3)
    ...   read = d.access('a', 0.2)
    ...   d.init_state()
    ...   for i in range(4):
    ...     d.update(jnp.full(2, float(i)))
    ...   read()
    Array([1., 1.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, delay: 'Delay', *time, entry: str):
    super().__init__()
    self.delay = delay
    assert isinstance(delay, Delay), 'The input delay should be an instance of Delay.'
    self._delay_entry = entry
    self.delay_info = delay.register_entry(entry, *time)

  def __call__(self, *args, **kwargs):
    return self.delay.at(self._delay_entry)


class Delay(Module):
  """A ring buffer of the last values of a pytree, read at a delay.

  Args:
    target_info: a pytree of arrays (or ShapeDtypeStructs) giving the shape
      and dtype of one value.
    time: the longest delay (more can be registered later).
    init: the value before the first write: a number, array or ``f(shape, dtype=)``.
    entries: ``{name: time or (time, *index)}`` registered at once.
    interpolation: a registered method name or a function, for ``retrieve_at_time``.
    update_every: write only every ``update_every`` time units (``>= dt``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> with brainstate.environ.context(dt=1.0):
    ...   d = brainstate.nn.Delay(jnp.zeros(()), time=2.0)
    ...   d.init_state()
    ...   for i in range(5):
    ...     d.update(jnp.asarray(float(i)))
    ...   d.retrieve_at_step(0), d.retrieve_at_step(2)
    (Array(4., dtype=float32), Array(2., dtype=float32))
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    target_info,
    time=None,
    init=None,
    entries: Optional[Dict] = None,
    interpolation: Optional[Union[str, Callable]] = None,
    take_aware_unit: bool = False,
    update_every=None,
    delay_method: Optional[str] = _ROTATE,
    interp_method: str = 'linear_interp',
  ):
    super().__init__()
    self.target_info = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), target_info)
    if delay_method == _CONCAT:
      warnings.warn(
        "delay_method='concat' is deprecated; every delay is a ring buffer (rotation).",
        DeprecationWarning, stacklevel=2,
      )
    self.delay_method = _ROTATE
    if interpolation is None:
      interpolation = _ALIASES.get(interp_method, interp_method)
    if isinstance(interpolation, str):
      if interpolation not in InterpolationRegistry.list_methods():
        raise ValueError(
          f'Unknown interpolation method: {interpolation}. '
          f'Available methods: {InterpolationRegistry.list_methods()}'
        )
    elif not callable(interpolation):
      raise TypeError(f'interpolation must be str or callable, got {type(interpolation)}')
    self.interp_method = interpolation
    dt = environ.get_dt()
    with jax.ensure_compile_time_eval():
      max_time, length = _delay_steps(time, dt if update_every is None else update_every)
      self._time_unit = split_mantissa_unit(dt)[1]
      # static, a Python float in the unit of dt (BrainState keeps a Quantity)
      self.max_time = _time_float(max_time, self._time_unit)
      self.max_length = length + 1
    if init is not None and not isinstance(init, (numbers.Number, jax.Array, np.ndarray, Callable)):
      raise TypeError(f'init should be Array, Callable, or None. But got {init}')
    self._init = init
    self.take_aware_unit = take_aware_unit
    self._unit = None
    if update_every is not None:
      if update_every < dt:
        raise ValueError(f'update_every must be >= dt ({dt}), got {update_every}')
      self.update_every = update_every
      self.update_every_step = int(_decimal(update_every / dt))
    else:
      self.update_every = None
      self.update_every_step = 1
    self._registered_entries = _Entries()
    if entries is not None:
      for entry, t in entries.items():
        if isinstance(t, (tuple, list)):
          self.register_entry(entry, *t)
        else:
          self.register_entry(entry, t)

  # -- states ----------------------------------------------------------------------
  def _initial(self, a, batch_size, length):
    shape = [length] + ([batch_size] if batch_size is not None else []) + list(a.shape)
    if isinstance(self._init, (jax.Array, np.ndarray, numbers.Number)):
      return jnp.broadcast_to(jnp.asarray(self._init, a.dtype), shape)
    if callable(self._init):
      return self._init(shape, dtype=a.dtype)
    return jnp.zeros(shape, dtype=a.dtype)

  @call_order(3)
  def init_state(self, batch_size: int = None, **kwargs):
    self.write_ptr = ShortTermState(jnp.array(0, dtype=environ.ditype()), tag=INIT_NO_BATCHING)
    fill = partial(self._initial, length=self.max_length, batch_size=batch_size)
    self.history = DelayState(jax.tree.map(fill, self.target_info))

  def reset_state(self, batch_size: int = None, **kwargs):
    self.write_ptr.value = jnp.array(0, dtype=environ.ditype())
    fill = partial(self._initial, length=self.max_length, batch_size=batch_size)
    self.history.value = jax.tree.map(fill, self.target_info)

  # -- registration ------------------------------------------------------------------
  def register_delay(self, *time_and_idx):
    """Makes the buffer long enough for ``time_and_idx[0]``; returns ``(steps, *index)``."""
    assert len(time_and_idx) >= 1, 'You should provide at least one delay time.'
    for i in time_and_idx[1:]:
      assert jnp.issubdtype(jnp.result_type(i), jnp.integer), (
        f'The index should be integer. But got {i}.')
    if time_and_idx[0] is None:
      return None
    with jax.ensure_compile_time_eval():
      dt = environ.get_dt() if self.update_every is None else self.update_every
      time, steps = _delay_steps(time_and_idx[0], dt)
      self.max_time = max(self.max_time, _time_float(time, self._time_unit))
      top = jnp.max(steps)
      if self.max_length <= top + 1:
        self.max_length = int(top + 1)
      return (steps, *time_and_idx[1:])

  def register_entry(self, entry: str, *time_and_idx):
    """Registers a named delay (read later with :meth:`at`)."""
    if entry in self._registered_entries:
      raise KeyError(
        f'Entry {entry} has been registered. '
        f'The existing delay for the key {entry} is {self._registered_entries[entry]}. '
        f'The new delay for the key {entry} is {time_and_idx}. '
        f'You can use another key. '
      )
    info = self.register_delay(*time_and_idx)
    self._registered_entries[entry] = info
    return info

  def access(self, entry: str, *time_and_idx) -> DelayAccess:
    """A :class:`DelayAccess` reading this delay at ``time_and_idx``."""
    return DelayAccess(self, *time_and_idx, entry=entry)

  def at(self, entry: str):
    """The value of the registered delay ``entry``."""
    assert isinstance(entry, str), (
      f'entry should be a string for describing the entry of the delay data. But we got {entry}.')
    if entry not in self._registered_entries:
      raise KeyError(f'Does not find delay entry "{entry}".')
    steps = self._registered_entries[entry]
    return self.retrieve_at_step(*(steps if steps is not None else (0,)))

  # -- reads -------------------------------------------------------------------------
  def retrieve_at_step(self, delay_step, *indices):
    """The value written ``delay_step`` updates ago (0 = the latest)."""
    assert self.history is not None, 'The delay history is not initialized.'
    assert delay_step is not None, 'The delay step should be given.'
    if environ.get(environ.JIT_ERROR_CHECK, False):
      def _err(n):
        raise ValueError(
          f'The request delay length should be less than the maximum delay '
          f'{self.max_length - 1}. But we got {n}')
      jit_error_if(delay_step >= self.max_length, _err, delay_step)
    with jax.ensure_compile_time_eval():
      latest = (self.write_ptr.value - 1) // self.update_every_step
      slot = jnp.asarray((latest - delay_step) % self.max_length, dtype=jnp.int32)
      slot = jax.lax.stop_gradient(slot)
      idx = (slot,) + indices
      out = jax.tree.map(lambda a: a[idx], self.history.value)
      if self._unit is None or is_quantity(out):
        return out
      return maybe_attach_unit(out, self._unit)

  def retrieve_at_time(self, delay_time, *indices):
    """The value at time ``delay_time`` (needs ``environ`` ``t``), interpolated."""
    assert self.history is not None, 'The delay history is not initialized.'
    assert delay_time is not None, 'The delay time should be given.'
    now = environ.get(environ.T, desc='The current time.')
    dt = environ.get_dt()
    if environ.get(environ.JIT_ERROR_CHECK, False):
      def _err(t_now, t_delay):
        raise ValueError(
          f'The request delay time should be within '
          f'[{t_now - self.max_time - dt}, {t_now}], but we got {t_delay}')
      jit_error_if(jnp.logical_or(delay_time > now, delay_time < now - self.max_time - dt),
                   _err, now, delay_time)
    with jax.ensure_compile_time_eval():
      steps = (now - delay_time) / (dt if self.update_every is None else self.update_every)
      m = self.interp_method
      if m in ('linear', 'linear_interp'):
        a = self.retrieve_at_step(jnp.asarray(jnp.floor(steps), dtype=jnp.int32), *indices)
        b = self.retrieve_at_step(jnp.asarray(jnp.ceil(steps), dtype=jnp.int32), *indices)
        frac = steps - jnp.floor(steps)
        return jax.tree.map(lambda x, y: x * (1 - frac) + y * frac, a, b)
      if m in ('nearest', 'round'):
        return self.retrieve_at_step(jnp.asarray(jnp.round(steps), dtype=jnp.int32), *indices)
      latest = (self.write_ptr.value - 1) // self.update_every_step
      fn = InterpolationRegistry.get(m) if isinstance(m, str) else m
      return fn(self.history.value, indices, latest - steps, self.max_length)

  # -- writes ------------------------------------------------------------------------
  def _write(self, value) -> None:
    slot = jnp.asarray(self.write_ptr.value // self.update_every_step, dtype=environ.dutype())
    slot = jax.lax.stop_gradient(slot)
    if self._unit is not None and not is_quantity(self.history.value):
      value = _decimal(value / self._unit)  # a Quantity stored in a plain buffer: its mantissa
    self.history.value = jax.tree.map(lambda h, v: h.at[slot].set(v), self.history.value, value)

  def update(self, current) -> None:
    """Writes ``current`` as the newest value."""
    with jax.ensure_compile_time_eval():
      assert self.history is not None, 'The delay history is not initialized.'
      if self.take_aware_unit and self._unit is None and is_quantity(current):
        self._unit = current.unit
      if self.update_every is None:
        self._write(current)
      else:
        due = (self.write_ptr.value % self.update_every_step) == 0
        cond(due, lambda: self._write(current), lambda: None)
      period = self.max_length * self.update_every_step
      self.write_ptr.value = (self.write_ptr.value + 1) % period


class StateWithDelay(Delay):
  """The delay of a State attribute ``item`` of ``target``; ``update()`` records its value.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> class Neuron(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.V = brainstate.HiddenState(jnp.zeros(2))
    >>> with brainstate.environ.context(dt=1.0):
    ...   n = Neuron()
    ...   d = brainstate.nn.StateWithDelay(n, 'V')
    ...   info = d.register_delay(1.0)
    ...   d.init_state()
    ...   for i in range(3):
    ...     n.V.value = jnp.full(2, float(i)); d.update()
    ...   d.retrieve_at_step(*info)
    Array([1., 1.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, target, item: str, init: Callable = None,
               interpolation: Optional[str] = 'round', **kwargs):
    super().__init__(None, init=init, interpolation=interpolation, **kwargs)
    self._target = target
    self._target_term = item

  @property
  def state(self) -> State:
    r = getattr(self._target, self._target_term)
    if not isinstance(r, State):
      raise TypeError(
        f'The term "{self._target_term}" in the module "{self._target}" is not a State.')
    return r

  @call_order(3)
  def init_state(self, *args, **kwargs):
    self.target_info = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype),
                                    self.state.value)
    super().init_state(*args, **kwargs)

  def update(self, *args) -> None:
    return super().update(self.state.value)
