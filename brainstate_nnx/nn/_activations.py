"""Activation functions of BrainState's ``brainstate.nn`` namespace.

Every function works on plain arrays (JAX or NumPy, always returning a JAX
array) and gives the numbers of ``jax.nn``. When ``brainunit`` is installed
and ``x`` is a ``Quantity``, the functions follow BrainState's unit rules:

* ``relu``, ``leaky_relu``, ``prelu``, ``rrelu`` and ``hard_tanh`` keep the
  unit of ``x`` (for ``hard_tanh`` the bounds are read in that unit);
* every other function needs a dimensionless ``x`` and returns a plain array
  (a ``TypeError`` names the problem otherwise).
"""

from __future__ import annotations

from typing import Any, Sequence, Union

import jax
import jax.numpy as jnp
from jax.scipy import special as _special

from .. import random
from .._units import is_quantity, maybe_attach_unit

__all__ = [
  'tanh', 'relu', 'squareplus', 'softplus', 'soft_sign', 'sigmoid', 'silu',
  'swish', 'log_sigmoid', 'elu', 'leaky_relu', 'hard_tanh', 'celu', 'selu',
  'gelu', 'glu', 'logsumexp', 'log_softmax', 'softmax', 'standardize',
  'one_hot', 'relu6', 'hard_sigmoid', 'hard_silu', 'hard_swish',
  'hard_shrink', 'rrelu', 'mish', 'soft_shrink', 'prelu', 'tanh_shrink',
  'softmin', 'sparse_plus', 'sparse_sigmoid',
]


# ---------------------------------------------------------------------------
# unit plumbing (only active for brainunit Quantities)
# ---------------------------------------------------------------------------

def _unitless(x, fname: str):
  """``x`` as a plain number; a Quantity must be dimensionless."""
  if is_quantity(x):
    if not x.dim.is_dimensionless:
      raise TypeError(
        f'{fname} needs a dimensionless input, got a Quantity in unit '
        f'{x.unit}. Divide it by a unit first (e.g. `x / u.mV`).'
      )
    return x.to_decimal()
  return x


def _mantissa_unit(x):
  if is_quantity(x):
    return x.mantissa, x.unit
  return x, None


def _keep_unit(fn, x, *args, **kwargs):
  m, unit = _mantissa_unit(x)
  return maybe_attach_unit(fn(jnp.asarray(m), *args, **kwargs), unit)


def _plain(fn, fname, x, *args, **kwargs):
  return fn(jnp.asarray(_unitless(x, fname)), *args, **kwargs)


# ---------------------------------------------------------------------------
# unit-preserving functions
# ---------------------------------------------------------------------------

def relu(x):
  r"""Rectified linear unit, :math:`\max(x, 0)`; keeps the unit of a Quantity.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.relu(jnp.array([-1., 0., 2.]))
    Array([0., 0., 2.], dtype=float32)
  """
  return _keep_unit(jax.nn.relu, x)


def leaky_relu(x, negative_slope=1e-2):
  r"""``x`` where :math:`x \ge 0`, else ``negative_slope * x``; keeps units.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.leaky_relu(jnp.array([-2., 3.]), negative_slope=0.1)
    Array([-0.2,  3. ], dtype=float32)
  """
  m, unit = _mantissa_unit(x)
  m = jnp.asarray(m)
  return maybe_attach_unit(jnp.where(m >= 0, m, negative_slope * m), unit)


def prelu(x, a=0.25):
  r"""Parametric ReLU: ``x`` where :math:`x \ge 0`, else ``a * x``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.prelu(jnp.array([-2., 3.]), a=0.5)
    Array([-1.,  3.], dtype=float32)
  """
  m, unit = _mantissa_unit(x)
  m = jnp.asarray(m)
  return maybe_attach_unit(jnp.where(m >= 0., m, a * m), unit)


def rrelu(x, lower: float = 0.125, upper: float = 0.3333333333333333):
  r"""Randomized leaky ReLU: negative inputs scaled by ``a ~ U(lower, upper)``.

  One slope is drawn per element from the default random stream (as
  BrainState does, in training and evaluation alike).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.random.seed(0)
    >>> y = brainstate.nn.rrelu(jnp.array([-1., 2.]))
    >>> bool(-1/3 <= y[0] <= -1/8), float(y[1])
    (True, 2.0)
  """
  return _rrelu(x, lower, upper, None)


def _rrelu(x, lower, upper, rngs):
  """``rrelu`` drawing its slopes from ``rngs`` (``None``: the default stream;
  a ``RandomState`` or an ``nnx.RngStream`` owned by a layer)."""
  m, unit = _mantissa_unit(x)
  m = jnp.asarray(m)
  dtype = jnp.result_type(m, float)
  shape = jnp.shape(m)
  if rngs is None:
    a = random.uniform(lower, upper, size=shape, dtype=dtype)
  elif isinstance(rngs, random.RandomState):
    a = rngs.uniform(lower, upper, size=shape, dtype=dtype)
  else:  # an nnx.RngStream
    a = jax.random.uniform(rngs(), shape, dtype=dtype, minval=lower, maxval=upper)
  return maybe_attach_unit(jnp.where(m >= 0., m, a * m), unit)


def hard_tanh(x, min_val: float = -1.0, max_val: float = 1.0):
  r"""``x`` clipped to ``[min_val, max_val]`` (bounds in the unit of ``x``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.hard_tanh(jnp.array([-3., 0.5, 3.]))
    Array([-1. ,  0.5,  1. ], dtype=float32)
  """
  m, unit = _mantissa_unit(x)
  m = jnp.asarray(m)
  if unit is not None:
    lo = _quantity_in(min_val, unit)
    hi = _quantity_in(max_val, unit)
  else:
    lo = _unitless(min_val, 'hard_tanh')
    hi = _unitless(max_val, 'hard_tanh')
  out = jnp.where(m > hi, hi, jnp.where(m < lo, lo, m))
  return maybe_attach_unit(out, unit)


def _quantity_in(v, unit):
  """``v`` (a Quantity or plain number) as a mantissa in ``unit``."""
  import sys

  bu = sys.modules.get('brainunit') or sys.modules['saiunit']
  return bu.Quantity(v).to(unit).mantissa


# ---------------------------------------------------------------------------
# functions of a dimensionless input
# ---------------------------------------------------------------------------

def tanh(x):
  r"""Hyperbolic tangent.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.tanh(jnp.array([0.]))
    Array([0.], dtype=float32)
  """
  return _plain(jnp.tanh, 'tanh', x)


def tanh_shrink(x):
  r""":math:`x - \tanh(x)`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.tanh_shrink(jnp.array([0.]))
    Array([0.], dtype=float32)
  """
  x = jnp.asarray(_unitless(x, 'tanh_shrink'))
  return x - jnp.tanh(x)


def softmin(x, axis: int | tuple[int, ...] | None = -1):
  r"""Softmax of ``-x`` along ``axis``: small entries get large weights.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.softmin(jnp.array([0., 0.]))
    Array([0.5, 0.5], dtype=float32)
  """
  x = jnp.asarray(_unitless(x, 'softmin'))
  return jax.nn.softmax(-x, axis=axis)


def soft_shrink(x, lambd: float = 0.5):
  r"""Shrinks ``x`` towards zero by ``lambd``; zero inside ``[-lambd, lambd]``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.soft_shrink(jnp.array([-2., 0.2, 2.]))
    Array([-1.5,  0. ,  1.5], dtype=float32)
  """
  x = jnp.asarray(_unitless(x, 'soft_shrink'))
  return jnp.where(x > lambd, x - lambd,
                   jnp.where(x < -lambd, x + lambd, jnp.zeros_like(x)))


def hard_shrink(x, lambd: float = 0.5):
  r"""``x`` outside ``[-lambd, lambd]``, zero inside.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.hard_shrink(jnp.array([-2., 0.2, 2.]))
    Array([-2.,  0.,  2.], dtype=float32)
  """
  x = jnp.asarray(_unitless(x, 'hard_shrink'))
  return jnp.where(x > lambd, x, jnp.where(x < -lambd, x, jnp.zeros_like(x)))


def mish(x):
  r""":math:`x \tanh(\mathrm{softplus}(x))`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.mish(jnp.array([0.]))
    Array([0.], dtype=float32)
  """
  x = jnp.asarray(_unitless(x, 'mish'))
  return x * jnp.tanh(jax.nn.softplus(x))


def squareplus(x, b=4):
  r""":math:`(x + \sqrt{x^2 + b}) / 2`, a smooth ReLU.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.squareplus(jnp.array([0.]))
    Array([1.], dtype=float32)
  """
  return _plain(jax.nn.squareplus, 'squareplus', x, b=b)


def softplus(x):
  r""":math:`\log(1 + e^x)`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.softplus(jnp.array([0.]))
    Array([0.6931472], dtype=float32)
  """
  return _plain(jax.nn.softplus, 'softplus', x)


def soft_sign(x):
  r""":math:`x / (|x| + 1)`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.soft_sign(jnp.array([1.]))
    Array([0.5], dtype=float32)
  """
  return _plain(jax.nn.soft_sign, 'soft_sign', x)


def sigmoid(x):
  r"""Logistic sigmoid :math:`1 / (1 + e^{-x})`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.sigmoid(jnp.array([0.]))
    Array([0.5], dtype=float32)
  """
  return _plain(jax.nn.sigmoid, 'sigmoid', x)


def silu(x):
  r"""Sigmoid-weighted linear unit :math:`x \sigma(x)` (also ``swish``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.silu(jnp.array([0.]))
    Array([0.], dtype=float32)
  """
  return _plain(jax.nn.silu, 'silu', x)


swish = silu


def log_sigmoid(x):
  r""":math:`\log \sigma(x)`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.log_sigmoid(jnp.array([0.]))
    Array([-0.6931472], dtype=float32)
  """
  return _plain(jax.nn.log_sigmoid, 'log_sigmoid', x)


def elu(x, alpha=1.0):
  r"""Exponential linear unit: ``x`` for positive ``x``, else :math:`\alpha(e^x - 1)`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.elu(jnp.array([0., 1.]))
    Array([0., 1.], dtype=float32)
  """
  return _plain(jax.nn.elu, 'elu', x, alpha=alpha)


def celu(x, alpha=1.0):
  r"""Continuously differentiable ELU: :math:`\max(0,x) + \min(0, \alpha(e^{x/\alpha}-1))`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.celu(jnp.array([0., 1.]))
    Array([0., 1.], dtype=float32)
  """
  return _plain(jax.nn.celu, 'celu', x, alpha=alpha)


def selu(x):
  r"""Scaled ELU with the self-normalising constants.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.selu(jnp.array([0.]))
    Array([0.], dtype=float32)
  """
  return _plain(jax.nn.selu, 'selu', x)


def gelu(x, approximate: bool = True):
  r"""Gaussian error linear unit (``approximate``: the tanh formula).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.gelu(jnp.array([0.]))
    Array([0.], dtype=float32)
  """
  return _plain(jax.nn.gelu, 'gelu', x, approximate=approximate)


def glu(x, axis: int = -1):
  r"""Gated linear unit: splits ``x`` in two along ``axis``, returns ``a * sigmoid(b)``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.glu(jnp.array([2., 0.]))
    Array([1.], dtype=float32)
  """
  return _plain(jax.nn.glu, 'glu', x, axis=axis)


def relu6(x):
  r""":math:`\min(\max(x, 0), 6)`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.relu6(jnp.array([-1., 8.]))
    Array([0., 6.], dtype=float32)
  """
  return _plain(jax.nn.relu6, 'relu6', x)


def hard_sigmoid(x):
  r""":math:`\mathrm{relu6}(x + 3) / 6`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.hard_sigmoid(jnp.array([0.]))
    Array([0.5], dtype=float32)
  """
  return _plain(jax.nn.hard_sigmoid, 'hard_sigmoid', x)


def hard_silu(x):
  r""":math:`x \cdot \mathrm{hard\_sigmoid}(x)` (also ``hard_swish``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.hard_silu(jnp.array([3.]))
    Array([3.], dtype=float32)
  """
  return _plain(jax.nn.hard_silu, 'hard_silu', x)


hard_swish = hard_silu


def sparse_plus(x):
  r"""Sparse plus: 0 below -1, ``x`` above 1, :math:`(x+1)^2/4` between.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.sparse_plus(jnp.array([-2., 0., 2.]))
    Array([0.  , 0.25, 2.  ], dtype=float32)
  """
  return _plain(jax.nn.sparse_plus, 'sparse_plus', x)


def sparse_sigmoid(x):
  r"""Sparse sigmoid: 0 below -1, 1 above 1, :math:`(x+1)/2` between.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.sparse_sigmoid(jnp.array([-2., 0., 2.]))
    Array([0. , 0.5, 1. ], dtype=float32)
  """
  return _plain(jax.nn.sparse_sigmoid, 'sparse_sigmoid', x)


# ---------------------------------------------------------------------------
# normalising functions (thin wrappers over jax.nn / jax.scipy)
# ---------------------------------------------------------------------------

def logsumexp(a, axis=None, b=None, keepdims: bool = False,
              return_sign: bool = False, where=None):
  r"""Numerically stable :math:`\log \sum_i b_i e^{a_i}` (``jax.scipy.special.logsumexp``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.logsumexp(jnp.array([0., 0.]))
    Array(0.6931472, dtype=float32)
  """
  return _special.logsumexp(a, axis=axis, b=b, keepdims=keepdims,
                            return_sign=return_sign, where=where)


def log_softmax(x, axis: int | tuple[int, ...] | None = -1, where=None):
  r"""Logarithm of :func:`softmax`, computed stably.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.log_softmax(jnp.array([0., 0.]))
    Array([-0.6931472, -0.6931472], dtype=float32)
  """
  return jax.nn.log_softmax(_unitless(x, 'log_softmax'), axis=axis, where=where)


def softmax(x, axis: int | tuple[int, ...] | None = -1, where=None):
  r""":math:`e^{x_i} / \sum_j e^{x_j}` along ``axis``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.softmax(jnp.array([0., 0.]))
    Array([0.5, 0.5], dtype=float32)
  """
  return jax.nn.softmax(_unitless(x, 'softmax'), axis=axis, where=where)


def standardize(x, axis: int | tuple[int, ...] | None = -1, variance=None,
                epsilon=1e-5, where=None):
  r"""``(x - mean) / sqrt(variance + epsilon)`` along ``axis``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.standardize(jnp.array([1., 3.]), epsilon=0.)
    Array([-1.,  1.], dtype=float32)
  """
  return jax.nn.standardize(_unitless(x, 'standardize'), axis=axis, where=where,
                            variance=variance, epsilon=epsilon)


def one_hot(x: Any, num_classes: int, *, dtype: Any = jnp.float_,
            axis: Union[int, Sequence[int]] = -1):
  r"""One-hot encoding of the integer array ``x`` with ``num_classes`` classes.

  Out-of-range indices (negative or ``>= num_classes``) give all-zero rows.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.one_hot(jnp.array([0, 2]), 3)
    Array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
  """
  return jax.nn.one_hot(_unitless(x, 'one_hot'), axis=axis,
                        num_classes=num_classes, dtype=dtype)
