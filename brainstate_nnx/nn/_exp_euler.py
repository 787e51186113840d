"""``exp_euler_step``: one exponential-Euler step of ``dx/dt = f(x, ...)``."""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from .. import environ, random
from .._units import is_quantity, split_mantissa_unit, unit_module
from ..transform import vector_grad

__all__ = ['exp_euler_step']

_TAYLOR_ORDER = 5  # as brainunit's exprel


def _threshold(dtype) -> float:
  if dtype == jnp.float64:
    return 1e-7
  if dtype in (jnp.float16, jnp.bfloat16):
    return 1e-2
  return 1e-4


def _exprel(x):
  """``(exp(x) - 1) / x``, with a Taylor series near 0 (brainunit's switch points)."""
  x = jnp.asarray(x)
  small = jnp.abs(x) <= _threshold(x.dtype)
  taylor = jnp.zeros_like(x)
  for n in range(_TAYLOR_ORDER, -1, -1):
    taylor = taylor * x + 1.0 / math.factorial(n + 1)
  safe = jnp.where(small, jnp.ones_like(x), x)
  return jnp.where(small, taylor, jnp.expm1(safe) / safe)


def exp_euler_step(fn: Callable, *args, **kwargs):
  """One exponential-Euler step of ``dx/dt = fn(x, *rest)`` with ``dt = environ.get_dt()``.

  ``x_next = x + dt * exprel(dt * J) * fn(x, ...)`` where ``J`` is the
  element-wise derivative of ``fn`` in ``x`` -- exact for linear dynamics. With
  a diffusion function first (``exp_euler_step(f, g, x, ...)``) the step adds
  ``g(x, ...) * sqrt(dt) * N(0, 1)`` noise drawn from :mod:`brainstate_nnx.random`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> with brainstate.environ.context(dt=0.1):
    ...   v = brainstate.nn.exp_euler_step(lambda v, I: (-v + I) / 10., jnp.zeros(2), 1.0)
    >>> v.round(6)
    Array([0.00995, 0.00995], dtype=float32)
  """
  assert callable(fn), 'The drift function should be callable.'
  assert len(args) > 0, 'The input arguments should not be empty.'
  diffusion = None
  if callable(args[0]):
    diffusion = args[0]
    args = args[1:]
    assert len(args) > 0, 'State variable is required after diffusion function.'
  if is_quantity(args[0]) or is_quantity(environ.get_dt()):
    return _exp_euler_units(fn, diffusion, args, kwargs)
  state = jnp.asarray(args[0])
  if state.dtype not in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64):
    raise ValueError(
      f'State variable dtype must be float16, bfloat16, float32, or float64 '
      f'for Exponential Euler method, but got {state.dtype}.'
    )
  dt = environ.get_dt()
  jacobian, drift = vector_grad(fn, argnums=0, return_value=True)(*args, **kwargs)
  x_next = state + dt * _exprel(dt * jacobian) * drift
  if diffusion is not None:
    noise = random.randn_like(state)
    x_next = x_next + diffusion(*args, **kwargs) * jnp.sqrt(dt) * noise
  return x_next


def _exp_euler_units(fn, diffusion, args, kwargs):
  """The same step with ``brainunit`` Quantities (state and/or ``dt``)."""
  u = unit_module()
  state = u.math.asarray(args[0])
  dtype = u.math.get_dtype(state)
  if dtype not in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64):
    raise ValueError(
      f'State variable dtype must be float16, bfloat16, float32, or float64 '
      f'for Exponential Euler method, but got {dtype}.'
    )
  dt = environ.get_dt()
  x_m, x_unit = split_mantissa_unit(state)
  rest = args[1:]
  out_unit = []

  def drift_mantissa(xm, *more):
    d = fn(u.maybe_decimal(u.Quantity(xm, unit=u.get_unit(state))), *more, **kwargs)
    out_unit.append(u.get_unit(d))
    return u.get_mantissa(d)

  jac, drift_m = vector_grad(drift_mantissa, argnums=0, return_value=True)(x_m, *rest)
  d_unit = out_unit[-1]
  drift = u.maybe_decimal(u.Quantity(drift_m, unit=d_unit))
  jac = u.Quantity(jac, unit=d_unit / u.get_unit(state))
  phi = u.math.exprel(dt * jac)
  x_next = state + dt * phi * drift
  if diffusion is not None:
    noise = random.randn_like(x_m)
    term = diffusion(*args, **kwargs) * u.math.sqrt(dt) * noise
    if u.get_dim(x_next) != u.get_dim(term):
      raise ValueError(
        f'Unit mismatch between drift and diffusion terms. State has unit '
        f'{u.get_unit(state)}, drift produces unit {u.get_unit(x_next)}, expected '
        f'diffusion unit {u.get_unit(x_next) / u.get_unit(dt) ** 0.5}, but got '
        f'{u.get_unit(term)}.'
      )
    x_next = x_next + term
  return x_next
