"""State-aware ``checkpoint`` / ``remat``.

:func:`checkpoint` wraps :func:`jax.checkpoint`. The States the function
touches are found by an abstract dry run (:func:`~brainstate_nnx._context.probe`,
cached per argument signature) and threaded through the checkpoint as explicit
inputs; the written ones come out as outputs and are assigned afterwards.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Tuple, Union

import jax

from .. import _context
from .._context import CaptureFrame
from .._error import BrainStateError
from ..util._cache import BoundedCache
from ._make_jaxpr import _arg_cache_key, _index_tuple

__all__ = ['checkpoint', 'remat']

_outer_read = _context.read_input


# --------------------------------------------------------------------------
# checkpoint / remat
# --------------------------------------------------------------------------

class _Remat:
  """The callable returned by :func:`checkpoint`."""

  def __init__(self, fun, prevent_cse, policy, static_argnums):
    self.fun = fun
    self.static_argnums = static_argnums
    self._plans = BoundedCache(maxsize=128)
    # argument 0 is the plan (the States, hashable by identity), 1 their values
    self._checkpointed = jax.checkpoint(
      self._inner,
      prevent_cse=prevent_cse,
      policy=policy,
      static_argnums=(0,) + tuple(i + 2 for i in static_argnums),
    )
    functools.update_wrapper(self, fun, updated=())

  def _plan(self, args, kwargs):
    try:
      key = _arg_cache_key(self.static_argnums, (), args, kwargs, check_states=False)
    except TypeError:
      key = None  # unhashable / non-array argument: probe every call
    plan = None if key is None else self._plans.get(key)
    if plan is None:
      nums = set(self.static_argnums)
      static = {i: args[i] for i in nums if i < len(args)}
      dyn = [a for i, a in enumerate(args) if i not in nums]
      n = len(args)

      def run(*dyn_args, **kw):
        it = iter(dyn_args)
        full = [static[i] if i in static else next(it) for i in range(n)]
        return self.fun(*full, **kw)

      touched, written = _context.probe_states(run, *dyn, **kwargs)
      wrote = {id(s) for s in written}
      plan = (tuple(touched), tuple(id(s) in wrote for s in touched))
      if key is not None:
        self._plans.set(key, plan)
    return plan

  def _inner(self, plan, state_values, *args, **kwargs):
    states, writes = plan

    def collect(frame):
      bad = [states[i] for i in frame.written_owned() if not writes[i]]
      bad += frame.written_other()
      if bad:
        raise BrainStateError(
          'checkpoint: the function wrote '
          + ', '.join(_context.describe(s) for s in bad)
          + ', which the abstract dry run made beforehand did not see it write. '
          'The write cannot be carried out of jax.checkpoint. Make the set of '
          'States the function writes the same on every trace.'
        )
      return [st._raw_value for st, w in zip(states, writes) if w]

    return _context.run_in_frame(CaptureFrame(self, states), state_values, self.fun,
                                 args, kwargs, what='checkpoint', collect=collect)

  def __call__(self, *args, **kwargs):
    for i in self.static_argnums:
      if i >= len(args):
        raise ValueError(
          f'static_argnums contains index {i}, but only {len(args)} positional '
          'arguments were provided.'
        )
    plan = self._plan(args, kwargs)
    states, writes = plan
    values = [_outer_read(st) for st in states]
    out, new_values = self._checkpointed(plan, values, *args, **kwargs)
    _context.write_back([s for s, w in zip(states, writes) if w], new_values)
    return out

  def __get__(self, obj, objtype=None):
    if obj is None:
      return self
    return functools.partial(self, obj)


def checkpoint(
  fun: Optional[Callable] = None,
  *,
  prevent_cse: bool = True,
  policy: Optional[Callable[..., bool]] = None,
  static_argnums: Union[int, Tuple[int, ...]] = (),
) -> Callable:
  """:func:`jax.checkpoint` for functions that read and write States.

  When differentiated, the intermediate values of ``fun`` are recomputed on
  the backward pass instead of stored, trading compute for memory. States
  used inside are differentiable inputs of the checkpointed computation
  (``grad`` with respect to a ``ParamState`` read inside works), and States
  written inside are updated as if ``fun`` ran normally. Usable as
  ``@checkpoint``, ``@checkpoint(static_argnums=...)`` or
  ``checkpoint(fun, ...)``; ``remat`` is the same function.

  Args:
    fun: the function.
    prevent_cse: see :func:`jax.checkpoint`.
    policy: which residuals may be saved (``jax.checkpoint_policies``).
    static_argnums: positional arguments that are Python values (non-negative
      indices).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform import checkpoint
    >>> from brainstate_nnx.transform import grad
    >>> w = brainstate.ParamState(jnp.array([1.0, 2.0]))
    >>> calls = brainstate.State(jnp.zeros((), jnp.int32))
    >>> @checkpoint
    ... def layer(x):
    ...   calls.value = calls.value + 1
    ...   return jnp.sin(w.value * x).sum()
    >>> grad(layer, w)(jnp.ones(2))
    Array([ 0.5403023 , -0.41614684], dtype=float32)
    >>> calls.value
    Array(1, dtype=int32)
  """
  if fun is None:
    return lambda f: checkpoint(f, prevent_cse=prevent_cse, policy=policy,
                                static_argnums=static_argnums)
  nums = _index_tuple(static_argnums)
  if any(i < 0 for i in nums):
    raise ValueError(
      f'checkpoint/remat does not support negative static_argnums, got {nums}.'
    )
  return _Remat(fun, prevent_cse, policy, nums)


remat = checkpoint


