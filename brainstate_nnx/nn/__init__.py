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
