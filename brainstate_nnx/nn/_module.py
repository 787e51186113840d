"""BrainState's ``nn.Module`` as an ``nnx.Module``.

A :class:`Module` is a Flax NNX Module: ``nnx.split / merge / state / update``,
``nnx.jit`` and ``nnx.Optimizer`` work on it. On top it has BrainState's API:
``states()``, ``nodes()``, ``named_modules()``, ``init_state()`` / ``reset_state()``
and ``update()``/``__call__``.

Differences from a plain ``nnx.Module``:

* plain Python lists / dicts / tuples holding Modules or States can be
  assigned as attributes (they are marked as data automatically);
* stock Flax Variables assigned inside it (e.g. the kernel of an
  ``nnx.Linear``) are adopted (:func:`brainstate_nnx.adopt`), so
  brainstate_nnx transforms track them through closures;
* attributes may be assigned while a brainstate_nnx transform traces.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from typing import Any, Iterator, Optional, Sequence, Tuple

import numpy as np
from flax import nnx

from .. import _context
from .._state import State, adopt, catch_new_states
from ..mixin import ParamDesc, not_implemented
from ._repr import module_repr
from .._walk import MAX_INT as _MAX_INT, graph_items, split_items
from ..util.filter import to_predicate

__all__ = ['Module', 'ElementWiseBlock', 'states', 'nodes', 'init_all_states',
           'reset_all_states', 'call_all_fns']


def _format_size_arg(size, attr_name: str) -> tuple:
  """``in_size``/``out_size`` as a tuple: ``10 -> (10,)``, lists become tuples."""
  if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
    return (int(size),)
  if isinstance(size, np.ndarray) and size.ndim == 0 and np.issubdtype(size.dtype, np.integer):
    return (int(size),)
  if not isinstance(size, (tuple, list)):
    raise AssertionError(
      f'Invalid type of {attr_name}: {type(size)}. Give an int or a tuple/list of ints, '
      f'e.g. {attr_name}=10 or {attr_name}=(28, 28, 1).'
    )
  return tuple(size)



def states(node, *filters, allowed_hierarchy: Tuple[int, int] = (0, _MAX_INT)):
  """Path-keyed States of ``node`` (one mapping per filter when several)."""
  items = []
  for p, v in graph_items(node, allowed_hierarchy, 'leaf'):
    if isinstance(v, nnx.Variable):
      if not isinstance(v, State):
        if v.hijax or v.ref:
          continue
        # a stock Flax Variable (e.g. inside a plain nnx.Module): track it
        adopt(v)
      items.append((p, v))
  return split_items(items, filters)


def nodes(node, *filters, allowed_hierarchy: Tuple[int, int] = (0, _MAX_INT)):
  """Path-keyed Modules of ``node``, children before parents, ``()`` last."""
  items = [(p, v) for p, v in graph_items(node, allowed_hierarchy, 'node')
           if isinstance(v, nnx.Module)]
  return split_items(items, filters)


def call_all_fns(target, fn_name: str, args=(), kwargs=None,
                 node_to_exclude=None, fn_if_not_exist: str = 'raise'):
  """Calls ``fn_name(*args, **kwargs)`` on every Module of ``target``.

  Modules are visited children first; methods decorated with
  :func:`~brainstate_nnx.nn.call_order` run after the others, by level.
  ``fn_if_not_exist`` is ``'raise'`` (``AttributeError``), ``'pass'`` /
  ``'none'`` (skip) or ``'warn'`` (skip with a ``UserWarning``).
  """
  if not isinstance(fn_name, str):
    raise TypeError(f'fn_name must be a string, but got {type(fn_name).__name__}.')
  args = args if isinstance(args, tuple) else (args,)
  kwargs = kwargs or {}
  if not isinstance(kwargs, Mapping):
    raise TypeError(f'kwargs must be a mapping, but got {type(kwargs).__name__}.')
  all_nodes = nodes(target, Module)
  exclude = to_predicate(node_to_exclude) if node_to_exclude is not None else None
  ordered = []
  for path, node in all_nodes.items():
    if exclude is not None and exclude(path, node):
      continue
    try:
      fn = getattr(node, fn_name)
    except AttributeError as e:
      if fn_if_not_exist == 'raise':
        raise AttributeError(
          f"Module {type(node).__name__} with the path {path} does not have method '{fn_name}'"
        ) from e
      if fn_if_not_exist in ('pass', 'none'):
        continue
      if fn_if_not_exist == 'warn':
        warnings.warn(
          f"Module {type(node).__name__} with the path {path} does not have method "
          f"'{fn_name}'. Skipping.", UserWarning,
        )
        continue
      raise ValueError(
        f"fn_if_not_exist must be one of ['raise', 'pass', 'none', 'warn'], "
        f"but got '{fn_if_not_exist}'."
      )
    if not callable(fn):
      raise TypeError(f"'{fn_name}' must be callable, but got {type(fn).__name__}.")
    if hasattr(fn, 'call_order'):
      ordered.append(node)
    else:
      fn(*args, **kwargs)
  for node in sorted(ordered, key=lambda n: getattr(n, fn_name).call_order):
    getattr(node, fn_name)(*args, **kwargs)
  return target


def init_all_states(target, *args, node_to_exclude=None, **kwargs):
  """Calls ``init_state(*args, **kwargs)`` on every Module of ``target``."""
  return call_all_fns(target, 'init_state', args, kwargs, node_to_exclude)


def reset_all_states(target, *args, node_to_exclude=None, **kwargs):
  """Calls ``reset_state(*args, **kwargs)`` on every Module of ``target``."""
  return call_all_fns(target, 'reset_state', args, kwargs, node_to_exclude)


class Module(nnx.Module, ParamDesc):
  """Base class of BrainState-style models; an ``nnx.Module``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> class Linear(brainstate.nn.Module):
    ...   def __init__(self, din, dout):
    ...     super().__init__()
    ...     self.w = brainstate.ParamState(jnp.ones((din, dout)))
    ...     self.b = brainstate.ParamState(jnp.zeros(dout))
    ...   def __call__(self, x):
    ...     return x @ self.w.value + self.b.value
    >>> class MLP(brainstate.nn.Module):
    ...   def __init__(self):
    ...     super().__init__()
    ...     self.layers = [Linear(2, 3), Linear(3, 1)]
    >>> sorted(MLP().states(brainstate.ParamState).keys())
    [('layers', 0, 'b'), ('layers', 0, 'w'), ('layers', 1, 'b'), ('layers', 1, 'w')]

  As in BrainState, ``in_size``/``out_size`` are stored as tuples, ``name``
  is read-only, and the ``repr`` lists the attributes that are not ``None``::

    >>> m = brainstate.nn.Module(name='m')
    >>> m.in_size = 3
    >>> m.in_size, m.name
    ((3,), 'm')
    >>> m
    Module(
      name=m,
      in_size=(3,)
    )
  """

  __module__ = 'brainstate_nnx.nn'

  graph_invisible_attrs: Tuple[str, ...] = ()

  def __init__(self, name: Optional[str] = None, *args, **kwargs):
    if name is not None and not isinstance(name, str):
      raise AssertionError(f'The name must be a string, but we got {type(name)}: {name}')
    self._name = name
    self._in_size = None
    self._out_size = None

  # -- attribute assignment -------------------------------------------------
  def __setattr__(self, name: str, value: Any) -> None:
    if not name.startswith('_pytree__'):
      if isinstance(value, nnx.Variable):
        if not isinstance(value, State):
          adopt(value)
      elif isinstance(value, nnx.Module):
        if not isinstance(value, Module):
          adopt(value)
      elif isinstance(value, (list, tuple, dict)) and not nnx.is_data(value):
        found = nnx.pytreelib.has_data(value)
        if found:
          for leaf in found:
            if isinstance(leaf, (nnx.Variable, nnx.Module)) and not isinstance(
              leaf, (State, Module)
            ):
              adopt(leaf)
          value = nnx.data(value)
    super().__setattr__(name, value)

  def __deepcopy__(self, memo=None):
    # nnx's Pytree.__deepcopy__ (split / deepcopy / merge) drops ``memo``, so
    # an attribute pointing back at the module (e.g. ``self.step =
    # transform.jit(self._step)``) recursed forever. Copy attribute by
    # attribute with the memo instead: shared States and sub-modules stay
    # shared inside the copy, and back references land on the copy.
    import copy

    memo = {} if memo is None else memo
    if id(self) in memo:
      return memo[id(self)]
    new = object.__new__(type(self))
    memo[id(self)] = new
    for key, value in vars(self).items():
      if key == '_pytree__state':
        value = type(value)(value._initializing, value._is_setup)
      else:
        value = copy.deepcopy(value, memo)
      object.__setattr__(new, key, value)
    return new

  def _check_valid_context(self, error_msg) -> None:
    # BrainState allows attribute assignment inside its transforms.
    if not _context.CONTEXT.frames:
      super()._check_valid_context(error_msg)

  # -- naming and sizes --------------------------------------------------------
  @property
  def name(self) -> Optional[str]:
    """The name given at construction (``None`` if none); read-only."""
    return vars(self).get('_name')

  @name.setter
  def name(self, name: str) -> None:
    raise AttributeError('The name of the model is read-only.')

  @property
  def in_size(self) -> Optional[Tuple[int, ...]]:
    """The input size without batch axes, a tuple (``None`` until set)."""
    return vars(self).get('_in_size')

  @in_size.setter
  def in_size(self, in_size) -> None:
    self._in_size = _format_size_arg(in_size, 'in_size')

  @property
  def out_size(self) -> Optional[Tuple[int, ...]]:
    """The output size without batch axes, a tuple (``None`` until set)."""
    return vars(self).get('_out_size')

  @out_size.setter
  def out_size(self, out_size) -> None:
    self._out_size = _format_size_arg(out_size, 'out_size')

  # -- repr ----------------------------------------------------------------------
  def __pretty_repr_item__(self, name: str, value: Any):
    """``(shown name, value)`` of an attribute in the repr, or ``None`` to hide it."""
    if value is None or name in getattr(self, 'graph_invisible_attrs', ()):
      return None
    if name.startswith('_'):
      name = name[1:]
    return name, value

  def __repr__(self) -> str:
    return module_repr(self)

  # -- BrainState API ----------------------------------------------------------
  def update(self, *args, **kwargs):
    """The module's step function; ``__call__`` calls it (subclasses define it)."""
    raise NotImplementedError(
      f'Subclass of {type(self).__name__} must implement "update" function '
      f'(or override __call__).'
    )

  update.not_implemented = True

  def __call__(self, *args, **kwargs):
    return self.update(*args, **kwargs)

  def __rrshift__(self, other):
    return self(other)

  def states(self, *filters, allowed_hierarchy: Tuple[int, int] = (0, _MAX_INT)):
    """States of this module and its children, keyed by path.

    With no filter: one :class:`~brainstate_nnx.util.FlattedDict` of every
    State. With filters (State types, tags, predicates, see
    :mod:`brainstate_nnx.util.filter`): one mapping, or a tuple of mappings
    when several filters are given (each State goes to the first match).
    A State reachable through several paths appears once.
    """
    return states(self, *filters, allowed_hierarchy=allowed_hierarchy)

  def nodes(self, *filters, allowed_hierarchy: Tuple[int, int] = (0, _MAX_INT)):
    """Modules of this module (itself at ``()``), keyed by path."""
    return nodes(self, *filters, allowed_hierarchy=allowed_hierarchy)

  def state_trees(self, *filters):
    """The States of this tree as a nested dict (one per filter when several).

    Unlike :meth:`states` the result is nested by attribute path
    (``{'layer': {'weight': ParamState}}``); the States are the live ones.
    """
    if filters:
      out = self.states(*filters)
      if len(filters) == 1:
        return out.to_nest()
      return tuple(o.to_nest() for o in out)
    return self.states().to_nest()

  def children(self) -> Iterator['Module']:
    """The direct child modules."""
    for _, m in self.named_children():
      yield m

  def named_children(self) -> Iterator[tuple[str, 'Module']]:
    """``(name, module)`` for the direct child modules."""
    for path, m in self.nodes(allowed_hierarchy=(1, 1)).items():
      yield '.'.join(str(p) for p in path), m

  def modules(self, include_self: bool = True) -> Iterator['Module']:
    """All modules in the tree, children before parents."""
    for _, m in self.named_modules(include_self=include_self):
      yield m

  def named_modules(self, prefix: str = '', include_self: bool = True):
    """``(dotted name, module)`` for every module, the root named ``''``."""
    lo = 0 if include_self else 1
    for path, m in self.nodes(allowed_hierarchy=(lo, _MAX_INT)).items():
      name = '.'.join(str(p) for p in path)
      if prefix:
        name = f'{prefix}.{name}' if name else prefix
      yield name, m

  def parameters(self, recurse: bool = True):
    """The :class:`~brainstate_nnx.ParamState` s (direct ones only if not ``recurse``)."""
    for _, p in self.named_parameters(recurse=recurse):
      yield p

  def named_parameters(self, prefix: str = '', recurse: bool = True):
    """``(dotted path, ParamState)`` pairs."""
    from .._state import ParamState

    hier = (0, _MAX_INT) if recurse else (0, 0)
    for path, p in self.states(ParamState, allowed_hierarchy=hier).items():
      name = '.'.join(str(k) for k in path)
      yield (f'{prefix}.{name}' if prefix else name), p

  def init_state(self, *args, **kwargs):
    """Creates this module's dynamic States (override; default: nothing)."""

  def reset_state(self, *args, **kwargs):
    """Resets this module's dynamic States (override; default: nothing)."""

  def init_all_states(self, *args, state_tag: Optional[str] = None, **kwargs):
    """``init_state`` on every module of this tree; returns the new States caught.

    The result lists the States created (tagged ``state_tag`` if given), as
    ``brainstate.catch_new_states`` does.
    """
    with catch_new_states(state_tag=state_tag) as catcher:
      init_all_states(self, *args, **kwargs)
    return catcher

  def reset_all_states(self, *args, **kwargs):
    """``reset_state`` on every module of this tree."""
    return reset_all_states(self, *args, **kwargs)

  # -- parameter modules (``brainstate.nn.Param``) --------------------------------
  def named_param_modules(self, allowed_hierarchy: Tuple[int, int] = (0, _MAX_INT)):
    """``(dotted path, Param module)`` for the ``nn.Param`` modules of this tree."""
    param_cls = _param_class()
    if param_cls is None:
      return
    for path, m in self.nodes(param_cls, allowed_hierarchy=allowed_hierarchy).items():
      yield '.'.join(str(p) for p in path), m

  def param_modules(self, allowed_hierarchy: Tuple[int, int] = (0, _MAX_INT)):
    """The ``nn.Param`` modules of this tree."""
    for _, m in self.named_param_modules(allowed_hierarchy=allowed_hierarchy):
      yield m

  def reg_loss(self):
    """Sum of the regularization losses of the ``nn.Param`` modules (``0.0`` if none)."""
    params = tuple(self.param_modules())
    if not params:
      return 0.0
    return sum(p.reg_loss() for p in params)

  @contextlib.contextmanager
  def param_precompute(self, allowed_hierarchy: Tuple[int, int] = (0, _MAX_INT)):
    """Within the block, ``nn.Param`` modules cache their transformed values.

    Every ``nn.Param`` of this tree (within ``allowed_hierarchy``) computes its
    value once (``cache()``); the caches are cleared on exit, also on error.
    """
    for m in self.param_modules(allowed_hierarchy=allowed_hierarchy):
      m.cache()
    try:
      yield
    finally:
      for m in self.param_modules(allowed_hierarchy=allowed_hierarchy):
        m.clear_cache()


def _param_class():
  """``brainstate_nnx.nn.Param`` when that module exists, else ``None``."""
  try:
    from ._param import Param
  except ImportError:
    return None
  return Param


class ElementWiseBlock(Module):
  """Base class of layers acting element by element (output size = input size).

  ``Sequential`` passes the input size straight through such a layer.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> class Double(brainstate.nn.ElementWiseBlock):
    ...   def update(self, x):
    ...     return 2 * x
    >>> Double()(jnp.ones(2))
    Array([2., 2.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'
