"""What a function can reach: its States and Modules, found without running it.

:func:`reachable` walks the objects a function holds -- closure cells,
default arguments, the globals its code names, the object of a bound
method, the parts of a ``functools.partial`` -- and, through Flax NNX
graph nodes (Modules, Optimizers, ...) and Python containers, collects the
Variables and graph nodes met. It is cheap (no tracing) and used by
``transform.jit`` to thread the States a new function will use on its very
first trace, so that trace is also the compiled one.

The walk is a prediction: States reached in another way (through module
globals of other packages, arbitrary objects) are still found while
tracing, at the price of one more trace; States reached but unused are
threaded as (unused) inputs.

Example::

  >>> import jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> from brainstate_nnx._reach import reachable
  >>> class Lin(brainstate.nn.Module):
  ...   def __init__(self):
  ...     super().__init__()
  ...     self.w = brainstate.ParamState(jnp.ones(2))
  >>> model = Lin()
  >>> states, nodes = reachable(len, extra=[model])     # ``len`` holds nothing
  >>> states == [model.w], nodes == [model]
  (True, True)
"""

from __future__ import annotations

import functools
import types
from typing import Any

import jax
import numpy as np
from flax import nnx

__all__ = ['reachable', 'config_key', 'is_foreign_state']

# functions of these packages are not walked (their globals are libraries)
_SKIP = ('jax', 'jaxlib', 'flax', 'numpy', 'optax', 'brainstate_nnx.',
         'functools', 'typing', 'builtins', 'abc', 'collections', 'brainunit')
_ATOMS = (type(None), bool, int, float, complex, str, bytes, type, np.ndarray,
          np.generic, jax.Array, types.ModuleType, types.BuiltinFunctionType)
_CONFIG_ATOMS = (type(None), bool, int, float, str)
_ARRAY_LEAF = (jax.Array, np.ndarray, np.generic, bool, int, float, complex)


def _is_brainstate_module(mod: str) -> bool:
  return mod == 'brainstate' or mod.startswith('brainstate.')


def is_foreign_state(x) -> bool:
  """True for a State of the real ``brainstate`` package (not usable here)."""
  return any(c.__name__ == 'State' and _is_brainstate_module(c.__module__ or '')
             for c in type(x).__mro__)


def _code_names(code, out: set) -> None:
  out.update(code.co_names)
  for c in code.co_consts:
    if isinstance(c, types.CodeType):
      _code_names(c, out)


def _threadable(v) -> bool:
  if v.hijax or v.ref or not v._trace_state.is_valid():
    return False
  try:
    leaves = jax.tree.leaves(v._raw_value)
  except Exception:  # pragma: no cover - exotic values
    return False
  return all(isinstance(x, _ARRAY_LEAF) for x in leaves)


def reachable(fn: Any, extra: Any = ()) -> tuple[list, list]:
  """``(variables, nodes)`` reachable from ``fn`` (and from ``extra``).

  ``variables`` are the ``nnx.Variable`` s whose values can be traced
  (array leaves), in walk order; ``nodes`` the ``nnx.Pytree`` objects
  (Modules, ...) met. Raises ``TypeError`` on a State of the real
  ``brainstate`` package.
  """
  variables: list = []
  nodes: list = []
  seen: set = set()
  stack = [extra, fn]
  push = stack.append
  while stack:
    x = stack.pop()
    if isinstance(x, _ATOMS):
      continue
    i = id(x)
    if i in seen:
      continue
    seen.add(i)
    t = type(x)
    if t is list or t is tuple:
      stack.extend(reversed(x))
    elif t is dict:
      stack.extend(reversed(list(x.values())))
    elif isinstance(x, nnx.Variable):
      if _threadable(x):
        variables.append(x)
    elif isinstance(x, nnx.Pytree):
      nodes.append(x)
      stack.extend(reversed(list(vars(x).values())))
    elif t is types.FunctionType:
      mod = x.__module__ or ''
      if mod.startswith(_SKIP):
        continue
      if x.__closure__:
        for cell in x.__closure__:
          try:
            push(cell.cell_contents)
          except ValueError:  # an empty cell
            pass
      if x.__defaults__:
        push(x.__defaults__)
      if x.__kwdefaults__:
        push(list(x.__kwdefaults__.values()))
      names: set = set()
      _code_names(x.__code__, names)
      g = x.__globals__
      for n in names:
        v = g.get(n)
        if v is not None:
          push(v)
    elif t is types.MethodType:
      push(x.__self__)
      push(x.__func__)
    elif t is functools.partial:
      push(x.func)
      push(x.args)
      push(list(x.keywords.values()))
    elif is_foreign_state(x):
      raise TypeError(
        f'A State of the real `brainstate` package ({type(x).__name__}) is used '
        'by a function compiled with brainstate_nnx.transform.jit. '
        'brainstate_nnx cannot track it (its value would be baked in as a '
        'constant). Build the model with brainstate_nnx (`import '
        'brainstate_nnx as brainstate`), or convert its weights first.'
      )
    else:
      # the transforms of this package (jit, grad, ...) wrapping a function
      inner = getattr(t, '__reach__', None)
      if inner is not None:
        stack.extend(inner(x))
  return variables, nodes


def config_key(nodes) -> tuple:
  """The static configuration of ``nodes``: their plain-valued attributes.

  Flax layers keep flags such as ``deterministic`` or ``use_running_average``
  as ordinary attributes that a trace bakes in; this key changes when one of
  them does.
  """
  key = []
  for node in nodes:
    items = []
    for k, v in vars(node).items():
      if type(v) in _CONFIG_ATOMS and not k.startswith('_pytree__'):
        items.append((k, v))
    if items:
      key.append((id(node), tuple(items)))
  return tuple(key)
