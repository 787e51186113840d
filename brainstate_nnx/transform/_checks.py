"""Run-time checks: ``jit_error_if`` and a State-aware ``checkify``.

Two ways to report a bad value from compiled code:

* :func:`jit_error_if` -- fire and forget. When the condition holds at run
  time, a host callback raises the user's error (formatted with the run-time
  values). Inside ``jit`` the error reaches the caller as a
  :class:`jax.errors.JaxRuntimeError` whose message contains the user's one;
  outside every transformation the user's exception is raised directly.
* :func:`checkify` -- functional. The function's checks (user :func:`check`
  calls, and NaN / division / index checks when enabled) are collected into a
  :class:`jax.experimental.checkify.Error` value returned next to the output;
  the caller decides when to ``throw()`` it.

``checkify`` threads States like the other transforms: the States the
function touches are found abstractly
(:func:`~brainstate_nnx._context.probe_states`), their values enter the
checkified function as explicit inputs, swapped into the State objects by a
:class:`~brainstate_nnx._context.CaptureFrame` while the user function runs;
the values of the written States leave it as outputs and are assigned
afterwards.

A condition or message argument computed per batch element is gathered
into one unbatched value (:func:`~brainstate_nnx._lane_ops.any_lanes`,
:func:`~brainstate_nnx._lane_ops.no_vmap`), so a single host callback
sees the whole batch. The stateful run shared with ``_debug.py`` lives in
:mod:`._stateful_run`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Union

import jax
import jax.numpy as jnp
from jax.experimental import checkify as _jcfy

from ._stateful_run import StatefulRun, eager, find_states
from .._lane_ops import any_lanes, no_vmap
from .. import _context

__all__ = [
  'jit_error_if',
  'checkify',
  'check',
  'check_error',
  'all_checks',
  'user_checks',
  'nan_checks',
  'div_checks',
  'index_checks',
  'float_checks',
  'automatic_checks',
]

# The error categories of jax.experimental.checkify (frozensets of error
# classes), so callers can pick what ``checkify`` instruments without
# importing the JAX module.
all_checks = _jcfy.all_checks
user_checks = _jcfy.user_checks
nan_checks = _jcfy.nan_checks
div_checks = _jcfy.div_checks
index_checks = _jcfy.index_checks
float_checks = _jcfy.float_checks
automatic_checks = _jcfy.automatic_checks



# --------------------------------------------------------------------------
# jit_error_if
# --------------------------------------------------------------------------

def _format_message(msg: str, *args, **kwargs) -> str:
  """``msg`` filled with the run-time values.

  Positional values use ``%`` formatting (``'got %d'``), or ``str.format``
  when the message has brace fields (``'got {}'``); keyword values use
  ``str.format`` (``'got {x}'``).
  """
  if args:
    try:
      msg = msg % args
    except (TypeError, ValueError):
      msg = msg.format(*args)
  if kwargs:
    msg = msg.format(**kwargs)
  return msg


def _raise_message(msg: str, *args, **kwargs):
  raise ValueError(_format_message(msg, *args, **kwargs))


def jit_error_if(
  pred,
  error: Union[Callable, str],
  *err_args,
  **err_kwargs,
) -> None:
  """Raises an error when ``pred`` holds, also from inside compiled code.

  ``pred`` may be a traced value: inside :func:`~brainstate_nnx.transform.jit`
  the test is compiled into the program (a ``lax.cond`` whose true branch
  issues an ordered host callback), so the error fires at run time, every
  time the condition holds. An array ``pred`` counts as true when any element
  is true; under ``vmap`` any batch element triggers it, and the error
  arguments reach the callback with the whole batch.

  Args:
    pred: a boolean (or number) scalar or array.
    error: either a message or a callable. A message is formatted with the
      run-time values -- ``%`` style or ``{}`` fields for ``err_args``,
      ``{name}`` fields for ``err_kwargs`` -- and raised as a ``ValueError``.
      A callable is called as ``error(*err_args, **err_kwargs)`` with the
      values as NumPy arrays, and should raise.
    *err_args: values passed to the message / callable (may be traced).
    **err_kwargs: keyword values passed to the message / callable.

  Raises:
    ValueError: (or the callable's exception) when called outside every
      transformation with a true ``pred``.
    jax.errors.JaxRuntimeError: when the condition holds in compiled code;
      its message contains the user's error.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform import jit_error_if
    >>> total = brainstate.State(jnp.array(0.0))
    >>> @brainstate.transform.jit
    ... def add(x):
    ...   jit_error_if(x < 0, 'x must be non-negative, got {x}', x=x)
    ...   total.value += x
    >>> add(2.0)
    >>> float(total.value)
    2.0
    >>> jit_error_if(jnp.array([1, -1]) < 0, 'negative: %s', jnp.array([1, -1]))
    Traceback (most recent call last):
      ...
    ValueError: negative: [ 1 -1]
  """
  if isinstance(error, str):
    error = functools.partial(_raise_message, error)
  elif not callable(error):
    raise TypeError(
      f'jit_error_if: error must be a message or a callable, got '
      f'{type(error).__name__}.'
    )

  if eager(pred, err_args, err_kwargs):
    if bool(jnp.any(jnp.asarray(pred))):
      # concrete everything: raise the user's error itself, here.
      args, kwargs = jax.device_get((err_args, err_kwargs))
      error(*args, **kwargs)
    return None

  def raise_branch(args, kwargs):
    jax.debug.callback(error, *args, **kwargs, ordered=True)

  def quiet_branch(args, kwargs):
    return None

  jax.lax.cond(
    any_lanes(pred),
    raise_branch,
    quiet_branch,
    jax.tree.map(no_vmap, err_args),
    jax.tree.map(no_vmap, err_kwargs),
  )
  return None


# --------------------------------------------------------------------------
# checkify
# --------------------------------------------------------------------------

def check(pred, msg: str, *fmt_args, debug: bool = False, **fmt_kwargs) -> None:
  """Asserts ``pred`` inside a function transformed by :func:`checkify`.

  The same as :func:`jax.experimental.checkify.check`: under ``checkify`` a
  false ``pred`` is recorded in the returned ``Error`` (with ``msg``
  formatted by ``str.format`` from ``fmt_args`` / ``fmt_kwargs``, which may be
  traced). Called eagerly outside ``checkify``, a false ``pred`` raises at
  once; staged (e.g. under ``jit``) outside ``checkify`` it cannot be
  compiled.

  Args:
    pred: the condition that must hold (a boolean scalar or array: all of
      its elements must be true).
    msg: the message, with ``{}`` / ``{name}`` fields.
    *fmt_args: positional values for ``msg``.
    debug: a debug check: dropped, instead of being an error, when the
      function is not checkified.
    **fmt_kwargs: keyword values for ``msg``.

  Example::

    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import check, checkify
    >>> def f(x):
    ...   check(x > 0, 'x must be positive, got {}', x)
    ...   return x * 2
    >>> err, out = checkify(f)(jnp.array(-1.0))
    >>> err.get()  # doctest: +ELLIPSIS
    'x must be positive, got -1.0 (`check` failed)'
  """
  _jcfy.check(pred, msg, *fmt_args, debug=debug, **fmt_kwargs)


def check_error(error: _jcfy.Error) -> None:
  """Raises ``error`` (an ``Error`` from :func:`checkify`) into the caller's checks.

  The same as :func:`jax.experimental.checkify.check_error`: inside a
  function transformed by :func:`checkify`, the failures held by ``error``
  become failures of that function; eagerly, a failed ``error`` raises.

  Example::

    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import check, check_error, checkify
    >>> inner = checkify(lambda x: check(x > 0, 'x must be positive'))
    >>> def outer(x):
    ...   err, _ = inner(x)
    ...   check_error(err)   # hand the inner failure on
    ...   return x
    >>> err, _ = checkify(outer)(jnp.array(-1.0))
    >>> err.get()
    'x must be positive (`check` failed)'
  """
  _jcfy.check_error(error)


def checkify(fun: Callable, errors: Any = user_checks) -> Callable:
  """Collects the run-time checks of a stateful function into an ``Error``.

  A State-aware :func:`jax.experimental.checkify.checkify`. The returned
  function takes ``fun``'s arguments and returns ``(error, out)``: ``out`` is
  what ``fun`` returned and ``error`` a
  :class:`jax.experimental.checkify.Error` holding the first failed check
  (``error.get()`` is its message or ``None``; ``error.throw()`` raises it).
  This works inside ``jit``, ``vmap``, ``grad``, loops and branches, because
  no host callback is involved.

  ``fun`` may read and write States through closures, bound methods and
  modules: writes are assigned to the States after the call (also when a
  check failed), reads leave them untouched. Under an enclosing
  brainstate_nnx transform the States are threaded through it as usual.

  Args:
    fun: the function to check; it may call :func:`check`.
    errors: which failures to look for: :data:`user_checks` (default, only
      :func:`check` calls), :data:`nan_checks`, :data:`div_checks`,
      :data:`index_checks`, :data:`float_checks` (NaN and division by zero),
      :data:`automatic_checks` (all but user checks), :data:`all_checks`, or
      a union of them (``nan_checks | user_checks``).

  Returns:
    ``checked(*args, **kwargs) -> (error, out)``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform import check, checkify, float_checks
    >>> acc = brainstate.State(jnp.array(0.0))
    >>> def step(x):
    ...   check(x > 0, 'x must be positive, got {x}', x=x)
    ...   acc.value = acc.value + x
    ...   return acc.value
    >>> err, out = checkify(step)(jnp.array(3.0))
    >>> err.get() is None, float(out), float(acc.value)
    (True, 3.0, 3.0)
    >>> err, _ = checkify(step)(jnp.array(-1.0))
    >>> err.get()
    'x must be positive, got -1.0 (`check` failed)'
    >>> err, _ = checkify(lambda x: jnp.log(x), errors=float_checks)(-1.0)
    >>> err.get()
    'nan generated by primitive: log.'
  """
  if not callable(fun):
    raise TypeError(f'checkify expects a callable, got {type(fun).__name__}')

  @functools.wraps(fun)
  def checked(*args, **kwargs):
    states = find_states(fun, args, kwargs)
    run = StatefulRun(fun, states, 'checkify')
    values = [_context.read_input(st) for st in states]
    err, (out, new_values) = _jcfy.checkify(run, errors)(values, args, kwargs)
    _context.write_back(run.written, new_values)
    return err, out

  return checked
