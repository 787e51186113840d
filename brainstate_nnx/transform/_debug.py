"""Debugging helpers: ``debug_nan``, ``debug_nan_if`` and ``breakpoint_if``.

``debug_nan(fn, *args)`` runs ``fn(*args)`` once more, instrumented by
:func:`jax.experimental.checkify.checkify` with the floating-point checks
(NaN produced by a primitive, division by zero). Being a JAX transformation,
checkify sees inside ``jit``, ``grad``, ``vmap``, loops, branches, ``remat``
and custom derivatives, and records the first primitive that went wrong with
the traceback of the line that created it.

A primitive producing NaN is not always a bug: ``jnp.where(x > 0,
jnp.log(x), 0.)`` computes ``log`` of negative numbers and then throws the
result away. So the report is gated on the outputs: an error is raised only
when NaN or Inf reaches what ``fn`` returns or a State it writes; checkify
then tells where it came from. Infs that no checked primitive flags (``exp``
overflow, ``log(0)``) are still caught by the gate, reported with the
contaminated outputs but without a source primitive.

``fn`` may read and write States; they are threaded as in
:func:`~brainstate_nnx.transform._checks.checkify`, but the debug run is a
dry run: no State changes.
"""

from __future__ import annotations

import functools
import linecache
import os
import warnings
from typing import Any, Callable, List, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify as _jcfy
from jax.extend import source_info_util

from .. import _context
from ._stateful_run import StatefulRun, eager, find_states
from .._lane_ops import any_lanes

__all__ = ['debug_nan', 'debug_nan_if', 'breakpoint_if']

# what checkify instruments for debug_nan: NaN generation, division by zero
_NAN_CHECKS = _jcfy.float_checks


def _hide_this_file() -> None:
  """Keeps this file's frames out of JAX's user-facing frame lists.

  Source locations recorded by JAX then point at the caller, and the frames
  ``jax.debug.breakpoint`` offers start at the user's code instead of here.
  The second registry has no public API; without it only the debugger view
  is affected.
  """
  path = os.path.abspath(__file__)
  source_info_util.register_exclusion(path)
  try:
    from jax._src import traceback_util
  except ImportError:  # pragma: no cover - JAX internals moved
    return
  register = getattr(traceback_util, 'register_exclusion', None)
  if register is not None:
    register(path)


_hide_this_file()


# --------------------------------------------------------------------------
# is anything non-finite?
# --------------------------------------------------------------------------

def _inexact(x) -> bool:
  dtype = getattr(x, 'dtype', None)
  return dtype is not None and jnp.issubdtype(dtype, jnp.inexact)


def _any_bad(leaves) -> jax.Array:
  """A boolean scalar: does any float / complex leaf hold NaN or Inf?"""
  flags = [jnp.any(~jnp.isfinite(x)) for x in leaves if _inexact(x)]
  if not flags:
    return jnp.zeros((), jnp.bool_)
  return jnp.any(jnp.stack(flags))


# --------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------

def _dir_of(module) -> str:
  return os.path.dirname(os.path.abspath(module.__file__)) + os.sep


def _library_dirs() -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
  """``(internal, libraries)``: this package and JAX; those plus Flax, NumPy."""
  import flax
  import jaxlib

  package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
  internal = (package, _dir_of(jax), _dir_of(jaxlib))
  return internal, internal + (_dir_of(flax), _dir_of(np))


_INTERNAL_DIRS, _LIBRARY_DIRS = _library_dirs()


def _is_library_file(filename: str) -> bool:
  """Not user code: this package, JAX, Flax, NumPy or any installed package."""
  if not filename or filename.startswith('<frozen'):
    return True
  path = os.path.abspath(filename)
  return (
    path.startswith(_LIBRARY_DIRS)
    or f'{os.sep}site-packages{os.sep}' in path
    or f'{os.sep}dist-packages{os.sep}' in path
  )


def _is_internal_file(filename: str) -> bool:
  """This package or JAX itself."""
  if not filename or filename.startswith('<frozen'):
    return True
  return os.path.abspath(filename).startswith(_INTERNAL_DIRS)


def _frame_text(frame) -> str:
  """``File "path", line N, in name`` plus the source line (traceback style)."""
  # JAX records qualified names (``Model.__call__``); Python tracebacks and
  # IDEs show the bare function name.
  name = (frame.function_name or '?').rsplit('.', 1)[-1]
  text = f'File "{frame.file_name}", line {frame.line_num}, in {name}'
  code = linecache.getline(frame.file_name, frame.line_num).strip()
  if code:
    text += f'\n    {code}'
  return text


def _source_of(tb) -> str:
  """The innermost user frame of a JAX traceback, or ``'<unknown source>'``."""
  if tb is None:
    return '<unknown source>'
  try:
    frames = list(tb.frames)  # innermost first
  except Exception:
    return '<unknown source>'
  # the innermost frame of user code; failing that (the NaN was made inside
  # an installed library), the innermost frame outside this package and JAX
  for keep in (_is_library_file, _is_internal_file):
    for fr in frames:
      if not keep(fr.file_name):
        return _frame_text(fr)
  return '<unknown source>'


def _failure(err) -> Tuple[Optional[str], Any, Optional[str]]:
  """``(primitive, traceback, checkify message)`` of the first failure."""
  try:
    exc = err.get_exception()
  except Exception:
    exc = None
  if exc is None:
    return None, None, None
  try:
    detail = err.get()
  except Exception:
    detail = None
  return getattr(exc, 'prim', None), getattr(exc, 'traceback_info', None), detail


def _output_lines(leaves) -> List[str]:
  """One line per float / complex output holding NaN or Inf."""
  lines = []
  for i, x in enumerate(leaves):
    if not _inexact(x):
      continue
    try:
      a = np.asarray(x)
      n_nan = int(np.count_nonzero(np.isnan(a)))
      n_inf = int(np.count_nonzero(np.isinf(a)))
    except Exception:
      continue
    if not (n_nan or n_inf):
      continue
    line = (f'    output[{i}]: shape={tuple(a.shape)} dtype={a.dtype} '
            f'NaNs={n_nan} Infs={n_inf}')
    if jnp.issubdtype(a.dtype, jnp.floating):
      try:
        with warnings.catch_warnings():
          warnings.simplefilter('ignore', RuntimeWarning)
          lo, hi = np.nanmin(a.astype(np.float64)), np.nanmax(a.astype(np.float64))
        line += f' min={lo:.4g} max={hi:.4g}'
      except Exception:
        pass
    lines.append(line)
  return lines


def _report(err, leaves, phase: str) -> Tuple[str, Any]:
  """The message of a NaN / Inf failure and the traceback of its source."""
  prim, tb, detail = _failure(err)
  tag = f' [{phase}]' if phase else ''
  lines = [f'NaN/Inf detected{tag} in the output of the checked function!']
  if prim is not None:
    lines.append(f'  Introduced by primitive : `{prim}`')
  lines.append('  Source location         :')
  lines.append('    ' + _source_of(tb))
  if detail:
    lines.append(f'  Checkify report         : {detail}')
  outputs = _output_lines(leaves)
  if outputs:
    lines.append('  Contaminated outputs    :')
    lines.extend(outputs)
  if prim is None and not outputs:
    lines.append('  (NaN/Inf reached the output but could not be localized.)')
  return '\n'.join(lines), tb


def _raise_now(err, leaves, phase: str):
  msg, tb = _report(err, leaves, phase)
  if tb is not None:
    try:
      ctx = source_info_util.user_context(tb)
    except Exception:  # pragma: no cover - defensive
      ctx = None
    if ctx is not None:
      # JAX chains the traceback of the source line to the error
      with ctx:
        raise RuntimeError(msg)
  raise RuntimeError(msg)


def _raise_from_callback(err, tree, phase: str):
  msg, _ = _report(err, jax.tree.leaves(tree), phase)
  raise RuntimeError(msg)


# --------------------------------------------------------------------------
# the checker
# --------------------------------------------------------------------------

class DebugNan:
  """A NaN / Inf check of ``fn(*args)``; :meth:`check` runs it.

  Args:
    fn: the function to check. It may read and write States (the check
      changes none of them).
    *args: the arguments ``fn`` is checked with.
    phase: a label put in the message (``'forward'``, ``'backward'``, ...).

  Example::

    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform._debug import DebugNan
    >>> DebugNan(lambda x: x * 2, jnp.ones(3)).check()   # clean: nothing happens
    >>> DebugNan(jnp.log, -jnp.ones(3), phase='forward').check()
    Traceback (most recent call last):
      ...
    RuntimeError: NaN/Inf detected [forward] in the output of the checked function!
    ...
  """

  def __init__(self, fn: Callable, *args, phase: str = ''):
    if not callable(fn):
      raise TypeError(f'debug_nan expects a callable, got {type(fn).__name__}')
    self.fn = fn
    self.phase = phase
    self._args = args
    self._states = find_states(fn, args, {})
    self._run = StatefulRun(fn, self._states, 'debug_nan')
    self._checked = _jcfy.checkify(self._pure, errors=_NAN_CHECKS)

  def _pure(self, values, args):
    # the observable outputs: the return value and the written States
    return self._run(values, args, {})

  def _values(self) -> list:
    return [_context.read_input(st) for st in self._states]

  def _instrumented(self, values):
    return self._checked(values, self._args)

  def check(self) -> None:
    """Runs ``fn`` and raises ``RuntimeError`` if NaN / Inf reaches an output.

    Outside every transformation the error is raised here; under a
    transformation (``jit``...) it is raised at run time from a host callback
    and reaches the caller as a ``JaxRuntimeError`` containing the report.
    """
    err, tree = self._instrumented(self._values())
    leaves = jax.tree.leaves(tree)
    bad = any_lanes(_any_bad(leaves))
    if isinstance(bad, jax.core.Tracer) or _context.has_tracer((err, leaves)):
      # under a transformation: report from the running program
      self._raise_at_run_time(bad, err, tree)
    elif bool(bad):
      _raise_now(err, leaves, self.phase)
    return None

  def _raise_at_run_time(self, bad, err, tree) -> None:
    report = functools.partial(_raise_from_callback, phase=self.phase)
    jax.lax.cond(
      bad,
      lambda e, t: jax.debug.callback(report, e, t, ordered=True),
      lambda e, t: None,
      err, tree,
    )

  def check_if(self, has_nan) -> None:
    """As :meth:`check`, but only when ``has_nan`` (any element) is true.

    ``has_nan`` may be traced; then the instrumented run itself sits in the
    true branch of a ``lax.cond`` and costs nothing when the flag is false.
    """
    pred = any_lanes(has_nan)
    if not isinstance(pred, jax.core.Tracer):
      if bool(pred):
        self.check()
      return None

    def run(values):
      err, tree = self._instrumented(values)
      bad = any_lanes(_any_bad(jax.tree.leaves(tree)))
      self._raise_at_run_time(bad, err, tree)

    jax.lax.cond(pred, run, lambda values: None, self._values())
    return None


def debug_nan(fn: Callable, *args, phase: str = '') -> None:
  """Raises if ``fn(*args)`` lets NaN / Inf out, naming the primitive that made it.

  ``fn`` is run once, instrumented by JAX's checkify; the error is raised only
  when NaN or Inf reaches the return value or a State written by ``fn`` (NaN
  computed and then masked away, as in ``jnp.where`` guards, is ignored).
  The message names the first primitive that produced NaN or divided by zero
  (``log``, ``div``, ...), the user source line that called it, and the
  contaminated outputs. States are threaded but never changed. Usable inside
  ``jit`` (the error is then raised when the program runs).

  Args:
    fn: the function to check (a function, a bound method, a Module...).
    *args: the arguments to check it with.
    phase: a label inserted in the message, e.g. ``'forward'``.

  Raises:
    RuntimeError: NaN / Inf reached an output (a ``JaxRuntimeError`` wrapping
      the report when raised from compiled code).

  Example::

    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import debug_nan
    >>> debug_nan(lambda x: jnp.where(x > 0, jnp.log(x), 0.0), jnp.array([-1.0, 2.0]))
    >>> def f(x):
    ...   return jnp.log(x) * 2
    >>> debug_nan(f, jnp.array([-1.0, 2.0]))
    Traceback (most recent call last):
      ...
    RuntimeError: NaN/Inf detected in the output of the checked function!
      Introduced by primitive : `log`
      Source location         :
        File "<doctest ...>", line 2, in f
        return jnp.log(x) * 2
      Checkify report         : nan generated by primitive: log.
      Contaminated outputs    :
        output[0]: shape=(2,) dtype=float32 NaNs=1 Infs=0 min=1.386 max=1.386
  """
  DebugNan(fn, *args, phase=phase).check()


def debug_nan_if(has_nan, fn: Callable, *args, phase: str = '') -> None:
  """:func:`debug_nan`, only when ``has_nan`` is true.

  ``if has_nan: debug_nan(fn, *args)``, with ``has_nan`` allowed to be a
  traced value (inside ``jit``, ``vmap``...: any true element triggers the
  check, which is then compiled into the false-cost branch of a
  ``lax.cond``). A typical use is to re-run a step with instrumentation once
  its result turned out non-finite.

  Args:
    has_nan: the trigger, a boolean scalar or array.
    fn: the function to check.
    *args: its arguments.
    phase: a label inserted in the message.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform import debug_nan_if
    >>> @brainstate.transform.jit
    ... def step(x):
    ...   y = jnp.sqrt(x)
    ...   debug_nan_if(jnp.any(jnp.isnan(y)), jnp.sqrt, x, phase='step')
    ...   return y
    >>> step(jnp.array([1.0, 4.0]))
    Array([1., 2.], dtype=float32)
  """
  if eager(has_nan) and not bool(jnp.any(jnp.asarray(has_nan))):
    return None  # nothing to check: skip the instrumentation altogether
  DebugNan(fn, *args, phase=phase).check_if(has_nan)


def breakpoint_if(pred, **breakpoint_kwargs) -> Any:
  """:func:`jax.debug.breakpoint`, entered only when ``pred`` holds.

  ``pred`` may be traced: inside ``jit`` the breakpoint is compiled into the
  true branch of a ``lax.cond`` and the debugger opens at run time, each time
  the condition holds (any element of an array / any ``vmap`` batch
  element). Outside every transformation a false ``pred`` does nothing at
  all.

  Args:
    pred: the condition, a boolean scalar or array.
    **breakpoint_kwargs: passed on to :func:`jax.debug.breakpoint`
      (``backend``, ``filter_frames``, ``num_frames``, ``ordered``,
      ``token``).

  Returns:
    ``token`` (``None`` unless a ``token`` was given), as
    :func:`jax.debug.breakpoint`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform import breakpoint_if
    >>> @brainstate.transform.jit
    ... def f(x):
    ...   breakpoint_if(jnp.any(x < 0))   # the debugger opens for negative input
    ...   return x * 2
    >>> f(jnp.array([1.0, 2.0]))
    Array([2., 4.], dtype=float32)
  """
  token = breakpoint_kwargs.get('token', None)
  if eager(pred, token):
    if bool(jnp.any(jnp.asarray(pred))):
      return jax.debug.breakpoint(**breakpoint_kwargs)
    return token

  def enter():
    return jax.debug.breakpoint(**breakpoint_kwargs)

  return jax.lax.cond(any_lanes(pred), enter, lambda: token)
