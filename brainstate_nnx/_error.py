"""Exceptions raised by brainstate_nnx."""

from flax import errors as _flax_errors

__all__ = ['BrainStateError', 'TraceContextError', 'BatchAxisError']


class BrainStateError(Exception):
  """Base class of the errors raised by brainstate_nnx."""


class TraceContextError(BrainStateError, _flax_errors.TraceContextError):
  """A State was used under a JAX transformation that cannot track it.

  It subclasses ``flax.errors.TraceContextError`` so code that catches the
  Flax error keeps working.
  """

  def __init__(self, message: str):
    Exception.__init__(self, message)


class BatchAxisError(BrainStateError, ValueError):
  """A State received a batched value under ``vmap`` without being declared."""
