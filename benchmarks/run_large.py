#!/usr/bin/env python
"""First call and per call of one training step on a model with 500 States.

Run from the repository root::

    .venv/bin/python benchmarks/run_large.py            # ~3-5 minutes on 2 cores
    .venv/bin/python benchmarks/run_large.py --quick    # smoke run

The model: a residual MLP of ``--blocks`` (default 100) blocks, width 64,
batch 32. Each block has its own parameters -- a weight (64x64), a bias and
the scale/shift of a layer norm -- and a step counter it increments on every
call: 5 States a block, 500 in all (400 parameters). One step is a forward
pass, an MSE loss, gradients and an SGD update of the 400 parameters, plus the
100 counter writes.

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
p.add_argument('--blocks', type=int, default=100)
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
WIDTH, BATCH, LR = 64, 32, 0.01
N = ARGS.blocks
FIRST = ARGS.first or (2 if ARGS.quick else 5)
ROUNDS, CALLS = (3, 10) if ARGS.quick else (8, 30)


def init(seed=0):
  rng = np.random.RandomState(seed)
  blocks = []
  for _ in range(N):
    blocks.append(dict(
      w=(rng.randn(WIDTH, WIDTH) / np.sqrt(WIDTH) * 0.5).astype(np.float32),
      b=np.zeros(WIDTH, np.float32),
      g=np.ones(WIDTH, np.float32),
      s=np.zeros(WIDTH, np.float32),
    ))
  x = rng.randn(BATCH, WIDTH).astype(np.float32)
  y = rng.randn(BATCH, WIDTH).astype(np.float32)
  return blocks, jnp.asarray(x), jnp.asarray(y)


def block_fwd(h, w, b, g, s):
  mu = h.mean(-1, keepdims=True)
  var = ((h - mu) ** 2).mean(-1, keepdims=True)
  n = (h - mu) / jnp.sqrt(var + 1e-5) * g + s
  return h + jnp.tanh(n @ w + b)


KEYS = ('w', 'b', 'g', 's')


# -- builders: each returns (call, read) ----------------------------------------
def build(variant, blocks, x, y):
  if variant == 'A':
    params = [{k: jnp.asarray(bl[k]) for k in KEYS} for bl in blocks]
    counts = [jnp.zeros((), jnp.int32) for _ in blocks]

    def loss_fn(params, x, y):
      h = x
      for p in params:
        h = block_fwd(h, p['w'], p['b'], p['g'], p['s'])
      return jnp.mean((h - y) ** 2)

    @jax.jit
    def step(params, counts, x, y):
      loss, g = jax.value_and_grad(loss_fn)(params, x, y)
      params = jax.tree.map(lambda p, d: p - LR * d, params, g)
      return params, [c + 1 for c in counts], loss

    box = [params, counts]

    def call():
      box[0], box[1], loss = step(box[0], box[1], x, y)
      return loss

    return call, lambda: [np.asarray(p['w']) for p in box[0]]

  if variant == 'C':
    class Block(nnx.Module):
      def __init__(self, bl):
        self.w = nnx.Param(jnp.asarray(bl['w']))
        self.b = nnx.Param(jnp.asarray(bl['b']))
        self.g = nnx.Param(jnp.asarray(bl['g']))
        self.s = nnx.Param(jnp.asarray(bl['s']))
        # float: tree-mode nnx.value_and_grad differentiates every Variable
        self.count = nnx.Variable(jnp.zeros((), jnp.float32))

      def __call__(self, h):
        return block_fwd(h, self.w[...], self.b[...], self.g[...], self.s[...])

    class Net(nnx.Module):
      def __init__(self):
        self.blocks = nnx.List([Block(bl) for bl in blocks])

      def __call__(self, h):
        for blk in self.blocks:
          h = blk(h)
        return h

    model = Net()

    def step(model, x, y):
      def loss_fn(m):
        return jnp.mean((m(x) - y) ** 2)

      loss, grads = nnx.value_and_grad(loss_fn, graph=False)(model)
      for blk, gb in zip(model.blocks, grads.blocks):
        blk.count[...] = blk.count[...] + 1
        for k in KEYS:
          v = getattr(blk, k)
          v[...] = v[...] - LR * getattr(gb, k)[...]
      return loss

    jstep = nnx.jit_partial(step, model, graph=False)
    return (lambda: jstep(x, y)), lambda: [np.asarray(blk.w[...]) for blk in model.blocks]

  lib = brainstate if variant == 'D' else brainstate_nnx

  class Block(lib.nn.Module):
    def __init__(self, bl):
      super().__init__()
      self.w = lib.ParamState(jnp.asarray(bl['w']))
      self.b = lib.ParamState(jnp.asarray(bl['b']))
      self.g = lib.ParamState(jnp.asarray(bl['g']))
      self.s = lib.ParamState(jnp.asarray(bl['s']))
      self.count = lib.ShortTermState(jnp.zeros((), jnp.int32))

    def __call__(self, h):
      self.count.value = self.count.value + 1
      return block_fwd(h, self.w.value, self.b.value, self.g.value, self.s.value)

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

  return (lambda: step(x, y)), lambda: [np.asarray(blk.w.value) for blk in model.blocks]


def main():
  warnings.simplefilter('ignore', DeprecationWarning)
  t0 = time.perf_counter()
  blocks, x, y = init()
  print('# brainstate_nnx benchmark: a 500-State model')
  print()
  print(f'- python {platform.python_version()}, jax {jax.__version__}, '
        f'brainstate {brainstate.__version__}, {os.cpu_count()} CPUs, '
        f'pinned to core {ARGS.cpu if ARGS.cpu is not None else 1}')
  print(f'- residual MLP: {N} blocks x (W {WIDTH}x{WIDTH}, b, norm scale, norm shift, '
        f'step counter) = {5 * N} States; batch {BATCH}; SGD step (lr {LR})')
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
