#!/usr/bin/env python
"""A spiking E/I network, 1,000 steps in one for_loop: brainstate_nnx vs BrainState vs hand-written JAX.

Run from the repository root::

    .venv/bin/python benchmarks/run_ei.py           # full run (a few minutes)
    .venv/bin/python benchmarks/run_ei.py --quick   # smoke run

Workload: ``examples/ei_network.py`` -- 4,000 conductance-based LIF neurons
(80 % excitatory), every neuron projecting to 2 % of the population through
``nn.EventFixedProb``, spikes delayed by 1.5 ms through ``prefetch_delay``,
1,000 steps of 0.1 ms in one ``transform.for_loop`` under ``transform.jit``.
One call simulates the next 1,000 steps (time keeps running between calls).

Variants (same connectivity and initial state; the check compares the spike
trains of the first call):

  A  hand-written JAX: ``jax.jit`` of ``lax.scan``, the same math, a ring-buffer
     delay and a scatter-add over the same index matrices
  D  real BrainState 0.5.4 (``brainevent`` kernels; on a CPU without numba its
     pure-JAX backend)
  E  brainstate_nnx, the same program as D

Targets (issue 10): E no slower than D and within 10 % of A; E's first call
no slower than D's.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)
import _harness as H  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
p.add_argument('--quick', action='store_true', help='few rounds: a smoke run')
p.add_argument('--cpu', type=int, default=None, help='core to pin to (-1: do not pin)')
p.add_argument('--n', type=int, default=4000)
p.add_argument('--steps', type=int, default=1000)
p.add_argument('--variants', default='ADE', help='subset of variants (A is needed)')
ARGS = p.parse_args()
PINNED = H.pin_cpu(ARGS.cpu)
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

NAMES = {
  'A': 'hand-written jax.jit + lax.scan',
  'D': 'BrainState, transform.jit + for_loop',
  'E': 'brainstate_nnx, same code as D (ours)',
}
ORDER = [v for v in NAMES if v in ARGS.variants]
FIRST_REPS = 2 if ARGS.quick else 3
ROUNDS = 3 if ARGS.quick else 6
PER_ROUND = 2 if ARGS.quick else 3
SEED = 42


def load_example(name, argv):
  """examples/ei_network.py bound to one library (it picks it from sys.argv)."""
  old = sys.argv
  sys.argv = [name] + argv
  try:
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'examples', 'ei_network.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
  finally:
    sys.argv = old
  return mod


EX = {'D': load_example('ei_brainstate', ['--brainstate']), 'E': load_example('ei_nnx', [])}
for m in EX.values():
  m.brainstate.environ.set(dt=m.DT)


def build_lib(v):
  ex = EX[v]
  bs = ex.brainstate
  bs.random.seed(SEED)
  net = ex.EINet(ARGS.n, seed=SEED)
  bs.nn.init_all_states(net)
  run = bs.transform.jit(lambda idx: bs.transform.for_loop(net.update, idx))
  box = {'k': 0, 'last': None}

  def call():
    idx = jnp.arange(box['k'] * ARGS.steps, (box['k'] + 1) * ARGS.steps)
    box['k'] += 1
    box['last'] = run(idx)
    return box['last']

  return call, lambda: np.asarray(box['last'])


def build_jax():
  """The same network without any library: explicit state, lax.scan, a ring buffer."""
  ex = EX['E']
  bs = ex.brainstate
  bs.random.seed(SEED)
  net = ex.EINet(ARGS.n, seed=SEED)   # only for the connectivity and the initial V
  bs.nn.init_all_states(net)
  n, n_exc = ARGS.n, net.n_exc
  idx_e, idx_i = net.E.conn.indices, net.I.conn.indices
  we, wi = jnp.float32(ex.W_EXC), jnp.float32(ex.W_INH)
  dt = ex.DT
  L = int(round(ex.DELAY / dt)) + 1    # ring-buffer length: read the slot about to be overwritten
  tau, tau_ref, tau_e, tau_i = net.N.tau, net.N.tau_ref, net.ge.tau, net.gi.tau

  def exprel(x):
    return jnp.expm1(x) / x

  f_v, f_e, f_i = (dt * exprel(jnp.float32(-dt / t)) for t in (tau, tau_e, tau_i))

  def project(spk, idx, w):
    vals = jnp.broadcast_to((spk > 0).astype(jnp.float32)[:, None] * w, idx.shape)
    return jnp.zeros(n, jnp.float32).at[idx].add(vals, mode='promise_in_bounds')

  def step(carry, i):
    V, t_last, ge, gi, hist, wp = carry
    t = i * dt
    spk = hist[wp % L]
    ge = ge + f_e * (-ge / tau_e) + project(spk[:n_exc], idx_e, we)
    gi = gi + f_i * (-gi / tau_i) + project(spk[n_exc:], idx_i, wi)
    cur = ge * (ex.E_EXC - V) + gi * (ex.E_INH - V) + ex.I_EXT
    v = V + f_v * ((ex.V_REST - V + cur) / tau)
    v = jnp.where(t - t_last <= tau_ref, V, v)
    s = (v >= ex.V_TH).astype(jnp.float32)
    V = jnp.where(s > 0, ex.V_RESET, v)
    t_last = jnp.where(s > 0, t, t_last)
    hist = hist.at[wp % L].set(s)
    return (V, t_last, ge, gi, hist, (wp + 1) % L), s

  @jax.jit
  def run(carry, idx):
    return jax.lax.scan(step, carry, idx)

  carry = (net.N.V.value, net.N.t_last.value, net.ge.g.value, net.gi.g.value,
           jnp.zeros((L, n), jnp.float32), jnp.int32(0))
  box = {'c': carry, 'k': 0, 'last': None}

  def call():
    idx = jnp.arange(box['k'] * ARGS.steps, (box['k'] + 1) * ARGS.steps)
    box['k'] += 1
    box['c'], box['last'] = run(box['c'], idx)
    return box['last']

  return call, lambda: np.asarray(box['last'])


def build(v):
  return build_jax() if v == 'A' else build_lib(v)


def main():
  print(f'# E/I network: {ARGS.n} neurons, 2 % EventFixedProb, 1.5 ms delay, '
        f'{ARGS.steps} steps per call')
  print(f'# jax {jax.__version__}, {jax.devices()[0].platform}, {platform.processor() or platform.machine()}, '
        f'pinned to core {PINNED}, {os.cpu_count()} cores visible')
  first = H.first_calls(build, ORDER, FIRST_REPS)
  spikes = {v: np.asarray(first[v][2][2]) for v in ORDER}
  for v in ORDER:
    print(f'# {v}: {int(spikes[v].sum())} spikes in the first call')
  if 'D' in spikes and 'E' in spikes:
    same = np.array_equal(spikes['D'], spikes['E'])
    print(f'# spike trains D == E: {same}')
    assert same, 'brainstate_nnx and BrainState disagree'
  if 'E' in spikes:
    agree = (spikes['A'] == spikes['E']).mean()
    print(f'# spike trains A == E: {np.array_equal(spikes["A"], spikes["E"])} '
          f'(agreement {agree:.5f}; A uses the closed-form exp-Euler factors)')
  calls = {v: first[v][2][0] for v in ORDER}
  per = H.steady(calls, ROUNDS, PER_ROUND)
  res = H.summarize(per, first, 'A')
  print()
  print(H.table(res, NAMES, 'A'))
  if 'D' in res and 'E' in res:
    print()
    print(f'E / D steady: {res["E"]["min"] / res["D"]["min"]:.3f}   '
          f'E / A steady: {res["E"]["min"] / res["A"]["min"]:.3f}   '
          f'first call E / D: {res["E"]["first"] / res["D"]["first"]:.3f}')


if __name__ == '__main__':
  main()
