"""Global and scoped settings: time step, training flag, precision, platform.

BrainState's ``brainstate.environ``. Settings live in a per-thread
:class:`EnvironmentState`: ``set`` changes the global value, ``context``
overrides values inside a ``with`` block (nestable, restored on exit even on
error), ``get`` reads the innermost value.

Example::

  >>> import brainstate_nnx as brainstate
  >>> brainstate.environ.set(dt=0.1)
  >>> brainstate.environ.get_dt()
  0.1
  >>> with brainstate.environ.context(fit=True, dt=0.05):
  ...   (brainstate.environ.get('fit'), brainstate.environ.get_dt())
  (True, 0.05)
  >>> brainstate.environ.get('fit', False)
  False
  >>> brainstate.environ.dftype()
  <class 'numpy.float32'>
  >>> brainstate.environ.pop('dt')
  0.1

A function compiled by ``brainstate_nnx.transform.jit`` that reads a setting
is traced again when the setting changes, so ``fit=True`` and ``fit=False``
each get their own (cached) trace.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import os
import re
import threading
import warnings
from collections import defaultdict
from typing import Any, Callable, Dict, Hashable, List, Optional, Union

import numpy as np
import jax
from jax import config, numpy as jnp

from . import _units

__all__ = [
  'set', 'get', 'all', 'pop', 'context', 'reset',
  'set_platform', 'get_platform', 'set_host_device_count', 'get_host_device_count',
  'set_precision', 'get_precision', 'dftype', 'ditype', 'dutype', 'dctype',
  'get_dt', 'tolerance',
  'register_default_behavior', 'unregister_default_behavior', 'list_registered_behaviors',
  'DEFAULT_PRECISION', 'SUPPORTED_PLATFORMS', 'SUPPORTED_PRECISIONS',
  'I', 'T', 'DT', 'PRECISION', 'PLATFORM', 'HOST_DEVICE_COUNT', 'JIT_ERROR_CHECK', 'FIT',
  'EnvironmentState',
]

PrecisionType = Union[int, str]
PlatformType = str

# names of the well-known settings
I = 'i'
T = 't'
DT = 'dt'
PRECISION = 'precision'
PLATFORM = 'platform'
HOST_DEVICE_COUNT = 'host_device_count'
JIT_ERROR_CHECK = 'jit_error_check'
FIT = 'fit'

DEFAULT_PRECISION = 32
SUPPORTED_PLATFORMS = ('cpu', 'gpu', 'tpu')
SUPPORTED_PRECISIONS = (8, 16, 32, 64, 'bf16')

_MISSING = object()


class EnvironmentState(threading.local):
  """The settings of one environment, separate for every thread.

  ``settings`` holds global values, ``contexts`` one stack per key for the
  open ``context`` blocks, ``functions`` the callbacks registered with
  :func:`register_default_behavior`. A fresh state (and every new thread)
  starts with ``precision=32`` only.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> env = brainstate.environ.EnvironmentState()
    >>> brainstate.environ.set(dt=1.0, env=env)
    >>> brainstate.environ.all(env=env)
    {'precision': 32, 'dt': 1.0}
  """

  def __init__(self, settings=None, contexts=None, functions=None, locks=None):
    self.settings: Dict[Hashable, Any] = dict(settings) if settings is not None else {}
    self.contexts = defaultdict(list)
    if contexts is not None:
      self.contexts.update(contexts)
    self.functions: Dict[Hashable, Callable] = dict(functions) if functions is not None else {}
    self.locks = defaultdict(threading.RLock)
    if locks is not None:
      self.locks.update(locks)
    self.settings.setdefault(PRECISION, DEFAULT_PRECISION)
    self._key = None

  def __repr__(self):
    return (f'EnvironmentState(settings={self.settings!r}, '
            f'contexts={dict(self.contexts)!r}, functions={list(self.functions)!r})')


_ENV_STATE = EnvironmentState()


def _env(env):
  return _ENV_STATE if env is None else env


def _changed(env):
  env._key = None


def _cache_key(env: Optional[EnvironmentState] = None):
  """A hashable snapshot of the current effective settings (private).

  Equal settings give equal -- usually identical -- keys: ``(name, type,
  value)`` items; Quantities and small concrete arrays count by value, other
  unhashable values by identity (kept alive by the key). Cached until the
  next change made through this module, so repeated calls are O(1).
  """
  env = _env(env)
  key = env._key
  if key is None:
    current = all(env=env)
    items = []
    for k, v in current.items():
      items.append((k, type(v), _freeze(v)))
    items.sort(key=lambda kv: str(kv[0]))
    key = _Key(items, list(current.values()))
    # equal settings give the identical key object, so callers may compare
    # keys with ``is`` (a jit cache sees "same settings as last call" at once)
    if len(_INTERNED) >= _MAX_INTERNED:
      _INTERNED.clear()
    key = env._key = _INTERNED.setdefault(key, key)
  return key


_INTERNED: dict = {}
_MAX_INTERNED = 1024


def _freeze(v):
  """A hashable stand-in for ``v`` that is equal for equal settings."""
  try:
    hash(v)
    return v
  except TypeError:
    pass
  if _units.is_quantity(v):
    return ('<quantity>', _freeze(v.mantissa), str(v.unit))
  if isinstance(v, (np.ndarray, jax.Array)) and not isinstance(v, jax.core.Tracer):
    if v.size <= 64:
      return ('<array>', str(v.dtype), v.shape, np.asarray(v).tobytes())
  return ('<unhashable>', id(v))


class _Key(tuple):
  """The cache key, a tuple of ``(name, type, value)``; holds the values alive."""

  def __new__(cls, items, keep):
    self = super().__new__(cls, items)
    self._keep = keep
    return self


def reset(*, env: Optional[EnvironmentState] = None) -> None:
  """Forget every setting, context and callback (warns with ``UserWarning``).

  Example::

    >>> import warnings
    >>> import brainstate_nnx as brainstate
    >>> env = brainstate.environ.EnvironmentState()
    >>> brainstate.environ.set(a=1, env=env)
    >>> with warnings.catch_warnings():
    ...   warnings.simplefilter('ignore')
    ...   brainstate.environ.reset(env=env)
    >>> brainstate.environ.get('a', None, env=env) is None
    True
  """
  global _ENV_STATE
  if env is None or env is _ENV_STATE:
    _ENV_STATE = EnvironmentState()
    _set_jax_precision(DEFAULT_PRECISION)
  else:
    env.settings.clear()
    env.contexts.clear()
    env.functions.clear()
    env.locks.clear()
    env.settings[PRECISION] = DEFAULT_PRECISION
    _changed(env)
  warnings.warn(
    'Environment has been reset to default settings. '
    'All custom configurations have been cleared.',
    UserWarning,
  )


def _notify(env, key, value, restoring=False):
  fn = env.functions.get(key)
  if fn is None:
    return
  try:
    fn(value)
  except Exception as e:
    msg = (f"Callback restoration for '{key}' raised: {e}" if restoring
           else f"Callback for '{key}' raised an exception: {e}")
    warnings.warn(msg, RuntimeWarning)


@contextlib.contextmanager
def context(*, env: Optional[EnvironmentState] = None, **kwargs):
  """Overrides settings inside a ``with`` block; yields :func:`all`.

  ``platform`` and ``host_device_count`` are global only (``ValueError``).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> with brainstate.environ.context(dt=0.1):
    ...   with brainstate.environ.context(dt=0.01):
    ...     print(brainstate.environ.get_dt())
    ...   print(brainstate.environ.get_dt())
    0.01
    0.1
  """
  env = _env(env)
  if PLATFORM in kwargs:
    raise ValueError(
      f"Cannot set '{PLATFORM}' in context. "
      f"Use set_platform() or set() for global configuration."
    )
  if HOST_DEVICE_COUNT in kwargs:
    raise ValueError(
      f"Cannot set '{HOST_DEVICE_COUNT}' in context. "
      f"Use set_host_device_count() or set() for global configuration."
    )
  old_precision = None
  if PRECISION in kwargs:
    old_precision = _get_precision(env=env)
    _validate_precision(kwargs[PRECISION])
    if env is _ENV_STATE:
      _set_jax_precision(kwargs[PRECISION])
  try:
    for key, value in kwargs.items():
      with env.locks[key]:
        env.contexts[key].append(value)
        _changed(env)
        _notify(env, key, value)
    yield all(env=env)
  finally:
    for key in kwargs:
      with env.locks[key]:
        if env.contexts[key]:
          env.contexts[key].pop()
        _changed(env)
        if key in env.functions:
          prev = get(key, default=None, env=env)
          if prev is not None:
            _notify(env, key, prev, restoring=True)
    if old_precision is not None and env is _ENV_STATE:
      _set_jax_precision(old_precision)


def get(key: str, default: Any = _MISSING, desc: Optional[str] = None, *,
        env: Optional[EnvironmentState] = None) -> Any:
  """The current value of ``key``: innermost context, else global, else ``default``.

  Raises ``KeyError`` (naming ``set``/``context``) when missing and no default.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.environ.get('no_such_setting', 3)
    3
  """
  env = _env(env)
  if key == PLATFORM:
    return get_platform()
  if key == HOST_DEVICE_COUNT:
    return get_host_device_count()
  with env.locks[key]:
    stack = env.contexts.get(key)
    if stack:
      return stack[-1]
  if key in env.settings:
    return env.settings[key]
  if default is _MISSING:
    msg = f"Key '{key}' not found in environment."
    if desc:
      msg += f' Description: {desc}'
    msg += (f'\nSet it using:\n  - env.set({key}=value) for global setting'
            f'\n  - env.context({key}=value) for temporary setting')
    raise KeyError(msg)
  return default


def all(*, env: Optional[EnvironmentState] = None) -> Dict[str, Any]:
  """Every current setting as a new dict (contexts override globals).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> with brainstate.environ.context(fit=True):
    ...   brainstate.environ.all()['fit']
    True
  """
  env = _env(env)
  out = dict(env.settings)
  for key, values in env.contexts.items():
    if values:
      out[key] = values[-1]
  return out


def pop(key: str, default: Any = _MISSING, *, env: Optional[EnvironmentState] = None) -> Any:
  """Removes a global setting and returns it.

  ``ValueError`` while a ``context`` overrides ``key``; ``KeyError`` when it
  is not set and no default is given.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.environ.set(my_flag=1)
    >>> brainstate.environ.pop('my_flag')
    1
    >>> brainstate.environ.pop('my_flag', None) is None
    True
  """
  env = _env(env)
  if env.contexts.get(key):
    raise ValueError(
      f"Cannot pop key '{key}' while it is active in a context. "
      f"The key is currently overridden in {len(env.contexts[key])} context(s)."
    )
  if key in env.settings:
    value = env.settings.pop(key)
    _changed(env)
    return value
  if default is _MISSING:
    raise KeyError(f"Key '{key}' not found in global environment settings.")
  return default


def set(platform: Optional[PlatformType] = None,
        host_device_count: Optional[int] = None,
        precision: Optional[PrecisionType] = None,
        dt: Optional[float] = None,
        *,
        env: Optional[EnvironmentState] = None,
        **kwargs) -> None:
  """Sets global values (any keyword; ``dt`` must be a scalar, may carry units).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.environ.set(my_setting='a')
    >>> brainstate.environ.get('my_setting')
    'a'
    >>> brainstate.environ.pop('my_setting')
    'a'
  """
  env = _env(env)
  if platform is not None:
    set_platform(platform)
  if host_device_count is not None:
    set_host_device_count(host_device_count)
  if precision is not None:
    _validate_precision(precision)
    if env is _ENV_STATE:
      _set_jax_precision(precision)
    kwargs[PRECISION] = precision
  if dt is not None:
    if not _units.is_scalar(dt):
      raise TypeError(f"'{DT}' must be a scalar number, got {type(dt)}")
    kwargs[DT] = dt
  env.settings.update(kwargs)
  _changed(env)
  for key, value in kwargs.items():
    _notify(env, key, value)


def get_dt(*, env: Optional[EnvironmentState] = None):
  """The numerical integration time step ``dt`` (``KeyError`` if never set).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> with brainstate.environ.context(dt=0.5):
    ...   brainstate.environ.get_dt()
    0.5
  """
  return get(DT, env=env)


def get_platform() -> PlatformType:
  """The platform of JAX's first device: ``'cpu'``, ``'gpu'`` or ``'tpu'``.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.environ.get_platform() in ('cpu', 'gpu', 'tpu')
    True
  """
  return jax.devices()[0].platform


def get_host_device_count() -> int:
  """The host device count requested through ``XLA_FLAGS`` (1 if none).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.environ.get_host_device_count() >= 1
    True
  """
  flags = os.getenv('XLA_FLAGS', '')
  m = re.search(r'--xla_force_host_platform_device_count=(\d+)', flags)
  return int(m.group(1)) if m else 1


def set_platform(platform: PlatformType) -> None:
  """Selects JAX's default platform (``'cpu'``, ``'gpu'`` or ``'tpu'``).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.environ.set_platform('quantum')
    Traceback (most recent call last):
    ...
    ValueError: Platform must be one of ('cpu', 'gpu', 'tpu'), got 'quantum'
  """
  if platform not in SUPPORTED_PLATFORMS:
    raise ValueError(f"Platform must be one of {SUPPORTED_PLATFORMS}, got '{platform}'")
  config.update('jax_platform_name', platform)
  if PLATFORM in _ENV_STATE.functions:
    _ENV_STATE.functions[PLATFORM](platform)


def set_host_device_count(n: int) -> None:
  """Asks XLA for ``n`` host (CPU) devices; only effective before JAX starts.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.environ.set_host_device_count(0)
    Traceback (most recent call last):
    ...
    ValueError: Host device count must be a positive integer, got 0
  """
  if not isinstance(n, int) or n < 1:
    raise ValueError(f'Host device count must be a positive integer, got {n}')
  flags = os.getenv('XLA_FLAGS', '')
  flags = re.sub(r'--xla_force_host_platform_device_count=\S+', '', flags).split()
  os.environ['XLA_FLAGS'] = ' '.join([f'--xla_force_host_platform_device_count={n}'] + flags)
  if HOST_DEVICE_COUNT in _ENV_STATE.functions:
    _ENV_STATE.functions[HOST_DEVICE_COUNT](n)


def set_precision(precision: PrecisionType, *, env: Optional[EnvironmentState] = None) -> None:
  """Sets the default precision: 8, 16, 32, 64 or ``'bf16'`` (64 enables JAX x64).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> env = brainstate.environ.EnvironmentState()
    >>> brainstate.environ.set_precision(16, env=env)
    >>> brainstate.environ.dftype(env=env)
    <class 'numpy.float16'>
  """
  env = _env(env)
  _validate_precision(precision)
  if env is _ENV_STATE:
    _set_jax_precision(precision)
  env.settings[PRECISION] = precision
  _changed(env)
  if PRECISION in env.functions:
    env.functions[PRECISION](precision)


def get_precision(*, env: Optional[EnvironmentState] = None) -> int:
  """The precision in bits (``'bf16'`` counts as 16).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.environ.get_precision()
    32
  """
  p = get(PRECISION, default=DEFAULT_PRECISION, env=env)
  if p == 'bf16':
    return 16
  if isinstance(p, str):
    return int(p)
  if isinstance(p, int):
    return p
  raise ValueError(f'Invalid precision type: {type(p)}')


def _validate_precision(precision) -> None:
  if precision not in SUPPORTED_PRECISIONS and str(precision) not in builtins.map(str, SUPPORTED_PRECISIONS):
    raise ValueError(f'Precision must be one of {SUPPORTED_PRECISIONS}, got {precision}')


def _get_precision(*, env=None):
  return get(PRECISION, default=DEFAULT_PRECISION, env=env)


def _set_jax_precision(precision) -> None:
  config.update('jax_enable_x64', precision in (64, '64'))


@functools.lru_cache(maxsize=16)
def _float_of(precision):
  table = {64: np.float64, 32: np.float32, 16: np.float16, 'bf16': jnp.bfloat16,
           8: jnp.float8_e5m2}
  key = int(precision) if isinstance(precision, str) and precision.isdigit() else precision
  if key not in table:
    raise ValueError(f'Unsupported precision: {precision}')
  return table[key]


@functools.lru_cache(maxsize=16)
def _int_of(precision, signed=True):
  bits = {'bf16': 16}.get(precision, None)
  if bits is None:
    try:
      bits = int(precision)
    except (TypeError, ValueError):
      raise ValueError(f'Unsupported precision: {precision}') from None
  if bits not in (8, 16, 32, 64):
    raise ValueError(f'Unsupported precision: {precision}')
  return np.dtype(f'{"" if signed else "u"}int{bits}').type


_get_float = _float_of
_get_int = functools.partial(_int_of, signed=True)
_get_uint = functools.partial(_int_of, signed=False)


def _get_complex(precision):
  if precision in (64, '64'):
    return np.complex128
  if precision in (32, '32', 16, '16', 'bf16', 8, '8'):
    return np.complex64
  raise ValueError(f'Unsupported precision: {precision}')


def dftype(*, env: Optional[EnvironmentState] = None):
  """The default float type for the current precision.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> with brainstate.environ.context(precision='bf16'):
    ...   brainstate.environ.dftype()
    <class 'jax.numpy.bfloat16'>
  """
  return _float_of(_get_precision(env=env))


def ditype(*, env: Optional[EnvironmentState] = None):
  """The default signed integer type for the current precision.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.environ.ditype()
    <class 'numpy.int32'>
  """
  return _int_of(_get_precision(env=env), True)


def dutype(*, env: Optional[EnvironmentState] = None):
  """The default unsigned integer type for the current precision.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.environ.dutype()
    <class 'numpy.uint32'>
  """
  return _int_of(_get_precision(env=env), False)


def dctype(*, env: Optional[EnvironmentState] = None):
  """The default complex type: complex128 at 64 bits, complex64 otherwise.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.environ.dctype()
    <class 'numpy.complex64'>
  """
  return _get_complex(_get_precision(env=env))


def tolerance(*, env: Optional[EnvironmentState] = None) -> np.ndarray:
  """A comparison tolerance for the precision: 1e-12 (64), 1e-5 (32), 1e-2 (less).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.environ.tolerance()
    array(1.e-05, dtype=float32)
  """
  p = get_precision(env=env)
  if p == 64:
    return np.asarray(1e-12, dtype=np.float64)
  if p == 32:
    return np.asarray(1e-5, dtype=np.float32)
  return np.asarray(1e-2, dtype=np.float16)


def register_default_behavior(key: str, behavior: Callable[[Any], None],
                              replace_if_exist: bool = False, *,
                              env: Optional[EnvironmentState] = None) -> None:
  """Registers ``behavior(value)`` to run whenever ``key`` is set or a context changes it.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> env = brainstate.environ.EnvironmentState()
    >>> brainstate.environ.register_default_behavior('dt', print, env=env)
    >>> brainstate.environ.set(dt=0.2, env=env)
    0.2
  """
  env = _env(env)
  if not isinstance(key, str):
    raise TypeError(f'Key must be a string, got {type(key)}')
  if not callable(behavior):
    raise TypeError(f'Behavior must be callable, got {type(behavior)}')
  if key in env.functions and not replace_if_exist:
    raise ValueError(
      f"Behavior for key '{key}' already registered. "
      f"Use replace_if_exist=True to override."
    )
  env.functions[key] = behavior


def unregister_default_behavior(key: str, *, env: Optional[EnvironmentState] = None) -> bool:
  """Removes the callback of ``key``; ``True`` if there was one.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.environ.unregister_default_behavior('nothing_registered')
    False
  """
  env = _env(env)
  if key in env.functions:
    del env.functions[key]
    return True
  return False


def list_registered_behaviors(*, env: Optional[EnvironmentState] = None) -> List[str]:
  """The keys that have a registered callback.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> env = brainstate.environ.EnvironmentState()
    >>> brainstate.environ.register_default_behavior('a', print, env=env)
    >>> brainstate.environ.list_registered_behaviors(env=env)
    ['a']
  """
  return list(_env(env).functions.keys())


set(precision=DEFAULT_PRECISION)
