"""Orthogonal initializers: Orthogonal and DeltaOrthogonal (for convolution kernels)."""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp

from ... import environ, random
from ... import _units
from ._base import Initializer, to_size, _with_unit

__all__ = ['Orthogonal', 'DeltaOrthogonal']


class Orthogonal(Initializer):
  """A (semi-)orthogonal matrix along ``axis``, times ``scale`` (QR of a normal draw).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> w = brainstate.nn.init.Orthogonal()((3, 3))
    >>> bool(jnp.allclose(w @ w.T, jnp.eye(3), atol=1e-5))
    True
  """

  def __init__(self, scale=1.0, axis: int = -1, seed=None, unit=None):
    self.scale = scale
    self.axis = axis
    self.rng = random.default_rng(seed)
    self.unit = unit

  def __call__(self, shape, **kwargs):
    dtype = kwargs.get('dtype', environ.dftype())
    rng = kwargs.get('rng', self.rng)
    shape = to_size(shape)
    rows = shape[self.axis]
    cols = np.prod(shape) // rows
    tall = (rows, cols) if rows > cols else (cols, rows)
    q, r = jnp.linalg.qr(rng.normal(size=tall, dtype=dtype))
    q *= jnp.sign(jnp.diag(r))  # make the decomposition unique
    if rows < cols:
      q = q.T
    q = jnp.reshape(q, (rows,) + tuple(np.delete(shape, self.axis)))
    q = jnp.moveaxis(q, 0, self.axis)
    return _with_unit(jnp.asarray(self.scale, dtype=dtype) * q, self.unit)


class DeltaOrthogonal(Initializer):
  """A convolution kernel that is orthogonal at the spatial centre and zero elsewhere.

  ``shape`` is 3-D, 4-D or 5-D (spatial axes, then in and out channels with
  in <= out).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> w = brainstate.nn.init.DeltaOrthogonal()((3, 2, 2))
    >>> w.shape, float(abs(w[0]).sum())
    ((3, 2, 2), 0.0)
  """

  def __init__(self, scale=1.0, axis: int = -1, seed=None, unit=None):
    self.scale = scale
    self.axis = axis
    self.orghogonal = Orthogonal(scale=scale, axis=axis, seed=seed)  # BrainState's attribute name
    self.unit = unit

  def __call__(self, shape, **kwargs):
    shape = to_size(shape)
    dtype = kwargs.get('dtype', environ.dftype())
    if len(shape) not in (3, 4, 5):
      raise ValueError('Delta orthogonal initializer requires a 3D, 4D or 5D shape.')
    if shape[-1] < shape[-2]:
      raise ValueError('`fan_in` must be less or equal than `fan_out`. ')
    ortho, _ = _units.split_mantissa_unit(self.orghogonal(shape[-2:]))
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    w = jnp.zeros(shape, dtype=dtype).at[centre].set(ortho)
    return _with_unit(w, self.unit)
