"""A small bridge from BrainState-style training to optax.

:class:`OptaxOptimizer` takes the path-keyed ``states()`` mapping of the
parameters and applies any ``optax.GradientTransformation`` (schedules and
``optax.chain`` included) to the path-keyed gradient dicts that
:func:`brainstate_nnx.transform.grad` returns. The optax state lives in a
:class:`~brainstate_nnx.LongTermState`, so a zero-argument step under
:func:`brainstate_nnx.transform.jit` threads it like any other State.

Example::

  >>> import jax.numpy as jnp, optax
  >>> import brainstate_nnx as brainstate
  >>> w = brainstate.ParamState(jnp.array([1.0, -2.0]))
  >>> params = {('w',): w}
  >>> opt = brainstate.optim.OptaxOptimizer(optax.sgd(0.5), params)
  >>> @brainstate.transform.jit
  ... def step():
  ...   grads = brainstate.transform.grad(lambda: jnp.sum(w.value ** 2), params)()
  ...   opt.update(grads)
  >>> step(); w.value
  Array([0., 0.], dtype=float32)
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import optax

from ._state import LongTermState, State

__all__ = ['OptaxOptimizer', 'OptimizerState']


class OptimizerState(LongTermState):
  """The State holding an optimizer's optax state pytree."""

  __module__ = 'brainstate_nnx.optim'


class OptaxOptimizer:
  """Applies an optax transformation to path-keyed States.

  Args:
    tx: any ``optax.GradientTransformation`` (e.g. ``optax.adam(1e-3)``,
      ``optax.chain(optax.clip_by_global_norm(1.0), optax.adam(sched))``).
    params: optional mapping ``{key: State}`` (e.g.
      ``model.states(ParamState)``); same as calling
      :meth:`register_trainable_weights`.

  Attributes:
    param_states: the registered ``{key: State}`` mapping.
    opt_state: an :class:`OptimizerState` holding ``tx``'s state.
    step: a ``LongTermState`` counting updates.
  """

  def __init__(self, tx: optax.GradientTransformation, params: Mapping[Any, State] | None = None):
    if not (hasattr(tx, 'init') and hasattr(tx, 'update')):
      raise TypeError(f'tx must be an optax.GradientTransformation, got {type(tx).__name__}')
    self.tx = tx
    self.param_states: dict[Any, State] = {}
    self.opt_state: OptimizerState | None = None
    self.step = LongTermState(jax.numpy.zeros((), jax.numpy.int32), name='step')
    if params is not None:
      self.register_trainable_weights(params)

  def register_trainable_weights(self, params: Mapping[Any, State]) -> 'OptaxOptimizer':
    """Registers the ``{key: State}`` parameters and initialises ``tx``'s state."""
    if isinstance(params, State):
      raise TypeError('pass a mapping {key: State}, e.g. model.states(ParamState)')
    params = dict(params)
    for k, st in params.items():
      if not isinstance(st, State):
        raise TypeError(f'parameter {k!r} is a {type(st).__name__}, not a State')
    self.param_states = params
    self.opt_state = OptimizerState(self.tx.init(self._values()), name='opt_state')
    return self

  def _values(self) -> dict:
    return {k: st.value for k, st in self.param_states.items()}

  def update(self, grads: Mapping[Any, Any]) -> None:
    """Applies one optax step with ``grads`` keyed like the registered States."""
    if self.opt_state is None:
      raise ValueError('call register_trainable_weights(params) before update(grads)')
    grads = dict(grads)
    if grads.keys() != self.param_states.keys():
      missing = set(self.param_states) - set(grads)
      extra = set(grads) - set(self.param_states)
      raise KeyError(
        f'gradient keys do not match the registered parameters; missing: '
        f'{sorted(map(str, missing))}, unexpected: {sorted(map(str, extra))}'
      )
    params = self._values()
    grads = {k: grads[k] for k in params}
    updates, new_state = self.tx.update(grads, self.opt_state.value, params)
    self.opt_state.value = new_state
    new_params = optax.apply_updates(params, updates)
    for k, st in self.param_states.items():
      st.value = new_params[k]
    self.step.value = self.step.value + 1

  def __repr__(self):
    return f'OptaxOptimizer(tx={self.tx!r}, params={len(self.param_states)})'
