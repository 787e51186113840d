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
from flax import nnx

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
    """Registers the parameters and initialises ``tx``'s state.

    ``params`` is a mapping ``{key: State}`` (e.g. ``model.states(ParamState)``),
    a Module (its ``nnx.Param`` States, keyed by path: the same keys as
    ``grad(loss, model.states(nnx.Param))``), or a list/tuple of States (then
    :meth:`update` takes the gradients as a list/tuple in the same order, as
    ``grad(loss, [w, b])`` returns them).
    """
    from flax import nnx

    self._sequence = False
    if isinstance(params, State):
      raise TypeError(
        'OptaxOptimizer needs several parameters: pass a mapping {key: State} '
        '(e.g. model.states(brainstate.ParamState)), a Module, or a list of '
        f'States such as [{type(params).__name__}], not a single State.'
      )
    if isinstance(params, nnx.Module):
      from .nn import states as _states

      params = _states(params, nnx.Param)
    elif isinstance(params, (list, tuple)):
      self._sequence = True
      params = dict(enumerate(params))
    elif not isinstance(params, Mapping):
      raise TypeError(
        f'params must be a mapping {{key: State}} (e.g. model.states(brainstate.ParamState)), '
        f'a Module or a list of States; got {type(params).__name__}.'
      )
    params = dict(params)
    for k, st in params.items():
      if not isinstance(st, State):
        raise TypeError(
          f'parameter {k!r} is a {type(st).__name__}, not a State; pass '
          'model.states(brainstate.ParamState) or a list of ParamStates.'
        )
    self.param_states = params
    self.opt_state = OptimizerState(self.tx.init(self._values()), name='opt_state')
    return self

  def _values(self) -> dict:
    return {k: _plain_dicts(st.value) for k, st in self.param_states.items()}

  def update(self, grads: Mapping[Any, Any]) -> None:
    """Applies one optax step with ``grads`` keyed like the registered States."""
    if self.opt_state is None:
      raise ValueError('call register_trainable_weights(params) before update(grads)')
    if getattr(self, '_sequence', False):
      if not isinstance(grads, (list, tuple)) or len(grads) != len(self.param_states):
        raise ValueError(
          f'the optimizer was given {len(self.param_states)} States as a list; '
          'pass the gradients as a list/tuple in the same order (what '
          f'grad(loss, [w, b, ...]) returns), got {type(grads).__name__}'
          + (f' of length {len(grads)}' if isinstance(grads, (list, tuple)) else '')
        )
      grads = dict(enumerate(grads))
    grads = dict(grads)
    if grads.keys() != self.param_states.keys():
      missing = set(self.param_states) - set(grads)
      extra = set(grads) - set(self.param_states)
      raise KeyError(
        f'gradient keys do not match the registered parameters; missing: '
        f'{sorted(map(str, missing))}, unexpected: {sorted(map(str, extra))}'
      )
    params = self._values()
    grads = {k: _plain_dicts(grads[k]) for k in params}
    for k in params:
      p_tree, g_tree = jax.tree.structure(params[k]), jax.tree.structure(grads[k])
      if p_tree != g_tree:
        raise ValueError(
          f'gradient for parameter {k!r} has structure {g_tree}, the parameter has {p_tree}')
      for p_leaf, g_leaf in zip(jax.tree.leaves(params[k]), jax.tree.leaves(grads[k])):
        if jax.numpy.shape(p_leaf) != jax.numpy.shape(g_leaf):
          raise ValueError(
            f'gradient for parameter {k!r} has shape {jax.numpy.shape(g_leaf)}, the '
            f'parameter has shape {jax.numpy.shape(p_leaf)}; the update would '
            'change the shape of the parameter.'
          )
    updates, new_state = self.tx.update(grads, self.opt_state.value, params)
    self.opt_state.value = new_state
    new_params = optax.apply_updates(params, updates)
    for k, st in self.param_states.items():
      st.value = new_params[k]
    self.step.value = self.step.value + 1

  def __repr__(self):
    return f'OptaxOptimizer(tx={self.tx!r}, params={len(self.param_states)})'


def _plain_dicts(tree):
  """``tree`` with every ``nnx.State`` mapping turned into a plain dict.

  ``nnx.Optimizer.update`` (through ``nnx.update``) stores the new value of a
  dict-valued State (BrainState's layers hold ``{'weight': ..., 'bias': ...}``)
  as an ``nnx.State``; optax needs the structure it was initialised with.
  """
  if isinstance(tree, nnx.State):
    return tree.to_pure_dict()
  return tree
