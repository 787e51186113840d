"""Lanes of a mapped call: the helpers ``vmap2``/``pmap2``, ``map`` and the
``*_new_states`` builders share.

Axis bookkeeping (which leaf is mapped on which axis, the batch size), the
filters that select States (``state_in_axes``), one-lane dry runs
(:func:`run_one_lane`, :func:`probe_lanes`) and static arguments.

Example::

  >>> import jax.numpy as jnp
  >>> from brainstate_nnx.transform._lanes import mapped_size
  >>> mapped_size((jnp.ones((4, 2)), 3.0), (0, None), {}, [], None)
  4
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Hashable, Optional

import jax
import numpy as np
from jax.api_util import flatten_axes

from .. import _context
from .._context import Frame
from .._error import BatchAxisError
from .._state import State
from ..util.filter import to_predicate

try:  # the tracer type of jax.vmap, read to learn the batch axis of a write
  from jax._src.interpreters.batching import BatchTracer
except ImportError:  # pragma: no cover - a JAX without it: axes are not read
  BatchTracer = ()

try:
  from jax._src.core import trace_ctx as _trace_ctx

  def current_trace():
    """The JAX trace of the running transformation."""
    return _trace_ctx.trace
except ImportError:  # pragma: no cover - a JAX without it
  def current_trace():
    """The JAX trace of the running transformation (unknown here)."""
    return None


def random_state_type():
  from ..random._state import RandomState

  return RandomState


# --------------------------------------------------------------------------
# state selectors
# --------------------------------------------------------------------------

def identity_predicate(states) -> Callable:
  states = list(states)  # (kept alive, so that their ids stay theirs)
  ids = frozenset(id(s) for s in states)

  def is_one_of(path, x, _states=states):
    return id(x) in ids

  return is_one_of


def selector(value) -> Callable:
  """A predicate from a filter, a State, or a non-empty collection of States."""
  if isinstance(value, State):
    return identity_predicate([value])
  if (isinstance(value, (list, tuple, set, frozenset)) and value
      and all(isinstance(v, State) for v in value)):
    return identity_predicate(value)
  return to_predicate(value)


def normalize_state_axes(spec) -> Dict[Any, Callable]:
  """``{axis: predicate}`` from a ``state_in_axes`` / ``state_out_axes`` spec."""
  if spec is None:
    return {}
  if isinstance(spec, dict):
    return {axis: selector(v) for axis, v in spec.items()}
  return {0: selector(spec)}


def first_match(preds: Dict[Any, Callable], st) -> tuple[bool, Any]:
  for axis, pred in preds.items():
    if pred((), st):
      return True, axis
  return False, None


# --------------------------------------------------------------------------
# axes, sizes and signatures
# --------------------------------------------------------------------------

def leaf_axes(args: tuple, in_axes) -> tuple[list, Any, list]:
  """``(leaves, treedef, axis per leaf)`` of the positional arguments."""
  leaves, tree = jax.tree.flatten(tuple(args))
  if in_axes is None:
    return leaves, tree, [None] * len(leaves)
  spec = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
  return leaves, tree, list(flatten_axes('vmap in_axes', tree, spec))


def axis_len(x, axis: int) -> int:
  shape = np.shape(x)
  if not shape:
    raise ValueError(
      f'Cannot map axis {axis} of a value without array dimensions '
      f'({type(x).__name__}); broadcast it with an in_axes entry of None.'
    )
  return shape[axis]


class SizeError(ValueError):
  """The mapped inputs disagree on the mapped size."""


def mapped_size(args, in_axes, kwargs, fed, axis_size) -> int:
  """The mapped size, checked for consistency like BrainState does.

  ``fed`` lists ``(State value, axis)`` of the States mapped on input.
  """
  sizes = []
  if args:
    leaves, _, axes = leaf_axes(args, in_axes)
    sizes.extend(axis_len(x, ax) for x, ax in zip(leaves, axes) if ax is not None)
  for x in jax.tree.leaves(kwargs):
    sizes.append(axis_len(x, 0))
  for value, ax in fed:
    leaves = jax.tree.leaves(value)
    if leaves:
      sizes.append(axis_len(leaves[0], ax))
  if not sizes:
    if axis_size is None:
      raise ValueError(
        'Unable to determine the mapped axis size: no argument, keyword '
        'argument or State is mapped. Specify axis_size.'
      )
    return int(axis_size)
  if axis_size is not None and axis_size not in set(sizes):
    raise SizeError(
      f'axis_size={axis_size} conflicts with the mapped axis size(s) '
      f'{sorted(set(sizes))} of the arguments/States.'
    )
  if len(set(sizes)) > 1:
    raise SizeError(f'Inconsistent mapped axis sizes: {sorted(set(sizes))}')
  return int(sizes[0])


def leaf_axis_size(value, axis: int) -> Optional[int]:
  leaves = jax.tree.leaves(value)
  if not leaves:
    return None
  shape = np.shape(leaves[0])
  if axis < 0:
    axis += len(shape)
  return shape[axis] if 0 <= axis < len(shape) else None


def abstract_key(x):
  try:
    t = jax.typeof(x)
    return (t.shape, str(t.dtype), bool(getattr(t, 'weak_type', False)))
  except Exception:
    return (type(x),)


def signature(static: tuple, dyn_args: tuple, dyn_kwargs: dict) -> Hashable:
  leaves, tree = jax.tree.flatten((dyn_args, dyn_kwargs))
  key = (static, tree, tuple(abstract_key(x) for x in leaves))
  try:
    hash(key)
  except TypeError:
    return ('<unhashable static arguments>', tree)
  return key


def lane_placeholder(value, axis: int):
  """A trace-free value shaped like one lane of ``value`` along ``axis``."""

  def one(x):
    shape = tuple(np.shape(x))
    a = axis + len(shape) if axis < 0 else axis
    if not 0 <= a < len(shape):
      raise ValueError(
        f'Mapped axis {axis} is out of bounds for a State value of shape {shape}.'
      )
    lane = shape[:a] + shape[a + 1:]
    try:
      return np.zeros(lane, dtype=jax.typeof(x).dtype)
    except TypeError:  # extended dtypes (PRNG keys): one real lane
      return jax.lax.index_in_dim(x, 0, a, keepdims=False)

  return jax.tree.map(one, value)


def take_lane(x, axis: int):
  """Lane 0 of ``x`` along ``axis``."""
  if isinstance(x, np.ndarray):
    return np.take(x, 0, axis=axis)
  if not np.shape(x):
    axis_len(x, axis)  # raises a clear error
  return jax.lax.index_in_dim(x, 0, axis, keepdims=False)


def run_one_lane(frame: Frame, fn: Callable, args: tuple, in_axes, kwargs,
                  axis_name=None, axis_size=None) -> None:
  """Runs ``fn`` on lane 0 of ``args`` / ``kwargs`` with ``frame`` active.

  The lane runs under a ``jax.vmap`` that maps nothing: values stay concrete
  (Python control flow on them works as under a real ``jax.vmap``), the
  frame gets a trace of its own and ``axis_name`` is bound for collectives.
  """
  leaves, tree, axes = leaf_axes(args, in_axes)
  lane_args = tree.unflatten(
    [x if ax is None else take_lane(x, ax) for x, ax in zip(leaves, axes)])
  lane_kwargs = jax.tree.map(lambda x: take_lane(x, 0), kwargs or {})
  try:
    size = mapped_size(args, in_axes, kwargs or {}, [], axis_size)
  except ValueError:
    size = axis_size or 1

  def run():
    _context.run_in_frame(frame, (), fn, tuple(lane_args), lane_kwargs, what='vmap2')
    return 0

  jax.vmap(run, in_axes=(), out_axes=None, axis_size=size, axis_name=axis_name)()


def batch_dim(value, trace) -> Optional[int]:
  """The axis ``value`` is batched on by the ``jax.vmap`` trace ``trace``."""
  dims = set()
  for leaf in jax.tree.leaves(value):
    if isinstance(leaf, BatchTracer) and (trace is None or leaf._trace is trace):
      d = leaf.batch_dim
      if d is not None:
        dims.add(int(d))
  if not dims:
    return None
  if len(dims) > 1:
    raise BatchAxisError(
      f'A State value is batched on different axes in different leaves: '
      f'{sorted(dims)}. All leaves of a State must share their batch axis.'
    )
  return dims.pop()


def is_vmap(fn) -> bool:
  while isinstance(fn, functools.partial):
    fn = fn.func
  return fn is jax.vmap


# --------------------------------------------------------------------------
# static arguments (closed over, as jax.jit does)
# --------------------------------------------------------------------------

def ensure_tuple(x) -> tuple:
  if x is None:
    return ()
  if isinstance(x, (int, str)):
    return (x,)
  return tuple(x)


def static_positions(static_argnums, n: int) -> frozenset:
  out = set()
  for i in static_argnums:
    j = i + n if i < 0 else i
    if not 0 <= j < n:
      raise ValueError(
        f'static_argnums={tuple(static_argnums)} refers to positional argument '
        f'{i}, but the function was called with {n} positional argument(s).'
      )
    out.add(j)
  return frozenset(out)


def close_static(f, in_axes, positions: frozenset, args: tuple):
  if not positions:
    return f, args, in_axes, ()
  n = len(args)
  fixed = {i: args[i] for i in positions}
  dyn = tuple(a for i, a in enumerate(args) if i not in positions)

  @functools.wraps(f)
  def closed(*dyn_args, **kwargs):
    it = iter(dyn_args)
    return f(*[fixed[i] if i in fixed else next(it) for i in range(n)], **kwargs)

  if isinstance(in_axes, tuple) and len(in_axes) == n:
    in_axes = tuple(ax for i, ax in enumerate(in_axes) if i not in positions)
  return closed, dyn, in_axes, tuple(sorted(fixed.items(), key=lambda kv: kv[0]))


# --------------------------------------------------------------------------
# abstract probing
# --------------------------------------------------------------------------

def probe_lanes(fn: Callable, args: tuple = (), in_axes=None, kwargs=None,
           axis_env=None, trace_all: bool = False) -> tuple[list, list]:
  """``(touched, written)`` States of ``fn(*args, **kwargs)``, found abstractly.

  Leaves of ``args`` mapped by ``in_axes`` are replaced by abstract one-lane
  values; with ``trace_all`` the other array leaves are abstract too (at
  their full shape); the remaining leaves and ``kwargs`` are closed over
  unchanged. ``axis_env`` binds axis names for collectives.
  """
  leaves, tree, axes = leaf_axes(args, in_axes)
  traced = []
  structs = []
  for i, (x, ax) in enumerate(zip(leaves, axes)):
    if ax is None and not (trace_all and isinstance(x, (jax.Array, np.ndarray))):
      continue
    t = jax.typeof(x)
    shape = tuple(t.shape)
    if ax is not None:
      a = ax + len(shape) if ax < 0 else ax
      shape = shape[:a] + shape[a + 1:]
    traced.append(i)
    structs.append(jax.ShapeDtypeStruct(shape, t.dtype))
  def run(*lane):
    filled = list(leaves)
    for i, v in zip(traced, lane):
      filled[i] = v
    fn(*tree.unflatten(filled), **(kwargs or {}))

  return _context.probe(run, tuple(structs), axis_env=axis_env, report=False)


