"""Where a stochastic layer's random bits come from.

A stochastic layer (``Dropout``, ``AlphaDropout``, ...) takes an optional
``rngs=``:

* ``None`` (default): draw from the default stream of
  :mod:`brainstate_nnx.random`, exactly as BrainState does (same bits after
  ``brainstate_nnx.random.seed(s)``). brainstate_nnx transforms thread that
  global stream automatically; Flax transforms (``nnx.jit``,
  ``nnx.value_and_grad``) cannot, because it is not part of the model.
* a :class:`brainstate_nnx.random.RandomState` (or an int seed, which makes
  one): the layer owns this stream, so it is part of the model's graph and
  every transform -- brainstate_nnx's and Flax's -- threads it. Its bits are
  BrainState's: ``RandomState(s)`` draws what ``seed(s)`` then the default
  stream draws.
* an ``nnx.Rngs`` or ``nnx.RngStream``: the layer forks the stream named by
  its ``rng_collection`` (``'dropout'``, falling back to ``'default'``) at
  construction and draws from it, exactly as ``nnx.Dropout`` does.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from flax import nnx

__all__ = ['format_rngs', 'bernoulli']


def format_rngs(rngs: Any, collection: str = 'dropout') -> Any:
  """The stream a layer stores for ``rngs`` (``None`` means the default stream)."""
  from .._state import adopt
  from ..random import RandomState

  if rngs is None:
    return nnx.data(None)
  if isinstance(rngs, RandomState):
    return rngs
  if isinstance(rngs, (int, np.integer)) and not isinstance(rngs, bool):
    return RandomState(int(rngs))
  if isinstance(rngs, nnx.Rngs):
    return adopt(rngs[collection].fork())
  if isinstance(rngs, nnx.RngStream):
    return adopt(rngs.fork())
  raise TypeError(
    'rngs must be None (the default brainstate_nnx.random stream), an int seed, '
    'a brainstate_nnx.random.RandomState, an nnx.Rngs or an nnx.RngStream; '
    f'got {type(rngs).__name__}.'
  )


def bernoulli(rngs: Any, p: float, shape) -> jax.Array:
  """Boolean draws, True with probability ``p``, from the stream ``rngs``."""
  if rngs is None:
    from .. import random

    return random.bernoulli(p, shape)
  if isinstance(rngs, nnx.RngStream):
    return jax.random.bernoulli(rngs(), p, tuple(shape))
  return rngs.bernoulli(p, shape)
