"""State-aware loops: ``scan``, ``for_loop``, ``while_loop`` and their variants.

The loop body may read and write States through closures. The written ones
travel in the loop carry next to the user's carry, so every iteration sees
the values the previous one wrote; States that are only read are closed over.
After the loop, the final carried values are assigned to the States.

Which States are written is found in one of two ways. A ``scan`` /
``for_loop`` body (or a ``while_loop``'s condition and body) whose States
can all be reached by walking it (closures, globals, Modules: see
``brainstate_nnx._reach``) is traced once, inside the JAX loop, with every
reachable State carried (:meth:`StatePlan.speculate`; JAX turns the carries
passed through unchanged into constants). Otherwise -- and for the
checkpointed loops -- the body (and the condition of a while loop) is first
traced abstractly to find the States it touches.

``checkpointed_scan`` / ``checkpointed_for_loop`` / ``bounded_while_loop``
run a loop of at most ``base ** k`` steps as ``k`` nested levels of
``scan`` over ``cond``, rematerialising (``jax.checkpoint``) every level but
the innermost, so that they are reverse-mode differentiable with memory that
grows with ``base * k`` rather than with the number of steps, and stop
doing work once the loop is finished.

Inside the abstract dry run of an enclosing transform, a loop runs its
function(s) once, directly, and returns abstract results (see
:func:`._conditions._in_dry_run`), so nested loops are traced a number of
times that grows linearly, not exponentially, with the nesting depth.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar, Union

import jax
import jax.numpy as jnp
import numpy as np

from .. import _context
from ._state_plan import (
  StatePlan, abstract, dry_calls, func_name, in_dry_run, out_struct, probe_fn,
)
from ._progress_bar import ProgressBar

__all__ = [
  'scan', 'for_loop', 'checkpointed_scan', 'checkpointed_for_loop',
  'while_loop', 'bounded_while_loop',
]

Carry = TypeVar('Carry')
X = TypeVar('X')
Y = TypeVar('Y')
T = TypeVar('T')

_I32 = jax.ShapeDtypeStruct((), jnp.int32)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def _loop_length(what: str, xs_flat: list, length: Optional[int]) -> int:
  """The number of iterations, checked against the leading axes of ``xs``."""
  try:
    sizes = [x.shape[0] for x in xs_flat]
  except (AttributeError, IndexError) as e:
    bad = [x for x in xs_flat if not getattr(x, 'shape', ())]
    raise ValueError(
      f'{what}: every leaf of xs needs a leading axis to loop over; got '
      + ', '.join(repr(x) for x in bad[:3])
    ) from e
  if length is not None:
    length = int(length)
    if any(s != length for s in sizes):
      raise ValueError(
        f'{what}: length={length} disagrees with the leading axis sizes of xs {sizes}.'
      )
    return length
  if not sizes:
    raise ValueError(f'{what}: there is nothing to loop over (no xs) and no length.')
  if len(set(sizes)) > 1:
    raise ValueError(f'{what}: the leaves of xs have different leading sizes {sizes}.')
  return sizes[0]


def _progress_runner(pbar, length: int):
  if pbar is None:
    return None
  if isinstance(pbar, ProgressBar):
    return pbar.init(length)
  if isinstance(pbar, int) and not isinstance(pbar, bool):
    return ProgressBar(freq=pbar).init(length)
  raise TypeError(
    f'pbar must be a ProgressBar, an int (the refresh frequency) or None, got '
    f'{type(pbar).__name__}.'
  )


def _slice_struct(x):
  """The abstract value of one slice of ``x`` along its leading axis."""
  aval = jax.typeof(x)
  return jax.ShapeDtypeStruct(aval.shape[1:], aval.dtype, weak_type=aval.weak_type)


def _check_base(base) -> None:
  if isinstance(base, bool) or not isinstance(base, (int, np.integer)) or base < 2:
    raise ValueError(f'base must be an integer >= 2, got {base!r}.')


def _power_at_least(n: int, base: int) -> int:
  """The smallest power of ``base`` that is >= ``n`` (``n >= 1``)."""
  p = 1
  while p < n:
    p *= base
  return p


def _nested_loop(cond_fn: Callable, body_fn: Callable, val, steps: int, base: int):
  """``while cond_fn(val): val = body_fn(val)``, at most ``steps`` times.

  ``steps`` is a power of ``base``. Each level is a ``scan`` of ``base``
  steps whose step runs the next level only while ``cond_fn`` holds, so
  finished loops skip whole blocks. All levels but the innermost are
  checkpointed, which keeps reverse-mode memory at ``O(base * levels)``.
  """
  keep = lambda v: v
  if steps == 1:
    return jax.lax.cond(cond_fn(val), body_fn, keep, val)
  inner = steps // base

  def level(v, _):
    run_inner = lambda u: _nested_loop(cond_fn, body_fn, u, inner, base)
    return jax.lax.cond(cond_fn(v), run_inner, keep, v), None

  if inner > 1:
    level = jax.checkpoint(level, prevent_cse=False)
  return jax.lax.scan(level, val, None, length=base)[0]


def _scan_step(what: str, f: Callable, runner):
  """``step(i, carry, x) -> (carry, y)``: ``f`` plus the progress bar."""

  def step(i, carry, x):
    out = f(carry, x)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
      err = ValueError if what.startswith('checkpointed') else TypeError
      raise err(
        f'{what}: the function must return a pair (new_carry, y), got '
        f'{type(out).__name__}'
        + (f' of length {len(out)}' if isinstance(out, (tuple, list)) else '')
        + '.'
      )
    new_carry, y = out
    if runner is not None:
      runner(i, carry=new_carry, y=y)
    return new_carry, y

  return step


def _dry_slices(xs_flat: list, xs_tree):
  """Abstract values of one slice of ``xs`` (for the dry run)."""
  return xs_tree.unflatten(
    [jax.lax.full_like(a, 0, shape=jnp.shape(a)[1:]) for a in xs_flat]
  )


def _dry_scan_step(what, f, init, xs_flat, xs_tree, keep_writes: bool = True):
  """``(new_carry, y)`` of one step of ``f`` run directly in the dry run.

  With ``keep_writes=False`` the States written keep their abstract values
  from before the loop (as the checkpointed loops return them).
  """
  step = _scan_step(what, f, None)
  args = (0, abstract(init), _dry_slices(xs_flat, xs_tree))
  if keep_writes:
    return step(*args)
  return dry_calls(what, [('f', step, args, True)], keep=None)[0]


def _dry_while(what, cond_fun, body_fun, init_val, keep_writes: bool = True):
  """Runs ``cond_fun`` and ``body_fun`` once on ``init_val`` in the dry run.

  Returns the output of ``body_fun``; ``keep_writes`` as in
  :func:`_dry_scan_step`.
  """
  val = abstract(init_val)
  calls = [('cond_fun', cond_fun, (val,), False), ('body_fun', body_fun, (val,), True)]
  return dry_calls(what, calls, keep=1 if keep_writes else None)[1]


def _run_planned(what: str, run: Callable[[StatePlan], Any], fns: tuple,
                 probed: Callable[[], StatePlan]):
  """``run(plan)`` with the speculative plan of ``fns``, else with ``probed()``.

  The speculative plan (one trace) is tried first when there is one; any
  failure in it -- a State the walk did not foresee, or an error the user's
  code raises -- sends the call down the probed path, which traces the
  functions abstractly first and raises genuine errors itself.
  """
  plan = StatePlan.speculate(what, *fns)
  if plan is not None:
    try:
      return run(plan)
    except Exception:
      pass
  return run(probed())


def _for_body(f: Callable):
  def body(carry, x):
    return carry, f(*x)

  body.__name__ = func_name(f)
  body.__wrapped__ = f      # what the speculative plan walks (see _scan)
  return body


# --------------------------------------------------------------------------
# scan / for_loop
# --------------------------------------------------------------------------

def scan(
  f: Callable[[Carry, X], tuple[Carry, Y]],
  init: Carry,
  xs: X,
  length: Optional[int] = None,
  reverse: bool = False,
  unroll: Union[int, bool] = 1,
  pbar: Optional[Union[ProgressBar, int]] = None,
) -> tuple[Carry, Y]:
  """Loops ``f(carry, x) -> (carry, y)`` over the leading axis of ``xs``.

  Like :func:`jax.lax.scan` (one compiled loop, ``ys`` stacked along a new
  leading axis), and ``f`` may also read and write States through closures:
  each iteration sees the State values written by the previous one, and the
  States hold their final values afterwards.

  Args:
    f: the loop body, ``(carry, x) -> (new_carry, y)``.
    init: the initial carry (a pytree of arrays).
    xs: a pytree of arrays sliced along their leading axis (or ``None`` with
      ``length``).
    length: the number of iterations (needed when ``xs`` is ``None``).
    reverse: iterate from the last slice to the first (``ys`` stay aligned
      with ``xs``).
    unroll: iterations unrolled per compiled loop step (``True``: all).
    pbar: a :class:`ProgressBar` (or an int refresh frequency) displaying
      progress while the loop runs.

  Returns:
    ``(final_carry, stacked_ys)``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> calls = brainstate.State(jnp.array(0))
    >>> def cumsum(total, x):
    ...   calls.value += 1
    ...   return total + x, total + x
    >>> total, ys = brainstate.transform.scan(cumsum, 0.0, jnp.arange(1.0, 5.0))
    >>> float(total), ys.tolist(), int(calls.value)
    (10.0, [1.0, 3.0, 6.0, 10.0], 4)
  """
  if not callable(f):
    raise TypeError(f'scan: f must be callable, got {type(f).__name__}.')
  return _scan('scan', f, init, xs, length, reverse, unroll, pbar)


def _scan(what, f, init, xs, length, reverse, unroll, pbar):
  xs_flat, xs_tree = jax.tree.flatten(xs)
  length = _loop_length(what, xs_flat, length)
  runner = _progress_runner(pbar, length)
  if in_dry_run():
    # lax.scan returns the carry with the body's output types and the ys
    # stacked along a new leading axis
    carry, y = _dry_scan_step(what, f, init, xs_flat, xs_tree)
    ys = jax.tree.map(lambda v: jnp.broadcast_to(v, (length,) + jnp.shape(v)), y)
    return abstract(carry), ys
  step = _scan_step(what, f, runner)

  if jax.config.jax_disable_jit:
    if length == 0:
      raise ValueError(f'{what}: a zero-length loop cannot run under jax.disable_jit().')
    carry, ys = init, []
    order = range(length - 1, -1, -1) if reverse else range(length)
    for n, k in enumerate(order):
      x = xs_tree.unflatten([jax.lax.index_in_dim(a, k, keepdims=False) for a in xs_flat])
      carry, y = step(n, carry, x)
      ys.append(y)
    if reverse:
      ys.reverse()
    return carry, jax.tree.map(lambda *a: jnp.stack(a), *ys)

  name = func_name(f)
  i0 = None if runner is None else jnp.int32(0)

  def run(plan):
    def body(carry, x):
      values, i, c = carry
      (c, y), values = plan.run(step, values, (i, c, x), name=name)
      return (values, None if i is None else i + 1, c), y

    with plan.explained():
      (values, _, carry), ys = jax.lax.scan(
        body, (plan.initial(), i0, init), xs, length=length, reverse=reverse,
        unroll=unroll,
      )
    plan.assign(values)
    return carry, ys

  def probed():
    x_struct = xs_tree.unflatten([_slice_struct(a) for a in xs_flat])
    i_struct = _I32 if runner is not None else None
    touched, written, _ = probe_fn(step, i_struct, init, x_struct)
    return StatePlan(what, [(touched, written)])

  return _run_planned(what, run, (getattr(f, '__wrapped__', f),), probed)


def for_loop(
  f: Callable[..., Y],
  *xs,
  length: Optional[int] = None,
  reverse: bool = False,
  unroll: Union[int, bool] = 1,
  pbar: Optional[Union[ProgressBar, int]] = None,
) -> Y:
  """Calls ``f(*x)`` for each slice ``x`` of ``xs`` and stacks the results.

  A compiled ``for`` loop (a :func:`scan` without carry): the body typically
  updates States, e.g. one simulation step per iteration, and returns what
  should be recorded. Each iteration sees the States written by the previous
  one.

  Args:
    f: the loop body, called with one slice of every array in ``xs``.
    *xs: arrays (or pytrees of arrays) looped over along their leading axis.
    length: the number of iterations (needed when no ``xs`` are given).
    reverse: iterate from the last slice to the first.
    unroll: iterations unrolled per compiled loop step.
    pbar: a :class:`ProgressBar` (or an int refresh frequency).

  Returns:
    The outputs of ``f`` stacked along a new leading axis.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> v = brainstate.HiddenState(jnp.array(0.0))
    >>> def step(inp):
    ...   v.value = 0.5 * v.value + inp
    ...   return v.value
    >>> brainstate.transform.for_loop(step, jnp.ones(4)).tolist()
    [1.0, 1.5, 1.75, 1.875]
    >>> float(v.value)
    1.875
  """
  if not callable(f):
    raise TypeError(f'for_loop: f must be callable, got {type(f).__name__}.')
  _, ys = _scan('for_loop', _for_body(f), None, xs, length, reverse, unroll, pbar)
  return ys


# --------------------------------------------------------------------------
# checkpointed variants
# --------------------------------------------------------------------------

def checkpointed_scan(
  f: Callable[[Carry, X], tuple[Carry, Y]],
  init: Carry,
  xs: X,
  length: Optional[int] = None,
  base: int = 16,
  pbar: Optional[Union[ProgressBar, int]] = None,
) -> tuple[Carry, Y]:
  """A :func:`scan` whose reverse-mode memory grows logarithmically with length.

  The loop runs as nested levels of ``base`` steps, every level but the
  innermost being rematerialised (``jax.checkpoint``) on the backward pass:
  less memory for long differentiated loops, at the price of recomputation.
  Same results as :func:`scan` (forward direction only).

  Args:
    f: the loop body, ``(carry, x) -> (new_carry, y)``.
    init: the initial carry.
    xs: a pytree of arrays sliced along their leading axis.
    length: the number of iterations (at least 1).
    base: the number of steps per level (an integer >= 2).
    pbar: a :class:`ProgressBar` (or an int refresh frequency).

  Returns:
    ``(final_carry, stacked_ys)``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> acc = brainstate.State(jnp.array(0.0))
    >>> def f(c, x):
    ...   acc.value += x
    ...   return c * 2, acc.value
    >>> carry, ys = brainstate.transform.checkpointed_scan(f, 1.0, jnp.arange(5.0), base=2)
    >>> float(carry), ys.tolist()
    (32.0, [0.0, 1.0, 3.0, 6.0, 10.0])
  """
  if not callable(f):
    raise TypeError(f'checkpointed_scan: f must be callable, got {type(f).__name__}.')
  return _checkpointed_scan('checkpointed_scan', f, init, xs, length, base, pbar)


def _checkpointed_scan(what, f, init, xs, length, base, pbar):
  xs_flat, xs_tree = jax.tree.flatten(xs)
  length = _loop_length(what, xs_flat, length)
  if length < 1:
    raise ValueError(
      f'{what}: needs at least one iteration, got length={length}; use scan '
      'for empty loops.'
    )
  _check_base(base)
  runner = _progress_runner(pbar, length)
  if in_dry_run():
    # the carry and the States keep their types from before the loop (see
    # _nested_loop), the ys go to zero-initialised buffers
    _, y = _dry_scan_step(what, f, init, xs_flat, xs_tree, keep_writes=False)
    ys = jax.tree.map(lambda s: jnp.zeros((length,) + s.shape, s.dtype),
                      jax.tree.map(out_struct, y))
    return abstract(init), ys
  step = _scan_step(what, f, runner)

  x_struct = xs_tree.unflatten([_slice_struct(a) for a in xs_flat])
  touched, written, out = probe_fn(step, _I32, init, x_struct)
  plan = StatePlan(what, [(touched, written)])
  ys0 = jax.tree.map(lambda s: jnp.zeros((length,) + s.shape, s.dtype), out[1])
  name = func_name(f)

  def cond_fn(v):
    return v[-1] < length

  def body_fn(v):
    values, c, ys, i = v
    x = xs_tree.unflatten(
      [jax.lax.dynamic_index_in_dim(a, i, keepdims=False) for a in xs_flat]
    )
    (c, y), values = plan.run(step, values, (i, c, x), name=name)
    ys = jax.tree.map(lambda buf, u: buf.at[i].set(u), ys, y)
    return values, c, ys, i + 1

  init_val = (plan.initial(), init, ys0, jnp.int32(0))
  with plan.explained():
    values, carry, ys, _ = _nested_loop(
      cond_fn, body_fn, init_val, _power_at_least(length, base), base,
    )
  plan.assign(values)
  return carry, ys


def checkpointed_for_loop(
  f: Callable[..., Y],
  *xs,
  length: Optional[int] = None,
  base: int = 16,
  pbar: Optional[Union[ProgressBar, int]] = None,
) -> Y:
  """A :func:`for_loop` with the memory behaviour of :func:`checkpointed_scan`.

  Args:
    f: the loop body, called with one slice of every array in ``xs``.
    *xs: arrays (or pytrees of arrays) looped over along their leading axis.
    length: the number of iterations (at least 1).
    base: the number of steps per nesting level (an integer >= 2).
    pbar: a :class:`ProgressBar` (or an int refresh frequency).

  Returns:
    The outputs of ``f`` stacked along a new leading axis.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> n = brainstate.State(jnp.array(0))
    >>> def f(x):
    ...   n.value += 1
    ...   return x * n.value
    >>> brainstate.transform.checkpointed_for_loop(f, jnp.ones(3), base=2).tolist()
    [1.0, 2.0, 3.0]
  """
  if not callable(f):
    raise TypeError(f'checkpointed_for_loop: f must be callable, got {type(f).__name__}.')
  _, ys = _checkpointed_scan('checkpointed_for_loop', _for_body(f), None, xs, length,
                             base, pbar)
  return ys


# --------------------------------------------------------------------------
# while loops
# --------------------------------------------------------------------------

def _while_plan(what: str, cond_fun: Callable, body_fun: Callable, init_val):
  c_touched, c_written, _ = probe_fn(cond_fun, init_val)
  if c_written:
    raise ValueError(
      f'{what}: cond_fun must not write States, but it writes '
      + ', '.join(_context.describe(s) for s in c_written) + '.'
    )
  b_touched, b_written, _ = probe_fn(body_fun, init_val)
  return StatePlan(what, [(c_touched, []), (b_touched, b_written)])


def while_loop(cond_fun: Callable[[T], Any], body_fun: Callable[[T], T], init_val: T) -> T:
  """Repeats ``val = body_fun(val)`` while ``cond_fun(val)`` is true.

  Like :func:`jax.lax.while_loop`; both functions may also read States, and
  ``body_fun`` may write them (each iteration sees the previous one's
  writes). ``cond_fun`` must not write States. The carried value must keep its
  structure, shapes and dtypes. As in JAX, the loop can be differentiated in
  forward mode only; use :func:`bounded_while_loop` for reverse mode.

  Args:
    cond_fun: ``val -> scalar bool``.
    body_fun: ``val -> val``.
    init_val: the initial value (a pytree of arrays, may be ``None``).

  Returns:
    The value after the last iteration.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> steps = brainstate.State(jnp.array(0))
    >>> def body(x):
    ...   steps.value += 1
    ...   return x * 2
    >>> out = brainstate.transform.while_loop(lambda x: x < 100, body, jnp.array(3))
    >>> int(out), int(steps.value)
    (192, 6)
  """
  if not (callable(cond_fun) and callable(body_fun)):
    raise TypeError('while_loop: cond_fun and body_fun must be callable.')
  if in_dry_run():
    # lax.while_loop returns the carry with the body's output types
    return abstract(_dry_while('while_loop', cond_fun, body_fun, init_val))
  if jax.config.jax_disable_jit:
    try:
      val = init_val
      while cond_fun(val):
        val = body_fun(val)
      return val
    except jax.errors.ConcretizationTypeError:
      pass  # e.g. a vmapped condition: fall back to the primitive

  c_name, b_name = func_name(cond_fun), func_name(body_fun)

  def run(plan):
    def c_fn(carry):
      values, val = carry
      out, _ = plan.run(cond_fun, values, (val,), name=c_name, may_write=False)
      return out

    def b_fn(carry):
      values, val = carry
      val, values = plan.run(body_fun, values, (val,), name=b_name)
      return values, val

    with plan.explained():
      values, val = jax.lax.while_loop(c_fn, b_fn, (plan.initial(), init_val))
    plan.assign(values)
    return val

  return _run_planned('while_loop', run, (cond_fun, body_fun),
                      lambda: _while_plan('while_loop', cond_fun, body_fun, init_val))


def bounded_while_loop(
  cond_fun: Callable[[T], Any],
  body_fun: Callable[[T], T],
  init_val: T,
  *,
  max_steps: int,
  base: int = 16,
) -> T:
  """A :func:`while_loop` stopped after ``max_steps`` iterations, reverse-differentiable.

  Runs ``val = body_fun(val)`` while ``cond_fun(val)`` holds and fewer than
  ``max_steps`` iterations have run. Built from nested ``scan``/``cond``
  levels of ``base`` steps (see :func:`checkpointed_scan`), so ``jax.grad``
  works through it, and iterations after the loop finished cost little.
  States behave as in :func:`while_loop`.

  Args:
    cond_fun: ``val -> scalar bool``; must not write States.
    body_fun: ``val -> val``.
    init_val: the initial value (converted to arrays).
    max_steps: the most iterations to run (a non-negative int).
    base: the number of steps per nesting level (an integer >= 2). Larger
      values compile faster, smaller ones waste fewer steps.

  Returns:
    The final value.

  Example::

    >>> import jax
    >>> import brainstate_nnx as brainstate
    >>> def f(x):
    ...   return brainstate.transform.bounded_while_loop(
    ...     lambda v: v < 10.0, lambda v: v * 3.0, x, max_steps=8)
    >>> float(f(2.0)), float(jax.grad(f)(2.0))  # 2 -> 6 -> 18
    (18.0, 9.0)
  """
  if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 0:
    raise ValueError(f'bounded_while_loop: max_steps must be a non-negative int, got {max_steps!r}.')
  _check_base(base)
  init_val = jax.tree.map(jnp.asarray, init_val)
  if max_steps == 0:
    return init_val
  if in_dry_run():
    # the carry and the States keep their types from before (see _nested_loop)
    _dry_while('bounded_while_loop', cond_fun, body_fun, init_val, keep_writes=False)
    return abstract(init_val)

  plan = _while_plan('bounded_while_loop', cond_fun, body_fun, init_val)
  c_name, b_name = func_name(cond_fun), func_name(body_fun)

  def c_fn(carry):
    values, val, n = carry
    out, _ = plan.run(cond_fun, values, (val,), name=c_name, may_write=False)
    return jnp.logical_and(n < max_steps, out)

  def b_fn(carry):
    values, val, n = carry
    val, values = plan.run(body_fun, values, (val,), name=b_name)
    return values, val, n + 1

  with plan.explained():
    values, val, _ = _nested_loop(
      c_fn, b_fn, (plan.initial(), init_val, jnp.int32(0)),
      _power_at_least(int(max_steps), base), base,
    )
  plan.assign(values)
  return val
