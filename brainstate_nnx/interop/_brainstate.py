"""``from_brainstate``: load a real BrainState model's weights into the
equivalent brainstate_nnx model, matching States by path.

Example (needs the ``brainstate`` package)::

  >>> import brainstate                             # doctest: +SKIP
  >>> import brainstate_nnx
  >>> src = brainstate.nn.Linear(3, 2)              # doctest: +SKIP
  >>> dst = brainstate_nnx.nn.Linear(3, 2)
  >>> brainstate_nnx.interop.from_brainstate(src, dst) is dst   # doctest: +SKIP
  True
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from ._errors import ConversionError

__all__ = ['from_brainstate', 'to_brainstate']


def _paths(model, what: str) -> dict:
  try:
    found = model.states()
  except Exception as err:
    raise ConversionError(f'the {what} model has no states() method ({type(model).__name__})') from err
  return {tuple(k): v for k, v in found.items()}


def _copy(src: dict, dst: dict, strict: bool, src_name: str, dst_name: str) -> None:
  missing = sorted(set(dst) - set(src), key=str)
  extra = sorted(set(src) - set(dst), key=str)
  if strict and (missing or extra):
    raise ConversionError(
      f'the {src_name} and {dst_name} models do not have the same State paths; '
      f'only in {dst_name}: {missing}, only in {src_name}: {extra}. Build the same '
      'architecture on both sides (or pass strict=False to copy the common paths).'
    )
  for path in dst:
    if path not in src:
      continue
    value = src[path].value
    old = dst[path].value
    # compare by leaf key paths: a dict and an nnx.State with the same keys match
    v_leaves, _ = jax.tree_util.tree_flatten_with_path(value)
    o_leaves, o_tree = jax.tree_util.tree_flatten_with_path(old)
    v_keys = [jax.tree_util.keystr(k) for k, _ in v_leaves]
    o_keys = [jax.tree_util.keystr(k) for k, _ in o_leaves]
    if v_keys != o_keys:
      raise ConversionError(
        f'State {path}: structure {jax.tree.structure(value)} does not match '
        f'{jax.tree.structure(old)}.')
    value = jax.tree.unflatten(o_tree, [x for _, x in v_leaves])
    for a, b in zip(jax.tree.leaves(value), jax.tree.leaves(old)):
      if np.shape(a) != np.shape(b):
        raise ConversionError(f'State {path}: shape {np.shape(a)} does not match {np.shape(b)}.')
    dst[path].value = jax.tree.map(lambda a, b: jax.numpy.asarray(a, dtype=jax.numpy.result_type(b)),
                                   value, old)


def from_brainstate(bst_model: Any, model: Any, *, strict: bool = True) -> Any:
  """Copies every State value of the BrainState model ``bst_model`` into the
  State at the same path of the brainstate_nnx ``model`` (returned).

  Paths, pytree structures and shapes must match (:class:`ConversionError`
  names the difference); ``strict=False`` copies the common paths only.
  """
  _copy(_paths(bst_model, 'BrainState'), _paths(model, 'brainstate_nnx'), strict,
        'BrainState', 'brainstate_nnx')
  return model


def to_brainstate(model: Any, bst_model: Any, *, strict: bool = True) -> Any:
  """The reverse of :func:`from_brainstate` (returns ``bst_model``)."""
  _copy(_paths(model, 'brainstate_nnx'), _paths(bst_model, 'BrainState'), strict,
        'brainstate_nnx', 'BrainState')
  return bst_model
