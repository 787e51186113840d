"""Variance-scaling initializers: VarianceScaling and the Kaiming/Xavier/Lecun presets."""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp

from ... import environ, random
from ._base import Initializer, to_size, _with_unit

__all__ = ['VarianceScaling', 'KaimingUniform', 'KaimingNormal', 'XavierUniform',
           'XavierNormal', 'LecunUniform', 'LecunNormal']

_MODES = ('fan_in', 'fan_out', 'fan_avg')
_DISTRIBUTIONS = ('truncated_normal', 'normal', 'uniform')
# standard deviation of a unit normal truncated to [-2, 2]
_TRUNC_STD = 0.8796256610342398


def _compute_fans(shape, in_axis=-2, out_axis=-1):
  """``(fan_in, fan_out)``: the in/out axis sizes times the receptive field size."""
  receptive = np.prod(shape) / shape[in_axis] / shape[out_axis]
  return shape[in_axis] * receptive, shape[out_axis] * receptive


class VarianceScaling(Initializer):
  """Samples with variance ``scale / n``; ``n`` is fan-in, fan-out or their mean.

  ``distribution`` is ``'truncated_normal'`` (rescaled to the target
  variance), ``'normal'`` or ``'uniform'``. Fans are computed from the
  ``in_axis``/``out_axis`` sizes times the product of the other axes.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> init = brainstate.nn.init.VarianceScaling(1.0, 'fan_in', 'uniform')
    >>> w = init((100, 10))
    >>> w.shape, bool((abs(w) <= (3 / 100) ** 0.5).all())
    ((100, 10), True)
  """

  def __init__(self, scale, mode: str, distribution: str, in_axis: int = -2,
               out_axis: int = -1, seed=None, unit=None):
    if mode not in _MODES:
      raise AssertionError(f'mode must be one of {list(_MODES)}, got {mode!r}')
    if distribution not in _DISTRIBUTIONS:
      raise AssertionError(f'distribution must be one of {list(_DISTRIBUTIONS)}, got {distribution!r}')
    self.scale = scale
    self.mode = mode
    self.in_axis = in_axis
    self.out_axis = out_axis
    self.distribution = distribution
    self.rng = random.default_rng(seed)
    self.unit = unit

  def __call__(self, shape, **kwargs):
    shape = to_size(shape)
    dtype = kwargs.get('dtype', environ.dftype())
    rng = kwargs.get('rng', self.rng)
    fan_in, fan_out = _compute_fans(shape, in_axis=self.in_axis, out_axis=self.out_axis)
    n = {'fan_in': fan_in, 'fan_out': fan_out}.get(self.mode)
    if n is None:
      n = (fan_in + fan_out) / 2
    variance = (self.scale / n).astype(dtype)
    if self.distribution == 'truncated_normal':
      std = (jnp.sqrt(variance) / _TRUNC_STD).astype(dtype)
      w = rng.truncated_normal(-2, 2, shape, dtype=dtype) * std
    elif self.distribution == 'normal':
      w = rng.randn(*shape, dtype=dtype) * jnp.sqrt(variance).astype(dtype)
    else:
      w = rng.uniform(low=-1, high=1, size=shape, dtype=dtype) * jnp.sqrt(3 * variance).astype(dtype)
    return _with_unit(w, self.unit)


def _preset(name, scale, mode, distribution, doc):
  def __init__(self, scale: float = scale, mode: str = mode, distribution: str = distribution,
               in_axis: int = -2, out_axis: int = -1, seed=None, unit=None):
    VarianceScaling.__init__(self, scale, mode, distribution, in_axis=in_axis,
                             out_axis=out_axis, seed=seed, unit=unit)

  cls = type(name, (VarianceScaling,), {'__init__': __init__, '__doc__': doc,
                                        '__module__': __name__})
  cls.__init__.__qualname__ = f'{name}.__init__'
  return cls


KaimingUniform = _preset('KaimingUniform', 2.0, 'fan_in', 'uniform', """He (Kaiming) uniform: variance ``2 / fan_in``.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.init.KaimingUniform()((4, 3)).shape
    (4, 3)
  """)
KaimingNormal = _preset('KaimingNormal', 2.0, 'fan_in', 'truncated_normal', """He (Kaiming) truncated normal: variance ``2 / fan_in``; the default ``Linear`` weight init.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.init.KaimingNormal()((4, 3)).shape
    (4, 3)
  """)
XavierUniform = _preset('XavierUniform', 1.0, 'fan_avg', 'uniform', """Glorot (Xavier) uniform: variance ``2 / (fan_in + fan_out)``.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.init.XavierUniform()((4, 3)).shape
    (4, 3)
  """)
XavierNormal = _preset('XavierNormal', 1.0, 'fan_avg', 'truncated_normal', """Glorot (Xavier) truncated normal: variance ``2 / (fan_in + fan_out)``.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.init.XavierNormal()((4, 3)).shape
    (4, 3)
  """)
LecunUniform = _preset('LecunUniform', 1.0, 'fan_in', 'uniform', """LeCun uniform: variance ``1 / fan_in``.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.init.LecunUniform()((4, 3)).shape
    (4, 3)
  """)
LecunNormal = _preset('LecunNormal', 1.0, 'fan_in', 'truncated_normal', """LeCun truncated normal: variance ``1 / fan_in``.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.init.LecunNormal()((4, 3)).shape
    (4, 3)
  """)
