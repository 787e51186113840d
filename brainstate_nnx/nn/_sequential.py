"""``Sequential``: a chain of layers with BrainState's size inference."""

from __future__ import annotations

from typing import Callable, Sequence, Union

from flax import nnx

from .._error import BrainStateError
from ._module import ElementWiseBlock, Module

__all__ = ['Sequential']


def _size_of(module, attr):
  return getattr(module, attr, None)


def _as_size(size):
  return None if size is None else tuple(size)


class Sequential(Module):
  """Calls its layers one after the other, inferring sizes along the chain.

  The first layer must be a :class:`Module`; the following ones may be
  Modules, plain callables (e.g. ``jax.nn.relu``, size unchanged),
  :class:`ElementWiseBlock` s (size unchanged) or
  :class:`~brainstate_nnx.mixin.ParamDescriber` s such as
  ``Linear.desc(out_size=2)``, which are built with the output size of the
  layer before them as ``in_size``. ``in_size`` is the first layer's,
  ``out_size`` the last inferred one. Indexing with an int gives a layer,
  with a slice or a tuple of ints a new ``Sequential``; ``append``, ``extend``
  and ``insert`` keep the sizes up to date.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> seq = brainstate.nn.Sequential(brainstate.nn.Flatten(in_size=(2, 3)),
    ...                                brainstate.nn.ReLU(), jnp.tanh)
    >>> seq.in_size, seq.out_size
    ((2, 3), (6,))
    >>> seq(jnp.ones((4, 2, 3))).shape
    (4, 6)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, first: Module, *layers):
    super().__init__()
    if not isinstance(first, Module):
      raise TypeError(
        f'The first layer of a Sequential must be a brainstate_nnx.nn.Module '
        f'(it defines the input size), got {type(first).__name__}.'
      )
    self.layers = []
    size = _size_of(first, 'out_size')
    self.layers.append(first)
    for layer in layers:
      layer, size = self._format_module(layer, size)
      self.layers.append(layer)
    if _size_of(first, 'in_size') is not None:
      self.in_size = first.in_size
    if size is not None:
      self.out_size = tuple(size)

  def __new__(cls, *args, **kwargs):
    # Make ``Sequential.__new__(Sequential)`` followed by ``Module.__init__``
    # (BrainState's way to build an empty one) a valid nnx object too.
    from flax.nnx.pytreelib import PytreeState

    node = super().__new__(cls)
    object.__setattr__(node, '_pytree__state', PytreeState())
    object.__setattr__(node, '_pytree__nodes', cls._pytree__nodes)
    return node

  def __setattr__(self, name, value):
    # ``layers`` is always data, even while empty, so appended layers are
    # seen by nnx.split / nnx.state and by brainstate_nnx's graph walk.
    if name == 'layers' and isinstance(value, list) and not nnx.is_data(value):
      value = nnx.data(value)
    super().__setattr__(name, value)

  # -- calling -----------------------------------------------------------------
  def update(self, x):
    """Feeds ``x`` through the layers in order."""
    for layer in self.layers:
      try:
        x = layer(x)
      except Exception as e:
        raise BrainStateError(
          f'The layer\n{layer}\nof the Sequential failed on an input of '
          f'{_describe(x)}.'
        ) from e
    return x

  # -- container API ---------------------------------------------------------------
  def __len__(self):
    return len(self.layers)

  def __iter__(self):
    return iter(self.layers)

  def __getitem__(self, key: Union[int, slice, Sequence[int]]):
    if isinstance(key, slice):
      return self._from_layers(self.layers[key])
    if isinstance(key, int):
      return self.layers[key]
    if isinstance(key, (tuple, list)):
      return self._from_layers([self.layers[k] for k in key])
    raise KeyError(f'Index a Sequential with an int, a slice or a tuple of ints, got {type(key)}.')

  @classmethod
  def _from_layers(cls, layers) -> 'Sequential':
    layers = list(layers)
    if not layers:
      seq = cls.__new__(cls)
      Module.__init__(seq)
      seq.layers = []
      return seq
    return cls(*layers)

  def append(self, layer: Callable) -> None:
    """Adds ``layer`` at the end (its input size is the current ``out_size``)."""
    if not self.layers:
      raise ValueError('The first layer of a Sequential must be a Module: use insert(0, module).')
    layer, size = self._format_module(layer, _size_of(self, 'out_size'))
    self.layers.append(layer)
    if size is not None:
      self.out_size = size

  def extend(self, layers) -> None:
    """Appends every layer of ``layers`` in order."""
    if not self.layers:
      raise ValueError('Cannot extend an empty Sequential: insert(0, module) its first layer.')
    size = _size_of(self, 'out_size')
    for layer in layers:
      layer, size = self._format_module(layer, size)
      self.layers.append(layer)
    if size is not None:
      self.out_size = size

  def insert(self, index: int, layer) -> None:
    """Inserts ``layer`` before position ``index`` and re-infers later sizes."""
    if not self.layers:
      if index != 0:
        raise ValueError('An empty Sequential only accepts insert(0, module).')
      if not isinstance(layer, Module):
        raise ValueError('The first layer of a Sequential must be a Module, not a plain callable.')
      self.layers.append(layer)
      if _size_of(layer, 'in_size') is not None:
        self.in_size = layer.in_size
      if _size_of(layer, 'out_size') is not None:
        self.out_size = tuple(layer.out_size)
      return
    n = len(self.layers)
    if index < 0:
      index = max(0, n + index + 1)
    if index > n:
      raise IndexError(f'Index {index} is out of range for a Sequential of {n} layers.')
    size = _size_of(self, 'in_size') if index == 0 else _size_of(self.layers[index - 1], 'out_size')
    layer, size = self._format_module(layer, size)
    self.layers.insert(index, layer)
    for i in range(index + 1, len(self.layers)):
      self.layers[i], size = self._format_module(self.layers[i], size)
    if index == 0 and _size_of(layer, 'in_size') is not None:
      self.in_size = layer.in_size
    if size is not None:
      self.out_size = tuple(size)

  def _format_module(self, layer, in_size):
    from ..mixin import ParamDescriber

    try:
      if isinstance(layer, ParamDescriber):
        if in_size is None:
          prev = self.layers[-1] if self.layers else None
          raise ValueError(
            f'{layer} needs the output size of the layer before it, which is '
            f'unknown; give that layer an in_size/out_size:\n{prev}'
          )
        layer = layer(in_size=in_size)
        if not isinstance(layer, Module):
          raise TypeError(f'The describer built a {type(layer).__name__}, not a Module.')
        out_size = _size_of(layer, 'out_size')
      elif isinstance(layer, ElementWiseBlock):
        out_size = in_size
      elif isinstance(layer, Module):
        out_size = _size_of(layer, 'out_size')
      elif callable(layer):
        out_size = in_size
      else:
        raise TypeError(
          f'A Sequential layer must be a Module, a ParamDescriber or a callable, '
          f'got {type(layer).__name__}.'
        )
    except Exception as e:
      raise BrainStateError(
        f'Could not add the layer\n{layer}\nto the Sequential (input size {in_size}): {e}'
      ) from e
    return layer, _as_size(out_size)


def _describe(x):
  shape = getattr(x, 'shape', None)
  if shape is not None:
    return f'shape {tuple(shape)} and dtype {getattr(x, "dtype", None)}'
  return type(x).__name__
