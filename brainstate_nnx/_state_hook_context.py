"""What a State hook receives: one context object per hook call.

Every callback registered with :func:`brainstate_nnx.register_state_hook` or
``State.register_hook`` is called with one of these dataclasses. ``state_ref``
is a zero-argument callable giving the State back (a ``weakref.ref`` works
too); ``ctx.state`` calls it.

Example::

  >>> import jax.numpy as jnp
  >>> import brainstate_nnx as brainstate
  >>> s = brainstate.State(jnp.arange(3), name='counter')
  >>> seen = []
  >>> h = s.register_hook('read', lambda ctx: seen.append((ctx.operation, ctx.state_name)))
  >>> _ = s.value
  >>> seen
  [('read', 'counter')]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Literal, Optional

__all__ = [
  'HookContext',
  'ReadHookContext',
  'WriteHookContext',
  'MutableWriteHookContext',
  'RestoreHookContext',
  'InitHookContext',
]

HookType = Literal['read', 'write_before', 'write_after', 'restore', 'init']


@dataclass(slots=True)
class HookContext:
  """Common part of every hook context.

  Attributes:
    operation: ``'read'``, ``'write_before'``, ``'write_after'``,
      ``'restore'`` or ``'init'``.
    state_ref: a callable returning the State (or ``None`` once it is gone).
    timestamp: ``time.time()`` when the context was made.
    metadata: a free dict for the hooks' own use.
  """

  operation: HookType
  state_ref: Callable[[], Any]
  timestamp: float = field(default_factory=time.time)
  metadata: Dict[str, Any] = field(default_factory=dict)

  @property
  def state(self):
    """The State this hook runs for (``None`` if it no longer exists)."""
    return self.state_ref()

  @property
  def state_name(self) -> Optional[str]:
    """The State's ``name`` (``None`` when unnamed or gone)."""
    st = self.state_ref()
    return None if st is None else st.name


@dataclass(slots=True)
class ReadHookContext(HookContext):
  """Context of a ``'read'`` hook; ``value`` is what the read returns."""

  value: Any = None


@dataclass(slots=True)
class WriteHookContext(HookContext):
  """Context of a ``'write_after'`` hook: the new ``value`` and the ``old_value``."""

  value: Any = None
  old_value: Any = None


@dataclass(slots=True)
class MutableWriteHookContext(WriteHookContext):
  """Context of a ``'write_before'`` hook, which may change or stop the write.

  ``value`` is always the value the user assigned; ``transformed_value``
  starts as the result of the previous hook in the chain. Set
  ``transformed_value`` to replace what gets stored, or ``cancel = True``
  (with an optional ``cancel_reason``) to refuse the write, which then raises
  :class:`~brainstate_nnx.HookCancellationError` and leaves the State as it was.
  """

  transformed_value: Optional[Any] = None
  cancel: bool = False
  cancel_reason: Optional[str] = None


@dataclass(slots=True)
class RestoreHookContext(WriteHookContext):
  """Context of a ``'restore'`` hook (``State.restore_value``); read-only."""


@dataclass(slots=True)
class InitHookContext(HookContext):
  """Context of an ``'init'`` hook: the initial ``value`` and the
  construction keywords in ``init_metadata`` (``_name``, ``tag``, extras)."""

  value: Any = None
  init_metadata: Dict[str, Any] = field(default_factory=dict)
