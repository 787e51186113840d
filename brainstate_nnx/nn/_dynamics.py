"""``Dynamics``: modules with a state that evolves in time, plus prefetching.

A :class:`Dynamics` keeps two ordered registries of helper modules: the
*before updates* run before ``update`` (with the inputs when marked
:func:`receive_update_input`) and the *after updates* run after it (with the
output unless marked :func:`not_receive_update_output`). Delays of a State
(``prefetch_delay``) or of the output (``output_delay``) are after-updates,
so a network reads delayed values through :class:`PrefetchDelayAt` /
:class:`OutputDelayAt` handles, as in BrainState.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Optional, TypeVar, Union

import jax
import numpy as np
from flax import nnx

from .. import environ
from .._state import State
from ._delay import Delay, StateWithDelay
from ._module import Module

__all__ = [
  'Dynamics', 'receive_update_output', 'not_receive_update_output',
  'receive_update_input', 'not_receive_update_input', 'Prefetch',
  'PrefetchDelay', 'PrefetchDelayAt', 'OutputDelayAt', 'init_maybe_prefetch',
]

T = TypeVar('T')


def _in_size_error(in_size):
  return ValueError(f'"in_size" must be int, or a tuple/list of int. But we got {type(in_size)}')


class Dynamics(Module):
  """Base class of dynamical systems (neurons, synapses, ...).

  ``in_size`` is the shape of the population (``varshape``); ``out_size``
  equals it.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> class Leaky(brainstate.nn.Dynamics):
    ...   def init_state(self, *args, **kwargs):
    ...     self.v = brainstate.HiddenState(jnp.zeros(self.varshape))
    ...   def update(self, x):
    ...     self.v.value = 0.9 * self.v.value + x
    ...     return self.v.value
    >>> m = Leaky(3)
    >>> m.init_state()
    >>> _ = m(jnp.ones(3)); m(jnp.ones(3))
    Array([1.9, 1.9, 1.9], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, in_size, name: Optional[str] = None):
    super().__init__(name=name)
    if isinstance(in_size, (list, tuple)):
      if len(in_size) <= 0 or not isinstance(in_size[0], (int, np.integer)):
        raise _in_size_error(in_size)
      in_size = tuple(in_size)
    elif isinstance(in_size, (int, np.integer)):
      in_size = (in_size,)
    else:
      raise _in_size_error(in_size)
    self.in_size = in_size
    self._before_updates = None
    self._after_updates = None
    self.out_size = self.in_size

  @property
  def varshape(self):
    """The shape of the population (``in_size``)."""
    return self.in_size

  # -- prefetch handles ------------------------------------------------------------
  def prefetch(self, item: str) -> 'Prefetch':
    """A handle reading the attribute ``item`` (a State's value) when called."""
    return Prefetch(self, item)

  def prefetch_delay(self, state: str, *time_and_index, init=None, interpolation=None,
                     **kwargs) -> 'PrefetchDelayAt':
    """A handle reading State ``state`` ``time`` ago (registers its delay)."""
    return PrefetchDelayAt(self, state, *time_and_index, delay_init=init,
                           interpolation=interpolation, **kwargs)

  def output_delay(self, *time_and_index, init=None, interpolation=None,
                   **kwargs) -> 'OutputDelayAt':
    """A handle reading this module's output ``time`` ago (registers its delay)."""
    return OutputDelayAt(self, *time_and_index, interpolation=interpolation,
                         delay_init=init, **kwargs)

  # -- before / after updates ----------------------------------------------------
  @property
  def before_updates(self):
    """The modules run before ``update`` (a dict, or ``None``)."""
    return self._before_updates

  @property
  def after_updates(self):
    """The modules run after ``update`` (a dict, or ``None``)."""
    return self._after_updates

  def add_before_update(self, key: Any, fun: Callable):
    """Registers ``fun`` to run before each ``update``."""
    if self._before_updates is None:
      self._before_updates = nnx.data(dict())
    if key in self._before_updates:
      raise KeyError(f'{key} has been registered in before_updates of {self}')
    self._before_updates[key] = fun

  def add_after_update(self, key: Any, fun: Callable):
    """Registers ``fun`` to run after each ``update``."""
    if self._after_updates is None:
      self._after_updates = nnx.data(dict())
    if key in self._after_updates:
      raise KeyError(f'{key} has been registered in after_updates of {self}')
    self._after_updates[key] = fun

  def get_before_update(self, key: Any):
    """The before-update registered as ``key``."""
    if self._before_updates is None or key not in self._before_updates:
      raise KeyError(f'{key} is not registered in before_updates of {self}')
    return self._before_updates[key]

  def get_after_update(self, key: Any):
    """The after-update registered as ``key``."""
    if self._after_updates is None or key not in self._after_updates:
      raise KeyError(f'{key} is not registered in after_updates of {self}')
    return self._after_updates[key]

  def has_before_update(self, key: Any) -> bool:
    return self._before_updates is not None and key in self._before_updates

  def has_after_update(self, key: Any) -> bool:
    return self._after_updates is not None and key in self._after_updates

  def __call__(self, *args, **kwargs):
    if self._before_updates is not None:
      for model in self._before_updates.values():
        if hasattr(model, '_receive_update_input'):
          model(*args, **kwargs)
        else:
          model()
    ret = self.update(*args, **kwargs)
    if self._after_updates is not None:
      for model in self._after_updates.values():
        if hasattr(model, '_not_receive_update_output'):
          model()
        else:
          model(ret)
    return ret


def _item(target):
  item = getattr(target.module, target.item, None)
  if item is None:
    raise AttributeError(f'The target {target.module} should have an `{target.item}` attribute.')
  return item


class Prefetch(Module):
  """A handle to the attribute ``item`` of ``module``; calling it returns the current value.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> n = brainstate.nn.Dynamics(2)
    >>> n.V = brainstate.HiddenState(jnp.ones(2))
    >>> n.prefetch('V')()
    Array([1., 1.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, module: Dynamics, item: str):
    super().__init__()
    self.module = module
    self.item = item

  @property
  def delay(self):
    """A :class:`PrefetchDelay` of the same item (``.at(time)`` registers a delay)."""
    return PrefetchDelay(self.module, self.item)

  def __call__(self, *args, **kwargs):
    return self.get_item_value()

  def get_item_value(self):
    item = _item(self)
    return item.value if isinstance(item, State) else item

  def get_item(self):
    return _item(self)


class PrefetchDelay(Module):
  """``Prefetch(...).delay``: ``.at(time)`` gives a :class:`PrefetchDelayAt`.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> n = brainstate.nn.Dynamics(2)
    >>> type(n.prefetch('V').delay).__name__
    'PrefetchDelay'
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, module: Dynamics, item: str):
    super().__init__()
    self.module = module
    self.item = item

  def at(self, *delay_time):
    return PrefetchDelayAt(self.module, self.item, delay_time)


def _prefetch_delay_key(item, update_every) -> str:
  return f'{item}-prefetch-delay-{update_every}'


def _output_delay_key(update_every) -> str:
  return f'output-delay-{update_every}'


class PrefetchDelayAt(Module):
  """The State ``item`` of ``module`` read ``time`` ago (one shared delay per item).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> class N(brainstate.nn.Dynamics):
    ...   def init_state(self, *a, **k):
    ...     self.V = brainstate.HiddenState(jnp.zeros(1))
    ...   def update(self, x):
    ...     self.V.value = self.V.value + x
    >>> with brainstate.environ.context(dt=1.0):
    ...   n = N(1)
    ...   late = n.prefetch_delay('V', 2.0)
    ...   _ = brainstate.nn.init_all_states(n)
    ...   for _ in range(4):
    ...     n(jnp.ones(1))
    ...   late()
    Array([2.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, module: Dynamics, item: str, *time_and_index, delay_init=None,
               interpolation: Optional[str] = None, update_every=None, **kwargs):
    super().__init__()
    assert isinstance(module, Dynamics), 'The module should be an instance of Dynamics.'
    self.module = module
    self.item = item
    if len(time_and_index) == 1 and isinstance(time_and_index[0], (tuple, list)):
      time_and_index = time_and_index[0]
    if not isinstance(time_and_index, (tuple, list)):
      time_and_index = (time_and_index,)
    self.delay_time = tuple(time_and_index)
    if len(time_and_index) > 0:
      key = _prefetch_delay_key(item, update_every)
      if not module.has_after_update(key):
        delay = StateWithDelay(module, item, init=delay_init, interpolation=interpolation,
                               update_every=update_every, **kwargs)
        module.add_after_update(key, not_receive_update_output(delay))
      self.state_delay = module.get_after_update(key)
      self.delay_info = self.state_delay.register_delay(*time_and_index)

  def __call__(self, *args, **kwargs):
    if len(self.delay_time) == 0:
      return _item(self).value
    return self.state_delay.retrieve_at_step(*self.delay_info)


class OutputDelayAt(Module):
  """The output of ``module`` read ``time`` ago (one shared output delay).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> class Id(brainstate.nn.Dynamics):
    ...   def update(self, x):
    ...     return x
    >>> with brainstate.environ.context(dt=1.0):
    ...   n = Id(1)
    ...   late = n.output_delay(1.0)
    ...   _ = brainstate.nn.init_all_states(n)
    ...   for i in range(3):
    ...     _ = n(jnp.full(1, float(i)))
    ...   late()
    Array([1.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, module: Dynamics, *delay_time, delay_init=None,
               interpolation: Optional[str] = None, update_every=None, **kwargs):
    super().__init__()
    assert isinstance(module, Dynamics), 'The module should be an instance of Dynamics.'
    self.module = module
    key = _output_delay_key(update_every)
    if not module.has_after_update(key):
      delay = Delay(jax.ShapeDtypeStruct(module.out_size, dtype=environ.dftype()),
                    take_aware_unit=True, init=delay_init, interpolation=interpolation,
                    update_every=update_every, **kwargs)
      module.add_after_update(key, receive_update_output(delay))
    self.out_delay = module.get_after_update(key)
    self.delay_info = self.out_delay.register_delay(*delay_time)

  def __call__(self, *args, **kwargs):
    return self.out_delay.retrieve_at_step(*self.delay_info)


def init_maybe_prefetch(target: Any, *args, **kwargs) -> None:
  """Checks a prefetch handle's target exists (no-op for other objects).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.init_maybe_prefetch(3.0)  # not a handle: nothing to do
  """
  if isinstance(target, Prefetch):
    _item(target)
  elif isinstance(target, PrefetchDelay):
    _get_prefetch_item_delay(target)


def receive_update_output(cls: T) -> T:
  """Marks an after-update as taking the module's output (the default)."""
  if hasattr(cls, '_not_receive_update_output'):
    delattr(cls, '_not_receive_update_output')
  return cls


def not_receive_update_output(cls: T) -> T:
  """Marks an after-update as called without arguments."""
  cls._not_receive_update_output = True
  return cls


def receive_update_input(cls: T) -> T:
  """Marks a before-update as called with the module's inputs."""
  cls._receive_update_input = True
  return cls


def not_receive_update_input(cls: T) -> T:
  """Marks a before-update as called without arguments (the default)."""
  if hasattr(cls, '_receive_update_input'):
    delattr(cls, '_receive_update_input')
  return cls


# BrainState's private helper names (its tests and some user code import them)
_get_prefetch_item = _item
_get_prefetch_delay_key = _prefetch_delay_key
_get_output_delay_key = _output_delay_key


def _get_prefetch_item_delay(target) -> Delay:
  assert isinstance(target.module, Dynamics), (
    f'The target module should be an instance of Dynamics. But got {target.module}.')
  delay = target.module.get_after_update(_prefetch_delay_key(target.item, None))
  if not isinstance(delay, StateWithDelay):
    raise TypeError(f'The prefetch target should be a {StateWithDelay.__name__} when '
                    f'accessing its delay. But got {delay}.')
  return delay
