"""``RandomState``: a JAX PRNG key kept in a :class:`~brainstate_nnx.LongTermState`.

Every draw splits the stored key in two, keeps the first half as the new key
and samples with the second, so a sequence of draws after ``seed(s)`` is
reproducible and identical to BrainState's. Because the key lives in a State,
``brainstate_nnx.transform.jit`` finds it through closures and the key keeps
advancing between compiled calls.

Example::

  >>> import brainstate_nnx as brainstate
  >>> rng = brainstate.random.RandomState(0)
  >>> rng.randn(3)
  Array([-2.4424558 , -2.0356805 ,  0.20554423], dtype=float32)
  >>> brainstate.random.seed(0)
  >>> brainstate.random.randn(3)
  Array([-2.4424558 , -2.0356805 ,  0.20554423], dtype=float32)
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator, Optional

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jax import lax
from flax.nnx import variablelib as _vl

from .._state import LongTermState
from . import _impl
from ._impl import (
  as_array_if_seq as _seq,
  check_shape as _check_shape,
  dftype as _dftype,
  ditype as _ditype,
  error_if as _error_if,
  format_key as _format_key,
  index_or_error as _index,
  loc_scale as _loc_scale,
  shape_of as _shape,
  size2shape as _size2shape,
)

__all__ = [
  'RandomState',
  'DEFAULT',
  'seed',
  'set_key',
  'get_key',
  'get_key_data',
  'default_rng',
  'split_key',
  'split_keys',
  'seed_context',
  'restore_key',
  'self_assign_multi_keys',
  'clone_rng',
]

_MISSING = _vl.MISSING

# read-split-write of a key is done under this lock so that two threads never
# draw with the same key
_KEY_LOCK = threading.RLock()


def _fresh_raw_key() -> np.ndarray:
  return np.random.randint(0, 2 ** 32, size=2, dtype=np.uint32)


def _is_raw_numpy_key(x) -> bool:
  return (
    isinstance(x, np.ndarray)
    and x.dtype == np.uint32
    and x.size == 2
  )


def _typed_concrete_key(value):
  """The typed key a concrete raw key stands for (the bits unchanged), or ``None``.

  Raw keys are a NumPy seed pair or a ``uint32[..., 2]`` array passed through
  a transform as plain data; tracers, deleted buffers and anything else give
  ``None``.
  """
  if isinstance(value, jax.Array):
    if (isinstance(value, jax.core.Tracer) or value.dtype != np.uint32
        or value.shape[-1:] != (2,) or value.is_deleted()):
      return None
  elif not isinstance(value, np.ndarray):
    return None
  with jax.ensure_compile_time_eval():
    return jr.wrap_key_data(value) if isinstance(value, jax.Array) else _format_key(value)


class RandomState(LongTermState):
  """A random number generator whose key is a State.

  ``RandomState(seed_or_key=None)``: ``seed_or_key`` is an int seed, a typed
  JAX key, a one-element integer array or a raw ``uint32[2]`` key; ``None``
  draws a seed from NumPy's global generator. The methods mirror
  ``numpy.random`` (plus a few extras) and take ``key=`` to sample with an
  explicit key instead of advancing the stored one.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> rng = brainstate.random.RandomState(42)
    >>> x = rng.normal(0., 2., size=(2, 3))
    >>> x.shape
    (2, 3)
  """

  __module__ = 'brainstate_nnx.random'
  __slots__ = ('_backup',)

  def __init__(self, seed_or_key: Any = None, **metadata: Any):
    if seed_or_key is None:
      seed_or_key = _fresh_raw_key()
    if _is_raw_numpy_key(seed_or_key):
      # A NumPy uint32 pair is kept as is and wrapped into a typed key on the
      # first read; this keeps construction free of any device work.
      key = seed_or_key
    else:
      key = _format_key(seed_or_key)
    super().__init__(key, **metadata)
    object.__setattr__(self, '_backup', None)

  # -- value access -------------------------------------------------------
  def get_value(self, *, index: Any = _MISSING):
    """The current key, always handed out as a typed key array."""
    value = super().get_value(index=index)
    if index is not _MISSING:
      return value
    # Raw uint32 keys (a NumPy seed pair, or one passed through a transform
    # as plain data) are handed out as typed keys; the bits do not change.
    if isinstance(value, jax.core.Tracer):
      if value.dtype == np.uint32 and value.shape[-1:] == (2,):
        value = jr.wrap_key_data(value)
      return value
    if isinstance(value, jax.Array) and value.is_deleted():
      # the key buffer was donated away: start a fresh stream
      self.seed()
      return self.get_value()
    typed = _typed_concrete_key(value)
    if typed is None:
      return value
    object.__setattr__(self, '_raw_value', typed)
    return typed

  def _settle_key(self) -> None:
    """Stores a concrete raw key as the typed key it stands for.

    What the first read does, without recording a read: a transform that
    hands the key to a JAX primitive before the function reads it (a loop
    carrying it speculatively) then carries the type the function writes.
    """
    typed = _typed_concrete_key(self._raw_value)
    if typed is not None:
      object.__setattr__(self, '_raw_value', typed)

  def check_if_deleted(self) -> None:
    """Re-seeds randomly when the stored key buffer has been deleted."""
    self.get_value()

  def __repr__(self) -> str:
    return f'{type(self).__name__}({self.value})'

  __str__ = __repr__

  # -- key management -----------------------------------------------------
  def backup_key(self) -> None:
    """Remembers the current key; :meth:`restore_key` puts it back."""
    if getattr(self, '_backup', None) is not None:
      raise ValueError('The random key has already been backed up and not restored.')
    object.__setattr__(self, '_backup', self.value)

  def restore_key(self) -> None:
    """Puts back the key saved by :meth:`backup_key`."""
    saved = getattr(self, '_backup', None)
    if saved is None:
      raise ValueError('The random key has not been backed up.')
    self.value = saved
    object.__setattr__(self, '_backup', None)

  def clone(self) -> 'RandomState':
    """A new, independent RandomState seeded with a key split off this one."""
    return type(self)(self.split_key())

  def set_key(self, key: Any) -> None:
    """Replaces the stored key (any accepted seed/key form)."""
    self.value = _format_key(key)

  def seed(self, seed_or_key: Any = None) -> None:
    """Resets the key from ``seed_or_key``; ``None`` picks a random seed."""
    if seed_or_key is None:
      self.value = _fresh_raw_key()
    else:
      self.value = _format_key(seed_or_key)

  def split_key(self, n: Optional[int] = None, backup: bool = False):
    """Advances the stored key and returns fresh key(s).

    ``split_key()`` returns one key; ``split_key(n)`` returns an array of
    ``n`` keys. With ``backup=True`` the key before the split is saved for
    :meth:`restore_key`.
    """
    if n is not None:
      n = _index(n)
      if n < 1:
        raise ValueError(f'n should be a positive integer, but got {n}')
    with _KEY_LOCK:
      keys = jr.split(self.value, 2 if n is None else n + 1)
      if backup:
        self.backup_key()
      self.value = keys[0]
    return keys[1] if n is None else keys[1:]

  def self_assign_multi_keys(self, n: int, backup: bool = True) -> None:
    """Replaces the key by a batch of ``n`` keys split from it (for ``vmap``)."""
    n = _index(n)
    if n < 1:
      raise ValueError(f'n should be a positive integer, but got {n}')
    with _KEY_LOCK:
      keys = jr.split(self.value, n)
      if backup:
        self.backup_key()
      self.value = keys

  def _key(self, key):
    return self.split_key() if key is None else _format_key(key)

  # -- uniform and integer draws -----------------------------------------
  def rand(self, *dn: int, key=None, dtype=None):
    """Uniform samples in [0, 1) of shape ``dn``."""
    key = self._key(key)
    return jr.uniform(key, dn, dtype or _dftype())

  def randint(self, low, high=None, size=None, dtype=None, key=None):
    """Integers in ``[low, high)``; ``randint(h)`` means ``[0, h)``."""
    if high is None:
      low, high = 0, low
    high = _seq(high)
    low = _seq(low)
    if size is None:
      size = lax.broadcast_shapes(np.shape(low), np.shape(high))
    key = self._key(key)
    return jr.randint(
      key, shape=_size2shape(size), minval=low, maxval=high, dtype=dtype or _ditype()
    )

  def random_integers(self, low, high=None, size=None, key=None, dtype=None):
    """Integers in the closed range ``[low, high]``; ``(h)`` means ``[1, h]``."""
    low = _seq(low)
    high = _seq(high)
    if high is None:
      low, high = 1, low
    high = high + 1
    if size is None:
      size = lax.broadcast_shapes(np.shape(low), np.shape(high))
    key = self._key(key)
    return jr.randint(
      key, shape=_size2shape(size), minval=low, maxval=high, dtype=dtype or _ditype()
    )

  def randn(self, *dn: int, key=None, dtype=None):
    """Standard normal samples of shape ``dn``."""
    key = self._key(key)
    return jr.normal(key, shape=dn, dtype=dtype or _dftype())

  def random(self, size=None, key=None, dtype=None):
    """Uniform samples in [0, 1) of shape ``size``."""
    key = self._key(key)
    return jr.uniform(key, _size2shape(size), dtype=dtype or _dftype())

  def random_sample(self, size=None, key=None, dtype=None):
    """Same as :meth:`random`."""
    return self.random(size=size, key=key, dtype=dtype or _dftype())

  def ranf(self, size=None, key=None, dtype=None):
    """Same as :meth:`random`."""
    return self.random(size=size, key=key, dtype=dtype or _dftype())

  def sample(self, size=None, key=None, dtype=None):
    """Same as :meth:`random`."""
    return self.random(size=size, key=key, dtype=dtype or _dftype())

  def choice(self, a, size=None, replace=True, p=None, key=None):
    """Random picks from ``a`` (an array, or ``arange(a)`` for an int)."""
    p = _seq(p)
    key = self._key(key)
    if not isinstance(a, (int, jax.Array)):
      arr = np.asarray(a)
      if arr.dtype.kind not in 'biufc':
        # non-numeric items (e.g. strings): pick indices, then index on host
        idx = jr.choice(
          key, a=np.arange(arr.shape[0]), shape=_size2shape(size), replace=replace, p=p
        )
        return arr[np.asarray(idx)]
    a = _seq(a)
    return jr.choice(key, a=a, shape=_size2shape(size), replace=replace, p=p)

  def permutation(self, x, axis: int = 0, independent: bool = False, key=None):
    """A shuffled copy of ``x`` along ``axis`` (``arange(x)`` for an int)."""
    x = _seq(x)
    key = self._key(key)
    return jr.permutation(key, x, axis, independent=independent)

  def shuffle(self, x, axis=0, key=None):
    """Returns a shuffled copy of ``x`` (JAX arrays are immutable)."""
    return self.permutation(x, axis=axis, key=key, independent=False)

  # -- continuous distributions ------------------------------------------
  def beta(self, a, b, size=None, key=None, dtype=None):
    """Beta(a, b) samples."""
    a = _seq(a)
    b = _seq(b)
    if size is None:
      size = lax.broadcast_shapes(np.shape(a), np.shape(b))
    key = self._key(key)
    return jr.beta(key, a=a, b=b, shape=_size2shape(size), dtype=dtype or _dftype())

  def exponential(self, scale=None, size=None, key=None, dtype=None):
    """Exponential samples with mean ``scale`` (1 when ``None``)."""
    scale = _seq(scale)
    if size is None:
      size = _shape(scale)
    key = self._key(key)
    dtype = dtype or _dftype()
    r = jr.exponential(key, shape=_size2shape(size), dtype=dtype)
    if scale is not None:
      r = r * jnp.asarray(scale, dtype=dtype)
    return r

  def gamma(self, shape, scale=None, size=None, key=None, dtype=None):
    """Gamma samples with shape ``shape`` and scale ``scale`` (1 when ``None``)."""
    shape = _seq(shape)
    scale = _seq(scale)
    if size is None:
      size = lax.broadcast_shapes(np.shape(shape), _shape(scale))
    key = self._key(key)
    r = jr.gamma(key, a=shape, shape=_size2shape(size), dtype=dtype or _dftype())
    if scale is not None:
      r = r * scale
    return r

  def _loc_scale_draw(self, sampler, loc, scale, size, key, dtype):
    loc = _seq(loc)
    scale = _seq(scale)
    if size is None:
      size = lax.broadcast_shapes(_shape(loc), _shape(scale))
    key = self._key(key)
    value = sampler(key, shape=_size2shape(size), dtype=dtype or _dftype())
    return _loc_scale(loc, scale, value)

  def gumbel(self, loc=None, scale=None, size=None, key=None, dtype=None):
    """Gumbel samples, ``loc + scale * G`` (defaults 0 and 1)."""
    return self._loc_scale_draw(jr.gumbel, loc, scale, size, key, dtype)

  def laplace(self, loc=None, scale=None, size=None, key=None, dtype=None):
    """Laplace samples, ``loc + scale * L`` (defaults 0 and 1)."""
    return self._loc_scale_draw(jr.laplace, loc, scale, size, key, dtype)

  def logistic(self, loc=None, scale=None, size=None, key=None, dtype=None):
    """Logistic samples, ``loc + scale * L`` (defaults 0 and 1)."""
    return self._loc_scale_draw(jr.logistic, loc, scale, size, key, dtype)

  def normal(self, loc=None, scale=None, size=None, key=None, dtype=None):
    """Normal samples with mean ``loc`` and standard deviation ``scale``."""
    return self._loc_scale_draw(jr.normal, loc, scale, size, key, dtype)

  def pareto(self, a, size=None, key=None, dtype=None):
    """Pareto samples with shape ``a`` (support ``[1, inf)``)."""
    if size is None:
      size = np.shape(a)
    key = self._key(key)
    dtype = dtype or _dftype()
    a = jnp.asarray(a, dtype=dtype)
    return jr.pareto(key, b=a, shape=_size2shape(size), dtype=dtype)

  def poisson(self, lam=1.0, size=None, key=None, dtype=None):
    """Poisson counts with rate ``lam``."""
    lam = _seq(lam)
    if size is None:
      size = np.shape(lam)
    key = self._key(key)
    return jr.poisson(key, lam=lam, shape=_size2shape(size), dtype=dtype or _ditype())

  def standard_cauchy(self, size=None, key=None, dtype=None):
    """Standard Cauchy samples."""
    key = self._key(key)
    return jr.cauchy(key, shape=_size2shape(size), dtype=dtype or _dftype())

  def standard_exponential(self, size=None, key=None, dtype=None):
    """Exponential samples with mean 1."""
    key = self._key(key)
    return jr.exponential(key, shape=_size2shape(size), dtype=dtype or _dftype())

  def standard_gamma(self, shape, size=None, key=None, dtype=None):
    """Gamma samples with shape ``shape`` and scale 1."""
    shape = _seq(shape)
    if size is None:
      size = _shape(shape)
    key = self._key(key)
    return jr.gamma(key, a=shape, shape=_size2shape(size), dtype=dtype or _dftype())

  def standard_normal(self, size=None, key=None, dtype=None):
    """Standard normal samples of shape ``size``."""
    key = self._key(key)
    return jr.normal(key, shape=_size2shape(size), dtype=dtype or _dftype())

  def standard_t(self, df, size=None, key=None, dtype=None):
    """Student's t samples with ``df`` degrees of freedom (``jax.random.t``)."""
    df = _seq(df)
    if size is None:
      size = np.shape(df)
    key = self._key(key)
    return jr.t(key, df=df, shape=_size2shape(size), dtype=dtype or _dftype())

  def uniform(self, low=0.0, high=1.0, size=None, key=None, dtype=None):
    """Uniform samples in ``[low, high)``."""
    low = _seq(low)
    high = _seq(high)
    if size is None:
      size = lax.broadcast_shapes(np.shape(low), np.shape(high))
    key = self._key(key)
    return jr.uniform(
      key, _size2shape(size), dtype=dtype or _dftype(), minval=low, maxval=high
    )

  def truncated_normal(
    self, lower, upper, size=None, loc=0.0, scale=1.0, key=None, dtype=None,
    check_valid: bool = True,
  ):
    """Normal(loc, scale) samples restricted to ``[lower, upper]``.

    Sampled by inverting the normal CDF on the allowed interval. With
    ``check_valid``, a ``loc`` more than two ``scale`` outside the interval
    raises.
    """
    dtype = dtype or _dftype()
    lower, upper, loc, scale = (
      jnp.asarray(_seq(v), dtype=dtype) for v in (lower, upper, loc, scale)
    )
    if check_valid:
      _error_if(
        (lower, upper, loc, scale),
        lambda lo, hi, m, s: (m < lo - 2 * s) | (m > hi + 2 * s),
        'truncated_normal: the mean is more than 2 std from [lower, upper]; '
        'the samples would be inaccurate.',
      )
    if size is None:
      size = lax.broadcast_shapes(
        np.shape(lower), np.shape(upper), np.shape(loc), np.shape(scale)
      )
    sqrt2 = np.array(np.sqrt(2), dtype=dtype)
    one = np.asarray(1.0, dtype)
    two = np.asarray(2.0, dtype)
    cdf_lo = (one + lax.erf(((lower - loc) / scale) / sqrt2)) / two
    cdf_hi = (one + lax.erf(((upper - loc) / scale) / sqrt2)) / two
    key = self._key(key)
    pos_inf = np.array(np.inf, dtype=dtype)
    neg_inf = np.array(-np.inf, dtype=dtype)
    out = jr.uniform(
      key, size, dtype,
      minval=lax.nextafter(2 * cdf_lo - 1, pos_inf),
      maxval=lax.nextafter(2 * cdf_hi - 1, neg_inf),
    )
    out = lax.erf_inv(out)
    out = out * scale * sqrt2 + loc
    return jnp.clip(
      out,
      lax.nextafter(lax.stop_gradient(lower), pos_inf),
      lax.nextafter(lax.stop_gradient(upper), neg_inf),
    )

  def bernoulli(self, p=0.5, size=None, key=None, check_valid: bool = True):
    """Boolean samples that are True with probability ``p``."""
    p = _seq(p)
    if check_valid:
      _error_if(
        (p,), lambda q: (q < 0) | (q > 1),
        'bernoulli: p must lie in [0, 1], got {0}',
      )
    if size is None:
      size = np.shape(p)
    key = self._key(key)
    return jr.bernoulli(key, p=p, shape=_size2shape(size))

  def lognormal(self, mean=None, sigma=None, size=None, key=None, dtype=None):
    """``exp`` of Normal(mean, sigma) samples."""
    dtype = dtype or _dftype()
    mean = None if mean is None else jnp.asarray(_seq(mean), dtype=dtype)
    sigma = None if sigma is None else jnp.asarray(_seq(sigma), dtype=dtype)
    if size is None:
      size = lax.broadcast_shapes(_shape(mean), _shape(sigma))
    key = self._key(key)
    z = jr.normal(key, shape=_size2shape(size), dtype=dtype)
    return jnp.exp(_loc_scale(mean, sigma, z))

  def binomial(self, n, p, size=None, key=None, dtype=None, check_valid: bool = True):
    """Binomial counts of ``n`` trials with success probability ``p``."""
    n = _seq(n)
    p = _seq(p)
    if check_valid:
      _error_if(
        (p,), lambda q: (q < 0) | (q > 1),
        'binomial: p must lie in [0, 1], got {0}',
      )
    if size is None:
      size = lax.broadcast_shapes(np.shape(n), np.shape(p))
    key = self._key(key)
    r = jr.binomial(key, n, p, shape=_size2shape(size))
    return jnp.asarray(r, dtype=dtype or _ditype())

  def chisquare(self, df, size=None, key=None, dtype=None, check_valid: bool = True):
    """Chi-square samples with ``df`` degrees of freedom."""
    df = _seq(df)
    if check_valid:
      _error_if(
        (df,), lambda d: d <= 0,
        'chisquare: df must be > 0, got {0}',
      )
    key = self._key(key)
    dtype = dtype or _dftype()
    if size is None:
      size = np.shape(df)
    df = jnp.asarray(df, dtype=dtype)
    return 2.0 * jr.gamma(key, 0.5 * df, shape=_size2shape(size), dtype=dtype)

  def dirichlet(self, alpha, size=None, key=None, dtype=None):
    """Dirichlet samples with concentrations ``alpha`` (last axis)."""
    key = self._key(key)
    alpha = _seq(alpha)
    return jr.dirichlet(key, alpha=alpha, shape=_size2shape(size), dtype=dtype or _dftype())

  def geometric(self, p, size=None, key=None, dtype=None):
    """Number of Bernoulli(p) trials up to and including the first success."""
    p = _seq(p)
    _error_if(
      (p,), lambda q: (q <= 0) | (q > 1),
      'geometric: p must lie in (0, 1], got {0}',
    )
    if size is None:
      size = np.shape(p)
    key = self._key(key)
    u = jr.uniform(key, _size2shape(size), _dftype())
    r = jnp.floor(jnp.log1p(-u) / jnp.log1p(-p)) + 1
    return jnp.asarray(r, dtype=dtype or _ditype())

  def multinomial(self, n, pvals, size=None, key=None, dtype=None, check_valid: bool = True):
    """Category counts of ``n`` draws with probabilities ``pvals`` (last axis).

    ``n`` must be concrete (its maximum sets the number of draws). The result
    has shape ``batch + size + (k,)`` where ``batch`` broadcasts ``n`` with
    ``pvals[..., 0]``.
    """
    key = self._key(key)
    n = _seq(n)
    pvals = _seq(pvals)
    if check_valid:
      _error_if(
        (pvals,), lambda q: q[..., :-1].sum(axis=-1) > 1.0,
        'multinomial: sum(pvals[..., :-1]) must be <= 1, got pvals={0}',
      )
    if isinstance(n, jax.core.Tracer):
      raise ValueError('multinomial: the total count `n` must not be a traced value.')
    size = _size2shape(size)
    n_max = int(np.max(jax.device_get(n)))
    batch = lax.broadcast_shapes(np.shape(pvals)[:-1], np.shape(n))
    r = _impl.multinomial(key, pvals, n, n_max=n_max, shape=batch + size)
    return jnp.asarray(r, dtype=dtype or _ditype())

  def multivariate_normal(self, mean, cov, size=None, method: str = 'cholesky', key=None, dtype=None):
    """Multivariate normal samples; ``method`` factorises ``cov``.

    ``method`` is ``'cholesky'`` (default), ``'svd'`` or ``'eigh'``.
    """
    if method not in {'svd', 'eigh', 'cholesky'}:
      raise ValueError("method must be one of {'svd', 'eigh', 'cholesky'}")
    dtype = dtype or _dftype()
    mean = jnp.asarray(_seq(mean), dtype=dtype)
    cov = jnp.asarray(_seq(cov), dtype=dtype)
    key = self._key(key)
    if not jnp.ndim(mean) >= 1:
      raise ValueError(f'multivariate_normal: mean must have ndim >= 1, got {jnp.ndim(mean)}')
    if not jnp.ndim(cov) >= 2:
      raise ValueError(f'multivariate_normal: cov must have ndim >= 2, got {jnp.ndim(cov)}')
    n = mean.shape[-1]
    if np.shape(cov)[-2:] != (n, n):
      raise ValueError(
        f'multivariate_normal: cov must have shape (..., {n}, {n}), got {np.shape(cov)}'
      )
    if size is None:
      size = lax.broadcast_shapes(mean.shape[:-1], cov.shape[:-2])
    else:
      size = _size2shape(size)
      _check_shape('multivariate_normal', size, mean.shape[:-1], cov.shape[:-2])
    if method == 'svd':
      u, s, _ = jnp.linalg.svd(cov)
      factor = u * jnp.sqrt(s[..., None, :])
    elif method == 'eigh':
      w, v = jnp.linalg.eigh(cov)
      factor = v * jnp.sqrt(w[..., None, :])
    else:
      factor = jnp.linalg.cholesky(cov)
    z = jr.normal(key, size + mean.shape[-1:], dtype=dtype)
    return mean + jnp.einsum('...ij,...j->...i', factor, z)

  def rayleigh(self, scale=1.0, size=None, key=None, dtype=None):
    """Rayleigh samples with scale ``scale``."""
    scale = _seq(scale)
    if size is None:
      size = _shape(scale)
    key = self._key(key)
    dtype = dtype or _dftype()
    x = jnp.sqrt(-2.0 * jnp.log(jr.uniform(key, shape=_size2shape(size), dtype=dtype)))
    return x if scale is None else x * scale

  def triangular(self, left=0.0, mode=0.5, right=1.0, size=None, key=None, dtype=None):
    """Triangular samples on ``[left, right]`` peaking at ``mode``."""
    dtype = dtype or _dftype()
    left, mode, right = (jnp.asarray(_seq(v), dtype=dtype) for v in (left, mode, right))
    _error_if(
      (left, mode, right),
      lambda l, m, r: (l > m).any() | (m > r).any() | (l >= r).any(),
      'triangular: need left <= mode <= right and left < right, got '
      'left={0}, mode={1}, right={2}',
    )
    if size is None:
      size = lax.broadcast_shapes(np.shape(left), np.shape(mode), np.shape(right))
    size = _size2shape(size)
    key = self._key(key)
    u = jr.uniform(key, size, dtype=dtype)
    span = right - left
    split = jnp.where(span > 0, (mode - left) / jnp.where(span > 0, span, 1.0), 0.0)
    rising = left + jnp.sqrt(u * span * (mode - left))
    falling = right - jnp.sqrt((1.0 - u) * span * (right - mode))
    return jnp.where(u < split, rising, falling)

  def vonmises(self, mu, kappa, size=None, key=None, dtype=None):
    """Von Mises samples on ``[-pi, pi)`` with mean ``mu``, concentration ``kappa``."""
    key = self._key(key)
    dtype = dtype or _dftype()
    mu = jnp.asarray(_seq(mu), dtype=dtype)
    kappa = jnp.asarray(_seq(kappa), dtype=dtype)
    if size is None:
      size = lax.broadcast_shapes(np.shape(mu), np.shape(kappa))
    size = _size2shape(size)
    x = _impl.von_mises_centered(key, kappa, size, dtype=dtype)
    x = x + mu
    return (x + jnp.pi) % (2.0 * jnp.pi) - jnp.pi

  def weibull(self, a, size=None, key=None, dtype=None):
    """Weibull samples with shape ``a`` and scale 1."""
    key = self._key(key)
    a = _seq(a)
    if size is None:
      size = np.shape(a)
    elif jnp.size(a) > 1:
      raise ValueError(f'weibull: "a" must be a scalar when "size" is given, got {a}')
    u = jr.uniform(key=key, shape=_size2shape(size), dtype=dtype or _dftype())
    return jnp.power(-jnp.log1p(-u), 1.0 / a)

  def weibull_min(self, a, scale=None, size=None, key=None, dtype=None):
    """Weibull samples with shape ``a``, multiplied by ``scale`` if given."""
    key = self._key(key)
    a = _seq(a)
    scale = _seq(scale)
    if size is None:
      size = lax.broadcast_shapes(np.shape(a), _shape(scale))
    elif jnp.size(a) > 1:
      raise ValueError(f'weibull_min: "a" must be a scalar when "size" is given, got {a}')
    u = jr.uniform(key=key, shape=_size2shape(size), dtype=dtype or _dftype())
    r = jnp.power(-jnp.log1p(-u), 1.0 / a)
    return r if scale is None else r * scale

  def maxwell(self, size=None, key=None, dtype=None):
    """Maxwell samples: the norm of three standard normals."""
    key = self._key(key)
    z = jr.normal(key=key, shape=_size2shape(size) + (3,), dtype=dtype or _dftype())
    return jnp.linalg.norm(z, axis=-1)

  def _two_or_more_keys(self, key, n: int):
    return self.split_key(n) if key is None else jr.split(_format_key(key), n)

  def negative_binomial(self, n, p, size=None, key=None, dtype=None):
    """Failures before the ``n``-th success, success probability ``p``.

    Drawn as Poisson(Gamma(n, (1 - p) / p)).
    """
    n = _seq(n)
    p = _seq(p)
    if size is None:
      size = lax.broadcast_shapes(np.shape(n), np.shape(p))
    size = _size2shape(size)
    logits = jnp.log(p) - jnp.log1p(-p)
    k_gamma, k_pois = self._two_or_more_keys(key, 2)
    rate = self.gamma(shape=n, scale=jnp.exp(-logits), size=size, key=k_gamma, dtype=_dftype())
    return self.poisson(lam=rate, key=k_pois, dtype=dtype or _ditype())

  def wald(self, mean, scale, size=None, key=None, dtype=None):
    """Wald (inverse Gaussian) samples with mean ``mean`` and shape ``scale``."""
    dtype = dtype or _dftype()
    key = self._key(key)
    mean = jnp.asarray(_seq(mean), dtype=dtype)
    scale = jnp.asarray(_seq(scale), dtype=dtype)
    if size is None:
      size = lax.broadcast_shapes(np.shape(mean), np.shape(scale))
    size = _size2shape(size)
    k_chi2, k_unif = jr.split(key, 2)
    chi2 = jnp.square(self.randn(*size, key=k_chi2, dtype=dtype))
    unif = self.uniform(size=size, key=k_unif, dtype=dtype)
    arg = 4 * scale / (mean * chi2)
    finite = arg < np.inf
    safe = jnp.where(finite, arg, 1.0)
    ratio = jnp.expm1(0.5 * jnp.log1p(safe)) / (1.0 + jnp.sqrt(safe + 1.0))
    x = mean * jnp.where(finite, ratio, 1.0)
    return jnp.where(unif <= mean / (mean + x), x, jnp.square(mean) / x)

  def t(self, df, size=None, key=None, dtype=None):
    """Student's t samples, drawn as ``N * sqrt(df / 2 / Gamma(df / 2))``."""
    dtype = dtype or _dftype()
    df = jnp.asarray(_seq(df), dtype=dtype)
    if size is None:
      size = np.shape(df)
    else:
      size = _size2shape(size)
      _check_shape('t', size, np.shape(df))
    k_norm, k_gamma = self._two_or_more_keys(key, 2)
    z = jr.normal(k_norm, size, dtype=dtype)
    half_df = lax.div(df, np.array(2, jax.dtypes.canonicalize_dtype(z.dtype)))
    g = jr.gamma(k_gamma, half_df, size, dtype=dtype)
    return z * jnp.sqrt(half_df / g)

  def orthogonal(self, n: int, size=None, key=None, dtype=None):
    """Random ``n x n`` orthogonal matrices (Haar measure), batch ``size``."""
    dtype = dtype or _dftype()
    key = self._key(key)
    size = _size2shape(size)
    n = _index(n, 'orthogonal: n')
    z = jr.normal(key, size + (n, n), dtype=dtype)
    q, r = jnp.linalg.qr(z)
    d = jnp.diagonal(r, 0, -2, -1)
    return q * jnp.expand_dims(d / abs(d), -2)

  def noncentral_chisquare(self, df, nonc, size=None, key=None, dtype=None):
    """Non-central chi-square samples (``df`` dof, non-centrality ``nonc``)."""
    dtype = dtype or _dftype()
    df = jnp.asarray(_seq(df), dtype=dtype)
    nonc = jnp.asarray(_seq(nonc), dtype=dtype)
    if size is None:
      size = lax.broadcast_shapes(np.shape(df), np.shape(nonc))
    size = _size2shape(size)
    keys = self._two_or_more_keys(key, 3)
    return _impl.noncentral_chisquare_draw(keys, df, nonc, size, dtype)

  def loggamma(self, a, size=None, key=None, dtype=None):
    """``log`` of Gamma(a) samples, accurate for small ``a``."""
    dtype = dtype or _dftype()
    key = self._key(key)
    a = _seq(a)
    if size is None:
      size = np.shape(a)
    return jr.loggamma(key, a, shape=_size2shape(size), dtype=dtype)

  def categorical(self, logits, axis: int = -1, size=None, key=None):
    """Category indices drawn from unnormalised log-probabilities ``logits``."""
    key = self._key(key)
    logits = _seq(logits)
    if size is None:
      size = list(np.shape(logits))
      size.pop(axis)
    return jr.categorical(key, logits, axis=axis, shape=_size2shape(size))

  def zipf(self, a, size=None, key=None, dtype=None):
    """Zipf samples with exponent ``a > 1``."""
    a = _seq(a)
    _error_if(
      (a,), lambda x: ~(x > 1),
      'zipf: a must be > 1, got {0}',
    )
    if size is None:
      size = np.shape(a)
    return _impl.zipf_dist(
      self._key(key), a, shape=_size2shape(size), dtype=dtype or _ditype()
    )

  def power(self, a, size=None, key=None, dtype=None, check_valid: bool = True):
    """Power-function samples on [0, 1] with exponent ``a - 1`` (``a > 0``)."""
    a = _seq(a)
    if check_valid:
      _error_if(
        (a,), lambda x: x <= 0,
        'power: a must be > 0, got {0}',
      )
    if size is None:
      size = np.shape(a)
    return _impl.power_dist(
      self._key(key), a, shape=_size2shape(size), dtype=dtype or _dftype()
    )

  def f(self, dfnum, dfden, size=None, key=None, dtype=None):
    """F-distribution samples with ``dfnum`` and ``dfden`` degrees of freedom."""
    dfnum = _seq(dfnum)
    dfden = _seq(dfden)
    if size is None:
      size = lax.broadcast_shapes(np.shape(dfnum), np.shape(dfden))
    return _impl.f_dist(
      self._key(key), dfnum, dfden, shape=_size2shape(size), dtype=dtype or _dftype()
    )

  def hypergeometric(self, ngood, nbad, nsample, size=None, key=None, dtype=None):
    """Good items among ``nsample`` drawn without replacement."""
    ngood = _seq(ngood)
    nbad = _seq(nbad)
    nsample = _seq(nsample)
    if size is None:
      size = lax.broadcast_shapes(np.shape(ngood), np.shape(nbad), np.shape(nsample))
    return _impl.hypergeometric_dist(
      self._key(key), ngood, nbad, nsample, shape=_size2shape(size),
      dtype=dtype or _ditype(),
    )

  def logseries(self, p, size=None, key=None, dtype=None):
    """Logarithmic-series samples with parameter ``p`` in [0, 1)."""
    p = _seq(p)
    if size is None:
      size = np.shape(p)
    return _impl.logseries_dist(
      self._key(key), p, shape=_size2shape(size), dtype=dtype or _ditype()
    )

  def noncentral_f(self, dfnum, dfden, nonc, size=None, key=None, dtype=None):
    """Non-central F samples."""
    dfnum = _seq(dfnum)
    dfden = _seq(dfden)
    nonc = _seq(nonc)
    if size is None:
      size = lax.broadcast_shapes(np.shape(dfnum), np.shape(dfden), np.shape(nonc))
    return _impl.noncentral_f_dist(
      self._key(key), dfnum, dfden, nonc, shape=_size2shape(size),
      dtype=dtype or _dftype(),
    )

  # -- *_like helpers (PyTorch style) -------------------------------------
  def rand_like(self, input, dtype=None, key=None):
    """Uniform [0, 1) samples shaped like ``input`` (cast to its dtype)."""
    dtype = dtype if dtype is not None else _dtype_of(input)
    return self.random(np.shape(input), key=key).astype(dtype)

  def randn_like(self, input, dtype=None, key=None):
    """Standard normal samples shaped like ``input`` (cast to its dtype)."""
    dtype = dtype if dtype is not None else _dtype_of(input)
    return self.randn(*np.shape(input), key=key).astype(dtype)

  def randint_like(self, input, low=0, high=None, dtype=None, key=None):
    """Integers in ``[low, high)`` shaped like ``input``; ``high`` defaults to ``max(input)``."""
    if high is None:
      high = jnp.max(input)
    dtype = dtype if dtype is not None else _dtype_of(input)
    return self.randint(low, high, size=np.shape(input), key=key).astype(dtype)


def _dtype_of(x):
  dt = getattr(x, 'dtype', None)
  if dt is not None:
    return dt
  return jnp.result_type(x)


# The process-wide generator used by the module-level functions. Seeded from
# NumPy's global generator until ``seed`` is called.
DEFAULT = RandomState(_fresh_raw_key())


# ---------------------------------------------------------------------------
# module-level key management
# ---------------------------------------------------------------------------

def seed(seed_or_key: Any = None) -> None:
  """Seeds :data:`DEFAULT` (and NumPy's global generator).

  An int ``s`` sets the key to ``jax.random.key(s)`` and calls
  ``np.random.seed(s % 2**32)``; a key seeds NumPy from its first word.
  ``None`` picks a fresh random key and leaves NumPy alone.
  """
  with jax.ensure_compile_time_eval():
    if seed_or_key is None:
      DEFAULT.seed(np.random.default_rng().integers(0, 2 ** 32, size=2, dtype=np.uint32))
      return
    if isinstance(seed_or_key, np.integer):
      seed_or_key = int(seed_or_key)
    key = _format_key(seed_or_key)
    DEFAULT.set_key(key)
    try:
      if isinstance(seed_or_key, int):
        np_seed = seed_or_key % 2 ** 32
      else:
        np_seed = int(jr.key_data(key)[0]) % 2 ** 32
      np.random.seed(np_seed)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
      pass


def set_key(seed_or_key: Any) -> None:
  """Sets the key of :data:`DEFAULT` (NumPy is not touched)."""
  DEFAULT.set_key(_format_key(seed_or_key))


def get_key() -> jax.Array:
  """The current (typed) key of :data:`DEFAULT`."""
  return DEFAULT.value


def get_key_data() -> jax.Array:
  """The raw ``uint32`` words of :data:`DEFAULT`'s key."""
  return jr.key_data(DEFAULT.value)


def restore_key() -> None:
  """Restores the key of :data:`DEFAULT` saved by a ``backup=True`` call."""
  DEFAULT.restore_key()


def split_key(n: Optional[int] = None, backup: bool = False) -> jax.Array:
  """Advances :data:`DEFAULT` and returns one new key, or ``n`` of them."""
  return DEFAULT.split_key(n=n, backup=backup)


def split_keys(n: int, backup: bool = False) -> jax.Array:
  """Advances :data:`DEFAULT` and returns an array of ``n >= 1`` new keys."""
  if not isinstance(n, int) or n <= 0:
    raise ValueError(f'n must be a positive integer, got {n}')
  return split_key(n, backup=backup)


def self_assign_multi_keys(n: int, backup: bool = True) -> None:
  """Replaces :data:`DEFAULT`'s key with ``n`` keys split from it (for ``vmap``)."""
  if not isinstance(n, int) or n <= 0:
    raise ValueError(f'n must be a positive integer, got {n}')
  DEFAULT.self_assign_multi_keys(n, backup=backup)


def clone_rng(seed_or_key: Any = None, clone: bool = True) -> RandomState:
  """A RandomState: seeded from ``seed_or_key``, else a clone of (or) DEFAULT."""
  if seed_or_key is None:
    return DEFAULT.clone() if clone else DEFAULT
  return RandomState(seed_or_key)


def default_rng(seed_or_key: Any = None) -> RandomState:
  """:data:`DEFAULT` itself, or a new RandomState when a seed is given."""
  if seed_or_key is None:
    return DEFAULT
  return RandomState(seed_or_key)


@contextlib.contextmanager
def seed_context(seed_or_key: Any) -> Iterator[None]:
  """Temporarily seeds :data:`DEFAULT` and NumPy; both are restored on exit.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> with brainstate.random.seed_context(1):
    ...   a = brainstate.random.rand(2)
    >>> with brainstate.random.seed_context(1):
    ...   b = brainstate.random.rand(2)
    >>> bool((a == b).all())
    True
  """
  old_key = DEFAULT.value
  old_np = np.random.get_state()
  try:
    if seed_or_key is None:
      seed(int(np.random.default_rng().integers(0, 2 ** 32)))
    else:
      seed(seed_or_key)
    yield
  finally:
    DEFAULT.seed(old_key)
    np.random.set_state(old_np)
