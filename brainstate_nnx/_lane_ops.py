"""Reductions that see through ``vmap``: the one set of lane primitives.

Each is a small JAX primitive. Outside ``vmap`` it is the plain NumPy
reduction; inside ``vmap`` its batching rule reduces the *whole* batched
array -- every lane included -- and returns one unbatched result, so all
lanes agree on it. Used by ``transform.unvmap``, the checks
(``jit_error_if``, ``debug_nan``) and the parameter checks of ``random``.

Example::

  >>> import jax, jax.numpy as jnp
  >>> from brainstate_nnx._lane_ops import any_lanes
  >>> jax.vmap(any_lanes)(jnp.array([0., 1.]) > 0)
  Array([ True,  True], dtype=bool)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.extend.core import Primitive
from jax.interpreters import batching, mlir

__all__ = ['unvmap_all', 'unvmap_any', 'unvmap_max', 'without_vmap', 'any_lanes', 'no_vmap']


def _make_reduction(name: str, impl, result_dtype=None):
  prim = Primitive(f'brainstate_nnx_unvmap_{name}')

  def bind(x):
    return prim.bind(x)

  def abstract(x):
    dtype = result_dtype if result_dtype is not None else x.dtype
    return jax.core.ShapedArray((), dtype)

  def batch_rule(args, dims):
    (x,) = args
    # ``x`` carries the batch axis: reducing it reduces across all lanes.
    return bind(x), None

  prim.def_impl(impl)
  prim.def_abstract_eval(abstract)
  batching.primitive_batchers[prim] = batch_rule
  mlir.register_lowering(prim, mlir.lower_fun(impl, multiple_results=False))
  return bind


unvmap_all = _make_reduction('all', jnp.all, jnp.bool_)
unvmap_any = _make_reduction('any', jnp.any, jnp.bool_)
unvmap_max = _make_reduction('max', jnp.max)


def _identity(x):
  return x


_without_vmap_p = Primitive('brainstate_nnx_unvmap_none')
_without_vmap_p.def_impl(_identity)
_without_vmap_p.def_abstract_eval(_identity)
batching.primitive_batchers[_without_vmap_p] = (
  lambda args, dims: (_without_vmap_p.bind(args[0]), None)
)
mlir.register_lowering(_without_vmap_p, mlir.lower_fun(_identity, multiple_results=False))



def without_vmap(x):
  """``x`` itself, as an unbatched value: the lanes become a leading axis."""
  return _without_vmap_p.bind(x)


def any_lanes(x) -> jax.Array:
  """``jnp.any(x)`` over every element, the lanes of an enclosing ``vmap`` included.

  Not differentiated (a condition). Example::

    >>> import jax, jax.numpy as jnp
    >>> from brainstate_nnx._lane_ops import any_lanes
    >>> jax.vmap(any_lanes)(jnp.array([0., 1.]) > 0)
    Array([ True,  True], dtype=bool)
  """
  return unvmap_any(jax.lax.stop_gradient(jnp.asarray(x)))


def no_vmap(x):
  """``x`` with the lanes of an enclosing ``vmap`` as an ordinary leading axis.

  Not differentiated. Example::

    >>> import jax, jax.numpy as jnp
    >>> from brainstate_nnx._lane_ops import no_vmap
    >>> jax.vmap(lambda v: no_vmap(v).sum())(jnp.array([1., 2.]))
    Array([3., 3.], dtype=float32)
  """
  return without_vmap(jax.lax.stop_gradient(jnp.asarray(x)))
