"""Hooks for every State at once: :class:`GlobalHookRegistry` and its functions.

Example::

  >>> import jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> writes = []
  >>> h = brainstate.register_state_hook('write_after', lambda ctx: writes.append(ctx.state_name))
  >>> a = brainstate.State(jnp.zeros(2), name='a')
  >>> a.value = jnp.ones(2)
  >>> brainstate.unregister_state_hook(h), writes
  (True, ['a'])
  >>> brainstate.has_state_hooks()
  False
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from ._state_hook_core import Hook, HookHandle
from ._state_hook_manager import HookConfig, HookManager

__all__ = [
  'GlobalHookRegistry',
  'register_state_hook',
  'unregister_state_hook',
  'clear_state_hooks',
  'has_state_hooks',
  'list_state_hooks',
]


class GlobalHookRegistry(HookManager):
  """The single :class:`HookManager` whose hooks run for every State
  (before the State's own hooks). ``GlobalHookRegistry()`` and
  :meth:`instance` return the same object until :meth:`reset`."""

  _instance: Optional['GlobalHookRegistry'] = None

  def __new__(cls, config: Optional[HookConfig] = None):
    if cls._instance is None:
      obj = super().__new__(cls)
      HookManager.__init__(obj, config)
      obj._count_in_switch()
      cls._instance = obj
    return cls._instance

  def __init__(self, config: Optional[HookConfig] = None):
    # construction happens once, in __new__
    pass

  @classmethod
  def instance(cls) -> 'GlobalHookRegistry':
    """The registry in use."""
    return cls()

  @classmethod
  def reset(cls) -> None:
    """Drops the registry and its hooks (a fresh one is made on next use)."""
    old, cls._instance = cls._instance, None
    if old is not None:
      old.clear_hooks()


def register_state_hook(hook_type: str, callback: Callable[[Any], Any], priority: int = 0,
                        name: Optional[str] = None, enabled: bool = True) -> HookHandle:
  """Registers a hook run for every State (``'read'``, ``'write_before'``,
  ``'write_after'``, ``'restore'`` or ``'init'``); returns its handle."""
  return GlobalHookRegistry.instance().register_hook(hook_type, callback, priority, name, enabled)


def unregister_state_hook(handle: HookHandle) -> bool:
  """Removes a global hook; ``False`` if it was not registered."""
  return GlobalHookRegistry.instance().unregister_hook(handle)


def clear_state_hooks(hook_type: Optional[str] = None) -> None:
  """Removes all global hooks (of one type, or all)."""
  GlobalHookRegistry.instance().clear_hooks(hook_type)


def has_state_hooks(hook_type: Optional[str] = None) -> bool:
  """Whether a global hook is registered (of ``hook_type``: an enabled one)."""
  return GlobalHookRegistry.instance().has_hooks(hook_type)


def list_state_hooks(hook_type: Optional[str] = None) -> List[Hook]:
  """The global hooks (of one type, or of the four value types)."""
  return GlobalHookRegistry.instance().get_hooks(hook_type)
