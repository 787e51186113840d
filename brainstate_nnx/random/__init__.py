"""Stateful random numbers with BrainState's API, on a JAX key held in a State.

The module keeps one process-wide generator, :data:`DEFAULT`, a
:class:`RandomState` (a :class:`~brainstate_nnx.LongTermState`). Each
module-level draw splits DEFAULT's key, keeps one half as the new key and
samples with the other, so after ``seed(s)`` the numbers are reproducible --
and identical, bit for bit, to those of ``brainstate.random`` for the same
seed. ``brainstate_nnx.transform.jit`` threads DEFAULT like any other State,
so the key keeps advancing across compiled calls.

Every sampler accepts ``key=`` to use an explicit key instead (DEFAULT is left
as it is); create independent generators with ``RandomState(seed)``.

Example::

  >>> import brainstate_nnx as brainstate
  >>> brainstate.random.seed(0)
  >>> brainstate.random.randn(3)
  Array([-2.4424558 , -2.0356805 ,  0.20554423], dtype=float32)
  >>> x = brainstate.random.uniform(0., 1., size=(2, 2))
  >>> key = brainstate.random.split_key()
  >>> a = brainstate.random.normal(size=3, key=key)
  >>> b = brainstate.random.normal(size=3, key=key)   # same key, same draw
  >>> bool((a == b).all())
  True
  >>> rng = brainstate.random.RandomState(0)           # an independent stream
  >>> rng.randn(3)
  Array([-2.4424558 , -2.0356805 ,  0.20554423], dtype=float32)

Parameters are plain numbers or arrays (``brainunit`` quantities are not
supported). Default dtypes are float32/int32, or float64/int64 when
``jax_enable_x64`` is on.
"""

from ._state import (
  RandomState,
  DEFAULT,
  seed,
  set_key,
  get_key,
  get_key_data,
  default_rng,
  split_key,
  split_keys,
  seed_context,
  restore_key,
  self_assign_multi_keys,
  clone_rng,
)
from ._fun import (
  rand,
  randint,
  random_integers,
  randn,
  random,
  random_sample,
  ranf,
  sample,
  choice,
  permutation,
  shuffle,
  beta,
  exponential,
  gamma,
  gumbel,
  laplace,
  logistic,
  normal,
  pareto,
  standard_cauchy,
  standard_exponential,
  standard_gamma,
  standard_normal,
  standard_t,
  uniform,
  truncated_normal,
  lognormal,
  rayleigh,
  triangular,
  vonmises,
  wald,
  weibull,
  weibull_min,
  maxwell,
  t,
  loggamma,
  poisson,
  bernoulli,
  binomial,
  chisquare,
  dirichlet,
  geometric,
  f,
  hypergeometric,
  logseries,
  multinomial,
  multivariate_normal,
  negative_binomial,
  noncentral_chisquare,
  noncentral_f,
  power,
  zipf,
  orthogonal,
  categorical,
  rand_like,
  randint_like,
  randn_like,
)

__all__ = [
  # generator and key management
  'RandomState', 'DEFAULT', 'seed', 'set_key', 'get_key', 'get_key_data',
  'default_rng', 'split_key', 'split_keys', 'seed_context', 'restore_key',
  'self_assign_multi_keys', 'clone_rng',
  # uniform / integer / ordering
  'rand', 'randint', 'random_integers', 'randn', 'random', 'random_sample',
  'ranf', 'sample', 'choice', 'permutation', 'shuffle',
  # continuous
  'beta', 'exponential', 'gamma', 'gumbel', 'laplace', 'logistic', 'normal',
  'pareto', 'standard_cauchy', 'standard_exponential', 'standard_gamma',
  'standard_normal', 'standard_t', 'uniform', 'truncated_normal', 'lognormal',
  'rayleigh', 'triangular', 'vonmises', 'wald', 'weibull', 'weibull_min',
  'maxwell', 't', 'loggamma',
  # discrete and multivariate
  'poisson', 'bernoulli', 'binomial', 'chisquare', 'dirichlet', 'geometric',
  'f', 'hypergeometric', 'logseries', 'multinomial', 'multivariate_normal',
  'negative_binomial', 'noncentral_chisquare', 'noncentral_f', 'power', 'zipf',
  'orthogonal', 'categorical',
  # PyTorch-style
  'rand_like', 'randint_like', 'randn_like',
]
