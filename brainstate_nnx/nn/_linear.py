"""Dense connection layers: BrainState's ``Linear`` family.

Every layer keeps its trainable arrays in one :class:`~brainstate_nnx.ParamState`
called ``weight`` whose value is a dict (``{'weight': W, 'bias': b}``, ...), as
BrainState does, so ``layer.states()`` has the single path ``('weight',)`` and
``nnx.state(layer, nnx.Param)`` the single Param ``weight``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import jax
import jax.numpy as jnp
from flax import nnx

from .._state import ParamState
from .._units import is_quantity, split_mantissa_unit, maybe_attach_unit, unit_module
from . import init as init
from ._module import Module
from ._weight_standardization import weight_standardization

__all__ = [
  'Linear',
  'ScaledWSLinear',
  'SignedWLinear',
  'SparseLinear',
  'AllToAll',
  'OneToOne',
  'LoRA',
]

_LEADING_DIMS_MSG = ('The first n-1 dimensions of "in_size" and "out_size" must be the same.')


def _check_leading_dims(in_size, out_size):
  # BrainState asserts this; the message names what to change.
  assert in_size[:-1] == out_size[:-1], (
    f'{_LEADING_DIMS_MSG} Got in_size={in_size} and out_size={out_size}.'
  )


def _check_features(layer, x, n_in: int):
  """A clear error when the input's last axis does not match ``in_size[-1]``."""
  shape = getattr(x, 'shape', None)
  if shape is None or len(shape) == 0:
    return
  if shape[-1] != n_in:
    raise TypeError(
      f'{type(layer).__name__} expects inputs whose last axis has {n_in} features '
      f'(in_size={layer.in_size}), but got an input of shape {tuple(shape)}. '
      f'Reshape the input or build the layer with in_size={shape[-1]}.'
    )


def _dot(x, w):
  """``x . w`` on arrays, or through brainunit when either is a Quantity."""
  if is_quantity(x) or is_quantity(w):
    return unit_module().linalg.dot(x, w)
  return jnp.dot(x, w)


def _matmul(x, w):
  if is_quantity(x) or is_quantity(w):
    return unit_module().math.matmul(x, w)
  return jnp.matmul(x, w)


def _abs(w):
  if is_quantity(w):
    return unit_module().math.abs(w)
  return jnp.abs(w)


class Linear(Module):
  """Affine map ``y = x @ W + b`` over the last axis.

  Args:
    in_size: input features (an int or a shape whose last entry is the
      feature count).
    out_size: output features; all but the last entry must equal ``in_size``'s.
    w_init: initializer or array for ``W`` of shape ``(in_size[-1], out_size[-1])``
      (default ``KaimingNormal()``).
    b_init: initializer or array for ``b`` of shape ``(out_size[-1],)``;
      ``None`` for no bias (default ``ZeroInit()``).
    w_mask: optional array (or initializer) multiplied into ``W`` on every call.
    name: optional module name.
    param_type: the State class holding the parameters (default ``ParamState``).

  The parameters live in ``self.weight``, a ``param_type`` whose value is
  ``{'weight': W, 'bias': b}`` (``nnx.Linear``'s ``kernel`` and ``bias``).
  Inputs and weights may be ``brainunit`` Quantities.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> layer = brainstate.nn.Linear(4, 3)
    >>> layer(jnp.ones((2, 4))).shape
    (2, 3)
    >>> sorted(layer.weight.value)
    ['bias', 'weight']
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    in_size,
    out_size,
    w_init: Union[Callable, Any] = init.KaimingNormal(),
    b_init: Optional[Union[Callable, Any]] = init.ZeroInit(),
    w_mask: Optional[Union[Any, Callable]] = None,
    name: Optional[str] = None,
    param_type: type = ParamState,
  ):
    super().__init__(name=name)
    self.in_size = in_size
    self.out_size = out_size
    _check_leading_dims(self.in_size, self.out_size)
    self.w_mask = init.param(w_mask, self.in_size + self.out_size)
    params = dict(weight=init.param(w_init, (self.in_size[-1], self.out_size[-1]),
                                    allow_none=False))
    if b_init is not None:
      params['bias'] = init.param(b_init, self.out_size[-1], allow_none=False)
    self.weight = param_type(params)

  def update(self, x):
    _check_features(self, x, self.in_size[-1])
    params = self.weight.value
    w = params['weight']
    if self.w_mask is not None:
      w = w * self.w_mask
    y = _dot(x, w)
    if 'bias' in params:
      y = y + params['bias']
    return y


class SignedWLinear(Module):
  """Linear map with sign-constrained weights: ``y = x @ (|W| * w_sign)``.

  The trainable ``W`` only sets magnitudes; ``w_sign`` (an array broadcastable
  to ``W``, e.g. ``+1`` for excitatory and ``-1`` for inhibitory rows) fixes the
  signs. With ``w_sign=None`` all effective weights are non-negative. There is
  no bias; ``self.weight`` holds the array ``W`` of shape ``in_size + out_size``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> layer = brainstate.nn.SignedWLinear(3, 2, w_sign=-jnp.ones((3, 2)))
    >>> bool((layer(jnp.ones(3)) <= 0).all())
    True
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    in_size,
    out_size,
    w_init: Union[Callable, Any] = init.KaimingNormal(),
    w_sign: Optional[Any] = None,
    name: Optional[str] = None,
    param_type: type = ParamState,
  ):
    super().__init__(name=name)
    self.in_size = in_size
    self.out_size = out_size
    _check_leading_dims(self.in_size, self.out_size)
    self.w_sign = w_sign
    self.weight = param_type(init.param(w_init, self.in_size + self.out_size, allow_none=False))

  def update(self, x):
    w = _abs(self.weight.value)
    if self.w_sign is not None:
      w = w * self.w_sign
    return _matmul(x, w)


class ScaledWSLinear(Module):
  """Linear layer whose kernel is weight-standardized on every call.

  ``W`` is replaced by :func:`weight_standardization` ``(W, eps, gain)``
  (zero mean, unit fan-in variance per output unit, times a learnable ``gain``
  of shape ``(1, out)`` when ``ws_gain``) before ``y = x @ W' + b``.
  ``w_mask`` (shape ``(in, 1)`` or broadcastable) masks the standardized kernel.
  ``self.weight`` holds ``{'weight', 'bias', 'gain'}``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> layer = brainstate.nn.ScaledWSLinear(4, 3)
    >>> sorted(layer.weight.value), layer(jnp.ones((2, 4))).shape
    (['bias', 'gain', 'weight'], (2, 3))
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    in_size,
    out_size,
    w_init: Callable = init.KaimingNormal(),
    b_init: Callable = init.ZeroInit(),
    w_mask: Optional[Union[Any, Callable]] = None,
    ws_gain: bool = True,
    eps: float = 1e-4,
    name: str = None,
    param_type: type = ParamState,
  ):
    super().__init__(name=name)
    self.in_size = in_size
    self.out_size = out_size
    _check_leading_dims(self.in_size, self.out_size)
    self.w_mask = init.param(w_mask, (self.in_size[-1], 1))
    self.eps = eps
    params = dict(weight=init.param(w_init, (self.in_size[-1], self.out_size[-1]),
                                    allow_none=False))
    if b_init is not None:
      params['bias'] = init.param(b_init, self.out_size[-1], allow_none=False)
    if ws_gain:
      shape = params['weight'].shape
      params['gain'] = jnp.ones((1,) * (len(shape) - 1) + (shape[-1],),
                                dtype=params['weight'].dtype)
    self.weight = param_type(params)

  def update(self, x):
    _check_features(self, x, self.in_size[-1])
    params = self.weight.value
    w = weight_standardization(params['weight'], self.eps, params.get('gain', None))
    if self.w_mask is not None:
      w = w * self.w_mask
    y = _dot(x, w)
    if 'bias' in params:
      y = y + params['bias']
    return y


# --------------------------------------------------------------------------
# sparse matrices
# --------------------------------------------------------------------------

def _is_jax_sparse(mat) -> bool:
  try:
    from jax.experimental import sparse as jsparse
  except ImportError:  # pragma: no cover
    return False
  return isinstance(mat, jsparse.JAXSparse)


def _is_sparse_matrix(mat) -> bool:
  """A ``brainunit.sparse`` matrix (duck-typed) or a ``jax.experimental.sparse`` one."""
  if _is_jax_sparse(mat):
    return True
  return (hasattr(mat, 'with_data') and hasattr(mat, 'data') and hasattr(mat, 'shape')
          and not isinstance(mat, (jax.Array, ParamState)))


def _with_data(mat, data):
  if hasattr(mat, 'with_data'):
    return mat.with_data(data)
  # jax.experimental.sparse: the data buffer is the first pytree child.
  leaves, treedef = jax.tree_util.tree_flatten(mat)
  return jax.tree_util.tree_unflatten(treedef, [data] + leaves[1:])


class SparseLinear(Module):
  """Linear map through a fixed sparsity pattern: ``y = x @ S(data) + b``.

  ``spar_mat`` gives the pattern and the initial non-zero values. It may be a
  ``brainunit.sparse`` matrix (``CSR``, ``CSC``, ``COO``, as in BrainState; the
  caller's own ``brainunit`` import provides it, brainstate_nnx never imports
  it) or a ``jax.experimental.sparse`` matrix (``BCOO``, ``BCSR``), which needs
  no extra package. Only the stored values are trainable: ``self.weight``
  holds ``{'weight': spar_mat.data}`` (and ``'bias'`` with ``b_init``).

  Example::

    >>> import jax.numpy as jnp
    >>> from jax.experimental import sparse
    >>> import brainstate_nnx as brainstate
    >>> mat = sparse.BCOO.fromdense(jnp.array([[1., 0.], [0., 2.], [3., 0.]]))
    >>> layer = brainstate.nn.SparseLinear(mat, in_size=3)
    >>> layer(jnp.ones(3))
    Array([4., 2.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    spar_mat,
    b_init: Optional[Union[Callable, Any]] = None,
    in_size=None,
    name: Optional[str] = None,
    param_type: type = ParamState,
  ):
    super().__init__(name=name)
    if in_size is not None:
      self.in_size = in_size
    assert _is_sparse_matrix(spar_mat), (
      '"weight" must be a SparseMatrix: a brainunit.sparse CSR/CSC/COO or a '
      f'jax.experimental.sparse BCOO/BCSR matrix, got {type(spar_mat).__name__}.'
    )
    if _is_jax_sparse(spar_mat) and hasattr(spar_mat, 'indptr'):
      spar_mat = spar_mat.to_bcoo()  # BCSR cannot be a right operand; BCOO can
    self.out_size = spar_mat.shape[-1]
    if in_size is not None:
      _check_leading_dims(self.in_size, self.out_size)
    # the matrix holds arrays (indices), so it is pytree data for nnx
    self.spar_mat = nnx.data(spar_mat)
    params = dict(weight=spar_mat.data)
    if b_init is not None:
      params['bias'] = init.param(b_init, self.out_size[-1], allow_none=False)
    self.weight = param_type(params)

  def update(self, x):
    params = self.weight.value
    y = x @ _with_data(self.spar_mat, params['weight'])
    if 'bias' in params:
      y = y + params['bias']
    return y


class AllToAll(Module):
  """Dense all-to-all projection, optionally without self-connections.

  ``y = x @ W (+ b)``. With ``include_self=False`` the diagonal of ``W`` is
  zeroed on every call (``W[i, i]`` connects unit ``i`` to itself). ``W`` may
  be a scalar (``w_init=0.5``): every pair then has the same weight, and the
  product is a sum over the inputs. Inputs and weights may carry
  ``brainunit`` units; the output's unit is their product.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> layer = brainstate.nn.AllToAll(3, 3, w_init=1.0, include_self=False)
    >>> layer(jnp.array([1., 2., 3.]))
    Array([5., 4., 3.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    in_size,
    out_size,
    w_init: Union[Callable, Any] = init.KaimingNormal(),
    b_init: Optional[Union[Callable, Any]] = None,
    include_self: bool = True,
    name: Optional[str] = None,
    param_type: type = ParamState,
  ):
    super().__init__(name=name)
    self.in_size = in_size
    self.out_size = out_size
    _check_leading_dims(self.in_size, self.out_size)
    self.include_self = include_self
    params = dict(weight=init.param(w_init, (self.in_size[-1], self.out_size[-1]),
                                    allow_none=False))
    if b_init is not None:
      params['bias'] = init.param(b_init, self.out_size[-1], allow_none=False)
    self.weight = param_type(params)

  def update(self, pre_val):
    params = self.weight.value
    x, x_unit = split_mantissa_unit(pre_val)
    w, w_unit = split_mantissa_unit(params['weight'])
    x = jnp.asarray(x)
    if jnp.ndim(w) == 0:
      n_in, n_out = self.in_size[-1], self.out_size[-1]
      if x.ndim == 1:
        y = jnp.sum(x)
      else:
        y = jnp.sum(x, axis=-1, keepdims=True)
      if not self.include_self:
        if self.in_size == self.out_size:
          y = y - x
        elif n_in > n_out:
          y = y - x[..., :n_out]
        else:
          pad = jnp.zeros(x.shape[:-1] + (n_out - n_in,), dtype=x.dtype)
          y = y - jnp.concatenate([x, pad], axis=-1)
      y = w * y
    else:
      assert jnp.ndim(w) == 2, '"weight" must be a 2D matrix.'
      if not self.include_self:
        w = jnp.fill_diagonal(w, 0., inplace=False)
      y = x @ w
    if x_unit is not None and w_unit is not None:
      unit = x_unit * w_unit
    else:
      unit = x_unit if w_unit is None else w_unit
    y = maybe_attach_unit(y, unit)
    if 'bias' in params:
      y = y + params['bias']
    return y


class OneToOne(Module):
  """Element-wise (diagonal) connection: ``y = x * w (+ b)``.

  ``w`` (and the optional ``b``) have shape ``in_size``; ``out_size`` equals
  ``in_size``. The default ``w_init`` is ``Normal()``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> layer = brainstate.nn.OneToOne(3, w_init=jnp.array([1., 2., 3.]))
    >>> layer(jnp.ones(3))
    Array([1., 2., 3.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    in_size,
    w_init: Union[Callable, Any] = init.Normal(),
    b_init: Optional[Union[Callable, Any]] = None,
    name: Optional[str] = None,
    param_type: type = ParamState,
  ):
    super().__init__(name=name)
    self.in_size = in_size
    self.out_size = in_size
    params = dict(weight=init.param(w_init, self.in_size, allow_none=False))
    if b_init is not None:
      params['bias'] = init.param(b_init, self.out_size, allow_none=False)
    self.weight = param_type(params)

  def update(self, pre_val):
    params = self.weight.value
    y = pre_val * params['weight']
    if 'bias' in params:
      y = y + params['bias']
    return y


class LoRA(Module):
  """Low-rank adapter (Hu et al., 2021): ``y = x @ A @ B (+ base_module(x))``.

  ``A`` has shape ``(in_features, lora_rank)`` and ``B`` ``(lora_rank,
  out_features)``, both drawn by ``kernel_init`` (default ``LecunNormal()``) and
  held in ``self.weight`` as ``{'lora_a': A, 'lora_b': B}``. With
  ``base_module`` (e.g. a frozen :class:`Linear`), its output is added, so the
  adapter fine-tunes it with ``(in + out) * rank`` parameters.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> base = brainstate.nn.Linear(4, 3)
    >>> lora = brainstate.nn.LoRA(4, 2, 3, base_module=base)
    >>> lora(jnp.ones((5, 4))).shape
    (5, 3)
    >>> [v.shape for v in lora.weight.value.values()]
    [(4, 2), (2, 3)]
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(
    self,
    in_features: int,
    lora_rank: int,
    out_features: int,
    *,
    base_module: Optional[Module] = None,
    kernel_init: Union[Callable, Any] = init.LecunNormal(),
    param_type: type = ParamState,
    in_size=None,
  ):
    super().__init__()
    self.in_size = in_features
    self.out_size = out_features
    self.in_features = in_features
    self.out_features = out_features
    self.base_module = base_module
    self.weight = param_type(dict(
      lora_a=kernel_init((in_features, lora_rank)),
      lora_b=kernel_init((lora_rank, out_features)),
    ))
    if in_size is not None:
      self.in_size = in_size
      self.out_size = tuple(self.in_size[:-1]) + (out_features,)

  def __call__(self, x):
    params = self.weight.value
    out = x @ params['lora_a'] @ params['lora_b']
    if self.base_module is not None:
      if not callable(self.base_module):
        raise ValueError('`self.base_module` must be callable.')
      out += self.base_module(x)
    return out
