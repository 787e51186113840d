"""Dropout layers, active only while ``environ`` ``fit`` is True.

``prob`` is the probability to *keep* an entry (BrainState's convention,
``1 - rate`` of ``nnx.Dropout``). Outside training (``fit=False``) every layer
is the identity; ``fit`` must be set (``brainstate_nnx.environ.set(fit=...)``
or ``environ.context(fit=...)``), as in BrainState.

Every layer takes an optional ``rngs=`` (keyword only) that chooses where the
random bits come from; see :mod:`brainstate_nnx.nn._rngs`. Without it the
layer draws from the default ``brainstate_nnx.random`` stream (BrainState's
bits); with a :class:`~brainstate_nnx.random.RandomState`, an int seed or an
``nnx.Rngs`` the layer owns its stream and also works inside a Flax training
step (``nnx.jit`` + ``nnx.value_and_grad``).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import jax.numpy as jnp

from .. import environ
from .._state import ShortTermState
from .._units import maybe_attach_unit, split_mantissa_unit
from ._module import ElementWiseBlock
from ._rngs import bernoulli, format_rngs

__all__ = [
  'Dropout',
  'Dropout1d',
  'Dropout2d',
  'Dropout3d',
  'AlphaDropout',
  'FeatureAlphaDropout',
  'DropoutFixed',
]

_FIT_DESC = 'Whether this is a fitting process. Bool.'
# the negative saturation value of SELU, -scale * alpha
_SELU_SATURATION = -1.7580993408473766


def _check_prob(prob) -> None:
  if not 0. <= prob <= 1.:
    raise AssertionError(
      f'Dropout probability must be in the range [0, 1]. But got {prob}. '
      '(prob is the probability to KEEP an entry.)'
    )




def _keep_scaled(mask, x, prob):
  """``x / prob`` where ``mask``, 0 elsewhere, in ``x``'s dtype (and unit)."""
  x, unit = split_mantissa_unit(x)
  dtype = jnp.result_type(x)
  y = jnp.where(mask, jnp.asarray(x / prob, dtype=dtype), jnp.asarray(0., dtype=dtype))
  return maybe_attach_unit(y, unit)


def _alpha_affine(prob: float) -> tuple[float, float]:
  """``(a, b)`` keeping zero mean / unit variance after alpha dropout."""
  drop = 1. - prob
  a = (prob * (1 + drop * _SELU_SATURATION ** 2)) ** -0.5
  return a, -a * drop * _SELU_SATURATION


class _Stochastic(ElementWiseBlock):
  """Holds the layer's random stream (``self.rngs``; ``None``: the default one).

  ``deterministic`` (``None`` by default) is Flax's switch: ``model.eval()`` /
  ``model.train()`` of ``nnx.Module`` set it to True / False, and then it
  overrides ``environ`` ``fit``. Being a static attribute, it is part of the
  graph definition, so ``nnx.jit`` retraces when it changes.
  """

  rng_collection = 'dropout'

  def __init__(self, name: Optional[str] = None, rngs: Any = None):
    super().__init__(name=name)
    self.rngs = format_rngs(rngs, self.rng_collection)
    self.deterministic = None

  def _training(self) -> bool:
    if self.deterministic is not None:
      return not self.deterministic
    return environ.get('fit', desc=_FIT_DESC)

  def _bernoulli(self, p, shape):
    return bernoulli(self.rngs, p, shape)


class Dropout(_Stochastic):
  """Zeroes entries at random while training and scales the kept ones by ``1/prob``.

  Args:
    prob: probability to keep an entry (default 0.5).
    broadcast_dims: axes that share one mask value (e.g. ``(0,)`` for one mask
      shared by the whole batch).
    name: optional module name.
    rngs: where the random bits come from (keyword only): ``None`` for the
      default ``brainstate_nnx.random`` stream, or a model-owned
      ``RandomState`` / int seed / ``nnx.Rngs`` (needed under ``nnx.jit``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> layer = brainstate.nn.Dropout(prob=0.8)
    >>> x = jnp.ones((4, 5))
    >>> with brainstate.environ.context(fit=True):
    ...   y = layer(x)
    >>> bool(jnp.all((y == 0) | (y == 1.25)))
    True
    >>> with brainstate.environ.context(fit=False):
    ...   bool(jnp.all(layer(x) == x))
    True
  """

  def __init__(self, prob: float = 0.5, broadcast_dims: Sequence[int] = (),
               name: Optional[str] = None, *, rngs: Any = None) -> None:
    super().__init__(name=name, rngs=rngs)
    _check_prob(prob)
    self.prob = prob
    self.broadcast_dims = broadcast_dims

  def __call__(self, x):
    if self._training() and self.prob < 1.:
      shape = list(x.shape)
      for d in self.broadcast_dims:
        shape[d] = 1
      mask = jnp.broadcast_to(self._bernoulli(self.prob, shape), x.shape)
      return _keep_scaled(mask, x, self.prob)
    return x


class _DropoutNd(_Stochastic):
  """Channel dropout: one mask value per (sample, channel)."""

  minimal_dim: int
  _what: str = ''

  def __init__(self, prob: float = 0.5, channel_axis: int = -1,
               name: Optional[str] = None, *, rngs: Any = None) -> None:
    super().__init__(name=name, rngs=rngs)
    _check_prob(prob)
    self.prob = prob
    self.channel_axis = channel_axis

  def __call__(self, x):
    ndim = x.ndim
    if ndim not in (self.minimal_dim, self.minimal_dim + 1):
      raise RuntimeError(
        f'{type(self).__name__.lower()}: Expected {self.minimal_dim}D or '
        f'{self.minimal_dim + 1}D input, but received a {ndim}D input. {self._what}'
      )
    if ndim == self.minimal_dim:  # no batch axis
      ch = self.channel_axis if self.channel_axis >= 0 else ndim + self.channel_axis
      keep_axes = (ch,)
    else:
      ch = self.channel_axis + 1 if self.channel_axis >= 0 else ndim + self.channel_axis
      if ch == 0:
        raise AssertionError(f'Channel axis must not be 0. But got {self.channel_axis}.')
      keep_axes = (0, ch)
    if self._training() and self.prob < 1.:
      shape = [d if i in keep_axes else 1 for i, d in enumerate(x.shape)]
      mask = jnp.broadcast_to(self._bernoulli(self.prob, shape), x.shape)
      return _keep_scaled(mask, x, self.prob)
    return x


class Dropout1d(_DropoutNd):
  """Drops whole channels of ``(L, C)`` / ``(N, L, C)`` inputs (one mask per sample and channel).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> layer = brainstate.nn.Dropout1d(prob=0.5, rngs=0)
    >>> with brainstate.environ.context(fit=True):
    ...   y = layer(jnp.ones((2, 6, 3)))
    >>> bool(jnp.all(y.min(axis=1) == y.max(axis=1)))   # constant along L
    True
  """
  minimal_dim = 2
  _what = ('Dropout1d drops channels of inputs with 1 spatial axis, a channel axis and '
           'an optional batch axis (2D or 3D inputs).')


class Dropout2d(_DropoutNd):
  """Drops whole channels of ``(H, W, C)`` / ``(N, H, W, C)`` inputs.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> layer = brainstate.nn.Dropout2d(prob=0.8)
    >>> with brainstate.environ.context(fit=True):
    ...   layer(jnp.ones((2, 4, 4, 3))).shape
    (2, 4, 4, 3)
  """
  minimal_dim = 3
  _what = ('Dropout2d drops channels of inputs with 2 spatial axes, a channel axis and '
           'an optional batch axis (3D or 4D inputs).')


class Dropout3d(_DropoutNd):
  """Drops whole channels of ``(D, H, W, C)`` / ``(N, D, H, W, C)`` inputs.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> layer = brainstate.nn.Dropout3d(prob=0.8)
    >>> with brainstate.environ.context(fit=True):
    ...   layer(jnp.ones((2, 2, 2, 2, 3))).shape
    (2, 2, 2, 2, 3)
  """
  minimal_dim = 4
  _what = ('Dropout3d drops channels of inputs with 3 spatial axes, a channel axis and '
           'an optional batch axis (4D or 5D inputs).')


class AlphaDropout(_Stochastic):
  """Dropout for SELU networks: dropped entries take SELU's saturation value,
  then an affine map keeps zero mean and unit variance.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> layer = brainstate.nn.AlphaDropout(prob=0.9)
    >>> with brainstate.environ.context(fit=True):
    ...   layer(jnp.zeros((3, 4))).shape
    (3, 4)
  """

  def __init__(self, prob: float = 0.5, name: Optional[str] = None, *,
               rngs: Any = None) -> None:
    super().__init__(name=name, rngs=rngs)
    _check_prob(prob)
    self.prob = prob
    self.alpha = _SELU_SATURATION
    self.a, self.b = _alpha_affine(prob)

  def __call__(self, x):
    if self._training() and self.prob < 1.:
      dtype = jnp.result_type(x)
      mask = self._bernoulli(self.prob, x.shape)
      kept = jnp.where(mask, jnp.asarray(x, dtype=dtype), jnp.asarray(self.alpha, dtype=dtype))
      return kept * self.a + self.b
    return x


class FeatureAlphaDropout(_Stochastic):
  """Alpha dropout of whole channels (one mask value per sample and channel).

  The first axis is the batch axis; ``channel_axis`` (default last) the channel.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> layer = brainstate.nn.FeatureAlphaDropout(prob=0.8)
    >>> with brainstate.environ.context(fit=True):
    ...   layer(jnp.zeros((2, 5, 3))).shape
    (2, 5, 3)
  """

  def __init__(self, prob: float = 0.5, channel_axis: int = -1,
               name: Optional[str] = None, *, rngs: Any = None) -> None:
    super().__init__(name=name, rngs=rngs)
    _check_prob(prob)
    self.prob = prob
    self.channel_axis = channel_axis
    self.alpha = _SELU_SATURATION
    self.a, self.b = _alpha_affine(prob)

  def __call__(self, x):
    if self._training() and self.prob < 1.:
      dtype = jnp.result_type(x)
      ch = self.channel_axis % x.ndim
      shape = [1] * x.ndim
      shape[0] = x.shape[0]
      shape[ch] = x.shape[ch]
      mask = jnp.broadcast_to(self._bernoulli(self.prob, shape), x.shape)
      kept = jnp.where(mask, jnp.asarray(x, dtype=dtype), jnp.asarray(self.alpha, dtype=dtype))
      return kept * self.a + self.b
    return x


class DropoutFixed(_Stochastic):
  """Dropout whose mask is drawn once by ``init_state`` and reused every step.

  Made for spiking networks run over time: the same units stay dropped for
  all time steps of a mini-batch. Call ``init_state(batch_size)`` (or
  ``init_all_states``) before each mini-batch to draw a new mask.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> layer = brainstate.nn.DropoutFixed(in_size=5, prob=0.6)
    >>> layer.init_state(batch_size=2)
    >>> with brainstate.environ.context(fit=True):
    ...   y1, y2 = layer(jnp.ones((2, 5))), layer(jnp.ones((2, 5)))
    >>> bool(jnp.all(y1 == y2))
    True
  """

  def __init__(self, in_size, prob: float = 0.5, name: Optional[str] = None, *,
               rngs: Any = None) -> None:
    super().__init__(name=name, rngs=rngs)
    _check_prob(prob)
    self.prob = prob
    self.in_size = in_size
    self.out_size = in_size

  def init_state(self, batch_size=None, **kwargs):
    if self.prob < 1.:
      size = self.in_size
      size = (size,) if isinstance(size, int) else tuple(size)
      if batch_size is not None:
        size = (batch_size,) + size
      self.mask = ShortTermState(self._bernoulli(self.prob, size))

  def update(self, x):
    if self._training() and self.prob < 1.:
      mask = self.mask.value
      if mask.shape != x.shape:
        raise ValueError(
          f'Input shape {x.shape} does not match the mask shape {mask.shape}. '
          'Please call `init_state()` method first (with the batch size of x).'
        )
      return _keep_scaled(mask, x, self.prob)
    return x


for _name in __all__:
  globals()[_name].__module__ = 'brainstate_nnx.nn'
del _name
