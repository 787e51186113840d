"""Wrapper modules: ``EnvironContext`` (run a layer under ``environ``
settings), ``Vmap`` and ``Map`` (run a layer over a batch / an ensemble of
members)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Dict, Hashable, Optional, Sequence

from .. import environ
from ..util import filter as _filter
from ._module import Module

__all__ = ['EnvironContext', 'Vmap', 'Map']


class EnvironContext(Module):
  """Calls ``layer`` inside ``brainstate.environ.context(**context)``.

  Extra settings can be given per call (``context={...}``, overriding the
  stored ones) or added with :meth:`add_context`.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> class Probe(brainstate.nn.Module):
    ...   def __call__(self):
    ...     return brainstate.environ.get('fit')
    >>> m = brainstate.nn.EnvironContext(Probe(), fit=True)
    >>> m(), m(context={'fit': False})
    (True, False)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, layer: Module, **context):
    super().__init__()
    if not isinstance(layer, Module):
      raise TypeError(f'EnvironContext wraps a brainstate_nnx.nn.Module, got {type(layer).__name__}.')
    self.layer = layer
    self.context = context

  def update(self, *args, context: Optional[Dict] = None, **kwargs):
    with environ.context(**{**self.context, **(context or {})}):
      return self.layer(*args, **kwargs)

  def add_context(self, **context):
    """Adds (or overrides) stored settings."""
    self.context.update(context)


def _filter_states(module: Module, filters) -> Any:
  """``None``, ``module.states(filter)``, or ``{axis: states}`` for ``{filter: axis}``."""
  if filters is None:
    return None
  if isinstance(filters, dict):
    by_axis = defaultdict(list)
    for f, axis in filters.items():
      if not isinstance(axis, int):
        raise TypeError(
          f'vmap_states maps a filter to its batch axis (an int), got {axis!r} for {f!r}.'
        )
      by_axis[axis].append(f)
    found = module.states(*by_axis.values())
    if len(by_axis) == 1:
      found = (found,)
    return dict(zip(by_axis.keys(), found))
  return module.states(filters)


class Vmap(Module):
  """Calls ``module`` under :func:`brainstate_nnx.transform.vmap`.

  ``vmap_states`` / ``vmap_out_states`` select the module's batched States
  (a filter for axis 0, or ``{filter: axis}``); the other arguments are
  those of ``transform.vmap``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> class Scale(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.w = brainstate.ParamState(jnp.array([1., 2., 3.]))
    ...   def __call__(self, x):
    ...     return self.w.value * x
    >>> brainstate.nn.Vmap(Scale(), in_axes=0, vmap_states=brainstate.ParamState)(jnp.array([1., 1., 2.]))
    Array([1., 2., 6.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    module: Module,
    in_axes: int | None | Sequence[Any] = 0,
    out_axes: Any = 0,
    vmap_states: Any = None,
    vmap_out_states: Any = None,
    axis_name: Hashable | None = None,
    axis_size: int | None = None,
  ):
    super().__init__()
    if not isinstance(module, Module):
      raise TypeError(f'Vmap wraps a brainstate_nnx.nn.Module, got {type(module).__name__}.')
    from ..transform import vmap

    self.in_axes = in_axes
    self.out_axes = out_axes
    self.axis_name = axis_name
    self.axis_size = axis_size
    self.module = module
    in_states = _filter_states(module, vmap_states)
    out_states = _filter_states(module, vmap_out_states)

    def run(*args, **kwargs):
      return module(*args, **kwargs)

    self.vmapped_fn = _Opaque(vmap(run, in_axes=in_axes, out_axes=out_axes,
                                   in_states=in_states, out_states=out_states,
                                   axis_name=axis_name, axis_size=axis_size))

  def update(self, *args, **kwargs):
    return self.vmapped_fn.obj(*args, **kwargs)


class _Opaque:
  """Holds a Python object as a static (not traversed) attribute of a Module."""

  __slots__ = ('obj',)

  def __init__(self, obj):
    self.obj = obj

  def __eq__(self, other):
    return self is other

  def __hash__(self):
    return id(self)

  def __repr__(self):
    return repr(self.obj)


class _IdPredicate:
  """Matches exactly the given State objects."""

  def __init__(self, states):
    self.ids = {id(s) for s in states}

  def __call__(self, path, st):
    return id(st) in self.ids


class _MapCaller:
  """``fn`` wrapped in ``vmap2`` / ``pmap2`` with the Map's state axes."""

  def __init__(self, fn: Callable, behavior: str, in_axes=0, out_axes=0,
               axis_name=None, state_axes=None):
    from ..transform import pmap2, vmap2

    if behavior not in ('vmap', 'pmap'):
      raise ValueError('Invalid behavior specified. Must be "vmap" or "pmap".')
    self.in_axes = in_axes
    self.out_axes = out_axes
    self.axis_name = axis_name
    self.state_axes = state_axes
    self.behavior = behavior
    mapper = vmap2 if behavior == 'vmap' else pmap2
    self.map_fn = mapper(fn, in_axes=in_axes, out_axes=out_axes, axis_name=axis_name,
                         state_in_axes=state_axes, state_out_axes=state_axes)

  def __call__(self, *args, **kwargs):
    return self.map_fn(*args, **kwargs)


class Map(Module):
  """An ensemble of ``init_map_size`` copies of ``module``, each with its own States.

  :meth:`init_all_states` initializes the members under ``vmap2_new_states``
  (``pmap2_new_states`` for ``behavior='pmap'``), so every State created by
  ``init_state`` gets a member axis (``init_state_axes`` may choose other
  axes); calling the Map runs all members under ``vmap2`` / ``pmap2`` with
  those States mapped (plus ``call_state_axes``). :meth:`map` wraps another
  method the same way. Calling before :meth:`init_all_states` raises
  ``ValueError``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> class Acc(brainstate.nn.Module):
    ...   def init_state(self):
    ...     self.total = brainstate.ShortTermState(jnp.zeros(()))
    ...   def __call__(self, x):
    ...     self.total.value += x
    ...     return self.total.value
    >>> m = brainstate.nn.Map(Acc(), init_map_size=3)
    >>> m.init_all_states()
    >>> m(jnp.array([1., 2., 3.]))
    Array([1., 2., 3.], dtype=float32)
    >>> m.module.total.value.shape
    (3,)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    module: Module,
    init_map_size: int,
    init_state_axes: Optional[Dict[int, Any]] = None,
    state_tag: Optional[str] = None,
    in_axes=0,
    out_axes=0,
    axis_name=None,
    spmd_axis_name=None,
    call_state_axes: Optional[Dict[int, Any]] = None,
    behavior: str = 'vmap',
  ):
    super().__init__()
    if not isinstance(init_map_size, int):
      raise TypeError(f'init_map_size must be an integer, got {type(init_map_size).__name__}.')
    if behavior not in ('vmap', 'pmap'):
      raise ValueError(f'behavior must be either "vmap" or "pmap", got {behavior!r}.')
    self.init_map_size = init_map_size
    self.module = module
    self.state_tag = state_tag
    self.in_axes = in_axes
    self.out_axes = out_axes
    self.axis_name = axis_name
    self.spmd_axis_name = spmd_axis_name
    self.call_state_axes = call_state_axes
    self.init_state_axes = init_state_axes
    self.behavior = behavior
    # ``{axis: [States]}`` made by init_all_states; part of the graph as in
    # BrainState, so ``states()`` paths match (``('dict_vmap_states', 0, 0)``).
    self.dict_vmap_states = None
    self._state_axes = _Opaque(None)  # the call-time {axis: selector}

  def _integrate_state_axes(self, call_state_axes):
    axes = dict(call_state_axes or {})
    mapped = self.dict_vmap_states
    for k, v in tuple(axes.items()):
      if k in mapped:
        axes[k] = _filter.Any(v, _IdPredicate(mapped[k]))
    for k, v in mapped.items():
      if k not in axes:
        axes[k] = _IdPredicate(v)
    return axes

  def init_all_states(self, **kwargs):
    """Initializes ``init_map_size`` members (``init_state(**kwargs)`` on each)."""
    from ..transform import pmap2_new_states, vmap2_new_states

    mapper = vmap2_new_states if self.behavior == 'vmap' else pmap2_new_states
    self.dict_vmap_states = dict(mapper(self.module, kwargs, state_tag=self.state_tag,
                                        axis_size=self.init_map_size,
                                        state_out_axes=self.init_state_axes))
    self._state_axes = _Opaque(self._integrate_state_axes(self.call_state_axes))

  def _check_init(self):
    if self.dict_vmap_states is None:
      raise ValueError(
        'Map.update called before init_all_states. Please call init_all_states first.'
      )

  def update(self, *args, **kwargs):
    from ..transform import pmap2, vmap2

    self._check_init()
    kw = dict(in_axes=self.in_axes, out_axes=self.out_axes, axis_name=self.axis_name,
              state_in_axes=self._state_axes.obj, state_out_axes=self._state_axes.obj)
    if self.behavior == 'vmap':
      return vmap2(self.module, spmd_axis_name=self.spmd_axis_name, **kw)(*args, **kwargs)
    return pmap2(self.module, **kw)(*args, **kwargs)

  def map(self, fn: str | Callable, in_axes: Any = 0, out_axes: Any = 0,
          axis_name: Optional[str] = None, state_axes: Optional[Dict[int, Any]] = None):
    """``fn`` (a callable, or the name of a method of the module) over the members."""
    if isinstance(fn, str):
      try:
        fn = getattr(self.module, fn)
      except AttributeError:
        raise AttributeError(f'Module has no method named {fn}.') from None
    if not callable(fn):
      raise TypeError('fn must be a callable or the name of a method.')
    self._check_init()
    return _MapCaller(fn, behavior=self.behavior, in_axes=in_axes, out_axes=out_axes,
                      axis_name=axis_name, state_axes=self._integrate_state_axes(state_axes))
