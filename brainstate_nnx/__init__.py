"""BrainState's programming model on Flax NNX.

``import brainstate_nnx as brainstate`` gives BrainState's API -- ``State``,
``nn.Module``, ``random`` and the state-aware ``transform.jit / grad / vmap``
-- where every State is an ``nnx.Variable`` and every Module an
``nnx.Module``.
"""

__version__ = '0.1.0'

from ._error import BrainStateError, TraceContextError, BatchAxisError
from ._state import (
  State,
  ShortTermState,
  LongTermState,
  ParamState,
  HiddenState,
  BatchState,
  FakeState,
  maybe_state,
  catch_new_states,
  adopt,
  DelayState,
  check_state_value_tree,
  check_state_jax_tracer,
)
from ._state_group import HiddenGroupState, HiddenTreeState
from ._state_treefy import TreefyState
from ._state_trace import StateTraceStack
from ._state_dict import StateDictManager
from ._state_hook_context import (
  HookContext,
  ReadHookContext,
  WriteHookContext,
  MutableWriteHookContext,
  RestoreHookContext,
  InitHookContext,
)
from ._state_hook_core import (
  Hook,
  HookHandle,
  HookError,
  HookExecutionError,
  HookRegistrationError,
  HookCancellationError,
  HookWarning,
)
from ._state_hook_manager import HookConfig, HookManager
from ._state_global_hooks import (
  GlobalHookRegistry,
  register_state_hook,
  unregister_state_hook,
  clear_state_hooks,
  has_state_hooks,
  list_state_hooks,
)
from . import util
from . import random
from . import nn
from . import graph
from . import transform
from . import optim
from . import interop
from . import environ
from . import mixin
from . import typing

__all__ = [
  'BrainStateError', 'TraceContextError', 'BatchAxisError',
  'State', 'ShortTermState', 'LongTermState', 'ParamState', 'HiddenState',
  'BatchState', 'FakeState', 'maybe_state', 'catch_new_states', 'adopt',
  'util', 'random', 'nn', 'graph', 'transform', 'optim', 'interop',
  'DelayState', 'check_state_value_tree', 'check_state_jax_tracer',
  'HiddenGroupState', 'HiddenTreeState', 'TreefyState', 'StateTraceStack',
  'StateDictManager',
  'HookContext', 'ReadHookContext', 'WriteHookContext', 'MutableWriteHookContext',
  'RestoreHookContext', 'InitHookContext',
  'Hook', 'HookHandle', 'HookError', 'HookExecutionError', 'HookRegistrationError',
  'HookCancellationError', 'HookWarning', 'HookConfig', 'HookManager',
  'GlobalHookRegistry', 'register_state_hook', 'unregister_state_hook',
  'clear_state_hooks', 'has_state_hooks', 'list_state_hooks',
  'environ', 'mixin', 'typing',
]
