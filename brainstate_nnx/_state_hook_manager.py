"""The per-State (and global) collection of hooks: :class:`HookManager`, :class:`HookConfig`.

A State creates its manager on first use (``state.hooks``). Every
registration keeps a process-wide count of live hooks; while it is zero,
``State.value`` reads and writes skip the hook machinery with one boolean
test.

Example::

  >>> import brainstate_nnx as brainstate
  >>> m = brainstate.HookManager(brainstate.HookConfig(on_error='raise'))
  >>> h = m.register_hook('write_after', lambda ctx: None, priority=1)
  >>> m.has_hooks('write_after'), m.has_hooks('read')
  (True, False)
"""

from __future__ import annotations

import threading
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Literal, Optional

from ._state_hook_context import (
  HookContext,
  InitHookContext,
  MutableWriteHookContext,
  ReadHookContext,
  RestoreHookContext,
  WriteHookContext,
)
from ._state_hook_core import (
  Hook,
  HookCancellationError,
  HookExecutionError,
  HookHandle,
  HookRegistrationError,
  HookWarning,
)

__all__ = ['HookConfig', 'HookManager']

HOOK_TYPES = ('read', 'write_before', 'write_after', 'restore', 'init')

# -- the process-wide "is any hook registered" switch -------------------------
_live = [0]
_live_lock = threading.Lock()
_listeners: list = []  # called with no argument when the count moves 0 <-> >0


def live_hook_count() -> int:
  """Number of hooks registered in all managers (that are still alive)."""
  return _live[0]


def _add_live(n: int) -> None:
  if not n:
    return
  with _live_lock:
    before = _live[0]
    _live[0] = max(before + n, 0)
    after = _live[0]
  if (before == 0) != (after == 0):
    for fn in _listeners:
      fn()


def _release(counter: list) -> None:
  # a manager was garbage collected with hooks still registered
  n, counter[0] = counter[0], 0
  _add_live(-n)


@dataclass
class HookConfig:
  """How a :class:`HookManager` treats a failing hook.

  Attributes:
    on_error: ``'log'`` (warn with :class:`HookWarning`, or call
      ``error_logger``), ``'raise'`` (:class:`HookExecutionError`) or
      ``'ignore'``. A cancelled ``write_before`` always raises.
    error_logger: ``fn(message, error, hook, context)`` used by ``'log'``.
    max_errors_per_hook: failures after which ``disable_on_error`` turns a
      hook off.
    disable_on_error: see ``max_errors_per_hook``.
  """

  on_error: Literal['raise', 'log', 'ignore'] = 'log'
  error_logger: Optional[Callable[[str, Exception, Hook, HookContext], None]] = None
  max_errors_per_hook: int = 10
  disable_on_error: bool = False


class HookManager:
  """Holds the hooks of each type, sorted by priority, and runs them.

  Global hooks (:class:`GlobalHookRegistry`) run before a State's own hooks.
  """

  def __init__(self, config: Optional[HookConfig] = None):
    self._lock = threading.RLock()
    self._hooks: Dict[str, List[Hook]] = {t: [] for t in HOOK_TYPES}
    self._has_hooks = False
    self._hook_cache: Dict[str, List[Hook]] = {}
    self._cache_valid = False
    self.config = config or HookConfig()
    # hooks of this manager counted in the process-wide switch (only for the
    # managers States consult: the global registry and each State's own)
    self._count = [0]
    self._counted = False

  def _count_in_switch(self) -> 'HookManager':
    if not self._counted:
      self._counted = True
      weakref.finalize(self, _release, self._count)
      self._recount()
    return self

  # -- bookkeeping -----------------------------------------------------------
  def _get_hook_list(self, hook_type: str) -> List[Hook]:
    try:
      return self._hooks[hook_type]
    except KeyError:
      raise ValueError(f'Invalid hook type: {hook_type}') from None

  def _recount(self) -> None:
    n = sum(len(v) for v in self._hooks.values())
    self._has_hooks = n > 0
    if self._counted:
      delta, self._count[0] = n - self._count[0], n
      _add_live(delta)

  def _invalidate_cache(self) -> None:
    self._cache_valid = False

  def _get_cached_hooks(self, hook_type: str) -> List[Hook]:
    if not self._cache_valid:
      with self._lock:
        self._hook_cache = {
          t: sorted(h for h in hooks if h.enabled) for t, hooks in self._hooks.items()
        }
        self._cache_valid = True
    return self._hook_cache.get(hook_type, [])

  # -- registration ------------------------------------------------------------
  def register_hook(self, hook_type: str, callback: Callable, priority: int = 0,
                    name: Optional[str] = None, enabled: bool = True) -> HookHandle:
    """Adds ``callback`` for ``hook_type``; returns its :class:`HookHandle`."""
    if hook_type not in HOOK_TYPES:
      raise HookRegistrationError(f'Invalid hook type: {hook_type}')
    with self._lock:
      hook = Hook(callback, priority, name, enabled)
      self._hooks[hook_type].append(hook)
      self._invalidate_cache()
      self._recount()
    return HookHandle(weakref.ref(self), hook, hook_type)

  def unregister_hook(self, handle: HookHandle) -> bool:
    """Removes the hook of ``handle``; ``False`` if it is not registered here."""
    with self._lock:
      hooks = self._get_hook_list(handle._hook_type)
      if handle._hook not in hooks:
        return False
      hooks.remove(handle._hook)
      self._invalidate_cache()
      self._recount()
      return True

  def get_hooks(self, hook_type: Optional[str] = None) -> List[Hook]:
    """The registered hooks (enabled or not), of one type or of the four
    value types (``read``, ``write_before``, ``write_after``, ``restore``)."""
    with self._lock:
      if hook_type is None:
        return [h for t in HOOK_TYPES[:4] for h in self._hooks[t]]
      return list(self._get_hook_list(hook_type))

  def clear_hooks(self, hook_type: Optional[str] = None) -> None:
    """Removes every hook (of one type, or all)."""
    with self._lock:
      if hook_type is None:
        for hooks in self._hooks.values():
          hooks.clear()
      else:
        self._get_hook_list(hook_type).clear()
      self._invalidate_cache()
      self._recount()

  def has_hooks(self, hook_type: Optional[str] = None) -> bool:
    """Whether any hook is registered (of ``hook_type``: any *enabled* one)."""
    if hook_type is not None and hook_type not in HOOK_TYPES:
      raise ValueError(f'Invalid hook type: {hook_type}')
    if not self._has_hooks:
      return False
    if hook_type is None:
      return True
    return any(h.enabled for h in self._hooks[hook_type])

  # -- running ------------------------------------------------------------------
  def _run(self, hooks, context) -> None:
    for hook in hooks:
      if hook.enabled:
        try:
          hook.execute(context)
        except Exception as err:
          self._handle_hook_error(hook, err, context)

  def execute_read_hooks(self, value: Any, state_ref) -> None:
    """Runs the ``read`` hooks."""
    hooks = self._get_cached_hooks('read')
    if hooks:
      with self._lock:
        self._run(hooks, ReadHookContext(operation='read', state_ref=state_ref, value=value))

  def execute_write_before_hooks(self, new_value: Any, old_value: Any, state_ref) -> Any:
    """Runs the ``write_before`` chain; returns the value to store.

    Raises :class:`HookCancellationError` when a hook cancels."""
    hooks = self._get_cached_hooks('write_before')
    if not hooks:
      return new_value
    with self._lock:
      current = new_value
      for hook in hooks:
        if not hook.enabled:
          continue
        ctx = MutableWriteHookContext(
          operation='write_before', state_ref=state_ref, value=new_value,
          old_value=old_value, transformed_value=current)
        try:
          hook.execute(ctx)
        except Exception as err:
          self._handle_hook_error(hook, err, ctx)
          continue
        if ctx.cancel:
          raise HookCancellationError(
            f'{hook.name}: {ctx.cancel_reason or "Hook cancelled the operation"}')
        if ctx.transformed_value is not None:
          current = ctx.transformed_value
      return current

  def execute_write_after_hooks(self, new_value: Any, old_value: Any, state_ref) -> None:
    """Runs the ``write_after`` hooks."""
    hooks = self._get_cached_hooks('write_after')
    if hooks:
      with self._lock:
        self._run(hooks, WriteHookContext(
          operation='write_after', state_ref=state_ref, value=new_value, old_value=old_value))

  def execute_restore_hooks(self, new_value: Any, old_value: Any, state_ref) -> None:
    """Runs the ``restore`` hooks."""
    hooks = self._get_cached_hooks('restore')
    if hooks:
      with self._lock:
        self._run(hooks, RestoreHookContext(
          operation='restore', state_ref=state_ref, value=new_value, old_value=old_value))

  def execute_init_hooks(self, value: Any, state_ref,
                         init_metadata: Optional[Dict[str, Any]] = None) -> None:
    """Runs the ``init`` hooks."""
    hooks = self._get_cached_hooks('init')
    if hooks:
      with self._lock:
        self._run(hooks, InitHookContext(
          operation='init', state_ref=state_ref, value=value,
          init_metadata=init_metadata or {}))

  def _handle_hook_error(self, hook: Hook, error: Exception, context) -> None:
    hook._error_count += 1
    cfg = self.config
    if cfg.disable_on_error and hook._error_count >= cfg.max_errors_per_hook:
      hook.enabled = False
      self._invalidate_cache()
      msg = (f"Hook '{hook.name}' disabled after {hook._error_count} errors. "
             f'Last error: {error}')
    else:
      msg = f"Hook '{hook.name}' error #{hook._error_count}: {error}"
    if cfg.on_error == 'raise':
      raise HookExecutionError(msg) from error
    if cfg.on_error == 'log':
      if cfg.error_logger is not None:
        cfg.error_logger(msg, error, hook, context)
      else:
        warnings.warn(msg, HookWarning, stacklevel=4)
