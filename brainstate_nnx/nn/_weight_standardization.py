"""Weight standardization (Qiao et al., 2019), as BrainState's ``nn.weight_standardization``."""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp

from .._units import is_quantity

__all__ = ['weight_standardization']


def weight_standardization(
  w: Any,
  eps: float = 1e-4,
  gain: Optional[Any] = None,
  out_axis: int = -1,
):
  """Rescales ``w`` to zero mean and unit fan-in variance along every axis but ``out_axis``.

  For each output unit ``j`` the slice ``w[..., j]`` is shifted by its mean and
  divided by ``sqrt(max(var * fan_in, eps))``, where ``fan_in`` is the number of
  entries of the slice; ``gain`` (broadcastable to ``w``, typically of shape
  ``(1, ..., 1, out)``) multiplies the scale. This is what ``ScaledWSLinear``
  and ``ScaledWSConv*`` apply to their kernels on every call.

  A ``brainunit`` Quantity ``w`` is standardized on its mantissa (the result
  is dimensionless, since the unit cancels).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> w = jnp.array([[1., 2.], [3., 6.]])
    >>> v = brainstate.nn.weight_standardization(w, eps=0.)
    >>> print(jnp.round(v, 4))
    [[-0.7071 -0.7071]
     [ 0.7071  0.7071]]
  """
  if is_quantity(w):
    w = w.mantissa
  w = jnp.asarray(w)
  if out_axis < 0:
    out_axis += w.ndim
  axes = tuple(i for i in range(w.ndim) if i != out_axis)
  fan_in = 1
  for i in axes:
    fan_in *= w.shape[i]
  mean = jnp.mean(w, axis=axes, keepdims=True)
  var = jnp.var(w, axis=axes, keepdims=True)
  scale = jax.lax.rsqrt(jnp.maximum(var * fan_in, eps))
  if gain is not None:
    scale = gain * scale
  return w * scale - mean * scale
