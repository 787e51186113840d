"""State-aware branching: ``cond``, ``switch`` and ``ifelse``.

Each branch may read and write States through closures, exactly as in plain
Python. Before the JAX primitive is built, every branch is traced abstractly
(:func:`~brainstate_nnx._context.probe_states`) to learn which States it
touches. The States written by *any* branch become explicit operands and
outputs of :func:`jax.lax.cond` / :func:`jax.lax.switch`; a branch that does
not write one of them hands its incoming value straight back, so the State
keeps its old value when that branch is taken. States that are only read are
swapped in as they are (an enclosing transform threads them). After the
primitive returns, the selected values are assigned to the States.

Called inside the abstract dry run of an enclosing transform (the innermost
frame is a :class:`~brainstate_nnx._context.ProbeFrame`), a control-flow
call neither probes nor builds a primitive: it runs its function(s) once
directly, so the enclosing probe records every State they touch, and returns
abstract outputs of the right structure, shapes and dtypes (see
:func:`in_dry_run`). Without this shortcut the innermost body of ``k``
nested control-flow calls would be traced ``2 ** k`` times.

The machinery shared with the loops lives in :mod:`._state_plan`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._state_plan import (
  StatePlan, abstract, dry_calls, func_name, in_dry_run, out_struct, probe_fn,
)

__all__ = ['cond', 'switch', 'ifelse']


def _check_same_outputs(what: str, names: Sequence[str], outs: Sequence[Any]):
  """Raises a TypeError naming the user functions when branch outputs differ."""
  ref_tree = jax.tree.structure(outs[0])
  ref_leaves = jax.tree.leaves(outs[0])
  for name, out in zip(names[1:], outs[1:]):
    tree = jax.tree.structure(out)
    if tree != ref_tree:
      raise TypeError(
        f'{what}: all branches must return the same pytree structure, but '
        f'{names[0]} returned {ref_tree} and {name} returned {tree}.'
      )
    for k, (a, b) in enumerate(zip(ref_leaves, jax.tree.leaves(out))):
      if isinstance(a, jax.ShapeDtypeStruct) and isinstance(b, jax.ShapeDtypeStruct):
        if a.shape != b.shape or a.dtype != b.dtype:
          raise TypeError(
            f'{what}: all branches must return arrays of the same shape and '
            f'dtype, but output leaf {k} is {a.dtype}{list(a.shape)} in '
            f'{names[0]} and {b.dtype}{list(b.shape)} in {name}.'
          )


def _run_branches(what: str, select: Callable, branches: Sequence[Callable],
                  operands: tuple, names: Sequence[str] | None = None):
  """Builds the stateful branches and calls ``select(branch_fns, *ops)``."""
  if names is None:
    names = [f'branch {k} ({func_name(b)})' for k, b in enumerate(branches)]
  if in_dry_run():
    # every branch runs (a State may be written by one branch only); the
    # primitive's outputs have the abstract values of branch 0's outputs
    operands = abstract(operands)
    outs = dry_calls(what, [(n, b, operands, True) for n, b in zip(names, branches)],
                      keep=0)
    _check_same_outputs(what, names, [jax.tree.map(out_struct, o) for o in outs])
    return abstract(outs[0])
  probes = [probe_fn(b, *operands) for b in branches]
  _check_same_outputs(what, names, [p[2] for p in probes])
  plan = StatePlan(what, [p[:2] for p in probes])

  def make(fn, name):
    def branch(written_values, *ops):
      out, new_values = plan.run(fn, written_values, ops, name=name)
      return new_values, out
    return branch

  fns = [make(b, n) for b, n in zip(branches, names)]
  with plan.explained():
    new_values, out = select(fns, plan.initial(), *operands)
  plan.assign(new_values)
  return out


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

def cond(pred, true_fun: Callable, false_fun: Callable, *operands) -> Any:
  """Runs ``true_fun(*operands)`` if ``pred`` holds, else ``false_fun(*operands)``.

  A compiled ``if``/``else``: the choice is made at run time (``pred`` may be
  a traced value inside ``jit``), and only the selected branch's effects take
  place. Both branches may read and write States through closures; a State
  that only one branch writes keeps its old value when the other branch runs.
  Both branches must return outputs of the same structure, shapes and dtypes.

  Args:
    pred: a scalar boolean, or a scalar number (non-zero means true).
    true_fun: called with ``*operands`` when ``pred`` is true.
    false_fun: called with ``*operands`` when ``pred`` is false.
    *operands: arguments passed to the selected branch (pytrees of arrays).

  Returns:
    What the selected branch returned.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> hits = brainstate.State(jnp.array(0))
    >>> def count(x):
    ...   hits.value += 1
    ...   return x * 2
    >>> @brainstate.transform.jit
    ... def f(x):
    ...   return brainstate.transform.cond(x > 0, count, lambda x: -x, x)
    >>> float(f(3.0)), float(f(-2.0))
    (6.0, 2.0)
    >>> int(hits.value)  # only the first call took the branch that counts
    1
  """
  if not (callable(true_fun) and callable(false_fun)):
    raise TypeError('cond: true_fun and false_fun must be callable.')
  if pred is None:
    raise TypeError('cond: the predicate is None.')
  if isinstance(pred, Sequence) or np.ndim(pred) != 0:
    raise TypeError(
      f'cond: the predicate must be a scalar, got {type(pred).__name__} with '
      f'shape {np.shape(pred)}.'
    )
  try:
    kind = jax.dtypes.result_type(pred).kind
  except TypeError as e:
    raise TypeError(
      f'cond: the predicate must be a boolean or a number, got {pred!r}.'
    ) from e
  if kind != 'b':
    if kind not in 'iuf':
      raise TypeError(
        f'cond: the predicate must be a boolean or a number, got dtype '
        f'{jax.dtypes.result_type(pred)}.'
      )
    pred = pred != 0

  if jax.config.jax_disable_jit and not isinstance(pred, jax.core.Tracer):
    return true_fun(*operands) if pred else false_fun(*operands)

  def select(fns, written_values, *ops):
    false_b, true_b = fns
    return jax.lax.cond(pred, true_b, false_b, written_values, *ops)

  names = [f'false_fun ({func_name(false_fun)})', f'true_fun ({func_name(true_fun)})']
  return _run_branches('cond', select, [false_fun, true_fun], operands, names)


def switch(index, branches: Sequence[Callable], *operands) -> Any:
  """Runs ``branches[index](*operands)``, choosing the branch at run time.

  ``index`` is clamped to ``[0, len(branches) - 1]``. Branches may read and
  write States through closures; a State written by some branches keeps its
  old value when another branch runs. All branches must return outputs of
  the same structure, shapes and dtypes.

  Args:
    index: a scalar integer (may be traced).
    branches: a sequence of callables, each called with ``*operands``.
    *operands: arguments passed to the selected branch.

  Returns:
    What the selected branch returned.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> mode = brainstate.State(jnp.array(0.0))
    >>> def rest(x): return x
    >>> def fire(x):
    ...   mode.value = x
    ...   return x + 1
    >>> def reset(x):
    ...   mode.value = jnp.zeros_like(x)
    ...   return x - 1
    >>> out = brainstate.transform.switch(1, [rest, fire, reset], jnp.array(5.0))
    >>> float(out), float(mode.value)
    (6.0, 5.0)
    >>> out = brainstate.transform.switch(7, [rest, fire, reset], jnp.array(5.0))  # clamped
    >>> float(out), float(mode.value)
    (4.0, 0.0)
  """
  branches = tuple(branches)
  if not all(callable(b) for b in branches):
    raise TypeError('switch: branches must be a sequence of callables.')
  if np.ndim(index) != 0:
    raise TypeError(
      f'switch: the branch index must be a scalar, got shape {np.shape(index)}.'
    )
  try:
    dtype = jax.dtypes.result_type(index)
  except TypeError as e:
    raise TypeError(f'switch: the branch index must be an integer, got {index!r}.') from e
  if dtype.kind not in 'iu':
    raise TypeError(f'switch: the branch index must be an integer, got dtype {dtype}.')
  if not branches:
    raise ValueError('switch: the sequence of branches is empty.')
  if len(branches) == 1:
    return branches[0](*operands)

  index = jax.lax.clamp(
    np.int32(0), jax.lax.convert_element_type(index, np.int32),
    np.int32(len(branches) - 1),
  )
  if jax.config.jax_disable_jit and not isinstance(index, jax.core.Tracer):
    return branches[int(index)](*operands)

  def select(fns, written_values, *ops):
    return jax.lax.switch(index, fns, written_values, *ops)

  return _run_branches('switch', select, branches, operands)


def _check_exactly_one(flags) -> None:
  """Host-side check (a debug callback) that exactly one condition holds."""
  flags = np.asarray(flags)
  if np.any(flags.sum(axis=-1) != 1):
    raise ValueError(
      'ifelse: exactly one condition must be True, but got '
      f'{flags.astype(bool).tolist()}.'
    )


def ifelse(conditions, branches: Sequence[Callable], *operands,
           check_cond: bool = True) -> Any:
  """A compiled ``if / elif / ... / else`` chain over mutually exclusive conditions.

  ``branches[k](*operands)`` runs for the condition ``conditions[k]`` that is
  true. With ``check_cond=True`` (the default) exactly one condition must be
  true; otherwise a ``ValueError`` is raised (immediately for concrete
  conditions, when the compiled program runs for traced ones). With
  ``check_cond=False`` the first true condition wins, and the last branch
  runs when none is true. States are handled as in :func:`switch`.

  Args:
    conditions: a sequence of scalar booleans (may be traced).
    branches: one callable per condition.
    *operands: arguments passed to the selected branch.
    check_cond: verify that exactly one condition is true.

  Returns:
    What the selected branch returned.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> def sign(x):
    ...   return brainstate.transform.ifelse(
    ...     [x > 0, x == 0, x < 0],
    ...     [lambda: 1.0, lambda: 0.0, lambda: -1.0])
    >>> float(sign(jnp.array(3.0))), float(sign(jnp.array(-0.5)))
    (1.0, -1.0)
  """
  branches = tuple(branches)
  if not all(callable(b) for b in branches):
    raise TypeError('ifelse: branches must be a sequence of callables.')
  if not branches:
    raise ValueError('ifelse: the sequence of branches is empty.')
  if len(conditions) != len(branches):
    raise ValueError(
      f'ifelse: got {len(conditions)} conditions for {len(branches)} branches; '
      'there must be one condition per branch.'
    )
  if len(branches) == 1:
    return branches[0](*operands)

  flags = jnp.asarray([jnp.asarray(c) for c in conditions]).astype(np.int32)
  if check_cond:
    if isinstance(flags, jax.core.Tracer):
      jax.debug.callback(_check_exactly_one, flags, ordered=True)
    else:
      _check_exactly_one(flags)
  n = len(branches)
  index = jnp.where(jnp.any(flags != 0), jnp.argmax(flags != 0), n - 1)
  return switch(index, branches, *operands)
