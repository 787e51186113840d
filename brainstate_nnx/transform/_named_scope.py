"""``named_call`` and ``named_scope``: names on the equations of a function.

Both attach a name (``jax.named_scope``); ``named_scope`` also compiles the
function with the state-aware ``jit`` when IR compilation is switched on
(the ``ir_compilation`` setting of :mod:`brainstate_nnx.environ`, or
:func:`set_ir_compilation`).
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Sequence, Union

import jax

__all__ = ['named_call', 'named_scope', 'set_ir_compilation']


# --------------------------------------------------------------------------
# naming
# --------------------------------------------------------------------------

def named_call(fun: Optional[Callable] = None, *, name: Optional[str] = None) -> Callable:
  """Runs ``fun`` inside :func:`jax.named_scope` so its equations carry ``name``.

  The name shows in each equation's ``source_info.name_stack`` and in
  profiler / HLO metadata. Nothing is compiled and State handling is
  unchanged. ``name`` defaults to ``fun.__name__``. Usable as ``@named_call``,
  ``@named_call(name=...)`` or ``named_call(fun, name=...)``.

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import named_call
    >>> @named_call(name='block')
    ... def block(x):
    ...   return jnp.sin(x) * 2.0
    >>> eqn = jax.make_jaxpr(block)(1.0).eqns[0]
    >>> str(eqn.source_info.name_stack)
    'block'
  """
  def wrap(f: Callable) -> Callable:
    scope = name if name is not None else getattr(f, '__name__', 'named_call')

    @functools.wraps(f)
    def wrapped(*args, **kwargs):
      with jax.named_scope(scope):
        return f(*args, **kwargs)

    return wrapped

  if fun is None:
    return wrap
  return wrap(fun)


_IR_COMPILATION = [False]


def _ir_compilation() -> bool:
  """Whether ``named_scope`` functions are jit-compiled.

  The ``ir_compilation`` setting of :mod:`brainstate_nnx.environ` (as in
  BrainState), else :func:`set_ir_compilation`'s flag.
  """
  try:
    from .. import environ
  except ImportError:  # the package without its environ module
    return _IR_COMPILATION[0]
  return bool(environ.get('ir_compilation', _IR_COMPILATION[0]))


def set_ir_compilation(flag: bool) -> None:
  """Makes :func:`named_scope` functions compile with ``jit`` (``True``) or run as is.

  Example::

    >>> from brainstate_nnx.transform._named_scope import set_ir_compilation
    >>> set_ir_compilation(False)
  """
  _IR_COMPILATION[0] = bool(flag)


def named_scope(
  name: str,
  static_argnums: Union[int, Sequence[int], Callable, None] = None,
  static_argnames: Union[str, Sequence[str], Callable, None] = None,
) -> Callable[[Callable], Callable]:
  """Decorator naming a function's equations ``name``; under IR compilation it is also jitted.

  The decorated function always runs inside ``jax.named_scope(name)``. When IR
  compilation is on (the ``ir_compilation`` setting, see
  :func:`set_ir_compilation`), each call goes through the state-aware
  :func:`~brainstate_nnx.transform.jit` instead, compiled once per static
  configuration. ``static_argnums`` / ``static_argnames`` may be given
  directly or as callables computing them from the call's arguments. On a
  method, the instance is argument 0 (mark it static under IR compilation).

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import named_scope
    >>> @named_scope('power', static_argnums=1)
    ... def power(x, n):
    ...   return x ** n
    >>> power(jnp.array([3.0]), 2)
    Array([9.], dtype=float32)
    >>> str(jax.make_jaxpr(lambda x: power(x, 2))(1.0).eqns[0].source_info.name_stack)
    'power'
  """
  from ._jit import jit

  def norm_nums(nums, n_args):
    if nums is None:
      return ()
    nums = (nums,) if isinstance(nums, int) else tuple(nums)
    return tuple(i + n_args if i < 0 else i for i in nums)

  def norm_names(names):
    if names is None:
      return ()
    return (names,) if isinstance(names, str) else tuple(names)

  def decorator(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def scoped(*args, **kwargs):
      with jax.named_scope(name):
        return fn(*args, **kwargs)

    compiled: dict = {}

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
      if not _ir_compilation():
        return scoped(*args, **kwargs)
      nums = static_argnums(*args, **kwargs) if callable(static_argnums) else static_argnums
      names = static_argnames(*args, **kwargs) if callable(static_argnames) else static_argnames
      key = (norm_nums(nums, len(args)), norm_names(names))
      jitted = compiled.get(key)
      if jitted is None:
        jitted = compiled[key] = jit(scoped, static_argnums=key[0] or None,
                                     static_argnames=key[1] or None)
      return jitted(*args, **kwargs)

    wrapper.fn = fn
    wrapper._jit_cache = compiled
    return wrapper

  return decorator
