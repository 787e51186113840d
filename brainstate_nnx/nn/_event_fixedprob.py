"""Sparse connectivity with a fixed number of targets per presynaptic neuron.

BrainState hands this to ``brainevent``'s compiled kernels. Here the
connectivity is an index matrix ``indices`` of shape ``(n_pre, conn_num)``
(row ``i`` lists the postsynaptic targets of neuron ``i``) and the product is
written in plain JAX:

* ``FixedNumConn`` (float input) scatters ``x[i] * w[i, j]`` into
  ``out[indices[i, j]]``;
* ``EventFixedNumConn`` (spike input) first turns the input into events
  (``x > 0``; booleans as they are) and scatters the weights of the neurons
  that fired. Gradients go straight through the event step: with respect to
  the spikes they are those of the float product, with respect to the weights
  those of the event product, as BrainState's.

No extra dependency, so it runs wherever JAX runs (CPU, GPU, TPU) and under
every JAX transform.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from .. import environ
from .. import random
from .._state import FakeState, ParamState
from .._units import is_quantity, maybe_attach_unit, split_mantissa_unit
from . import init as init
from ._module import Module

__all__ = ['FixedNumConn', 'EventFixedNumConn', 'EventFixedProb']


def init_indices_without_replace(conn_num: int, n_pre: int, n_post: int, seed, method: str):
  """``(n_pre, conn_num)`` targets, distinct within each row, drawn from ``random.default_rng(seed)``."""
  from .. import transform
  rng = random.default_rng(seed)

  def one_row(*_):
    return rng.choice(n_post, size=(conn_num,), replace=False)

  if method == 'vmap':
    # One key per row, split from ``rng`` as a state-aware vmap splits a
    # RandomState it draws from; ``rng`` then moves on to a fresh key.
    keys = rng.split_key(n_pre)
    after = rng.split_key()

    def lane(key):
      return random.RandomState(key).choice(n_post, size=(conn_num,), replace=False)

    rows = jax.vmap(lane)(keys)
    rng.restore_value(after)
    return rows
  if method == 'for_loop':
    return transform.for_loop(one_row, length=n_pre)
  raise ValueError(f"Unknown method: {method}. Use conn_init='vmap' or conn_init='for_loop'.")


_SCATTER_DIMS = jax.lax.ScatterDimensionNumbers(
  update_window_dims=(), inserted_window_dims=(0,), scatter_dims_to_operand_dims=(0,))


def _scatter_add(vals, targets, n_post):
  """``out[targets[k]] += vals[k]`` (over the trailing axes of ``targets``), batched over leading axes.

  ``lax.scatter_add`` with in-bounds indices: no per-step normalisation of
  negative indices, so the loop body is the scatter alone.
  """
  lead = vals.shape[:vals.ndim - targets.ndim]

  def one(v):
    return jax.lax.scatter_add(
      jnp.zeros((n_post,), v.dtype), targets[..., None], v, _SCATTER_DIMS,
      mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS)

  if not lead:
    return one(vals)
  flat = vals.reshape((-1,) + targets.shape)
  return jax.vmap(one)(flat).reshape(lead + (n_post,))


def _scatter_rows(x, weight, indices, n_post):
  """``out[..., indices[i, j]] += x[..., i] * weight[i, j]`` (``weight`` scalar or per synapse)."""
  w = jnp.asarray(weight)
  vals = jnp.broadcast_to(x[..., None] * w, x.shape + indices.shape[1:])
  return _scatter_add(vals, indices, n_post)


def _scatter_csr(x, weight, indices, rows, n_post):
  """The same product for a flat synapse list: ``rows[k]`` is the source of synapse ``k``."""
  vals = x[..., rows] * jnp.asarray(weight)
  return _scatter_add(vals, indices, n_post)


_EVENT_MIN_PRE = 1024    # below this the full scatter costs less than compaction's compile time
_EVENT_BUDGET = 32       # rows compacted per pass: n_pre // _EVENT_BUDGET


def _event_rows(ev, weight, indices, n_post):
  """``_scatter_rows`` for one 0/1 event vector, touching only the rows that fired.

  The fired rows are compacted in passes of ``n_pre // 32`` (``lax.top_k`` of
  the 0/1 events lists them first, in ascending order) and only their
  ``conn_num`` synapses are scattered; a step with more events simply takes
  more passes (a pass follows only a full one). The nonzero contributions are
  added in the full scatter's (row) order, so the result is the full
  scatter's, bit for bit. The JVP is the full product's, hence so are the
  gradients.

  (One ``while_loop`` of passes compiles faster than a ``cond`` between the
  compacted and the full scatter, and it never falls back to the full cost.)
  """
  n_pre = ev.shape[0]
  budget = max(1, n_pre // _EVENT_BUDGET)

  @jax.custom_jvp
  def project(ev, w):
    def one_pass(carry):
      out, rest, _ = carry
      # top_k of 0/1 events: the fired rows first, in ascending order (ties go
      # to the lower index); the values are the events themselves (0 past the
      # last fired row, which adds nothing)
      x, rows = jax.lax.top_k(rest, budget)
      wr = w if w.ndim == 0 else w[rows]
      vals = jnp.broadcast_to(x[:, None] * wr, (budget,) + indices.shape[1:])
      out = jax.lax.scatter_add(out, indices[rows][..., None], vals, _SCATTER_DIMS,
                                mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS)
      # another pass only after a full one (a scalar test: cheaper to compile
      # than scanning ``rest``)
      return out, rest.at[rows].set(0, mode='promise_in_bounds'), jnp.min(x) > 0

    zeros = jnp.zeros((n_post,), jnp.result_type(ev, w))
    out, _, _ = jax.lax.while_loop(lambda c: c[2], one_pass, (zeros, ev, jnp.bool_(True)))
    return out

  @project.defjvp
  def project_jvp(primals, tangents):
    ev, w = primals
    dev, dw = tangents
    out = project(ev, w)
    return out, _scatter_rows(dev, w, indices, n_post) + _scatter_rows(ev, dw, indices, n_post)

  return project(ev, jnp.asarray(weight))


def _as_events(spk, dtype):
  """Spikes as 0/1 events of ``dtype``; the gradient passes through as if it were ``spk``."""
  spk = jnp.asarray(spk)
  if spk.dtype == jnp.bool_:
    return spk.astype(dtype)
  s = spk.astype(dtype)
  ev = (s > 0).astype(dtype)
  return ev + (s - jax.lax.stop_gradient(s))


class FixedNumConn(Module):
  """Sparse projection in which every presynaptic neuron has ``conn_num`` targets.

  Parameters
  ----------
  in_size, out_size : int or tuple
    Presynaptic and postsynaptic sizes (the last axis is the neuron axis).
  conn_num : int or float
    Number of targets per presynaptic neuron, or (a float in ``[0, 1]``) the
    connection probability, giving ``int(out_size[-1] * conn_num)`` targets.
  conn_weight : float, array or initializer
    Synaptic weight: a scalar (shared by every synapse) or one value per
    synapse, shape ``(n_pre, conn_num)``; stored in ``weight``.
  efferent_target : {'post'}
    Only ``'post'`` is supported (as in BrainState 0.5.4).
  afferent_ratio : float
    Fraction of presynaptic neurons that project at all (``1.`` = all).
  allow_multi_conn : bool
    Whether a neuron may pick the same target twice. ``True`` draws the
    targets with ``numpy.random.RandomState(seed).randint``; ``False`` draws
    them without replacement from ``brainstate.random.default_rng(seed)``.
  seed : int, optional
    Seed of the connectivity (``None``: the global generators).
  conn_init : {'vmap', 'for_loop'}
    How rows are drawn when ``allow_multi_conn=False``.
  param_type : type
    State class of the weight (default :class:`ParamState`).

  Example
  -------
  >>> import brainstate_nnx as brainstate
  >>> import jax.numpy as jnp
  >>> proj = brainstate.nn.FixedNumConn(4, 6, 2, 0.5, seed=0)
  >>> proj.conn.indices.shape
  (4, 2)
  >>> float(proj(jnp.ones(4)).sum())
  4.0
  """

  __module__ = 'brainstate.nn'

  def __init__(
    self,
    in_size,
    out_size,
    conn_num: Union[int, float],
    conn_weight: Union[Callable, jax.typing.ArrayLike],
    efferent_target: str = 'post',
    afferent_ratio: Union[int, float] = 1.,
    allow_multi_conn: bool = True,
    seed: Optional[int] = None,
    name: Optional[str] = None,
    conn_init: str = 'vmap',
    param_type: type = ParamState,
  ):
    super().__init__(name=name)
    self.in_size = in_size
    self.out_size = out_size
    self.efferent_target = efferent_target
    assert efferent_target in ('pre', 'post'), (
      f"efferent_target must be 'pre' or 'post', got {efferent_target!r}.")
    if efferent_target == 'pre':
      raise NotImplementedError(
        "FixedNumConn supports efferent_target='post' only (as BrainState 0.5.4): "
        "build the projection with efferent_target='post'.")
    assert 0. <= afferent_ratio <= 1., f'afferent_ratio must lie in [0, 1], got {afferent_ratio}.'
    if isinstance(conn_num, float):
      assert 0. <= conn_num <= 1., (
        f'A float conn_num is a connection probability and must lie in [0, 1], got {conn_num}.')
      conn_num = int(self.out_size[-1] * conn_num)
    assert isinstance(conn_num, int), f'conn_num must be an int or a float, got {type(conn_num)}.'
    self.conn_num = conn_num
    self.seed = seed
    self.allow_multi_conn = allow_multi_conn

    if conn_num >= 1:
      n_pre, n_post = self.in_size[-1], self.out_size[-1]
      rng = np.random if seed is None else np.random.RandomState(seed)
      with jax.ensure_compile_time_eval():
        if allow_multi_conn:
          indices = rng.randint(0, n_post, size=(n_pre, conn_num))
        else:
          indices = init_indices_without_replace(conn_num, n_pre, n_post, seed, conn_init)
        indices = jnp.asarray(indices, dtype=environ.ditype())
      if afferent_ratio == 1.:
        w = init.param(conn_weight, (n_pre, conn_num), allow_none=False)
        self.weight = param_type(_asarray(w))
        self.conn = _FixedPostConn(indices, None, (n_pre, n_post))
      else:
        self.pre_selected = rng.random(n_pre) < afferent_ratio
        indices = indices[self.pre_selected].flatten()
        w = init.param(conn_weight, (indices.size,), allow_none=False)
        self.weight = param_type(_asarray(w))
        rows = np.repeat(np.arange(n_pre), np.where(self.pre_selected, conn_num, 0))
        self.conn = _FixedPostConn(indices, jnp.asarray(rows, dtype=environ.ditype()), (n_pre, n_post))
    else:
      w = init.param(conn_weight, (), allow_none=False)
      self.weight = FakeState(_asarray(w))

  def _project(self, x, events=False):
    weight = self.weight.value
    if self.conn_num < 1:
      w, unit = split_mantissa_unit(weight)
      w = jnp.asarray(w)
      out = jnp.zeros(jnp.shape(x)[:-1] + (self.out_size[-1],), dtype=w.dtype)
      return maybe_attach_unit(out, unit)
    w, unit = split_mantissa_unit(weight)
    x, xunit = split_mantissa_unit(x)
    out = self.conn.apply(x, w, events)
    if xunit is not None:
      out = maybe_attach_unit(out, xunit) if unit is None else maybe_attach_unit(out, xunit * unit)
      return out
    return maybe_attach_unit(out, unit)

  def update(self, x):
    x = jnp.asarray(x) if not is_quantity(x) else x
    if not is_quantity(x) and x.dtype == jnp.bool_:
      x = x.astype(environ.dftype())
    return self._project(x)


class EventFixedNumConn(FixedNumConn):
  """:class:`FixedNumConn` driven by spikes: only neurons with ``spk > 0`` (or ``True``) contribute.

  The output is ``sum`` of the weights of the active presynaptic neurons onto
  each target; for 0/1 spikes it equals :class:`FixedNumConn`'s. Gradients
  with respect to the spikes are those of the float product (a straight-through
  estimator), with respect to the weights those of the event product.

  Example
  -------
  >>> import brainstate_nnx as brainstate
  >>> import jax.numpy as jnp
  >>> proj = brainstate.nn.EventFixedProb(4, 10, 0.2, 1.0, seed=0)
  >>> spikes = jnp.array([True, False, False, True])
  >>> float(proj(spikes).sum())   # two neurons fired, two targets each
  4.0
  """

  __module__ = 'brainstate.nn'

  def update(self, spk):
    w = self.weight.value
    dtype = jnp.result_type(split_mantissa_unit(w)[0]) if self.conn_num >= 1 else environ.dftype()
    if not jnp.issubdtype(dtype, jnp.floating):
      dtype = environ.dftype()
    return self._project(_as_events(spk, dtype), events=True)


EventFixedProb = EventFixedNumConn


class _FixedPostConn:
  """Index matrix of a fixed-number projection (``indices``, optional row ids, shape)."""

  def __init__(self, indices, rows, shape):
    self.indices = indices
    self.rows = rows
    self.shape = tuple(shape)

  def apply(self, x, w, events=False):
    if x.shape[-1] != self.shape[0]:
      raise ValueError(
        f'The projection expects inputs whose last axis has {self.shape[0]} presynaptic '
        f'neurons, but got an input of shape {tuple(x.shape)}.')
    dt = jnp.result_type(x, w)
    x = x.astype(dt)
    if self.rows is None:
      if events and x.ndim == 1 and self.shape[0] >= _EVENT_MIN_PRE:
        return _event_rows(x, w, self.indices, self.shape[1])
      return _scatter_rows(x, w, self.indices, self.shape[1])
    return _scatter_csr(x, w, self.indices, self.rows, self.shape[1])

  def __repr__(self):
    return f'FixedPostConn(shape={self.shape}, indices={tuple(self.indices.shape)})'


def _asarray(w):
  if is_quantity(w):
    return w
  return jnp.asarray(w)
