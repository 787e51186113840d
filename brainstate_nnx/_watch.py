"""What brainstate_nnx watches on Flax's own classes.

Two small hooks, installed once when the transforms are imported:

* **Module attribute changes.** Setting or deleting an attribute of any
  ``nnx.Pytree`` (every ``nnx.Module``, Flax layers included) outside a
  brainstate_nnx transform bumps the structure epoch
  (:data:`brainstate_nnx._context.EPOCH`). Compiled
  transforms look at the epoch on every call (one integer comparison) and,
  only when it moved, check whether a cached trace went stale: a State they
  thread was replaced or deleted, or a configuration attribute
  (``model.eval()`` / ``model.train()`` setting ``deterministic``,
  ``use_running_average``, ...) changed.
* **Reads of stock Flax Variables.** A stock ``nnx.Variable`` (one not
  adopted with :func:`brainstate_nnx.adopt`) read while a brainstate_nnx
  transform traces is adopted on the spot and reported to the transform as a
  State read, so it is threaded like any State instead of being baked into
  the compiled program as a stale constant.

Example::

  >>> import jax.numpy as jnp
  >>> from flax import nnx
  >>> import brainstate_nnx as brainstate
  >>> w = nnx.Param(jnp.ones(2))            # a stock Flax Variable
  >>> f = brainstate.transform.jit(lambda: w[...] * 2)
  >>> f()
  Array([2., 2.], dtype=float32)
  >>> w[...] = jnp.array([5.0, 5.0])
  >>> f()                                   # not a stale constant
  Array([10., 10.], dtype=float32)
"""

from __future__ import annotations

from flax import nnx
from flax.nnx import variablelib as _vl

from . import _context
from ._state import State, adopt

__all__ = ['install']

_CTX = _context.CONTEXT
_INSTALLED = []


def _watched_setattr(original):
  def _setattr(self, name, value):
    if not _CTX.frames and not name.startswith('_pytree__'):
      old = vars(self).get(name, None)
      if old is not value:
        _context.EPOCH[0] += 1
    original(self, name, value)

  _setattr.__wrapped__ = original
  return _setattr


def _watched_delattr(original):
  def __delattr__(self, name):
    if not _CTX.frames:
      _context.EPOCH[0] += 1
    original(self, name)

  __delattr__.__wrapped__ = original
  return __delattr__


def _watched_get_value(original):
  def get_value(self, *, index=_vl.MISSING):
    stack = _CTX.frames
    if stack and not isinstance(self, State) and not (self.hijax or self.ref):
      # a stock Variable read under a transform: track it from now on
      adopt(self)
      stack[-1].on_read(self)
    return original(self, index=index)

  get_value.__wrapped__ = original
  return get_value


def install() -> None:
  """Installs the hooks (idempotent)."""
  if _INSTALLED:
    return
  _INSTALLED.append(True)
  nnx.Pytree._setattr = _watched_setattr(nnx.Pytree._setattr)
  nnx.Pytree.__delattr__ = _watched_delattr(nnx.Pytree.__delattr__)
  nnx.Variable.get_value = _watched_get_value(nnx.Variable.get_value)


install()
