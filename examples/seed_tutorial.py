"""BrainState's "Transformations, the Essentials", run on brainstate_nnx.

Only the import line differs from the BrainState tutorial. Run:

    python examples/seed_tutorial.py
"""

import jax
import jax.numpy as jnp

import brainstate_nnx as brainstate

brainstate.random.seed(0)
print('brainstate_nnx', brainstate.__version__)


# -- Why state-aware transformations ------------------------------------------
class Counter(brainstate.nn.Module):
  def __init__(self):
    super().__init__()
    self.n = brainstate.State(jnp.array(0))

  def __call__(self):
    self.n.value += 1
    return self.n.value


broken = jax.jit(Counter())
try:
  print('raw jax.jit returns:', [int(broken()) for _ in range(4)])
except brainstate.TraceContextError as e:
  # BrainState 0.5.4 raises here too: a raw jax.jit cannot carry State writes.
  print('raw jax.jit refuses the State write:', type(e).__name__)

counter = Counter()
fast_counter = brainstate.transform.jit(counter)
print([int(fast_counter()) for _ in range(4)])  # 1, 2, 3, 4 - state survives


# -- jit ------------------------------------------------------------------------
class Linear(brainstate.nn.Module):
  def __init__(self, din, dout):
    super().__init__()
    self.w = brainstate.ParamState(brainstate.random.randn(din, dout) * 0.1)
    self.b = brainstate.ParamState(jnp.zeros(dout))

  def __call__(self, x):
    return x @ self.w.value + self.b.value


model = Linear(3, 1)
x = brainstate.random.randn(64, 3)
y = brainstate.random.randn(64, 1)
forward = brainstate.transform.jit(model)
print(forward(x).shape)


# -- grad -----------------------------------------------------------------------
params = model.states(brainstate.ParamState)


def loss_fn():
  return jnp.mean((model(x) - y) ** 2)


grads = brainstate.transform.grad(loss_fn, params)()
print({key: g.shape for key, g in grads.items()})

grads, loss = brainstate.transform.grad(loss_fn, params, return_value=True)()
print('loss:', float(loss))
for key in params:
  params[key].value -= 0.1 * grads[key]
print('loss after one step:', float(loss_fn()))


# -- vmap -----------------------------------------------------------------------
def predict_one(x_row):
  return jnp.tanh(model(x_row[None, :]))[0]


predict_batch = brainstate.transform.vmap(predict_one)
print(predict_batch(x).shape)


# -- composing ------------------------------------------------------------------
@brainstate.transform.jit
def train_step():
  grads, loss = brainstate.transform.grad(loss_fn, params, return_value=True)()
  for key in params:
    params[key].value -= 0.1 * grads[key]
  return loss


losses = [float(train_step()) for _ in range(5)]
print('loss trajectory:', [round(v, 4) for v in losses])
