"""Convolutions: BrainState's ``Conv{1,2,3}d``, ``ScaledWSConv{1,2,3}d`` and
``ConvTranspose{1,2,3}d``.

Layout, as in BrainState: inputs are channels-last ``(batch, *spatial, C)``
(or ``(batch, C, *spatial)`` with ``channel_first=True``); the batch axis is
optional. Kernels are ``(*kernel_size, C_in // groups, C_out)`` (``HWIO``, the
layout of ``nnx.Conv``'s ``kernel``) and, for transposed convolutions,
``(*kernel_size, C_out, C_in // groups)``. Parameters live in one
``ParamState`` ``weight`` holding ``{'weight': kernel, 'bias': b}`` where the
bias has the broadcast shape ``(1, ..., 1, C_out)`` (``(1, C_out, 1, ...)``
channels-first).
"""

from __future__ import annotations

import collections.abc
import math
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp

from .._state import ParamState
from . import init as init
from ._module import Module
from ._weight_standardization import weight_standardization

__all__ = [
  'Conv1d', 'Conv2d', 'Conv3d',
  'ScaledWSConv1d', 'ScaledWSConv2d', 'ScaledWSConv3d',
  'ConvTranspose1d', 'ConvTranspose2d', 'ConvTranspose3d',
]


def to_dimension_numbers(num_spatial_dims: int, channels_last: bool,
                         transpose: bool) -> jax.lax.ConvDimensionNumbers:
  """``lax`` dimension numbers for this module family's layouts."""
  n = num_spatial_dims + 2
  if channels_last:
    image = (0, n - 1) + tuple(range(1, n - 1))
  else:
    image = (0, 1) + tuple(range(2, n))
  spatial = tuple(range(n - 2))
  # kernel spec is (out-feature dim, in-feature dim, *spatial)
  kernel = ((n - 2, n - 1) if transpose else (n - 1, n - 2)) + spatial
  return jax.lax.ConvDimensionNumbers(lhs_spec=image, rhs_spec=kernel, out_spec=image)


def replicate(element, num_replicate: int, name: str) -> tuple:
  """``element`` as a tuple of ``num_replicate`` entries (a scalar is repeated)."""
  if isinstance(element, (str, bytes)) or not isinstance(element, collections.abc.Sequence):
    return (element,) * num_replicate
  if len(element) == 1:
    return tuple(element) * num_replicate
  if len(element) == num_replicate:
    return tuple(element)
  raise TypeError(f'{name} must be a scalar or sequence of length 1 or '
                  f'sequence of length {num_replicate}.')


def _bias_shape(num_spatial_dims: int, out_channels: int, channel_first: bool) -> tuple:
  if channel_first:
    return (1, out_channels) + (1,) * num_spatial_dims
  return (1,) * num_spatial_dims + (out_channels,)


def _transpose_pads(k: int, s: int, padding: str) -> Tuple[int, int]:
  """Padding that makes an input-dilated convolution a transposed convolution
  with ``lax.conv_transpose``'s output size (``in * s`` for SAME,
  ``(in - 1) * s + k`` for VALID)."""
  if padding == 'SAME':
    total = k + s - 2
    before = k - 1 if s > k - 1 else math.ceil(total / 2)
  elif padding == 'VALID':
    total = k + s - 2 + max(k - s, 0)
    before = k - 1
  else:
    raise ValueError(f'Invalid padding mode: {padding}')
  return before, total - before


class _BaseConv(Module):
  """Shared argument handling of the convolution family."""

  num_spatial_dims: int = None

  # -- construction helpers ---------------------------------------------------
  def _init_common(self, in_size, out_channels, kernel_size, stride, channel_first):
    nd = self.num_spatial_dims
    if nd + 1 != len(in_size):
      raise ValueError(
        f'in_size must have {nd + 1} entries ({nd} spatial dimensions plus the channel '
        f'dimension), but got {tuple(in_size)} with length {len(in_size)}.'
      )
    self.in_size = tuple(in_size)
    self.channel_first = channel_first
    self.channels_last = not channel_first
    self.in_channels = in_size[0] if channel_first else in_size[-1]
    self.out_channels = out_channels
    self.stride = replicate(stride, nd, 'stride')
    self.kernel_size = replicate(kernel_size, nd, 'kernel_size')

  def _check_groups(self):
    if self.out_channels % self.groups != 0:
      raise ValueError(f'"out_channels" ({self.out_channels}) should be divisible by '
                       f'groups ({self.groups})')
    if self.in_channels % self.groups != 0:
      raise ValueError(f'"in_channels" ({self.in_channels}) should be divisible by '
                       f'groups ({self.groups})')

  def _parse_padding(self, padding):
    """``(padding, mode)``: ``'SAME'``/``'VALID'`` or one ``(low, high)`` pair
    per spatial dimension (mode ``'explicit'``)."""
    nd = self.num_spatial_dims
    if isinstance(padding, str):
      if padding not in ('SAME', 'VALID'):
        raise ValueError(f"String padding must be 'SAME' or 'VALID', got {padding!r}.")
      return padding, padding
    if isinstance(padding, int):
      return tuple((padding, padding) for _ in range(nd)), 'explicit'
    if isinstance(padding, (tuple, list)):
      if len(padding) == 0:
        raise ValueError(
          'Padding sequence must not be empty; expected an int, a Tuple[int, int], '
          f'or a sequence of Tuple[int, int] with length 1 or {nd}.'
        )
      first = padding[0]
      if isinstance(first, int):
        if nd == 1 and len(padding) == 2:
          return (tuple(padding),), 'explicit'
        if len(padding) == nd:
          return tuple((p, p) for p in padding), 'explicit'
        raise ValueError(f'Integer padding tuple {padding} must have length {nd} '
                         f'(one value per spatial dim).')
      if isinstance(first, (tuple, list)):
        if len(padding) == 1:
          return tuple(padding) * nd, 'explicit'
        if len(padding) != nd:
          raise ValueError(
            f'Padding {padding} must be a Tuple[int, int], or sequence of '
            f'Tuple[int, int] with length 1, or sequence of Tuple[int, int] with length {nd}.'
          )
        return tuple(padding), 'explicit'
      raise ValueError(
        f'Padding {padding} must be a Tuple[int, int], or a sequence of Tuple[int, int]; '
        f'got element of type {type(first).__name__}.'
      )
    raise ValueError(
      "Padding must be a string ('SAME'/'VALID'), an int, a Tuple[int, int], or a "
      f'sequence of Tuple[int, int]; got {type(padding).__name__}.'
    )

  def _make_params(self, w_init, b_init):
    self.w_initializer = w_init
    self.b_initializer = b_init
    weight = init.param(w_init, self.kernel_shape, allow_none=False)
    params = dict(weight=weight)
    if b_init is not None:
      params['bias'] = init.param(
        b_init, _bias_shape(self.num_spatial_dims, self.out_channels, self.channel_first),
        allow_none=True)
    return params

  def _infer_out_size(self, params):
    x = jax.ShapeDtypeStruct((128,) + self.in_size, params['weight'].dtype)
    out = jax.eval_shape(self._conv_op, x, params).shape[1:]
    spatial = out[1:] if self.channel_first else out[:-1]
    if any(d <= 0 for d in spatial):
      raise ValueError(
        f'{type(self).__name__}: the (dilated) kernel {self.kernel_size} does not fit the '
        f'input {self.in_size} with padding {self.padding!r}: the output would have shape '
        f'{tuple(out)}. Use a smaller kernel_size, padding="SAME" or a larger input.'
      )
    self.out_size = out

  # -- calling ----------------------------------------------------------------
  def _check_input_dim(self, x):
    nd = self.num_spatial_dims
    if x.ndim == nd + 2:
      shape = x.shape[1:]
    elif x.ndim == nd + 1:
      shape = x.shape
    else:
      raise ValueError(f'expected {nd + 2}D (with batch) or {nd + 1}D (without batch) '
                       f'input (got {x.ndim}D input, {x.shape})')
    if tuple(shape) != self.in_size:
      raise ValueError(f'The expected input shape is {self.in_size}, while we got {shape}.')

  def update(self, x):
    self._check_input_dim(x)
    unbatched = x.ndim == self.num_spatial_dims + 1
    if unbatched:
      x = jnp.expand_dims(x, 0)
    y = self._conv_op(x, self.weight.value)
    return jnp.squeeze(y, axis=0) if unbatched else y

  def _kernel(self, params):
    return params['weight']

  def _conv_op(self, x, params):
    w = self._kernel(params)
    if self.w_mask is not None:
      w = w * self.w_mask
    y = jax.lax.conv_general_dilated(
      lhs=x,
      rhs=w,
      window_strides=self.stride,
      padding=self.padding,
      lhs_dilation=self.lhs_dilation,
      rhs_dilation=self.rhs_dilation,
      feature_group_count=self.groups,
      dimension_numbers=self.dimension_numbers,
    )
    if 'bias' in params:
      y = y + params['bias']
    return y


class _Conv(_BaseConv):

  def __init__(
    self,
    in_size: Sequence[int],
    out_channels: int,
    kernel_size: Union[int, Tuple[int, ...]],
    stride: Union[int, Tuple[int, ...]] = 1,
    padding: Union[str, int, Tuple[int, int], Sequence[Tuple[int, int]]] = 'SAME',
    lhs_dilation: Union[int, Tuple[int, ...]] = 1,
    rhs_dilation: Union[int, Tuple[int, ...]] = 1,
    groups: int = 1,
    w_init: Union[Callable, Any] = init.XavierNormal(),
    b_init: Optional[Union[Callable, Any]] = None,
    w_mask: Optional[Union[Any, Callable]] = None,
    channel_first: bool = False,
    name: str = None,
    param_type: type = ParamState,
  ):
    super().__init__(name=name)
    self._setup(in_size, out_channels, kernel_size, stride, padding, lhs_dilation,
                rhs_dilation, groups, w_mask, channel_first)
    params = self._make_params(w_init, b_init)
    self._finish(params, param_type)

  def _setup(self, in_size, out_channels, kernel_size, stride, padding, lhs_dilation,
             rhs_dilation, groups, w_mask, channel_first):
    nd = self.num_spatial_dims
    self._init_common(in_size, out_channels, kernel_size, stride, channel_first)
    self.lhs_dilation = replicate(lhs_dilation, nd, 'lhs_dilation')
    self.rhs_dilation = replicate(rhs_dilation, nd, 'rhs_dilation')
    self.groups = groups
    self.dimension_numbers = to_dimension_numbers(nd, channels_last=self.channels_last,
                                                  transpose=False)
    self.padding, _ = self._parse_padding(padding)
    self._check_groups()
    self.kernel_shape = tuple(self.kernel_size) + (self.in_channels // self.groups,
                                                   self.out_channels)
    self.w_mask = init.param(w_mask, self.kernel_shape, allow_none=True)

  def _finish(self, params, param_type):
    self.weight = param_type(params)
    self._infer_out_size(params)


class Conv1d(_Conv):
  """1-D convolution over ``(batch, length, C)`` inputs (batch optional).

  Args:
    in_size: ``(length, C_in)`` (``(C_in, length)`` with ``channel_first``).
    out_channels: number of output channels.
    kernel_size, stride, lhs_dilation, rhs_dilation: an int or one per spatial axis.
    padding: ``'SAME'`` (default), ``'VALID'``, an int, ``(low, high)`` or a
      sequence of such pairs.
    groups: grouped convolution (``in`` and ``out`` channels divisible by it).
    w_init: kernel initializer (default ``XavierNormal()``); kernel shape
      ``(k, C_in // groups, C_out)``.
    b_init: bias initializer (default ``None``: no bias).
    w_mask: array multiplied into the kernel on every call.
    channel_first: channels before the spatial axes.

  ``out_size`` is inferred at construction. A kernel that does not fit the
  (padded) input raises ``ValueError`` there (BrainState builds a layer with
  an empty output instead).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> conv = brainstate.nn.Conv1d((16, 3), out_channels=4, kernel_size=3)
    >>> conv(jnp.ones((2, 16, 3))).shape, conv.out_size
    ((2, 16, 4), (16, 4))
  """

  __module__ = 'brainstate_nnx.nn'
  num_spatial_dims: int = 1


class Conv2d(_Conv):
  """2-D convolution over ``(batch, H, W, C)`` inputs (batch optional).

  Arguments as :class:`Conv1d`, with ``in_size=(H, W, C_in)`` (``(C_in, H,
  W)`` with ``channel_first``) and kernel shape ``(kh, kw, C_in // groups,
  C_out)``, which is ``nnx.Conv``'s kernel layout.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> conv = brainstate.nn.Conv2d((8, 8, 3), 4, kernel_size=3, stride=2, padding='VALID')
    >>> conv(jnp.ones((8, 8, 3))).shape
    (3, 3, 4)
  """

  __module__ = 'brainstate_nnx.nn'
  num_spatial_dims: int = 2


class Conv3d(_Conv):
  """3-D convolution over ``(batch, H, W, D, C)`` inputs (batch optional).

  Arguments as :class:`Conv1d`, with ``in_size=(H, W, D, C_in)``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> conv = brainstate.nn.Conv3d((4, 4, 4, 2), 3, kernel_size=2, b_init=brainstate.nn.init.ZeroInit())
    >>> conv(jnp.ones((1, 4, 4, 4, 2))).shape
    (1, 4, 4, 4, 3)
  """

  __module__ = 'brainstate_nnx.nn'
  num_spatial_dims: int = 3


class _ScaledWSConv(_Conv):

  def __init__(
    self,
    in_size: Sequence[int],
    out_channels: int,
    kernel_size: Union[int, Tuple[int, ...]],
    stride: Union[int, Tuple[int, ...]] = 1,
    padding: Union[str, int, Tuple[int, int], Sequence[Tuple[int, int]]] = 'SAME',
    lhs_dilation: Union[int, Tuple[int, ...]] = 1,
    rhs_dilation: Union[int, Tuple[int, ...]] = 1,
    groups: int = 1,
    ws_gain: bool = True,
    eps: float = 1e-4,
    w_init: Union[Callable, Any] = init.XavierNormal(),
    b_init: Optional[Union[Callable, Any]] = None,
    w_mask: Optional[Union[Any, Callable]] = None,
    channel_first: bool = False,
    name: str = None,
    param_type: type = ParamState,
  ):
    Module.__init__(self, name=name)
    self._setup(in_size, out_channels, kernel_size, stride, padding, lhs_dilation,
                rhs_dilation, groups, w_mask, channel_first)
    params = self._make_params(w_init, b_init)
    if ws_gain:
      params['gain'] = jnp.ones((1,) * len(self.kernel_size) + (1, self.out_channels),
                                dtype=params['weight'].dtype)
    self.eps = eps
    self._finish(params, param_type)

  def _kernel(self, params):
    return weight_standardization(params['weight'], self.eps, params.get('gain', None))


class ScaledWSConv1d(_ScaledWSConv):
  """:class:`Conv1d` whose kernel is weight-standardized on every call.

  Extra arguments: ``ws_gain`` (a learnable per-output-channel gain, default
  ``True``) and ``eps`` (the variance floor, default ``1e-4``); see
  :func:`weight_standardization`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> conv = brainstate.nn.ScaledWSConv1d((10, 2), 3, kernel_size=3)
    >>> conv(jnp.ones((10, 2))).shape, conv.weight.value['gain'].shape
    ((10, 3), (1, 1, 3))
  """

  __module__ = 'brainstate_nnx.nn'
  num_spatial_dims: int = 1


class ScaledWSConv2d(_ScaledWSConv):
  """:class:`Conv2d` with a weight-standardized kernel (see :class:`ScaledWSConv1d`).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> conv = brainstate.nn.ScaledWSConv2d((6, 6, 2), 4, kernel_size=3)
    >>> conv(jnp.ones((1, 6, 6, 2))).shape
    (1, 6, 6, 4)
  """

  __module__ = 'brainstate_nnx.nn'
  num_spatial_dims: int = 2


class ScaledWSConv3d(_ScaledWSConv):
  """:class:`Conv3d` with a weight-standardized kernel (see :class:`ScaledWSConv1d`).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> conv = brainstate.nn.ScaledWSConv3d((4, 4, 4, 1), 2, kernel_size=2)
    >>> conv(jnp.ones((4, 4, 4, 1))).shape
    (4, 4, 4, 2)
  """

  __module__ = 'brainstate_nnx.nn'
  num_spatial_dims: int = 3


class _ConvTranspose(_BaseConv):

  def __init__(
    self,
    in_size: Sequence[int],
    out_channels: int,
    kernel_size: Union[int, Tuple[int, ...]],
    stride: Union[int, Tuple[int, ...]] = 1,
    padding: Union[str, int, Tuple[int, int], Sequence[Tuple[int, int]]] = 'SAME',
    rhs_dilation: Union[int, Tuple[int, ...]] = 1,
    groups: int = 1,
    w_init: Union[Callable, Any] = init.XavierNormal(),
    b_init: Optional[Union[Callable, Any]] = None,
    w_mask: Optional[Union[Any, Callable]] = None,
    channel_first: bool = False,
    name: str = None,
    param_type: type = ParamState,
  ):
    super().__init__(name=name)
    nd = self.num_spatial_dims
    self._init_common(in_size, out_channels, kernel_size, stride, channel_first)
    self.rhs_dilation = replicate(rhs_dilation, nd, 'rhs_dilation')
    self.groups = groups
    self.dimension_numbers = to_dimension_numbers(nd, channels_last=self.channels_last,
                                                  transpose=True)
    padding, self.padding_mode = self._parse_padding(padding)
    self.padding = padding
    self._check_groups()
    self.kernel_shape = tuple(self.kernel_size) + (self.out_channels,
                                                   self.in_channels // self.groups)
    self.w_mask = init.param(w_mask, self.kernel_shape, allow_none=True)
    params = self._make_params(w_init, b_init)
    self.weight = param_type(params)
    self._infer_out_size(params)

  def _explicit_padding(self):
    if self.padding in ('SAME', 'VALID'):
      return tuple(
        _transpose_pads((k - 1) * d + 1, s, self.padding)
        for k, s, d in zip(self.kernel_size, self.stride, self.rhs_dilation)
      )
    return self.padding

  def _conv_op(self, x, params):
    w = params['weight']
    if self.w_mask is not None:
      w = w * self.w_mask
    w = jnp.flip(w, axis=tuple(range(self.num_spatial_dims)))
    y = jax.lax.conv_general_dilated(
      lhs=x,
      rhs=w,
      window_strides=(1,) * self.num_spatial_dims,
      padding=self._explicit_padding(),
      lhs_dilation=self.stride,
      rhs_dilation=self.rhs_dilation,
      feature_group_count=self.groups,
      dimension_numbers=self.dimension_numbers,
    )
    if 'bias' in params:
      y = y + params['bias']
    return y


class ConvTranspose1d(_ConvTranspose):
  """1-D transposed convolution ("deconvolution"), upsampling by ``stride``.

  With ``'SAME'`` padding the output length is ``length * stride``, with
  ``'VALID'`` it is ``(length - 1) * stride + k`` (as ``lax.conv_transpose``).
  The kernel has shape ``(k, C_out, C_in // groups)``. Other arguments as
  :class:`Conv1d` (there is no ``lhs_dilation``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> up = brainstate.nn.ConvTranspose1d((5, 3), 2, kernel_size=3, stride=2)
    >>> up(jnp.ones((1, 5, 3))).shape
    (1, 10, 2)
  """

  __module__ = 'brainstate_nnx.nn'
  num_spatial_dims: int = 1


class ConvTranspose2d(_ConvTranspose):
  """2-D transposed convolution (see :class:`ConvTranspose1d`).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> up = brainstate.nn.ConvTranspose2d((4, 4, 3), 2, kernel_size=3, stride=2)
    >>> up(jnp.ones((4, 4, 3))).shape
    (8, 8, 2)
  """

  __module__ = 'brainstate_nnx.nn'
  num_spatial_dims: int = 2


class ConvTranspose3d(_ConvTranspose):
  """3-D transposed convolution (see :class:`ConvTranspose1d`).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> up = brainstate.nn.ConvTranspose3d((2, 2, 2, 1), 1, kernel_size=2, stride=2)
    >>> up(jnp.ones((2, 2, 2, 1))).shape
    (4, 4, 4, 1)
  """

  __module__ = 'brainstate_nnx.nn'
  num_spatial_dims: int = 3
