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
