"""jit's BrainState extras: name=, origin_fun, stateful_fun, clear_cache, in/out_shardings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainstate_nnx as bs


def _program(lib):
  s = lib.State(jnp.zeros(2))
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])

  def step(x):
    s.value = s.value + x
    return s.value * 2

  f = lib.transform.jit(step, name='my_step', in_shardings=(sharding,), out_shardings=sharding)
  outs = [np.asarray(f(jnp.ones(2) * k)) for k in (1.0, 2.0)]
  f.clear_cache()
  outs.append(np.asarray(f(jnp.ones(2))))
  sf = f.stateful_fun
  sf.make_jaxpr(jnp.ones(2))
  return dict(outs=outs, state=np.asarray(s.value), origin=f.origin_fun is step,
              name=f.__name__, n_states=len(sf.get_states(jnp.ones(2))),
              sharded=f(jnp.ones(2)).sharding == sharding)


def test_jit_extras_match_brainstate(bst):
  ours, theirs = _program(bs), _program(bst)
  for k in ('outs', 'state'):
    np.testing.assert_array_equal(np.asarray(ours[k]), np.asarray(theirs[k]))
  assert ours['origin'] and theirs['origin']
  assert ours['n_states'] == theirs['n_states'] == 1
  assert ours['sharded'] and theirs['sharded']
  assert ours['name'] == 'my_step'


def test_in_shardings_must_be_per_argument():
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  with pytest.raises(TypeError, match='one entry per positional argument'):
    bs.transform.jit(lambda x: x, in_shardings=sharding)
