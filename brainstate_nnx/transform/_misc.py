"""State-aware ``eval_shape``, ``checkpoint``/``remat``, ``named_call`` and ``named_scope``.

* :func:`eval_shape` traces a function abstractly under a probe frame: States
  read keep their values, writes are undone, Modules built inside come back
  with :class:`jax.ShapeDtypeStruct` leaves.
* :func:`checkpoint` / :func:`remat` wrap :func:`jax.checkpoint`. The States
  the function touches are found by an abstract dry run (a
  :class:`~brainstate_nnx._context.ProbeFrame` under ``jax.eval_shape``, cached
  per argument signature) and threaded through the checkpoint as explicit inputs; the
  written ones come out as outputs and are assigned afterwards.
* :func:`named_call` / :func:`named_scope` attach a name to the equations of
  a function (``jax.named_scope``); ``named_scope`` also compiles it with the
  state-aware ``jit`` when IR compilation is switched on.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import jax
from flax import nnx

from .. import _context
from .._context import CaptureFrame, ProbeFrame
from .._error import BrainStateError
from ..util._cache import BoundedCache
from ._make_jaxpr import _arg_cache_key, _index_tuple

_outer_read = _context.read_input

__all__ = ['eval_shape', 'checkpoint', 'remat', 'named_call', 'named_scope']


# --------------------------------------------------------------------------
# eval_shape
# --------------------------------------------------------------------------

def _is_graph_node(x) -> bool:
  return isinstance(x, (nnx.Variable, nnx.Pytree))


def _has_graph_node(tree) -> bool:
  return any(_is_graph_node(x) for x in jax.tree.leaves(tree, is_leaf=_is_graph_node))


def _touched_values(frame):
  touched = list(frame.touched.values())
  return touched, [st._raw_value for st in touched]


def eval_shape(f: Callable, *args: Any, return_state_shapes: bool = False, **kwargs: Any):
  """The abstract output of ``f(*args, **kwargs)``, computed without running it.

  Like :func:`jax.eval_shape`, but States may be used through closures: they
  are read as usual and every write is undone, so no State changes value.
  Arguments may be arrays, :class:`jax.ShapeDtypeStruct` s, pytrees of them,
  or Modules/States (those are used as they are, not traced). When ``f``
  returns Modules or States (e.g. ``lambda: MLP(...)``), they are rebuilt --
  shared references preserved -- with ``jax.ShapeDtypeStruct`` values, so a
  model can be described without allocating it.

  Args:
    f: the function.
    return_state_shapes: also return ``{state: shape}`` for every pre-existing
      State ``f`` reads or writes (the shape of the value it holds when ``f``
      returns); the result is then ``(state_shapes, out_shapes)``.

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform._misc import eval_shape
    >>> h = brainstate.State(jnp.zeros(4))
    >>> def step(x):
    ...   h.value = h.value + x.sum()
    ...   return jnp.outer(x, h.value)
    >>> eval_shape(step, jax.ShapeDtypeStruct((3,), jnp.float32))
    ShapeDtypeStruct(shape=(3, 4), dtype=float32)
    >>> h.value                                  # unchanged
    Array([0., 0., 0., 0.], dtype=float32)
    >>> shapes, _ = eval_shape(step, jnp.ones(3), return_state_shapes=True)
    >>> shapes[h]
    ShapeDtypeStruct(shape=(4,), dtype=float32)

  Abstract model construction::

    >>> class Lin(brainstate.nn.Module):
    ...   def __init__(self, n):
    ...     super().__init__()
    ...     self.w = brainstate.ParamState(jnp.ones((n, n)))
    >>> lin = eval_shape(lambda: Lin(1000))
    >>> lin.w.value
    ShapeDtypeStruct(shape=(1000, 1000), dtype=float32)
  """
  leaves, treedef = jax.tree.flatten((args, kwargs), is_leaf=_is_graph_node)
  dyn_pos = [i for i, x in enumerate(leaves) if not _is_graph_node(x)]
  static = {i: x for i, x in enumerate(leaves) if _is_graph_node(x)}
  frame = ProbeFrame(None)
  box: dict = {}

  def run(*dyn_leaves):
    it = iter(dyn_leaves)
    full = [static[i] if i in static else next(it) for i in range(len(leaves))]
    a, k = treedef.unflatten(full)
    out, (touched, state_values) = _context.run_in_frame(
      frame, (), f, a, k, what='eval_shape', collect=_touched_values)
    box['touched'] = touched
    if _has_graph_node(out):
      # after the frame: splitting must not count as a use of the States
      graphdef, out = nnx.split(out)
      box['graphdef'] = graphdef
    return out, state_values

  with jax.disable_jit(False):
    out, state_shapes = jax.eval_shape(run, *[leaves[i] for i in dyn_pos])
  if 'graphdef' in box:
    out = nnx.merge(box['graphdef'], out)
  if return_state_shapes:
    return dict(zip(box['touched'], state_shapes)), out
  return out


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
    >>> from brainstate_nnx.transform._misc import checkpoint
    >>> from brainstate_nnx.transform._ad import grad
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


# --------------------------------------------------------------------------
# naming
# --------------------------------------------------------------------------

def named_call(fun: Optional[Callable] = None, *, name: Optional[str] = None) -> Callable:
  """Runs ``fun`` inside :func:`jax.named_scope` so its equations carry ``name``.

  The name shows in each equation's ``source_info.name_stack`` and in
  profiler / HLO metadata. Nothing is compiled and State handling is
  unchanged. ``name`` defaults to ``fun.__name__``. Usable as ``@named_call``,
  ``@named_call(name=...)`` or ``named_call(fun, name=...)``.

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform._misc import named_call
    >>> @named_call(name='block')
    ... def block(x):
    ...   return jnp.sin(x) * 2.0
    >>> eqn = jax.make_jaxpr(block)(1.0).eqns[0]
    >>> str(eqn.source_info.name_stack)
    'block'
  """
  def wrap(f: Callable) -> Callable:
    scope = name if name is not None else getattr(f, '__name__', 'named_call')

    @functools.wraps(f)
    def wrapped(*args, **kwargs):
      with jax.named_scope(scope):
        return f(*args, **kwargs)

    return wrapped

  if fun is None:
    return wrap
  return wrap(fun)


_IR_COMPILATION = [False]


def _ir_compilation() -> bool:
  """Whether ``named_scope`` functions are jit-compiled.

  The ``ir_compilation`` setting of :mod:`brainstate_nnx.environ` (as in
  BrainState), else :func:`set_ir_compilation`'s flag.
  """
  try:
    from .. import environ
  except ImportError:  # the package without its environ module
    return _IR_COMPILATION[0]
  return bool(environ.get('ir_compilation', _IR_COMPILATION[0]))


def set_ir_compilation(flag: bool) -> None:
  """Makes :func:`named_scope` functions compile with ``jit`` (``True``) or run as is.

  Example::

    >>> from brainstate_nnx.transform._misc import set_ir_compilation
    >>> set_ir_compilation(False)
  """
  _IR_COMPILATION[0] = bool(flag)


def named_scope(
  name: str,
  static_argnums: Union[int, Sequence[int], Callable, None] = None,
  static_argnames: Union[str, Sequence[str], Callable, None] = None,
) -> Callable[[Callable], Callable]:
  """Decorator naming a function's equations ``name``; under IR compilation it is also jitted.

  The decorated function always runs inside ``jax.named_scope(name)``. When IR
  compilation is on (the ``ir_compilation`` setting, see
  :func:`set_ir_compilation`), each call goes through the state-aware
  :func:`~brainstate_nnx.transform.jit` instead, compiled once per static
  configuration. ``static_argnums`` / ``static_argnames`` may be given
  directly or as callables computing them from the call's arguments. On a
  method, the instance is argument 0 (mark it static under IR compilation).

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform._misc import named_scope
    >>> @named_scope('power', static_argnums=1)
    ... def power(x, n):
    ...   return x ** n
    >>> power(jnp.array([3.0]), 2)
    Array([9.], dtype=float32)
    >>> str(jax.make_jaxpr(lambda x: power(x, 2))(1.0).eqns[0].source_info.name_stack)
    'power'
  """
  from ._jit import jit

  def norm_nums(nums, n_args):
    if nums is None:
      return ()
    nums = (nums,) if isinstance(nums, int) else tuple(nums)
    return tuple(i + n_args if i < 0 else i for i in nums)

  def norm_names(names):
    if names is None:
      return ()
    return (names,) if isinstance(names, str) else tuple(names)

  def decorator(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def scoped(*args, **kwargs):
      with jax.named_scope(name):
        return fn(*args, **kwargs)

    compiled: dict = {}

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
      if not _ir_compilation():
        return scoped(*args, **kwargs)
      nums = static_argnums(*args, **kwargs) if callable(static_argnums) else static_argnums
      names = static_argnames(*args, **kwargs) if callable(static_argnames) else static_argnames
      key = (norm_nums(nums, len(args)), norm_names(names))
      jitted = compiled.get(key)
      if jitted is None:
        jitted = compiled[key] = jit(scoped, static_argnums=key[0] or None,
                                     static_argnames=key[1] or None)
      return jitted(*args, **kwargs)

    wrapper.fn = fn
    wrapper._jit_cache = compiled
    return wrapper

  return decorator
