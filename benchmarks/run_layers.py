#!/usr/bin/env python
"""Training steps of models built from library layers: brainstate_nnx vs Flax nnx vs BrainState.

Run from the repository root::

    .venv/bin/python benchmarks/run_layers.py           # full run (~3-4 minutes)
    .venv/bin/python benchmarks/run_layers.py --quick   # smoke run

Workloads (one optax adam(1e-3) step per call, everything in one process):

  cnn   Conv2d-BatchNorm2d-ReLU-MaxPool2d x2 + Linear, batch 128, 28x28x1 inputs,
        10 classes, BatchNorm in training mode (running statistics updated)
  lstm  LSTMCell(28 -> 256) over 100 steps, batch 64, Linear(256 -> 10) on the
        last hidden state

Variants (same initial weights, same data; the check asserts equal losses):

  A  hand-written pure ``jax.jit`` step (lax.conv / lax.scan, params in -> out)
  B  the same network in Flax nnx layers, ``nnx.jit_partial(graph=False)``
  C  the same nnx layers, ``jax.jit`` over ``nnx.split`` state (merge/split inside)
  D  real BrainState layers, ``brainstate.transform.jit`` + ``transform.grad``
  E  brainstate_nnx layers, the same code as D (``import brainstate_nnx as brainstate``)

Targets (issue 9): E's step time within 5 % of the fastest of A, B, C; E's first
call no slower than D's.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import _harness as H  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
p.add_argument('--quick', action='store_true', help='few rounds: a smoke run')
p.add_argument('--cpu', type=int, default=None, help='core to pin to (-1: do not pin)')
p.add_argument('--only', default='cnn,lstm')
p.add_argument('--variants', default='ABCDE', help='subset of variants (A is needed)')
ARGS = p.parse_args()
PINNED = H.pin_cpu(ARGS.cpu)
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
import flax  # noqa: E402
from flax import nnx  # noqa: E402

import brainstate  # noqa: E402  (the rival)
import brainstate_nnx  # noqa: E402  (ours)

NAMES = {
  'A': 'jax.jit pure fn (hand-written)',
  'B': 'Flax nnx layers, nnx.jit_partial(graph=False)',
  'C': 'Flax nnx layers, jax.jit over nnx.split',
  'D': 'BrainState layers, brainstate.transform.jit',
  'E': 'brainstate_nnx layers, transform.jit (ours)',
}
ORDER = [v for v in NAMES if v in ARGS.variants]
FIRST_REPS = 2 if ARGS.quick else 5
ROUNDS = 3 if ARGS.quick else 8
OPT = optax.adam(1e-3)


def xent(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def adam_step(loss_of, params, opt_state):
  loss, g = jax.value_and_grad(loss_of, has_aux=True)(params)
  upd, opt_state = OPT.update(g, opt_state, params)
  return optax.apply_updates(params, upd), opt_state, loss


# =============================================================================
# CNN
# =============================================================================

def cnn_data():
  rng = np.random.RandomState(0)
  w = dict(c1=rng.randn(3, 3, 1, 32) / 3.0, c2=rng.randn(3, 3, 32, 64) / np.sqrt(9 * 32),
           fw=rng.randn(7 * 7 * 64, 10) / np.sqrt(7 * 7 * 64), fb=np.zeros(10))
  w = {k: jnp.asarray(v, jnp.float32) for k, v in w.items()}
  x = jnp.asarray(rng.randn(128, 28, 28, 1), jnp.float32)
  y = jnp.asarray(rng.randint(0, 10, 128), jnp.int32)
  return w, x, y


def _pool(x):
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), 'VALID')


def _bn(x, scale, bias, rm, rv):
  mean = x.mean((0, 1, 2))
  var = jnp.maximum(0., (x * x).mean((0, 1, 2)) - mean * mean)
  y = (x - mean) * jax.lax.rsqrt(var + 1e-5) * scale + bias
  return y, 0.99 * rm + 0.01 * mean, 0.99 * rv + 0.01 * var


def build_cnn(v, data):
  w, x, y = data
  if v == 'A':
    conv = lambda a, k: jax.lax.conv_general_dilated(  # noqa: E731
      a, k, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    params = dict(c1=w['c1'], c2=w['c2'], s1=jnp.ones(32), b1=jnp.zeros(32),
                  s2=jnp.ones(64), b2=jnp.zeros(64), fw=w['fw'], fb=w['fb'])
    stats = dict(m1=jnp.zeros(32), v1=jnp.ones(32), m2=jnp.zeros(64), v2=jnp.ones(64))

    @jax.jit
    def step(params, stats, opt_state, x, y):
      def loss_of(p):
        h, m1, v1 = _bn(conv(x, p['c1']), p['s1'], p['b1'], stats['m1'], stats['v1'])
        h = _pool(jax.nn.relu(h))
        h, m2, v2 = _bn(conv(h, p['c2']), p['s2'], p['b2'], stats['m2'], stats['v2'])
        h = _pool(jax.nn.relu(h)).reshape(x.shape[0], -1)
        return xent(h @ p['fw'] + p['fb'], y), dict(m1=m1, v1=v1, m2=m2, v2=v2)
      (loss, new_stats), g = jax.value_and_grad(loss_of, has_aux=True)(params)
      upd, opt_state = OPT.update(g, opt_state, params)
      return optax.apply_updates(params, upd), new_stats, opt_state, loss

    box = [params, stats, OPT.init(params)]

    def call():
      box[0], box[1], box[2], loss = step(*box, x, y)
      return loss
    return call, lambda: np.asarray(box[1]['m2'])

  if v in ('B', 'C'):
    class NnxCNN(nnx.Module):
      def __init__(self, rngs):
        self.c1 = nnx.Conv(1, 32, (3, 3), use_bias=False, rngs=rngs)
        self.b1 = nnx.BatchNorm(32, rngs=rngs)
        self.c2 = nnx.Conv(32, 64, (3, 3), use_bias=False, rngs=rngs)
        self.b2 = nnx.BatchNorm(64, rngs=rngs)
        self.fc = nnx.Linear(7 * 7 * 64, 10, rngs=rngs)

      def __call__(self, x):
        h = _pool(nnx.relu(self.b1(self.c1(x))))
        h = _pool(nnx.relu(self.b2(self.c2(h))))
        return self.fc(h.reshape(x.shape[0], -1))

    model = NnxCNN(nnx.Rngs(0))
    model.c1.kernel[...] = w['c1']
    model.c2.kernel[...] = w['c2']
    model.fc.kernel[...] = w['fw']
    model.fc.bias[...] = w['fb']
    return _build_nnx(v, model, x, y, lambda: np.asarray(model.b2.mean[...]))

  lib = brainstate if v == 'D' else brainstate_nnx
  nn = lib.nn

  class LibCNN(nn.Module):
    def __init__(self):
      super().__init__()
      self.c1 = nn.Conv2d((28, 28, 1), 32, 3)
      self.b1 = nn.BatchNorm2d((28, 28, 32))
      self.c2 = nn.Conv2d((14, 14, 32), 64, 3)
      self.b2 = nn.BatchNorm2d((14, 14, 64))
      self.pool = nn.MaxPool2d(2, 2, channel_axis=-1)
      self.fc = nn.Linear(7 * 7 * 64, 10)

    def __call__(self, x):
      h = self.pool(nn.relu(self.b1(self.c1(x))))
      h = self.pool(nn.relu(self.b2(self.c2(h))))
      return self.fc(h.reshape(x.shape[0], -1))

  model = LibCNN()
  model.c1.weight.value = {'weight': w['c1']}
  model.c2.weight.value = {'weight': w['c2']}
  model.fc.weight.value = {'weight': w['fw'], 'bias': w['fb']}
  return _build_lib(lib, model, x, y, lambda: np.asarray(model.b2.running_mean.value).ravel())


# =============================================================================
# LSTM
# =============================================================================

T, B, F, HID = 100, 64, 28, 256


def lstm_data():
  rng = np.random.RandomState(1)
  w = dict(W=rng.randn(F + HID, 4 * HID) / np.sqrt(F + HID), b=np.zeros(4 * HID),
           fw=rng.randn(HID, 10) / np.sqrt(HID), fb=np.zeros(10))
  w = {k: jnp.asarray(v, jnp.float32) for k, v in w.items()}
  xs = jnp.asarray(rng.randn(T, B, F), jnp.float32)
  y = jnp.asarray(rng.randint(0, 10, B), jnp.int32)
  return w, xs, y


def _lstm_step(W, b, carry, x):
  """BrainState's LSTMCell: one fused matmul, gates [i, g, f, o], forget bias +1."""
  c, h = carry
  i, g, f, o = jnp.split(jnp.concatenate([x, h], -1) @ W + b, 4, axis=-1)
  c = jax.nn.sigmoid(f + 1.) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  h = jax.nn.sigmoid(o) * jnp.tanh(c)
  return (c, h), h


def _to_flax_gates(a):
  """[i, g, f, o] (BrainState) -> [i, f, g, o] (Flax) along the last axis."""
  i, g, f, o = jnp.split(a, 4, axis=-1)
  return jnp.concatenate([i, f, g, o], -1)


def build_lstm(v, data):
  w, xs, y = data
  if v == 'A':
    params = dict(w)

    @jax.jit
    def step(params, opt_state, xs, y):
      def loss_of(p):
        zeros = jnp.zeros((xs.shape[1], HID))
        _, hs = jax.lax.scan(lambda c, x: _lstm_step(p['W'], p['b'], c, x), (zeros, zeros), xs)
        return xent(hs[-1] @ p['fw'] + p['fb'], y), None
      params, opt_state, (loss, _) = adam_step(loss_of, params, opt_state)
      return params, opt_state, loss

    box = [params, OPT.init(params)]

    def call():
      box[0], box[1], loss = step(*box, xs, y)
      return loss
    return call, lambda: np.asarray(box[0]['fb'])

  if v in ('B', 'C'):
    class NnxRNN(nnx.Module):
      def __init__(self, rngs):
        self.cell = nnx.OptimizedLSTMCell(F, HID, rngs=rngs)
        self.fc = nnx.Linear(HID, 10, rngs=rngs)

      def __call__(self, xs):
        zeros = jnp.zeros((xs.shape[1], HID))
        _, hs = jax.lax.scan(lambda c, x: self.cell(c, x), (zeros, zeros), xs)
        return self.fc(hs[-1])

    model = NnxRNN(nnx.Rngs(0))
    Wf = _to_flax_gates(w['W'])
    bf = _to_flax_gates(w['b'] + jnp.concatenate([jnp.zeros(2 * HID), jnp.ones(HID), jnp.zeros(HID)]))
    model.cell.dense_i.kernel[...] = Wf[:F]
    model.cell.dense_h.kernel[...] = Wf[F:]
    model.cell.dense_h.bias[...] = bf
    model.fc.kernel[...] = w['fw']
    model.fc.bias[...] = w['fb']
    return _build_nnx(v, model, xs, y, lambda: np.asarray(model.fc.bias[...]))

  lib = brainstate if v == 'D' else brainstate_nnx
  nn = lib.nn

  class LibRNN(nn.Module):
    def __init__(self):
      super().__init__()
      self.cell = nn.LSTMCell(F, HID)
      self.fc = nn.Linear(HID, 10)

    def __call__(self, xs):
      self.cell.reset_state(xs.shape[1])
      hs = lib.transform.for_loop(self.cell, xs)
      return self.fc(hs[-1])

  model = LibRNN()
  nn.init_all_states(model, batch_size=B)
  model.cell.W.weight.value = {'weight': w['W'], 'bias': w['b']}
  model.fc.weight.value = {'weight': w['fw'], 'bias': w['fb']}
  return _build_lib(lib, model, xs, y, lambda: np.asarray(model.fc.weight.value['bias']))


# =============================================================================
# The shared B/C and D/E training steps
# =============================================================================

def _build_nnx(v, model, x, y, read):
  optimizer = nnx.Optimizer(model, OPT, wrt=nnx.Param, graph=False)

  def step(model, optimizer, x, y):
    loss, g = nnx.value_and_grad(lambda m: xent(m(x), y), graph=False)(model)
    optimizer.update(model, g)
    return loss

  if v == 'B':
    jstep = nnx.jit_partial(step, model, optimizer, graph=False)
    return (lambda: jstep(x, y)), read

  graphdef, state = nnx.split((model, optimizer))

  @jax.jit
  def pure(state, x, y):
    m, o = nnx.merge(graphdef, state)
    loss = step(m, o, x, y)
    return nnx.state((m, o)), loss

  box = [state]

  def call():
    box[0], loss = pure(box[0], x, y)
    return loss

  def read_c():
    nnx.update((model, optimizer), box[0])
    return read()
  return call, read_c


def _build_lib(lib, model, x, y, read):
  lib.environ.set(fit=True)
  params = model.states(lib.ParamState)
  keys = list(params.keys())
  opt_state = lib.LongTermState(OPT.init({k: params[k].value for k in keys}))

  @lib.transform.jit
  def step(x, y):
    grads, loss = lib.transform.grad(lambda: xent(model(x), y), params, return_value=True)()
    pv = {k: params[k].value for k in keys}
    upd, opt_state.value = OPT.update({k: grads[k] for k in keys}, opt_state.value, pv)
    new = optax.apply_updates(pv, upd)
    for k in keys:
      params[k].value = new[k]
    return loss

  return (lambda: step(x, y)), read


# =============================================================================

WORKLOADS = {
  'cnn': dict(title='CNN: (Conv2d-BatchNorm2d-ReLU-MaxPool2d) x2 + Linear, batch 128, 28x28x1, adam',
              build=build_cnn, data=cnn_data, calls=3),
  'lstm': dict(title='LSTM: LSTMCell(28->256) x 100 steps, batch 64, + Linear, adam',
               build=build_lstm, data=lstm_data, calls=2),
}


def check(key, built, steps=3):
  seqs = {}
  for v in ORDER:
    call, read, first = built[v]
    seq = [float(first)] + [float(H.block(call())) for _ in range(steps - 1)]
    seqs[v] = (np.array(seq), read())
  ref, ref_read = seqs['A']
  for v in ORDER[1:]:
    np.testing.assert_allclose(seqs[v][0], ref, rtol=1e-3, err_msg=f'{key}: losses of {v} vs A')
    np.testing.assert_allclose(seqs[v][1], ref_read, rtol=1e-3, atol=1e-5,
                               err_msg=f'{key}: states of {v} vs A')
  return ', '.join(f'{l:.5f}' for l in ref)


def main():
  warnings.simplefilter('ignore', DeprecationWarning)
  t_start = time.perf_counter()
  print('# brainstate_nnx layer benchmark')
  print()
  print(f'- python {platform.python_version()}, jax {jax.__version__}, flax {flax.__version__}, '
        f'optax {optax.__version__}, brainstate {brainstate.__version__}, '
        f'brainstate_nnx {brainstate_nnx.__version__}')
  print(f'- backend: {jax.default_backend()}; {os.cpu_count()} CPU cores; '
        + (f'process pinned to core {PINNED}' if PINNED is not None else 'not pinned'))
  print(f'- first call: median (min) over {FIRST_REPS} fresh builds per variant; steady state: '
        f'{ROUNDS} interleaved rounds')
  print()
  H.block(jax.jit(lambda a: jnp.tanh(a @ a).sum())(jnp.ones((4, 4))))
  verdicts = []
  for key in ARGS.only.split(','):
    wl = WORKLOADS[key]
    data = wl['data']()
    first = H.first_calls(lambda v: wl['build'](v, data), ORDER, FIRST_REPS)
    built = {v: first[v][2] for v in ORDER}
    losses = check(key, built)
    per = H.steady({v: built[v][0] for v in ORDER}, ROUNDS, wl['calls'])
    res = H.summarize(per, first, 'A')
    print(f'## {wl["title"]}')
    print()
    print(f'check: losses of steps 1..3 agree in every variant (A: {losses})')
    print()
    print(H.table(res, NAMES, 'A'))
    print()
    if not {'A', 'B', 'C', 'D', 'E'} <= set(ORDER):
      continue
    fastest = min(('A', 'B', 'C'), key=lambda v: res[v]['min'])
    r = res['E']['min'] / res[fastest]['min']
    rf = res['E']['first_min'] / res['D']['first_min']
    verdicts.append(
      f'- {key}: E / fastest Flax-JAX variant ({fastest}) = {r:.3f} '
      f'-> {"met" if r <= 1.05 else "NOT met"} (<= 1.05); '
      f'first call E / D = {rf:.2f} ({res["E"]["first_min"]:.0f} vs {res["D"]["first_min"]:.0f} ms) '
      f'-> {"met" if rf <= 1.0 else ("tie" if rf <= 1.05 else "NOT met")}')
  print('## Targets')
  print()
  print('\n'.join(verdicts))
  print()
  print(f'total time {time.perf_counter() - t_start:.0f} s')


if __name__ == '__main__':
  main()
