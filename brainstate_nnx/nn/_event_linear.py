"""A dense all-to-all projection fed with spikes: BrainState's ``EventLinear``."""

from __future__ import annotations

from typing import Callable, Optional, Union

import jax
import jax.numpy as jnp

from .._state import ParamState
from .._units import is_quantity, unit_module
from . import init as init
from ._module import Module

__all__ = ['EventLinear']


def _um():
  return unit_module() if unit_module() is not None else None


class EventLinear(Module):
  """Dense synaptic projection ``spk @ weight`` for spike (or rate) inputs.

  Parameters
  ----------
  in_size, out_size : int or tuple
    Presynaptic and postsynaptic sizes (the last axis is the neuron axis).
  weight : float, array or initializer
    The ``(in, out)`` weight matrix, or a scalar shared by every synapse
    (then every target receives ``weight`` times the number of events).
  float_as_event : bool
    With a scalar weight: count the nonzero entries (``True``) or sum the
    values (``False``). With a matrix the product is ``spk @ weight`` either
    way.
  block_size : int
    Kept for BrainState compatibility (a kernel tuning knob there).
  param_type : type
    State class of the weight (default :class:`ParamState`).

  Example
  -------
  >>> import brainstate_nnx as brainstate
  >>> import jax.numpy as jnp
  >>> layer = brainstate.nn.EventLinear(3, 2, 0.5)
  >>> layer(jnp.array([1., 0., 1.]))
  Array([1., 1.], dtype=float32)
  """

  __module__ = 'brainstate.nn'

  def __init__(
    self,
    in_size,
    out_size,
    weight: Union[Callable, jax.typing.ArrayLike],
    float_as_event: bool = True,
    block_size: int = 64,
    name: Optional[str] = None,
    param_type: type = ParamState,
  ):
    super().__init__(name=name)
    self.in_size = in_size
    self.out_size = out_size
    self.float_as_event = float_as_event
    self.block_size = block_size
    w = init.param(weight, (self.in_size[-1], self.out_size[-1]), allow_none=False)
    self.weight = param_type(w)

  def update(self, spk):
    weight = self.weight.value
    u = _um()
    if (u.math.size(weight) if is_quantity(weight) else jnp.size(weight)) == 1:
      spk = jnp.asarray(spk)
      if self.float_as_event:
        total = jnp.sum(spk)
        reduced = jnp.sum(spk != 0) + (total - jax.lax.stop_gradient(total))
      else:
        reduced = jnp.sum(spk)
      return jnp.ones(self.out_size) * (reduced * weight)
    if is_quantity(weight) or is_quantity(spk):
      return u.math.matmul(spk, weight)
    spk = jnp.asarray(spk)
    if spk.dtype == jnp.bool_ or not jnp.issubdtype(spk.dtype, jnp.floating):
      spk = spk.astype(jnp.result_type(weight))
    return spk @ weight
