"""Parameter regularizers (BrainState's ``nn.*Reg`` classes).

A regularizer is a :class:`~brainstate_nnx.nn.Module` with three methods:

* ``loss(value)`` -- a scalar penalty on a (constrained) parameter value;
* ``sample_init(shape)`` -- a random value drawn from the matching prior
  (uses :mod:`brainstate_nnx.random`, so a seed gives BrainState's draws);
* ``reset_value()`` -- the prior's most typical value.

With ``fit_hyper=True`` the hyper-parameters that BrainState makes trainable
(e.g. the mean and precision of :class:`GaussianReg`) are
:class:`~brainstate_nnx.ParamState` s, so they show up in ``states()`` and in
``nnx.state(model, nnx.Param)``. Attach a regularizer to a parameter with
``Param(value, reg=...)`` and add ``param.reg_loss()`` to the training loss.

Numbers (including the ``1e-8``/``1e-6`` stabilizers and the log-normalizers
of the prior-based penalties) are those of BrainState 0.5.4.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from .. import environ, random
from .._state import ParamState, maybe_state
from ._module import Module

__all__ = [
  'Regularization', 'ChainedReg', 'GaussianReg', 'L1Reg', 'L2Reg',
  'ElasticNetReg', 'HuberReg', 'GroupLassoReg', 'TotalVariationReg',
  'MaxNormReg', 'EntropyReg', 'OrthogonalReg', 'SpectralNormReg',
  'StudentTReg', 'CauchyReg', 'UniformReg', 'LogNormalReg', 'ExponentialReg',
  'GammaReg', 'BetaReg', 'HorseshoeReg', 'InverseGammaReg', 'LogUniformReg',
  'SpikeAndSlabReg', 'DirichletReg',
]

_EPS = 1e-8


def _arr(v):
  return jnp.asarray(v, dtype=environ.dftype())


def _size(shape) -> tuple:
  if isinstance(shape, int):
    return (shape,)
  if isinstance(shape, (tuple, list)):
    return tuple(shape)
  raise ValueError(f'size must be int, tuple, or list, got {type(shape).__name__}')


def _pos(v):
  """``relu(v) + 1e-8``: the positive version of a hyper-parameter."""
  return jax.nn.relu(maybe_state(v)) + _EPS


def _laplace(scale, shape):
  u_ = random.rand(*shape) - 0.5
  return scale * jnp.sign(u_) * jnp.log(1 - 2 * jnp.abs(u_) + _EPS)


def _gauss(std, shape):
  return std * random.randn(*shape)


def _softmax_flat(value):
  flat = jnp.reshape(value, (-1,))
  e = jnp.exp(flat - jnp.max(flat))
  return e / (jnp.sum(e) + _EPS)


class Regularization(Module):
  """Base class of regularizers: override ``loss``, ``sample_init`` and ``reset_value``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> class Quartic(brainstate.nn.Regularization):
    ...   def loss(self, value):
    ...     return jnp.sum(value ** 4)
    >>> float(Quartic().loss(jnp.array([1.0, 2.0])))
    17.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, fit_hyper: bool = False):
    super().__init__()
    self.fit_hyper = fit_hyper

  def _hyper(self, value):
    """A hyper-parameter: an array, or a ParamState when ``fit_hyper``."""
    value = _arr(value)
    return ParamState(value) if self.fit_hyper else value

  def loss(self, value):
    """The penalty (a scalar) for ``value``."""
    raise NotImplementedError(f'{type(self).__name__} must implement loss(value).')

  def sample_init(self, shape):
    """A random value of shape ``shape`` drawn from the prior."""
    raise NotImplementedError(f'{type(self).__name__} must implement sample_init(shape).')

  def reset_value(self):
    """The prior's typical value (what ``Param.reset_to_prior`` sets)."""
    raise NotImplementedError(f'{type(self).__name__} must implement reset_value().')


class ChainedReg(Regularization):
  """Sum of several regularizers, times ``weight``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> reg = brainstate.nn.ChainedReg(brainstate.nn.L1Reg(1.0), brainstate.nn.L2Reg(1.0))
    >>> float(reg.loss(jnp.array([1.0, -2.0])))
    8.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, *regularizations, weight: float = 1.0, fit_hyper: bool = False):
    super().__init__(fit_hyper=fit_hyper)
    for r in regularizations:
      if not isinstance(r, Regularization):
        raise TypeError(
          f'ChainedReg takes Regularization instances, got {type(r).__name__}.'
        )
    self.regularizations = regularizations
    for i, r in enumerate(regularizations):
      setattr(self, f'_reg_{i}', r)
    self.weight = _arr(weight)

  def loss(self, value):
    if not self.regularizations:
      return 0.0
    total = self.regularizations[0].loss(value)
    for r in self.regularizations[1:]:
      total = total + r.loss(value)
    return self.weight * total

  def sample_init(self, shape):
    if not self.regularizations:
      return jnp.zeros(_size(shape))
    return self.regularizations[0].sample_init(shape)

  def reset_value(self):
    if not self.regularizations:
      return 0.0
    return self.regularizations[0].reset_value()


class GaussianReg(Regularization):
  """Gaussian prior: ``weight * (sum(p * (x - mean)**2) - sum(log p))``, ``p = 1/std**2``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> reg = brainstate.nn.GaussianReg(mean=0.0, std=1.0, fit_hyper=True)
    >>> sorted(reg.states().keys())
    [('mean',), ('precision',)]
    >>> float(reg.reset_value())
    0.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, mean, std, weight: float = 1.0, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    std = _arr(std)
    self.mean = self._hyper(mean)
    self.precision = self._hyper(1.0 / (std ** 2 + _EPS))
    self.weight = _arr(weight)

  def loss(self, value):
    prec = jax.nn.relu(maybe_state(self.precision)) + 1e-6
    mean = maybe_state(self.mean)
    return self.weight * (jnp.sum(prec * (value - mean) ** 2) - jnp.sum(jnp.log(prec)))

  def sample_init(self, shape):
    noise = random.randn(*_size(shape))
    std = 1.0 / jnp.sqrt(jax.nn.relu(maybe_state(self.precision)) + _EPS)
    return maybe_state(self.mean) + std * noise

  def reset_value(self):
    return maybe_state(self.mean)


class L1Reg(Regularization):
  """Lasso: ``weight * sum(|x|)`` (a Laplace prior).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> float(brainstate.nn.L1Reg(0.5).loss(jnp.array([1.0, -3.0])))
    2.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)

  def loss(self, value):
    return self.weight * jnp.sum(jnp.abs(value))

  def sample_init(self, shape):
    return _laplace(1.0 / (self.weight + _EPS), _size(shape))

  def reset_value(self):
    return 0.0


class L2Reg(Regularization):
  """Ridge: ``relu(weight) * sum(x**2)`` (a zero-mean Gaussian prior).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> float(brainstate.nn.L2Reg(0.5).loss(jnp.array([1.0, -3.0])))
    5.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)

  def loss(self, value):
    return jax.nn.relu(maybe_state(self.weight)) * jnp.sum(value ** 2)

  def sample_init(self, shape):
    return _gauss(1.0 / jnp.sqrt(_pos(self.weight)), _size(shape))

  def reset_value(self):
    return 0.0


class ElasticNetReg(Regularization):
  """``alpha * l1_weight * sum|x| + (1 - alpha) * l2_weight * sum x**2`` (``alpha`` clipped to [0, 1]).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> float(brainstate.nn.ElasticNetReg(alpha=0.5).loss(jnp.array([2.0])))
    3.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, l1_weight: float = 1.0, l2_weight: float = 1.0,
               alpha: float = 0.5, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.l1_weight = _arr(l1_weight)
    self.l2_weight = _arr(l2_weight)
    self.alpha = self._hyper(alpha)

  def loss(self, value):
    alpha = jnp.clip(maybe_state(self.alpha), 0.0, 1.0)
    l1 = self.l1_weight * jnp.sum(jnp.abs(value))
    l2 = self.l2_weight * jnp.sum(value ** 2)
    return alpha * l1 + (1.0 - alpha) * l2

  def sample_init(self, shape):
    shape = _size(shape)
    alpha = jnp.clip(maybe_state(self.alpha), 0.0, 1.0)
    l1_weight = _pos(self.l1_weight)
    l2_weight = _pos(self.l2_weight)
    from_l2 = _gauss(1.0 / jnp.sqrt(l2_weight), shape)
    from_l1 = _laplace(1.0 / l1_weight, shape)
    return alpha * from_l1 + (1.0 - alpha) * from_l2

  def reset_value(self):
    return 0.0


class HuberReg(Regularization):
  """Huber: quadratic ``x**2 / 2`` within ``delta``, linear beyond, times ``weight``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> float(brainstate.nn.HuberReg(delta=1.0).loss(jnp.array([0.5, 3.0])))
    2.625
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, delta: float = 1.0, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.delta = self._hyper(delta)

  def loss(self, value):
    delta = _pos(self.delta)
    a = jnp.abs(value)
    huber = jnp.where(a <= delta, 0.5 * value ** 2, delta * (a - 0.5 * delta))
    return self.weight * jnp.sum(huber)

  def sample_init(self, shape):
    return _gauss(1.0 / jnp.sqrt(_pos(self.weight)), _size(shape))

  def reset_value(self):
    return 0.0


class GroupLassoReg(Regularization):
  """Sum of the L2 norms of consecutive groups of ``group_size`` entries, times ``weight``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> reg = brainstate.nn.GroupLassoReg(group_size=2)
    >>> round(float(reg.loss(jnp.array([3.0, 4.0, 0.0, 0.0]))), 3)
    5.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, group_size: int = 1, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    if not isinstance(group_size, int):
      raise TypeError(f'group_size must be an int, but got {type(group_size)}.')
    if group_size <= 0:
      raise ValueError(f'group_size must be a positive integer, but got {group_size}.')
    self.weight = _arr(weight)
    self.group_size = group_size

  def loss(self, value):
    flat = jnp.reshape(value, (-1,))
    extra = flat.shape[0] % self.group_size
    if extra:
      flat = jnp.concatenate([flat, jnp.zeros(self.group_size - extra, flat.dtype)])
    groups = jnp.reshape(flat, (-1, self.group_size))
    norms = jnp.sqrt(jnp.sum(groups ** 2, axis=1) + _EPS)
    return self.weight * jnp.sum(norms)

  def sample_init(self, shape):
    return _gauss(1.0 / jnp.sqrt(_pos(self.weight)), _size(shape))

  def reset_value(self):
    return 0.0


class TotalVariationReg(Regularization):
  """Sum of absolute first (``order=1``) or second (``order=2``) differences of the flattened value.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> float(brainstate.nn.TotalVariationReg().loss(jnp.array([0.0, 1.0, 3.0])))
    3.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, order: int = 1, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    if order not in (1, 2):
      raise ValueError(f'order must be 1 or 2, but got {order}.')
    self.weight = _arr(weight)
    self.order = order

  def loss(self, value):
    f = jnp.reshape(value, (-1,))
    d = f[1:] - f[:-1] if self.order == 1 else f[2:] - 2 * f[1:-1] + f[:-2]
    return self.weight * jnp.sum(jnp.abs(d))

  def sample_init(self, shape):
    shape = _size(shape)
    noise = _gauss(1.0 / jnp.sqrt(_pos(self.weight)), shape)
    n = float(jnp.prod(jnp.asarray(shape)))
    return jnp.cumsum(noise.flatten()).reshape(shape) / jnp.sqrt(n)

  def reset_value(self):
    return 0.0


class MaxNormReg(Regularization):
  """``weight * relu(||x|| - max_value)**2``: penalizes norms above ``max_value``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> float(brainstate.nn.MaxNormReg(max_value=10.0).loss(jnp.array([3.0, 4.0])))
    0.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, max_value: float = 1.0, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.max_value = self._hyper(max_value)

  def loss(self, value):
    norm = jnp.sqrt(jnp.sum(value ** 2) + _EPS)
    return self.weight * jax.nn.relu(norm - _pos(self.max_value)) ** 2

  def sample_init(self, shape):
    sample = random.randn(*_size(shape))
    norm = jnp.sqrt(jnp.sum(sample ** 2) + _EPS)
    return sample * (_pos(self.max_value) / (norm + _EPS) * 0.5)

  def reset_value(self):
    return 0.0


class EntropyReg(Regularization):
  """Entropy of ``softmax(x)``: minus it (``maximize=True``) or plus it, times ``weight``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> round(float(brainstate.nn.EntropyReg().loss(jnp.zeros(2))), 4)
    -0.6931
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, maximize: bool = True, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.maximize = maximize

  def loss(self, value):
    p = _softmax_flat(value)
    entropy = -jnp.sum(p * jnp.log(p + _EPS))
    return -self.weight * entropy if self.maximize else self.weight * entropy

  def sample_init(self, shape):
    if self.maximize:
      return jnp.zeros(_size(shape))
    return random.randn(*_size(shape))

  def reset_value(self):
    return 0.0


class OrthogonalReg(Regularization):
  """``weight * ||W^T W - I||_F^2`` (1-D values of square length are viewed as square matrices).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> float(brainstate.nn.OrthogonalReg().loss(jnp.eye(3)))
    0.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)

  def loss(self, value):
    if value.ndim == 0:
      return self.weight * (jnp.abs(value) - 1.0) ** 2
    if value.ndim == 1:
      n = int(math.sqrt(float(value.shape[0])))
      W = value.reshape(n, n) if n * n == value.shape[0] else value.reshape(-1, 1)
    elif value.ndim > 2:
      W = value.reshape(value.shape[0], -1)
    else:
      W = value
    gram = W.T @ W
    return self.weight * jnp.sum((gram - jnp.eye(gram.shape[0])) ** 2)

  def sample_init(self, shape):
    shape = _size(shape)
    if len(shape) == 1:
      n = shape[0]
      side = int(math.ceil(math.sqrt(float(n))))
      q, _ = jnp.linalg.qr(random.randn(side, side))
      return q.reshape(-1)[:n]
    if len(shape) == 2:
      m, n = shape
      q, _ = jnp.linalg.qr(random.randn(m, n))
      return q[:m, :n]
    return random.randn(*shape) * 0.1

  def reset_value(self):
    return 0.0


class SpectralNormReg(Regularization):
  """``weight * relu(sigma_max(W) - max_value)**2`` with the largest singular value from an SVD.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> float(brainstate.nn.SpectralNormReg(max_value=1.0).loss(3.0 * jnp.eye(2)))
    4.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, max_value: float = 1.0,
               n_power_iterations: int = 1, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.max_value = self._hyper(max_value)
    self.n_power_iterations = n_power_iterations

  def _estimate_spectral_norm(self, W):
    """The largest singular value (2-D view; the norm for 1-D, ``|W|`` for a scalar)."""
    if W.ndim == 0:
      return jnp.abs(W)
    if W.ndim == 1:
      return jnp.sqrt(jnp.sum(W ** 2))
    if W.ndim > 2:
      W = W.reshape(W.shape[0], -1)
    return jnp.linalg.svd(W, compute_uv=False)[0]

  def loss(self, value):
    return self.weight * jax.nn.relu(self._estimate_spectral_norm(value) - _pos(self.max_value)) ** 2

  def sample_init(self, shape):
    shape = _size(shape)
    top = _pos(self.max_value)
    sample = random.randn(*shape)
    if len(shape) >= 2:
      return sample * (top / (self._estimate_spectral_norm(sample) + _EPS))
    norm = jnp.sqrt(jnp.sum(sample ** 2) + _EPS)
    return sample * top / (norm + _EPS)

  def reset_value(self):
    return 0.0


class StudentTReg(Regularization):
  """Student-t prior (negative log density with ``df`` and ``scale``), times ``weight``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> reg = brainstate.nn.StudentTReg(df=3.0)
    >>> bool(reg.loss(jnp.array([5.0])) > reg.loss(jnp.array([0.0])))
    True
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, df: float = 3.0, scale: float = 1.0,
               fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.df = self._hyper(df)
    self.scale = self._hyper(scale)

  def loss(self, value):
    df, scale = _pos(self.df), _pos(self.scale)
    z = value / scale
    data = jnp.sum(0.5 * (df + 1.0) * jnp.log(1.0 + z ** 2 / df))
    norm = value.size * (jnp.log(scale) + gammaln(df / 2.0)
                         + 0.5 * jnp.log(df * math.pi) - gammaln((df + 1.0) / 2.0))
    return self.weight * (data + norm)

  def sample_init(self, shape):
    return _gauss(_pos(self.scale), _size(shape))

  def reset_value(self):
    return 0.0


class CauchyReg(Regularization):
  """Cauchy prior: ``weight * (sum log(1 + (x/scale)**2) + n log scale)``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> round(float(brainstate.nn.CauchyReg().loss(jnp.array([1.0]))), 4)
    0.6931
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, scale: float = 1.0, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.scale = self._hyper(scale)

  def loss(self, value):
    scale = _pos(self.scale)
    data = jnp.sum(jnp.log(1.0 + (value / scale) ** 2))
    return self.weight * (data + value.size * jnp.log(scale))

  def sample_init(self, shape):
    u_ = random.rand(*_size(shape))
    return _pos(self.scale) * jnp.tan(jnp.pi * (u_ - 0.5))

  def reset_value(self):
    return 0.0


class UniformReg(Regularization):
  """Squared distance outside ``[lower, upper]``, times ``weight``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> float(brainstate.nn.UniformReg(lower=-1.0, upper=1.0).loss(jnp.array([0.0, 3.0])))
    4.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, lower: float = -1.0, upper: float = 1.0,
               fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.lower = self._hyper(lower)
    self.upper = self._hyper(upper)

  def loss(self, value):
    lo, hi = maybe_state(self.lower), maybe_state(self.upper)
    out = jax.nn.relu(lo - value) ** 2 + jax.nn.relu(value - hi) ** 2
    return self.weight * jnp.sum(out)

  def sample_init(self, shape):
    lo, hi = maybe_state(self.lower), maybe_state(self.upper)
    return lo + (hi - lo) * random.rand(*_size(shape))

  def reset_value(self):
    return (maybe_state(self.lower) + maybe_state(self.upper)) / 2.0


class LogNormalReg(Regularization):
  """Log-normal prior on positive values (negative log density), times ``weight``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> float(brainstate.nn.LogNormalReg().reset_value())
    1.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, mu: float = 0.0, sigma: float = 1.0,
               fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.mu = self._hyper(mu)
    self.sigma = self._hyper(sigma)

  def loss(self, value):
    mu, sigma = maybe_state(self.mu), _pos(self.sigma)
    log_x = jnp.log(jax.nn.relu(value) + _EPS)
    data = jnp.sum((log_x - mu) ** 2 / (2 * sigma ** 2) + log_x)
    return self.weight * (data + value.size * jnp.log(sigma))

  def sample_init(self, shape):
    mu, sigma = maybe_state(self.mu), _pos(self.sigma)
    return jnp.exp(mu + sigma * random.randn(*_size(shape)))

  def reset_value(self):
    return jnp.exp(maybe_state(self.mu))


class ExponentialReg(Regularization):
  """Exponential prior: ``weight * rate * sum(relu(x))``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> round(float(brainstate.nn.ExponentialReg(rate=2.0).loss(jnp.array([1.0, -1.0]))), 4)
    2.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, rate: float = 1.0, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.rate = self._hyper(rate)

  def loss(self, value):
    return self.weight * _pos(self.rate) * jnp.sum(jax.nn.relu(value))

  def sample_init(self, shape):
    u_ = random.rand(*_size(shape))
    return -jnp.log(u_ + _EPS) / _pos(self.rate)

  def reset_value(self):
    return 0.0


class GammaReg(Regularization):
  """Gamma(``alpha``, ``beta``) prior on positive values (negative log density), times ``weight``.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> round(float(brainstate.nn.GammaReg(alpha=3.0, beta=2.0).reset_value()), 4)
    1.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, alpha: float = 2.0, beta: float = 1.0,
               fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.alpha = self._hyper(alpha)
    self.beta = self._hyper(beta)

  def loss(self, value):
    alpha, beta = _pos(self.alpha), _pos(self.beta)
    x = jax.nn.relu(value) + _EPS
    data = jnp.sum(-(alpha - 1) * jnp.log(x) + beta * x)
    norm = value.size * (-alpha * jnp.log(beta) + gammaln(alpha))
    return self.weight * (data + norm)

  def sample_init(self, shape):
    alpha, beta = _pos(self.alpha), _pos(self.beta)
    return random.gamma(alpha, scale=1.0 / beta, size=_size(shape))

  def reset_value(self):
    alpha, beta = _pos(self.alpha), _pos(self.beta)
    return jnp.maximum((alpha - 1) / beta, _EPS)


class BetaReg(Regularization):
  """Beta(``a``, ``b``) prior on values in (0, 1) (negative log density), times ``weight``.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> round(float(brainstate.nn.BetaReg(a=2.0, b=2.0).reset_value()), 4)
    0.5
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, a: float = 2.0, b: float = 2.0,
               fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.a = self._hyper(a)
    self.b = self._hyper(b)

  def loss(self, value):
    a, b = _pos(self.a), _pos(self.b)
    x = jnp.clip(value, _EPS, 1.0 - _EPS)
    data = jnp.sum(-(a - 1) * jnp.log(x) - (b - 1) * jnp.log(1 - x))
    norm = value.size * (gammaln(a) + gammaln(b) - gammaln(a + b))
    return self.weight * (data + norm)

  def sample_init(self, shape):
    return random.beta(_pos(self.a), _pos(self.b), size=_size(shape))

  def reset_value(self):
    a, b = _pos(self.a), _pos(self.b)
    return jnp.clip((a - 1) / (a + b - 2 + _EPS), 0.0, 1.0)


class HorseshoeReg(Regularization):
  """Horseshoe-like prior: ``weight * (sum log(1 + (x/tau)**2) + n log tau)``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> float(brainstate.nn.HorseshoeReg().loss(jnp.zeros(3)))
    0.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, tau: float = 1.0, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.tau = self._hyper(tau)

  def loss(self, value):
    tau = _pos(self.tau)
    data = jnp.sum(jnp.log(1.0 + (value / tau) ** 2))
    return self.weight * (data + value.size * jnp.log(tau))

  def sample_init(self, shape):
    shape = _size(shape)
    tau = _pos(self.tau)
    u_ = random.rand(*shape)
    local = jnp.abs(jnp.tan(jnp.pi * (u_ - 0.5)))
    return tau * local * random.randn(*shape)

  def reset_value(self):
    return 0.0


class InverseGammaReg(Regularization):
  """Inverse-Gamma(``alpha``, ``beta``) prior on positive values, times ``weight``.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> round(float(brainstate.nn.InverseGammaReg(alpha=2.0, beta=3.0).reset_value()), 4)
    1.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, alpha: float = 2.0, beta: float = 1.0,
               fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.alpha = self._hyper(alpha)
    self.beta = self._hyper(beta)

  def loss(self, value):
    alpha, beta = _pos(self.alpha), _pos(self.beta)
    x = jax.nn.relu(value) + _EPS
    data = jnp.sum((alpha + 1) * jnp.log(x) + beta / x)
    norm = value.size * (-alpha * jnp.log(beta) + gammaln(alpha))
    return self.weight * (data + norm)

  def sample_init(self, shape):
    alpha, beta = _pos(self.alpha), _pos(self.beta)
    g = random.gamma(alpha, scale=1.0, size=_size(shape))
    return beta / (g + _EPS)

  def reset_value(self):
    alpha, beta = _pos(self.alpha), _pos(self.beta)
    return beta / (alpha + 1)


class LogUniformReg(Regularization):
  """Log-uniform prior on ``[lower, upper]``: ``weight * sum(log x)`` (x clipped to the range).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> round(float(brainstate.nn.LogUniformReg(lower=1.0, upper=100.0).reset_value()), 3)
    10.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, lower: float = 1e-3, upper: float = 1e3,
               fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.lower = self._hyper(lower)
    self.upper = self._hyper(upper)

  def loss(self, value):
    x = jnp.clip(jax.nn.relu(value) + _EPS, _pos(self.lower), _pos(self.upper))
    return self.weight * jnp.sum(jnp.log(x))

  def sample_init(self, shape):
    lo, hi = jnp.log(_pos(self.lower)), jnp.log(_pos(self.upper))
    return jnp.exp(lo + (hi - lo) * random.rand(*_size(shape)))

  def reset_value(self):
    return jnp.sqrt(_pos(self.lower) * _pos(self.upper))


class SpikeAndSlabReg(Regularization):
  """Mixture of a narrow (spike) and a wide (slab) Gaussian, weight ``pi`` on the spike.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> reg = brainstate.nn.SpikeAndSlabReg()
    >>> bool(reg.loss(jnp.array([0.5])) > reg.loss(jnp.array([0.0])))
    True
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, spike_scale: float = 0.01,
               slab_scale: float = 1.0, pi: float = 0.5, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.spike_scale = self._hyper(spike_scale)
    self.slab_scale = self._hyper(slab_scale)
    self.pi = self._hyper(pi)

  def loss(self, value):
    s0, s1 = _pos(self.spike_scale), _pos(self.slab_scale)
    pi = jnp.clip(maybe_state(self.pi), _EPS, 1.0 - _EPS)
    spike = jnp.exp(-0.5 * (value / s0) ** 2) / s0
    slab = jnp.exp(-0.5 * (value / s1) ** 2) / s1
    return self.weight * jnp.sum(-jnp.log(pi * spike + (1 - pi) * slab + _EPS))

  def sample_init(self, shape):
    shape = _size(shape)
    s0, s1 = _pos(self.spike_scale), _pos(self.slab_scale)
    pi = jnp.clip(maybe_state(self.pi), _EPS, 1.0 - _EPS)
    is_spike = random.rand(*shape) < pi
    spike = s0 * random.randn(*shape)
    slab = s1 * random.randn(*shape)
    return jnp.where(is_spike, spike, slab)

  def reset_value(self):
    return 0.0


class DirichletReg(Regularization):
  """Symmetric Dirichlet(``alpha``) prior on ``softmax(x)`` (negative log density), times ``weight``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> float(brainstate.nn.DirichletReg(alpha=1.0).loss(jnp.array([1.0, 2.0])))
    0.0
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, weight: float = 1.0, alpha: float = 1.0, fit_hyper: bool = False):
    super().__init__(fit_hyper)
    self.weight = _arr(weight)
    self.alpha = self._hyper(alpha)

  def loss(self, value):
    alpha = _pos(self.alpha)
    p = _softmax_flat(value)
    return self.weight * jnp.sum(-(alpha - 1) * jnp.log(p + _EPS))

  def sample_init(self, shape):
    g = random.gamma(_pos(self.alpha), scale=1.0, size=_size(shape))
    return jnp.log(g / (jnp.sum(g) + _EPS) + _EPS)

  def reset_value(self):
    return 0.0
