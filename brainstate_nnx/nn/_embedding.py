"""A lookup table of learnable vectors: BrainState's ``nn.Embedding``."""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from .._state import ParamState
from . import init as init
from ._module import Module

__all__ = ['Embedding']


def _embedding_size(size) -> tuple:
  arr = np.asarray(size)
  if arr.size == 0:
    raise ValueError('embedding_size must contain at least one dimension.')
  dims = tuple(int(d) for d in arr.reshape(-1))
  if any(d < 0 for d in dims):
    raise ValueError('embedding_size must not contain negative values.')
  return dims


@functools.lru_cache(maxsize=None)
def _lookup_fn(padding_idx: Optional[int], scale_grad_by_freq: bool):
  """``weight[indices]`` whose weight-gradient skips ``padding_idx`` and can be
  divided by each index's frequency in the batch (as PyTorch's options)."""

  @jax.custom_vjp
  def lookup(weight, indices):
    return weight[indices]

  def fwd(weight, indices):
    return weight[indices], (indices, weight.shape)

  def bwd(res, g):
    indices, shape = res
    idx = jnp.ravel(indices).astype(jnp.int32)
    if idx.size == 0:
      return jnp.zeros(shape, dtype=g.dtype), None
    rows = g.reshape((idx.shape[0],) + tuple(shape[1:]))
    bshape = (idx.shape[0],) + (1,) * (rows.ndim - 1)
    if scale_grad_by_freq:
      counts = jnp.bincount(idx, length=shape[0]).astype(rows.dtype)
      counts = jnp.where(counts == 0, 1.0, counts)
      rows = rows / counts[idx].reshape(bshape)
    if padding_idx is not None:
      rows = rows * (idx != padding_idx).astype(rows.dtype).reshape(bshape)
    return jnp.zeros(shape, dtype=g.dtype).at[idx].add(rows), None

  lookup.defvjp(fwd, bwd)
  return lookup


def _has_tracer(tree) -> bool:
  return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(tree))


class Embedding(Module):
  """Maps integer indices to rows of a learnable table.

  Args:
    num_embeddings: number of rows (the vocabulary size).
    embedding_size: shape of one row (an int or a tuple).
    embedding_init: initializer or array for the table of shape
      ``(num_embeddings, *embedding_size)`` (default ``LecunUniform()``).
    padding_idx: a row that starts at zero and never receives gradient.
    max_norm: rows looked up are rescaled to at most this ``norm_type``-norm.
      Outside a transform the rescaled rows are written back into the table
      (as PyTorch does); inside one only the output uses them.
    norm_type: the ``p`` of the norm used by ``max_norm``.
    scale_grad_by_freq: divide each row's gradient by its count in the batch.
    freeze: stop the table's gradient.
    name, param_type: as for every layer.

  ``self.weight`` is a ``param_type`` holding the table (``nnx.Embed``'s
  ``embedding``). Non-integer indices raise ``TypeError``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> emb = brainstate.nn.Embedding(10, 4, padding_idx=0)
    >>> emb(jnp.array([[0, 3], [5, 0]])).shape
    (2, 2, 4)
    >>> bool((emb.weight.value[0] == 0).all())
    True
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    num_embeddings: int,
    embedding_size,
    embedding_init: Union[Callable, Any] = init.LecunUniform(),
    padding_idx: Optional[int] = None,
    max_norm: Optional[float] = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    freeze: bool = False,
    name: Optional[str] = None,
    param_type: type = ParamState,
  ):
    super().__init__(name=name)
    self.num_embeddings = int(num_embeddings)
    if self.num_embeddings < 0:
      raise ValueError('num_embeddings must not be negative.')
    size = _embedding_size(embedding_size)
    self.embedding_size = size
    self.out_size = size
    if padding_idx is not None:
      padding_idx = int(padding_idx)
      if not 0 <= padding_idx < self.num_embeddings:
        raise ValueError(f'padding_idx must be within [0, {self.num_embeddings}).')
    self.padding_idx = padding_idx
    if max_norm is not None and max_norm <= 0:
      raise ValueError('max_norm must be positive when provided.')
    self.max_norm = max_norm
    self.norm_type = norm_type
    self.scale_grad_by_freq = bool(scale_grad_by_freq)
    self.freeze = bool(freeze)
    table = init.param(embedding_init, (self.num_embeddings, *self.out_size))
    if self.padding_idx is not None:
      table = table.at[self.padding_idx].set(0)
    self.weight = param_type(table)

  @classmethod
  def from_pretrained(
    cls,
    embeddings,
    padding_idx: Optional[int] = None,
    max_norm: Optional[float] = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    freeze: bool = True,
    name: Optional[str] = None,
    param_type: type = ParamState,
  ):
    """An Embedding whose table is ``embeddings`` (kept as given, also at
    ``padding_idx``); frozen by default.

    Example::

      >>> import jax.numpy as jnp
      >>> import brainstate_nnx as brainstate
      >>> emb = brainstate.nn.Embedding.from_pretrained(jnp.eye(3))
      >>> emb(jnp.array([2])), emb.freeze
      (Array([[0., 0., 1.]], dtype=float32), True)
    """
    embeddings = jnp.asarray(embeddings)
    if embeddings.ndim < 2:
      raise ValueError('embeddings must be at least 2-dimensional')
    layer = cls(
      num_embeddings=embeddings.shape[0],
      embedding_size=embeddings.shape[1:],
      embedding_init=embeddings,
      padding_idx=padding_idx,
      max_norm=max_norm,
      norm_type=norm_type,
      scale_grad_by_freq=scale_grad_by_freq,
      freeze=freeze,
      name=name,
      param_type=param_type,
    )
    layer.weight = param_type(embeddings)
    return layer

  def update(self, indices):
    indices = jnp.asarray(indices)
    if not jnp.issubdtype(indices.dtype, jnp.integer):
      raise TypeError(
        f'Embedding indices must be integers, got dtype {indices.dtype}; '
        f'cast them with `.astype(jnp.int32)`.'
      )
    table = self.weight.value
    used = table
    if self.max_norm is not None:
      renormed = self._renorm(table, indices)
      used = table + jax.lax.stop_gradient(renormed - table)
      if not _has_tracer(renormed):
        self.weight.value = renormed
    if self.freeze:
      used = jax.lax.stop_gradient(used)
    return _lookup_fn(self.padding_idx, self.scale_grad_by_freq)(used, indices)

  def _renorm(self, table, indices):
    idx = jnp.ravel(indices).astype(jnp.int32)
    if idx.size == 0:
      return table
    rows = table[idx]
    flat = rows.reshape((rows.shape[0], -1))
    dt = flat.dtype
    norms = jnp.linalg.norm(flat, ord=self.norm_type, axis=1, keepdims=True)
    scale = jnp.minimum(jnp.asarray(1.0, dt),
                        jnp.asarray(self.max_norm, dt) / (norms + jnp.asarray(1e-8, dt)))
    if self.padding_idx is not None:
      # the padding row is left as it is (a mask instead of boolean indexing,
      # so this also works under jit)
      scale = jnp.where((idx == self.padding_idx)[:, None], jnp.asarray(1.0, dt), scale)
    return table.at[idx].set((flat * scale).reshape(rows.shape))
