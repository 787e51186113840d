"""State-aware ``eval_shape``: the abstract output of a stateful function.

The function runs once under a :class:`~brainstate_nnx._context.ProbeFrame`
inside :func:`jax.eval_shape`: States read keep their values, writes are
undone, and Modules built inside come back with
:class:`jax.ShapeDtypeStruct` leaves.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
from flax import nnx

from .. import _context
from .._context import ProbeFrame

__all__ = ['eval_shape']


# --------------------------------------------------------------------------
# eval_shape
# --------------------------------------------------------------------------

def _is_graph_node(x) -> bool:
  return isinstance(x, (nnx.Variable, nnx.Pytree))


def _has_graph_node(tree) -> bool:
  return any(_is_graph_node(x) for x in jax.tree.leaves(tree, is_leaf=_is_graph_node))


def _touched_values(frame):
  touched = list(frame.touched.values())
  return touched, [st._raw_value for st in touched]


def eval_shape(f: Callable, *args: Any, return_state_shapes: bool = False, **kwargs: Any):
  """The abstract output of ``f(*args, **kwargs)``, computed without running it.

  Like :func:`jax.eval_shape`, but States may be used through closures: they
  are read as usual and every write is undone, so no State changes value.
  Arguments may be arrays, :class:`jax.ShapeDtypeStruct` s, pytrees of them,
  or Modules/States (those are used as they are, not traced). When ``f``
  returns Modules or States (e.g. ``lambda: MLP(...)``), they are rebuilt --
  shared references preserved -- with ``jax.ShapeDtypeStruct`` values, so a
  model can be described without allocating it.

  Args:
    f: the function.
    return_state_shapes: also return ``{state: shape}`` for every pre-existing
      State ``f`` reads or writes (the shape of the value it holds when ``f``
      returns); the result is then ``(state_shapes, out_shapes)``.

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform import eval_shape
    >>> h = brainstate.State(jnp.zeros(4))
    >>> def step(x):
    ...   h.value = h.value + x.sum()
    ...   return jnp.outer(x, h.value)
    >>> eval_shape(step, jax.ShapeDtypeStruct((3,), jnp.float32))
    ShapeDtypeStruct(shape=(3, 4), dtype=float32)
    >>> h.value                                  # unchanged
    Array([0., 0., 0., 0.], dtype=float32)
    >>> shapes, _ = eval_shape(step, jnp.ones(3), return_state_shapes=True)
    >>> shapes[h]
    ShapeDtypeStruct(shape=(4,), dtype=float32)

  Abstract model construction::

    >>> class Lin(brainstate.nn.Module):
    ...   def __init__(self, n):
    ...     super().__init__()
    ...     self.w = brainstate.ParamState(jnp.ones((n, n)))
    >>> lin = eval_shape(lambda: Lin(1000))
    >>> lin.w.value
    ShapeDtypeStruct(shape=(1000, 1000), dtype=float32)
  """
  leaves, treedef = jax.tree.flatten((args, kwargs), is_leaf=_is_graph_node)
  dyn_pos = [i for i, x in enumerate(leaves) if not _is_graph_node(x)]
  static = {i: x for i, x in enumerate(leaves) if _is_graph_node(x)}
  frame = ProbeFrame(None)
  box: dict = {}

  def run(*dyn_leaves):
    it = iter(dyn_leaves)
    full = [static[i] if i in static else next(it) for i in range(len(leaves))]
    a, k = treedef.unflatten(full)
    out, (touched, state_values) = _context.run_in_frame(
      frame, (), f, a, k, what='eval_shape', collect=_touched_values)
    box['touched'] = touched
    if _has_graph_node(out):
      # after the frame: splitting must not count as a use of the States
      graphdef, out = nnx.split(out)
      box['graphdef'] = graphdef
    return out, state_values

  with jax.disable_jit(False):
    out, state_shapes = jax.eval_shape(run, *[leaves[i] for i in dyn_pos])
  if 'graphdef' in box:
    out = nnx.merge(box['graphdef'], out)
  if return_state_shapes:
    return dict(zip(box['touched'], state_shapes)), out
  return out


