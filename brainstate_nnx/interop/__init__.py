"""Moving models between brainstate_nnx and Flax NNX, Flax linen, Equinox and
BrainState.

* :func:`to_nnx` / :func:`from_nnx`: a brainstate_nnx model *is* an NNX model
  (returned as it is); Flax layers with a counterpart become ours with their
  weights, other NNX modules are adopted; :func:`to_flax_layers` builds the
  model from Flax's own layers;
* :func:`to_linen` / :func:`from_linen`: through Flax's linen bridge;
* :func:`to_equinox` / :func:`from_equinox`: when ``equinox`` is installed;
* :func:`from_brainstate` / :func:`to_brainstate`: weights of a real
  BrainState model, matched by State path.

Example::

  >>> import brainstate_nnx as brainstate
  >>> sorted(brainstate.interop.supported_layers())[:2]
  ['Conv1d', 'Conv2d']
"""

from ._errors import (
  InteropError,
  MissingDependencyError,
  UnmappedLayerError,
  UnsupportedLayerError,
  UnsupportedStructureError,
  MissingShapeError,
  ConversionError,
)
from ._nnx import (
  to_nnx,
  from_nnx,
  to_flax_layers,
  register_layer_mapping,
  supported_layers,
  LayerMapping,
)
from ._linen import to_linen, from_linen
from ._equinox import to_equinox, from_equinox
from ._brainstate import from_brainstate, to_brainstate

__all__ = [
  'to_nnx', 'from_nnx', 'to_flax_layers', 'to_linen', 'from_linen', 'to_equinox',
  'from_equinox', 'from_brainstate', 'to_brainstate',
  'register_layer_mapping', 'supported_layers', 'LayerMapping',
  'InteropError', 'MissingDependencyError', 'UnmappedLayerError', 'UnsupportedLayerError',
  'UnsupportedStructureError', 'MissingShapeError', 'ConversionError',
]
