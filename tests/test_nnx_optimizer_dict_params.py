"""A model trained with nnx.Optimizer trains on BrainState-style afterwards (dict-valued ParamStates)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import brainstate_nnx as brainstate


def test_optax_optimizer_after_nnx_optimizer_on_dict_valued_params():
  brainstate.random.seed(0)
  model = brainstate.nn.Linear(3, 2)
  w0 = jax.tree.map(np.asarray, model.weight.value)
  x = jnp.arange(6.).reshape(2, 3)

  def loss_of(params):
    return jnp.sum((x @ params['weight'] + params['bias']) ** 2)

  # Flax style: one sgd step (nnx.update stores the dict as an nnx.State)
  opt = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
  opt.update(model, nnx.grad(lambda m: jnp.sum(m(x) ** 2))(model))
  w1 = jax.tree.map(lambda p, d: p - 0.1 * d, w0, jax.grad(loss_of)(w0))
  for k in w1:
    np.testing.assert_allclose(model.weight.value[k], w1[k], rtol=1e-6)

  # then BrainState style on the same model: path-keyed grads through the optax bridge
  params = model.states(brainstate.ParamState)
  bopt = brainstate.optim.OptaxOptimizer(optax.sgd(0.1), params)
  grads = brainstate.transform.grad(lambda: jnp.sum(model(x) ** 2), params)()
  bopt.update(grads)
  w2 = jax.tree.map(lambda p, d: p - 0.1 * d, w1, jax.grad(loss_of)(w1))
  assert type(model.weight.value) is dict
  for k in w2:
    np.testing.assert_allclose(model.weight.value[k], w2[k], rtol=1e-6)
