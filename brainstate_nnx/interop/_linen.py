"""``to_linen`` / ``from_linen``: brainstate_nnx models and ``flax.linen``.

``to_linen(model)`` gives ``(linen_module, variables)``: a linen module that
runs a fresh copy of ``model`` with the values of ``variables`` (``'params'``
for ``nnx.Param`` s, the State class name for the other States, e.g.
``'HiddenState'``; mark those mutable in ``apply`` to get them back).
``from_linen(module, variables)`` gives a brainstate_nnx Module holding
``variables`` as States and calling ``module.apply`` with them.

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

from ._errors import ConversionError

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
  graphdef, state = nnx.split(snapshot)
  # a fresh model per call, built without reading the snapshot's States
  # through the transforms' hooks (the call may run under a raw jax.jit)
  return BrainStateLinen(lambda: nnx.merge(graphdef, state, copy=True), method), variables


def from_linen(module: linen.Module, variables: Any, *, sample_input: Any = None) -> Any:
  """A brainstate_nnx Module running the linen ``module`` with ``variables``.

  ``variables['params']`` becomes one :class:`~brainstate_nnx.ParamState`
  (``.params``, the whole parameter tree: ``transform.grad`` and optax work
  on it); every other collection (``batch_stats``, ...) a
  :class:`~brainstate_nnx.LongTermState` in ``.collections``, updated by each
  call (those collections are applied as mutable). Keyword ``rngs`` of a
  call goes to ``module.apply``. ``sample_input``, if given, is run once to
  check that the variables fit the module.
  """
  from .._state import LongTermState, ParamState
  from ..nn import Module

  variables = dict(variables)
  if 'params' not in variables and variables:
    raise ConversionError(
      "variables must be what module.init(...) returns: {'params': ..., ...}")

  class FromLinen(Module):
    """A linen module as a brainstate_nnx Module."""

    def __init__(self):
      super().__init__()
      self.params = ParamState(variables.get('params', {}))
      self.collections = {k: LongTermState(v) for k, v in variables.items() if k != 'params'}
      self._module = module

    def __call__(self, *args, rngs=None, **kwargs):
      extra = {k: st.value for k, st in self.collections.items()}
      mutable = list(extra)
      out = self._module.apply({'params': self.params.value, **extra}, *args,
                               rngs=rngs, mutable=mutable or False, **kwargs)
      if mutable:
        out, updates = out
        for k, v in updates.items():
          if k in self.collections:
            self.collections[k].value = v
      return out

  ours = FromLinen()
  if sample_input is not None:
    try:
      jax.eval_shape(lambda x: module.apply(variables, x, mutable=True), sample_input)
    except Exception as err:
      raise ConversionError(f'the variables do not fit the module: {err}') from err
  return ours
