"""State-aware transformations (BrainState's ``brainstate.transform``).

Every transform finds the States its function reads or writes -- through
closures, bound methods and modules -- and threads them through the JAX
transformation underneath, writing updates back.
"""

from ._jit import jit, JittedFunction
from ._ad import GradientTransform, grad, vector_grad
from ._vmap import vmap

__all__ = [
  'jit', 'JittedFunction', 'GradientTransform', 'grad', 'vector_grad', 'vmap',
]
