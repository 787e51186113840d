#!/usr/bin/env python
"""Per-call overhead of state-aware ``jit`` steps: brainstate_nnx vs the rest.

Run from the repository root::

    .venv/bin/python benchmarks/run.py            # full run (~1.5-2 minutes)
    .venv/bin/python benchmarks/run.py --quick    # smoke run (< 1 minute)

Variants (all in this one process, interleaved):

  A  hand-written pure ``jax.jit`` step, params in -> params out (the limit)
  B  ``nnx.jit(step)(model, batch...)``, graph mode (flax 0.12.8 default)
  C  ``nnx.jit_partial(step, model, graph=False)`` (tree mode)
  D  real ``brainstate.transform.jit`` zero-state-argument closure step
  E  ``brainstate_nnx.transform.jit`` zero-state-argument closure step (ours)

Workloads:

  (a) tiny MLP 3->32->1, batch 64, tanh, MSE, one SGD step (lr 0.1) per call
  (b) MLP 784->1024->1024->10, batch 256, relu, softmax CE, optax adam(1e-3)
  (c) trivial step ``s.value = s.value + 1.0`` over N scalar states, N=4, 100

See benchmarks/README.md for the method and a recorded run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time


def _parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--quick', action='store_true',
                 help='few rounds and calls: a smoke run (< 1 minute)')
  p.add_argument('--cpu', type=int, default=None,
                 help='pin the process to this CPU core before JAX starts '
                      '(default: core 1 when the machine has 2+ cores; '
                      '-1 = do not pin)')
  p.add_argument('--rounds', type=int, default=None,
                 help='override the number of interleaved rounds')
  p.add_argument('--only', default='abc',
                 help='workloads to run, e.g. "ac" (default: abc)')
  return p.parse_args(argv)


ARGS = _parse_args()

# -- pin before JAX creates its thread pools ----------------------------------
PINNED = None
if hasattr(os, 'sched_setaffinity'):
  _cpu = ARGS.cpu
  if _cpu is None:
    _cpu = 1 if (os.cpu_count() or 1) > 1 else -1
  if _cpu >= 0:
    os.sched_setaffinity(0, {_cpu})
    PINNED = _cpu
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
import flax  # noqa: E402
from flax import nnx  # noqa: E402

import brainstate  # noqa: E402  (the rival, real BrainState)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import brainstate_nnx  # noqa: E402  (ours)

VARIANTS = {
  'A': 'jax.jit pure fn (params in -> out)',
  'B': 'nnx.jit graph mode (default)',
  'C': 'nnx.jit_partial(graph=False)',
  'D': 'brainstate.transform.jit',
  'E': 'brainstate_nnx.transform.jit',
}
ORDER = list(VARIANTS)
FIRST_CALL_NOISE = 1.05  # first-call times of D vs E move by ~5 % between runs

if ARGS.quick:
  CFG = dict(first_reps=3, steady_frac=0.25)
else:
  CFG = dict(first_reps=7, steady_frac=1.0)


# =============================================================================
# Shared pieces: initial weights, data, the forward pass
# =============================================================================

def init_weights(sizes, seed):
  rng = np.random.RandomState(seed)
  ws = []
  for din, dout in zip(sizes[:-1], sizes[1:]):
    ws.append((rng.randn(din, dout) / np.sqrt(din)).astype(np.float32))
    ws.append((rng.randn(dout) * 0.01).astype(np.float32))
  return ws  # [w0, b0, w1, b1, ...]


def forward(values, x, act):
  """The same MLP for every variant: ``values`` = [w0, b0, w1, b1, ...]."""
  n = len(values) // 2
  h = x
  for i in range(n):
    h = h @ values[2 * i] + values[2 * i + 1]
    if i < n - 1:
      h = act(h)
  return h


def mse(out, y):
  return jnp.mean((out - y) ** 2)


def xent(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


NAMES = lambda n: [f'{k}{i}' for i in range(n) for k in ('w', 'b')]  # noqa: E731


class NnxMLP(nnx.Module):
  """An nnx.Module built from nnx.Params (variants B, C)."""

  def __init__(self, ws, act):
    self.names = tuple(NAMES(len(ws) // 2))
    self.act = act
    for name, w in zip(self.names, ws):
      setattr(self, name, nnx.Param(jnp.array(w)))

  def __call__(self, x):
    return forward([getattr(self, k)[...] for k in self.names], x, self.act)


_LIB_CLASSES = {}


def lib_classes(lib):
  """MLP and state bag for ``brainstate`` or ``brainstate_nnx`` (same code)."""
  if lib in _LIB_CLASSES:
    return _LIB_CLASSES[lib]

  class LibMLP(lib.nn.Module):
    def __init__(self, ws, act):
      super().__init__()
      self.names = tuple(NAMES(len(ws) // 2))
      self.act = act
      for name, w in zip(self.names, ws):
        setattr(self, name, lib.ParamState(jnp.array(w)))

    def __call__(self, x):
      return forward([getattr(self, k).value for k in self.names], x, self.act)

  class LibBag(lib.nn.Module):
    def __init__(self, n):
      super().__init__()
      self.n = n
      for i in range(n):
        setattr(self, f's{i}', lib.State(jnp.zeros((), jnp.float32)))

    def all(self):
      return [getattr(self, f's{i}') for i in range(self.n)]

  _LIB_CLASSES[lib] = (LibMLP, LibBag)
  return LibMLP, LibBag


class NnxBag(nnx.Module):
  def __init__(self, n):
    self.n = n
    for i in range(n):
      setattr(self, f's{i}', nnx.Variable(jnp.zeros((), jnp.float32)))

  def all(self):
    return [getattr(self, f's{i}') for i in range(self.n)]


def _grad_of(grads, name):
  # graph-mode grads are an nnx.State, tree-mode grads are model-shaped
  return grads[name] if isinstance(grads, nnx.State) else getattr(grads, name)


# =============================================================================
# Builders. Each returns ``(call, read, lower)``: ``call()`` runs one step and
# returns one array to block on (the loss / one state); ``read()`` returns the
# current parameter or state values as numpy arrays, for the correctness check;
# ``lower()`` (A and E on the MLPs, else None) gives the jax ``Lowered`` step,
# to compare the compiled programs.
# Every builder makes fresh functions and fresh models/States, so its first
# call traces and compiles from scratch.
# =============================================================================

# -- (a) tiny MLP SGD, and (b) MLP + adam ---------------------------------------

def build_mlp(variant, spec):
  ws, x, y, act, loss_of, opt = (spec[k] for k in ('ws', 'x', 'y', 'act', 'loss', 'opt'))
  lr = spec.get('lr')

  if variant == 'A':
    params = [jnp.array(w) for w in ws]
    if opt is None:
      @jax.jit
      def step(p, x, y):
        loss, g = jax.value_and_grad(lambda p: loss_of(forward(p, x, act), y))(p)
        return [a - lr * b for a, b in zip(p, g)], loss
      box = [params]

      def call():
        box[0], loss = step(box[0], x, y)
        return loss
      lower = lambda: step.lower(box[0], x, y)  # noqa: E731
    else:
      @jax.jit
      def step(p, s, x, y):
        loss, g = jax.value_and_grad(lambda p: loss_of(forward(p, x, act), y))(p)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, loss
      box = [params, opt.init(params)]

      def call():
        box[0], box[1], loss = step(box[0], box[1], x, y)
        return loss
      lower = lambda: step.lower(box[0], box[1], x, y)  # noqa: E731
    return call, lambda: [np.asarray(v) for v in box[0]], lower

  if variant in ('B', 'C'):
    graph = variant == 'B'
    model = NnxMLP(ws, act)
    kw = {} if graph else dict(graph=False)
    names = model.names

    if opt is None:
      def step(model, x, y):
        loss, g = nnx.value_and_grad(lambda m: loss_of(m(x), y), **kw)(model)
        for k in names:
          v = getattr(model, k)
          v[...] = v[...] - lr * _grad_of(g, k)[...]
        return loss
      partial = (model,)
    else:
      optimizer = nnx.Optimizer(model, opt, wrt=nnx.Param, **kw)

      def step(model, optimizer, x, y):
        loss, g = nnx.value_and_grad(lambda m: loss_of(m(x), y), **kw)(model)
        optimizer.update(model, g)
        return loss
      partial = (model, optimizer)

    if graph:
      jstep = nnx.jit(step)
      call = lambda: jstep(*partial, x, y)  # noqa: E731
    else:
      jstep = nnx.jit_partial(step, *partial, graph=False)
      call = lambda: jstep(x, y)  # noqa: E731
    return call, lambda: [np.asarray(getattr(model, k)[...]) for k in names], None

  # D, E: the same code on both libraries
  lib = brainstate if variant == 'D' else brainstate_nnx
  LibMLP, _ = lib_classes(lib)
  model = LibMLP(ws, act)
  params = model.states(lib.ParamState)
  keys = list(params.keys())

  def loss_fn(x, y):
    return loss_of(model(x), y)

  if opt is None:
    @lib.transform.jit
    def step(x, y):
      grads, loss = lib.transform.grad(loss_fn, params, return_value=True)(x, y)
      for k in keys:
        params[k].value -= lr * grads[k]
      return loss
  else:
    opt_state = lib.LongTermState(opt.init({k: params[k].value for k in keys}))

    @lib.transform.jit
    def step(x, y):
      grads, loss = lib.transform.grad(loss_fn, params, return_value=True)(x, y)
      grads = {k: grads[k] for k in keys}
      pv = {k: params[k].value for k in keys}
      upd, opt_state.value = opt.update(grads, opt_state.value, pv)
      new = optax.apply_updates(pv, upd)
      for k in keys:
        params[k].value = new[k]
      return loss

  call = lambda: step(x, y)  # noqa: E731
  lower = (lambda: step.lower(x, y)) if variant == 'E' else None
  return call, lambda: [np.asarray(getattr(model, k).value) for k in model.names], lower


# -- (c) N states, s.value = s.value + 1 ---------------------------------------

def build_states(variant, spec):
  n = spec['n']
  if variant == 'A':
    @jax.jit
    def step(xs):
      return [v + 1.0 for v in xs]
    box = [[jnp.zeros((), jnp.float32) for _ in range(n)]]

    def call():
      box[0] = out = step(box[0])
      return out[0]  # all outputs of one execution become ready together
    return call, lambda: [np.asarray(v) for v in box[0]], None

  if variant in ('B', 'C'):
    bag = NnxBag(n)

    def step(bag):
      vs = bag.all()
      for v in vs:
        v[...] = v[...] + 1.0
      return vs[0][...]

    if variant == 'B':
      jstep = nnx.jit(step)
      call = lambda: jstep(bag)  # noqa: E731
    else:
      call = nnx.jit_partial(step, bag, graph=False)
    return call, lambda: [np.asarray(v[...]) for v in bag.all()], None

  lib = brainstate if variant == 'D' else brainstate_nnx
  _, LibBag = lib_classes(lib)
  bag = LibBag(n)
  states = bag.all()

  @lib.transform.jit
  def step():
    for s in states:
      s.value = s.value + 1.0
    return states[0].value

  return step, lambda: [np.asarray(s.value) for s in states], None


# =============================================================================
# Workloads
# =============================================================================

def workloads():
  rng = np.random.RandomState(42)
  out = []
  if 'a' in ARGS.only:
    x = jnp.asarray(rng.randn(64, 3).astype(np.float32))
    y = jnp.asarray(rng.randn(64, 1).astype(np.float32))
    out.append(dict(
      key='a', title='(a) tiny MLP 3->32->1, batch 64, tanh, MSE, SGD lr 0.1',
      build=build_mlp,
      spec=dict(ws=init_weights([3, 32, 1], 0), x=x, y=y, act=jnp.tanh,
                loss=mse, opt=None, lr=0.1),
      rounds=30, calls=150, check='loss'))
  if 'b' in ARGS.only:
    x = jnp.asarray(rng.randn(256, 784).astype(np.float32))
    y = jnp.asarray(rng.randint(0, 10, size=(256,)).astype(np.int32))
    out.append(dict(
      key='b', title='(b) MLP 784->1024->1024->10, batch 256, relu, softmax CE, adam(1e-3)',
      build=build_mlp,
      spec=dict(ws=init_weights([784, 1024, 1024, 10], 1), x=x, y=y,
                act=jax.nn.relu, loss=xent, opt=optax.adam(1e-3)),
      rounds=150, calls=3, check='loss'))
  if 'c' in ARGS.only:
    for n, calls in ((4, 200), (100, 40)):
      out.append(dict(
        key=f'c{n}', title=f'(c) trivial step over N={n} states (s.value = s.value + 1.0)',
        build=build_states, spec=dict(n=n), rounds=30, calls=calls,
        check='states'))
  return out


# =============================================================================
# Measurement
# =============================================================================

def _block(x):
  return jax.block_until_ready(x)


def first_calls(wl):
  """Builds each variant fresh ``first_reps`` times, timing its first call.

  Returns ``{variant: (median ms, min ms, (call, read, out, lower) of the last
  build)}``.
  The order of the variants rotates between repetitions.
  """
  times = {v: [] for v in ORDER}
  last = {}
  reps = CFG['first_reps']
  for r in range(reps):
    order = ORDER[r % len(ORDER):] + ORDER[:r % len(ORDER)]
    for v in order:
      call, read, lower = wl['build'](v, wl['spec'])
      t0 = time.perf_counter()
      out = _block(call())
      times[v].append((time.perf_counter() - t0) * 1e3)
      last[v] = (call, read, out, lower)
  return {v: (statistics.median(times[v]), min(times[v]), last[v]) for v in ORDER}


def check(wl, built, steps=3):
  """All variants agree after ``steps`` calls from the same initial values."""
  outs = {}
  for v in ORDER:
    call, read, first, _ = built[v]
    seq = [np.asarray(first)] + [np.asarray(_block(call())) for _ in range(steps - 1)]
    outs[v] = (np.array(seq), read())
  ref_seq, ref_vals = outs['A']
  for v in ORDER[1:]:
    seq, vals = outs[v]
    np.testing.assert_allclose(seq, ref_seq, rtol=2e-4, atol=1e-6,
                               err_msg=f'{wl["key"]}: variant {v} output differs from A')
    assert len(vals) == len(ref_vals), (wl['key'], v)
    for a, b in zip(vals, ref_vals):
      np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6,
                                 err_msg=f'{wl["key"]}: variant {v} values differ from A')
  if wl['check'] == 'loss':
    msg = f'outputs of steps 1..{steps} agree (A: {", ".join(f"{l:.6f}" for l in ref_seq)})'
    lowers = {v: built[v][3] for v in ('A', 'E') if built[v][3] is not None}
    if len(lowers) == 2:
      prog = {v: _program_summary(lw()) for v, lw in lowers.items()}
      same = prog['A'] == prog['E']
      msg += (f'; compiled XLA programs A vs E: flops {prog["A"][0]:.4g} vs {prog["E"][0]:.4g}, '
              f'{prog["A"][1]} vs {prog["E"][1]} HLO instructions '
              f'({"identical op counts" if same else "DIFFERENT"})')
    return msg
  return f'all {len(ref_vals)} states == {float(ref_vals[0]):g} after {steps} calls in every variant'


def _program_summary(lowered):
  """(flops, #instructions, sorted op histogram) of a compiled step."""
  import collections
  import re
  compiled = lowered.compile()
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  ops = collections.Counter(re.findall(r'= \S+ ([\w-]+)\(', compiled.as_text()))
  return float(cost.get('flops', -1)), sum(ops.values()), tuple(sorted(ops.items()))


def time_round(call, n):
  pc = time.perf_counter_ns
  bur = jax.block_until_ready
  ts = [0] * n
  for i in range(n):
    t0 = pc()
    bur(call())
    ts[i] = pc() - t0
  return statistics.median(ts) / 1e3, min(ts) / 1e3  # µs


def steady(wl, built):
  rounds = ARGS.rounds or max(3, round(wl['rounds'] * CFG['steady_frac']))
  calls = max(3, round(wl['calls'] * (0.5 if ARGS.quick else 1.0)))
  calls_ = {v: built[v][0] for v in ORDER}
  for v in ORDER:  # settle
    time_round(calls_[v], max(3, calls // 4))
  per = {v: [] for v in ORDER}
  mins = {v: [] for v in ORDER}
  rng = np.random.RandomState(7)
  for _ in range(rounds):
    for i in rng.permutation(len(ORDER)):
      v = ORDER[i]
      med, lo = time_round(calls_[v], calls)
      per[v].append(med)
      mins[v].append(lo)
  return per, mins, rounds, calls


def fmt_table(wl, res):
  a_min = res['A']['min']
  lines = [
    '| variant | µs/call (min of round medians) | ratio to A | diff to A µs '
    '| µs/call (median of round medians) | paired ratio to A | fastest call µs '
    '| first call ms, median (min) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for v in ORDER:
    r = res[v]
    lines.append(
      f'| {v} {VARIANTS[v]} | {r["min"]:.1f} | {r["min"] / a_min:.3f} | '
      f'{r["min"] - a_min:+.1f} | {r["med"]:.1f} | {r["paired_ratio"]:.3f} | {r["best"]:.1f} | '
      f'{r["first"]:.0f} ({r["first_min"]:.0f}) |')
  return '\n'.join(lines)


def main():
  warnings.simplefilter('ignore', DeprecationWarning)
  t_start = time.perf_counter()
  print('# brainstate_nnx benchmark')
  print()
  print(f'- python {platform.python_version()}, jax {jax.__version__}, '
        f'flax {flax.__version__}, optax {optax.__version__}, '
        f'brainstate {brainstate.__version__}, brainstate_nnx {brainstate_nnx.__version__}')
  print(f'- backend: {jax.default_backend()} ({jax.devices()[0].device_kind}); '
        f'{os.cpu_count()} CPU cores; '
        + (f'process pinned to core {PINNED}' if PINNED is not None else 'not pinned'))
  print(f'- mode: {"--quick" if ARGS.quick else "full"}; '
        f'first call = median and min over {CFG["first_reps"]} fresh builds per variant')
  print()

  # one throwaway compile so the first measured variant does not pay JAX's
  # one-time start-up (backend, MLIR context)
  _block(jax.jit(lambda a: jnp.tanh(a @ a).sum())(jnp.ones((4, 4))))

  results = {}
  for wl in workloads():
    t0 = time.perf_counter()
    first = first_calls(wl)
    built = {v: first[v][2] for v in ORDER}
    msg = check(wl, built)
    per, mins, rounds, calls = steady(wl, built)
    res = {v: dict(min=min(per[v]), med=statistics.median(per[v]), best=min(mins[v]),
                   paired=statistics.median([x - a for x, a in zip(per[v], per['A'])]),
                   first=first[v][0], first_min=first[v][1]) for v in ORDER}
    for v in ORDER:
      res[v]['paired_ratio'] = statistics.median([x / a for x, a in zip(per[v], per['A'])])
    results[wl['key']] = res
    print(f'## {wl["title"]}')
    print()
    print(f'check: {msg}.  {rounds} rounds x {calls} calls per variant, '
          f'{time.perf_counter() - t0:.0f} s')
    print()
    print(fmt_table(wl, res))
    print()

  if 'c4' in results and 'c100' in results:
    print('## (c) per-state slope: µs per extra state between N=4 and N=100 (min-of-medians)')
    print()
    print('| variant | N=4 µs | N=100 µs | µs per state | N=4 diff to A µs |')
    print('|---|---:|---:|---:|---:|')
    for v in ORDER:
      a, b = results['c4'][v]['min'], results['c100'][v]['min']
      print(f'| {v} {VARIANTS[v]} | {a:.1f} | {b:.1f} | {(b - a) / 96:.2f} | '
            f'{a - results["c4"]["A"]["min"]:+.1f} |')
    print()

  _targets(results)
  print(f'total time {time.perf_counter() - t_start:.0f} s')


def _targets(results):
  rows = []

  def ok(b):
    return 'met' if b else 'NOT met'

  if 'c4' in results:
    d = results['c4']['E']['min'] - results['c4']['A']['min']
    rows.append(f'- overhead over pure jax at 4 states (c, N=4) <= 10 µs: E {d:+.1f} µs '
                f'(D {results["c4"]["D"]["min"] - results["c4"]["A"]["min"]:+.1f}, '
                f'B {results["c4"]["B"]["min"] - results["c4"]["A"]["min"]:+.1f}) -> {ok(d <= 10)}')
  if 'a' in results:
    d = results['a']['E']['min'] - results['a']['A']['min']
    rows.append(f'- same on the tiny MLP step (a, 4 params) <= 10 µs: E {d:+.1f} µs '
                f'(D {results["a"]["D"]["min"] - results["a"]["A"]["min"]:+.1f}, '
                f'B {results["a"]["B"]["min"] - results["a"]["A"]["min"]:+.1f}) -> {ok(d <= 10)}')
  if 'c4' in results and 'c100' in results:
    s = (results['c100']['E']['min'] - results['c4']['E']['min']) / 96
    sa = (results['c100']['A']['min'] - results['c4']['A']['min']) / 96
    rows.append(f'- <= 3 µs per extra state: E {s:.2f} µs/state (A {sa:.2f}) -> {ok(s <= 3)}')
  if 'b' in results:
    rb = results['b']
    r = rb['E']['min'] / rb['A']['min']
    r2 = rb['E']['paired_ratio']
    r3 = rb['E']['best'] / rb['A']['best']
    rows.append(f'- (b) within 2 % of pure jax: E/A = {r:.3f} (min of round medians), '
                f'{r2:.3f} (median over rounds of the same-round ratio), {r3:.3f} (fastest calls) '
                f'-> {ok(r <= 1.02)}'
                + ('' if r <= 1.02 or r2 > 1.02 else ' on min of round medians, met on paired ratio'))
  firsts, slower = [], []
  for k, res in results.items():
    r = res['E']['first_min'] / res['D']['first_min']
    tag = 'faster' if r <= 1.0 else ('tie' if r <= FIRST_CALL_NOISE else 'SLOWER')
    if r > FIRST_CALL_NOISE:
      slower.append(k)
    firsts.append(f'{k}: E {res["E"]["first_min"]:.0f} ms vs D {res["D"]["first_min"]:.0f} ms '
                  f'({r:.2f}x, {tag})')
  if results:
    verdict = ('met' if not slower else f'NOT met on {", ".join(slower)}')
    rows.append(f'- first call no slower than BrainState (fastest of {CFG["first_reps"]} fresh builds; '
                f'tie = E/D <= {FIRST_CALL_NOISE:.2f}): {"; ".join(firsts)} -> {verdict}')
  print('## Targets')
  print()
  print('\n'.join(rows))
  print()


if __name__ == '__main__':
  main()
