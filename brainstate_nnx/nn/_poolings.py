"""Pooling layers: max, average, Lp, max-unpooling and adaptive pooling in 1-3 D.

Inputs are channel-last by default: ``(*spatial, C)`` or ``(N, *spatial, C)``
(any number of leading axes). ``channel_axis`` names the channel axis
(``None``: there is none); the pooled axes are the last ``pool_dim`` axes
that are not the channel axis.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np

from ._module import Module

__all__ = [
  'AvgPool1d', 'AvgPool2d', 'AvgPool3d',
  'MaxPool1d', 'MaxPool2d', 'MaxPool3d',
  'MaxUnpool1d', 'MaxUnpool2d', 'MaxUnpool3d',
  'LPPool1d', 'LPPool2d', 'LPPool3d',
  'AdaptiveAvgPool1d', 'AdaptiveAvgPool2d', 'AdaptiveAvgPool3d',
  'AdaptiveMaxPool1d', 'AdaptiveMaxPool2d', 'AdaptiveMaxPool3d',
]

PaddingLike = Union[str, int, Tuple[int, ...], Sequence[Tuple[int, int]]]


# --------------------------------------------------------------------------
# argument checking
# --------------------------------------------------------------------------

def _int_tuple(value, pool_dim: int, what: str) -> tuple:
  """An int or a sequence of ``pool_dim`` ints, as a tuple."""
  if isinstance(value, int):
    return (value,) * pool_dim
  if isinstance(value, Sequence):
    if not isinstance(value, (tuple, list)):
      raise TypeError(f'{what} should be a tuple, but got {type(value)}')
    if not all(isinstance(v, int) for v in value):
      raise TypeError(f'{what} should be a tuple of ints. {value}')
    if len(value) != pool_dim:
      raise ValueError(f'{what} should a tuple with {pool_dim} ints, but got {len(value)}')
    return tuple(value)
  raise TypeError(f'{what} should be a int or a tuple with {pool_dim} ints.')


def _window_padding(padding, pool_dim: int):
  """``'SAME'``/``'VALID'`` or a list of ``(before, after)`` pairs."""
  if isinstance(padding, str):
    if padding not in ('SAME', 'VALID'):
      raise ValueError(f"Invalid padding '{padding}', must be 'SAME' or 'VALID'.")
    return padding
  if isinstance(padding, int):
    return [(padding, padding)] * pool_dim
  if isinstance(padding, (list, tuple)):
    if isinstance(padding[0], int):
      if len(padding) != pool_dim:
        raise ValueError(
          f'If padding is a sequence of ints, it should has the length of {pool_dim}.'
        )
      return [(p, p) for p in padding]
    if not all(isinstance(p, (tuple, list)) for p in padding):
      raise ValueError(f'padding should be sequence of Tuple[int, int]. {padding}')
    if not all(len(p) == 2 for p in padding):
      raise ValueError(f'Each entry in padding must be tuple of 2 ints. {padding} ')
    if len(padding) == 1:
      padding = tuple(padding) * pool_dim
    if len(padding) != pool_dim:
      raise ValueError(f'padding should has the length of {pool_dim}. {padding}')
    return padding
  raise ValueError(f'padding should be a str, int, or sequence, but got {type(padding)}')


def _check_channel_axis(channel_axis):
  if not (channel_axis is None or isinstance(channel_axis, int)):
    raise TypeError(f'channel_axis should be an int, but got {channel_axis}')
  return channel_axis


def _pooled_axes(ndim: int, channel_axis: Optional[int], pool_dim: int) -> list:
  """The axes pooled over: the last ``pool_dim`` axes other than the channel."""
  axes = list(range(ndim))
  if channel_axis is not None:
    if not -ndim <= channel_axis < ndim:
      raise ValueError(f'Invalid channel axis {channel_axis} for input with {ndim} dimensions')
    axes.pop(channel_axis % ndim)
  return axes[-pool_dim:]


def _per_axis(ndim, channel_axis, pool_dim, values, fill) -> list:
  """``values`` spread onto the pooled axes of an ``ndim``-D input."""
  out = [fill] * ndim
  for ax, v in zip(_pooled_axes(ndim, channel_axis, pool_dim), values):
    out[ax] = v
  return out


class _WindowPool(Module):
  """Common constructor of the sliding-window pools."""

  def __init__(self, pool_dim, kernel_size, stride, padding, channel_axis,
               name=None):
    super().__init__(name=name)
    self.pool_dim = pool_dim
    self.kernel_size = _int_tuple(kernel_size, pool_dim, 'kernel_size')
    self.stride = _int_tuple(self.kernel_size if stride is None else stride,
                             pool_dim, 'stride')
    self.padding = _window_padding(padding, pool_dim)
    self.channel_axis = _check_channel_axis(channel_axis)

  def _infer_out_size(self, in_size) -> None:
    if in_size is not None:
      from .. import environ

      in_size = tuple(in_size)
      self.in_size = in_size
      out = jax.eval_shape(self.update,
                           jax.ShapeDtypeStruct((128,) + in_size, environ.dftype()))
      out = out[0] if isinstance(out, tuple) else out
      self.out_size = out.shape[1:]

  def _window(self, x):
    """``(window, strides, padding)`` for ``lax.reduce_window`` on ``x``."""
    need = self.pool_dim + (0 if self.channel_axis is None else 1)
    if x.ndim < need:
      raise ValueError(
        f'Expected input with >= {need} dimensions, but got {x.ndim} '
        f'(shape {tuple(x.shape)}; {type(self).__name__} pools {self.pool_dim} '
        f'spatial axes{"" if self.channel_axis is None else " plus a channel axis"}).'
      )
    window = tuple(_per_axis(x.ndim, self.channel_axis, self.pool_dim, self.kernel_size, 1))
    strides = tuple(_per_axis(x.ndim, self.channel_axis, self.pool_dim, self.stride, 1))
    if isinstance(self.padding, str):
      pads = tuple(jax.lax.padtype_to_pads(x.shape, window, strides, self.padding))
    else:
      pads = tuple(_per_axis(x.ndim, self.channel_axis, self.pool_dim, self.padding, (0, 0)))
    for size, w, (lo, hi) in zip(x.shape, window, pads):
      if size + lo + hi < w:
        raise ValueError(
          f'{type(self).__name__}: kernel_size {self.kernel_size} is larger than the '
          f'(padded) input {tuple(x.shape)} along a pooled axis, so the output would '
          'be empty. Use a smaller kernel_size, more padding, or padding="SAME".'
        )
    return window, strides, pads


# --------------------------------------------------------------------------
# max / average
# --------------------------------------------------------------------------

class _MaxPool(_WindowPool):
  def __init__(self, init_value, computation, pool_dim, kernel_size, stride=None,
               padding='VALID', channel_axis=-1, return_indices=False, name=None,
               in_size=None):
    super().__init__(pool_dim, kernel_size, stride, padding, channel_axis, name=name)
    self.init_value = init_value
    self.computation = computation
    self.return_indices = return_indices
    self._infer_out_size(in_size)

  def update(self, x):
    window, strides, pads = self._window(x)
    if self.return_indices:
      return self._max_with_indices(x, window, strides, pads)
    return jax.lax.reduce_window(x, self.init_value, self.computation, window, strides, pads)

  def _max_with_indices(self, x, window, strides, pads):
    """Max pooling that also returns the flat index (into ``x``) of each maximum.

    Ties go to the smallest index; a window covering padding only gets index 0.
    """
    n = x.size
    positions = jnp.arange(n, dtype=jnp.int32).reshape(x.shape)

    def pick(a, b):
      (va, ia), (vb, ib) = a, b
      take_b = (vb > va) | ((vb == va) & (ib < ia))
      return jnp.where(take_b, vb, va), jnp.where(take_b, ib, ia)

    values, idx = jax.lax.reduce_window(
      (x, positions),
      (jnp.asarray(self.init_value, x.dtype), jnp.asarray(n, jnp.int32)),
      pick, window, strides, pads,
    )
    return values, jnp.where(idx == n, 0, idx).astype(jnp.int32)


class _AvgPool(_MaxPool):
  def update(self, x):
    window, strides, pads = self._window(x)
    padding = self.padding if isinstance(self.padding, str) else pads
    total = jax.lax.reduce_window(x, self.init_value, self.computation, window, strides, padding)
    if padding == 'VALID':
      return total / np.prod(window)
    # divide by the number of real (non-padding) entries of each window
    counts = jax.lax.reduce_window(jnp.ones_like(x), self.init_value, self.computation,
                                   window, strides, padding)
    return total / jnp.maximum(counts, 1)


def _max_pool_init(self, pool_dim, kernel_size, stride, padding, channel_axis,
                   return_indices, name, in_size):
  _MaxPool.__init__(self, -jnp.inf, jax.lax.max, pool_dim, kernel_size, stride, padding,
                    channel_axis, return_indices, name, in_size)


class MaxPool1d(_MaxPool):
  """1-D max pooling over the length axis of ``(L, C)`` / ``(N, L, C)`` inputs.

  ``stride`` defaults to ``kernel_size``; ``padding`` is ``'VALID'``, ``'SAME'``,
  an int or ``(before, after)`` pairs; with ``return_indices=True`` the call
  returns ``(values, flat indices into the input)`` for :class:`MaxUnpool1d`.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> pool = brainstate.nn.MaxPool1d(2)
    >>> pool(jnp.array([[1.], [3.], [2.], [0.]]))[:, 0]
    Array([3., 2.], dtype=float32)
  """

  def __init__(self, kernel_size, stride=None, padding: PaddingLike = 'VALID',
               channel_axis: Optional[int] = -1, return_indices: bool = False,
               name: Optional[str] = None, in_size=None):
    _max_pool_init(self, 1, kernel_size, stride, padding, channel_axis,
                   return_indices, name, in_size)


class MaxPool2d(_MaxPool):
  """2-D max pooling over height and width of ``(H, W, C)`` / ``(N, H, W, C)``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> pool = brainstate.nn.MaxPool2d(2, in_size=(4, 4, 3))
    >>> pool.out_size
    (2, 2, 3)
    >>> pool(jnp.ones((8, 4, 4, 3))).shape
    (8, 2, 2, 3)
  """

  def __init__(self, kernel_size, stride=None, padding: PaddingLike = 'VALID',
               channel_axis: Optional[int] = -1, return_indices: bool = False,
               name: Optional[str] = None, in_size=None):
    _max_pool_init(self, 2, kernel_size, stride, padding, channel_axis,
                   return_indices, name, in_size)


class MaxPool3d(_MaxPool):
  """3-D max pooling over depth, height and width (channel-last).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.MaxPool3d(2)(jnp.ones((4, 4, 4, 2))).shape
    (2, 2, 2, 2)
  """

  def __init__(self, kernel_size, stride=None, padding: PaddingLike = 'VALID',
               channel_axis: Optional[int] = -1, return_indices: bool = False,
               name: Optional[str] = None, in_size=None):
    _max_pool_init(self, 3, kernel_size, stride, padding, channel_axis,
                   return_indices, name, in_size)


def _avg_pool_init(self, pool_dim, kernel_size, stride, padding, channel_axis, name, in_size):
  _AvgPool.__init__(self, 0., jax.lax.add, pool_dim, kernel_size, stride, padding,
                    channel_axis, False, name, in_size)


class AvgPool1d(_AvgPool):
  """1-D average pooling. Note: ``stride`` defaults to 1 (as in BrainState).

  With padding, each window is averaged over its real entries only.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> pool = brainstate.nn.AvgPool1d(2, stride=2)
    >>> pool(jnp.array([[1.], [3.], [2.], [0.]]))[:, 0]
    Array([2., 1.], dtype=float32)
  """

  def __init__(self, kernel_size, stride=1, padding: PaddingLike = 'VALID',
               channel_axis: Optional[int] = -1, name: Optional[str] = None, in_size=None):
    _avg_pool_init(self, 1, kernel_size, stride, padding, channel_axis, name, in_size)


class AvgPool2d(_AvgPool):
  """2-D average pooling over height and width (``stride`` defaults to 1).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.AvgPool2d(2, stride=2)(jnp.ones((1, 4, 4, 3))).shape
    (1, 2, 2, 3)
  """

  def __init__(self, kernel_size, stride=1, padding: PaddingLike = 'VALID',
               channel_axis: Optional[int] = -1, name: Optional[str] = None, in_size=None):
    _avg_pool_init(self, 2, kernel_size, stride, padding, channel_axis, name, in_size)


class AvgPool3d(_AvgPool):
  """3-D average pooling over depth, height and width (``stride`` defaults to 1).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.AvgPool3d(2, stride=2)(jnp.ones((4, 4, 4, 1))).shape
    (2, 2, 2, 1)
  """

  def __init__(self, kernel_size, stride=1, padding: PaddingLike = 'VALID',
               channel_axis: Optional[int] = -1, name: Optional[str] = None, in_size=None):
    _avg_pool_init(self, 3, kernel_size, stride, padding, channel_axis, name, in_size)


# --------------------------------------------------------------------------
# Lp pooling
# --------------------------------------------------------------------------

class _LPPool(_WindowPool):
  def __init__(self, norm_type, pool_dim, kernel_size, stride=None, padding='VALID',
               channel_axis=-1, name=None, in_size=None):
    if not (norm_type > 0) or not np.isfinite(norm_type):
      raise ValueError(f'norm_type must be a positive finite number, got {norm_type}')
    super().__init__(pool_dim, kernel_size, stride, padding, channel_axis, name=name)
    self.norm_type = norm_type
    self._infer_out_size(in_size)

  def update(self, x):
    window, strides, pads = self._window(x)
    padding = self.padding if isinstance(self.padding, str) else pads
    total = jax.lax.reduce_window(jnp.abs(x) ** self.norm_type, 0., jax.lax.add,
                                  window, strides, padding)
    inv_p = 1.0 / self.norm_type
    scale = np.prod(self.kernel_size) ** (-inv_p)
    # (sum / N) ** (1/p); the root is never taken at 0 (its gradient is inf there)
    positive = total > 0
    root = jnp.where(positive, total, 1.0) ** inv_p
    return scale * jnp.where(positive, root, 0.0)


class LPPool1d(_LPPool):
  r"""1-D power-average pooling: :math:`(\frac{1}{N}\sum_{w} |x|^p)^{1/p}`.

  ``stride`` defaults to ``kernel_size``. ``p = norm_type`` must be positive and
  finite; ``p=1`` is average pooling of ``|x|``, large ``p`` approaches max
  pooling.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> pool = brainstate.nn.LPPool1d(2, kernel_size=2)
    >>> pool(jnp.array([[3.], [4.]]))[:, 0]
    Array([3.535534], dtype=float32)
  """

  def __init__(self, norm_type: float, kernel_size, stride=None,
               padding: PaddingLike = 'VALID', channel_axis: Optional[int] = -1,
               name: Optional[str] = None, in_size=None):
    super().__init__(norm_type, 1, kernel_size, stride, padding, channel_axis, name, in_size)


class LPPool2d(_LPPool):
  """2-D power-average pooling over height and width (see :class:`LPPool1d`).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.LPPool2d(2, kernel_size=2)(jnp.ones((4, 4, 3))).shape
    (2, 2, 3)
  """

  def __init__(self, norm_type: float, kernel_size, stride=None,
               padding: PaddingLike = 'VALID', channel_axis: Optional[int] = -1,
               name: Optional[str] = None, in_size=None):
    super().__init__(norm_type, 2, kernel_size, stride, padding, channel_axis, name, in_size)


class LPPool3d(_LPPool):
  """3-D power-average pooling over depth, height and width.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.LPPool3d(3, kernel_size=2)(jnp.ones((2, 4, 4, 4, 1))).shape
    (2, 2, 2, 2, 1)
  """

  def __init__(self, norm_type: float, kernel_size, stride=None,
               padding: PaddingLike = 'VALID', channel_axis: Optional[int] = -1,
               name: Optional[str] = None, in_size=None):
    super().__init__(norm_type, 3, kernel_size, stride, padding, channel_axis, name, in_size)


# --------------------------------------------------------------------------
# max unpooling
# --------------------------------------------------------------------------

class _MaxUnpool(Module):
  def __init__(self, pool_dim, kernel_size, stride=None, padding=0, channel_axis=-1,
               name=None, in_size=None):
    super().__init__(name=name)
    self.pool_dim = pool_dim
    self.kernel_size = _int_tuple(kernel_size, pool_dim, 'kernel_size')
    self.stride = _int_tuple(self.kernel_size if stride is None else stride,
                             pool_dim, 'stride')
    if isinstance(padding, int):
      padding = (padding,) * pool_dim
    elif isinstance(padding, (tuple, list)):
      if len(padding) != pool_dim:
        raise ValueError(f'padding should have {pool_dim} values, but got {len(padding)}')
    else:
      raise TypeError(f'padding should be int or tuple of {pool_dim} ints.')
    self.padding = padding
    self.channel_axis = _check_channel_axis(channel_axis)
    if in_size is not None:
      self.in_size = tuple(in_size)

  def _natural_shape(self, x) -> tuple:
    """The shape before pooling: where the stored flat indices point."""
    shape = list(x.shape)
    for i, ax in enumerate(_pooled_axes(x.ndim, self.channel_axis, self.pool_dim)):
      shape[ax] = ((x.shape[ax] - 1) * self.stride[i] - 2 * self.padding[i]
                   + self.kernel_size[i])
    return tuple(shape)

  def _requested_shape(self, x, output_size) -> tuple:
    axes = _pooled_axes(x.ndim, self.channel_axis, self.pool_dim)
    if isinstance(output_size, (list, tuple)):
      if len(output_size) == x.ndim:
        return tuple(output_size)
      if len(output_size) != self.pool_dim:
        raise ValueError(f'output_size must have {self.pool_dim} spatial dimensions, '
                         f'got {len(output_size)}')
      sizes = output_size
    else:
      sizes = (output_size,) * self.pool_dim
    shape = list(x.shape)
    for ax, s in zip(axes, sizes):
      shape[ax] = s
    return tuple(shape)

  def update(self, x, indices, output_size=None):
    """Scatters ``x`` to the positions ``indices`` (from ``MaxPool*d(return_indices=True)``).

    Every other entry of the output is zero. ``output_size`` (full shape, the
    spatial sizes, or one int) overrides the default pre-pooling shape.
    """
    need = self.pool_dim + (0 if self.channel_axis is None else 1)
    if x.ndim < need:
      raise ValueError(f'Expected input with >= {need} dimensions, but got {x.ndim}.')
    natural = self._natural_shape(x)
    target = natural if output_size is None else self._requested_shape(x, output_size)
    flat_idx = indices.ravel()
    values = x.ravel()
    size = int(np.prod(target))
    if target == natural:
      return jnp.zeros(size, x.dtype).at[flat_idx].set(values).reshape(target)
    # re-address each index in the requested layout; outside ones go to a spare slot
    coords = jnp.unravel_index(flat_idx, natural)
    inside = jnp.ones(flat_idx.shape, bool)
    for c, d in zip(coords, target):
      inside = inside & (c < d)
    coords = tuple(jnp.minimum(c, d - 1) for c, d in zip(coords, target))
    where = jnp.where(inside, jnp.ravel_multi_index(coords, target, mode='clip'), size)
    out = jnp.zeros(size + 1, x.dtype).at[where].set(values)
    return out[:size].reshape(target)


class MaxUnpool1d(_MaxUnpool):
  """Partial inverse of :class:`MaxPool1d`: maxima back in place, zeros elsewhere.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> x = jnp.array([[[1.], [3.], [2.], [0.]]])
    >>> y, idx = brainstate.nn.MaxPool1d(2, return_indices=True)(x)
    >>> brainstate.nn.MaxUnpool1d(2)(y, idx)[0, :, 0]
    Array([0., 3., 2., 0.], dtype=float32)
  """

  def __init__(self, kernel_size, stride=None, padding=0,
               channel_axis: Optional[int] = -1, name: Optional[str] = None, in_size=None):
    super().__init__(1, kernel_size, stride, padding, channel_axis, name, in_size)


class MaxUnpool2d(_MaxUnpool):
  """Partial inverse of :class:`MaxPool2d` (maxima in place, zeros elsewhere).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> x = jnp.arange(16.).reshape(1, 4, 4, 1)
    >>> y, idx = brainstate.nn.MaxPool2d(2, return_indices=True)(x)
    >>> brainstate.nn.MaxUnpool2d(2)(y, idx).sum() == y.sum()
    Array(True, dtype=bool)
  """

  def __init__(self, kernel_size, stride=None, padding=0,
               channel_axis: Optional[int] = -1, name: Optional[str] = None, in_size=None):
    super().__init__(2, kernel_size, stride, padding, channel_axis, name, in_size)


class MaxUnpool3d(_MaxUnpool):
  """Partial inverse of :class:`MaxPool3d` (maxima in place, zeros elsewhere).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> x = jnp.ones((1, 2, 2, 2, 1))
    >>> y, idx = brainstate.nn.MaxPool3d(2, return_indices=True)(x)
    >>> brainstate.nn.MaxUnpool3d(2)(y, idx).shape
    (1, 2, 2, 2, 1)
  """

  def __init__(self, kernel_size, stride=None, padding=0,
               channel_axis: Optional[int] = -1, name: Optional[str] = None, in_size=None):
    super().__init__(3, kernel_size, stride, padding, channel_axis, name, in_size)


# --------------------------------------------------------------------------
# adaptive pooling
# --------------------------------------------------------------------------

def _adaptive_axis(x, axis: int, target: int, reduce: Callable):
  """Pools ``axis`` of ``x`` down to ``target`` contiguous segments.

  With ``L = q * target + r``, the first ``r`` segments hold ``q + 1`` entries
  and the remaining ones ``q``.
  """
  length = x.shape[axis]
  if length < target:
    raise ValueError(f'target_size ({target}) must be <= input size ({length}); '
                     'upsampling is not supported')
  x = jnp.moveaxis(x, axis, -1)
  q, r = divmod(length, target)
  lead = x.shape[:-1]
  if r:
    cut = r * (q + 1)
    head = reduce(x[..., :cut].reshape(lead + (r, q + 1)), axis=-1)
    tail = reduce(x[..., cut:].reshape(lead + (target - r, q)), axis=-1)
    out = jnp.concatenate([head, tail], axis=-1)
  else:
    out = reduce(x.reshape(lead + (target, q)), axis=-1)
  return jnp.moveaxis(out, -1, axis)


class _AdaptivePool(Module):
  def __init__(self, in_size, target_size, num_spatial_dims, operation,
               channel_axis=-1, name=None):
    super().__init__(name=name)
    self.channel_axis = channel_axis
    self.operation = operation
    if isinstance(target_size, str):
      raise TypeError('`target_size` must be an int or a sequence of ints, not a str.')
    if isinstance(target_size, int):
      if target_size <= 0:
        raise ValueError(f'`target_size` must be a positive int, but got {target_size}.')
      self.target_shape = (target_size,) * num_spatial_dims
    elif isinstance(target_size, Sequence) and len(target_size) == num_spatial_dims:
      for t in target_size:
        if t is None:
          continue
        if not isinstance(t, int):
          raise TypeError(f'`target_size` entries must be ints or None, but got {type(t)}.')
        if t <= 0:
          raise ValueError(f'`target_size` entries must be positive ints, but got {t}.')
      self.target_shape = tuple(target_size)
    else:
      raise ValueError('`target_size` must either be an int or tuple of length '
                       f'{num_spatial_dims} containing ints.')
    if in_size is not None:
      from .. import environ

      in_size = tuple(in_size)
      self.in_size = in_size
      out = jax.eval_shape(self.update,
                           jax.ShapeDtypeStruct((128,) + in_size, environ.dftype()))
      self.out_size = out.shape[1:]

  def update(self, x):
    channel_axis = self.channel_axis
    if channel_axis is not None and not -x.ndim <= channel_axis < x.ndim:
      raise ValueError(f'Invalid channel axis {channel_axis} for {x.shape}')
    n = len(self.target_shape)
    if x.ndim - (0 if channel_axis is None else 1) < n:
      raise ValueError(f'Invalid input dimension. Except >={n} dimensions '
                       f'(channel_axis={self.channel_axis}). But got {x.ndim} dimensions.')
    for axis, target in zip(_pooled_axes(x.ndim, channel_axis, n), self.target_shape):
      if target is not None:  # None: this axis is left as it is
        x = _adaptive_axis(x, axis, target, self.operation)
    return x


class AdaptiveAvgPool1d(_AdaptivePool):
  """Averages the length axis down to ``target_size`` contiguous segments.

  With ``L = q * target + r`` the first ``r`` segments have ``q + 1`` entries,
  the others ``q`` (BrainState's split).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> pool = brainstate.nn.AdaptiveAvgPool1d(2)
    >>> pool(jnp.arange(5.).reshape(5, 1))[:, 0]
    Array([1. , 3.5], dtype=float32)
  """

  def __init__(self, target_size, channel_axis: Optional[int] = -1,
               name: Optional[str] = None, in_size=None):
    super().__init__(in_size, target_size, 1, jnp.mean, channel_axis, name)


class AdaptiveAvgPool2d(_AdaptivePool):
  """Averages height and width down to ``target_size`` (``None``: keep that axis).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.AdaptiveAvgPool2d((2, None))(jnp.ones((8, 5, 7, 3))).shape
    (8, 2, 7, 3)
  """

  def __init__(self, target_size, channel_axis: Optional[int] = -1,
               name: Optional[str] = None, in_size=None):
    super().__init__(in_size, target_size, 2, jnp.mean, channel_axis, name)


class AdaptiveAvgPool3d(_AdaptivePool):
  """Averages depth, height and width down to ``target_size``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.AdaptiveAvgPool3d(1)(jnp.ones((3, 4, 5, 2))).shape
    (1, 1, 1, 2)
  """

  def __init__(self, target_size, channel_axis: Optional[int] = -1,
               name: Optional[str] = None, in_size=None):
    super().__init__(in_size, target_size, 3, jnp.mean, channel_axis, name)


class AdaptiveMaxPool1d(_AdaptivePool):
  """Takes the maximum of ``target_size`` contiguous segments of the length axis.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.AdaptiveMaxPool1d(2)(jnp.arange(5.).reshape(5, 1))[:, 0]
    Array([2., 4.], dtype=float32)
  """

  def __init__(self, target_size, channel_axis: Optional[int] = -1,
               name: Optional[str] = None, in_size=None):
    super().__init__(in_size, target_size, 1, jnp.max, channel_axis, name)


class AdaptiveMaxPool2d(_AdaptivePool):
  """Max-pools height and width down to ``target_size``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.AdaptiveMaxPool2d(3, in_size=(7, 7, 4)).out_size
    (3, 3, 4)
  """

  def __init__(self, target_size, channel_axis: Optional[int] = -1,
               name: Optional[str] = None, in_size=None):
    super().__init__(in_size, target_size, 2, jnp.max, channel_axis, name)


class AdaptiveMaxPool3d(_AdaptivePool):
  """Max-pools depth, height and width down to ``target_size``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.AdaptiveMaxPool3d(2)(jnp.ones((4, 4, 4, 1))).shape
    (2, 2, 2, 1)
  """

  def __init__(self, target_size, channel_axis: Optional[int] = -1,
               name: Optional[str] = None, in_size=None):
    super().__init__(in_size, target_size, 3, jnp.max, channel_axis, name)


for _name in __all__:
  globals()[_name].__module__ = 'brainstate_nnx.nn'
del _name
