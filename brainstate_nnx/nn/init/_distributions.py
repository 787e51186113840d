"""Initializers drawing i.i.d. samples: Normal, TruncatedNormal, Uniform, Gamma, Exponential."""

from __future__ import annotations

from ... import environ, random
from ... import _units
from ._base import Initializer, to_size, _shared_unit, _split, _times_unit, _unit_lib, _with_unit

__all__ = ['Normal', 'TruncatedNormal', 'Uniform', 'Gamma', 'Exponential']


def _dtype_rng(init, kwargs):
  return kwargs.get('dtype', environ.dftype()), kwargs.get('rng', init.rng)


class Normal(Initializer):
  """Samples from ``N(mean, scale**2)``.

  ``mean``/``scale`` may be brainunit Quantities; ``unit`` gives the result a
  unit. ``seed`` gives the initializer its own stream (else the default one).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.random.seed(0)
    >>> brainstate.nn.init.Normal(scale=0.1)((3,))
    Array([-0.24424557, -0.20356806,  0.02055442], dtype=float32)
  """

  def __init__(self, mean=0.0, scale=1.0, unit=None, seed=None):
    self.scale = scale
    self.mean = mean
    self.rng = random.default_rng(seed)
    self.unit = unit

  def __call__(self, shape, **kwargs):
    shape = to_size(shape)
    dtype, rng = _dtype_rng(self, kwargs)
    loc, scale, unit = _shared_unit(self.mean, self.scale)
    w = _times_unit(rng.normal(size=shape, loc=loc, scale=scale, dtype=dtype), unit)
    return _with_unit(w, self.unit)


class TruncatedNormal(Initializer):
  """Samples from ``N(loc, scale**2)`` truncated to ``[lower, upper]`` (in standard deviations of 1).

  ``lower``/``upper`` bound the samples themselves (default ``[-2, 2]``).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> x = brainstate.nn.init.TruncatedNormal(lower=-1., upper=1.)((100,))
    >>> bool((abs(x) <= 1.).all())
    True
  """

  def __init__(self, loc=0.0, scale=1.0, unit=None, lower=-2.0, upper=2.0, seed=None):
    if not scale > 0:
      raise AssertionError('`scale` must be positive.')
    self.scale = scale
    self.loc = loc
    self.lower = lower
    self.upper = upper
    self.rng = random.default_rng(seed)
    self.unit = unit

  def __call__(self, shape, **kwargs):
    dtype, rng = _dtype_rng(self, kwargs)
    values = (self.lower, self.upper, self.loc, self.scale)
    unit = None
    for v in values:
      if _units.is_quantity(v) and not v.is_unitless:
        unit = v.unit
        break
    if unit is not None or any(_units.is_quantity(v) for v in values):
      bu = _unit_lib()
      qs = [bu.Quantity(bu.math.asarray(v, dtype=dtype)) for v in values]
      values = [q.mantissa if q.is_unitless else q.in_unit(unit).mantissa for q in qs]
    lower, upper, loc, scale = values
    w = rng.truncated_normal(size=shape, scale=scale, lower=lower, upper=upper, loc=loc,
                             dtype=dtype)
    return _with_unit(_times_unit(w, unit), self.unit)


class Uniform(Initializer):
  """Samples from ``U[min_val, max_val)``.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> x = brainstate.nn.init.Uniform(-1., 1.)((2, 3))
    >>> x.shape, bool(((x >= -1) & (x < 1)).all())
    ((2, 3), True)
  """

  def __init__(self, min_val=0.0, max_val=1.0, seed=None, unit=None):
    self.min_val = min_val
    self.max_val = max_val
    self.rng = random.default_rng(seed)
    self.unit = unit

  def __call__(self, shape, **kwargs):
    shape = to_size(shape)
    dtype, rng = _dtype_rng(self, kwargs)
    low, high, unit = _shared_unit(self.min_val, self.max_val)
    w = _times_unit(rng.uniform(low=low, high=high, size=shape, dtype=dtype), unit)
    return _with_unit(w, self.unit)


class Gamma(Initializer):
  """Samples from a Gamma distribution with shape parameter ``shape`` and ``scale``.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> x = brainstate.nn.init.Gamma(2.0, scale=0.5)((4,))
    >>> x.shape, bool((x > 0).all())
    ((4,), True)
  """

  def __init__(self, shape, unit=None, scale=None, seed=None):
    self.shape = shape
    self.scale = scale
    self.rng = random.default_rng(seed)
    self.unit = unit

  def __call__(self, shape, **kwargs):
    shape = to_size(shape)
    dtype, rng = _dtype_rng(self, kwargs)
    a = self.shape
    if _units.is_quantity(a):
      if not a.is_unitless:
        raise ValueError(f"Parameter 'shape' must be dimensionless, but got unit {a.unit}.")
      a = a.mantissa
    scale, unit = _split(self.scale)
    w = _times_unit(rng.gamma(a, scale=scale, size=shape, dtype=dtype), unit)
    return _with_unit(w, self.unit)


class Exponential(Initializer):
  """Samples from an exponential distribution with mean ``scale`` (1 if ``None``).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> x = brainstate.nn.init.Exponential(2.0)((4,))
    >>> x.shape, bool((x >= 0).all())
    ((4,), True)
  """

  def __init__(self, scale=None, seed=None, unit=None):
    self.scale = scale
    self.rng = random.default_rng(seed)
    self.unit = unit

  def __call__(self, shape, **kwargs):
    shape = to_size(shape)
    dtype, rng = _dtype_rng(self, kwargs)
    scale, unit = _split(self.scale)
    w = _times_unit(rng.exponential(scale=scale, size=shape, dtype=dtype), unit)
    return _with_unit(w, self.unit)
