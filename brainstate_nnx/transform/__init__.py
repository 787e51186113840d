"""State-aware transformations (BrainState's ``brainstate.transform``).

Every transform finds the States its function reads or writes -- through
closures, bound methods and modules -- and threads them through the JAX
transformation underneath, writing updates back.
"""

from ._jit import jit, JittedFunction
from ._grad import GradientTransform, grad, vector_grad
from ._vmap import vmap
from ._jacobian import jacrev, jacfwd, jacobian, hessian, fwd_grad, vjp, jvp
from ._find_state import StateFinder
from ._conditions import cond, switch, ifelse
from ._loops import (
  scan, for_loop, checkpointed_scan, checkpointed_for_loop, while_loop,
  bounded_while_loop,
)
from ._progress_bar import ProgressBar
from ._checks import (
  jit_error_if, checkify, check, check_error, all_checks, user_checks,
  nan_checks, div_checks, index_checks, float_checks, automatic_checks,
)
from ._debug import debug_nan, debug_nan_if, breakpoint_if
from ._mapping import StatefulMapping, vmap2, pmap2
from ._map import map
from ._new_states import (
  vmap_new_states, vmap2_new_states, pmap2_new_states, in_new_state_probe,
)
from ._shard_map import shard_map
from ._unvmap import unvmap
from ._make_jaxpr import StatefulFunction, make_jaxpr
from ._eval_shape import eval_shape
from ._remat import checkpoint, remat
from ._named_scope import named_call, named_scope
from ._ir import (
  constant_fold, dead_code_elimination, common_subexpression_elimination,
  copy_propagation, algebraic_simplification, optimize_jaxpr, inline_jit,
  eqns_to_jaxpr, eqns_to_closed_jaxpr,
)
from ._ir_tocode import fn_to_python_code, jaxpr_to_python_code, register_prim_handler

__all__ = [
  'jit', 'JittedFunction', 'GradientTransform', 'grad', 'vector_grad', 'vmap',
  'jacrev', 'jacfwd', 'jacobian', 'hessian', 'fwd_grad', 'vjp', 'jvp',
  'StateFinder',
  'cond', 'switch', 'ifelse', 'scan', 'for_loop', 'checkpointed_scan',
  'checkpointed_for_loop', 'while_loop', 'bounded_while_loop', 'ProgressBar',
  'jit_error_if', 'checkify', 'check', 'check_error', 'all_checks',
  'user_checks', 'nan_checks', 'div_checks', 'index_checks', 'float_checks',
  'automatic_checks', 'debug_nan', 'debug_nan_if', 'breakpoint_if',
  'StatefulMapping', 'vmap2', 'pmap2', 'map', 'vmap_new_states',
  'vmap2_new_states', 'pmap2_new_states', 'in_new_state_probe', 'shard_map',
  'unvmap', 'StatefulFunction', 'make_jaxpr', 'eval_shape', 'checkpoint',
  'remat', 'named_call', 'named_scope', 'constant_fold', 'dead_code_elimination',
  'common_subexpression_elimination', 'copy_propagation',
  'algebraic_simplification', 'optimize_jaxpr', 'inline_jit', 'eqns_to_jaxpr',
  'eqns_to_closed_jaxpr', 'fn_to_python_code', 'jaxpr_to_python_code',
  'register_prim_handler',
]
