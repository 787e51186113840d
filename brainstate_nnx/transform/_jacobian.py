"""State-aware Jacobians, Hessians and forward-mode / product-form autodiff.

``jacrev`` / ``jacobian``, ``jacfwd``, ``hessian`` and ``fwd_grad`` are
:class:`~brainstate_nnx.transform.GradientTransform` objects with another JAX
transform underneath (``jax.jacrev``, ``jax.jacfwd``, ``jax.hessian`` and a
random-tangent forward-mode estimator), so they take the same ``grad_states``
/ ``argnums`` / ``has_aux`` / ``return_value`` options as ``grad`` and return
the same structures. ``vjp`` and ``jvp`` are the product forms: they run the
function once and return a pull-back (``vjp``) or the pushed-forward tangent
(``jvp``).

Whatever the transform, the values of the differentiated States are swapped
into the State objects while the function runs (so closures and modules see
them), and States written inside the function keep their new values
afterwards, exactly as with ``grad``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from .._state import State
from ._grad import GradientTransform, _MISSING, _flatten_grad_states

__all__ = [
  'jacrev', 'jacfwd', 'jacobian', 'hessian', 'fwd_grad', 'vjp', 'jvp',
]

GradStates = Optional[Union[State, Sequence[State], Dict[Any, State]]]


def _no_unit_aware(unit_aware: bool) -> None:
  if unit_aware:
    raise NotImplementedError(
      'unit_aware differentiation (brainunit) is not supported by brainstate_nnx'
    )


def _positions(argnums) -> tuple:
  return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def _substitute(args, positions, values) -> list:
  full = list(args)
  for n, v in zip(positions, values):
    full[n] = v
  return full


# --------------------------------------------------------------------------
# Jacobians and Hessians
# --------------------------------------------------------------------------

class _JacobianTransform(GradientTransform):
  """A ``GradientTransform`` whose gradients carry the output structure outside.

  ``jax.jacrev``/``jax.jacfwd`` of a function with a pytree output return, for
  every output leaf, a gradient laid out like the inputs. The State part of
  each of those is arranged in the user's ``grad_states`` structure
  separately, so the result is ``output structure -> (var_grads, arg_grads)``,
  as JAX puts it for plain arguments.
  """

  def _format_grads(self, grads, out):
    if not self._grad_states:
      return grads  # JAX's own structure, nothing internal to hide
    y = out[0] if self.has_aux else out
    out_tree = jax.tree.structure(y)
    if jax.tree_util.treedef_is_leaf(out_tree) and out_tree.num_leaves == 1:
      return super()._format_grads(grads, out)
    per_leaf = out_tree.flatten_up_to(grads)
    return out_tree.unflatten(
      [super(_JacobianTransform, self)._format_grads(g, out) for g in per_leaf]
    )


class _HessianTransform(_JacobianTransform):
  """Second-order State blocks: ``H[a][b]`` is d2f / d(state a) d(state b).

  Both levels of the internal per-State lists are laid out in the user's
  ``grad_states`` structure (a dict of dicts for a dict, a list of lists for a
  list, a single block for a single State).
  """

  def _format_state_grads(self, hess):
    pos = self._uid_pos
    states = self._grad_states
    rows = []
    for st_a in states:
      row = hess[pos[id(st_a)]]
      # a pytree-valued State gives one inner list per leaf of its value
      value_tree = jax.tree.structure(st_a._raw_value)
      inner = value_tree.flatten_up_to(row)
      rows.append(self._grad_tree.unflatten([
        value_tree.unflatten([blk[pos[id(st_b)]] for blk in inner])
        for st_b in states
      ]))
    return self._grad_tree.unflatten(rows)


def jacrev(
  fun: Callable,
  grad_states: GradStates = None,
  argnums: Optional[Union[int, Sequence[int]]] = None,
  has_aux: Optional[bool] = None,
  return_value: bool = False,
  holomorphic: bool = False,
  allow_int: bool = False,
  unit_aware: bool = False,
  check_states: bool = True,
  **kwargs,
) -> GradientTransform:
  """Reverse-mode Jacobian with respect to States and/or arguments.

  Builds a callable computing ``jax.jacrev`` of ``fun`` where the
  differentiated inputs are the values of ``grad_states`` (one State, a
  sequence, or a dict such as ``module.states(ParamState)``) and/or the
  positional arguments chosen by ``argnums``. Each Jacobian block has shape
  ``output.shape + input.shape``.

  The call returns

  * only ``grad_states``: ``var_jacs`` (laid out like ``grad_states``);
  * only ``argnums`` (or neither, meaning ``argnums=0``): ``arg_jacs``, as
    :func:`jax.jacrev` returns them;
  * both: ``(var_jacs, arg_jacs)``;

  followed by the value (``return_value=True``) and/or the auxiliary data
  (``has_aux=True``): ``(jacs, value)``, ``(jacs, aux)`` or
  ``(jacs, value, aux)``. When ``fun`` returns a pytree and ``grad_states`` is
  given, the output structure is outermost, as in JAX: one
  ``var_jacs``/``(var_jacs, arg_jacs)`` per output leaf.

  States written by ``fun`` (e.g. a hidden state) are updated after the call.

  Args:
    fun: the function to differentiate.
    grad_states: the States whose values are differentiated.
    argnums: positional argument(s) to differentiate.
    has_aux: ``fun`` returns ``(output, aux)``; ``aux`` is not differentiated.
    return_value: also return ``fun``'s output.
    holomorphic: ``fun`` is holomorphic (complex inputs and outputs).
    allow_int: allow integer inputs (their Jacobian has dtype ``float0``).
    unit_aware: not supported; must be False.
    check_states: raise if a grad State is never read by ``fun``.
    **kwargs: passed to :class:`GradientTransform`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> w = brainstate.ParamState(jnp.array([1.0, 2.0]))
    >>> def f(x):
    ...   return w.value * x
    >>> jw, jx = brainstate.transform.jacrev(f, w, argnums=0)(jnp.array([3.0, 4.0]))
    >>> jw
    Array([[3., 0.],
           [0., 4.]], dtype=float32)
    >>> jx
    Array([[1., 0.],
           [0., 2.]], dtype=float32)
  """
  _no_unit_aware(unit_aware)
  return _JacobianTransform(
    target=fun,
    transform=jax.jacrev,
    grad_states=grad_states,
    argnums=argnums,
    return_value=return_value,
    has_aux=bool(has_aux),
    transform_params=dict(holomorphic=holomorphic, allow_int=allow_int),
    check_states=check_states,
    **kwargs,
  )


jacobian = jacrev


def jacfwd(
  func: Callable,
  grad_states: GradStates = None,
  argnums: Optional[Union[int, Sequence[int]]] = None,
  has_aux: Optional[bool] = None,
  return_value: bool = False,
  holomorphic: bool = False,
  unit_aware: bool = False,
  check_states: bool = True,
  **kwargs,
) -> GradientTransform:
  """Forward-mode Jacobian with respect to States and/or arguments.

  Same options and result structure as :func:`jacrev`, computed with
  :func:`jax.jacfwd` (one forward pass per input element, which is cheaper
  than ``jacrev`` when there are fewer inputs than outputs).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> a = brainstate.ParamState(jnp.float32(2.0))
    >>> b = brainstate.ParamState(jnp.float32(-1.0))
    >>> def f(x):
    ...   return jnp.stack([a.value * x, b.value * x ** 2])
    >>> jac, value = brainstate.transform.jacfwd(
    ...   f, {'a': a, 'b': b}, return_value=True)(jnp.float32(3.0))
    >>> jac['a'], jac['b']
    (Array([3., 0.], dtype=float32), Array([0., 9.], dtype=float32))
    >>> value
    Array([ 6., -9.], dtype=float32)
  """
  _no_unit_aware(unit_aware)
  return _JacobianTransform(
    target=func,
    transform=jax.jacfwd,
    grad_states=grad_states,
    argnums=argnums,
    return_value=return_value,
    has_aux=bool(has_aux),
    transform_params=dict(holomorphic=holomorphic),
    check_states=check_states,
    **kwargs,
  )


def hessian(
  func: Callable,
  grad_states: GradStates = None,
  argnums: Optional[Union[int, Sequence[int]]] = None,
  return_value: bool = False,
  holomorphic: bool = False,
  has_aux: Optional[bool] = None,
  unit_aware: bool = False,
  check_states: bool = True,
  **kwargs,
) -> GradientTransform:
  """Dense Hessian of a scalar function, with respect to States or arguments.

  Computed with :func:`jax.hessian` (forward-over-reverse). With
  ``grad_states`` the result is nested twice in the ``grad_states`` layout:
  ``H[a][b]`` is the block of second derivatives with respect to States ``a``
  and ``b`` (shape ``a.shape + b.shape``); a single State gives one block.
  With ``argnums`` the result is what :func:`jax.hessian` returns. Giving both
  ``grad_states`` and ``argnums`` is not supported. ``return_value`` and
  ``has_aux`` add ``value`` / ``aux`` as in :func:`jacrev`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> w = brainstate.ParamState(jnp.array([1.0, 2.0]))
    >>> b = brainstate.ParamState(jnp.array(0.5))
    >>> def f():
    ...   return jnp.sum(w.value ** 2) * b.value
    >>> h = brainstate.transform.hessian(f, {'w': w, 'b': b})()
    >>> h['w']['w']
    Array([[1., 0.],
           [0., 1.]], dtype=float32)
    >>> h['w']['b']
    Array([2., 4.], dtype=float32)
    >>> brainstate.transform.hessian(lambda x: jnp.sum(x ** 3))(jnp.array([1.0, 2.0]))
    Array([[ 6.,  0.],
           [ 0., 12.]], dtype=float32)
  """
  _no_unit_aware(unit_aware)
  if grad_states is not None and argnums is not None:
    raise NotImplementedError(
      'hessian with both grad_states and argnums is not supported: compute the '
      'State Hessian and the argument Hessian separately, or hold the '
      'arguments in States.'
    )
  return _HessianTransform(
    target=func,
    transform=jax.hessian,
    grad_states=grad_states,
    argnums=argnums,
    return_value=return_value,
    has_aux=bool(has_aux),
    transform_params=dict(holomorphic=holomorphic),
    check_states=check_states,
    **kwargs,
  )


# --------------------------------------------------------------------------
# forward-mode gradient estimate
# --------------------------------------------------------------------------

def _fwd_grad_transform(
  fun, argnums, has_aux=True, tangent_size=None, drct_der_clip=None, key=None,
):
  """``jax.grad``-like transform estimating gradients from random JVPs.

  For a tangent ``v ~ N(0, I)``, ``E[v (J v)] = J^T`` (the gradient of a
  scalar function): one JVP gives an unbiased estimate, ``tangent_size``
  JVPs are averaged.
  """
  if tangent_size is not None:
    if isinstance(tangent_size, bool) or not isinstance(tangent_size, (int, np.integer)):
      raise ValueError(f'tangent_size must be None or an int, got {tangent_size!r}')
    if tangent_size < 1:
      raise ValueError(f'tangent_size must be positive, got {tangent_size}')
  positions = _positions(argnums)
  single = isinstance(argnums, int)

  def sample(k, x, prefix):
    dtype = jnp.result_type(x)
    if not jnp.issubdtype(dtype, jnp.inexact):
      raise TypeError(
        'fwd_grad needs floating-point (or complex) inputs to differentiate; '
        f'got one of dtype {dtype}. Cast it to a float dtype first.'
      )
    return jax.random.normal(k, prefix + jnp.shape(x), dtype)

  def grad_fn(*args, **kwargs):
    primals = args[argnums] if single else tuple(args[n] for n in positions)

    def partial_fun(p):
      full = _substitute(args, positions, (p,) if single else p)
      return fun(*full, **kwargs)

    if key is None:
      from ..random import split_key
      k = split_key()
    else:
      from ..random._impl import format_key
      k = format_key(key)
    leaves, tree = jax.tree.flatten(primals)
    keys = jax.random.split(k, len(leaves))
    prefix = () if tangent_size is None else (int(tangent_size),)
    v = tree.unflatten([sample(kk, x, prefix) for kk, x in zip(keys, leaves)])

    if tangent_size is None:
      _, dd, aux = jax.jvp(partial_fun, (primals,), (v,), has_aux=True)
      if jnp.ndim(dd) != 0:
        raise ValueError(
          'fwd_grad needs a scalar-valued function; the output has shape '
          f'{jnp.shape(dd)}. Use jacfwd / jacrev / vector_grad instead.'
        )
      if drct_der_clip is not None:
        dd = jnp.clip(dd, -drct_der_clip, drct_der_clip)
      grads = jax.tree.map(lambda t: t * dd, v)
    else:
      _, dd, aux = jax.vmap(
        lambda t: jax.jvp(partial_fun, (primals,), (t,), has_aux=True)
      )(v)
      if jnp.ndim(dd) != 1:
        raise ValueError(
          'fwd_grad needs a scalar-valued function; the output has shape '
          f'{jnp.shape(dd)[1:]}. Use jacfwd / jacrev / vector_grad instead.'
        )
      # the auxiliary outputs do not depend on the tangent: keep one copy
      aux = jax.tree.map(lambda a: a[0], aux)
      if drct_der_clip is not None:
        dd = jnp.clip(dd, -drct_der_clip, drct_der_clip)
      grads = jax.tree.map(
        lambda t: jnp.mean(t * jnp.reshape(dd, (-1,) + (1,) * (t.ndim - 1)), axis=0),
        v,
      )
    return grads, aux

  return grad_fn


def fwd_grad(
  func: Callable = _MISSING,
  grad_states: GradStates = None,
  argnums: Optional[Union[int, Sequence[int]]] = None,
  return_value: bool = False,
  has_aux: Optional[bool] = None,
  tangent_size: Optional[int] = None,
  drct_der_clip: Optional[float] = None,
  key: Any = None,
  **kwargs,
):
  """Forward-mode (random-direction) estimate of the gradient of a scalar function.

  Draws a Gaussian tangent ``v`` for every differentiated input, computes the
  directional derivative ``d = J v`` with one :func:`jax.jvp` and returns
  ``v * d``, an unbiased estimate of the gradient that needs no backward pass.
  ``tangent_size=n`` averages ``n`` such estimates (vectorized);
  ``drct_der_clip=c`` clips ``d`` to ``[-c, c]`` first. The random directions
  come from ``key`` (an int seed or a JAX key), or from the global generator
  (``brainstate_nnx.random``) when ``key`` is None.

  Options and result structure are those of ``grad`` (``grad_states``,
  ``argnums``, ``return_value``, ``has_aux``); without ``func`` a decorator is
  returned.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> w = brainstate.ParamState(jnp.array([1.0, -2.0, 0.5]))
    >>> f = brainstate.transform.fwd_grad(
    ...   lambda: jnp.sum(w.value ** 2), w, tangent_size=20000, key=0)
    >>> g = f()                      # an estimate of 2 * w
    >>> bool(jnp.allclose(g, 2 * w.value, atol=0.15))
    True
  """
  def build(f):
    return GradientTransform(
      target=f,
      transform=_fwd_grad_transform,
      grad_states=grad_states,
      argnums=argnums,
      return_value=return_value,
      has_aux=bool(has_aux),
      transform_params=dict(
        tangent_size=tangent_size, drct_der_clip=drct_der_clip, key=key,
      ),
      **kwargs,
    )

  if func is _MISSING or func is None:
    return build
  return build(func)


# --------------------------------------------------------------------------
# vjp / jvp
# --------------------------------------------------------------------------

def _vjp_transform(fun, argnums, has_aux=True):
  """``fun(*args) -> (y, aux)`` to ``g(*args) -> ((y, pullback), aux)``."""
  positions = _positions(argnums)

  def run(*args, **kwargs):
    def partial_fun(*diff):
      return fun(*_substitute(args, positions, diff), **kwargs)

    y, pull, aux = jax.vjp(partial_fun, *[args[n] for n in positions], has_aux=True)
    return (y, pull), aux

  return run


def _jvp_transform(fun, argnums, has_aux=True, tangents=()):
  """``fun(state_vals, *args) -> (y, aux)`` to ``g -> ((y, y_dot), aux)``.

  Only the positional arguments get tangents; State values are constants.
  """

  def run(state_values, *args, **kwargs):
    def partial_fun(*prims):
      return fun(state_values, *prims, **kwargs)

    y, y_dot, aux = jax.jvp(partial_fun, tuple(args), tuple(tangents), has_aux=True)
    return (y, y_dot), aux

  return run


class _PullbackTransform(GradientTransform):
  """Runs the function under ``jax.vjp`` and returns a formatted pull-back."""

  def _format(self, result, out):
    y, pull = result
    single = isinstance(self.true_argnums, int)
    fmt = self._format_grads

    def vjp_fn(cotangent):
      cts = pull(cotangent)
      return fmt(cts[0] if single else tuple(cts), out)

    if self.has_aux:
      return y, vjp_fn, out[1]
    return y, vjp_fn


class _PushforwardTransform(GradientTransform):
  """Runs the function under ``jax.jvp`` and returns ``(y, y_dot[, aux])``."""

  def _format(self, result, out):
    y, y_dot = result
    if self.has_aux:
      return y, y_dot, out[1]
    return y, y_dot


def vjp(
  fun: Callable,
  *primals,
  grad_states: GradStates = None,
  argnums: Optional[Union[int, Sequence[int]]] = 0,
  has_aux: bool = False,
):
  """Evaluates ``fun(*primals)`` and returns its vector-Jacobian product map.

  Returns ``(out, vjp_fn)``, or ``(out, vjp_fn, aux)`` with ``has_aux=True``
  (``fun`` then returns ``(out, aux)``). ``vjp_fn(ct)``, with ``ct`` shaped
  like ``out``, gives the cotangents of the inputs:

  * ``grad_states`` and differentiated arguments: ``(state_cts, arg_cts)``;
  * ``grad_states`` only (``argnums=None``, or no ``primals``): ``state_cts``;
  * arguments only: ``arg_cts``.

  ``state_cts`` is laid out like ``grad_states``; ``arg_cts`` is one value
  for an int ``argnums`` and a tuple for a sequence (negative indices count
  from the end of ``primals``). ``fun`` runs once, here; States it writes keep
  the new values, and ``vjp_fn`` can be called any number of times. Every
  grad State must be read by ``fun``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> w = brainstate.ParamState(jnp.array([2.0, 3.0]))
    >>> calls = brainstate.State(jnp.array(0))
    >>> def f(x):
    ...   calls.value = calls.value + 1
    ...   return w.value * x
    >>> out, vjp_fn = brainstate.transform.vjp(f, jnp.array([5.0, 7.0]), grad_states=w)
    >>> w_ct, x_ct = vjp_fn(jnp.ones(2))
    >>> w_ct, x_ct
    (Array([5., 7.], dtype=float32), Array([2., 3.], dtype=float32))
    >>> int(calls.value)
    1
  """
  states, _ = _flatten_grad_states(grad_states)
  n = len(primals)
  if argnums is None or n == 0:
    nums = None
  else:
    positions = _positions(argnums)
    for i in positions:
      if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
        raise ValueError(f'argnums must be int or a sequence of int, got {i!r}')
      if not -n <= i < n:
        raise ValueError(
          f'argnums {i} is out of range for {n} positional argument(s)'
        )
    positions = tuple(int(i) % n for i in positions)
    if len(set(positions)) != len(positions):
      raise ValueError(
        'argnums names the same positional argument more than once '
        f'({argnums!r} with {n} arguments)'
      )
    nums = positions[0] if isinstance(argnums, (int, np.integer)) else positions
  if nums is None and not states:
    raise ValueError(
      'vjp has nothing to differentiate: pass positional primals (selected by '
      'argnums) and/or grad_states.'
    )
  transform = _PullbackTransform(
    target=fun,
    transform=_vjp_transform,
    grad_states=grad_states,
    argnums=nums,
    has_aux=bool(has_aux),
    check_states=True,
  )
  return transform(*primals)


def jvp(
  fun: Callable,
  primals: Sequence,
  tangents: Sequence,
  *,
  has_aux: bool = False,
):
  """Evaluates ``fun(*primals)`` and its directional derivative along ``tangents``.

  Like :func:`jax.jvp` -- ``primals`` and ``tangents`` are tuples (or lists)
  of positional arguments with matching structures -- but ``fun`` may read
  and write States: States are constants (zero tangent), and States written
  by ``fun`` keep their new values. Returns ``(out, out_tangent)``, or
  ``(out, out_tangent, aux)`` with ``has_aux=True``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> scale = brainstate.State(jnp.float32(3.0))
    >>> out, dout = brainstate.transform.jvp(
    ...   lambda x: scale.value * x ** 2, (jnp.float32(2.0),), (jnp.float32(1.0),))
    >>> out, dout
    (Array(12., dtype=float32), Array(12., dtype=float32))
  """
  if not isinstance(primals, (tuple, list)):
    raise TypeError('jvp: primals must be a tuple or list of positional arguments')
  if not isinstance(tangents, (tuple, list)):
    raise TypeError('jvp: tangents must be a tuple or list matching primals')
  primals = tuple(primals)
  transform = _PushforwardTransform(
    target=fun,
    transform=_jvp_transform,
    grad_states=None,
    argnums=tuple(range(len(primals))),
    has_aux=bool(has_aux),
    transform_params=dict(tangents=tuple(tangents)),
    check_states=False,
  )
  return transform(*primals)
