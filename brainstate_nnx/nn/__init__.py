"""BrainState's ``brainstate.nn`` namespace: :class:`Module` on ``nnx.Module``."""

from ._module import (
  Module,
  states,
  nodes,
  call_all_fns,
  init_all_states,
  reset_all_states,
)
from ._collective import vmap_init_all_states

__all__ = [
  'Module', 'states', 'nodes', 'call_all_fns', 'init_all_states',
  'reset_all_states', 'vmap_init_all_states',
]

# -- layC: activations, elementwise layers, recurrent cells, containers --------
from ._activations import *  # noqa: F401,F403
from ._activations import __all__ as _act_all

__all__ += _act_all
from ._sequential import ElementWiseBlock, Sequential
from ._elementwise import *  # noqa: F401,F403
from ._elementwise import __all__ as _elem_all

__all__ += ['ElementWiseBlock', 'Sequential'] + _elem_all
from ._flatten import Flatten, Unflatten

__all__ += ['Flatten', 'Unflatten']
from ._collective import (
  call_order,
  vmap_call_all_fns,
  vmap_reset_all_states,
  assign_state_values,
)

__all__ += ['call_order', 'vmap_call_all_fns', 'vmap_reset_all_states', 'assign_state_values']
from ._utils import count_parameters, clip_grad_norm

__all__ += ['count_parameters', 'clip_grad_norm']
from ._common import EnvironContext, Vmap, Map

__all__ += ['EnvironContext', 'Vmap', 'Map']
