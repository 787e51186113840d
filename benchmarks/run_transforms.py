#!/usr/bin/env python
"""State-aware ``for_loop`` and ``vmap(in_states=...)``: brainstate_nnx vs JAX and BrainState.

Run from the repository root::

    .venv/bin/python benchmarks/run_transforms.py            # full run (about 35 s here)
    .venv/bin/python benchmarks/run_transforms.py --quick    # smoke run (about 15 s)

Variants (all in this one process, interleaved; letters as in run.py):

  A  hand-written JAX on a pure carry / stacked params (the limit)
  D  real ``brainstate`` 0.5.4 transforms over brainstate States
  E  ``brainstate_nnx`` transforms over brainstate_nnx States (ours), the same code as D

Workloads:

  (l) a 4,000-neuron leaky integrate-and-fire network, 1,000 steps per call.
      A: ``jax.jit`` of ``lax.scan`` over a ``(V, spikes)`` carry;
      D/E: ``transform.jit(lambda idx: transform.for_loop(step, idx))`` where
      ``step`` updates HiddenStates ``V`` and ``spikes``.
  (v) an ensemble of 16 MLPs 2->16->1 trained together, one SGD step per call.
      A: ``jax.jit(jax.vmap(step))`` over stacked params;
      D/E: ``transform.jit(transform.vmap(step, in_states=params))`` with the
      ParamStates holding a leading ensemble axis (16, ...).

Helpers (CPU pinning, timing loop, compiled-program summary) come from run.py.
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
  p.add_argument('--quick', action='store_true', help='few rounds and calls: a smoke run')
  p.add_argument('--cpu', type=int, default=None,
                 help='pin the process to this CPU core before JAX starts '
                      '(default: core 1 when the machine has 2+ cores; -1 = do not pin)')
  p.add_argument('--rounds', type=int, default=None,
                 help='override the number of interleaved rounds')
  p.add_argument('--only', default='lv', help='workloads to run, e.g. "l" (default: lv)')
  p.add_argument('--dense', action='store_true',
                 help='LIF recurrent input as a dense 4000x4000 float32 matvec '
                      '(about 2 s per 1,000 steps here) instead of the fixed in-degree gather')
  return p.parse_args(argv)


ARGS = _parse_args()

# run.py parses its own command line, pins the CPU and sets JAX_PLATFORMS when it
# is imported: hand it the options it shares with this script, nothing else.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
_saved_argv = sys.argv
sys.argv = ([os.path.join(_HERE, 'run.py')]
            + (['--quick'] if ARGS.quick else [])
            + (['--cpu', str(ARGS.cpu)] if ARGS.cpu is not None else []))
try:
  import run as R  # noqa: E402  (pins before JAX starts its thread pools)
finally:
  sys.argv = _saved_argv

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import flax  # noqa: E402

import brainstate  # noqa: E402  (the rival, real BrainState)
import brainstate_nnx  # noqa: E402  (ours)

ORDER = ['A', 'D', 'E']
FIRST_CALL_NOISE = R.FIRST_CALL_NOISE

if ARGS.quick:
  CFG = dict(first_reps=3, steady_frac=0.34)
else:
  CFG = dict(first_reps=7, steady_frac=1.0)


# =============================================================================
# (l) LIF network
# =============================================================================

N_NEURONS = 4000
N_STEPS = 1000
K_IN = 80            # fixed in-degree: connection probability 0.02, as the dense W
DT, TAU = 0.1, 10.0  # ms
V_TH, V_RESET = 1.0, 0.0
W_SCALE = 1.0
I_PERIOD = 20.0      # ms, period of the input modulation


def lif_data(dense: bool, seed=0):
  """Connectivity, drive and initial state, shared by all variants (numpy)."""
  rng = np.random.RandomState(seed)
  n, k = N_NEURONS, K_IN
  # 80 % excitatory, 20 % inhibitory presynaptic neurons; inhibition 4x stronger
  exc = np.arange(n) < int(0.8 * n)
  pre = rng.randint(0, n, size=(n, k)).astype(np.int32)
  w = np.where(exc[pre], 0.5, -2.0).astype(np.float32) * rng.uniform(0.5, 1.5, (n, k)).astype(np.float32)
  conn = dict(pre=pre, w=w)
  if dense:
    W = np.zeros((n, n), np.float32)
    np.add.at(W, (np.repeat(np.arange(n), k), pre.ravel()), w.ravel())
    conn = dict(W=W)
  return dict(
    conn=conn,
    i_ext=rng.uniform(0.9, 1.5, n).astype(np.float32),
    v0=rng.uniform(0.0, 1.0, n).astype(np.float32),
    s0=np.zeros(n, np.float32),
    idx=np.arange(N_STEPS, dtype=np.int32),
  )


def recurrent(conn, spikes):
  """Recurrent input from the previous step's spikes: ``W @ spikes``."""
  if 'W' in conn:
    return conn['W'] @ spikes
  return jnp.sum(spikes[conn['pre']] * conn['w'], axis=1)


def lif_update(v, spikes, conn, i_ext, i):
  """One Euler step of V' = (-V + I_ext(t) + w_scale * W @ spikes_prev) / tau."""
  t = i.astype(jnp.float32) * DT
  drive = i_ext * (1.0 + 0.2 * jnp.sin(2.0 * jnp.pi * t / I_PERIOD))
  v = v + DT / TAU * (-v + drive + W_SCALE * recurrent(conn, spikes))
  fired = v >= V_TH
  return jnp.where(fired, V_RESET, v), fired.astype(jnp.float32)


def build_lif(variant, spec):
  """Returns ``(call, read, trace)``; ``call()`` runs 1,000 steps, returns the spike counts.

  ``trace()`` traces the step without compiling or running it (``.trace`` of
  ``jax.jit`` / brainstate's jit / ours); every build is fresh: new functions,
  new States, so its first call traces and compiles from scratch.
  """
  d = spec['data']
  idx = jnp.asarray(d['idx'])

  if variant == 'A':
    @jax.jit
    def run(v, s, conn, i_ext, idx):
      def body(carry, i):
        v, s = lif_update(*carry, conn, i_ext, i)
        return (v, s), s.sum()
      (v, s), counts = jax.lax.scan(body, (v, s), idx)
      return v, s, counts

    conn = {k: jnp.asarray(a) for k, a in d['conn'].items()}
    i_ext = jnp.asarray(d['i_ext'])
    box = [jnp.asarray(d['v0']), jnp.asarray(d['s0'])]

    def call():
      box[0], box[1], counts = run(box[0], box[1], conn, i_ext, idx)
      return counts
    return (call, lambda: [np.asarray(box[0]), np.asarray(box[1])],
            lambda: run.trace(box[0], box[1], conn, i_ext, idx))

  lib = brainstate if variant == 'D' else brainstate_nnx
  Net = lif_class(lib)
  net = Net(d)

  def step(i):
    net.update(i)
    return net.spikes.value.sum()

  run = lib.transform.jit(lambda idx: lib.transform.for_loop(step, idx))
  call = lambda: run(idx)  # noqa: E731
  read = lambda: [np.asarray(net.V.value), np.asarray(net.spikes.value)]  # noqa: E731
  return call, read, lambda: run.trace(idx)


_LIF_CLASSES = {}


def lif_class(lib):
  """The same network class for ``brainstate`` and ``brainstate_nnx``."""
  if lib not in _LIF_CLASSES:
    class LIFNet(lib.nn.Module):
      def __init__(self, d):
        super().__init__()
        # connectivity and drive: read-only States; V and spikes: HiddenStates
        self.conn = {k: lib.State(jnp.asarray(a)) for k, a in d['conn'].items()}
        self.i_ext = lib.State(jnp.asarray(d['i_ext']))
        self.V = lib.HiddenState(jnp.asarray(d['v0']))
        self.spikes = lib.HiddenState(jnp.asarray(d['s0']))

      def update(self, i):
        conn = {k: s.value for k, s in self.conn.items()}
        self.V.value, self.spikes.value = lif_update(
          self.V.value, self.spikes.value, conn, self.i_ext.value, i)

    _LIF_CLASSES[lib] = LIFNet
  return _LIF_CLASSES[lib]


def check_lif(built):
  """Same spike counts (exactly) and final V / spikes after two calls of 1,000 steps."""
  outs = {}
  for v in ORDER:
    call, read, first, _ = built[v]
    second = np.asarray(R._block(call()))
    outs[v] = (np.asarray(first), second, read())
  problems = []
  c1, c2, (va, sa) = outs['A']
  for v in ORDER[1:]:
    d1, d2, (vv, sv) = outs[v]
    if not (np.array_equal(d1, c1) and np.array_equal(d2, c2)):
      bad = np.nonzero(np.concatenate([d1, d2]) != np.concatenate([c1, c2]))[0]
      problems.append(f'{v}: spike counts differ from A at {len(bad)} of {2 * N_STEPS} steps '
                      f'(first at step {bad[0]}; totals {int(d1.sum() + d2.sum())} vs '
                      f'{int(c1.sum() + c2.sum())})')
    if not np.array_equal(sv, sa):
      problems.append(f'{v}: final spikes differ from A in {int((sv != sa).sum())} neurons')
    if not np.allclose(vv, va, rtol=1e-5, atol=1e-5):
      problems.append(f'{v}: final V differs from A, max |diff| {np.abs(vv - va).max():.3g}')
  total = int(c1.sum() + c2.sum())
  rate = total / (N_NEURONS * 2 * N_STEPS * DT * 1e-3)
  msg = (f'spike counts of all {2 * N_STEPS} steps (2 calls) identical in A, D, E: '
         f'{int(c1.sum())} + {int(c2.sum())} spikes ({rate:.1f} Hz mean rate); '
         f'final V and spikes identical' if not problems else '; '.join(problems))
  return not problems, msg


# =============================================================================
# (v) ensemble of 16 MLPs trained with vmap over states
# =============================================================================

N_MEMBERS = 16
ENS_SIZES = [2, 16, 1]
ENS_BATCH = 64
ENS_LR = 0.1


def ens_data(seed=3):
  members = [R.init_weights(ENS_SIZES, 100 + m) for m in range(N_MEMBERS)]
  ws = [np.stack(ps) for ps in zip(*members)]  # [w0 (16,2,16), b0 (16,16), w1 (16,16,1), b1 (16,1)]
  rng = np.random.RandomState(seed)
  x = rng.uniform(-2, 2, (ENS_BATCH, 2)).astype(np.float32)
  y = (np.sin(x[:, :1]) * np.cos(x[:, 1:])).astype(np.float32)
  return dict(ws=ws, x=jnp.asarray(x), y=jnp.asarray(y))


def build_ensemble(variant, spec):
  d = spec['data']
  x, y = d['x'], d['y']

  if variant == 'A':
    def member(p, x, y):
      loss, g = jax.value_and_grad(lambda p: R.mse(R.forward(p, x, jnp.tanh), y))(p)
      return [a - ENS_LR * b for a, b in zip(p, g)], loss

    step = jax.jit(jax.vmap(member, in_axes=(0, None, None)))
    box = [[jnp.asarray(w) for w in d['ws']]]

    def call():
      box[0], losses = step(box[0], x, y)
      return losses
    return (call, lambda: [np.asarray(v) for v in box[0]],
            lambda: step.trace(box[0], x, y))

  lib = brainstate if variant == 'D' else brainstate_nnx
  LibMLP, _ = R.lib_classes(lib)
  model = LibMLP(d['ws'], jnp.tanh)  # ParamStates with a leading ensemble axis
  params = model.states(lib.ParamState)
  keys = list(params.keys())

  def loss_fn(x, y):
    return R.mse(model(x), y)

  def member_step(x, y):
    grads, loss = lib.transform.grad(loss_fn, params, return_value=True)(x, y)
    for k in keys:
      params[k].value -= ENS_LR * grads[k]
    return loss

  step = lib.transform.jit(
    lib.transform.vmap(member_step, in_states=params, in_axes=(None, None)))
  call = lambda: step(x, y)  # noqa: E731
  read = lambda: [np.asarray(getattr(model, k).value) for k in model.names]  # noqa: E731
  return call, read, lambda: step.trace(x, y)


def check_ensemble(built, steps=3):
  outs = {}
  for v in ORDER:
    call, read, first, _ = built[v]
    seq = [np.asarray(first)] + [np.asarray(R._block(call())) for _ in range(steps - 1)]
    outs[v] = (np.array(seq), read())
  ref_seq, ref_vals = outs['A']
  problems = []
  for v in ORDER[1:]:
    seq, vals = outs[v]
    if not np.allclose(seq, ref_seq, rtol=2e-5, atol=1e-6):
      problems.append(f'{v}: losses differ from A, max |diff| {np.abs(seq - ref_seq).max():.3g}')
    for name, a, b in zip(R.NAMES(len(vals) // 2), vals, ref_vals):
      if not np.allclose(a, b, rtol=2e-5, atol=1e-6):
        problems.append(f'{v}: param {name} differs from A, max |diff| {np.abs(a - b).max():.3g}')
  msg = (f'per-member losses of steps 1..{steps} ({N_MEMBERS} members) and final params agree '
         f'(rtol 2e-5; A mean loss {", ".join(f"{l:.5f}" for l in ref_seq.mean(1))}; '
         f'member losses at step 1 range {ref_seq[0].min():.4f}..{ref_seq[0].max():.4f})'
         if not problems else '; '.join(problems))
  return not problems, msg


# =============================================================================
# Workloads and measurement
# =============================================================================

def workloads():
  out = []
  if 'l' in ARGS.only:
    dense = ARGS.dense
    conn = (f'dense W {N_NEURONS}x{N_NEURONS} float32 (p = 0.02 nonzeros), W @ spikes' if dense
            else f'fixed in-degree K = {K_IN} (p = 0.02), gather spikes[pre] * w, sum')
    out.append(dict(
      key='l', title=f'(l) LIF network, {N_NEURONS} neurons, {N_STEPS} steps per call, {conn}',
      names={'A': 'jax.jit(lax.scan) pure carry',
             'D': 'brainstate jit(for_loop) over HiddenStates',
             'E': 'brainstate_nnx jit(for_loop) over HiddenStates'},
      build=build_lif, check=check_lif, spec=dict(data=lif_data(dense)),
      rounds=5 if dense else 15, calls=1 if dense else 2, target=1.05))
  if 'v' in ARGS.only:
    out.append(dict(
      key='v', title=(f'(v) ensemble of {N_MEMBERS} MLPs {"->".join(map(str, ENS_SIZES))}, '
                      f'batch {ENS_BATCH} (shared), tanh, MSE, SGD lr {ENS_LR}, one step per call'),
      names={'A': 'jax.jit(jax.vmap(step)) stacked params',
             'D': 'brainstate jit(vmap(step, in_states=params))',
             'E': 'brainstate_nnx jit(vmap(step, in_states=params))'},
      build=build_ensemble, check=check_ensemble, spec=dict(data=ens_data()),
      rounds=30, calls=150, target=1.20))
  return out


def first_calls(wl):
  """Fresh build + timed first call, ``first_reps`` times per variant, order rotated."""
  times = {v: [] for v in ORDER}
  last = {}
  for r in range(CFG['first_reps']):
    order = ORDER[r % len(ORDER):] + ORDER[:r % len(ORDER)]
    for v in order:
      call, read, trace = wl['build'](v, wl['spec'])
      t0 = time.perf_counter()
      out = R._block(call())
      times[v].append((time.perf_counter() - t0) * 1e3)
      last[v] = (call, read, out, trace)
  return {v: (statistics.median(times[v]), min(times[v]), last[v]) for v in ORDER}


def aot_times(wl):
  """Fresh build, then ``trace()`` and ``.lower().compile()`` timed, without running.

  The first call minus its execution: what the target on the first call is
  about, without the noise of executing the step (for the LIF network the
  execution is half of the first call, and in the dense variant 90 %).
  Returns ``{variant: (trace median, trace min, trace+compile median,
  trace+compile min)}`` in ms over ``first_reps`` builds, order rotated.
  """
  tr = {v: [] for v in ORDER}
  tc = {v: [] for v in ORDER}
  for r in range(CFG['first_reps']):
    order = ORDER[r % len(ORDER):] + ORDER[:r % len(ORDER)]
    for v in order:
      trace = wl['build'](v, wl['spec'])[2]
      t0 = time.perf_counter()
      traced = trace()
      t1 = time.perf_counter()
      traced.lower().compile()
      t2 = time.perf_counter()
      tr[v].append((t1 - t0) * 1e3)
      tc[v].append((t2 - t0) * 1e3)
  med = statistics.median
  return {v: (med(tr[v]), min(tr[v]), med(tc[v]), min(tc[v])) for v in ORDER}


def steady(wl, built):
  rounds = ARGS.rounds or max(3, round(wl['rounds'] * CFG['steady_frac']))
  calls = wl['calls'] if wl['calls'] < 10 else max(3, round(wl['calls'] * (0.5 if ARGS.quick else 1)))
  fns = {v: built[v][0] for v in ORDER}
  for v in ORDER:  # settle
    R.time_round(fns[v], max(1, calls // 4))
  per = {v: [] for v in ORDER}
  mins = {v: [] for v in ORDER}
  rng = np.random.RandomState(7)
  for _ in range(rounds):
    for i in rng.permutation(len(ORDER)):
      v = ORDER[i]
      med, lo = R.time_round(fns[v], calls)
      per[v].append(med)
      mins[v].append(lo)
  return per, mins, rounds, calls


def fmt_table(wl, res):
  big = res['A']['min'] >= 1e4
  unit = 'ms' if big else 'µs'
  sc = 1e3 if big else 1.0
  a = res['A']['min']
  lines = [
    f'| variant | {unit}/call (min of round medians) | ratio to A | paired ratio to A '
    f'| {unit}/call (median of round medians) | fastest call {unit} '
    '| first call ms, median (min) | trace + compile ms, median (min) '
    '| trace only ms, median (min) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for v in ORDER:
    r = res[v]
    lines.append(
      f'| {v} {wl["names"][v]} | {r["min"] / sc:.{2 if big else 1}f} | {r["min"] / a:.3f} | '
      f'{r["paired_ratio"]:.3f} | {r["med"] / sc:.{2 if big else 1}f} | '
      f'{r["best"] / sc:.{2 if big else 1}f} | {r["first"]:.0f} ({r["first_min"]:.0f}) | '
      f'{r["aot"]:.0f} ({r["aot_min"]:.0f}) | {r["trace"]:.1f} ({r["trace_min"]:.1f}) |')
  return '\n'.join(lines)


def main():
  warnings.simplefilter('ignore', DeprecationWarning)
  t_start = time.perf_counter()
  print('# brainstate_nnx transforms benchmark: for_loop and vmap over states')
  print()
  print(f'- python {platform.python_version()}, jax {jax.__version__}, flax {flax.__version__}, '
        f'brainstate {brainstate.__version__}, brainstate_nnx {brainstate_nnx.__version__}')
  print(f'- backend: {jax.default_backend()} ({jax.devices()[0].device_kind}); '
        f'{os.cpu_count()} CPU cores; '
        + (f'process pinned to core {R.PINNED}' if R.PINNED is not None else 'not pinned')
        + (f'; load average {os.getloadavg()[0]:.1f}' if hasattr(os, 'getloadavg') else ''))
  print(f'- mode: {"--quick" if ARGS.quick else "full"}; first call, trace + compile and trace '
        f'only: median and min over {CFG["first_reps"]} fresh builds per variant')
  print()
  R._block(jax.jit(lambda a: jnp.tanh(a @ a).sum())(jnp.ones((4, 4))))  # JAX start-up

  results, failed = {}, []
  for wl in workloads():
    t0 = time.perf_counter()
    first = first_calls(wl)
    built = {v: first[v][2] for v in ORDER}
    ok, msg = wl['check'](built)
    if not ok:
      failed.append(wl['key'])
    prog = {v: R._program_summary(built[v][3]().lower()) for v in ('A', 'E')}
    same = prog['A'][1:] == prog['E'][1:]
    prog_msg = (f'compiled XLA programs A vs E: {prog["A"][1]} vs {prog["E"][1]} HLO instructions '
                f'({"identical op histogram" if same else "DIFFERENT op histogram"})')
    if not same:
      ha, he = dict(prog['A'][2]), dict(prog['E'][2])
      diff = {k: (ha.get(k, 0), he.get(k, 0)) for k in sorted(set(ha) | set(he))
              if ha.get(k, 0) != he.get(k, 0)}
      prog_msg += f' (op: A vs E counts {diff})'
    per, mins, rounds, calls = steady(wl, built)
    del built
    aot = aot_times(wl)
    res = {v: dict(min=min(per[v]), med=statistics.median(per[v]), best=min(mins[v]),
                   first=first[v][0], first_min=first[v][1],
                   trace=aot[v][0], trace_min=aot[v][1], aot=aot[v][2], aot_min=aot[v][3],
                   paired_ratio=statistics.median([x / a for x, a in zip(per[v], per['A'])]))
           for v in ORDER}
    results[wl['key']] = (wl, res)
    print(f'## {wl["title"]}')
    print()
    print(f'check: {"OK" if ok else "FAILED"}: {msg}. {prog_msg}. '
          f'{rounds} rounds x {calls} calls per variant, {time.perf_counter() - t0:.0f} s')
    print()
    print(fmt_table(wl, res))
    print()

  _targets(results, failed)
  print(f'total time {time.perf_counter() - t_start:.0f} s')
  return 1 if failed else 0


def _targets(results, failed):
  rows = []

  def ok(b):
    return 'met' if b else 'NOT met'

  for key, (wl, res) in results.items():
    r = res['E']['min'] / res['A']['min']
    r2 = res['E']['paired_ratio']
    rd = res['D']['min'] / res['A']['min']
    rows.append(f'- ({key}) E within {round((wl["target"] - 1) * 100)} % of A: E/A = {r:.3f} '
                f'(min of round medians), {r2:.3f} (paired); D/A = {rd:.3f} -> '
                f'{ok(r <= wl["target"])}'
                + ('' if r <= wl['target'] or r2 > wl['target'] else ' (met on the paired ratio)'))
  for label, key_min in (('trace + compile', 'aot_min'), ('first call incl. its run', 'first_min')):
    parts, slower = [], []
    for key, (wl, res) in results.items():
      r = res['E'][key_min] / res['D'][key_min]
      tag = ('SLOWER' if r > FIRST_CALL_NOISE else
             'faster' if r < 1 / FIRST_CALL_NOISE else 'tie')
      if r > FIRST_CALL_NOISE:
        slower.append(key)
      parts.append(f'{key}: E {res["E"][key_min]:.0f} ms vs D {res["D"][key_min]:.0f} ms '
                   f'({r:.2f}x, {tag}; A {res["A"][key_min]:.0f} ms)')
    if results:
      rows.append(f'- {label} no slower than BrainState (fastest of {CFG["first_reps"]} fresh '
                  f'builds; tie = E/D <= {FIRST_CALL_NOISE:.2f}): {"; ".join(parts)} -> '
                  + ('met' if not slower else f'NOT met on {", ".join(slower)}'))
  rows.append('- correctness: ' + ('all checks passed' if not failed
                                   else f'FAILED on {", ".join(failed)}'))
  print('## Targets')
  print()
  print('\n'.join(rows))
  print()


if __name__ == '__main__':
  sys.exit(main())
