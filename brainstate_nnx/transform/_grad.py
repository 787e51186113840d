"""State-aware reverse-mode autodiff: ``grad``, ``vector_grad``, ``GradientTransform``.

``grad(fun, grad_states)`` differentiates ``fun`` with respect to the values
of ``grad_states`` (one State, a sequence, or a dict such as
``model.states(ParamState)``) and returns gradients with the same structure:
a path-keyed dict in, a path-keyed dict out. ``argnums`` selects positional
arguments as in :func:`jax.grad`.

Implementation: the values of the grad States are the first (differentiated)
argument of a function handed to :func:`jax.grad` (or :func:`jax.vjp` for
``vector_grad``); inside, a :class:`~brainstate_nnx._context.CaptureFrame`
swaps the JVP tracers into the State objects. Other States read inside are
closed over (an enclosing ``jit`` threads them); States written inside are
returned as auxiliary outputs and assigned after differentiation.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from flax import nnx

from .. import _context
from .._context import CaptureFrame
from .._state import State

__all__ = ['GradientTransform', 'grad', 'vector_grad']


def _flatten_grad_states(grad_states):
  if isinstance(grad_states, dict):  # FlattedDict / states() mappings too
    grad_states = dict(grad_states)
  leaves, tree = jax.tree.flatten(
    grad_states, is_leaf=lambda x: isinstance(x, (State, nnx.Pytree))
  )
  for leaf in leaves:
    if isinstance(leaf, nnx.Pytree) and not isinstance(leaf, nnx.Variable):
      raise TypeError(
        f'grad_states must be a State, a sequence or a dict of States, not a '
        f'{type(leaf).__name__} (a Module). Pass its States, e.g. '
        f'grad_states=module.states(brainstate.ParamState).'
      )
    if not isinstance(leaf, State):
      raise TypeError(
        f'grad_states must hold States only; got {type(leaf).__name__}: {leaf!r}'
      )
  return leaves, tree


def _vector_grad_transform(fun, argnums, has_aux=True, **unused):
  """Like ``jax.grad(..., has_aux=True)`` but seeds the VJP with ones."""
  single = isinstance(argnums, int)
  nums = (argnums,) if single else tuple(argnums)

  def grad_fn(*args, **kwargs):
    def partial_fun(*diff):
      full = list(args)
      for n, d in zip(nums, diff):
        full[n] = d
      return fun(*full, **kwargs)

    primals = [args[n] for n in nums]
    y, vjp_fn, aux = jax.vjp(partial_fun, *primals, has_aux=True)
    grads = vjp_fn(jax.tree.map(jnp.ones_like, y))
    return (grads[0] if single else grads), aux

  return grad_fn


def _collect_grad(frame):
  """The written States and their values, the owned States never read, and the
  States created by the function that hold traced values (with those values)."""
  written = frame.written_states()
  missing = [st for st in frame.states if id(st) not in frame.read]
  created = [st for st in frame.created
             if id(st) not in frame.owned and _context.has_tracer(st._raw_value)]
  return (written, [st._raw_value for st in written], missing,
          created, [st._raw_value for st in created])


class GradientTransform:
  """Differentiates a function with respect to States and/or arguments.

  Args:
    target: the function to differentiate (a scalar loss for ``jax.grad``).
    transform: the JAX transform building the gradient function, called as
      ``transform(f, argnums=..., has_aux=True, **transform_params)``
      (``jax.grad`` for :func:`grad`).
    grad_states: a State, a sequence of States or a dict of States.
    argnums: positional argument(s) to differentiate as well.
    return_value: also return the function's value.
    has_aux: ``target`` returns ``(value, aux)``.
    transform_params: extra keyword arguments for ``transform``.
    check_states: raise if a grad State is never read by ``target``.

  The result structure follows BrainState (see :func:`grad`).
  """

  def __init__(
    self,
    target: Callable,
    transform: Callable,
    grad_states: Optional[Union[State, Sequence[State], Dict[Any, State]]] = None,
    argnums: Optional[Union[int, Sequence[int]]] = None,
    return_value: bool = False,
    has_aux: bool = False,
    transform_params: Optional[Dict[str, Any]] = None,
    check_states: bool = True,
    debug_nan: bool = False,
  ):
    if not callable(target):
      raise TypeError(f'target must be callable, got {type(target).__name__}')
    self.target = target
    self.transform = transform
    self._grad_states, self._grad_tree = _flatten_grad_states(grad_states)
    uniq: dict[int, State] = {}
    for st in self._grad_states:
      uniq.setdefault(id(st), st)
    self._unique = list(uniq.values())
    self._uid_pos = {i: n for n, i in enumerate(uniq)}
    if argnums is None and not self._grad_states:
      argnums = 0
    for a in (argnums if isinstance(argnums, (tuple, list)) else (argnums,)):
      if a is None:
        continue
      if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
        raise ValueError(f'argnums must be int or a sequence of int, got {a!r}')
      if a < 0:
        raise ValueError(f'negative argnums ({a}) are not supported; use the index')
    self.raw_argnums = argnums
    if argnums is None:
      true_argnums: Any = 0
    elif isinstance(argnums, int):
      true_argnums = (0, argnums + 1) if self._grad_states else argnums + 1
    else:
      true_argnums = tuple(a + 1 for a in argnums)
      if self._grad_states:
        true_argnums = (0,) + true_argnums
    self.true_argnums = true_argnums
    self.return_value = return_value
    self.has_aux = bool(has_aux)
    self.check_states = check_states
    self.debug_nan = debug_nan
    self._transform = transform(
      self._fun, argnums=true_argnums, has_aux=True, **(transform_params or {})
    )
    functools.update_wrapper(self, target, updated=())

  def _fun(self, grad_values, *args, **kwargs):
    frame = CaptureFrame(self, self._unique)
    out, (written, written_values, missing, created, created_values) = _context.run_in_frame(
      frame, grad_values, self.target, args, kwargs, what='grad', collect=_collect_grad)
    if self.check_states and missing:
      raise ValueError(
        'Some grad_states are never read by the differentiated function, so '
        'their gradients would be silently zero: '
        + ', '.join(_context.describe(s) for s in missing)
        + '. Pass check_states=False to allow this.'
      )
    self._written = written
    # States created inside (``init_all_states`` in the loss) leave as aux
    # outputs, so they hold concrete values afterwards, never a tracer
    self._created = created
    written_values = (written_values, created_values)
    if self.has_aux:
      if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(
          'With has_aux=True the function must return a pair (value, aux), got '
          f'{type(out).__name__}.'
        )
      return out[0], (out, written_values)
    return out, (out, written_values)

  def __call__(self, *args, **kwargs):
    read = _context.read_value
    grad_values = [read(st) for st in self._unique]
    self._written = self._created = []
    grads, (out, (written_values, created_values)) = self._transform(
      grad_values, *args, **kwargs)
    written, self._written = self._written, []
    created, self._created = self._created, []
    for st, v in zip(created, created_values):
      object.__setattr__(st, '_raw_value', v)
    _context.write_back(written, written_values)
    return self._format(grads, out)

  def _format_state_grads(self, state_grads):
    """Hook: the per-unique-State gradient list in the ``grad_states`` structure."""
    pos = self._uid_pos
    return self._grad_tree.unflatten(
      [state_grads[pos[id(st)]] for st in self._grad_states]
    )

  def _format_grads(self, grads, out):
    """Hook: the raw gradients of ``transform`` as ``var_grads``/``arg_grads``.

    ``out`` is the function's raw output (``(value, aux)`` with ``has_aux``);
    subclasses whose gradients depend on the output structure use it.
    """
    if self._grad_states:
      state_grads = grads if self.raw_argnums is None else grads[0]
      state_grads = self._format_state_grads(state_grads)
      if self.raw_argnums is None:
        grads = state_grads
      else:
        arg_grads = grads[1] if isinstance(self.raw_argnums, int) else tuple(grads[1:])
        grads = (state_grads, arg_grads)
    return grads

  def _format(self, grads, out):
    grads = self._format_grads(grads, out)
    if self.return_value:
      if self.has_aux:
        return grads, out[0], out[1]
      return grads, out
    if self.has_aux:
      return grads, out[1]
    return grads

  def __repr__(self):
    return (
      f'GradientTransform(target={getattr(self.target, "__name__", self.target)!r}, '
      f'grad_states={len(self._grad_states)}, argnums={self.raw_argnums}, '
      f'return_value={self.return_value}, has_aux={self.has_aux})'
    )


_MISSING = object()


def _make(transform, fun, grad_states, argnums, has_aux, return_value,
          check_states, transform_params):
  def build(f):
    return GradientTransform(
      target=f,
      transform=transform,
      grad_states=grad_states,
      argnums=argnums,
      return_value=return_value,
      has_aux=bool(has_aux),
      transform_params=transform_params,
      check_states=check_states,
    )

  if fun is _MISSING or fun is None:
    return build
  return build(fun)


def grad(
  fun: Callable = _MISSING,
  grad_states: Optional[Union[State, Sequence[State], Dict[Any, State]]] = None,
  argnums: Optional[Union[int, Sequence[int]]] = None,
  holomorphic: bool = False,
  allow_int: bool = False,
  has_aux: Optional[bool] = None,
  return_value: bool = False,
  unit_aware: bool = False,
  check_states: bool = True,
  **kwargs,
):
  """Gradient of a scalar function with respect to States and/or arguments.

  Returns, following BrainState:

  * ``grad_states`` only: ``var_grads`` (same structure as ``grad_states``);
  * ``argnums`` only (or neither): ``arg_grads``;
  * both: ``(var_grads, arg_grads)``;

  then ``(grads, value)`` with ``return_value=True``, ``(grads, aux)`` with
  ``has_aux=True``, ``(grads, value, aux)`` with both.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> w = brainstate.ParamState(jnp.array([1.0, 2.0]))
    >>> b = brainstate.ParamState(jnp.array(0.5))
    >>> def loss(x):
    ...   return jnp.sum(x @ w.value + b.value)
    >>> g = brainstate.transform.grad(loss, {'w': w, 'b': b})(jnp.ones((3, 2)))
    >>> g['w'], g['b']
    (Array([3., 3.], dtype=float32), Array(3., dtype=float32, weak_type=True))
  """
  if unit_aware:
    raise NotImplementedError('unit_aware gradients are not supported')
  return _make(
    jax.grad, fun, grad_states, argnums, has_aux, return_value, check_states,
    dict(holomorphic=holomorphic, allow_int=allow_int),
  )


def vector_grad(
  func: Callable = _MISSING,
  grad_states: Optional[Union[State, Sequence[State], Dict[Any, State]]] = None,
  argnums: Optional[Union[int, Sequence[int]]] = None,
  return_value: bool = False,
  has_aux: Optional[bool] = None,
  unit_aware: bool = False,
  check_states: bool = True,
):
  """Gradient of a vector-valued function, seeding the VJP with ones.

  Equivalent to ``grad`` of ``sum(fun(...))``, without the sum. Same return
  structure as :func:`grad`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> x = brainstate.State(jnp.array([1.0, 2.0]))
    >>> brainstate.transform.vector_grad(lambda: x.value ** 2, x)()
    Array([2., 4.], dtype=float32)
  """
  if unit_aware:
    raise NotImplementedError('unit_aware gradients are not supported')
  return _make(
    _vector_grad_transform, func, grad_states, argnums, has_aux, return_value,
    check_states, None,
  )
