#!/usr/bin/env python
"""First call and per call of one training step on a model with 500 States.

Run from the repository root::

    .venv/bin/python benchmarks/run_large.py            # ~3-5 minutes on 2 cores
    .venv/bin/python benchmarks/run_large.py --quick    # smoke run

The model: a residual MLP of ``--blocks`` (default 24) blocks, width 32,
batch 16. Each block has its own parameters -- four linear layers (weight and
bias) and three norms (scale and shift) -- its own norm states (running mean
and variance of each norm, updated on every call) and a step counter: 21
States a block, 504 in all (336 parameters). One step is a forward pass, an
MSE loss, gradients and an SGD update of the parameters, plus the 168 writes
of the other States.

Variants, all in this one process, side by side, from the same weights:

  A  hand-written pure ``jax.jit`` step, params/counters in -> out (the limit)
  C  ``nnx.jit_partial(step, model, graph=False)`` on an nnx.Module of
     nnx.Params / nnx.Variables
  D  real ``brainstate.transform.jit`` closure step (BrainState 0.5.4)
  E  ``brainstate_nnx.transform.jit`` closure step (ours), the same code as D

First call: each variant is built fresh (new model, new functions) and its
first call (trace + compile + run) timed, ``--first`` times, the variant order
rotating; the table shows the median and the minimum. Per call: interleaved
rounds of calls, the minimum of the round medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
p.add_argument('--quick', action='store_true')
p.add_argument('--blocks', type=int, default=24)
p.add_argument('--first', type=int, default=None, help='fresh builds per variant')
p.add_argument('--cpu', type=int, default=None, help='pin to this core (-1: do not pin)')
ARGS = p.parse_args()

if hasattr(os, 'sched_setaffinity'):
  _cpu = ARGS.cpu if ARGS.cpu is not None else (1 if (os.cpu_count() or 1) > 1 else -1)
  if _cpu >= 0:
    os.sched_setaffinity(0, {_cpu})
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

import brainstate  # noqa: E402  (the rival, real BrainState)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import brainstate_nnx  # noqa: E402  (ours)

VARIANTS = {
  'A': 'jax.jit pure fn (params in -> out)',
  'C': 'nnx.jit_partial(graph=False)',
  'D': 'brainstate.transform.jit',
  'E': 'brainstate_nnx.transform.jit',
}
ORDER = list(VARIANTS)
WIDTH, BATCH, LR = 32, 16, 0.01
N = ARGS.blocks
FIRST = ARGS.first or (2 if ARGS.quick else 5)
ROUNDS, CALLS = (3, 10) if ARGS.quick else (8, 30)


PARAMS = ('w1', 'b1', 'w2', 'b2', 'w3', 'b3', 'w4', 'b4', 'g1', 's1', 'g2', 's2', 'g3', 's3')
STATS = ('m1', 'v1', 'm2', 'v2', 'm3', 'v3')
MOM = 0.9


def init(seed=0):
  rng = np.random.RandomState(seed)
  blocks = []
  for _ in range(N):
    bl = {}
    for k in ('w1', 'w2', 'w3', 'w4'):
      bl[k] = (rng.randn(WIDTH, WIDTH) / np.sqrt(WIDTH) * 0.5).astype(np.float32)
    for k in ('b1', 'b2', 'b3', 'b4', 's1', 's2', 's3', 'm1', 'm2', 'm3'):
      bl[k] = np.zeros(WIDTH, np.float32)
    for k in ('g1', 'g2', 'g3', 'v1', 'v2', 'v3'):
      bl[k] = np.ones(WIDTH, np.float32)
    blocks.append(bl)
  x = rng.randn(BATCH, WIDTH).astype(np.float32)
  y = rng.randn(BATCH, WIDTH).astype(np.float32)
  return blocks, jnp.asarray(x), jnp.asarray(y)


def norm(h, g, s, m, v):
  """Layer norm with scale/shift; also the new running mean/var of the batch."""
  mu = h.mean(-1, keepdims=True)
  var = ((h - mu) ** 2).mean(-1, keepdims=True)
  out = (h - mu) / jnp.sqrt(var + 1e-5) * g + s
  hs = jax.lax.stop_gradient(h)
  return out, MOM * m + (1 - MOM) * hs.mean(0), MOM * v + (1 - MOM) * hs.var(0)


def block_fwd(h, p, st):
  """One block: ``p`` its parameters, ``st`` its running statistics (dicts).

  Returns the output and the new statistics.
  """
  n1, m1, v1 = norm(h, p['g1'], p['s1'], st['m1'], st['v1'])
  h = h + jnp.tanh(n1 @ p['w1'] + p['b1']) @ p['w2'] + p['b2']
  n2, m2, v2 = norm(h, p['g2'], p['s2'], st['m2'], st['v2'])
  h = h + jnp.tanh(n2 @ p['w3'] + p['b3']) @ p['w4'] + p['b4']
  h, m3, v3 = norm(h, p['g3'], p['s3'], st['m3'], st['v3'])
  return h, dict(m1=m1, v1=v1, m2=m2, v2=v2, m3=m3, v3=v3)


# -- builders: each returns (call, read) ----------------------------------------
def build(variant, blocks, x, y):
  if variant == 'A':
    params = [{k: jnp.asarray(bl[k]) for k in PARAMS} for bl in blocks]
    stats = [{k: jnp.asarray(bl[k]) for k in STATS} for bl in blocks]
    counts = [jnp.zeros((), jnp.int32) for _ in blocks]

    def loss_fn(params, stats, x, y):
      h, new = x, []
      for p, st in zip(params, stats):
        h, st = block_fwd(h, p, st)
        new.append(st)
      return jnp.mean((h - y) ** 2), new

    @jax.jit
    def step(params, stats, counts, x, y):
      (loss, stats), g = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, x, y)
      params = jax.tree.map(lambda p, d: p - LR * d, params, g)
      return params, stats, [c + 1 for c in counts], loss

    box = [params, stats, counts]

    def call():
      box[0], box[1], box[2], loss = step(box[0], box[1], box[2], x, y)
      return loss

    return call, lambda: [np.asarray(p['w1']) for p in box[0]]

  if variant == 'C':
    class Block(nnx.Module):
      def __init__(self, bl):
        for k in PARAMS:
          setattr(self, k, nnx.Param(jnp.asarray(bl[k])))
        for k in STATS:
          setattr(self, k, nnx.BatchStat(jnp.asarray(bl[k])))
        self.count = nnx.Variable(jnp.zeros((), jnp.int32))

    class Net(nnx.Module):
      def __init__(self):
        self.blocks = nnx.List([Block(bl) for bl in blocks])

    model = Net()

    def step(model, x, y):
      def loss_fn(params):
        h, new = x, []
        for blk, p in zip(model.blocks, params):
          h, st = block_fwd(h, p, {k: getattr(blk, k)[...] for k in STATS})
          new.append(st)
        return jnp.mean((h - y) ** 2), new

      params = [{k: getattr(blk, k)[...] for k in PARAMS} for blk in model.blocks]
      (loss, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
      for blk, gb, st in zip(model.blocks, grads, new):
        for k in PARAMS:
          v = getattr(blk, k)
          v[...] = v[...] - LR * gb[k]
        for k in STATS:
          getattr(blk, k)[...] = st[k]
        blk.count[...] = blk.count[...] + 1
      return loss

    jstep = nnx.jit_partial(step, model, graph=False)
    return (lambda: jstep(x, y)), lambda: [np.asarray(blk.w1[...]) for blk in model.blocks]

  lib = brainstate if variant == 'D' else brainstate_nnx

  class Block(lib.nn.Module):
    def __init__(self, bl):
      super().__init__()
      for k in PARAMS:
        setattr(self, k, lib.ParamState(jnp.asarray(bl[k])))
      for k in STATS:
        setattr(self, k, lib.BatchState(jnp.asarray(bl[k])))
      self.count = lib.ShortTermState(jnp.zeros((), jnp.int32))

    def __call__(self, h):
      self.count.value = self.count.value + 1
      p = {k: getattr(self, k).value for k in PARAMS}
      h, st = block_fwd(h, p, {k: getattr(self, k).value for k in STATS})
      for k in STATS:
        getattr(self, k).value = st[k]
      return h

  class Net(lib.nn.Module):
    def __init__(self):
      super().__init__()
      self.blocks = [Block(bl) for bl in blocks]

    def __call__(self, h):
      for blk in self.blocks:
        h = blk(h)
      return h

  model = Net()
  params = model.states(lib.ParamState)
  keys = list(params.keys())

  def loss_fn(x, y):
    return jnp.mean((model(x) - y) ** 2)

  @lib.transform.jit
  def step(x, y):
    grads, loss = lib.transform.grad(loss_fn, params, return_value=True)(x, y)
    for k in keys:
      params[k].value = params[k].value - LR * grads[k]
    return loss

  return (lambda: step(x, y)), lambda: [np.asarray(blk.w1.value) for blk in model.blocks]


def main():
  warnings.simplefilter('ignore', DeprecationWarning)
  t0 = time.perf_counter()
  blocks, x, y = init()
  print('# brainstate_nnx benchmark: a 500-State model')
  print()
  print(f'- python {platform.python_version()}, jax {jax.__version__}, '
        f'brainstate {brainstate.__version__}, {os.cpu_count()} CPUs, '
        f'pinned to core {ARGS.cpu if ARGS.cpu is not None else 1}')
  print(f'- residual MLP: {N} blocks x (4 linear layers {WIDTH}x{WIDTH} with bias, 3 norms with '
        f'scale/shift and running mean/var, a step counter) = {21 * N} States '
        f'({14 * N} parameters); batch {BATCH}; SGD step (lr {LR})')
  jax.block_until_ready(jax.jit(lambda a: a + 1)(jnp.ones(3)))  # warm JAX up

  first = {v: [] for v in ORDER}
  built = {}
  for r in range(FIRST):
    order = ORDER[r % len(ORDER):] + ORDER[:r % len(ORDER)]
    for v in order:
      call, read = build(v, blocks, x, y)
      t = time.perf_counter()
      out = jax.block_until_ready(call())
      first[v].append((time.perf_counter() - t) * 1e3)
      built[v] = (call, read, out)

  # correctness: the same losses and weights after 3 steps
  ref = None
  for v in ORDER:
    call, read, out = built[v]
    seq = [float(out)] + [float(call()) for _ in range(2)]
    w = read()
    if ref is None:
      ref = (seq, w)
    else:
      np.testing.assert_allclose(seq, ref[0], rtol=1e-4, err_msg=v)
      for a, b in zip(w, ref[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=v)
  print(f'- check: losses of steps 1-3 agree in every variant ({", ".join(f"{l:.5f}" for l in ref[0])}), '
        'weights too')

  per = {v: [] for v in ORDER}
  pc = time.perf_counter_ns
  for v in ORDER:  # settle
    for _ in range(3):
      jax.block_until_ready(built[v][0]())
  rng = np.random.RandomState(0)
  for _ in range(ROUNDS):
    for i in rng.permutation(len(ORDER)):
      v = ORDER[i]
      call = built[v][0]
      ts = []
      for _ in range(CALLS):
        t = pc()
        jax.block_until_ready(call())
        ts.append(pc() - t)
      per[v].append(statistics.median(ts) / 1e3)

  a_first = min(first['A'])
  a_call = min(per['A'])
  print()
  print('| variant | first call ms, median (min) | first call / A (min) | µs/call (min of round medians) | per call / A |')
  print('|---|---:|---:|---:|---:|')
  for v in ORDER:
    print(f'| {v} {VARIANTS[v]} | {statistics.median(first[v]):.0f} ({min(first[v]):.0f}) | '
          f'{min(first[v]) / a_first:.2f} | {min(per[v]):.0f} | {min(per[v]) / a_call:.2f} |')
  print()
  e_first, d_first = min(first['E']), min(first['D'])
  e_call = min(per['E'])
  print('Targets (minimum over fresh builds / rounds):')
  print(f'- first call no slower than BrainState: E {e_first:.0f} ms vs D {d_first:.0f} ms '
        f'({e_first / d_first:.2f}x) -> {"met" if e_first <= d_first * 1.05 else "NOT met"}')
  print(f'- first call within 1.1x of jax.jit: E/A = {e_first / a_first:.2f} -> '
        f'{"met" if e_first <= 1.1 * a_first else "NOT met"}')
  print(f'- per call within 1.1x of jax.jit: E/A = {e_call / a_call:.2f} -> '
        f'{"met" if e_call <= 1.1 * a_call else "NOT met"}')
  print(f'\ntotal time {time.perf_counter() - t0:.0f} s')


if __name__ == '__main__':
  main()
