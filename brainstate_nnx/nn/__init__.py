"""BrainState's ``brainstate.nn`` namespace: :class:`Module` on ``nnx.Module``."""

from ._module import (
  Module,
  ElementWiseBlock,
  states,
  nodes,
  call_all_fns,
  init_all_states,
  reset_all_states,
)
from ._collective import vmap_init_all_states
from . import init

__all__ = [
  'Module', 'states', 'nodes', 'call_all_fns', 'init_all_states',
  'reset_all_states', 'vmap_init_all_states',
  'ElementWiseBlock', 'init',
]

# -- layA: linear, convolution, embedding layers --------------------------------
from ._weight_standardization import weight_standardization
from ._linear import (
  Linear, ScaledWSLinear, SignedWLinear, SparseLinear, AllToAll, OneToOne, LoRA,
)
from ._conv import (
  Conv1d, Conv2d, Conv3d,
  ScaledWSConv1d, ScaledWSConv2d, ScaledWSConv3d,
  ConvTranspose1d, ConvTranspose2d, ConvTranspose3d,
)
from ._embedding import Embedding

__all__ += [
  'weight_standardization',
  'Linear', 'ScaledWSLinear', 'SignedWLinear', 'SparseLinear', 'AllToAll', 'OneToOne', 'LoRA',
  'Conv1d', 'Conv2d', 'Conv3d', 'ScaledWSConv1d', 'ScaledWSConv2d', 'ScaledWSConv3d',
  'ConvTranspose1d', 'ConvTranspose2d', 'ConvTranspose3d',
  'Embedding',
]
