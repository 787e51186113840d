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

# -- layC: activations, elementwise layers, recurrent cells, containers --------
from ._activations import *  # noqa: F401,F403
from ._activations import __all__ as _act_all
from ._elementwise import *  # noqa: F401,F403
from ._elementwise import __all__ as _elem_all
from ._sequential import Sequential
from ._flatten import Flatten, Unflatten
from ._collective import (
  call_order,
  vmap_call_all_fns,
  vmap_reset_all_states,
  assign_state_values,
)
from ._utils import count_parameters, clip_grad_norm
from ._common import EnvironContext, Vmap, Map

__all__ += _act_all + _elem_all + [
  'Sequential', 'Flatten', 'Unflatten', 'call_order', 'vmap_call_all_fns',
  'vmap_reset_all_states', 'assign_state_values', 'count_parameters',
  'clip_grad_norm', 'EnvironContext', 'Vmap', 'Map',
]

# -- pooling, padding, normalization, dropout (layB) --
from ._poolings import (
  AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d,
  MaxUnpool1d, MaxUnpool2d, MaxUnpool3d, LPPool1d, LPPool2d, LPPool3d,
  AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d,
  AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d,
)
from ._paddings import (
  ReflectionPad1d, ReflectionPad2d, ReflectionPad3d,
  ReplicationPad1d, ReplicationPad2d, ReplicationPad3d,
  ZeroPad1d, ZeroPad2d, ZeroPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d,
  CircularPad1d, CircularPad2d, CircularPad3d,
)
from . import _poolings, _paddings

__all__ += _poolings.__all__ + _paddings.__all__
from ._dropout import (
  Dropout, Dropout1d, Dropout2d, Dropout3d, AlphaDropout, FeatureAlphaDropout,
  DropoutFixed,
)
from . import _dropout

__all__ += _dropout.__all__
from ._normalizations import (
  BatchNorm0d, BatchNorm1d, BatchNorm2d, BatchNorm3d, LayerNorm, RMSNorm, GroupNorm,
)
from . import _normalizations

__all__ += _normalizations.__all__

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
from ._rnns import RNNCell, ValinaRNNCell, GRUCell, MGUCell, LSTMCell, URLSTMCell

__all__ += ['RNNCell', 'ValinaRNNCell', 'GRUCell', 'MGUCell', 'LSTMCell', 'URLSTMCell']

# -- parameters, transforms, regularization, metrics (p10) --------------------
from ._param_transform import (
  Transform, IdentityT, SigmoidT, SoftplusT, NegSoftplusT, LogT, ExpT, TanhT,
  SoftsignT, AffineT, ChainT, MaskedT, ClipT, ReluT, PositiveT, NegativeT,
  ScaledSigmoidT, PowerT, OrderedT, SimplexT, UnitVectorT,
)

__all__ += [
  'Transform', 'IdentityT', 'SigmoidT', 'SoftplusT', 'NegSoftplusT', 'LogT',
  'ExpT', 'TanhT', 'SoftsignT', 'AffineT', 'ChainT', 'MaskedT', 'ClipT', 'ReluT',
  'PositiveT', 'NegativeT', 'ScaledSigmoidT', 'PowerT', 'OrderedT', 'SimplexT',
  'UnitVectorT',
]
from ._regularization import (
  Regularization, ChainedReg, GaussianReg, L1Reg, L2Reg, ElasticNetReg,
  HuberReg, GroupLassoReg, TotalVariationReg, MaxNormReg, EntropyReg,
  OrthogonalReg, SpectralNormReg, StudentTReg, CauchyReg, UniformReg,
  LogNormalReg, ExponentialReg, GammaReg, BetaReg, HorseshoeReg,
  InverseGammaReg, LogUniformReg, SpikeAndSlabReg, DirichletReg,
)

__all__ += [
  'Regularization', 'ChainedReg', 'GaussianReg', 'L1Reg', 'L2Reg',
  'ElasticNetReg', 'HuberReg', 'GroupLassoReg', 'TotalVariationReg',
  'MaxNormReg', 'EntropyReg', 'OrthogonalReg', 'SpectralNormReg',
  'StudentTReg', 'CauchyReg', 'UniformReg', 'LogNormalReg', 'ExponentialReg',
  'GammaReg', 'BetaReg', 'HorseshoeReg', 'InverseGammaReg', 'LogUniformReg',
  'SpikeAndSlabReg', 'DirichletReg',
]
from ._param import Param, Const

__all__ += ['Param', 'Const']
from ._metrics import (
  MetricState, Metric, AverageMetric, WelfordMetric, AccuracyMetric,
  MultiMetric, PrecisionMetric, RecallMetric, F1ScoreMetric, ConfusionMatrix,
)

__all__ += [
  'MetricState', 'Metric', 'AverageMetric', 'WelfordMetric', 'AccuracyMetric',
  'MultiMetric', 'PrecisionMetric', 'RecallMetric', 'F1ScoreMetric',
  'ConfusionMatrix',
]
from ._delay import Delay, DelayAccess, StateWithDelay, InterpolationRegistry
from ._dynamics import (
  Dynamics, receive_update_output, not_receive_update_output,
  receive_update_input, not_receive_update_input, Prefetch, PrefetchDelay,
  PrefetchDelayAt, OutputDelayAt, init_maybe_prefetch,
)
from ._exp_euler import exp_euler_step

__all__ += [
  'Delay', 'DelayAccess', 'StateWithDelay', 'InterpolationRegistry',
  'Dynamics', 'receive_update_output', 'not_receive_update_output',
  'receive_update_input', 'not_receive_update_input', 'Prefetch',
  'PrefetchDelay', 'PrefetchDelayAt', 'OutputDelayAt', 'init_maybe_prefetch',
  'exp_euler_step',
]
from ._hidata import HiData

__all__ += ['HiData']

# -- event-driven connectivity (dyn) -------------------------------------------
from ._event_linear import EventLinear
from ._event_fixedprob import FixedNumConn, EventFixedNumConn, EventFixedProb

__all__ += ['EventLinear', 'FixedNumConn', 'EventFixedNumConn', 'EventFixedProb']
