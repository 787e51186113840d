"""Rewriting jaxprs: optimization passes, jit inlining and building jaxprs from equations.

Every optimization pass takes a :class:`jax.extend.core.Jaxpr` and returns a
new one that computes the same outputs from the same inputs. The input and
output variables are kept as they are (the same ``Var`` objects), so a pass
can be dropped into any pipeline; when a pass makes an output variable an
alias of another value, the output is rebound with a ``copy`` equation.
Equations with side effects (``eqn.effects``) are never removed, merged or
evaluated. Only the top-level equations are rewritten; nested jaxprs (the
body of a ``jit`` call, of ``scan``, ...) are left alone -- run
:func:`inline_jit` first to flatten ``jit`` calls.

Passes:

* :func:`constant_fold` -- evaluates equations whose inputs are all literals;
* :func:`dead_code_elimination` -- drops equations whose results are unused;
* :func:`common_subexpression_elimination` -- computes identical equations once;
* :func:`copy_propagation` -- removes ``copy`` / no-op conversions / reshapes;
* :func:`algebraic_simplification` -- ``x + 0``, ``x * 1``, ``x / 1``, ...;
* :func:`optimize_jaxpr` -- runs them in a loop until nothing changes.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import jax
import numpy as np
from jax.extend.core import ClosedJaxpr, DebugInfo, DropVar, Jaxpr, JaxprEqn, Literal, Var, new_jaxpr_eqn
from jax.extend.core import primitives as _prims

__all__ = [
  'constant_fold',
  'dead_code_elimination',
  'common_subexpression_elimination',
  'copy_propagation',
  'algebraic_simplification',
  'optimize_jaxpr',
  'inline_jit',
  'eqns_to_jaxpr',
  'eqns_to_closed_jaxpr',
]

Atom = Union[Var, Literal]

# Constant folding never evaluates these: randomness and I/O must not run at
# rewrite time, control flow may run for long, broadcasts only make constants
# bigger.
_NO_FOLD = frozenset({
  'broadcast_in_dim', 'broadcast', 'iota',
  'rng_uniform', 'rng_bit_generator', 'random_seed', 'random_bits',
  'random_fold_in', 'random_split', 'random_wrap', 'random_unwrap',
  'random_gamma_grad', 'threefry2x32',
  'while', 'scan', 'cond',
  'debug_callback', 'io_callback', 'pure_callback', 'debug_print',
  'optimization_barrier', 'device_put',
})
# Largest number of elements a folded constant may have.
_FOLD_MAX_SIZE = 4096
# Never merged by CSE (stateful or side-effecting even without declared effects).
_NO_CSE = frozenset({
  'rng_uniform', 'debug_callback', 'io_callback', 'pure_callback',
  'debug_print', 'optimization_barrier',
})
_CALL_PRIMITIVES = frozenset({'jit', 'pjit', 'closed_call', 'core_call', 'xla_call'})


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

# Since JAX 0.11 a Jaxpr carries its constants (``jaxpr.consts``, bound to
# ``jaxpr.constvars``) and ``ClosedJaxpr`` is another name for ``Jaxpr``;
# before, a ClosedJaxpr wrapped a Jaxpr whose constvars were unbound.
_CONSTS_IN_JAXPR = ClosedJaxpr is Jaxpr


def _open(jaxpr) -> tuple[Jaxpr, Optional[list]]:
  """``(jaxpr, consts)``; ``consts`` is ``None`` for a jaxpr without constants."""
  if _CONSTS_IN_JAXPR and isinstance(jaxpr, Jaxpr):
    return jaxpr, (list(jaxpr.consts) or None)
  if isinstance(jaxpr, ClosedJaxpr):
    return jaxpr.jaxpr, list(jaxpr.consts)
  if isinstance(jaxpr, Jaxpr):
    return jaxpr, None
  raise TypeError(f'Expected a Jaxpr or ClosedJaxpr, got {type(jaxpr).__name__}')


def _require_jaxpr(jaxpr, what: str) -> Jaxpr:
  if isinstance(jaxpr, ClosedJaxpr) and not _CONSTS_IN_JAXPR:
    raise TypeError(f'{what} expects a Jaxpr; pass closed_jaxpr.jaxpr '
                    '(or use optimize_jaxpr, which accepts both).')
  if not isinstance(jaxpr, Jaxpr):
    raise TypeError(f'{what} expects a Jaxpr, got {type(jaxpr).__name__}')
  return jaxpr


def _is_var(a) -> bool:
  return isinstance(a, Var) and not isinstance(a, DropVar)


def _literal(value, aval) -> Literal:
  """A literal holding ``value`` converted to ``aval``'s dtype."""
  arr = np.asarray(value, dtype=aval.dtype)
  return Literal(arr[()] if arr.ndim == 0 else arr, aval)


def _literal_value(lit: Literal) -> np.ndarray:
  dtype = getattr(lit.aval, 'dtype', None)
  return np.asarray(lit.val, dtype=dtype)


def _same_type(a: Atom, b: Atom) -> bool:
  """Same shape and dtype (weak typing ignored)."""
  try:
    return tuple(a.aval.shape) == tuple(b.aval.shape) and a.aval.dtype == b.aval.dtype
  except AttributeError:
    return False


def _size(aval) -> int:
  shape = getattr(aval, 'shape', None)
  if shape is None:
    return 1 << 62
  return int(np.prod(shape, dtype=np.int64))


def _source_info(eqns: Sequence[JaxprEqn]):
  for e in reversed(eqns):
    if e.source_info is not None:
      return e.source_info
  return None


class _Rewriter:
  """Substitution map shared by the passes: eliminated Var -> replacement atom."""

  def __init__(self):
    self.subst: Dict[Var, Atom] = {}

  def atom(self, a: Atom) -> Atom:
    if isinstance(a, Literal):
      return a
    seen = 0
    while a in self.subst:
      a = self.subst[a]
      if isinstance(a, Literal):
        break
      seen += 1
      if seen > 1_000_000:  # pragma: no cover - defensive: a cycle
        raise RuntimeError('cyclic substitution while rewriting a jaxpr')
    return a

  def rewrite_inputs(self, eqn: JaxprEqn) -> JaxprEqn:
    if not self.subst:
      return eqn
    new = [self.atom(a) for a in eqn.invars]
    if all(x is y for x, y in zip(new, eqn.invars)):
      return eqn
    return eqn.replace(invars=new)

  def finish(self, jaxpr: Jaxpr, eqns: List[JaxprEqn]) -> Jaxpr:
    """Rebinds output variables that were substituted, keeping the interface."""
    done = set()
    info = _source_info(eqns) or _source_info(jaxpr.eqns)
    for o in jaxpr.outvars:
      if not _is_var(o) or o in done or o not in self.subst:
        continue
      done.add(o)
      eqns.append(new_jaxpr_eqn([self.atom(o)], [o], _prims.copy_p, {}, frozenset(),
                                info))
    return jaxpr.replace(eqns=eqns)


# --------------------------------------------------------------------------
# constant folding
# --------------------------------------------------------------------------

def _foldable(eqn: JaxprEqn) -> bool:
  if eqn.effects or eqn.primitive.name in _NO_FOLD or not eqn.invars:
    return False
  if not all(isinstance(a, Literal) for a in eqn.invars):
    return False
  return all(_size(v.aval) <= _FOLD_MAX_SIZE for v in eqn.outvars)


def _evaluate(eqn: JaxprEqn):
  """The outputs of an all-literal equation as numpy values, or None if it fails."""
  args = [_literal_value(a) for a in eqn.invars]
  try:
    with jax.ensure_compile_time_eval():
      out = eqn.primitive.bind(*args, **eqn.params)
  except Exception:
    return None
  outs = list(out) if eqn.primitive.multiple_results else [out]
  if len(outs) != len(eqn.outvars):
    return None
  values = []
  for v, o in zip(eqn.outvars, outs):
    try:
      arr = np.asarray(o)
    except Exception:  # e.g. a key array
      return None
    if tuple(arr.shape) != tuple(v.aval.shape):
      return None
    values.append(arr)
  return values


def constant_fold(jaxpr: Jaxpr) -> Jaxpr:
  """Evaluates the equations whose inputs are all literals and inlines the results.

  Folding cascades: a folded result is a literal input of the equations that
  follow. Randomness, callbacks, control flow and broadcasts are never
  evaluated, nor equations producing more than 4096 elements.

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import constant_fold, inline_jit
    >>> half = jax.jit(lambda c: jnp.sin(c) * 0.5)
    >>> jaxpr = inline_jit(jax.make_jaxpr(lambda x: x + half(2.0))(1.0)).jaxpr
    >>> [e.primitive.name for e in jaxpr.eqns]
    ['sin', 'mul', 'add']
    >>> [e.primitive.name for e in constant_fold(jaxpr).eqns]
    ['add']
  """
  jaxpr = _require_jaxpr(jaxpr, 'constant_fold')
  rw = _Rewriter()
  eqns = []
  for eqn in jaxpr.eqns:
    eqn = rw.rewrite_inputs(eqn)
    if _foldable(eqn):
      values = _evaluate(eqn)
      if values is not None:
        for v, val in zip(eqn.outvars, values):
          if _is_var(v):
            rw.subst[v] = _literal(val, v.aval)
        continue
    eqns.append(eqn)
  return rw.finish(jaxpr, eqns)


# --------------------------------------------------------------------------
# dead code elimination
# --------------------------------------------------------------------------

def dead_code_elimination(jaxpr: Jaxpr) -> Jaxpr:
  """Drops the equations none of whose results is used (and which have no effects).

  Inputs and outputs are unchanged, even inputs that end up unused.

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import dead_code_elimination
    >>> def f(x):
    ...   unused = jnp.cos(x) * 3.0
    ...   return jnp.sin(x)
    >>> jaxpr = jax.make_jaxpr(f)(1.0).jaxpr
    >>> [e.primitive.name for e in dead_code_elimination(jaxpr).eqns]
    ['sin']
  """
  jaxpr = _require_jaxpr(jaxpr, 'dead_code_elimination')
  live = {v for v in jaxpr.outvars if _is_var(v)}
  kept = []
  for eqn in reversed(jaxpr.eqns):
    if eqn.effects or any(_is_var(o) and o in live for o in eqn.outvars):
      kept.append(eqn)
      live.update(a for a in eqn.invars if _is_var(a))
  kept.reverse()
  if len(kept) == len(jaxpr.eqns):
    return jaxpr
  return jaxpr.replace(eqns=kept)


# --------------------------------------------------------------------------
# common subexpression elimination
# --------------------------------------------------------------------------

def _param_key(value):
  if isinstance(value, np.ndarray) or isinstance(value, jax.Array):
    arr = np.asarray(value)
    return ('array', arr.shape, str(arr.dtype), arr.tobytes())
  if isinstance(value, (list, tuple)):
    return (type(value).__name__, tuple(_param_key(v) for v in value))
  if isinstance(value, dict):
    return ('dict', tuple(sorted((repr(k), _param_key(v)) for k, v in value.items())))
  try:
    hash(value)
  except TypeError:
    return ('id', id(value))
  return (type(value).__name__, value)


def _atom_key(a: Atom):
  if isinstance(a, Literal):
    val = _literal_value(a)
    return ('lit', str(val.dtype), val.shape, bool(getattr(a.aval, 'weak_type', False)),
            val.tobytes())
  return ('var', id(a))


def _eqn_key(eqn: JaxprEqn):
  try:
    params = tuple(sorted((k, _param_key(v)) for k, v in eqn.params.items()))
    key = (eqn.primitive, tuple(_atom_key(a) for a in eqn.invars), params)
    hash(key)
    return key
  except Exception:
    return None


def common_subexpression_elimination(jaxpr: Jaxpr) -> Jaxpr:
  """Computes each distinct equation once and reuses its results.

  Two equations are the same when they apply the same primitive with the same
  parameters to the same variables / equal literals. Equations with effects
  are never merged.

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import common_subexpression_elimination
    >>> def f(x, y):
    ...   return jnp.sin(x + y) * jnp.sin(x + y)
    >>> jaxpr = jax.make_jaxpr(f)(1.0, 2.0).jaxpr
    >>> [e.primitive.name for e in jaxpr.eqns]
    ['add', 'sin', 'add', 'sin', 'mul']
    >>> [e.primitive.name for e in common_subexpression_elimination(jaxpr).eqns]
    ['add', 'sin', 'mul']
  """
  jaxpr = _require_jaxpr(jaxpr, 'common_subexpression_elimination')
  rw = _Rewriter()
  seen: dict = {}
  eqns = []
  for eqn in jaxpr.eqns:
    eqn = rw.rewrite_inputs(eqn)
    key = None
    if not eqn.effects and eqn.primitive.name not in _NO_CSE:
      key = _eqn_key(eqn)
    if key is not None:
      prev = seen.get(key)
      # merge, unless a result needed here was dropped by the earlier equation
      if (prev is not None and len(prev) == len(eqn.outvars)
          and all(_is_var(p) or not _is_var(o) for o, p in zip(eqn.outvars, prev))):
        for o, p in zip(eqn.outvars, prev):
          if _is_var(o):
            rw.subst[o] = p
        continue
      if prev is None or not all(_is_var(p) for p in prev):
        seen[key] = eqn.outvars
    eqns.append(eqn)
  return rw.finish(jaxpr, eqns)


# --------------------------------------------------------------------------
# copy propagation
# --------------------------------------------------------------------------

def _identity_pairs(eqn: JaxprEqn) -> Optional[list]:
  """``[(out, in)]`` if ``eqn`` passes its inputs through unchanged, else None."""
  name = eqn.primitive.name
  ins, outs, p = eqn.invars, eqn.outvars, eqn.params
  if name == 'device_put':
    pairs = list(zip(outs, ins))
  elif len(ins) != 1 or len(outs) != 1:
    return None
  elif name == 'copy':
    pairs = [(outs[0], ins[0])]
  elif name == 'convert_element_type':
    if p.get('sharding') is not None or ins[0].aval.dtype != p.get('new_dtype'):
      return None
    pairs = [(outs[0], ins[0])]
  elif name == 'reshape':
    if p.get('dimensions') is not None:
      return None
    pairs = [(outs[0], ins[0])]
  elif name == 'transpose':
    if tuple(p['permutation']) != tuple(range(len(p['permutation']))):
      return None
    pairs = [(outs[0], ins[0])]
  elif name == 'squeeze':
    if tuple(p['dimensions']):
      return None
    pairs = [(outs[0], ins[0])]
  else:
    return None
  if len(ins) != len(outs) or not all(_same_type(o, i) for o, i in pairs):
    return None
  return pairs


def copy_propagation(jaxpr: Jaxpr) -> Jaxpr:
  """Removes equations that only copy a value, using the original value instead.

  Recognized: ``copy``, ``device_put``, ``convert_element_type`` to the same
  dtype, and ``reshape`` / ``transpose`` / ``squeeze`` that change nothing.
  Copies that produce an output of the jaxpr are kept.

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import copy_propagation
    >>> def f(x):
    ...   y = jnp.array(x, copy=True)
    ...   return jnp.sin(y)
    >>> jaxpr = jax.make_jaxpr(f)(jnp.ones(2)).jaxpr
    >>> [e.primitive.name for e in jaxpr.eqns]
    ['copy', 'sin']
    >>> [e.primitive.name for e in copy_propagation(jaxpr).eqns]
    ['sin']
  """
  jaxpr = _require_jaxpr(jaxpr, 'copy_propagation')
  outputs = {v for v in jaxpr.outvars if _is_var(v)}
  rw = _Rewriter()
  eqns = []
  for eqn in jaxpr.eqns:
    eqn = rw.rewrite_inputs(eqn)
    if not eqn.effects:
      pairs = _identity_pairs(eqn)
      if pairs is not None and not any(o in outputs for o, _ in pairs):
        for o, i in pairs:
          if _is_var(o):
            rw.subst[o] = i
        continue
    eqns.append(eqn)
  return rw.finish(jaxpr, eqns)


# --------------------------------------------------------------------------
# algebraic simplification
# --------------------------------------------------------------------------

def _is_const(a: Atom, value) -> bool:
  if not isinstance(a, Literal):
    return False
  try:
    arr = _literal_value(a)
    return arr.size > 0 and bool(np.all(arr == value))
  except Exception:
    return False


def _is_integer(aval) -> bool:
  dtype = getattr(aval, 'dtype', None)
  try:
    return dtype is not None and (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_))
  except TypeError:  # extended dtypes
    return False


def _simplify(eqn: JaxprEqn) -> Optional[Atom]:
  """The atom ``eqn``'s single result equals, or None."""
  name = eqn.primitive.name
  ins = eqn.invars
  out = eqn.outvars[0]

  def same(a):
    return a if _same_type(a, out) else None

  if name == 'add' and len(ins) == 2:
    a, b = ins
    if _is_const(b, 0):
      return same(a)
    if _is_const(a, 0):
      return same(b)
  elif name == 'sub' and len(ins) == 2:
    a, b = ins
    if _is_const(b, 0):
      return same(a)
    if _is_var(a) and a is b and _is_integer(out.aval) and _size(out.aval) <= _FOLD_MAX_SIZE:
      return _literal(np.zeros(out.aval.shape), out.aval)
  elif name == 'mul' and len(ins) == 2:
    a, b = ins
    if _is_const(b, 1):
      return same(a)
    if _is_const(a, 1):
      return same(b)
    # 0 * x = 0 only holds for integers (0 * inf and 0 * nan are nan)
    if ((_is_const(a, 0) or _is_const(b, 0)) and _is_integer(out.aval)
        and _size(out.aval) <= _FOLD_MAX_SIZE):
      return _literal(np.zeros(out.aval.shape), out.aval)
  elif name == 'div' and len(ins) == 2:
    if _is_const(ins[1], 1):
      return same(ins[0])
  elif name == 'pow' and len(ins) == 2:
    if _is_const(ins[1], 1):
      return same(ins[0])
  elif name == 'integer_pow':
    if eqn.params.get('y') == 1:
      return same(ins[0])
  elif name in ('max', 'min', 'and', 'or') and len(ins) == 2:
    if _is_var(ins[0]) and ins[0] is ins[1]:
      return same(ins[0])
  elif name == 'select_n' and len(ins) >= 2:
    cases = ins[1:]
    if _is_var(cases[0]) and all(c is cases[0] for c in cases):
      return same(cases[0])
  return None


def algebraic_simplification(jaxpr: Jaxpr) -> Jaxpr:
  """Replaces operations that are identities by their operand.

  Rules: ``x + 0``, ``0 + x``, ``x - 0``, ``x * 1``, ``1 * x``, ``x / 1``,
  ``x ** 1``, ``max(x, x)``, ``min(x, x)``, ``x & x``, ``x | x``,
  ``select(p, x, x)`` -> ``x``; and, for integer dtypes only, ``x - x`` and
  ``x * 0`` -> ``0`` (for floats they are not identities: ``inf - inf`` and
  ``0 * nan`` are ``nan``). A rule applies only when the result has the
  operand's shape and dtype. (``x + 0`` turns ``-0.0`` into ``+0.0``; the
  rewrite returns ``-0.0``, which compares equal.)

  Example::

    >>> import jax
    >>> from jax import lax
    >>> from brainstate_nnx.transform import algebraic_simplification, dead_code_elimination
    >>> def f(x):
    ...   return lax.sin(lax.mul(lax.add(x, 0.0), 1.0))
    >>> jaxpr = jax.make_jaxpr(f)(1.0).jaxpr
    >>> [e.primitive.name for e in jaxpr.eqns]
    ['add', 'mul', 'sin']
    >>> [e.primitive.name for e in algebraic_simplification(jaxpr).eqns]
    ['sin']
  """
  jaxpr = _require_jaxpr(jaxpr, 'algebraic_simplification')
  rw = _Rewriter()
  eqns = []
  for eqn in jaxpr.eqns:
    eqn = rw.rewrite_inputs(eqn)
    if not eqn.effects and len(eqn.outvars) == 1 and _is_var(eqn.outvars[0]):
      repl = _simplify(eqn)
      if repl is not None:
        rw.subst[eqn.outvars[0]] = repl
        continue
    eqns.append(eqn)
  return rw.finish(jaxpr, eqns)


# --------------------------------------------------------------------------
# the pipeline
# --------------------------------------------------------------------------

_PASSES: Dict[str, Callable[[Jaxpr], Jaxpr]] = {
  'constant_fold': constant_fold,
  'algebraic_simplification': algebraic_simplification,
  'copy_propagation': copy_propagation,
  'cse': common_subexpression_elimination,
  'dce': dead_code_elimination,
}
_ALIASES = {
  'common_subexpression_elimination': 'cse',
  'dead_code_elimination': 'dce',
}
_DEFAULT_PIPELINE = ('constant_fold', 'algebraic_simplification', 'copy_propagation',
                     'cse', 'dce')


def optimize_jaxpr(
  jaxpr: Union[Jaxpr, ClosedJaxpr],
  max_iterations: int = 3,
  optimizations: Optional[Sequence[str]] = None,
  verbose: bool = False,
) -> Union[Jaxpr, ClosedJaxpr]:
  """Runs optimization passes over a jaxpr until it stops shrinking.

  ``optimizations`` lists the passes to run, in order, on every iteration:
  ``'constant_fold'``, ``'algebraic_simplification'``, ``'copy_propagation'``,
  ``'cse'`` and ``'dce'`` (the default: all five in this order; ``'all'`` is
  the same). The loop stops when an iteration leaves the number of equations
  unchanged, or after ``max_iterations``. A ``ClosedJaxpr`` comes back closed
  with the same constants. ``verbose`` prints the equation counts.

  Raises ``ValueError`` for an unknown pass name or a bad ``max_iterations``,
  ``RuntimeError`` if a pass changed the inputs or outputs (a bug).

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import optimize_jaxpr
    >>> def f(x):
    ...   a = jnp.sin(x) * 1.0
    ...   b = jnp.sin(x)
    ...   dead = jnp.exp(x)
    ...   return a + b
    >>> closed = jax.make_jaxpr(f)(jnp.ones(3))
    >>> len(closed.eqns), len(optimize_jaxpr(closed).eqns)
    (5, 2)
  """
  if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
    raise ValueError(f'max_iterations must be a positive integer, got {max_iterations!r}.')
  if optimizations is None or optimizations == 'all':
    names = list(_DEFAULT_PIPELINE)
  elif isinstance(optimizations, str):
    names = [optimizations]
  else:
    names = list(optimizations)
  names = [_ALIASES.get(n, n) for n in names]
  bad = [n for n in names if n not in _PASSES]
  if bad:
    raise ValueError(
      f"Invalid optimization(s): {', '.join(map(str, bad))}. "
      f"Available optimizations: {', '.join(sorted(_PASSES))}"
    )
  inner, consts = _open(jaxpr)
  invars, outvars = tuple(inner.invars), tuple(inner.outvars)
  start = len(inner.eqns)
  if verbose:
    print(f'Starting optimization with {start} equations')
    print(f"Optimization sequence: {' -> '.join(names)}")
  for it in range(max_iterations):
    before = len(inner.eqns)
    for name in names:
      n = len(inner.eqns)
      inner = _PASSES[name](inner)
      if verbose and len(inner.eqns) != n:
        print(f'  iteration {it + 1}, {name}: {n} -> {len(inner.eqns)} equations')
    if len(inner.eqns) == before:
      break
  if verbose:
    print(f'Optimization complete: {start} -> {len(inner.eqns)} equations')
  if tuple(inner.invars) != invars or tuple(inner.outvars) != outvars:
    raise RuntimeError('Internal error: an optimization pass changed the jaxpr interface.')
  if consts is not None:
    return ClosedJaxpr(inner, consts)
  return inner


# --------------------------------------------------------------------------
# inlining jit calls
# --------------------------------------------------------------------------

def _call_jaxpr(eqn: JaxprEqn):
  if eqn.primitive.name not in _CALL_PRIMITIVES:
    return None
  sub = eqn.params.get('jaxpr')
  if sub is None:
    sub = eqn.params.get('call_jaxpr')
  if isinstance(sub, (Jaxpr, ClosedJaxpr)):
    return sub
  return None


def inline_jit(
  jaxpr: Union[Jaxpr, ClosedJaxpr],
  should_expand: Optional[Callable[[JaxprEqn], bool]] = None,
) -> Union[Jaxpr, ClosedJaxpr]:
  """Replaces ``jit`` (and ``closed_call``) equations by the equations of their body.

  ``should_expand(eqn)`` picks the calls to inline (default: all); nested
  calls inside an inlined body are considered too. Inlined variables are
  fresh, so a function called twice is inlined twice correctly. Constants of
  an inlined body become constants of a ``ClosedJaxpr`` result, or literals
  when a bare ``Jaxpr`` was given (so the result has the type of the input).
  The inputs are unchanged; output variables may be replaced by the values
  the inlined bodies return.

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import inline_jit
    >>> inner = jax.jit(lambda x: x * 2.0)
    >>> closed = jax.make_jaxpr(lambda x: inner(x) + 1.0)(jnp.ones(2))
    >>> [e.primitive.name for e in closed.eqns]
    ['jit', 'add']
    >>> [e.primitive.name for e in inline_jit(closed).eqns]
    ['mul', 'add']
  """
  if not isinstance(jaxpr, (Jaxpr, ClosedJaxpr)):
    raise TypeError(f'inline_jit expects a Jaxpr or ClosedJaxpr, got {type(jaxpr).__name__}')
  if should_expand is None:
    should_expand = lambda eqn: True
  outer, consts = _open(jaxpr)
  constvars = list(outer.constvars)
  consts = list(consts) if consts is not None else None

  def lift(cvar, value) -> Atom:
    if consts is None:
      return Literal(value, cvar.aval)
    v = Var(cvar.aval)
    constvars.append(v)
    consts.append(value)
    return v

  def expand(eqns, subst: dict, fresh: bool) -> list:
    out = []

    def atom(a):
      return subst.get(a, a) if isinstance(a, Var) else a

    for eqn in eqns:
      ins = [atom(a) for a in eqn.invars]
      sub = _call_jaxpr(eqn)
      if sub is not None and should_expand(eqn):
        body, body_consts = _open(sub)
        inner_subst = {}
        for cv, c in zip(body.constvars, body_consts or ()):
          inner_subst[cv] = lift(cv, c)
        for iv, a in zip(body.invars, ins):
          inner_subst[iv] = a
        out.extend(expand(body.eqns, inner_subst, True))
        for o, r in zip(eqn.outvars, body.outvars):
          if _is_var(o):
            subst[o] = inner_subst.get(r, r) if isinstance(r, Var) else r
        continue
      if fresh:
        outs = []
        for o in eqn.outvars:
          nv = DropVar(o.aval) if isinstance(o, DropVar) else Var(o.aval)
          subst[o] = nv
          outs.append(nv)
        out.append(eqn.replace(invars=ins, outvars=outs))
      elif any(x is not y for x, y in zip(ins, eqn.invars)):
        out.append(eqn.replace(invars=ins))
      else:
        out.append(eqn)
    return out

  subst: dict = {}
  eqns = expand(outer.eqns, subst, False)
  outvars = [subst.get(v, v) if isinstance(v, Var) else v for v in outer.outvars]
  new = Jaxpr(constvars, list(outer.invars), outvars, eqns, outer.effects, outer.debug_info)
  if consts is not None:
    return ClosedJaxpr(new, consts)
  return new


# --------------------------------------------------------------------------
# building jaxprs from equations
# --------------------------------------------------------------------------

def _check_vars(vs, what: str) -> list:
  vs = list(vs)
  for v in vs:
    if not isinstance(v, Var):
      raise ValueError(f'{what} must contain only Var objects, got {type(v).__name__}')
  return vs


def _resolve(eqns, invars, outvars, constvars):
  produced: Dict[Var, None] = {}
  for e in eqns:
    for o in e.outvars:
      if _is_var(o):
        produced[o] = None
  used: Dict[Var, None] = {}
  for e in eqns:
    for a in e.invars:
      if _is_var(a):
        used.setdefault(a, None)
  free = [v for v in used if v not in produced]
  constvars = [] if constvars is None else _check_vars(constvars, 'constvars')
  cset = set(constvars)
  if invars is None:
    invars = [v for v in free if v not in cset]
  else:
    invars = _check_vars(invars, 'invars')
  if outvars is None:
    consumed = {a for e in eqns for a in e.invars if _is_var(a)}
    outvars = [v for v in produced if v not in consumed]
  else:
    outvars = list(outvars)
  bound = set(invars) | cset
  unbound = [v for v in free if v not in bound]
  if unbound:
    raise ValueError(
      f'{len(unbound)} variable(s) are used by the equations but are neither '
      'produced by them nor listed in invars/constvars.'
    )
  return constvars, invars, outvars


def _debug_info(what: str, invars, outvars) -> DebugInfo:
  return DebugInfo(what, what, tuple(f'in{i}' for i in range(len(invars))),
                   tuple(f'out{i}' for i in range(len(outvars))))


def _effects(eqns) -> frozenset:
  effects = set()
  for e in eqns:
    effects.update(e.effects)
  return frozenset(effects)


def eqns_to_jaxpr(
  eqns: Sequence[JaxprEqn],
  invars: Optional[Sequence[Var]] = None,
  outvars: Optional[Sequence[Atom]] = None,
  constvars: Optional[Sequence[Var]] = None,
) -> Jaxpr:
  """Assembles a :class:`~jax.extend.core.Jaxpr` from a list of equations.

  Missing pieces are inferred: ``invars`` are the variables the equations use
  but do not produce (in first-use order, ``constvars`` excluded),
  ``outvars`` the produced variables no equation consumes (in order).
  ``ValueError`` if an equation uses a variable that nothing binds.

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from brainstate_nnx.transform import eqns_to_jaxpr
    >>> eqns = jax.make_jaxpr(lambda x, y: jnp.sin(x) * y)(1.0, 2.0).eqns
    >>> jaxpr = eqns_to_jaxpr(eqns[1:])          # just the multiplication
    >>> len(jaxpr.invars), len(jaxpr.outvars)
    (2, 1)
  """
  eqns = list(eqns)
  constvars, invars, outvars = _resolve(eqns, invars, outvars, constvars)
  return Jaxpr(constvars, invars, outvars, eqns, _effects(eqns),
               _debug_info('eqns_to_jaxpr', invars, outvars))


def eqns_to_closed_jaxpr(
  eqns: Sequence[JaxprEqn],
  invars: Optional[Sequence[Var]] = None,
  outvars: Optional[Sequence[Atom]] = None,
  constvars: Optional[Sequence[Var]] = None,
  consts: Optional[Sequence[Any]] = None,
) -> ClosedJaxpr:
  """Like :func:`eqns_to_jaxpr`, closed over ``consts`` (one value per ``constvars`` entry).

  Example::

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from jax.extend.core import jaxpr_as_fun
    >>> from brainstate_nnx.transform import eqns_to_closed_jaxpr
    >>> closed = jax.make_jaxpr(lambda x, y: jnp.sin(x) * y)(1.0, 2.0)
    >>> s, y = closed.eqns[0].outvars[0], closed.jaxpr.invars[1]
    >>> mul_only = eqns_to_closed_jaxpr(closed.eqns[1:], invars=[y], constvars=[s],
    ...                                 consts=[jnp.float32(3.0)])
    >>> jaxpr_as_fun(mul_only)(2.0)
    [Array(6., dtype=float32)]
  """
  eqns = list(eqns)
  constvars, invars, outvars = _resolve(eqns, invars, outvars, constvars)
  consts = [] if consts is None else list(consts)
  if len(consts) != len(constvars):
    raise ValueError(
      f'consts length ({len(consts)}) does not match constvars length ({len(constvars)})'
    )
  jaxpr = Jaxpr(constvars, invars, outvars, eqns, _effects(eqns),
                _debug_info('eqns_to_closed_jaxpr', invars, outvars))
  return ClosedJaxpr(jaxpr, consts)
