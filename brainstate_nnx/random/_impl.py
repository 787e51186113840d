"""Key handling, argument helpers and the compiled samplers behind ``random``.

Nothing here is public API. The samplers that need a loop or a scatter
(multinomial, von Mises, F, non-central F, log-series, Zipf, power and
hypergeometric) are ``jax.jit``-compiled with their shape and dtype static, so
they produce the same bits whether they are called eagerly or inside a trace.
"""

from __future__ import annotations

import functools
import operator
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jax import lax
from jax.scipy import special as jsp

from .._lane_ops import any_lanes

__all__ = [
  'dftype',
  'ditype',
  'is_typed_key',
  'format_key',
  'size2shape',
  'check_shape',
  'as_array_if_seq',
  'loc_scale',
  'error_if',
  'shape_of',
  'index_or_error',
  'multinomial',
  'von_mises_centered',
  'f_dist',
  'noncentral_f_dist',
  'noncentral_chisquare_draw',
  'logseries_dist',
  'zipf_dist',
  'power_dist',
  'hypergeometric_dist',
]


# ---------------------------------------------------------------------------
# default dtypes
# ---------------------------------------------------------------------------

def dftype():
  """The default float dtype: :func:`brainstate_nnx.environ.dftype` (float32 by default)."""
  from .. import environ
  return environ.dftype()


def ditype():
  """The default integer dtype: :func:`brainstate_nnx.environ.ditype` (int32 by default)."""
  from .. import environ
  return environ.ditype()


# ---------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------

def is_typed_key(x: Any) -> bool:
  """Whether ``x`` is a typed (``jax.random.key``) key array."""
  dt = getattr(x, 'dtype', None)
  return dt is not None and jnp.issubdtype(dt, jax.dtypes.prng_key)


def format_key(key: Any) -> jax.Array:
  """Turns a seed or key into a typed JAX key.

  Accepted: a Python integer (``jax.random.key(seed)``), a typed key array
  (returned unchanged), a one-element integer array (used as a seed) or a raw
  ``uint32`` key of two words (wrapped without change of bits).
  """
  if isinstance(key, (int, np.integer)):
    return jr.key(int(key))
  if isinstance(key, (jax.Array, np.ndarray)):
    if is_typed_key(key):
      return key
    if key.size == 1 and jnp.issubdtype(key.dtype, jnp.integer):
      return jr.key(jnp.reshape(key, ()))
    if key.dtype != np.uint32 or key.size != 2:
      raise TypeError(
        'A raw key must be a uint32 array with 2 elements; got '
        f'dtype={key.dtype}, size={key.size}.'
      )
    return jr.wrap_key_data(key)
  raise TypeError(
    'Expected an int seed, a typed JAX key or a uint32 array of size 2, '
    f'got {type(key).__name__}.'
  )


# ---------------------------------------------------------------------------
# argument helpers
# ---------------------------------------------------------------------------

def size2shape(size) -> tuple:
  """``None`` -> ``()``, a tuple/list -> tuple, anything else -> ``(size,)``."""
  if size is None:
    return ()
  if isinstance(size, (tuple, list)):
    return tuple(size)
  return (size,)


def check_shape(name: str, shape: tuple, *param_shapes) -> None:
  """Checks that the parameter shapes broadcast to exactly ``shape``."""
  if param_shapes:
    got = lax.broadcast_shapes(shape, *param_shapes)
    if got != shape:
      raise ValueError(
        f'{name}: the parameter shapes broadcast with size={shape} to {got}; '
        'they must broadcast to exactly the requested size.'
      )


def as_array_if_seq(x):
  """Python lists/tuples become JAX arrays; everything else is untouched."""
  if isinstance(x, (tuple, list)):
    return jnp.asarray(x)
  return x


def shape_of(x) -> tuple:
  """``np.shape`` that maps ``None`` to ``()``."""
  return () if x is None else np.shape(x)


def loc_scale(loc, scale, value):
  """``value * scale + loc`` where a ``None`` term is skipped."""
  if scale is not None:
    value = value * scale
  if loc is not None:
    value = value + loc
  return value


# ---------------------------------------------------------------------------
# parameter checks that work eagerly and inside traces
# ---------------------------------------------------------------------------

def _is_traced(tree) -> bool:
  return any(isinstance(l, jax.core.Tracer) for l in jax.tree.leaves(tree))


def error_if(args: Sequence[Any], predicate: Callable[..., Any], message: str) -> None:
  """Raises ``ValueError`` where ``predicate(*args)`` holds for any element.

  ``predicate`` gets the ``args`` as NumPy arrays when they are concrete (the
  check then runs on the spot, without compiling anything) and as JAX arrays
  when any is traced, so it must use operators and array methods only.
  ``message`` is a format string whose ``{0}``, ``{1}``, ... are the ``args``.
  Under a trace a host callback raises at run time (placeholders unfilled),
  and only when the predicate is true: otherwise the check costs one
  reduction on device.
  """
  if not _is_traced(args):
    if np.any(predicate(*[np.asarray(a) for a in args])):
      raise ValueError(message.format(*args))
    return
  text = message.format(*(['<traced>'] * len(args)))
  # reduced over the lanes of a vmap too: the flag is not batched, so the
  # ``lax.cond`` below stays a real branch under ``vmap``
  flag = any_lanes(jnp.asarray(predicate(*[jnp.asarray(a) for a in args])))

  def _raise():
    raise ValueError(text)

  lax.cond(flag, lambda: jax.debug.callback(_raise), lambda: None)


# ---------------------------------------------------------------------------
# compiled samplers
# ---------------------------------------------------------------------------

def _shape_arg(shape, default) -> tuple:
  if shape is None:
    return tuple(default)
  if isinstance(shape, int):
    return (shape,)
  return tuple(shape)


@functools.partial(jax.jit, static_argnames=('n_max', 'shape'))
def multinomial(key, p, n, *, n_max: int, shape: tuple = ()):
  """Counts of ``n`` categorical draws with probabilities ``p`` (last axis).

  Draws ``n_max`` categories per batch element by comparing one uniform with
  the running sum of ``p``; draws past an element's own ``n`` are first put in
  category 0 and then taken off again.
  """
  batch = lax.broadcast_shapes(np.shape(n), np.shape(p)[:-1])
  if np.shape(n) != np.shape(p)[:-1]:
    n = jnp.broadcast_to(n, batch)
    p = jnp.broadcast_to(p, batch + np.shape(p)[-1:])
  shape = tuple(shape) or p.shape[:-1]
  k = p.shape[-1]
  if n_max == 0:
    return jnp.zeros(shape + (k,), dtype=jnp.result_type(int))
  # one category per draw: how many cumulative probabilities lie below u
  edges = jnp.cumsum(p, axis=-1)
  u = jr.uniform(key, shape=(n_max,) + shape + (1,))
  cats = jnp.sum(edges < u, axis=-1)
  if jnp.ndim(n) > 0:
    live = jnp.moveaxis(jnp.arange(n_max) < jnp.expand_dims(n, -1), -1, 0)
    cats = cats * live.astype(cats.dtype)
    surplus = jnp.concatenate(
      [
        jnp.expand_dims((n_max - n).astype(cats.dtype), -1),
        jnp.zeros(np.shape(n) + (k - 1,), dtype=cats.dtype),
      ],
      axis=-1,
    )
  else:
    surplus = 0
  flat = jnp.reshape(cats, (n_max, -1)).T  # (elements, n_max)
  rows = jnp.arange(flat.shape[0])[:, None]
  counts = jnp.zeros((flat.shape[0], k), dtype=cats.dtype).at[rows, flat].add(1)
  return jnp.reshape(counts, shape + (k,)) - surplus


_VM_CUTOFF = {
  np.dtype(np.float16): 0.18,
  np.dtype(np.float32): 0.02,
  np.dtype(np.float64): 0.00012,
}


@functools.partial(jax.jit, static_argnames=('shape', 'dtype'))
def von_mises_centered(key, concentration, shape: tuple, dtype=None):
  """Von Mises samples centred at 0 (Best & Fisher rejection, max 100 rounds)."""
  shape = tuple(shape) or np.shape(concentration)
  dtype = np.dtype(dtype or dftype())
  if dtype not in _VM_CUTOFF:
    raise ValueError(f'vonmises does not support dtype {dtype}')
  kappa = jnp.broadcast_to(lax.convert_element_type(concentration, dtype), shape)
  cutoff = _VM_CUTOFF[dtype]

  key_uniform, key = jr.split(key)
  r = 1.0 + jnp.sqrt(1.0 + 4.0 * kappa ** 2)
  rho = (r - jnp.sqrt(2.0 * r)) / (2.0 * kappa)
  s = jnp.where(kappa > cutoff, (1.0 + rho ** 2) / (2.0 * rho), 1.0 / kappa)

  def keep_going(carry):
    i, _, done, _, _ = carry
    return jnp.bitwise_and(i < 100, jnp.logical_not(jnp.all(done)))

  def one_round(carry):
    i, k, done, _, w = carry
    k_u, k_v, k = jr.split(k, 3)
    u = jr.uniform(key=k_u, shape=shape, dtype=kappa.dtype, minval=-1.0, maxval=1.0)
    z = jnp.cos(jnp.pi * u)
    w = jnp.where(done, w, (1.0 + s * z) / (s + z))
    y = kappa * (s - w)
    v = jr.uniform(key=k_v, shape=shape, dtype=kappa.dtype)
    ok = (y * (2.0 - y) >= v) | (jnp.log(y / v) + 1.0 >= y)
    # note: the sign source ``u`` of the last round is kept for every element
    return i + 1, k, ok | done, u, w

  zeros = jnp.zeros(shape, dtype=kappa.dtype)
  init = (jnp.array(0), key, jnp.zeros(shape, dtype=bool), zeros, zeros)
  _, _, _, u, w = lax.while_loop(keep_going, one_round, init)
  centred = jnp.sign(u) * jnp.arccos(w)
  flat = jr.uniform(key_uniform, shape, dtype=kappa.dtype, minval=-jnp.pi, maxval=jnp.pi)
  return jnp.where(kappa <= 0, flat, centred)


def _calc_dtype():
  # the widest float available: float64 with x64, float32 otherwise
  return jax.dtypes.canonicalize_dtype(jnp.promote_types(dftype(), jnp.float64))


@functools.partial(jax.jit, static_argnames=('shape', 'dtype'))
def f_dist(key, dfnum, dfden, *, shape, dtype=None):
  """F distribution as a ratio of two scaled chi-square draws."""
  dtype = dtype or dftype()
  dfnum = lax.convert_element_type(dfnum, dtype)
  dfden = lax.convert_element_type(dfden, dtype)
  shape = _shape_arg(shape, lax.broadcast_shapes(np.shape(dfnum), np.shape(dfden)))
  dfnum = jnp.broadcast_to(dfnum, shape)
  dfden = jnp.broadcast_to(dfden, shape)
  if int(np.prod(shape)) == 0:
    return jnp.empty(shape, dtype=dtype)
  k_num, k_den = jr.split(key)
  num = 2.0 * jr.gamma(k_num, 0.5 * dfnum, shape=shape, dtype=dtype)
  den = 2.0 * jr.gamma(k_den, 0.5 * dfden, shape=shape, dtype=dtype)
  return num / dfnum / (den / dfden)


def noncentral_chisquare_draw(keys, df, nonc, shape, dtype):
  """Non-central chi-square samples from three keys (Poisson, normal, gamma).

  ``df > 1``: a central chi-square with ``df - 1`` degrees of freedom plus a
  squared normal of mean ``sqrt(nonc)``; otherwise a chi-square whose
  degrees of freedom are raised by a Poisson(``nonc / 2``) count.
  """
  k_pois, k_norm, k_gamma = keys
  i = jr.poisson(k_pois, 0.5 * nonc, shape=shape, dtype=ditype())
  z = jr.normal(k_norm, shape=shape, dtype=dtype) + jnp.sqrt(nonc)
  big = jnp.greater(df, 1.0)
  df2 = jnp.where(big, df - 1.0, df + 2.0 * i)
  chi2 = 2.0 * jr.gamma(k_gamma, 0.5 * df2, shape=shape, dtype=dtype)
  return jnp.where(big, chi2 + z * z, chi2)


@functools.partial(jax.jit, static_argnames=('shape', 'dtype'))
def noncentral_f_dist(key, dfnum, dfden, nonc, *, shape, dtype=None):
  """Non-central F: a non-central chi-square over a central one."""
  dtype = dtype or dftype()
  dfnum = lax.convert_element_type(dfnum, dtype)
  dfden = lax.convert_element_type(dfden, dtype)
  nonc = lax.convert_element_type(nonc, dtype)
  k_num, k_den = jr.split(key)
  numerator = noncentral_chisquare_draw(jr.split(k_num, 3), dfnum, nonc, shape, dtype)
  chi2_den = 2.0 * jr.gamma(k_den, 0.5 * dfden, shape=shape, dtype=dtype)
  return numerator / dfnum / (chi2_den / dfden)


@functools.partial(jax.jit, static_argnames=('shape', 'dtype'))
def logseries_dist(key, p, *, shape, dtype=None):
  """Log-series samples by sequential search of the CDF in log space."""
  dtype = dtype or ditype()
  cdt = _calc_dtype()
  p = lax.convert_element_type(p, jax.dtypes.canonicalize_dtype(dftype()))
  shape = _shape_arg(shape, np.shape(p))
  p = jnp.broadcast_to(p, shape)
  size = int(np.prod(shape)) if shape else 1
  if size == 0:
    return jnp.empty(shape, dtype=dtype)
  p_flat = jnp.reshape(lax.convert_element_type(p, cdt), (size,))
  keys = jr.split(key, size)
  tiny = jnp.array(np.finfo(cdt).tiny, dtype=cdt)
  below_one = jnp.nextafter(jnp.array(1.0, dtype=cdt), jnp.array(0.0, dtype=cdt))

  def one(k, q):
    q = lax.convert_element_type(q, cdt)

    def degenerate(_):
      return jnp.array(1.0, dtype=cdt)

    def search(args):
      k_i, q_i = args
      q_i = jnp.clip(q_i, tiny, below_one)
      log_q = jnp.log(q_i)
      log_pmf = log_q - jnp.log(-jnp.log1p(-q_i))
      log_u = jnp.log(jr.uniform(k_i, shape=(), dtype=cdt, minval=tiny, maxval=below_one))

      def below(st):
        return st[3] > st[2]

      def step(st):
        x, lp, lc, lu = st
        x1 = x + 1.0
        lp1 = lp + log_q + jnp.log(x) - jnp.log(x1)
        return x1, lp1, jnp.logaddexp(lc, lp1), lu

      x, _, _, _ = lax.while_loop(
        below, step, (jnp.array(1.0, dtype=cdt), log_pmf, log_pmf, log_u)
      )
      return x

    return lax.cond(q <= 0.0, degenerate, search, (k, q))

  out = jax.vmap(one)(keys, p_flat)
  return jnp.reshape(lax.convert_element_type(out, dtype), shape)


@functools.partial(jax.jit, static_argnames=('shape', 'dtype'))
def zipf_dist(key, a, *, shape, dtype=None):
  """Zipf samples by inverting the Hurwitz-zeta CDF with a stepping search."""
  dtype = dtype or ditype()
  cdt = _calc_dtype()
  a = lax.convert_element_type(a, cdt)
  shape = _shape_arg(shape, np.shape(a))
  a = jnp.broadcast_to(a, shape)
  size = int(np.prod(shape)) if shape else 1
  if size == 0:
    return jnp.empty(shape, dtype=dtype)
  one_c = jnp.array(1.0, dtype=cdt)
  u = jr.uniform(key, shape=shape, dtype=cdt, minval=jnp.finfo(cdt).tiny, maxval=one_c)
  limit = jnp.array(1000000, dtype=jnp.int32)

  def one(a_i, u_i):
    z1 = jsp.zeta(a_i, one_c)

    def cdf(x):
      return one_c - jsp.zeta(a_i, x + one_c) / z1

    def unresolved(st):
      _, lo, hi, it = st
      return jnp.logical_and(jnp.logical_or(u_i > hi, u_i <= lo), it < limit)

    def move(st):
      x, _, hi, it = st

      def up(_):
        x1 = x + one_c
        return x1, one_c - jsp.zeta(a_i, x1) / z1, cdf(x1), it + 1

      def down(_):
        x1 = jnp.maximum(one_c, x - one_c)
        return x1, one_c - jsp.zeta(a_i, x1) / z1, cdf(x1), it + 1

      return lax.cond(u_i > hi, up, down, operand=None)

    start = (one_c, jnp.array(0.0, dtype=cdt), cdf(one_c), jnp.array(0, dtype=jnp.int32))
    x, _, _, _ = lax.while_loop(unresolved, move, start)
    return lax.convert_element_type(x, dtype)

  out = jax.vmap(one)(jnp.reshape(a, (size,)), jnp.reshape(u, (size,)))
  return jnp.reshape(out, shape)


@functools.partial(jax.jit, static_argnames=('shape', 'dtype'))
def power_dist(key, a, *, shape, dtype=None):
  """Power-function distribution: ``U ** (1 / a)`` with ``U`` in (tiny, 1)."""
  dtype = dtype or dftype()
  fdt = jax.dtypes.canonicalize_dtype(dtype)
  a = lax.convert_element_type(a, fdt)
  shape = _shape_arg(shape, np.shape(a))
  a = jnp.broadcast_to(a, shape)
  if int(np.prod(shape)) == 0:
    return jnp.empty(shape, dtype=fdt)
  tiny = jnp.array(np.finfo(fdt).tiny, dtype=fdt)
  u = jr.uniform(key, shape=shape, dtype=fdt, minval=tiny, maxval=1.0)
  out = jnp.power(u, jnp.reciprocal(jnp.maximum(a, tiny)))
  return lax.convert_element_type(out, dtype)


@functools.partial(jax.jit, static_argnames=('shape', 'dtype'))
def hypergeometric_dist(key, ngood, nbad, nsample, *, shape, dtype=None):
  """Hypergeometric samples by drawing without replacement one item at a time."""
  odt = jax.dtypes.canonicalize_dtype(dtype or ditype())
  cdt = _calc_dtype()
  ngood = lax.convert_element_type(ngood, odt)
  nbad = lax.convert_element_type(nbad, odt)
  nsample = lax.convert_element_type(nsample, odt)
  shape = _shape_arg(
    shape, lax.broadcast_shapes(np.shape(ngood), np.shape(nbad), np.shape(nsample))
  )
  size = int(np.prod(shape)) if shape else 1
  if size == 0:
    return jnp.empty(shape, dtype=odt)
  flat = [jnp.reshape(jnp.broadcast_to(x, shape), (size,)) for x in (ngood, nbad, nsample)]
  keys = jr.split(key, size + 1)[1:]
  zero = jnp.array(0, dtype=odt)
  one_i = jnp.array(1, dtype=odt)

  def one(k, good, bad, draws):
    good = jnp.maximum(good, zero)
    bad = jnp.maximum(bad, zero)
    draws = jnp.minimum(jnp.maximum(draws, zero), good + bad)

    def more(st):
      i, _, g, b, _, d = st
      return jnp.logical_and(i < d, g + b > zero)

    def draw(st):
      i, k_i, g, b, hits, d = st
      k_i, sub = jr.split(k_i)
      total = g + b
      prob = jnp.where(
        total > zero,
        lax.convert_element_type(g, cdt) / lax.convert_element_type(total, cdt),
        jnp.array(0.0, dtype=cdt),
      )
      hit = (jr.uniform(sub, shape=(), dtype=cdt) < prob).astype(odt)
      g = g - hit
      b = b - jnp.where(total > zero, one_i - hit, zero)
      return i + one_i, k_i, g, b, hits + hit, d

    *_, hits, _ = lax.while_loop(more, draw, (zero, k, good, bad, zero, draws))
    return hits

  out = jax.vmap(one)(keys, *flat)
  return jnp.reshape(lax.convert_element_type(out, odt), shape)


def index_or_error(n, what: str = 'n') -> int:
  """``operator.index(n)`` with a friendlier TypeError."""
  try:
    return operator.index(n)
  except TypeError:
    raise TypeError(f'{what} must be an integer, but got {n!r}') from None
