"""Parameter initializers (BrainState's ``brainstate.nn.init``).

An initializer is called with a shape (and optionally ``dtype=`` and
``rng=``) and returns an array; for the same seed it draws exactly what
BrainState's initializer of the same name draws. :func:`param` turns an
initializer, an array or a State into a parameter value of a given size.

Example::

  >>> import brainstate_nnx as brainstate
  >>> brainstate.random.seed(0)
  >>> w = brainstate.nn.init.param(brainstate.nn.init.KaimingNormal(), (3, 2))
  >>> b = brainstate.nn.init.param(brainstate.nn.init.ZeroInit(), 2)
  >>> w.shape, b
  ((3, 2), Array([0., 0.], dtype=float32))
"""

from ._base import Initializer, to_size, are_broadcastable_shapes
from ._param import param, calculate_init_gain
from ._deterministic import ZeroInit, Constant, Identity
from ._distributions import Normal, TruncatedNormal, Uniform, Gamma, Exponential
from ._variance_scaling import (
  VarianceScaling,
  KaimingUniform,
  KaimingNormal,
  XavierUniform,
  XavierNormal,
  LecunUniform,
  LecunNormal,
)
from ._orthogonal import Orthogonal, DeltaOrthogonal

__all__ = [
  'param', 'calculate_init_gain', 'ZeroInit', 'Constant', 'Identity', 'Normal',
  'TruncatedNormal', 'Uniform', 'VarianceScaling', 'KaimingUniform', 'KaimingNormal',
  'XavierUniform', 'XavierNormal', 'LecunUniform', 'LecunNormal', 'Orthogonal',
  'DeltaOrthogonal', 'Gamma', 'Exponential', 'Initializer', 'to_size',
  'are_broadcastable_shapes',
]
