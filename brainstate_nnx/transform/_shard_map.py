"""State-aware ``shard_map``: SPMD over a device mesh with States.

The States a function touches are found by an abstract trace (with the mesh
axes bound, so collectives trace), then passed to :func:`jax.shard_map` as
explicit inputs, replicated unless a spec says otherwise; the written ones
come back as outputs and are assigned afterwards.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional, Union

import jax
from jax.sharding import NamedSharding, PartitionSpec

from .. import _context
from .._context import CaptureFrame
from ._lanes import probe_lanes

__all__ = ['shard_map']


def _spec_table(table):
  if isinstance(table, dict):
    return {id(k): v for k, v in table.items()}
  return table


def _spec_of(st, table) -> PartitionSpec:
  if table is None:
    return PartitionSpec()
  if isinstance(table, dict):
    return table.get(id(st), PartitionSpec())
  return table


def _explain_shape_error(exc, states, state_specs, arg_specs):
  """A clearer error when a replicated State meets sharded data, else None."""
  msg = str(exc)
  low = msg.lower()
  if not ('incompatible shapes' in low or 'broadcast' in low
          or ('shape' in low and 'mismatch' in low)):
    return None
  replicated = [st for st, sp in zip(states, state_specs) if sp == PartitionSpec()]
  if not replicated or all(sp == PartitionSpec() for sp in arg_specs):
    return None
  kinds = ', '.join(sorted({type(st).__name__ for st in replicated}))
  hint = (
    f'{msg}\n\nStates not listed in state_in_specs are replicated: every shard '
    'sees their full, global value, while the sharded arguments are per-shard '
    'slices. Give a per-shard State a partition, e.g. '
    f"state_in_specs={{state: P('x')}} (and state_out_specs when it is written). "
    f'Replicated State types: {kinds}.'
  )
  try:
    return type(exc)(hint)
  except Exception:
    return RuntimeError(hint)


def shard_map(
  fun: Callable,
  mesh: jax.sharding.Mesh,
  in_specs: Any,
  out_specs: Any,
  *,
  state_in_specs: Optional[Union[PartitionSpec, Dict[Any, PartitionSpec]]] = None,
  state_out_specs: Optional[Union[PartitionSpec, Dict[Any, PartitionSpec]]] = None,
  check_vma: bool = True,
) -> Callable:
  """Runs ``fun`` on shards of its arguments across ``mesh``, with States.

  Like :func:`jax.shard_map`: positional arguments are split according to
  ``in_specs`` (one ``PartitionSpec`` per argument, or one for all) and the
  result assembled according to ``out_specs``. The States ``fun`` reads or
  writes through closures are inputs too: replicated by default, or split by
  ``state_in_specs`` (a ``PartitionSpec`` for all States, or
  ``{State: PartitionSpec}``). Written States are assembled by
  ``state_out_specs`` (same forms; replicated by default) and assigned
  afterwards. Keyword arguments are closed over (not split). Inputs are
  placed on the mesh with :func:`jax.device_put`, so the wrapper works eagerly
  and under ``jit``.

  Example (with 4 devices)::

    >>> import jax, jax.numpy as jnp
    >>> from jax.sharding import PartitionSpec as P
    >>> import brainstate_nnx as brainstate
    >>> from brainstate_nnx.transform import shard_map
    >>> mesh = jax.make_mesh((jax.device_count(),), ('x',))
    >>> total = brainstate.State(jnp.zeros(()))
    >>> def f(data):
    ...   total.value = total.value + jax.lax.psum(data.sum(), 'x')
    ...   return data * 2
    >>> g = shard_map(f, mesh, in_specs=P('x'), out_specs=P('x'))
    >>> g(jnp.arange(8.))
    Array([ 0.,  2.,  4.,  6.,  8., 10., 12., 14.], dtype=float32)
    >>> total.value
    Array(28., dtype=float32)
  """
  arg_specs = tuple(in_specs) if isinstance(in_specs, (tuple, list)) else None
  sin = _spec_table(state_in_specs)
  sout = _spec_table(state_out_specs)

  @functools.wraps(fun)
  def wrapped(*args, **kwargs):
    touched, written = probe_lanes(fun, args, kwargs=kwargs, trace_all=True,
                              axis_env=tuple(mesh.shape.items()))
    if arg_specs is None:
      local_specs = tuple(in_specs for _ in args)
    else:
      if len(arg_specs) != len(args):
        raise ValueError(
          f'in_specs has {len(arg_specs)} entries but {len(args)} positional '
          'arguments were given.'
        )
      local_specs = arg_specs
    state_specs = tuple(_spec_of(st, sin) for st in touched)
    write_specs = tuple(_spec_of(st, sout) for st in written)
    read = _context.read_value
    values = [read(st) for st in touched]

    def collect(frame):
      extra = frame.written_other()
      if extra:
        raise RuntimeError(
          'shard_map: the function wrote State(s) its discovery trace did not '
          'see: ' + ', '.join(_context.describe(s) for s in extra)
          + '. Make the States it writes independent of the data.'
        )
      return tuple(st._raw_value for st in written)

    def pure(state_vals, shard_args):
      frame = CaptureFrame(wrapped, touched)
      return _context.run_in_frame(frame, list(state_vals), fun, shard_args, kwargs,
                                   what='shard_map', collect=collect)

    placed_states = tuple(
      jax.device_put(v, NamedSharding(mesh, sp)) for v, sp in zip(values, state_specs)
    )
    placed_args = tuple(
      jax.device_put(a, NamedSharding(mesh, sp)) for a, sp in zip(args, local_specs)
    )
    sharded = jax.shard_map(
      pure, mesh=mesh, in_specs=(state_specs, local_specs),
      out_specs=(out_specs, write_specs), check_vma=check_vma,
    )
    try:
      out, new_vals = sharded(placed_states, placed_args)
    except Exception as e:
      better = _explain_shape_error(e, touched, state_specs, local_specs)
      if better is not None:
        raise better from e
      raise
    _context.write_back(written, new_vals)
    return out

  return wrapped

