"""``nn.Param`` / ``nn.Const``: parameters with a transform and a regularizer.

A :class:`Param` keeps its value in the *unconstrained* space of its transform
``t`` (``t.inverse(value)``, in a :class:`~brainstate_nnx.ParamState` when
``fit=True``) and reads it *constrained* (``t.forward(stored)``). Optimizers
and gradients therefore act on the unconstrained value, exactly as in
BrainState; the ParamState is an ``nnx.Param``, so
``nnx.Optimizer(model, tx, wrt=nnx.Param)`` trains it too.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .. import environ
from .._state import ParamState, State
from .._units import is_quantity, maybe_attach_unit, split_mantissa_unit
from ._module import Module
from ._param_transform import IdentityT, Transform
from ._regularization import Regularization

__all__ = ['Param', 'Const']

_HIDDEN = frozenset({'_enable_cache_logging', '_cache', 'precompute'})


class _Cache:
  """Holder of a Param's cached constrained value, invisible to nnx's graph.

  ``src`` is the raw stored value the cache was computed from: a write to the
  ParamState replaces that object, which invalidates the cache without hooks.
  """

  __slots__ = ('valid', 'value', 'src', 'logger')

  def __init__(self):
    self.valid = False
    self.value = None
    self.src = None
    self.logger = None

  def __deepcopy__(self, memo):
    return _Cache()


class Param(Module):
  """A parameter read through a transform, with an optional regularizer.

  Args:
    value: the initial value, in the constrained space.
    t: a :class:`~brainstate_nnx.nn.Transform` (default: identity).
    reg: a :class:`~brainstate_nnx.nn.Regularization` or ``None``.
    precompute: optional function applied to the constrained value on read.
    fit: trainable (stored in a ``ParamState``) or fixed (a plain array).
    enable_cache_logging: log cache events at INFO level.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> tau = brainstate.nn.Param(jnp.array([1.0, 2.0]), t=brainstate.nn.SoftplusT(0.0),
    ...                           reg=brainstate.nn.L2Reg(0.1))
    >>> tau.value()
    Array([1., 2.], dtype=float32)
    >>> tau.val.value.round(4)  # stored unconstrained: softplus^-1
    Array([0.5413, 1.8546], dtype=float32)
    >>> round(float(tau.reg_loss()), 4)
    0.5
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    value,
    t: Transform = IdentityT(),
    reg: Optional[Regularization] = None,
    precompute: Optional[Callable] = None,
    fit: bool = True,
    enable_cache_logging: bool = False,
  ):
    super().__init__()
    self.fit = fit
    self.t = t
    self.reg = reg
    assert precompute is None or callable(precompute), (
      'precompute must be a callable function or None.'
    )
    self.precompute = precompute
    self._enable_cache_logging = enable_cache_logging
    self._cache = _Cache()

    if isinstance(value, State):
      value = value.value
    mantissa, unit = split_mantissa_unit(value)  # brainunit Quantities keep their unit
    val = maybe_attach_unit(jnp.asarray(mantissa, dtype=environ.dftype()), unit)
    if not (reg is None or isinstance(reg, Regularization)):
      raise ValueError('Regularization must be None or instance of Regularization.')
    if not isinstance(t, Transform):
      raise TypeError(f't must be an instance of Transform. But got {type(t)}.')
    val = t.inverse(val)
    self.val = ParamState(val) if fit else nnx.data(val)  # (a Quantity is data too)

  # -- cache ---------------------------------------------------------------------
  def _stored(self):
    return self.val.value if isinstance(self.val, State) else self.val

  def _raw(self):
    return self.val._raw_value if isinstance(self.val, State) else self.val

  def _compute(self, val):
    out = self.t.forward(val)
    if self.precompute is not None:
      out = self.precompute(out)
    return out

  def cache(self):
    """Computes the constrained value now and keeps it until the next write."""
    out = self._compute(self._stored())
    c = self._cache
    c.value, c.src, c.valid = out, self._raw(), True
    self._log_cache_event('manual_cache')
    return out

  def clear_cache(self) -> None:
    """Drops the cached value (the next ``value()`` recomputes it)."""
    c = self._cache
    if c.valid:
      c.valid, c.value, c.src = False, None, None
      self._log_cache_event('invalidate', reason='manual_clear')

  @property
  def cache_stats(self) -> dict:
    """``{'valid': ..., 'has_cached_value': ...}`` of the cache."""
    self._check_cache()
    return {'valid': self._cache.valid, 'has_cached_value': self._cache.value is not None}

  def _check_cache(self) -> bool:
    c = self._cache
    if c.valid and c.src is not self._raw():  # the stored value was written
      c.valid, c.value, c.src = False, None, None
      self._log_cache_event('invalidate', reason='state_write')
    return c.valid

  # -- value ---------------------------------------------------------------------
  def value(self):
    """The constrained value ``t.forward(stored)`` (cached after :meth:`cache`)."""
    if self._check_cache():
      self._log_cache_event('hit')
      return self._cache.value
    return self._compute(self._stored())

  def set_value(self, value) -> None:
    """Stores ``t.inverse(value)`` (``value`` is in the constrained space)."""
    c = self._cache
    c.valid, c.value, c.src = False, None, None
    self._log_cache_event('invalidate', reason='set_value')
    value = self.t.inverse(value)
    if isinstance(self.val, State):
      self.val.value = value
    else:
      self.val = nnx.data(value)

  def reg_loss(self):
    """The regularizer's loss on ``value()``; ``0.0`` if fixed or unregularized."""
    if not self.fit or self.reg is None:
      return 0.0
    return self.reg.loss(self.value())

  def reset_to_prior(self) -> None:
    """Sets the value to the regularizer's ``reset_value()`` (no-op without one)."""
    if self.reg is not None:
      self.set_value(self.reg.reset_value())

  def clip(self, min_val: Optional[float] = None, max_val: Optional[float] = None) -> None:
    """Clips the constrained value in place."""
    m, unit = split_mantissa_unit(self.value())
    lo = None if min_val is None else split_mantissa_unit(min_val if unit is None else min_val / unit)[0]
    hi = None if max_val is None else split_mantissa_unit(max_val if unit is None else max_val / unit)[0]
    self.set_value(maybe_attach_unit(jnp.clip(m, min=lo, max=hi), unit))

  # -- logging / repr ------------------------------------------------------------
  def _log_cache_event(self, event: str, **kwargs) -> None:
    if not self._enable_cache_logging:
      return
    c = self._cache
    if c.logger is None:
      c.logger = logging.getLogger(f'brainstate_nnx.nn.Param.{self.name or id(self)}')
    who = self.name or id(self)
    if event == 'hit':
      c.logger.info(f"Cache HIT for Param '{who}'")
    elif event == 'invalidate':
      c.logger.info(f"Cache INVALIDATED for Param '{who}' (reason: {kwargs.get('reason', 'unknown')})")
    else:
      c.logger.info(f"Cache {event.upper()} for Param '{who}'")

  def __pretty_repr_item__(self, name, value):
    if name in _HIDDEN:
      return None
    if name.startswith('_'):
      return None if value is None else (name[1:], value)
    return name, value

  # -- construction helper ---------------------------------------------------------
  @classmethod
  def init(
    cls,
    data: Union[Callable, Any, 'Param'],
    sizes: Union[int, Sequence[int]] = None,
    allow_none: bool = True,
    **param_kwargs,
  ) -> Union['Param', 'Const', None]:
    """A Param from ``data``: ``None``, an initializer/callable (called with ``sizes``),
    an array/number (wrapped in :class:`Const`) or a Param (returned as is).

    Example::

      >>> import brainstate_nnx as brainstate
      >>> brainstate.nn.Param.init(2.0, sizes=(3,)).value()
      Array(2., dtype=float32)
    """
    if data is None:
      if allow_none:
        return None
      raise ValueError(
        'Expect a parameter with type of float, ArrayType, Initializer, or '
        'Callable function, but we got None. '
      )
    if sizes is not None:
      sizes = tuple(_to_size(sizes))
    if not isinstance(data, Param):
      if callable(data):
        assert sizes is not None, (
          'When the parameter is a callable function, the size must be provided.'
        )
        data = data(sizes, **param_kwargs)
      if isinstance(data, (str, bytes)) or not (np.isscalar(data) or isinstance(data, (np.ndarray, jax.Array, Param))
              or is_quantity(data)):
        raise TypeError(f'Unknown parameter type: {type(data)}')
      data = Const(data)
    if sizes is not None:
      _check_shape(data.value(), sizes)
    return data


class Const(Param):
  """A fixed (non-trainable) :class:`Param`: ``Param(value, fit=False)``.

  The value is a plain array, not a ``ParamState``, so gradients and
  optimizers skip it; ``set_value`` still changes it.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> c = brainstate.nn.Const(jnp.array([1.0, 2.0]))
    >>> c.value(), len(c.states())
    (Array([1., 2.], dtype=float32), 0)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, value, **param_kwargs):
    if param_kwargs.pop('fit', False):
      raise ValueError('Const parameters must be non-trainable (fit=False).')
    super().__init__(value, fit=False, **param_kwargs)


def _to_size(x) -> Optional[Tuple[int, ...]]:
  if isinstance(x, (tuple, list)):
    return tuple(x)
  if isinstance(x, (int, np.integer)):
    return (x,)
  if x is None:
    return x
  raise ValueError(f'Cannot make a size for {x}')


def _check_shape(value, sizes) -> None:
  shape = tuple(np.shape(value))
  for a, b in zip(shape[::-1], tuple(sizes)[::-1]):
    if a != b and 1 not in (a, b):
      raise ValueError(
        f'The shape of the parameter {shape} does not match with the given size {sizes}'
      )


def _are_broadcastable_shapes(shape1, shape2) -> bool:
  """Whether the trailing dimensions of two shapes agree (or one of them is 1)."""
  return all(a == b or 1 in (a, b) for a, b in zip(shape1[::-1], shape2[::-1]))


def _expand_params_to_match_sizes(params, sizes):
  """``params`` with leading axes added until it has ``len(sizes)`` dimensions."""
  for _ in range(len(sizes) - params.ndim):
    params = jnp.expand_dims(params, axis=0)
  return params
