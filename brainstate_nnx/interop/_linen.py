"""``to_linen`` / ``from_linen``: brainstate_nnx models and ``flax.linen``.

``to_linen(model)`` gives ``(linen_module, variables)``: a linen module that
runs a fresh copy of ``model`` with the values of ``variables`` (``'params'``
for ``nnx.Param`` s, the State class name for the other States, e.g.
``'HiddenState'``; mark those mutable in ``apply`` to get them back).
``from_linen(module, variables, sample_input=...)`` wraps a linen module with
Flax's bridge (``nnx.bridge.ToNNX``), loads ``variables`` and returns an NNX
module whose Variables brainstate_nnx transforms track.

Example::

  >>> import jax, jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> model = brainstate.nn.Linear(3, 2)
  >>> module, variables = brainstate.interop.to_linen(model)
  >>> y = module.apply(variables, jnp.ones((1, 3)))
  >>> bool(jnp.allclose(y, model(jnp.ones((1, 3)))))
  True
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Tuple

import jax
import numpy as np
from flax import linen, nnx
from flax.nnx import bridge
from flax.traverse_util import flatten_dict

from .._state import State, adopt
from ._errors import ConversionError, MissingShapeError

__all__ = ['to_linen', 'from_linen']


def _collection(st) -> str:
  return 'params' if isinstance(st, nnx.Param) else type(st).__name__


def _key(path) -> str:
  return '.'.join(str(p) for p in path)


def _states(model):
  from ..nn import states

  return states(model)


class BrainStateLinen(linen.Module):
  """A linen module running a brainstate_nnx model (built by ``factory``)."""

  factory: Callable[[], Any]
  method: str = '__call__'

  @linen.compact
  def __call__(self, *args, **kwargs):
    model = self.factory()
    handles = []
    for path, st in _states(model).items():
      var = self.variable(_collection(st), _key(path), lambda st=st: st.value)
      st.value = var.value
      handles.append((st, var))
    out = getattr(model, self.method)(*args, **kwargs)
    for st, var in handles:
      if var.is_mutable() and var.collection != 'params':
        var.value = st.value
    return out


def to_linen(model: Any, method: str = '__call__') -> Tuple[linen.Module, dict]:
  """``(linen_module, variables)`` computing what ``model.<method>`` computes."""
  snapshot = copy.deepcopy(model)
  variables: dict = {}
  for path, st in _states(snapshot).items():
    variables.setdefault(_collection(st), {})[_key(path)] = st.value
  return BrainStateLinen(lambda: copy.deepcopy(snapshot), method), variables


def from_linen(module: linen.Module, variables: Any, *, sample_input: Any = None,
               rngs: Any = None) -> Any:
  """A Flax NNX module (``nnx.bridge.ToNNX``) running ``module`` with
  ``variables``, adopted so brainstate_nnx transforms track it.

  ``sample_input`` (a batch the module accepts) is required: linen modules
  create their variables on a first call.
  """
  if sample_input is None:
    raise MissingShapeError(
      'from_linen needs sample_input= (an input the linen module accepts) to '
      'create its variables.'
    )
  wrapped = bridge.ToNNX(module, rngs=rngs if rngs is not None else nnx.Rngs(0))
  bridge.lazy_init(wrapped, sample_input)
  flat = {}
  for col, tree in dict(variables).items():
    for path, value in flatten_dict(dict(tree)).items():
      flat[tuple(path)] = value
  found = set()
  for path, var in nnx.iter_graph(wrapped):
    if isinstance(var, nnx.Variable) and tuple(path) in flat:
      new = flat[tuple(path)]
      if np.shape(new) != np.shape(var.get_value()):
        raise ConversionError(
          f'variable {"/".join(map(str, path))} has shape {np.shape(new)}, the '
          f'module expects {np.shape(var.get_value())}.')
      var.set_value(jax.numpy.asarray(new))
      found.add(tuple(path))
  missing = set(flat) - found
  if missing:
    raise ConversionError(f'variables not used by the module: {sorted(map(str, missing))}')
  return adopt(wrapped)
