"""``unvmap``: reductions that see through ``vmap``.

Each reduction is a small JAX primitive. Outside ``vmap`` it is the plain
NumPy reduction; inside ``vmap`` its batching rule reduces the *whole*
batched array -- every lane included -- and returns one unbatched result, so
all lanes agree on it (e.g. "has any lane spiked?" to stop a batched loop).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import Primitive
from jax.interpreters import batching, mlir

__all__ = ['unvmap', 'any_lanes', 'no_vmap']


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


def _without_vmap(x):
  return _without_vmap_p.bind(x)


def unvmap(x: Any, op: str = 'any') -> Any:
  """Reduces ``x`` over everything, including the lanes of an enclosing ``vmap``.

  ``op`` is ``'any'`` (default), ``'all'``, ``'max'`` or ``'none'``. The
  first three return a scalar (``jnp.any`` / ``jnp.all`` / ``jnp.max`` of
  all elements of all lanes), shared by every lane. ``'none'`` returns ``x``
  itself, but as an unbatched value: inside ``vmap`` the lanes are exposed as
  an ordinary leading axis. ``x`` must be a single array.

  Example::

    >>> import jax, jax.numpy as jnp
    >>> from brainstate_nnx.transform._unvmap import unvmap
    >>> unvmap(jnp.array([False, True]), op='any')
    Array(True, dtype=bool)
    >>> spikes = jnp.array([[0., 0.], [0., 1.]])   # lane 1 spiked
    >>> jax.vmap(lambda s: unvmap(s > 0, op='any'))(spikes)
    Array([ True,  True], dtype=bool)
    >>> jax.vmap(lambda s: unvmap(s, op='max'))(jnp.array([[1., 5.], [2., 3.]]))
    Array([5., 5.], dtype=float32)
  """
  if op == 'all':
    return unvmap_all(x)
  if op == 'any':
    return unvmap_any(x)
  if op == 'none':
    return _without_vmap(x)
  if op == 'max':
    return unvmap_max(x)
  raise ValueError(f"unvmap: unsupported op {op!r}; use 'any', 'all', 'max' or 'none'.")


def any_lanes(x) -> jax.Array:
  """``jnp.any(x)`` over every element, the lanes of an enclosing ``vmap`` included.

  Not differentiated (a condition). Example::

    >>> import jax, jax.numpy as jnp
    >>> from brainstate_nnx.transform._unvmap import any_lanes
    >>> jax.vmap(any_lanes)(jnp.array([0., 1.]) > 0)
    Array([ True,  True], dtype=bool)
  """
  return unvmap_any(jax.lax.stop_gradient(jnp.asarray(x)))


def no_vmap(x):
  """``x`` with the lanes of an enclosing ``vmap`` as an ordinary leading axis.

  Not differentiated. Example::

    >>> import jax, jax.numpy as jnp
    >>> from brainstate_nnx.transform._unvmap import no_vmap
    >>> jax.vmap(lambda v: no_vmap(v).sum())(jnp.array([1., 2.]))
    Array([3., 3.], dtype=float32)
  """
  return _without_vmap(jax.lax.stop_gradient(jnp.asarray(x)))
