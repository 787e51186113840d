"""Bijective parameter transforms (BrainState's ``nn.*T`` classes).

A transform maps an unconstrained value ``x`` (what an optimizer updates) to
a constrained value ``y = forward(x)`` (what a model reads). :class:`~brainstate_nnx.nn.Param`
stores ``inverse(value)`` and reads ``forward(stored)``.

The numbers follow BrainState 0.5.4 exactly (including the clipping of
``exp`` at 20 in :class:`LogT`, :class:`ExpT`, :class:`PositiveT` and
:class:`SigmoidT`). Bounds may be ``brainunit`` Quantities (when brainunit is
installed and imported): ``forward`` then returns Quantities in the unit of
``lower`` and ``inverse`` accepts any unit of the same dimension.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._units import is_quantity, maybe_attach_unit, split_mantissa_unit

__all__ = [
  'Transform', 'IdentityT', 'SigmoidT', 'SoftplusT', 'NegSoftplusT', 'LogT',
  'ExpT', 'TanhT', 'SoftsignT', 'AffineT', 'ChainT', 'MaskedT', 'ClipT',
  'ReluT', 'PositiveT', 'NegativeT', 'ScaledSigmoidT', 'PowerT', 'OrderedT',
  'SimplexT', 'UnitVectorT',
]


def _clipped_exp(x, max_value: float = 20.0):
  # exp(min(x, max_value)): keeps exp finite for large inputs.
  return jnp.exp(jnp.clip(x, max=max_value))


save_exp = _clipped_exp  # BrainState's (module-level, not exported) name


def _sum_last(v):
  """Sums the event (last) axis; a scalar is summed to a scalar."""
  return jnp.sum(v, axis=-1) if jnp.ndim(v) > 0 else jnp.sum(v)


def _softplus_inv(z):
  # log(exp(z) - 1), written to stay accurate for large and small z.
  return z + jnp.log(-jnp.expm1(-z))


def _unit_of(v):
  return split_mantissa_unit(v)[1]


def _strip(y, unit):
  """The mantissa of ``y`` in ``unit`` (``y`` itself when ``unit`` is None)."""
  if unit is None:
    return y
  q = y / unit
  return q.mantissa if is_quantity(q) else q


def _bounds(obj, lower, upper=None):
  """Stores BrainState's public ``lower``/``width`` and their mantissas ``_lo``/``_w``.

  With ``brainunit`` Quantities as bounds the arithmetic runs on mantissas in
  the unit of ``lower`` and ``forward`` attaches that unit to its result.
  """
  obj.lower = lower
  unit = _unit_of(lower)
  obj._unit = unit
  obj._lo = _strip(lower, unit)
  if upper is not None:
    obj.width = upper - lower
    obj._w = _strip(obj.width, unit)


def _out(obj, m):
  return maybe_attach_unit(m, obj._unit)


class Transform(ABC):
  """Base class of parameter transforms.

  Subclasses implement ``forward`` (unconstrained -> constrained) and
  ``inverse``; they may implement ``log_abs_det_jacobian``. Calling a
  transform applies ``forward``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> class Square(brainstate.nn.Transform):
    ...   def forward(self, x):
    ...     return x ** 2
    ...   def inverse(self, y):
    ...     return jnp.sqrt(y)
    >>> Square()(jnp.array(3.0))
    Array(9., dtype=float32, weak_type=True)
  """

  __module__ = 'brainstate_nnx.nn'

  def __repr__(self) -> str:
    return f'{type(self).__name__}()'

  def __call__(self, x):
    return self.forward(x)

  @abstractmethod
  def forward(self, x):
    """Maps an unconstrained value to the constrained domain."""

  @abstractmethod
  def inverse(self, y):
    """Maps a constrained value back to the unconstrained domain."""

  def log_abs_det_jacobian(self, x, y):
    """``log |det d forward(x) / dx|``, summed over the last axis."""
    raise NotImplementedError(
      f'{type(self).__name__} does not implement log_abs_det_jacobian; '
      'override it in the subclass.'
    )


class IdentityT(Transform):
  """The identity (no constraint).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.IdentityT().inverse(2.0)
    2.0
  """

  __module__ = 'brainstate_nnx.nn'

  def forward(self, x):
    return x

  def inverse(self, y):
    return y

  def log_abs_det_jacobian(self, x, y):
    return jnp.zeros(jnp.shape(x)[:-1] if jnp.ndim(x) > 0 else ())


class SigmoidT(Transform):
  """``y = lower + (upper - lower) * sigmoid(x)``: values in ``(lower, upper)``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> t = brainstate.nn.SigmoidT(0.0, 2.0)
    >>> t.forward(jnp.array(0.0))
    Array(1., dtype=float32, weak_type=True)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, lower, upper) -> None:
    _bounds(self, lower, upper)

  def __repr__(self) -> str:
    return f'SigmoidT(lower={self.lower}, upper={self.lower + self.width})'

  def forward(self, x):
    return _out(self, self._lo + self._w * (1.0 / (1.0 + _clipped_exp(-x))))

  def inverse(self, y):
    z = (_strip(y, self._unit) - self._lo) / self._w
    return -jnp.log(1.0 / z - 1.0)

  def log_abs_det_jacobian(self, x, y):
    terms = jnp.log(self._w) + jax.nn.log_sigmoid(x) + jax.nn.log_sigmoid(-x)
    return _sum_last(terms)


class ScaledSigmoidT(Transform):
  """``y = lower + (upper - lower) * sigmoid(beta * x)``; ``beta > 0`` sets the sharpness.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> t = brainstate.nn.ScaledSigmoidT(0.0, 1.0, beta=2.0)
    >>> float(t.inverse(t.forward(jnp.array(0.5))))
    0.5
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, lower, upper, beta: float = 1.0) -> None:
    if not (beta > 0) or beta == float('inf') or beta != beta:
      raise ValueError(f'beta must be a positive finite number, but got {beta}.')
    _bounds(self, lower, upper)
    self.beta = beta

  def __repr__(self) -> str:
    return (f'ScaledSigmoidT(lower={self.lower}, upper={self.lower + self.width}, '
            f'beta={self.beta})')

  def forward(self, x):
    return _out(self, self._lo + self._w * jax.nn.sigmoid(self.beta * x))

  def inverse(self, y):
    return jax.scipy.special.logit((_strip(y, self._unit) - self._lo) / self._w) / self.beta


class SoftplusT(Transform):
  """``y = softplus(x) + lower``: values above ``lower``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> t = brainstate.nn.SoftplusT(1.0)
    >>> round(float(t.forward(jnp.array(0.0))), 4)
    1.6931
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, lower) -> None:
    _bounds(self, lower)

  def __repr__(self) -> str:
    return f'SoftplusT(lower={self.lower})'

  def forward(self, x):
    return _out(self, jax.nn.softplus(x) + self._lo)

  def inverse(self, y):
    return _softplus_inv(jnp.asarray(_strip(y, self._unit) - self._lo))

  def log_abs_det_jacobian(self, x, y):
    return _sum_last(jax.nn.log_sigmoid(x))


class NegSoftplusT(SoftplusT):
  """``y = upper - softplus(-x)``: values below ``upper`` (kept as ``.lower``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> t = brainstate.nn.NegSoftplusT(0.0)
    >>> bool(t.forward(jnp.array(3.0)) < 0)
    True
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, upper) -> None:
    super().__init__(upper)

  def __repr__(self) -> str:
    return f'NegSoftplusT(upper={self.lower})'

  def forward(self, x):
    return _out(self, self._lo - jax.nn.softplus(-x))

  def inverse(self, y):
    return -_softplus_inv(jnp.asarray(self._lo - _strip(y, self._unit)))


class LogT(Transform):
  """``y = lower + exp(x)`` (exponent clipped at 20): values above ``lower``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.LogT(1.0).forward(jnp.array(0.0))
    Array(2., dtype=float32, weak_type=True)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, lower) -> None:
    _bounds(self, lower)

  def __repr__(self) -> str:
    return f'{type(self).__name__}(lower={self.lower})'

  def forward(self, x):
    return _out(self, self._lo + _clipped_exp(x))

  def inverse(self, y):
    return jnp.log(_strip(y, self._unit) - self._lo)

  def log_abs_det_jacobian(self, x, y):
    return _sum_last(x)


class ExpT(Transform):
  """Same map as :class:`LogT`: ``y = lower + exp(x)`` (exponent clipped at 20).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ExpT(0.0).inverse(jnp.array(1.0))
    Array(0., dtype=float32, weak_type=True)
  """

  __module__ = 'brainstate_nnx.nn'

  __init__ = LogT.__init__
  __repr__ = LogT.__repr__
  forward = LogT.forward
  inverse = LogT.inverse
  log_abs_det_jacobian = LogT.log_abs_det_jacobian


class TanhT(Transform):
  """``y = lower + (upper - lower) * (tanh(x) + 1) / 2``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.TanhT(-1.0, 1.0).forward(jnp.array(0.0))
    Array(0., dtype=float32, weak_type=True)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, lower, upper) -> None:
    _bounds(self, lower, upper)

  def __repr__(self) -> str:
    return f'{type(self).__name__}(lower={self.lower}, upper={self.lower + self.width})'

  def forward(self, x):
    return _out(self, self._lo + self._w * (jnp.tanh(x) + 1.0) / 2.0)

  def inverse(self, y):
    return jnp.arctanh(2.0 * (_strip(y, self._unit) - self._lo) / self._w - 1.0)


class SoftsignT(Transform):
  """``y = lower + (upper - lower) * (x / (1 + |x|) + 1) / 2``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.SoftsignT(0.0, 2.0).forward(jnp.array(1.0))
    Array(1.5, dtype=float32, weak_type=True)
  """

  __module__ = 'brainstate_nnx.nn'

  __init__ = TanhT.__init__
  __repr__ = TanhT.__repr__

  def forward(self, x):
    return _out(self, self._lo + self._w * (x / (1.0 + jnp.abs(x)) + 1.0) / 2.0)

  def inverse(self, y):
    z = 2.0 * (_strip(y, self._unit) - self._lo) / self._w - 1.0
    return z / (1.0 - jnp.abs(z))


class ClipT(Transform):
  """Clips both ways into ``[lower, upper]`` (not bijective outside the box).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ClipT(0.0, 1.0).forward(jnp.array([-1.0, 0.5, 2.0]))
    Array([0. , 0.5, 1. ], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, lower, upper) -> None:
    self.lower = lower
    self.upper = upper

  def __repr__(self) -> str:
    return f'ClipT(lower={self.lower}, upper={self.upper})'

  def _clip(self, x):
    m, unit = split_mantissa_unit(x)
    lo = None if self.lower is None else _strip(self.lower, unit)
    hi = None if self.upper is None else _strip(self.upper, unit)
    return maybe_attach_unit(jnp.clip(m, min=lo, max=hi), unit)

  def forward(self, x):
    return self._clip(x)

  def inverse(self, y):
    return self._clip(y)


class AffineT(Transform):
  """``y = scale * x + shift``; ``scale`` must be non-zero.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.AffineT(2.0, 1.0).inverse(jnp.array(5.0))
    Array(2., dtype=float32, weak_type=True)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, scale, shift):
    if jnp.allclose(split_mantissa_unit(scale)[0], 0):
      raise ValueError('a cannot be zero, must be invertible')
    self.a = scale
    self.b = shift

  def __repr__(self) -> str:
    return f'AffineT(scale={self.a}, shift={self.b})'

  def forward(self, x):
    return self.a * x + self.b

  def inverse(self, x):
    return (x - self.b) / self.a

  def log_abs_det_jacobian(self, x, y):
    log_a = jnp.log(jnp.abs(split_mantissa_unit(self.a)[0]))
    if jnp.ndim(x) == 0:
      return jnp.sum(log_a)
    return jnp.sum(jnp.broadcast_to(log_a, jnp.shape(x)), axis=-1)


class ChainT(Transform):
  """Composition: ``forward`` applies the transforms in order, ``inverse`` in reverse.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> t = brainstate.nn.ChainT(brainstate.nn.AffineT(2.0, 0.0), brainstate.nn.ExpT(0.0))
    >>> float(t.forward(jnp.array(0.0)))
    1.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, *transforms: Transform) -> None:
    self.transforms: Sequence[Transform] = transforms

  def __repr__(self) -> str:
    return f"ChainT({', '.join(repr(t) for t in self.transforms)})"

  def forward(self, x):
    for t in self.transforms:
      x = t.forward(x)
    return x

  def inverse(self, y):
    for t in reversed(self.transforms):
      y = t.inverse(y)
    return y

  def log_abs_det_jacobian(self, x, y):
    total = jnp.zeros(jnp.shape(x)[:-1] if jnp.ndim(x) > 0 else ())
    for t in self.transforms:
      nxt = t.forward(x)
      total = total + t.log_abs_det_jacobian(x, nxt)
      x = nxt
    return total


class MaskedT(Transform):
  """Applies ``transform`` where ``mask`` is true and the identity elsewhere.

  Masked-out entries go through the inner transform as ``safe_value``, so its
  gradient stays finite there.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> t = brainstate.nn.MaskedT(jnp.array([True, False]), brainstate.nn.ExpT(0.0))
    >>> t.forward(jnp.array([0.0, -3.0]))
    Array([ 1., -3.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, mask, transform: Transform, safe_value=1.0) -> None:
    self.mask = mask
    self.transform = transform
    self.safe_value = safe_value

  def __repr__(self) -> str:
    return f'MaskedT(mask=..., transform={self.transform!r})'

  def forward(self, x):
    safe = jnp.where(self.mask, x, self.safe_value)
    return jnp.where(self.mask, self.transform.forward(safe), x)

  def inverse(self, y):
    safe = jnp.where(self.mask, y, self.safe_value)
    return jnp.where(self.mask, self.transform.inverse(safe), y)


class ReluT(Transform):
  """``y = relu(x) + lower_bound``; ``inverse(y) = relu(y - lower_bound)``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ReluT(1.0).forward(jnp.array([-2.0, 2.0]))
    Array([1., 3.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, lower_bound: float = 0.0):
    self.lower_bound = lower_bound

  def forward(self, x):
    return jax.nn.relu(x) + self.lower_bound

  def inverse(self, y):
    return jax.nn.relu(y - self.lower_bound)


class PositiveT(Transform):
  """``y = exp(x)`` (exponent clipped at 20): strictly positive values.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.PositiveT().forward(jnp.array(0.0))
    Array(1., dtype=float32, weak_type=True)
  """

  __module__ = 'brainstate_nnx.nn'

  def forward(self, x):
    return _clipped_exp(x)

  def inverse(self, y):
    return jnp.log(y)

  def log_abs_det_jacobian(self, x, y):
    return _sum_last(x)


class NegativeT(Transform):
  """``y = -softplus(-x)``: strictly negative values.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> bool(brainstate.nn.NegativeT().forward(jnp.array(5.0)) < 0)
    True
  """

  __module__ = 'brainstate_nnx.nn'

  def forward(self, x):
    return -jax.nn.softplus(-x)

  def inverse(self, y):
    return -_softplus_inv(-jnp.asarray(y))


class PowerT(Transform):
  """Box-Cox: ``y = (x**lmbda - 1) / lmbda`` (``log x`` when ``lmbda == 0``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.PowerT(0.5).forward(jnp.array([1.0, 9.0]))
    Array([0., 4.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, lmbda: float = 0.5) -> None:
    self.lmbda = lmbda

  def __repr__(self) -> str:
    return f'PowerT(lmbda={self.lmbda})'

  def forward(self, x):
    if np.abs(self.lmbda) < 1e-10:  # static: also works while tracing
      return jnp.log(x)
    return (jnp.power(x, self.lmbda) - 1) / self.lmbda

  def inverse(self, y):
    if np.abs(self.lmbda) < 1e-10:  # static: also works while tracing
      return jnp.exp(y)
    return jnp.power(y * self.lmbda + 1, 1 / self.lmbda)


class OrderedT(Transform):
  """Increasing vectors: ``y[0] = x[0]``, ``y[i] = y[i-1] + softplus(x[i])``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> y = brainstate.nn.OrderedT().forward(jnp.array([0.0, -1.0, 2.0]))
    >>> bool(jnp.all(jnp.diff(y) > 0))
    True
  """

  __module__ = 'brainstate_nnx.nn'

  def forward(self, x):
    head = x[..., :1]
    steps = jax.nn.softplus(x[..., 1:])
    return jnp.concatenate([head, head + jnp.cumsum(steps, axis=-1)], axis=-1)

  def inverse(self, y):
    gaps = y[..., 1:] - y[..., :-1]
    return jnp.concatenate([y[..., :1], _softplus_inv(gaps)], axis=-1)


class SimplexT(Transform):
  """Stick breaking: ``n - 1`` free values to ``n`` positive values summing to 1.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.SimplexT().forward(jnp.zeros(2))
    Array([0.5 , 0.25, 0.25], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def forward(self, x):
    z = jax.nn.sigmoid(x)
    rest = jnp.cumprod(1 - z, axis=-1)
    before = jnp.concatenate([jnp.ones((*z.shape[:-1], 1)), rest[..., :-1]], axis=-1)
    return jnp.concatenate([z * before, rest[..., -1:]], axis=-1)

  def inverse(self, y):
    y = jnp.asarray(y)
    head = y[..., :-1]
    left = 1 - jnp.cumsum(head, axis=-1) + head
    eps = jnp.finfo(y.dtype).eps
    z = jnp.clip(head / (left + eps), eps, 1.0 - eps)
    return jax.scipy.special.logit(z)


class UnitVectorT(Transform):
  """``y = x / ||x||`` over the last axis; ``inverse`` is the identity.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.UnitVectorT().forward(jnp.array([3.0, 4.0]))
    Array([0.6, 0.8], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def forward(self, x):
    return x / jnp.sqrt(jnp.sum(x ** 2, axis=-1, keepdims=True) + 1e-8)

  def inverse(self, y):
    return y
