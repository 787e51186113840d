"""Normalization layers: batch norm (0-3 D), layer norm, RMS norm and group norm.

Learnable scale and bias live together in one ParamState, ``weight`` (a dict
``{'scale': ..., 'bias': ...}``; ``RMSNorm`` keeps ``{'scale': ...}`` in
``scale``), as in BrainState, so ``states()`` paths are BrainState's and
``nnx.state(model, nnx.Param)`` sees them as ``nnx.Param``. Batch norm keeps
``running_mean`` / ``running_var`` in :class:`~brainstate_nnx.BatchState` s,
updated while ``environ`` ``fit`` is True and used while it is False.

Shapes are channel-last. Statistics are computed in at least float32.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from .. import environ
from .._state import BatchState, ParamState
from . import init
from ._module import Module
from ._weight_standardization import weight_standardization  # noqa: F401  (BrainState's home of it)

__all__ = [
  'BatchNorm0d',
  'BatchNorm1d',
  'BatchNorm2d',
  'BatchNorm3d',
  'LayerNorm',
  'RMSNorm',
  'GroupNorm',
]

_FIT_DESC = 'Whether this is a fitting process. Bool.'


class NormalizationParamState(ParamState):
  """The ``{'scale', 'bias'}`` parameters of a normalization layer.

  ``execute(y)`` applies them: ``y * scale + bias`` (each when present).

  Example::

    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.nn._normalizations import NormalizationParamState
    >>> p = NormalizationParamState({'scale': jnp.full(2, 2.), 'bias': jnp.ones(2)})
    >>> p.execute(jnp.ones(2))
    Array([3., 3.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def execute(self, x):
    param = self.value
    if 'scale' in param:
      x = x * param['scale']
    if 'bias' in param:
      x = x + param['bias']
    return x


def _size_tuple(size) -> tuple:
  if isinstance(size, (int, np.integer)):
    return (int(size),)
  return tuple(size)


def _canonical_axes(ndim: int, axes: Sequence[int]) -> tuple:
  out = []
  for axis in axes:
    a = axis + ndim if axis < 0 else axis
    if not 0 <= a < ndim:
      raise ValueError(f'Invalid axis {axis} for {ndim}D input')
    out.append(a)
  return tuple(out)


def _as_axes(axes) -> tuple:
  return (axes,) if isinstance(axes, int) else axes


def _feature_shape(in_size: tuple, feature_axes: tuple) -> tuple:
  return tuple(d if i in feature_axes else 1 for i, d in enumerate(in_size))


def _sq(x):
  """``|x|**2``, real even for complex ``x``."""
  if jnp.iscomplexobj(x):
    return jax.lax.square(jax.lax.real(x)) + jax.lax.square(jax.lax.imag(x))
  return jax.lax.square(x)


def _stats(x, axes, dtype, axis_name=None, axis_index_groups=None, use_mean=True,
           use_fast_variance=True, mask=None):
  """``(mean, var)`` of ``x`` over ``axes`` (at least float32; optionally across devices).

  ``use_mean=False`` gives the mean square as ``var`` and zeros as ``mean``
  (RMS norm). With ``use_fast_variance`` the variance is ``E[x^2] - E[x]^2``
  (clipped at 0), computed in one pass.
  """
  dtype = jnp.promote_types(jnp.result_type(x) if dtype is None else dtype, jnp.float32)
  x = jnp.asarray(x, dtype)
  axes = _canonical_axes(x.ndim, axes)

  def mean(*arrays):
    mus = tuple(a.mean(axes, where=mask) for a in arrays)
    if axis_name is not None:
      if len(mus) > 1:
        both = jax.lax.pmean(jnp.stack(mus, axis=0), axis_name,
                             axis_index_groups=axis_index_groups)
        mus = tuple(both[i] for i in range(len(mus)))
      else:
        mus = (jax.lax.pmean(mus[0], axis_name, axis_index_groups=axis_index_groups),)
    return mus if len(mus) > 1 else mus[0]

  if not use_mean:
    var = mean(_sq(x))
    return jnp.zeros_like(var), var
  if use_fast_variance:
    mu, mu2 = mean(x, _sq(x))
    return mu, jnp.maximum(0.0, mu2 - _sq(mu))
  mu = mean(x)
  return mu, mean(_sq(x - jnp.expand_dims(mu, axes)))


def _result_dtype(*args, dtype=None):
  """``dtype``, or the inexact type the arguments promote to."""
  if dtype is None:
    dtype = jnp.result_type(*[jnp.asarray(a) for a in args if a is not None])
    if not jnp.issubdtype(dtype, jnp.inexact):
      dtype = jnp.promote_types(jnp.float32, dtype)
  if not jnp.issubdtype(dtype, jnp.inexact):
    raise ValueError(f'Dtype must be inexact: {dtype}')
  return dtype


def _normalize(x, mean, var, weights, reduction_axes, dtype, epsilon):
  """``(x - mean) / sqrt(var + eps)``, then scale and bias, cast to ``dtype``."""
  reduction_axes = _canonical_axes(x.ndim, reduction_axes)
  stats_shape = [1 if i in reduction_axes else d for i, d in enumerate(x.shape)]
  centered = x - mean.reshape(stats_shape)
  mul = jax.lax.rsqrt(var.reshape(stats_shape) + epsilon)
  if weights is None:
    return jnp.asarray(centered * mul, dtype)
  dtype = _result_dtype(x, *jax.tree.leaves(weights.value), dtype=dtype)
  if type(weights).execute is not NormalizationParamState.execute:
    # a user's own parameter type: apply it to the normalized input
    return jnp.asarray(weights.execute(centered * mul), dtype)
  # The scale folds into the per-feature factor first, so that the forward and
  # backward passes make two fewer full-size passes over ``x`` (as Flax does).
  param = weights.value
  if 'scale' in param:
    mul = mul * param['scale']
  y = centered * mul
  if 'bias' in param:
    y = y + param['bias']
  return jnp.asarray(y, dtype)


def _scalar(value, dtype):
  """A NumPy scalar of ``dtype`` (static for nnx, exact like a 0-d array)."""
  return np.asarray(value, dtype=dtype)[()]


class _BatchNorm(Module):
  num_spatial_dims: int

  def __init__(
    self,
    in_size,
    feature_axis=-1,
    *,
    track_running_stats: bool = True,
    epsilon: float = 1e-5,
    momentum: float = 0.99,
    affine: bool = True,
    bias_initializer: Union[Any, Callable] = init.Constant(0.),
    scale_initializer: Union[Any, Callable] = init.Constant(1.),
    axis_name: Optional[Union[str, Sequence[str]]] = None,
    axis_index_groups: Optional[Sequence[Sequence[int]]] = None,
    use_fast_variance: bool = True,
    name: Optional[str] = None,
    dtype: Any = None,
    param_type: type = NormalizationParamState,
    mean_type: type = BatchState,
  ):
    super().__init__(name=name)
    in_size = _size_tuple(in_size)
    self.in_size = in_size
    self.out_size = in_size
    self.affine = affine
    self.bias_initializer = bias_initializer
    self.scale_initializer = scale_initializer
    self.dtype = dtype or environ.dftype()
    self.track_running_stats = track_running_stats
    self.momentum = _scalar(momentum, self.dtype)
    self.epsilon = _scalar(epsilon, self.dtype)
    self.use_fast_variance = use_fast_variance
    self.feature_axes = _canonical_axes(len(in_size), _as_axes(feature_axis))
    self.axis_name = axis_name
    self.axis_index_groups = axis_index_groups
    # Flax's switch (set by nnx.Module.train() / .eval()); None: environ ``fit``
    self.use_running_average = None

    shape = _feature_shape(in_size, self.feature_axes)
    if track_running_stats:
      self.running_mean = mean_type(jnp.zeros(shape, dtype=self.dtype))
      self.running_var = mean_type(jnp.ones(shape, dtype=self.dtype))
    else:
      self.running_mean = None
      self.running_var = None
    if affine:
      if not track_running_stats:
        raise AssertionError(
          'Affine parameters are not needed when track_running_stats is False '
          '(pass affine=False too).'
        )
      bias = init.param(bias_initializer, shape)
      scale = init.param(scale_initializer, shape)
      self.weight = param_type(dict(bias=bias, scale=scale))
    else:
      self.weight = None

  def update(self, x, mask: Optional[jax.Array] = None):
    n = self.num_spatial_dims
    if x.ndim == n + 2:
      batched, x_shape = True, x.shape[1:]
    elif x.ndim == n + 1:
      batched, x_shape = False, x.shape
    else:
      raise ValueError(
        f'expected {n + 2}D (with batch) or {n + 1}D (without batch) input '
        f'(got {x.ndim}D input, {x.shape})'
      )
    if tuple(self.in_size) != tuple(x_shape):
      raise ValueError(f'The expected input shape is {self.in_size}, while we got {x_shape}.')
    offset = 1 if batched else 0
    reduction_axes = tuple(i for i in range(x.ndim) if i - offset not in self.feature_axes)

    if self.use_running_average is None:
      fit = environ.get('fit', desc=_FIT_DESC)
    else:
      fit = not self.use_running_average
    if self.track_running_stats:
      if fit:
        mean, var = _stats(x, reduction_axes, self.dtype, self.axis_name,
                           self.axis_index_groups,
                           use_fast_variance=self.use_fast_variance, mask=mask)
        m = self.momentum
        self.running_mean.value = m * self.running_mean.value + (1 - m) * mean
        self.running_var.value = m * self.running_var.value + (1 - m) * var
      else:
        mean, var = self.running_mean.value, self.running_var.value
      return _normalize(x, mean, var, self.weight, reduction_axes, self.dtype, self.epsilon)
    return jnp.asarray(x, self.dtype)


class BatchNorm0d(_BatchNorm):
  """Batch normalization of feature vectors, ``(N, C)`` or unbatched ``(C,)``.

  While ``environ`` ``fit`` is True the batch statistics normalize the input
  and update ``running_mean`` / ``running_var`` (``r <- momentum * r + (1 -
  momentum) * batch``); while it is False the running statistics are used.
  Flax's ``model.train()`` / ``model.eval()`` set ``use_running_average``
  (default ``None``), which then overrides ``fit``.

  Args:
    in_size: the input shape without the batch axis.
    feature_axis: the feature axis (or axes) of ``in_size``.
    track_running_stats, epsilon, momentum, affine: as in BrainState
      (``momentum=0.99`` weights the *old* value).
    bias_initializer, scale_initializer: initializers of ``weight``.
    axis_name, axis_index_groups: average the statistics across mapped devices.
    dtype, param_type, mean_type: the computation dtype and the State types.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> bn = brainstate.nn.BatchNorm0d(3)
    >>> x = jnp.array([[1., 2., 3.], [3., 4., 7.]])
    >>> with brainstate.environ.context(fit=True):
    ...   y = bn(x)
    >>> y.round(3)
    Array([[-1., -1., -1.],
           [ 1.,  1.,  1.]], dtype=float32)
    >>> bn.running_mean.value.round(3)
    Array([0.02, 0.03, 0.05], dtype=float32)
  """
  num_spatial_dims = 0


class BatchNorm1d(_BatchNorm):
  """Batch normalization of sequences, ``(N, L, C)`` or unbatched ``(L, C)``.

  Statistics are per channel, over batch and length (see :class:`BatchNorm0d`).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> bn = brainstate.nn.BatchNorm1d(in_size=(10, 4))
    >>> with brainstate.environ.context(fit=True):
    ...   bn(jnp.ones((8, 10, 4))).shape
    (8, 10, 4)
    >>> bn.running_mean.value.shape
    (1, 4)
  """
  num_spatial_dims = 1


class BatchNorm2d(_BatchNorm):
  """Batch normalization of images, ``(N, H, W, C)`` or unbatched ``(H, W, C)``.

  Statistics are per channel, over batch, height and width (see
  :class:`BatchNorm0d`). Maps to ``nnx.BatchNorm(C)``: ``weight['scale']`` /
  ``weight['bias']`` / ``running_mean`` / ``running_var`` of shape ``(1, 1, C)``
  are Flax's ``scale`` / ``bias`` / ``mean`` / ``var`` of shape ``(C,)``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> bn = brainstate.nn.BatchNorm2d(in_size=(4, 4, 3))
    >>> with brainstate.environ.context(fit=False):
    ...   bn(jnp.ones((2, 4, 4, 3))).shape
    (2, 4, 4, 3)
  """
  num_spatial_dims = 2


class BatchNorm3d(_BatchNorm):
  """Batch normalization of volumes, ``(N, D, H, W, C)`` or unbatched ``(D, H, W, C)``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> bn = brainstate.nn.BatchNorm3d(in_size=(2, 2, 2, 3))
    >>> sorted(bn.states().keys())
    [('running_mean',), ('running_var',), ('weight',)]
  """
  num_spatial_dims = 3


class LayerNorm(Module):
  """Layer normalization: each sample normalized over ``reduction_axes``.

  ``y = (x - mean) / sqrt(var + epsilon) * scale + bias`` with ``scale``/``bias``
  of the feature shape in ``weight``. The same in training and evaluation.
  Maps to ``nnx.LayerNorm(C)`` (``weight['scale']`` / ``weight['bias']`` are
  Flax's ``scale`` / ``bias``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> ln = brainstate.nn.LayerNorm(4)
    >>> [round(v, 3) for v in ln(jnp.array([1., 2., 3., 4.])).tolist()]
    [-1.342, -0.447, 0.447, 1.342]
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    in_size,
    reduction_axes=-1,
    feature_axes=-1,
    *,
    epsilon: float = 1e-6,
    use_bias: bool = True,
    use_scale: bool = True,
    bias_init: Callable = init.ZeroInit(),
    scale_init: Callable = init.Constant(1.0),
    axis_name: Optional[str] = None,
    axis_index_groups: Any = None,
    use_fast_variance: bool = True,
    dtype: Any = None,
    param_type: type = NormalizationParamState,
  ):
    super().__init__()
    in_size = _size_tuple(in_size)
    self.in_size = in_size
    self.out_size = in_size
    self.feature_axes = _canonical_axes(len(in_size), _as_axes(feature_axes))
    self.reduction_axes = _as_axes(reduction_axes)
    self.axis_name = axis_name
    self.axis_index_groups = axis_index_groups
    shape = _feature_shape(in_size, self.feature_axes)
    weights = {}
    if use_scale:
      weights['scale'] = init.param(scale_init, shape)
    if use_bias:
      weights['bias'] = init.param(bias_init, shape)
    self.weight = param_type(weights) if weights else None
    self.epsilon = epsilon
    self.dtype = dtype or environ.dftype()
    self.use_bias = use_bias
    self.use_scale = use_scale
    self.bias_init = bias_init
    self.scale_init = scale_init
    self.use_fast_variance = use_fast_variance

  def update(self, x, *, mask: Optional[jax.Array] = None):
    mean, var = _stats(x, self.reduction_axes, self.dtype, self.axis_name,
                       self.axis_index_groups, use_fast_variance=self.use_fast_variance,
                       mask=mask)
    return _normalize(x, mean, var, self.weight, self.reduction_axes, self.dtype,
                      self.epsilon)


class RMSNorm(Module):
  """Root-mean-square normalization: ``x / sqrt(mean(x**2) + epsilon) * scale``.

  No centring and no bias; ``scale`` is a ParamState ``{'scale': ...}``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> rms = brainstate.nn.RMSNorm(2)
    >>> [round(v, 3) for v in rms(jnp.array([3., 4.])).tolist()]
    [0.849, 1.131]
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    in_size,
    *,
    epsilon: float = 1e-6,
    dtype: Any = None,
    use_scale: bool = True,
    scale_init: Callable = init.Constant(1.0),
    reduction_axes=-1,
    feature_axes=-1,
    axis_name: Optional[str] = None,
    axis_index_groups: Any = None,
    use_fast_variance: bool = True,
    param_type: type = NormalizationParamState,
  ):
    super().__init__()
    in_size = _size_tuple(in_size)
    self.in_size = in_size
    self.out_size = in_size
    self.feature_axes = _canonical_axes(len(in_size), _as_axes(feature_axes))
    self.reduction_axes = _as_axes(reduction_axes)
    self.axis_name = axis_name
    self.axis_index_groups = axis_index_groups
    shape = _feature_shape(in_size, self.feature_axes)
    self.scale = (param_type({'scale': init.param(scale_init, shape)})
                  if use_scale else None)
    self.epsilon = epsilon
    self.dtype = dtype or environ.dftype()
    self.use_scale = use_scale
    self.scale_init = scale_init
    self.use_fast_variance = use_fast_variance

  def update(self, x, *, mask: Optional[jax.Array] = None):
    mean, var = _stats(x, self.reduction_axes, self.dtype, self.axis_name,
                       self.axis_index_groups, use_mean=False,
                       use_fast_variance=self.use_fast_variance, mask=mask)
    return _normalize(x, mean, var, self.scale, self.reduction_axes, self.dtype,
                      self.epsilon)


class GroupNorm(Module):
  """Group normalization: channels split into groups, each normalized per sample.

  Give ``num_groups`` (default 32) or ``group_size`` (then pass
  ``num_groups=None``). By default the statistics of a group are taken over
  all axes but the first (the batch axis) and the channel axis.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> gn = brainstate.nn.GroupNorm(in_size=6, num_groups=3)   # 6 channels
    >>> gn.group_size
    2
    >>> gn(jnp.arange(60.).reshape(2, 5, 6)).shape
    (2, 5, 6)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    in_size,
    feature_axis=-1,
    num_groups: Optional[int] = 32,
    group_size: Optional[int] = None,
    *,
    epsilon: float = 1e-6,
    dtype: Any = None,
    use_bias: bool = True,
    use_scale: bool = True,
    bias_init: Callable = init.ZeroInit(),
    scale_init: Callable = init.Constant(1.),
    reduction_axes=None,
    axis_name: Optional[str] = None,
    axis_index_groups: Any = None,
    use_fast_variance: bool = True,
    param_type: type = NormalizationParamState,
  ):
    super().__init__()
    in_size = _size_tuple(in_size)
    self.in_size = in_size
    self.out_size = in_size
    self.feature_axes = _canonical_axes(len(in_size), _as_axes(feature_axis))
    self.reduction_axes = _as_axes(reduction_axes)
    self.axis_name = axis_name
    self.axis_index_groups = axis_index_groups
    if (num_groups is None) == (group_size is None):
      raise ValueError(
        'Either `num_groups` or `group_size` should be specified. If '
        '`group_size` is to be specified, pass `num_groups=None` as argument '
        'to override the default `num_groups` value of 32.'
      )
    shape = _feature_shape(in_size, self.feature_axes)
    if len(shape) != 1:
      raise AssertionError(
        f'GroupNorm only supports 1D feature axis (the feature shape is {shape}; '
        'give a 1-D in_size, e.g. the number of channels).'
      )
    channels = shape[0]
    if group_size is not None:
      if channels % group_size != 0:
        raise ValueError(f'Number of features ({channels}) is not multiple of the '
                         f'group size ({group_size}).')
      self.num_groups = channels // group_size
      self.group_size = group_size
    else:
      if not isinstance(num_groups, int) or num_groups <= 0 or channels % num_groups:
        raise ValueError(f'Number of groups ({num_groups}) does not divide the number '
                         f'of channels ({channels}).')
      self.num_groups = num_groups
      self.group_size = channels // num_groups
    weights = {}
    if use_scale:
      weights['scale'] = init.param(scale_init, shape)
    if use_bias:
      weights['bias'] = init.param(bias_init, shape)
    self.weight = param_type(weights) if weights else None
    self.epsilon = epsilon
    self.dtype = dtype
    self.use_bias = use_bias
    self.use_scale = use_scale
    self.bias_init = bias_init
    self.scale_init = scale_init
    self.use_fast_variance = use_fast_variance

  def update(self, x, *, mask: Optional[jax.Array] = None):
    axes = self.reduction_axes
    if axes is None:
      axes = list(range(1, x.ndim - 1)) + [-1]
    axes = _canonical_axes(x.ndim, axes)
    grouped = x.reshape(x.shape[:-1] + (self.num_groups, self.group_size))
    if mask is not None:
      mask = mask.reshape(mask.shape[:-1] + (self.num_groups, self.group_size))
    mean, var = _stats(grouped, list(axes[:-1]) + [-1], self.dtype, self.axis_name,
                       self.axis_index_groups, use_fast_variance=self.use_fast_variance,
                       mask=mask)
    mean = jnp.repeat(mean, self.group_size, axis=1)
    var = jnp.repeat(var, self.group_size, axis=1)
    return _normalize(x, mean, var, self.weight, axes[:-1], self.dtype, self.epsilon)


for _name in ('BatchNorm0d', 'BatchNorm1d', 'BatchNorm2d', 'BatchNorm3d'):
  globals()[_name].__module__ = 'brainstate_nnx.nn'
del _name
