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
)
from . import util
from . import random
from . import nn
from . import graph
from . import transform
from . import optim
from . import environ
from . import mixin
from . import typing

__all__ = [
  'BrainStateError', 'TraceContextError', 'BatchAxisError',
  'State', 'ShortTermState', 'LongTermState', 'ParamState', 'HiddenState',
  'BatchState', 'FakeState', 'maybe_state', 'catch_new_states', 'adopt',
  'util', 'random', 'nn', 'graph', 'transform', 'optim',
  'environ', 'mixin', 'typing',
]
