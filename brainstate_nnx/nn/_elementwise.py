"""Activation layers of ``brainstate.nn``: Modules wrapping the functions of
:mod:`brainstate_nnx.nn._activations` (PyTorch-style names and defaults).

All of them are :class:`ElementWiseBlock` s, so :class:`Sequential` passes
the size through them. Only :class:`PReLU` has a parameter (``weight``).
"""

from __future__ import annotations

from typing import Optional

import jax.numpy as jnp

from .._state import ParamState
from .._units import is_quantity, maybe_attach_unit
from . import _activations as F
from ._module import ElementWiseBlock

__all__ = [
  'Threshold', 'ReLU', 'RReLU', 'Hardtanh', 'ReLU6', 'Sigmoid', 'Hardsigmoid',
  'Tanh', 'SiLU', 'Mish', 'Hardswish', 'ELU', 'CELU', 'SELU', 'GLU', 'GELU',
  'Hardshrink', 'LeakyReLU', 'LogSigmoid', 'Softplus', 'Softshrink', 'PReLU',
  'Softsign', 'Tanhshrink', 'Softmin', 'Softmax', 'Softmax2d', 'LogSoftmax',
  'Identity', 'SpikeBitwise',
]


class Threshold(ElementWiseBlock):
  """``x`` where ``x > threshold``, else ``value``.

  For a ``brainunit`` Quantity ``x``, ``threshold`` and ``value`` are read in
  the unit of ``x`` and the result keeps it.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.Threshold(0.1, 20.)(jnp.array([0., 0.5]))
    Array([20. ,  0.5], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, threshold: float, value: float) -> None:
    super().__init__()
    self.threshold = threshold
    self.value = value

  def __call__(self, x):
    if is_quantity(x):
      unit = x.unit
      m = jnp.asarray(x.mantissa)
      thr = F._quantity_in(self.threshold, unit)
      val = F._quantity_in(self.value, unit)
    else:
      unit = None
      m = jnp.asarray(x)
      thr = F._unitless(self.threshold, 'Threshold')
      val = F._unitless(self.value, 'Threshold')
    out = jnp.where(m > jnp.asarray(thr, dtype=m.dtype), m, jnp.asarray(val, dtype=m.dtype))
    return maybe_attach_unit(out, unit)

  def __repr__(self):
    return f'{type(self).__name__}(threshold={self.threshold}, value={self.value})'


class ReLU(ElementWiseBlock):
  """:func:`~brainstate_nnx.nn.relu` as a layer.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ReLU()(jnp.array([-1., 2.]))
    Array([0., 2.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __call__(self, x):
    return F.relu(x)

  def __repr__(self):
    return f'{type(self).__name__}()'


class RReLU(ElementWiseBlock):
  """:func:`~brainstate_nnx.nn.rrelu` (random negative slope in ``[lower, upper]``) as a layer.

  Like BrainState, it draws new slopes on every call (training or not).
  ``rngs`` (keyword only) chooses the random stream as for the dropout
  layers: ``None`` for the default ``brainstate_nnx.random`` stream
  (BrainState's numbers), or a model-owned ``RandomState`` / int seed /
  ``nnx.Rngs`` (needed inside ``nnx.jit``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> float(brainstate.nn.RReLU()(jnp.array([2.]))[0])
    2.0
    >>> y = brainstate.nn.RReLU(rngs=0)(jnp.array([-1.]))
    >>> bool(-1/3 <= float(y[0]) <= -1/8)
    True
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, lower: float = 1. / 8, upper: float = 1. / 3, *, rngs=None):
    super().__init__()
    from ._rngs import format_rngs

    self.lower = lower
    self.upper = upper
    self.rngs = format_rngs(rngs, 'dropout')

  def __call__(self, x):
    return F._rrelu(x, self.lower, self.upper, self.rngs)


class Hardtanh(ElementWiseBlock):
  """Clips to ``[min_val, max_val]`` (:func:`~brainstate_nnx.nn.hard_tanh`).

  ``max_val`` must exceed ``min_val`` (``ValueError`` otherwise).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.Hardtanh(-2., 2.)(jnp.array([-3., 1., 3.]))
    Array([-2.,  1.,  2.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, min_val: float = -1., max_val: float = 1.) -> None:
    super().__init__()
    self.min_val = min_val
    self.max_val = max_val
    if self.max_val <= self.min_val:
      raise ValueError(f'max_val ({self.max_val}) must be greater than min_val ({self.min_val})')

  def __call__(self, x):
    return F.hard_tanh(x, self.min_val, self.max_val)


class ReLU6(Hardtanh):
  """:class:`Hardtanh` on ``[0, 6]``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ReLU6()(jnp.array([-1., 7.]))
    Array([0., 6.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self):
    super().__init__(0., 6.)


def _simple(name, fn, doc_in, doc_out):
  """A parameter-free activation layer calling ``fn``."""

  def __call__(self, x):
    return fn(x)

  doc = f"""``{fn.__name__}`` as a layer.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.{name}()(jnp.array({doc_in}))
    {doc_out}
  """
  return type(ElementWiseBlock)(name, (ElementWiseBlock,), {
    '__call__': __call__, '__doc__': doc, '__module__': 'brainstate_nnx.nn',
    '__qualname__': name,
  })


Sigmoid = _simple('Sigmoid', F.sigmoid, '[0.]', 'Array([0.5], dtype=float32)')
Hardsigmoid = _simple('Hardsigmoid', F.hard_sigmoid, '[0.]', 'Array([0.5], dtype=float32)')
Tanh = _simple('Tanh', F.tanh, '[0.]', 'Array([0.], dtype=float32)')
SiLU = _simple('SiLU', F.silu, '[0.]', 'Array([0.], dtype=float32)')
Mish = _simple('Mish', F.mish, '[0.]', 'Array([0.], dtype=float32)')
Hardswish = _simple('Hardswish', F.hard_swish, '[3.]', 'Array([3.], dtype=float32)')
SELU = _simple('SELU', F.selu, '[0.]', 'Array([0.], dtype=float32)')
LogSigmoid = _simple('LogSigmoid', F.log_sigmoid, '[0.]', 'Array([-0.6931472], dtype=float32)')
Softplus = _simple('Softplus', F.softplus, '[0.]', 'Array([0.6931472], dtype=float32)')
Softsign = _simple('Softsign', F.soft_sign, '[1.]', 'Array([0.5], dtype=float32)')
Tanhshrink = _simple('Tanhshrink', F.tanh_shrink, '[0.]', 'Array([0.], dtype=float32)')


class ELU(ElementWiseBlock):
  """:func:`~brainstate_nnx.nn.elu` with scale ``alpha`` as a layer.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.ELU(alpha=2.)(jnp.array([0., 1.]))
    Array([0., 1.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, alpha: float = 1.) -> None:
    super().__init__()
    self.alpha = alpha

  def __call__(self, x):
    return F.elu(x, self.alpha)


class CELU(ElementWiseBlock):
  """:func:`~brainstate_nnx.nn.celu` with scale ``alpha`` as a layer.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.CELU()(jnp.array([0., 1.]))
    Array([0., 1.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, alpha: float = 1.) -> None:
    super().__init__()
    self.alpha = alpha

  def __call__(self, x):
    return F.celu(x, self.alpha)


class GLU(ElementWiseBlock):
  """Gated linear unit along axis ``dim`` (:func:`~brainstate_nnx.nn.glu`).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.GLU()(jnp.ones((3, 4))).shape
    (3, 2)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, dim: int = -1) -> None:
    super().__init__()
    self.dim = dim

  def __call__(self, x):
    return F.glu(x, self.dim)

  def __repr__(self):
    return f'{type(self).__name__}(dim={self.dim})'


class GELU(ElementWiseBlock):
  """Gaussian error linear unit; exact (erf) unless ``approximate=True``.

  Note the layer's default ``approximate=False`` differs from the
  function :func:`~brainstate_nnx.nn.gelu`'s ``True``, as in BrainState.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.GELU()(jnp.array([0.]))
    Array([0.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, approximate: bool = False) -> None:
    super().__init__()
    self.approximate = approximate

  def __call__(self, x):
    return F.gelu(x, approximate=self.approximate)

  def __repr__(self):
    return f'{type(self).__name__}(approximate={self.approximate})'


class Hardshrink(ElementWiseBlock):
  """Zeroes entries in ``[-lambd, lambd]`` (:func:`~brainstate_nnx.nn.hard_shrink`).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.Hardshrink()(jnp.array([0.2, 1.]))
    Array([0., 1.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, lambd: float = 0.5) -> None:
    super().__init__()
    self.lambd = lambd

  def __call__(self, x):
    return F.hard_shrink(x, self.lambd)

  def __repr__(self):
    return f'{type(self).__name__}(lambd={self.lambd})'


class LeakyReLU(ElementWiseBlock):
  """:func:`~brainstate_nnx.nn.leaky_relu` as a layer.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.LeakyReLU(0.1)(jnp.array([-1., 1.]))
    Array([-0.1,  1. ], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, negative_slope: float = 1e-2) -> None:
    super().__init__()
    self.negative_slope = negative_slope

  def __call__(self, x):
    return F.leaky_relu(x, self.negative_slope)

  def __repr__(self):
    return f'{type(self).__name__}(negative_slope={self.negative_slope})'


class Softshrink(ElementWiseBlock):
  """Shrinks towards zero by ``lambd`` (:func:`~brainstate_nnx.nn.soft_shrink`).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.Softshrink()(jnp.array([0.2, 1.]))
    Array([0. , 0.5], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, lambd: float = 0.5) -> None:
    super().__init__()
    self.lambd = lambd

  def __call__(self, x):
    return F.soft_shrink(x, self.lambd)

  def __repr__(self):
    return f'{type(self).__name__}(lambd={self.lambd})'


class PReLU(ElementWiseBlock):
  """Parametric ReLU with a learnable slope ``weight`` (a ``ParamState`` of
  shape ``(num_parameters,)``, filled with ``init``), broadcast on the last axis.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> layer = brainstate.nn.PReLU()
    >>> layer.weight.value
    Array([0.25], dtype=float32)
    >>> layer(jnp.array([-4., 4.]))
    Array([-1.,  4.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype=None) -> None:
    super().__init__()
    self.num_parameters = num_parameters
    self.weight = ParamState(jnp.ones(num_parameters, dtype=dtype) * init)

  def __call__(self, x):
    return F.prelu(x, self.weight.value)

  def __repr__(self):
    return f'{type(self).__name__}(num_parameters={self.num_parameters})'


class _AxisSoftmax(ElementWiseBlock):
  _fn = None

  def __init__(self, dim: Optional[int] = None) -> None:
    super().__init__()
    self.dim = dim

  def __call__(self, x):
    return type(self)._fn(x, -1 if self.dim is None else self.dim)

  def __repr__(self):
    return f'{type(self).__name__}(dim={self.dim})'


class Softmin(_AxisSoftmax):
  """Softmin along axis ``dim`` (the last axis when ``None``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.Softmin()(jnp.zeros(2))
    Array([0.5, 0.5], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'
  _fn = staticmethod(F.softmin)


class Softmax(_AxisSoftmax):
  """Softmax along axis ``dim`` (the last axis when ``None``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.Softmax()(jnp.zeros(2))
    Array([0.5, 0.5], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'
  _fn = staticmethod(F.softmax)


class LogSoftmax(_AxisSoftmax):
  """Log-softmax along axis ``dim`` (the last axis when ``None``).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.LogSoftmax()(jnp.zeros(2))
    Array([-0.6931472, -0.6931472], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'
  _fn = staticmethod(F.log_softmax)


class Softmax2d(ElementWiseBlock):
  """Softmax over the channel axis (``-3``) of a ``(C, H, W)`` or ``(N, C, H, W)`` array.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.Softmax2d()(jnp.zeros((2, 1, 1)))[:, 0, 0]
    Array([0.5, 0.5], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __call__(self, x):
    if jnp.ndim(x) not in (3, 4):
      raise ValueError(
        f'Softmax2d needs a 3D (C, H, W) or 4D (N, C, H, W) input, got shape {jnp.shape(x)}.'
      )
    return F.softmax(x, -3)


class Identity(ElementWiseBlock):
  """Returns its input unchanged.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> brainstate.nn.Identity()(jnp.array([1., 2.]))
    Array([1., 2.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __call__(self, x):
    return x


_SPIKE_OPS = {
  'add': lambda x, y: x + y,
  'and': lambda x, y: x * y,
  'iand': lambda x, y: (1 - x) * y,
  'or': lambda x, y: x + y - x * y,
  'xor': lambda x, y: x + y - 2 * x * y,
  'ixor': lambda x, y: x * (1 - y) + (1 - x) * y,
}


class SpikeBitwise(ElementWiseBlock):
  r"""Combines two spike trains (0/1 arrays) with a logic operation written arithmetically.

  ``op`` is one of ``'add'`` (:math:`x + y`), ``'and'`` (:math:`x y`),
  ``'iand'`` (:math:`(1 - x) y`), ``'or'`` (:math:`x + y - x y`), ``'xor'``
  (:math:`x + y - 2 x y`) or ``'ixor'`` (:math:`x (1 - y) + (1 - x) y`); all
  stay differentiable for surrogate gradients. (BrainState delegates to the
  ``braintools`` package, which rejects its own default ``'add'``; here it
  computes :math:`x + y` as documented.)

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> x, y = jnp.array([1., 0., 1.]), jnp.array([1., 1., 0.])
    >>> brainstate.nn.SpikeBitwise('or')(x, y)
    Array([1., 1., 1.], dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, op: str = 'add', name: Optional[str] = None) -> None:
    super().__init__(name=name)
    self.op = op

  def __call__(self, x, y):
    fn = _SPIKE_OPS.get(self.op)
    if fn is None:
      raise NotImplementedError(
        f'Unsupported bitwise operation {self.op!r}; choose one of {sorted(_SPIKE_OPS)}.'
      )
    return fn(x, y)
