"""A registered State hook (:class:`Hook`), its :class:`HookHandle`, and the hook errors.

Example::

  >>> import brainstate_nnx as brainstate
  >>> hook = brainstate.Hook(lambda ctx: None, priority=5, name='noop')
  >>> hook
  Hook(name='noop', priority=5, enabled)
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Callable, Optional

__all__ = [
  'Hook',
  'HookHandle',
  'HookError',
  'HookExecutionError',
  'HookRegistrationError',
  'HookCancellationError',
  'HookWarning',
]


class HookError(Exception):
  """Base class of the State hook errors."""


class HookExecutionError(HookError):
  """A hook callback raised; the original exception is the ``__cause__``."""


class HookRegistrationError(HookError):
  """A hook could not be registered (unknown hook type, callback not callable)."""


class HookCancellationError(HookError):
  """A ``'write_before'`` hook set ``ctx.cancel``: the write did not happen."""


class HookWarning(UserWarning):
  """Emitted for a failing hook when the manager's ``on_error`` is ``'log'``."""


_ids = itertools.count()
_ids_lock = threading.Lock()


class Hook:
  """A callback with a priority, a name and an on/off switch.

  Higher ``priority`` runs first; equal priorities run in registration order.

  Args:
    callback: called with a :class:`~brainstate_nnx.HookContext`.
    priority: ordering key (default 0).
    name: for messages; ``'hook_<id>'`` when omitted.
    enabled: whether it runs.
  """

  def __init__(self, callback: Callable[[Any], Any], priority: int = 0,
               name: Optional[str] = None, enabled: bool = True):
    if not callable(callback):
      raise HookRegistrationError(
        f'Hook callback must be callable, got {type(callback)}')
    with _ids_lock:
      hook_id = next(_ids)
    self.hook_id = hook_id
    self.callback = callback
    self.priority = priority
    self.name = name or f'hook_{hook_id}'
    self.enabled = enabled
    self._error_count = 0

  def execute(self, context) -> Any:
    """Runs the callback (``None`` when disabled); failures become
    :class:`HookExecutionError`."""
    if not self.enabled:
      return None
    try:
      return self.callback(context)
    except Exception as err:
      raise HookExecutionError(f"Hook '{self.name}' execution failed") from err

  def __lt__(self, other: 'Hook') -> bool:
    # sorted() puts higher priorities first, then older hooks
    if self.priority != other.priority:
      return self.priority > other.priority
    return self.hook_id < other.hook_id

  def __repr__(self) -> str:
    return (f"Hook(name='{self.name}', priority={self.priority}, "
            f"{'enabled' if self.enabled else 'disabled'})")


class HookHandle:
  """What ``register_hook`` returns: switch the hook on/off or remove it.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> s = brainstate.State(1.0)
    >>> calls = []
    >>> h = s.register_hook('read', lambda ctx: calls.append(ctx.value))
    >>> h.disable(); _ = s.value; h.enable(); _ = s.value
    >>> calls
    [1.0]
    >>> h.remove(), h.is_removed()
    (True, True)
  """

  def __init__(self, manager_ref, hook: Hook, hook_type: str):
    self._manager_ref = manager_ref
    self._hook = hook
    self._hook_type = hook_type
    self._removed = False

  def _manager(self, action: str):
    if self._removed:
      raise HookError(f'Cannot {action} a removed hook')
    manager = self._manager_ref()
    if manager is None:
      raise HookError('HookManager has been garbage collected')
    return manager

  def enable(self) -> None:
    """Turns the hook on."""
    manager = self._manager('enable')
    self._hook.enabled = True
    manager._invalidate_cache()

  def disable(self) -> None:
    """Turns the hook off (it stays registered)."""
    manager = self._manager('disable')
    self._hook.enabled = False
    manager._invalidate_cache()

  def remove(self) -> bool:
    """Unregisters the hook; ``False`` if it was already gone."""
    if self._removed:
      return False
    manager = self._manager_ref()
    if manager is None:
      return False
    ok = manager.unregister_hook(self)
    if ok:
      self._removed = True
    return ok

  def is_enabled(self) -> bool:
    """Whether the hook would run now (``False`` once removed)."""
    return not self._removed and self._hook.enabled

  def is_removed(self) -> bool:
    """Whether :meth:`remove` succeeded."""
    return self._removed

  @property
  def name(self) -> str:
    """The hook's name."""
    return self._hook.name

  @property
  def priority(self) -> int:
    """The hook's priority."""
    return self._hook.priority

  def __repr__(self) -> str:
    if self._removed:
      return f"HookHandle(name='{self.name}', removed)"
    return (f"HookHandle(name='{self.name}', priority={self.priority}, "
            f"{'enabled' if self.is_enabled() else 'disabled'})")
