"""Timing helpers shared by the benchmark scripts (one process, variants interleaved).

Each variant is built by ``build(variant) -> (call, read)``: ``call()`` runs one
step and returns an array to block on; ``read()`` returns the values the
correctness check compares. Building makes fresh functions and fresh models, so
the first call of every build traces and compiles from scratch.
"""

from __future__ import annotations

import os
import statistics
import time


def pin_cpu(cpu=None):
  """Pins this process to one core (core 1 on a 2+ core machine) before JAX starts."""
  if not hasattr(os, 'sched_setaffinity'):
    return None
  if cpu is None:
    cpu = 1 if (os.cpu_count() or 1) > 1 else -1
  if cpu < 0:
    return None
  os.sched_setaffinity(0, {cpu})
  return cpu


def block(x):
  import jax
  return jax.block_until_ready(x)


def first_calls(build, order, reps):
  """Builds each variant fresh ``reps`` times and times its first call (ms).

  Returns ``{variant: (median ms, min ms, (call, read, first output))}``; the
  order of the variants rotates between repetitions.
  """
  times = {v: [] for v in order}
  last = {}
  for r in range(reps):
    for v in order[r % len(order):] + order[:r % len(order)]:
      call, read = build(v)
      t0 = time.perf_counter()
      out = block(call())
      times[v].append((time.perf_counter() - t0) * 1e3)
      last[v] = (call, read, out)
  return {v: (statistics.median(times[v]), min(times[v]), last[v]) for v in order}


def time_round(call, n):
  """Median and min of ``n`` blocked calls, in ms."""
  import jax
  bur = jax.block_until_ready
  ts = []
  for _ in range(n):
    t0 = time.perf_counter_ns()
    bur(call())
    ts.append(time.perf_counter_ns() - t0)
  return statistics.median(ts) / 1e6, min(ts) / 1e6


def steady(calls, rounds, n, seed=7):
  """Interleaved rounds of ``n`` calls per variant, in a random order each round.

  Returns ``{variant: [round median ms, ...]}``.
  """
  import numpy as np
  order = list(calls)
  for v in order:  # settle
    time_round(calls[v], max(2, n // 2))
  per = {v: [] for v in order}
  rng = np.random.RandomState(seed)
  for _ in range(rounds):
    for i in rng.permutation(len(order)):
      v = order[i]
      per[v].append(time_round(calls[v], n)[0])
  return per


def summarize(per, first, ref):
  """Per-variant rows: min/median of round medians, ratio and paired ratio to ``ref``."""
  out = {}
  for v, xs in per.items():
    out[v] = dict(
      min=min(xs), med=statistics.median(xs),
      ratio=min(xs) / min(per[ref]),
      paired=statistics.median([x / a for x, a in zip(xs, per[ref])]),
      first=first[v][0], first_min=first[v][1])
  return out


def table(res, names, ref):
  lines = [
    f'| variant | ms/step (min of round medians) | ratio to {ref} | paired ratio to {ref} '
    f'| ms/step (median) | first call ms, median (min) |',
    '|---|---:|---:|---:|---:|---:|',
  ]
  for v, r in res.items():
    lines.append(f'| {v} {names[v]} | {r["min"]:.2f} | {r["ratio"]:.3f} | {r["paired"]:.3f} | '
                 f'{r["med"]:.2f} | {r["first"]:.0f} ({r["first_min"]:.0f}) |')
  return '\n'.join(lines)
