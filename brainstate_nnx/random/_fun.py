"""Module-level samplers: each one draws from :data:`~brainstate_nnx.random.DEFAULT`.

Every function takes ``key=`` to sample with an explicit key (DEFAULT is then
left untouched) and, where it makes sense, ``size=`` (the output shape) and
``dtype=``. Float outputs default to float32 (float64 with ``jax_enable_x64``),
integer outputs to int32 (int64).

Example::

  >>> import brainstate_nnx as brainstate
  >>> brainstate.random.seed(0)
  >>> brainstate.random.uniform(0., 1., size=2).shape
  (2,)
"""

from __future__ import annotations


from ._state import DEFAULT

__all__ = [
  'rand', 'randint', 'random_integers', 'randn', 'random', 'random_sample',
  'ranf', 'sample', 'choice', 'permutation', 'shuffle', 'beta', 'exponential',
  'gamma', 'gumbel', 'laplace', 'logistic', 'normal', 'pareto', 'poisson',
  'standard_cauchy', 'standard_exponential', 'standard_gamma',
  'standard_normal', 'standard_t', 'uniform', 'truncated_normal', 'bernoulli',
  'lognormal', 'binomial', 'chisquare', 'dirichlet', 'geometric', 'f',
  'hypergeometric', 'logseries', 'multinomial', 'multivariate_normal',
  'negative_binomial', 'noncentral_chisquare', 'noncentral_f', 'power',
  'rayleigh', 'triangular', 'vonmises', 'wald', 'weibull', 'weibull_min',
  'zipf', 'maxwell', 't', 'orthogonal', 'loggamma', 'categorical',
  'rand_like', 'randint_like', 'randn_like',
]


# -- uniform, integer and ordering ------------------------------------------

def rand(*dn: int, key=None, dtype=None):
  """Uniform samples in [0, 1) with shape ``dn`` (``rand(2, 3)``)."""
  return DEFAULT.rand(*dn, key=key, dtype=dtype)


def randint(low, high=None, size=None, key=None, dtype=None):
  """Integers in ``[low, high)``; with one bound, in ``[0, low)``."""
  return DEFAULT.randint(low, high, size=size, dtype=dtype, key=key)


def random_integers(low, high=None, size=None, key=None, dtype=None):
  """Integers in ``[low, high]`` (both ends included); with one bound, ``[1, low]``."""
  return DEFAULT.random_integers(low, high, size=size, key=key, dtype=dtype)


def randn(*dn: int, key=None, dtype=None):
  """Standard normal samples with shape ``dn`` (``randn(2, 3)``)."""
  return DEFAULT.randn(*dn, key=key, dtype=dtype)


def random(size=None, key=None, dtype=None):
  """Uniform samples in [0, 1) with shape ``size``."""
  return DEFAULT.random(size, key=key, dtype=dtype)


def random_sample(size=None, key=None, dtype=None):
  """Alias of :func:`random`."""
  return DEFAULT.random_sample(size, key=key, dtype=dtype)


def ranf(size=None, key=None, dtype=None):
  """Alias of :func:`random`."""
  return DEFAULT.ranf(size, key=key, dtype=dtype)


def sample(size=None, key=None, dtype=None):
  """Alias of :func:`random`."""
  return DEFAULT.sample(size, key=key, dtype=dtype)


def choice(a, size=None, replace=True, p=None, key=None):
  """Random picks from ``a`` (or from ``arange(a)`` when ``a`` is an int).

  ``replace=False`` draws without repetition; ``p`` gives the probabilities.
  A sequence of non-numbers (e.g. strings) is indexed on the host and a NumPy
  array is returned.
  """
  return DEFAULT.choice(a, size=size, replace=replace, p=p, key=key)


def permutation(x, axis: int = 0, independent: bool = False, key=None):
  """A shuffled copy of ``x`` along ``axis``; ``arange(x)`` shuffled for an int.

  With ``independent=True`` each slice along ``axis`` is shuffled separately.
  """
  return DEFAULT.permutation(x, axis=axis, independent=independent, key=key)


def shuffle(x, axis: int = 0, key=None):
  """Returns ``x`` shuffled along ``axis`` (a copy: JAX arrays are immutable)."""
  return DEFAULT.shuffle(x, axis=axis, key=key)


# -- continuous ---------------------------------------------------------------

def beta(a, b, size=None, key=None, dtype=None):
  """Beta(a, b) samples on [0, 1]."""
  return DEFAULT.beta(a, b, size=size, key=key, dtype=dtype)


def exponential(scale=None, size=None, key=None, dtype=None):
  """Exponential samples with mean ``scale`` (1 when omitted)."""
  return DEFAULT.exponential(scale, size=size, key=key, dtype=dtype)


def gamma(shape, scale=None, size=None, key=None, dtype=None):
  """Gamma samples with shape ``shape`` and scale ``scale`` (1 when omitted)."""
  return DEFAULT.gamma(shape, scale, size=size, key=key, dtype=dtype)


def gumbel(loc=None, scale=None, size=None, key=None, dtype=None):
  """Gumbel (extreme value type I) samples with location ``loc`` and scale ``scale``."""
  return DEFAULT.gumbel(loc, scale, size=size, key=key, dtype=dtype)


def laplace(loc=None, scale=None, size=None, key=None, dtype=None):
  """Laplace (double exponential) samples with location ``loc`` and scale ``scale``."""
  return DEFAULT.laplace(loc, scale, size=size, key=key, dtype=dtype)


def logistic(loc=None, scale=None, size=None, key=None, dtype=None):
  """Logistic samples with location ``loc`` and scale ``scale``."""
  return DEFAULT.logistic(loc, scale, size=size, key=key, dtype=dtype)


def normal(loc=None, scale=None, size=None, key=None, dtype=None):
  """Normal samples with mean ``loc`` (0) and standard deviation ``scale`` (1).

  Without ``size`` the shape is that of ``loc`` and ``scale`` broadcast.
  """
  return DEFAULT.normal(loc, scale, size=size, key=key, dtype=dtype)


def pareto(a, size=None, key=None, dtype=None):
  """Pareto samples with shape ``a`` (values are >= 1)."""
  return DEFAULT.pareto(a, size=size, key=key, dtype=dtype)


def standard_cauchy(size=None, key=None, dtype=None):
  """Standard Cauchy (Lorentz) samples."""
  return DEFAULT.standard_cauchy(size=size, key=key, dtype=dtype)


def standard_exponential(size=None, key=None, dtype=None):
  """Exponential samples with mean 1."""
  return DEFAULT.standard_exponential(size=size, key=key, dtype=dtype)


def standard_gamma(shape, size=None, key=None, dtype=None):
  """Gamma samples with shape ``shape`` and unit scale."""
  return DEFAULT.standard_gamma(shape, size=size, key=key, dtype=dtype)


def standard_normal(size=None, key=None, dtype=None):
  """Standard normal samples with shape ``size``."""
  return DEFAULT.standard_normal(size=size, key=key, dtype=dtype)


def standard_t(df, size=None, key=None, dtype=None):
  """Student's t samples with ``df`` degrees of freedom."""
  return DEFAULT.standard_t(df, size=size, key=key, dtype=dtype)


def uniform(low=0.0, high=1.0, size=None, key=None, dtype=None):
  """Uniform samples in ``[low, high)``."""
  return DEFAULT.uniform(low, high, size=size, key=key, dtype=dtype)


def truncated_normal(lower, upper, size=None, loc=0.0, scale=1.0, key=None, dtype=None,
                     check_valid: bool = True):
  """Normal(loc, scale) samples truncated to ``[lower, upper]``.

  ``check_valid`` raises when ``loc`` lies more than two ``scale`` outside
  the interval (where the inverse-CDF method loses accuracy).
  """
  return DEFAULT.truncated_normal(
    lower, upper, loc=loc, scale=scale, size=size, key=key, dtype=dtype,
    check_valid=check_valid,
  )


def lognormal(mean=None, sigma=None, size=None, key=None, dtype=None):
  """Samples whose logarithm is Normal(mean, sigma)."""
  return DEFAULT.lognormal(mean, sigma, size=size, key=key, dtype=dtype)


def rayleigh(scale=1.0, size=None, key=None, dtype=None):
  """Rayleigh samples with scale ``scale``."""
  return DEFAULT.rayleigh(scale, size=size, key=key, dtype=dtype)


def triangular(left=0.0, mode=0.5, right=1.0, size=None, key=None, dtype=None):
  """Triangular samples on ``[left, right]`` with peak at ``mode``."""
  return DEFAULT.triangular(left, mode, right, size=size, key=key, dtype=dtype)


def vonmises(mu, kappa, size=None, key=None, dtype=None):
  """Von Mises (circular normal) samples on ``[-pi, pi)``."""
  return DEFAULT.vonmises(mu, kappa, size=size, key=key, dtype=dtype)


def wald(mean, scale, size=None, key=None, dtype=None):
  """Wald (inverse Gaussian) samples with mean ``mean`` and shape ``scale``."""
  return DEFAULT.wald(mean, scale, size=size, key=key, dtype=dtype)


def weibull(a, size=None, key=None, dtype=None):
  """Weibull samples with shape ``a`` (a scalar when ``size`` is given)."""
  return DEFAULT.weibull(a, size=size, key=key, dtype=dtype)


def weibull_min(a, scale=None, size=None, key=None, dtype=None):
  """Weibull samples with shape ``a`` times ``scale`` (when given)."""
  return DEFAULT.weibull_min(a, scale, size=size, key=key, dtype=dtype)


def maxwell(size=None, key=None, dtype=None):
  """Maxwell-Boltzmann speed samples (norm of a 3-d standard normal)."""
  return DEFAULT.maxwell(size=size, key=key, dtype=dtype)


def t(df, size=None, key=None, dtype=None):
  """Student's t samples built from a normal and a gamma draw."""
  return DEFAULT.t(df, size=size, key=key, dtype=dtype)


def loggamma(a, size=None, key=None, dtype=None):
  """Logarithms of Gamma(a) samples (stable for small ``a``)."""
  return DEFAULT.loggamma(a, size=size, key=key, dtype=dtype)


def chisquare(df, size=None, key=None, dtype=None, check_valid: bool = True):
  """Chi-square samples with ``df > 0`` degrees of freedom."""
  return DEFAULT.chisquare(df, size=size, key=key, dtype=dtype, check_valid=check_valid)


def noncentral_chisquare(df, nonc, size=None, key=None, dtype=None):
  """Non-central chi-square samples."""
  return DEFAULT.noncentral_chisquare(df, nonc, size=size, key=key, dtype=dtype)


def f(dfnum, dfden, size=None, key=None, dtype=None):
  """F (Fisher-Snedecor) samples."""
  return DEFAULT.f(dfnum, dfden, size=size, key=key, dtype=dtype)


def noncentral_f(dfnum, dfden, nonc, size=None, key=None, dtype=None):
  """Non-central F samples."""
  return DEFAULT.noncentral_f(dfnum, dfden, nonc, size=size, key=key, dtype=dtype)


def power(a, size=None, key=None, dtype=None, check_valid: bool = True):
  """Samples on [0, 1] with density ``a * x**(a - 1)`` (``a > 0``)."""
  return DEFAULT.power(a, size=size, key=key, dtype=dtype, check_valid=check_valid)


def dirichlet(alpha, size=None, key=None, dtype=None):
  """Dirichlet samples (probability vectors along the last axis)."""
  return DEFAULT.dirichlet(alpha, size=size, key=key, dtype=dtype)


def multivariate_normal(mean, cov, size=None, method: str = 'cholesky', key=None, dtype=None):
  """Multivariate normal samples with mean ``mean`` and covariance ``cov``.

  ``method`` ('cholesky', 'svd' or 'eigh') is how ``cov`` is factorised.
  """
  return DEFAULT.multivariate_normal(mean, cov, size=size, method=method, key=key, dtype=dtype)


def orthogonal(n: int, size=None, key=None, dtype=None):
  """Uniformly random ``n x n`` orthogonal matrices, with batch shape ``size``."""
  return DEFAULT.orthogonal(n, size=size, key=key, dtype=dtype)


# -- discrete -------------------------------------------------------------------

def poisson(lam=1.0, size=None, key=None, dtype=None):
  """Poisson counts with mean ``lam``."""
  return DEFAULT.poisson(lam, size=size, key=key, dtype=dtype)


def bernoulli(p=0.5, size=None, key=None, check_valid: bool = True):
  """Booleans that are True with probability ``p`` (checked to lie in [0, 1])."""
  return DEFAULT.bernoulli(p, size=size, key=key, check_valid=check_valid)


def binomial(n, p, size=None, key=None, dtype=None, check_valid: bool = True):
  """Successes in ``n`` trials with success probability ``p``."""
  return DEFAULT.binomial(n, p, size=size, key=key, dtype=dtype, check_valid=check_valid)


def geometric(p, size=None, key=None, dtype=None):
  """Trials up to and including the first success (``p`` in (0, 1])."""
  return DEFAULT.geometric(p, size=size, key=key, dtype=dtype)


def hypergeometric(ngood, nbad, nsample, size=None, key=None, dtype=None):
  """Good items among ``nsample`` drawn without replacement from ``ngood + nbad``."""
  return DEFAULT.hypergeometric(ngood, nbad, nsample, size=size, key=key, dtype=dtype)


def logseries(p, size=None, key=None, dtype=None):
  """Logarithmic-series counts (values >= 1) with parameter ``p``."""
  return DEFAULT.logseries(p, size=size, key=key, dtype=dtype)


def multinomial(n, pvals, size=None, key=None, dtype=None, check_valid: bool = True):
  """Counts per category of ``n`` draws with probabilities ``pvals``.

  ``n`` must be concrete; the output's last axis has one entry per category.
  """
  return DEFAULT.multinomial(n, pvals, size=size, key=key, dtype=dtype, check_valid=check_valid)


def negative_binomial(n, p, size=None, key=None, dtype=None):
  """Failures before the ``n``-th success with success probability ``p``."""
  return DEFAULT.negative_binomial(n, p, size=size, key=key, dtype=dtype)


def zipf(a, size=None, key=None, dtype=None):
  """Zipf (zeta) samples with exponent ``a > 1``."""
  return DEFAULT.zipf(a, size=size, key=key, dtype=dtype)


def categorical(logits, axis: int = -1, size=None, key=None):
  """Indices drawn with probabilities ``softmax(logits)`` along ``axis``."""
  return DEFAULT.categorical(logits, axis, size=size, key=key)


# -- PyTorch-style *_like --------------------------------------------------------

def rand_like(input, *, dtype=None, key=None):
  """Uniform [0, 1) samples with the shape (and dtype) of ``input``."""
  return DEFAULT.rand_like(input, dtype=dtype, key=key)


def randn_like(input, *, dtype=None, key=None):
  """Standard normal samples with the shape (and dtype) of ``input``."""
  return DEFAULT.randn_like(input, dtype=dtype, key=key)


def randint_like(input, low=0, high=None, *, dtype=None, key=None):
  """Integers in ``[low, high)`` with the shape (and dtype) of ``input``.

  ``high`` defaults to ``max(input)``.
  """
  return DEFAULT.randint_like(input=input, low=low, high=high, dtype=dtype, key=key)
