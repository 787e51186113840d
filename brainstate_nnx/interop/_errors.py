"""Errors raised by :mod:`brainstate_nnx.interop`.

Example::

  >>> import brainstate_nnx as brainstate
  >>> issubclass(brainstate.interop.UnmappedLayerError, brainstate.interop.InteropError)
  True
"""

__all__ = [
  'InteropError', 'MissingDependencyError', 'UnmappedLayerError', 'UnsupportedLayerError',
  'UnsupportedStructureError', 'MissingShapeError', 'ConversionError',
]


class InteropError(Exception):
  """Base class of the conversion errors."""


class MissingDependencyError(InteropError, ImportError):
  """The other framework (flax.linen, equinox) is not installed."""


class UnmappedLayerError(InteropError, TypeError):
  """No conversion is registered for this layer type."""


class UnsupportedLayerError(InteropError, TypeError):
  """This layer cannot be converted with equal outputs."""


class UnsupportedStructureError(InteropError, TypeError):
  """The model's structure (not a single layer or sequence) cannot be converted."""


class MissingShapeError(InteropError, ValueError):
  """A ``sample_input`` is needed to build the converted model."""


class ConversionError(InteropError, ValueError):
  """The weights do not fit the target model (paths, shapes)."""
