"""A spiking E/I network with delayed, event-driven synapses, in BrainState style.

The program is plain BrainState code. Run it under brainstate_nnx::

    python examples/ei_network.py

or under real BrainState 0.5.4 (the spike trains are the same)::

    python examples/ei_network.py --brainstate

Model (after Vogels & Abbott 2005, as in BrainState's tutorials): ``--n``
leaky integrate-and-fire neurons, 80 % excitatory and 20 % inhibitory, with
conductance-based synapses whose conductances decay exponentially. Every
neuron projects to 2 % of the population through ``nn.EventFixedProb``
(a fixed number of random targets drawn from ``seed``), and its spikes arrive
``DELAY`` ms late, read from a delay line that ``prefetch_delay`` registers
on the neuron group. The whole run is one ``transform.for_loop``.

Options: ``--n 4000`` neurons, ``--steps 1000`` steps of ``dt = 0.1`` ms,
``--seed 42``, ``--save spikes.npz`` to keep the spike raster.
"""

import argparse
import sys

import jax.numpy as jnp
import numpy as np

if '--brainstate' in sys.argv:
  import brainstate
  try:  # brainevent's CPU kernels need numba; its pure-JAX backend does the same math
    import numba  # noqa: F401
  except ImportError:
    import brainevent.config
    brainevent.config.set_backend('cpu', 'jax_raw')
else:
  import brainstate_nnx as brainstate

DT = 0.1                  # ms
DELAY = 1.5               # ms, synaptic delay
V_REST, V_RESET, V_TH = -60., -60., -50.
E_EXC, E_INH = 0., -80.   # reversal potentials (mV)
W_EXC, W_INH = 0.6, 6.7   # conductance jumps per spike
I_EXT = 20.


class LIF(brainstate.nn.Dynamics):
  """Leaky integrate-and-fire neurons, ``tau dV/dt = V_rest - V + I``, silent ``tau_ref`` ms after a spike."""

  def __init__(self, n, tau=20., tau_ref=5.):
    super().__init__(n)
    self.tau = tau
    self.tau_ref = tau_ref

  def init_state(self, batch_size=None, **kwargs):
    self.V = brainstate.HiddenState(brainstate.random.uniform(V_RESET, V_TH, self.varshape))
    self.spike = brainstate.HiddenState(jnp.zeros(self.varshape))
    self.t_last = brainstate.HiddenState(jnp.full(self.varshape, -1e7))

  def update(self, current):
    t = brainstate.environ.get('t')
    v = brainstate.nn.exp_euler_step(lambda v, i: (V_REST - v + i) / self.tau, self.V.value, current)
    v = jnp.where(t - self.t_last.value <= self.tau_ref, self.V.value, v)
    spike = (v >= V_TH).astype(v.dtype)
    self.V.value = jnp.where(spike > 0, V_RESET, v)
    self.t_last.value = jnp.where(spike > 0, t, self.t_last.value)
    self.spike.value = spike
    return spike


class Expon(brainstate.nn.Dynamics):
  """A synaptic conductance that jumps by its input and decays with ``tau``."""

  def __init__(self, n, tau):
    super().__init__(n)
    self.tau = tau

  def init_state(self, batch_size=None, **kwargs):
    self.g = brainstate.HiddenState(jnp.zeros(self.varshape))

  def update(self, x):
    g = brainstate.nn.exp_euler_step(lambda g: -g / self.tau, self.g.value) + x
    self.g.value = g
    return g


class EINet(brainstate.nn.Module):
  def __init__(self, n, prob=0.02, seed=42):
    super().__init__()
    self.n_exc = int(n * 0.8)
    self.n_inh = n - self.n_exc
    self.N = LIF(n)
    self.E = brainstate.nn.EventFixedProb(self.n_exc, n, prob, W_EXC, seed=seed)
    self.I = brainstate.nn.EventFixedProb(self.n_inh, n, prob, W_INH, seed=seed + 1)
    self.ge = Expon(n, tau=5.)
    self.gi = Expon(n, tau=10.)
    self.delayed_spike = self.N.prefetch_delay('spike', DELAY)

  def update(self, i):
    with brainstate.environ.context(i=i, t=i * DT):
      spk = self.delayed_spike()
      ge = self.ge(self.E(spk[:self.n_exc]))
      gi = self.gi(self.I(spk[self.n_exc:]))
      v = self.N.V.value
      return self.N(ge * (E_EXC - v) + gi * (E_INH - v) + I_EXT)


def simulate(n=4000, steps=1000, seed=42):
  """Builds the network from ``seed`` and returns its ``(steps, n)`` spike raster."""
  brainstate.environ.set(dt=DT)
  brainstate.random.seed(seed)
  net = EINet(n, seed=seed)
  brainstate.nn.init_all_states(net)
  spikes = brainstate.transform.for_loop(net.update, np.arange(steps))
  return np.asarray(spikes)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--brainstate', action='store_true', help='run under real BrainState')
  p.add_argument('--n', type=int, default=4000)
  p.add_argument('--steps', type=int, default=1000)
  p.add_argument('--seed', type=int, default=42)
  p.add_argument('--save', default=None, help='write the spike raster to this .npz file')
  args = p.parse_args(argv)
  spikes = simulate(args.n, args.steps, args.seed)
  rate = spikes.sum() / args.n / (args.steps * DT * 1e-3)
  print(f'{brainstate.__name__}: {int(spikes.sum())} spikes, mean rate {rate:.1f} Hz')
  if args.save:
    np.savez_compressed(args.save, spikes=spikes)


if __name__ == '__main__':
  main()
