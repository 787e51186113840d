"""nnx.Optimizer on layers whose ParamState holds a dict keeps it a dict (BrainState's layout)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import brainstate_nnx as brainstate


def test_nnx_optimizer_keeps_dict_values_and_then_brainstate_style_still_trains():
  brainstate.random.seed(0)
  model = brainstate.nn.Linear(3, 2)
  w0 = jax.tree.map(np.asarray, model.weight.value)
  x = jnp.arange(6.).reshape(2, 3)

  def loss_of(params):
    return jnp.sum((x @ params['weight'] + params['bias']) ** 2)

  # Flax style: one sgd step
  opt = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
  grads = nnx.grad(lambda m: jnp.sum(m(x) ** 2))(model)
  opt.update(model, grads)
  assert type(model.weight.value) is dict
  g = jax.grad(loss_of)(w0)
  w1 = jax.tree.map(lambda p, d: p - 0.1 * d, w0, g)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), model.weight.value, w1)

  # then BrainState style on the same model: path-keyed grads, optax bridge
  params = model.states(brainstate.ParamState)
  bopt = brainstate.optim.OptaxOptimizer(optax.sgd(0.1), params)
  grads = brainstate.transform.grad(lambda: jnp.sum(model(x) ** 2), params)()
  bopt.update(grads)
  w2 = jax.tree.map(lambda p, d: p - 0.1 * d, w1, jax.grad(loss_of)(w1))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), model.weight.value, w2)
