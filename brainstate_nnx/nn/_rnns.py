"""Recurrent cells of ``brainstate.nn``: one time step per call.

A cell keeps its recurrent variables as :class:`~brainstate_nnx.HiddenState`
s (``h``, plus ``c`` for the LSTMs), created by ``init_state(batch_size)``
(or ``brainstate.nn.init_all_states(model, batch_size=...)``) and reset by
``reset_state``. Calling the cell with the input of one step updates them
and returns the new ``h``; run a sequence with
``brainstate.transform.for_loop(cell, xs)``. The weights live in
:class:`~brainstate_nnx.nn.Linear` children applied to ``[x, h]``.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import jax.numpy as jnp

from .. import random
from .._state import HiddenState, ParamState
from . import _activations as functional
from . import init
from ._linear import Linear
from ._module import Module

__all__ = ['RNNCell', 'ValinaRNNCell', 'GRUCell', 'MGUCell', 'LSTMCell', 'URLSTMCell']


def _activation(activation):
  if isinstance(activation, str):
    fn = getattr(functional, activation, None)
    if fn is None or activation.startswith('_') or activation not in functional.__all__:
      raise ValueError(
        f'Unknown activation {activation!r}; use a callable or one of the names in '
        f'brainstate.nn: {", ".join(functional.__all__)}.'
      )
    return fn
  if not callable(activation):
    raise TypeError(
      f'The activation function should be a string or a callable function, got {activation!r}.'
    )
  return activation


class RNNCell(Module):
  """Base class of the recurrent cells (one step per call).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> issubclass(brainstate.nn.LSTMCell, brainstate.nn.RNNCell)
    True
  """

  __module__ = 'brainstate_nnx.nn'


class _HiddenCell(RNNCell):
  """Shared set-up: sizes, state initializer, activation; one hidden state ``h``."""

  _state_names = ('h',)

  def _setup(self, num_in, num_out, state_init, activation):
    self.num_out = num_out
    self.num_in = num_in
    self.in_size = (num_in,)
    self.out_size = (num_out,)
    self._state_initializer = state_init
    self.activation = _activation(activation)

  def _initial(self, batch_size):
    return init.param(self._state_initializer, [self.num_out], batch_size)

  def init_state(self, batch_size: Optional[int] = None, **kwargs):
    """Creates the hidden States (``(num_out,)``, or ``(batch_size, num_out)``)."""
    for name in self._state_names:
      setattr(self, name, HiddenState(self._initial(batch_size)))

  def reset_state(self, batch_size: Optional[int] = None, **kwargs):
    """Sets the hidden States back to their initial value."""
    for name in self._state_names:
      getattr(self, name).value = self._initial(batch_size)


class ValinaRNNCell(_HiddenCell):
  r"""Vanilla RNN: :math:`h_t = \phi(W [x_t, h_{t-1}] + b)`.

  ``W`` is the ``Linear`` child ``W`` (``XavierNormal`` weights, zero
  bias by default); ``activation`` is a ``brainstate.nn`` function name or a
  callable (default ``'relu'``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> cell = brainstate.nn.ValinaRNNCell(3, 5)
    >>> cell.init_state(batch_size=2)
    >>> cell(jnp.ones((2, 3))).shape
    (2, 5)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    num_in: int,
    num_out: int,
    state_init: Union[Callable, jnp.ndarray] = init.ZeroInit(),
    w_init: Union[Callable, jnp.ndarray] = init.XavierNormal(),
    b_init: Union[Callable, jnp.ndarray] = init.ZeroInit(),
    activation: Union[str, Callable] = 'relu',
    name: Optional[str] = None,
  ):
    super().__init__(name=name)
    self._setup(num_in, num_out, state_init, activation)
    self.W = Linear(num_in + num_out, num_out, w_init=w_init, b_init=b_init)

  def update(self, x):
    xh = jnp.concatenate([x, self.h.value], axis=-1)
    self.h.value = self.activation(self.W(xh))
    return self.h.value


class GRUCell(_HiddenCell):
  r"""Gated recurrent unit.

  .. math::

     [r, z] = \sigma(W_{rz} [x, h]),\quad
     \tilde h = \phi(W_h [x, r \odot h]),\quad
     h' = (1 - z) \odot h + z \odot \tilde h

  ``Wrz`` (``2 * num_out`` outputs, ``r`` first) and ``Wh`` are ``Linear``
  children with ``Orthogonal`` weights by default.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> cell = brainstate.nn.GRUCell(3, 4)
    >>> cell.init_state()
    >>> cell(jnp.ones(3)).shape
    (4,)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    num_in: int,
    num_out: int,
    w_init: Union[Callable, jnp.ndarray] = init.Orthogonal(),
    b_init: Union[Callable, jnp.ndarray] = init.ZeroInit(),
    state_init: Union[Callable, jnp.ndarray] = init.ZeroInit(),
    activation: Union[str, Callable] = 'tanh',
    name: Optional[str] = None,
  ):
    super().__init__(name=name)
    self._setup(num_in, num_out, state_init, activation)
    self.Wrz = Linear(num_in + num_out, num_out * 2, w_init=w_init, b_init=b_init)
    self.Wh = Linear(num_in + num_out, num_out, w_init=w_init, b_init=b_init)

  def update(self, x):
    old_h = self.h.value
    xh = jnp.concatenate([x, old_h], axis=-1)
    r, z = jnp.split(functional.sigmoid(self.Wrz(xh)), 2, axis=-1)
    h = self.activation(self.Wh(jnp.concatenate([x, r * old_h], axis=-1)))
    h = (1 - z) * old_h + z * h
    self.h.value = h
    return h


class MGUCell(_HiddenCell):
  r"""Minimal gated unit (one forget gate).

  .. math::

     f = \sigma(W_f [x, h]),\quad
     \tilde h = \phi(W_h [x, f \odot h]),\quad
     h' = (1 - f) \odot h + f \odot \tilde h

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> cell = brainstate.nn.MGUCell(3, 4)
    >>> cell.init_state(batch_size=2)
    >>> cell(jnp.ones((2, 3))).shape
    (2, 4)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    num_in: int,
    num_out: int,
    w_init: Union[Callable, jnp.ndarray] = init.Orthogonal(),
    b_init: Union[Callable, jnp.ndarray] = init.ZeroInit(),
    state_init: Union[Callable, jnp.ndarray] = init.ZeroInit(),
    activation: Union[str, Callable] = 'tanh',
    name: Optional[str] = None,
  ):
    super().__init__(name=name)
    self._setup(num_in, num_out, state_init, activation)
    self.Wf = Linear(num_in + num_out, num_out, w_init=w_init, b_init=b_init)
    self.Wh = Linear(num_in + num_out, num_out, w_init=w_init, b_init=b_init)

  def update(self, x):
    old_h = self.h.value
    xh = jnp.concatenate([x, old_h], axis=-1)
    f = functional.sigmoid(self.Wf(xh))
    h = self.activation(self.Wh(jnp.concatenate([x, f * old_h], axis=-1)))
    self.h.value = (1 - f) * old_h + f * h
    return self.h.value


class LSTMCell(_HiddenCell):
  r"""Long short-term memory cell, hidden States ``h`` and ``c``.

  One ``Linear`` child ``W`` maps ``[x, h]`` to the four gate
  pre-activations, split in the order ``[i, g, f, o]``:

  .. math::

     c' = \sigma(f + 1) \odot c + \sigma(i) \odot \phi(g),\quad
     h' = \sigma(o) \odot \phi(c')

  (note the forget-gate bias of +1). Flax's ``nnx.LSTMCell`` orders the
  gates ``[i, f, g, o]`` and has no +1: see the README's Flax mapping.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> cell = brainstate.nn.LSTMCell(3, 4)
    >>> cell.init_state(batch_size=2)
    >>> cell(jnp.ones((2, 3))).shape, cell.c.value.shape
    ((2, 4), (2, 4))
  """

  __module__ = 'brainstate_nnx.nn'
  _state_names = ('c', 'h')

  def __init__(
    self,
    num_in: int,
    num_out: int,
    w_init: Union[Callable, jnp.ndarray] = init.XavierNormal(),
    b_init: Union[Callable, jnp.ndarray] = init.ZeroInit(),
    state_init: Union[Callable, jnp.ndarray] = init.ZeroInit(),
    activation: Union[str, Callable] = 'tanh',
    name: Optional[str] = None,
  ):
    super().__init__(name=name)
    self._setup(num_in, num_out, state_init, activation)
    self.W = Linear(num_in + num_out, num_out * 4, w_init=w_init, b_init=b_init)

  def update(self, x):
    h, c = self.h.value, self.c.value
    xh = jnp.concatenate([x, h], axis=-1)
    i, g, f, o = jnp.split(self.W(xh), 4, axis=-1)
    c = functional.sigmoid(f + 1.) * c + functional.sigmoid(i) * self.activation(g)
    h = functional.sigmoid(o) * self.activation(c)
    self.h.value = h
    self.c.value = c
    return h


class URLSTMCell(_HiddenCell):
  r"""LSTM with a unified gate and untied forget bias (UR-LSTM).

  ``W`` (no bias) gives ``[f, r, u, o]``; ``bias`` (a ``ParamState`` of
  shape ``(num_out,)``, drawn as the logit of ``U(1/n, 1 - 1/n)``) is added
  to ``f`` and subtracted from ``r``:

  .. math::

     g = 2 r_\sigma f_\sigma + (1 - 2 r_\sigma) f_\sigma^2,\quad
     c' = g \odot c + (1 - g) \odot \phi(u),\quad
     h' = \sigma(o) \odot \phi(c')

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> cell = brainstate.nn.URLSTMCell(3, 4)
    >>> cell.init_state()
    >>> cell(jnp.ones(3)).shape, cell.bias.value.shape
    ((4,), (4,))
  """

  __module__ = 'brainstate_nnx.nn'
  _state_names = ('c', 'h')

  def __init__(
    self,
    num_in: int,
    num_out: int,
    w_init: Union[Callable, jnp.ndarray] = init.XavierNormal(),
    state_init: Union[Callable, jnp.ndarray] = init.ZeroInit(),
    activation: Union[str, Callable] = 'tanh',
    name: Optional[str] = None,
  ):
    super().__init__(name=name)
    self._setup(num_in, num_out, state_init, activation)
    self.W = Linear(num_in + num_out, num_out * 4, w_init=w_init, b_init=None)
    self.bias = ParamState(self._forget_bias())

  def _forget_bias(self):
    p = random.uniform(1 / self.num_out, 1 - 1 / self.num_out, (self.num_out,))
    return -jnp.log(1 / p - 1)

  def update(self, x):
    h, c = self.h.value, self.c.value
    xh = jnp.concatenate([x, h], axis=-1)
    f, r, u, o = jnp.split(self.W(xh), 4, axis=-1)
    f_gate = functional.sigmoid(f + self.bias.value)
    r_gate = functional.sigmoid(r - self.bias.value)
    g = 2 * r_gate * f_gate + (1 - 2 * r_gate) * f_gate ** 2
    c_new = g * c + (1 - g) * self.activation(u)
    h_new = functional.sigmoid(o) * self.activation(c_new)
    self.h.value = h_new
    self.c.value = c_new
    return h_new
