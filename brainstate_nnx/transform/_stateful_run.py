"""A stateful function as a pure one, for JAX transformations that run it once.

``checkify`` and ``debug_nan`` hand a user function to a JAX transformation
that calls it with explicit inputs. :func:`find_states` learns, by an
abstract dry run, which States the function touches; :class:`StatefulRun`
is the pure function ``(state values, args, kwargs) -> (out, new values of
the written States)`` that runs the user function through
:func:`brainstate_nnx._context.run_in_frame`.

Example::

  >>> import jax, jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> from brainstate_nnx.transform._stateful_run import StatefulRun, find_states
  >>> s = brainstate.State(jnp.array(1.0))
  >>> def f(x):
  ...   s.value = s.value + x
  ...   return x * 2
  >>> states = find_states(f, (jnp.array(3.0),), {})
  >>> run = StatefulRun(f, states, 'demo')
  >>> out, new = jax.jit(run)([s.value], (jnp.array(3.0),), {})
  >>> float(out), float(new[0]), run.written == [s]
  (6.0, 4.0, True)
"""

from __future__ import annotations

from typing import Callable

from jax.extend.core import get_opaque_trace_state as _opaque_trace

from .. import _context
from .._context import CaptureFrame

__all__ = ['StatefulRun', 'find_states', 'eager']

# The trace JAX runs under outside any transformation.
_EVAL_TRACE = _opaque_trace()


def eager(*trees) -> bool:
  """True outside every transformation, with only concrete values."""
  return (
    not _context.frames()
    and _opaque_trace() == _EVAL_TRACE
    and not any(_context.has_tracer(t) for t in trees)
  )


def _written(frame):
  written = frame.written_states()
  return written, [st._raw_value for st in written]


class StatefulRun:
  """``fun`` as a pure function of ``(state values, args, kwargs)``.

  Returns ``(out, values of the written States)``; the written States
  themselves are left in :attr:`written` after the call.
  """

  def __init__(self, fun: Callable, states, what: str):
    self.fun = fun
    self.states = list(states)
    self.what = what
    self.written: list = []

  def __call__(self, values, args, kwargs):
    frame = CaptureFrame(self, self.states)
    out, (written, new_values) = _context.run_in_frame(
      frame, values, self.fun, tuple(args), kwargs, what=self.what, collect=_written)
    self.written = written
    return out, new_values


def find_states(fun: Callable, args, kwargs) -> list:
  """The States ``fun(*args, **kwargs)`` touches, found by an abstract dry run."""
  touched, _ = _context.probe(fun, tuple(args), kwargs)
  return touched
