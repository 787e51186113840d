"""``param``: turn an initializer, array or State into a parameter value of a given size."""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import jax
import jax.numpy as jnp

from ... import _units
from ..._state import State
from ._base import to_size, are_broadcastable_shapes, _unit_lib

__all__ = ['param', 'calculate_init_gain']


def _expand_to_rank(value, sizes):
  for _ in range(len(sizes) - value.ndim):
    value = value[None]
  return value


def param(parameter: Union[Callable, Any, State, None],
          sizes: Union[int, Sequence[int]],
          batch_size: Optional[int] = None,
          allow_none: bool = True,
          allow_scalar: bool = True) -> Any:
  """A parameter value of shape ``sizes`` from an initializer, an array or a State.

  * ``None``: returned if ``allow_none`` (else ``ValueError``);
  * a scalar (number, 0-d array, scalar Quantity): returned as is if ``allow_scalar``;
  * a callable (an :class:`Initializer`): called with ``sizes``, prefixed by
    ``batch_size`` when given;
  * an array / Quantity / State: its shape must broadcast to ``sizes``
    (``ValueError`` otherwise); with ``batch_size`` it is repeated along a new
    leading axis (an array already carrying the batch axis must match it). A
    State comes back as a new State of the same type.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.init.param(brainstate.nn.init.Constant(1.), (2,), batch_size=3).shape
    (3, 2)
    >>> brainstate.nn.init.param(jnp.zeros(2), (2,), batch_size=3).shape
    (3, 2)
    >>> brainstate.nn.init.param(0.5, (4,))
    0.5
  """
  if parameter is None:
    if allow_none:
      return None
    raise ValueError('Expect a parameter with type of float, ArrayType, Initializer, or '
                     'Callable function, but we got None. ')
  if allow_scalar and _units.is_scalar(parameter):
    return parameter
  sizes = tuple(to_size(sizes))
  if callable(parameter) and not isinstance(parameter, State):  # nnx Variables are callable
    if batch_size is not None:
      sizes = (batch_size,) + sizes
    return parameter(sizes)
  if not isinstance(parameter, (np.ndarray, jax.Array, State)) and not _units.is_quantity(parameter):
    raise ValueError(f'Unknown parameter type: {type(parameter)}')
  value = parameter.value if isinstance(parameter, State) else parameter
  if not are_broadcastable_shapes(value.shape, sizes):
    raise ValueError(f'The shape of the parameter {value.shape} does not match with the '
                     f'given size {sizes}')
  if batch_size is not None:
    if value.ndim <= len(sizes):
      value = _expand_to_rank(value, sizes)
      if _units.is_quantity(value):
        bu = _unit_lib()
        value = bu.math.repeat(bu.math.expand_dims(value, axis=0), batch_size, axis=0)
      else:
        value = jnp.repeat(jnp.expand_dims(value, axis=0), batch_size, axis=0)
    elif value.shape[0] != batch_size:
      raise ValueError(f'The batch size of the parameter {value.shape[0]} does not match '
                       f'with the given batch size {batch_size}')
  return type(parameter)(value) if isinstance(parameter, State) else value


def calculate_init_gain(nonlinearity: str, param: Optional[Any] = None) -> float:
  """The recommended gain for a nonlinearity (PyTorch's ``calculate_gain``).

  ``'linear'``/conv names/``'sigmoid'``: 1; ``'tanh'``: 5/3; ``'relu'``:
  sqrt(2); ``'leaky_relu'``: sqrt(2 / (1 + slope**2)) (slope ``param``,
  default 0.01); ``'selu'``: 3/4.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.init.calculate_init_gain('tanh')
    1.6666666666666667
  """
  linear = ('linear', 'conv1d', 'conv2d', 'conv3d', 'conv_transpose1d', 'conv_transpose2d',
            'conv_transpose3d', 'sigmoid')
  if nonlinearity in linear:
    return 1
  if nonlinearity == 'tanh':
    return 5.0 / 3
  if nonlinearity == 'relu':
    return math.sqrt(2.0)
  if nonlinearity == 'leaky_relu':
    if param is None:
      slope = 0.01
    elif (isinstance(param, int) and not isinstance(param, bool)) or isinstance(param, float):
      slope = param
    else:
      raise ValueError(f'negative_slope {param} not a valid number')
    return math.sqrt(2.0 / (1 + slope ** 2))
  if nonlinearity == 'selu':
    return 3.0 / 4
  raise ValueError(f'Unsupported nonlinearity {nonlinearity}')
