"""Handwritten digits, trained two ways: BrainState style and Flax NNX / optax style.

A small MLP written as a ``brainstate_nnx.nn.Module`` (one hidden layer made of
``ParamState``s, a stock ``nnx.Linear`` as the read-out) learns scikit-learn's bundled
8x8 digits data set (``sklearn.datasets.load_digits``; nothing is downloaded).

The same initial weights are trained twice, full batch, with the same Adam settings:

* **BrainState style** -- a zero-argument closure under ``brainstate_nnx.transform.jit``;
  gradients from ``brainstate_nnx.transform.grad(loss_fn, params, return_value=True)()``,
  applied by ``brainstate_nnx.optim.OptaxOptimizer``;
* **Flax NNX style** -- ``nnx.Optimizer(model, tx, wrt=nnx.Param)`` and an
  ``@nnx.jit`` ``train_step(model, optimizer, batch)`` using ``nnx.value_and_grad``.

Both give the same loss curve and the same test accuracy. The two curves are saved as a
PNG. Run::

    python examples/digits_classifier.py [--plot PATH] [--steps N] [--lr LR]

Needs scikit-learn and matplotlib (``pip install scikit-learn matplotlib``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import brainstate_nnx as brainstate

DEFAULT_PLOT = os.path.join(tempfile.gettempdir(), 'brainstate_nnx_examples', 'digits_loss.png')


# -- data -------------------------------------------------------------------------
def load_data(seed: int = 0, test_fraction: float = 0.25):
  """Digits scaled to [0, 1], split once (stratified, fixed seed) into train / test."""
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split

  digits = load_digits()
  x = (digits.data / 16.0).astype(np.float32)  # pixel intensities are 0..16
  y = digits.target.astype(np.int32)
  x_tr, x_te, y_tr, y_te = train_test_split(
    x, y, test_size=test_fraction, random_state=seed, stratify=y)
  return (jnp.asarray(x_tr), jnp.asarray(y_tr)), (jnp.asarray(x_te), jnp.asarray(y_te))


# -- model ------------------------------------------------------------------------
class Dense(brainstate.nn.Module):
  """A BrainState-style affine layer: two ``ParamState``s, He-initialised."""

  def __init__(self, din: int, dout: int):
    super().__init__()
    self.w = brainstate.ParamState(brainstate.random.randn(din, dout) * np.sqrt(2.0 / din))
    self.b = brainstate.ParamState(jnp.zeros(dout))

  def __call__(self, x):
    return x @ self.w.value + self.b.value


class DigitsMLP(brainstate.nn.Module):
  """64 pixels -> hidden ReLU layer (brainstate_nnx) -> 10 logits (stock ``nnx.Linear``)."""

  def __init__(self, din: int = 64, hidden: int = 64, num_classes: int = 10, seed: int = 0):
    super().__init__()
    brainstate.random.seed(seed)
    self.hidden = Dense(din, hidden)
    # A Flax layer inside a brainstate_nnx Module: its Variables are adopted, so
    # brainstate_nnx transforms track them and model.states(nnx.Param) lists them.
    self.readout = nnx.Linear(hidden, num_classes, rngs=nnx.Rngs(seed))

  def __call__(self, x):
    return self.readout(jax.nn.relu(self.hidden(x)))


def cross_entropy(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


# -- progress display -------------------------------------------------------------
class Progress:
  """A one-line text progress bar redrawn with ``\\r`` (no dependency)."""

  def __init__(self, total: int, label: str, enabled: bool = True, width: int = 30,
               stream=None):
    self.total, self.label, self.enabled, self.width = total, label, enabled, width
    self.stream = stream or sys.stdout
    self.every = max(1, total // 50)  # redraw ~50 times, not on every step

  def update(self, step: int, loss: float):
    if not self.enabled or (step % self.every and step != self.total):
      return
    done = int(self.width * step / self.total)
    bar = '#' * done + '-' * (self.width - done)
    self.stream.write(f'\r{self.label:<11} [{bar}] {step:4d}/{self.total} loss {loss:.4f}')
    if step == self.total:
      self.stream.write('\n')
    self.stream.flush()


# -- the two training styles ------------------------------------------------------
def train_brainstate_style(model, train, steps, lr, progress=True):
  """BrainState style: zero-argument step under brainstate_nnx.transform.jit."""
  x, y = train
  params = model.states(nnx.Param)  # path-keyed: ('hidden', 'w'), ('readout', 'kernel'), ...
  optimizer = brainstate.optim.OptaxOptimizer(optax.adam(lr), params)

  def loss_fn():
    return cross_entropy(model(x), y)

  @brainstate.transform.jit
  def train_step():
    grads, loss = brainstate.transform.grad(loss_fn, params, return_value=True)()
    optimizer.update(grads)  # grads are keyed like params
    return loss

  bar = Progress(steps, 'brainstate', progress)
  losses = []
  for i in range(steps):
    losses.append(float(train_step()))
    bar.update(i + 1, losses[-1])

  predict = brainstate.transform.jit(lambda inputs: jnp.argmax(model(inputs), axis=-1))
  return losses, predict


def train_nnx_style(model, train, steps, lr, progress=True):
  """Flax NNX style: nnx.Optimizer and an nnx.jit train_step(model, optimizer, batch)."""
  optimizer = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)

  @nnx.jit
  def train_step(model, optimizer, batch):
    x, y = batch

    def loss_fn(model):
      return cross_entropy(model(x), y)

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

  bar = Progress(steps, 'flax nnx', progress)
  losses = []
  for i in range(steps):
    losses.append(float(train_step(model, optimizer, train)))
    bar.update(i + 1, losses[-1])

  predict_jit = nnx.jit(lambda model, inputs: jnp.argmax(model(inputs), axis=-1))
  return losses, lambda inputs: predict_jit(model, inputs)


def accuracy(predict, data) -> float:
  x, y = data
  return float(jnp.mean(predict(x) == y))


def save_plot(path, curves: dict, accuracies: dict):
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig, ax = plt.subplots(figsize=(6, 4))
  styles = {'brainstate': dict(lw=3, alpha=0.5), 'nnx': dict(lw=1.2, ls='--', color='k')}
  names = {'brainstate': 'brainstate_nnx transform.jit + OptaxOptimizer',
           'nnx': 'nnx.jit + nnx.Optimizer'}
  for key, losses in curves.items():
    ax.plot(np.arange(1, len(losses) + 1), losses,
            label=f'{names[key]} (test acc {accuracies[key]:.2%})', **styles[key])
  ax.set_yscale('log')
  ax.set_xlabel('Adam step (full batch)')
  ax.set_ylabel('training cross-entropy')
  ax.set_title('digits MLP: same weights, two training styles')
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


# -- entry point ------------------------------------------------------------------
def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--plot', default=DEFAULT_PLOT,
                 help=f'where to save the loss-curve PNG (default: {DEFAULT_PLOT})')
  p.add_argument('--steps', type=int, default=300, help='full-batch Adam steps (default: 300)')
  p.add_argument('--lr', type=float, default=1e-2, help='Adam learning rate (default: 1e-2)')
  p.add_argument('--hidden', type=int, default=64, help='hidden units (default: 64)')
  p.add_argument('--seed', type=int, default=0, help='split and init seed (default: 0)')
  p.add_argument('--no-progress', action='store_true', help='hide the progress bars')
  return p.parse_args(argv)


def main(argv=None) -> dict:
  """Trains both ways and returns losses, accuracies, the plot path and timings."""
  args = parse_args(argv)
  start = time.perf_counter()
  train, test = load_data(args.seed)
  print(f'digits: {train[0].shape[0]} train / {test[0].shape[0]} test images, '
        f'{train[0].shape[1]} pixels, 10 classes')

  model_bs = DigitsMLP(hidden=args.hidden, seed=args.seed)
  model_nnx = nnx.clone(model_bs)  # same initial weights, independent Variables
  print('trainable parameters:', sorted(model_bs.states(nnx.Param).keys()))

  losses_bs, predict_bs = train_brainstate_style(
    model_bs, train, args.steps, args.lr, not args.no_progress)
  losses_nnx, predict_nnx = train_nnx_style(
    model_nnx, train, args.steps, args.lr, not args.no_progress)

  acc = {'brainstate': accuracy(predict_bs, test), 'nnx': accuracy(predict_nnx, test)}
  train_acc = {'brainstate': accuracy(predict_bs, train), 'nnx': accuracy(predict_nnx, train)}
  curves = {'brainstate': losses_bs, 'nnx': losses_nnx}
  max_rel = float(np.max(np.abs(np.subtract(losses_bs, losses_nnx)) / np.abs(losses_nnx)))
  plot = save_plot(args.plot, curves, acc)
  seconds = time.perf_counter() - start

  print(f'final training loss: brainstate {losses_bs[-1]:.6f}   nnx {losses_nnx[-1]:.6f}'
        f'   (largest relative gap over {args.steps} steps: {max_rel:.1e})')
  print(f'test accuracy:       brainstate {acc["brainstate"]:.2%}   nnx {acc["nnx"]:.2%}')
  if acc['brainstate'] == acc['nnx']:
    print(f'both styles reach the same test accuracy: {acc["nnx"]:.2%}')
  else:
    print('WARNING: the two styles disagree on test accuracy')
  print(f'loss curves saved to {plot}')
  print(f'done in {seconds:.1f} s')

  return {
    'losses': curves,
    'test_accuracy': acc,
    'train_accuracy': train_acc,
    'max_relative_loss_gap': max_rel,
    'plot': plot,
    'seconds': seconds,
    'steps': args.steps,
  }


if __name__ == '__main__':
  main()
