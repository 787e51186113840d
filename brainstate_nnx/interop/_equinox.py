"""``to_equinox`` / ``from_equinox``: brainstate_nnx models and Equinox.

``from_equinox(eqx_model)`` gives a brainstate_nnx Module holding the
model's arrays in one :class:`~brainstate_nnx.ParamState` (``params``, the
pytree of array leaves) and calling the Equinox model rebuilt from them, so
``transform.grad`` / ``jit`` / optax work on it. ``to_equinox(model)`` gives an
``equinox.Module`` whose fields are the model's State values (a pytree JAX
and Equinox differentiate) and that calls a fresh copy of the model with
them (Equinox is functional: State writes inside the call are not kept).

Both need ``equinox`` installed (:class:`MissingDependencyError` otherwise).

Example::

  >>> import jax, jax.numpy as jnp
  >>> import equinox as eqx
  >>> import brainstate_nnx as brainstate
  >>> lin = eqx.nn.Linear(3, 2, key=jax.random.key(0))
  >>> ours = brainstate.interop.from_equinox(lin)
  >>> bool(jnp.allclose(ours(jnp.ones(3)), lin(jnp.ones(3))))
  True
"""

from __future__ import annotations

import copy
from typing import Any

import jax

from .._state import ParamState
from ._errors import MissingDependencyError

__all__ = ['to_equinox', 'from_equinox']


def _eqx():
  try:
    import equinox
  except ImportError as err:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
      'equinox is not installed: pip install equinox') from err
  return equinox


def from_equinox(model: Any, *, sample_input: Any = None) -> Any:
  """A brainstate_nnx Module that runs the Equinox ``model`` (see module doc)."""
  eqx = _eqx()
  from ..nn import Module

  params, static = eqx.partition(model, eqx.is_inexact_array)

  class FromEquinox(Module):
    """An Equinox model as a brainstate_nnx Module (``params``: its arrays)."""

    def __init__(self):
      super().__init__()
      self.params = ParamState(params)
      self._static = static

    def __call__(self, *args, **kwargs):
      return eqx.combine(self.params.value, self._static)(*args, **kwargs)

  return FromEquinox()


def to_equinox(model: Any, *, key: Any = None, method: str = '__call__') -> Any:
  """An ``equinox.Module`` computing ``model.<method>`` (see module doc)."""
  eqx = _eqx()
  from flax import nnx

  snapshot = copy.deepcopy(model)
  graphdef, state = nnx.split(snapshot)
  values = jax.tree.map(lambda v: v.get_value(), state,
                        is_leaf=lambda x: isinstance(x, nnx.Variable))

  class ToEquinox(eqx.Module):
    values: Any
    graphdef: Any = eqx.field(static=True)
    method: str = eqx.field(static=True)

    def __call__(self, *args, **kwargs):
      rebuilt = jax.tree.map(lambda v, x: v.replace(x), state, self.values,
                             is_leaf=lambda x: isinstance(x, nnx.Variable))
      fresh = nnx.merge(self.graphdef, rebuilt, copy=True)
      return getattr(fresh, self.method)(*args, **kwargs)

  return ToEquinox(values, graphdef, method)
