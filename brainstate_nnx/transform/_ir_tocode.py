"""Turning jaxprs back into readable Python source.

:func:`jaxpr_to_python_code` writes one Python statement per equation, using
``jax.numpy`` / ``jax.lax`` calls (``c = lax.sin(a)``, ``d = c * b``,
``e = jnp.dot(a, d)``, ...). Calls to jitted functions, ``cond``,
``while`` and ``scan`` become nested ``def`` s passed to ``lax.switch`` /
``lax.while_loop`` / ``lax.scan``. The generated module starts with its
imports, so ``exec`` of the source defines a function computing the same
outputs as the jaxpr.

Every primitive is rendered by a handler ``handler(ctx, eqn)``, looked up
by primitive name; :func:`register_prim_handler` adds or replaces one. A
handler returns the Python expression of the equation's result(s) -- a tuple
expression when the primitive has several results -- built with
``ctx.args(eqn)`` (the operand expressions), ``ctx.atom``, ``ctx.value``
(a parameter as source) and ``ctx.dtype``; or it emits the assignments
itself (``ctx.emit(line)``, ``ctx.outs(eqn)``) and returns ``None``.
"""

from __future__ import annotations

import builtins
import enum
import keyword
import math
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.core import ClosedJaxpr, DropVar, Jaxpr, JaxprEqn, Literal

__all__ = [
  'jaxpr_to_python_code',
  'fn_to_python_code',
  'register_prim_handler',
  'UnsupportedPrimitiveError',
]

_IMPORTS = (
  'import jax\n'
  'import jax.numpy as jnp\n'
  'import numpy as np\n'
  'from jax import lax\n'
)
_INDENT = '    '


class UnsupportedPrimitiveError(NotImplementedError):
  """No code-generation handler is registered for a primitive (or a parameter cannot be written)."""


_HANDLERS: Dict[str, Callable] = {}


def register_prim_handler(prim_name: str, handler: Callable) -> None:
  """Registers ``handler(ctx, eqn)`` as the code generator of primitive ``prim_name``.

  The handler returns the Python expression computing the equation's result
  (a tuple expression for several results), or ``None`` after emitting the
  assignments itself. Replacing an existing handler warns.

  Example::

    >>> import jax
    >>> from brainstate_nnx.transform import register_prim_handler, jaxpr_to_python_code
    >>> register_prim_handler('my_sin', lambda ctx, eqn: f'lax.sin({ctx.args(eqn)[0]})')
    >>> 'my_sin' in jaxpr_to_python_code.__globals__['_HANDLERS']
    True
  """
  if not isinstance(prim_name, str):
    raise TypeError(f'prim_name must be a str, got {type(prim_name).__name__}')
  if not callable(handler):
    raise TypeError('handler must be callable')
  if prim_name in _HANDLERS:
    warnings.warn(f'Overwriting the code-generation handler of primitive {prim_name!r}')
  _HANDLERS[prim_name] = handler


def _register(*names):
  def deco(fn):
    for n in names:
      _HANDLERS[n] = fn
    return fn
  return deco


# --------------------------------------------------------------------------
# rendering values
# --------------------------------------------------------------------------

def _default_dtype(py) -> Optional[np.dtype]:
  """The dtype JAX gives a Python scalar of this kind (its weak type)."""
  if isinstance(py, bool):
    return np.dtype(bool)
  if isinstance(py, (int, float, complex)):
    return np.dtype(jnp.asarray(py).dtype)
  return None


def _py_scalar(py) -> str:
  if isinstance(py, float):
    if math.isnan(py):
      return "float('nan')"
    if math.isinf(py):
      return "float('inf')" if py > 0 else "-float('inf')"
    return repr(py)
  if isinstance(py, complex):
    return f'complex({_py_scalar(py.real)}, {_py_scalar(py.imag)})'
  return repr(py)


def _nested_list(arr: np.ndarray) -> str:
  if arr.ndim == 0:
    return _py_scalar(arr.item())
  return '[' + ', '.join(_nested_list(a) for a in arr) + ']'


def _dtype_source(dtype) -> str:
  """Source text of a dtype: ``jnp.float32``, ``jnp.bool_``, ..."""
  dt = np.dtype(dtype)
  name = dt.name
  if name == 'bool':
    return 'jnp.bool_'
  if isinstance(getattr(jnp, name, None), type):
    return f'jnp.{name}'
  return f'jnp.dtype({name!r})'


_ENUM_HOMES = {
  lax.RoundingMethod: 'lax.RoundingMethod',
  lax.GatherScatterMode: 'lax.GatherScatterMode',
  lax.Precision: 'lax.Precision',
}
_NAMEDTUPLE_HOMES = {
  lax.GatherDimensionNumbers: 'lax.GatherDimensionNumbers',
  lax.ScatterDimensionNumbers: 'lax.ScatterDimensionNumbers',
}


def _value_source(v) -> str:
  """Source text of an equation parameter (tuples, numbers, dtypes, lax enums, ...)."""
  if v is None or isinstance(v, (bool, str)):
    return repr(v)
  if isinstance(v, (int, float, complex)) and not isinstance(v, enum.Enum):
    return _py_scalar(v)
  if isinstance(v, np.generic):
    return _py_scalar(v.item())
  if isinstance(v, (np.dtype, type)) and not isinstance(v, enum.EnumMeta):
    try:
      return _dtype_source(v)
    except TypeError:
      pass
  for cls, home in _ENUM_HOMES.items():
    if isinstance(v, cls):
      if isinstance(v, enum.Enum):
        return f'{home}.{v.name}'
      return f'{home}({_value_source(str(v))})'
  for cls, home in _NAMEDTUPLE_HOMES.items():
    if isinstance(v, cls):
      fields = ', '.join(f'{k}={_value_source(getattr(v, k))}' for k in v._fields)
      return f'{home}({fields})'
  if isinstance(v, tuple):
    items = [_value_source(x) for x in v]
    return '(' + ', '.join(items) + (',)' if len(items) == 1 else ')')
  if isinstance(v, list):
    return '[' + ', '.join(_value_source(x) for x in v) + ']'
  if isinstance(v, (np.ndarray, jax.Array)):
    arr = np.asarray(v)
    return f'np.asarray({_nested_list(arr)}, dtype={_dtype_source(arr.dtype)})'
  if hasattr(v, 'dtype') and hasattr(v, 'name') and not hasattr(v, 'shape'):
    try:
      return _dtype_source(v.dtype)
    except TypeError:
      pass
  raise UnsupportedPrimitiveError(f'Cannot write the parameter {v!r} as Python source.')


# --------------------------------------------------------------------------
# names and scopes
# --------------------------------------------------------------------------

_RESERVED = set(keyword.kwlist) | set(dir(builtins)) | {'jax', 'jnp', 'np', 'lax'}


class _Namer:
  """Globally unique short names: a, b, ..., z, ba, bb, ..."""

  def __init__(self, reserved=()):
    self.count = 0
    self.used = set(_RESERVED) | set(reserved)

  def _name(self, n: int) -> str:
    s = ''
    while True:
      s = chr(ord('a') + n % 26) + s
      n //= 26
      if n == 0:
        return s

  def var(self) -> str:
    while True:
      name = self._name(self.count)
      self.count += 1
      if name not in self.used:
        self.used.add(name)
        return name

  def function(self, hint: str) -> str:
    base = ''.join(c if c.isalnum() or c == '_' else '_' for c in (hint or 'fn'))
    if not base or base[0].isdigit():
      base = 'fn_' + base
    name, k = base, 1
    while name in self.used:
      name = f'{base}_{k}'
      k += 1
    self.used.add(name)
    return name


class CodegenContext:
  """What a primitive handler uses to write source for one equation.

  Methods: :meth:`args` / :meth:`atom` (operand expressions), :meth:`outs`
  (result names), :meth:`value` (a parameter as source), :meth:`dtype`,
  :meth:`emit` (a statement before the equation's assignment) and
  :meth:`function` (a nested ``def`` for a sub-jaxpr; returns its name).

  Example -- a handler that writes the assignment itself::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import _ir_tocode
    >>> def cumsum_handler(ctx, eqn):
    ...   (out,) = ctx.outs(eqn)
    ...   ctx.emit(f'# cumulative sum along axis {eqn.params["axis"]}')
    ...   ctx.emit(f'{out} = jnp.cumsum({ctx.args(eqn)[0]}, axis={ctx.value(eqn.params["axis"])})')
    >>> saved = _ir_tocode._HANDLERS['cumsum']
    >>> _ir_tocode._HANDLERS['cumsum'] = cumsum_handler
    >>> print(_ir_tocode.jaxpr_to_python_code(jax.make_jaxpr(lambda x: jnp.cumsum(x))(jnp.ones(3)).eqns[0].params['jaxpr'], include_imports=False))
    def generated_function(a):
        # cumulative sum along axis 0
        b = jnp.cumsum(a, axis=0)
        return b
    >>> _ir_tocode._HANDLERS['cumsum'] = saved
  """

  def __init__(self, namer: _Namer, lines: List[str], depth: int, env: dict):
    self._namer = namer
    self._lines = lines
    self._depth = depth
    self._env = env

  # -- names ------------------------------------------------------------------
  def _define(self, v) -> str:
    if isinstance(v, DropVar):
      return '_'
    name = self._namer.var()
    self._env[v] = name
    return name

  def outs(self, eqn: JaxprEqn) -> List[str]:
    """Fresh names for the equation's results (``_`` for dropped ones)."""
    return [self._define(v) for v in eqn.outvars]

  def atom(self, a, typed: Optional[bool] = None) -> str:
    """Source of an operand: a variable's name or a literal.

    A scalar literal is a plain Python number when that number has the
    literal's dtype anyway (or ``typed=False``: a partner operand fixes the
    dtype), else ``jnp.<dtype>(value)``.
    """
    if isinstance(a, Literal):
      return _literal_source(a.val, a.aval.dtype, typed)
    try:
      return self._env[a]
    except KeyError:
      raise ValueError(f'variable {a} is used before it is defined') from None

  def args(self, eqn: JaxprEqn) -> List[str]:
    """Sources of all operands of ``eqn``."""
    return [self.atom(a) for a in eqn.invars]

  @staticmethod
  def value(v) -> str:
    """A parameter value as source.

    Example::

      >>> from jax import lax
      >>> from brainstate_nnx.transform._ir_tocode import CodegenContext
      >>> CodegenContext.value(((0,), 1.5, lax.RoundingMethod.TO_NEAREST_EVEN))
      '((0,), 1.5, lax.RoundingMethod.TO_NEAREST_EVEN)'
    """
    return _value_source(v)

  @staticmethod
  def dtype(d) -> str:
    """A dtype as source.

    Example::

      >>> import numpy as np
      >>> from brainstate_nnx.transform._ir_tocode import CodegenContext
      >>> CodegenContext.dtype(np.float32), CodegenContext.dtype(bool)
      ('jnp.float32', 'jnp.bool_')
    """
    return _dtype_source(d)

  def emit(self, line: str) -> None:
    """Adds a statement at the current indentation."""
    self._lines.append(_INDENT * self._depth + line)

  # -- nested functions ---------------------------------------------------------
  def function(
    self,
    jaxpr,
    hint: str,
    bound: Sequence[str] = (),
    arg_groups: Optional[Sequence[Any]] = None,
    ret_groups: Optional[Sequence[int]] = None,
  ) -> str:
    """Emits ``def <name>(...)`` for ``jaxpr`` here and returns ``<name>``.

    ``bound`` gives expressions for the first ``len(bound)`` inputs (the
    closure sees them); the other inputs are parameters. ``arg_groups``
    splits those parameters: an int ``n`` is one tuple parameter unpacked
    into ``n`` inputs, ``None`` one plain parameter per input (the default).
    ``ret_groups`` likewise groups the results into tuples.
    """
    inner, consts = _open(jaxpr)
    name = self._namer.function(hint)
    env: dict = {}
    sub = CodegenContext(self._namer, self._lines, self._depth + 1, env)
    free = list(inner.invars)
    for v, expr in zip(free, bound):
      env[v] = expr
    free = free[len(bound):]
    params, unpack = [], []
    if arg_groups is None:
      params = [sub._define(v) for v in free]
    else:
      pos = 0
      for g in arg_groups:
        if g is None:
          params.append(sub._define(free[pos]))
          pos += 1
        else:
          group = free[pos:pos + g]
          pos += g
          pname = self._namer.var()
          params.append(pname)
          names = [sub._define(v) for v in group]
          if names:
            unpack.append(f'{", ".join(names)}{"," if len(names) == 1 else ""} = {pname}')
    self.emit(f'def {name}({", ".join(params)}):')
    for line in unpack:
      sub.emit(line)
    for cv, c in zip(inner.constvars, consts or ()):
      cname = sub._define(cv)
      sub.emit(f'{cname} = {_array_source(c)}')
    _emit_body(sub, inner.eqns)
    sub.emit('return ' + _returns(sub, inner.outvars, ret_groups))
    return name


def _literal_source(val, dtype, typed: Optional[bool] = None) -> str:
  """Source of a literal value of ``dtype``."""
  try:
    arr = np.asarray(val, dtype=dtype)
  except TypeError:
    raise UnsupportedPrimitiveError(f'Cannot write a literal of dtype {dtype} as source.')
  if arr.ndim == 0:
    py = arr.item()
    text = _py_scalar(py)
    if typed is False or (typed is None and _default_dtype(py) == arr.dtype):
      return text
    return f'{_dtype_source(arr.dtype)}({text})'
  return f'jnp.asarray({_nested_list(arr)}, dtype={_dtype_source(arr.dtype)})'


def _array_source(value) -> str:
  arr = np.asarray(value)
  if arr.ndim == 0:
    return _literal_source(arr, arr.dtype, True)
  return f'jnp.asarray({_nested_list(arr)}, dtype={_dtype_source(arr.dtype)})'


def _open(jaxpr):
  if isinstance(jaxpr, ClosedJaxpr):
    return jaxpr.jaxpr, list(jaxpr.consts)
  if isinstance(jaxpr, Jaxpr):
    return jaxpr, None
  raise TypeError(f'Expected a Jaxpr or ClosedJaxpr, got {type(jaxpr).__name__}')


def _tuple(items: Sequence[str]) -> str:
  return '(' + ', '.join(items) + (',)' if len(items) == 1 else ')')


def _returns(ctx: CodegenContext, outvars, groups=None) -> str:
  items = [ctx.atom(v, typed=True) for v in outvars]
  if groups is None:
    return items[0] if len(items) == 1 else _tuple(items)
  parts, pos = [], 0
  for g in groups:
    parts.append(_tuple(items[pos:pos + g]))
    pos += g
  return ', '.join(parts) if len(parts) > 1 else parts[0]


def _emit_body(ctx: CodegenContext, eqns) -> None:
  for eqn in eqns:
    name = eqn.primitive.name
    handler = _HANDLERS.get(name)
    if handler is None:
      raise UnsupportedPrimitiveError(
        f"No code-generation handler for primitive '{name}'. Register one with "
        f"register_prim_handler('{name}', handler)."
      )
    expr = handler(ctx, eqn)
    if expr is None:
      continue
    targets = ctx.outs(eqn)
    if not targets:
      ctx.emit(expr)
    else:  # one result: a value; several: a tuple
      ctx.emit(f'{", ".join(targets)} = {expr}')


# --------------------------------------------------------------------------
# public entry points
# --------------------------------------------------------------------------

def _identifier(name) -> str:
  if isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name):
    return name
  return 'generated_function'


def jaxpr_to_python_code(jaxpr, fn_name: str = 'generated_function', *,
                         include_imports: bool = True) -> str:
  """Python source of a function computing what ``jaxpr`` computes.

  The function takes the jaxpr's inputs as positional parameters (for a bare
  ``Jaxpr`` with constant variables, those come first, as in
  ``jax.core.eval_jaxpr(jaxpr, consts, *args)``; the constants of a
  ``ClosedJaxpr`` are written into the body) and returns its single output,
  or a tuple of its outputs. The source starts with the imports it needs
  unless ``include_imports=False``. ``UnsupportedPrimitiveError`` is raised for
  a primitive without handler (see :func:`register_prim_handler`).

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import jaxpr_to_python_code
    >>> def f(x, y):
    ...   return jnp.sin(x) * y + 2.0, jnp.dot(x, y)
    >>> x = y = jnp.ones(3)
    >>> src = jaxpr_to_python_code(jax.make_jaxpr(f)(x, y).jaxpr, 'f')
    >>> print(src)
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax
    <BLANKLINE>
    <BLANKLINE>
    def f(a, b):
        c = lax.sin(a)
        d = c * b
        e = d + 2.0
        g = jnp.dot(a, b, preferred_element_type=jnp.float32)
        return (e, g)
    >>> namespace = {}
    >>> exec(src, namespace)
    >>> namespace['f'](x, y)[1]
    Array(3., dtype=float32)
  """
  inner, consts = _open(jaxpr)
  fn_name = _identifier(fn_name)
  namer = _Namer(reserved=(fn_name,))
  body: List[str] = []
  ctx = CodegenContext(namer, body, 1, {})
  if consts is None:
    params = [ctx._define(v) for v in list(inner.constvars) + list(inner.invars)]
  else:
    params = [ctx._define(v) for v in inner.invars]
  if consts is not None:
    for cv, c in zip(inner.constvars, consts):
      cname = ctx._define(cv)
      ctx.emit(f'{cname} = {_array_source(c)}')
  _emit_body(ctx, inner.eqns)
  ctx.emit('return ' + _returns(ctx, inner.outvars))
  source = f'def {fn_name}({", ".join(params)}):\n' + '\n'.join(body)
  if include_imports:
    source = _IMPORTS + '\n\n' + source
  return source


def fn_to_python_code(fn: Callable, *args, **kwargs) -> str:
  """Python source of ``fn`` as traced on these example arguments.

  The function is traced with the state-aware
  :func:`~brainstate_nnx.transform._make_jaxpr.make_jaxpr` and rendered by
  :func:`jaxpr_to_python_code`. The generated function is named like ``fn``
  and returns the flattened outputs (one value, or a tuple). When some
  argument is a pytree, it is an ``(*args, **kwargs)`` wrapper that flattens
  the arguments and calls the flat function. When ``fn`` uses States, no
  wrapper is made: the flat function takes the argument leaves followed by
  the values of the States, and returns the outputs followed by the new
  values of the States ``fn`` writes.

  Example::

    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import fn_to_python_code
    >>> def f(x):
    ...   return jnp.exp(x).sum(axis=0)
    >>> print(fn_to_python_code(f, jnp.ones((2, 3)), ))
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax
    <BLANKLINE>
    <BLANKLINE>
    def f(a):
        b = lax.exp(a)
        c = jnp.sum(b, axis=(0,))
        return c
  """
  from ._make_jaxpr import make_jaxpr

  closed, states = make_jaxpr(fn, return_only_write=True)(*args, **kwargs)
  name = _identifier(getattr(fn, '__name__', None))
  n_leaves = len(jax.tree.leaves((args, kwargs)))
  one_to_one = (not kwargs and n_leaves == len(args)
                and all(len(jax.tree.leaves(a)) == 1 for a in args))
  if states or one_to_one:
    return jaxpr_to_python_code(closed, name)
  flat = jaxpr_to_python_code(closed, name + '_flat', include_imports=False)
  body = '\n'.join(_INDENT + line if line else line for line in flat.splitlines())
  return (
    _IMPORTS + '\n\n'
    + f'def {name}(*args, **kwargs):\n'
    + body + '\n'
    + f'{_INDENT}return {name}_flat(*jax.tree_util.tree_leaves((args, kwargs)))'
  )


# --------------------------------------------------------------------------
# handlers
# --------------------------------------------------------------------------

def _infix(op: str, lax_name: str):
  def handler(ctx: CodegenContext, eqn):
    x, y = eqn.invars
    if isinstance(x, Literal) and isinstance(y, Literal):
      return f'lax.{lax_name}({ctx.atom(x, True)}, {ctx.atom(y, True)})'
    return f'{ctx.atom(x, typed=False)} {op} {ctx.atom(y, typed=False)}'
  return handler


for _op, _name in (('+', 'add'), ('-', 'sub'), ('*', 'mul'), ('<', 'lt'), ('>', 'gt'),
                   ('<=', 'le'), ('>=', 'ge'), ('==', 'eq'), ('!=', 'ne')):
  _HANDLERS[_name] = _infix(_op, _name)


def _is_inexact(aval) -> bool:
  try:
    return bool(jnp.issubdtype(aval.dtype, jnp.inexact))
  except TypeError:
    return False


@_register('div')
def _div(ctx, eqn):
  if _is_inexact(eqn.outvars[0].aval):
    return _infix('/', 'div')(ctx, eqn)
  return f'lax.div({", ".join(ctx.args(eqn))})'


def _call(fn_name: str):
  """``fn_name(*operands)``, parameters ignored."""
  def handler(ctx, eqn):
    return f'{fn_name}({", ".join(ctx.args(eqn))})'
  return handler


for _name in (
  'sin', 'cos', 'tan', 'asin', 'acos', 'atan', 'sinh', 'cosh', 'tanh', 'asinh',
  'acosh', 'atanh', 'exp', 'exp2', 'log', 'log1p', 'expm1', 'sqrt', 'rsqrt', 'cbrt',
  'abs', 'sign', 'floor', 'ceil', 'is_finite', 'logistic', 'erf', 'erfc', 'erf_inv',
  'lgamma', 'digamma', 'square', 'real', 'imag', 'conj', 'neg', 'population_count',
  'clz', 'stop_gradient', 'max', 'min', 'pow', 'rem', 'atan2', 'nextafter',
  'igamma', 'igammac', 'polygamma', 'zeta', 'bessel_i0e', 'bessel_i1e', 'complex',
  'shift_left', 'shift_right_logical', 'shift_right_arithmetic', 'select_n', 'clamp',
):
  _HANDLERS[_name] = _call(f'lax.{_name}')
for _name, _fn in (('and', 'bitwise_and'), ('or', 'bitwise_or'), ('xor', 'bitwise_xor'),
                   ('not', 'bitwise_not')):
  _HANDLERS[_name] = _call(f'lax.{_fn}')


@_register('integer_pow')
def _integer_pow(ctx, eqn):
  return f'lax.integer_pow({ctx.args(eqn)[0]}, {eqn.params["y"]!r})'


@_register('round')
def _round(ctx, eqn):
  return f'lax.round({ctx.args(eqn)[0]}, {ctx.value(eqn.params["rounding_method"])})'


@_register('convert_element_type')
def _convert(ctx, eqn):
  return f'lax.convert_element_type({ctx.args(eqn)[0]}, {ctx.dtype(eqn.params["new_dtype"])})'


@_register('bitcast_convert_type')
def _bitcast(ctx, eqn):
  return f'lax.bitcast_convert_type({ctx.args(eqn)[0]}, {ctx.dtype(eqn.params["new_dtype"])})'


@_register('reduce_precision')
def _reduce_precision(ctx, eqn):
  p = eqn.params
  return (f'lax.reduce_precision({ctx.args(eqn)[0]}, exponent_bits={p["exponent_bits"]}, '
          f'mantissa_bits={p["mantissa_bits"]})')


def _reduce(fn_name: str, keep_dtype: bool = False):
  def handler(ctx, eqn):
    x = ctx.args(eqn)[0]
    axes = tuple(eqn.params['axes'])
    text = f'{fn_name}({x}, axis={ctx.value(axes)}'
    out_dtype = eqn.outvars[0].aval.dtype
    if keep_dtype and np.dtype(out_dtype) != np.dtype(jnp.sum(jnp.zeros((), out_dtype)).dtype):
      text += f', dtype={ctx.dtype(out_dtype)}'
    return text + ')'
  return handler


_HANDLERS['reduce_sum'] = _reduce('jnp.sum', keep_dtype=True)
_HANDLERS['reduce_prod'] = _reduce('jnp.prod', keep_dtype=True)
_HANDLERS['reduce_max'] = _reduce('jnp.max')
_HANDLERS['reduce_min'] = _reduce('jnp.min')
_HANDLERS['reduce_and'] = _reduce('jnp.all')
_HANDLERS['reduce_or'] = _reduce('jnp.any')


@_register('argmax', 'argmin')
def _argreduce(ctx, eqn):
  axis = eqn.params['axes'][0]
  return (f'lax.{eqn.primitive.name}({ctx.args(eqn)[0]}, {axis}, '
          f'{ctx.dtype(eqn.params["index_dtype"])})')


def _cumulative(ctx, eqn):
  p = eqn.params
  return (f'lax.{eqn.primitive.name}({ctx.args(eqn)[0]}, axis={p["axis"]}, '
          f'reverse={p["reverse"]!r})')


for _name in ('cumsum', 'cumprod', 'cummax', 'cummin', 'cumlogsumexp'):
  _HANDLERS[_name] = _cumulative


@_register('dot_general')
def _dot_general(ctx, eqn):
  x, y = ctx.args(eqn)
  xa, ya = eqn.invars[0].aval, eqn.invars[1].aval
  (cx, cy), (bx, by) = eqn.params['dimension_numbers']
  pref = eqn.params.get('preferred_element_type')
  precision = eqn.params.get('precision')
  extra = ''
  if precision is not None:
    extra += f', precision={ctx.value(precision)}'
  if pref is not None:
    extra += f', preferred_element_type={ctx.dtype(pref)}'
  if (not bx and not by and 1 <= xa.ndim <= 2 and 1 <= ya.ndim <= 2
      and tuple(cx) == (xa.ndim - 1,) and tuple(cy) == (0,)):
    return f'jnp.dot({x}, {y}{extra})'
  dims = ((tuple(cx), tuple(cy)), (tuple(bx), tuple(by)))
  return f'lax.dot_general({x}, {y}, {ctx.value(dims)}{extra})'


@_register('broadcast_in_dim')
def _broadcast_in_dim(ctx, eqn):
  x = eqn.invars[0]
  shape = tuple(eqn.params['shape'])
  dims = tuple(eqn.params['broadcast_dimensions'])
  if isinstance(x, Literal) and np.ndim(x.val) == 0:
    return (f'jnp.full({ctx.value(shape)}, {ctx.atom(x, typed=False)}, '
            f'dtype={ctx.dtype(x.aval.dtype)})')
  return f'lax.broadcast_in_dim({ctx.atom(x)}, {ctx.value(shape)}, {ctx.value(dims)})'


@_register('reshape')
def _reshape(ctx, eqn):
  if eqn.params.get('dimensions') is not None:
    raise UnsupportedPrimitiveError('reshape with dimensions is not supported')
  return f'jnp.reshape({ctx.args(eqn)[0]}, {ctx.value(tuple(eqn.params["new_sizes"]))})'


@_register('transpose')
def _transpose(ctx, eqn):
  return f'jnp.transpose({ctx.args(eqn)[0]}, {ctx.value(tuple(eqn.params["permutation"]))})'


@_register('squeeze')
def _squeeze(ctx, eqn):
  return f'lax.squeeze({ctx.args(eqn)[0]}, {ctx.value(tuple(eqn.params["dimensions"]))})'


@_register('expand_dims')
def _expand_dims(ctx, eqn):
  return f'lax.expand_dims({ctx.args(eqn)[0]}, {ctx.value(tuple(eqn.params["dimensions"]))})'


@_register('rev')
def _rev(ctx, eqn):
  return f'lax.rev({ctx.args(eqn)[0]}, {ctx.value(tuple(eqn.params["dimensions"]))})'


@_register('slice')
def _slice(ctx, eqn):
  x = eqn.invars[0]
  p = eqn.params
  starts, limits = p['start_indices'], p['limit_indices']
  strides = p['strides'] or (1,) * len(starts)
  parts = []
  for s, l, st, n in zip(starts, limits, strides, x.aval.shape):
    text = (str(s) if s else '') + ':' + (str(l) if l != n else '')
    if st != 1:
      text += f':{st}'
    parts.append(text)
  return f'{ctx.atom(x)}[{", ".join(parts)}]'


@_register('dynamic_slice')
def _dynamic_slice(ctx, eqn):
  args = ctx.args(eqn)
  nd = eqn.invars[0].aval.ndim
  return (f'lax.dynamic_slice({args[0]}, {_tuple(args[1:1 + nd])}, '
          f'{ctx.value(tuple(eqn.params["slice_sizes"]))})')


@_register('dynamic_update_slice')
def _dynamic_update_slice(ctx, eqn):
  args = ctx.args(eqn)
  return f'lax.dynamic_update_slice({args[0]}, {args[1]}, {_tuple(args[2:])})'


@_register('concatenate')
def _concatenate(ctx, eqn):
  return f'lax.concatenate([{", ".join(ctx.args(eqn))}], {eqn.params["dimension"]})'


@_register('pad')
def _pad(ctx, eqn):
  x, v = ctx.args(eqn)
  config = tuple(tuple(int(i) for i in c) for c in eqn.params['padding_config'])
  return f'lax.pad({x}, {v}, {ctx.value(config)})'


@_register('iota')
def _iota(ctx, eqn):
  p = eqn.params
  return (f'lax.broadcasted_iota({ctx.dtype(p["dtype"])}, {ctx.value(tuple(p["shape"]))}, '
          f'{p["dimension"]})')


@_register('sort')
def _sort(ctx, eqn):
  p = eqn.params
  args = ctx.args(eqn)
  ops = args[0] if len(args) == 1 else f'[{", ".join(args)}]'
  return (f'lax.sort({ops}, dimension={p["dimension"]}, is_stable={p["is_stable"]!r}, '
          f'num_keys={p["num_keys"]})')


@_register('split')
def _split(ctx, eqn):
  sizes = tuple(int(s) for s in eqn.params['sizes'])
  text = f'lax.split({ctx.args(eqn)[0]}, {ctx.value(sizes)}, axis={eqn.params["axis"]})'
  return f'{text}[0]' if len(sizes) == 1 else f'tuple({text})'


@_register('top_k')
def _top_k(ctx, eqn):
  return f'lax.top_k({ctx.args(eqn)[0]}, {eqn.params["k"]})'


@_register('unstack')
def _unstack(ctx, eqn):
  # JAX >= 0.11 splits an array into its slices with this primitive
  x, axis = ctx.args(eqn)[0], int(eqn.params['axis'])
  if len(eqn.outvars) == 1:
    return f'lax.squeeze({x}, ({axis},))'
  return f'tuple(jnp.unstack({x}, axis={axis}))'


@_register('copy')
def _copy(ctx, eqn):
  return f'jnp.array({ctx.atom(eqn.invars[0], typed=True)}, copy=True)'


def _identity(ctx, eqn):
  args = [ctx.atom(a, typed=True) for a in eqn.invars]
  return args[0] if len(args) == 1 else _tuple(args)


for _name in ('device_put', 'pvary', 'sharding_constraint', 'mesh_cast', 'copy_p',
              'optimization_barrier'):
  _HANDLERS[_name] = _identity


@_register('gather')
def _gather(ctx, eqn):
  x, idx = ctx.args(eqn)
  p = eqn.params
  text = (f'lax.gather({x}, {idx}, dimension_numbers={ctx.value(p["dimension_numbers"])}, '
          f'slice_sizes={ctx.value(tuple(p["slice_sizes"]))}, '
          f'indices_are_sorted={p["indices_are_sorted"]!r}, '
          f'unique_indices={p["unique_indices"]!r}, mode={ctx.value(p["mode"])}')
  if p.get('fill_value') is not None:
    text += f', fill_value={ctx.value(p["fill_value"])}'
  return text + ')'


def _scatter(fn_name: str):
  def handler(ctx, eqn):
    x, idx, upd = ctx.args(eqn)
    p = eqn.params
    return (f'lax.{fn_name}({x}, {idx}, {upd}, {ctx.value(p["dimension_numbers"])}, '
            f'indices_are_sorted={p["indices_are_sorted"]!r}, '
            f'unique_indices={p["unique_indices"]!r}, mode={ctx.value(p["mode"])})')
  return handler


for _prim, _fn in (('scatter', 'scatter'), ('scatter-add', 'scatter_add'),
                   ('scatter_add', 'scatter_add'), ('scatter-mul', 'scatter_mul'),
                   ('scatter_mul', 'scatter_mul'), ('scatter-min', 'scatter_min'),
                   ('scatter_min', 'scatter_min'), ('scatter-max', 'scatter_max'),
                   ('scatter_max', 'scatter_max')):
  _HANDLERS[_prim] = _scatter(_fn)


# -- random ---------------------------------------------------------------------

def _impl_name(impl) -> str:
  return getattr(impl, 'name', None) or str(impl)


@_register('random_seed')
def _random_seed(ctx, eqn):
  return f'jax.random.key({ctx.args(eqn)[0]}, impl={_impl_name(eqn.params["impl"])!r})'


@_register('random_wrap')
def _random_wrap(ctx, eqn):
  return (f'jax.random.wrap_key_data({ctx.args(eqn)[0]}, '
          f'impl={_impl_name(eqn.params["impl"])!r})')


@_register('random_unwrap')
def _random_unwrap(ctx, eqn):
  return f'jax.random.key_data({ctx.args(eqn)[0]})'


@_register('random_bits')
def _random_bits(ctx, eqn):
  p = eqn.params
  return (f'jax.random.bits({ctx.args(eqn)[0]}, {ctx.value(tuple(p["shape"]))}, '
          f'dtype=jnp.uint{p["bit_width"]})')


@_register('random_split')
def _random_split(ctx, eqn):
  return f'jax.random.split({ctx.args(eqn)[0]}, {ctx.value(tuple(eqn.params["shape"]))})'


@_register('random_fold_in')
def _random_fold_in(ctx, eqn):
  k, d = ctx.args(eqn)
  return f'jax.random.fold_in({k}, {d})'


# -- calls and control flow --------------------------------------------------------

def _result(ctx, name: str, eqn) -> str:
  """``name(args)`` producing the equation's results (a tuple when several)."""
  return f'{name}({", ".join(ctx.args(eqn))})'


@_register('jit', 'pjit', 'closed_call', 'core_call')
def _jit_call(ctx, eqn):
  sub = eqn.params.get('jaxpr')
  if sub is None:
    sub = eqn.params['call_jaxpr']
  hint = eqn.params.get('name') or eqn.primitive.name
  n_out = len(_open(sub)[0].outvars)
  name = ctx.function(sub, hint, ret_groups=None if n_out == 1 else [n_out])
  return _result(ctx, name, eqn)


@_register('custom_jvp_call', 'custom_vjp_call', 'custom_vjp_call_jaxpr')
def _custom_call(ctx, eqn):
  sub = eqn.params.get('call_jaxpr')
  if sub is None:
    sub = eqn.params['fun_jaxpr']
  hint = eqn.params.get('name') or 'custom_fn'
  n_out = len(_open(sub)[0].outvars)
  name = ctx.function(sub, hint, ret_groups=None if n_out == 1 else [n_out])
  return _result(ctx, name, eqn)


@_register('remat2', 'checkpoint', 'remat')
def _remat(ctx, eqn):
  sub = eqn.params['jaxpr']
  n_out = len(_open(sub)[0].outvars)
  name = ctx.function(sub, 'checkpointed', ret_groups=None if n_out == 1 else [n_out])
  return (f'jax.checkpoint({name}, prevent_cse={eqn.params.get("prevent_cse", True)!r})'
          f'({", ".join(ctx.args(eqn))})')


@_register('cond')
def _cond(ctx, eqn):
  index, *ops = ctx.args(eqn)
  branches = eqn.params['branches']
  n_out = len(eqn.outvars)
  names = [ctx.function(b, f'branch_{i}', ret_groups=None if n_out == 1 else [n_out])
           for i, b in enumerate(branches)]
  return f'lax.switch({index}, {_tuple(names)}{"".join(", " + o for o in ops)})'


@_register('while')
def _while(ctx, eqn):
  p = eqn.params
  nc, nb = p['cond_nconsts'], p['body_nconsts']
  args = ctx.args(eqn)
  cond_consts, body_consts, init = args[:nc], args[nc:nc + nb], args[nc + nb:]
  n = len(init)
  cond_name = ctx.function(p['cond_jaxpr'], 'cond_fun', bound=cond_consts, arg_groups=[n])
  body_name = ctx.function(p['body_jaxpr'], 'body_fun', bound=body_consts, arg_groups=[n],
                           ret_groups=[n])
  text = f'lax.while_loop({cond_name}, {body_name}, {_tuple(init)})'
  return f'{text}[0]' if n == 1 else text


def _scan_counts(params) -> tuple:
  """``(number of constants, number of carries)`` of a ``scan`` equation."""
  if 'num_consts' in params:
    return params['num_consts'], params['num_carry']
  # JAX >= 0.11 describes the operands as a tree (consts, carry, xs)
  consts, carry, _ = params['ft_in'].unpack()
  return len(consts), len(carry)


@_register('scan')
def _scan(ctx, eqn):
  p = eqn.params
  n_consts, n_carry = _scan_counts(p)
  args = ctx.args(eqn)
  consts, init, xs = args[:n_consts], args[n_consts:n_consts + n_carry], args[n_consts + n_carry:]
  n_ys = len(eqn.outvars) - n_carry
  body = ctx.function(p['jaxpr'], 'scan_body', bound=consts, arg_groups=[n_carry, len(xs)],
                      ret_groups=[n_carry, n_ys])
  carry_out, ys = ctx._namer.var(), ctx._namer.var()
  extra = ''
  if p.get('unroll', 1) not in (1, None):
    extra = f', unroll={ctx.value(p["unroll"])}'
  ctx.emit(f'{carry_out}, {ys} = lax.scan({body}, {_tuple(init)}, {_tuple(xs)}, '
           f'length={p["length"]}, reverse={p["reverse"]!r}{extra})')
  outs = ctx.outs(eqn)
  if n_carry:
    ctx.emit(f'{", ".join(outs[:n_carry])}, = {carry_out}')
  if n_ys:
    ctx.emit(f'{", ".join(outs[n_carry:])}, = {ys}')
  return None
