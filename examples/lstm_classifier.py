"""An LSTM sequence classifier, written the way BrainState's documentation writes one.

The program is plain BrainState code. Run it as it is under brainstate_nnx::

    python examples/lstm_classifier.py

or under real BrainState 0.5.4 (the numbers printed are the same)::

    python examples/lstm_classifier.py --brainstate

Task: each sequence is 20 steps of 4 noisy channels; the label says whether the
first channel drifts up or down. An ``LSTMCell`` reads the sequence one step at
a time (``transform.for_loop``), and a ``Sequential(Dropout, Linear)`` head
classifies the last hidden state. The hidden states are created for the batch
with ``nn.init_all_states(model, batch_size=...)``; dropout is active only
under ``environ.context(fit=True)``.
"""

import sys

import jax
import jax.numpy as jnp

if '--brainstate' in sys.argv:
  import brainstate
else:
  import brainstate_nnx as brainstate

brainstate.environ.set(dt=0.1)

N_IN, N_HIDDEN, N_OUT = 4, 32, 2
SEQ_LEN, BATCH = 20, 16


class LSTMClassifier(brainstate.nn.Module):
  def __init__(self, n_in, n_hidden, n_out):
    super().__init__()
    self.rnn = brainstate.nn.LSTMCell(n_in, n_hidden)
    self.head = brainstate.nn.Sequential(
      brainstate.nn.Dropout(0.8),
      brainstate.nn.Linear(n_hidden, n_out),
    )

  def update(self, x):
    return self.rnn(x)

  def __call__(self, xs):
    # xs: [time, batch, features]; run the cell over time, classify the last output
    hs = brainstate.transform.for_loop(self.update, xs)
    return self.head(hs[-1])


def make_data(n):
  labels = brainstate.random.randint(0, 2, (n,))
  drift = jnp.where(labels == 1, 1.0, -1.0)[None, :, None] * jnp.linspace(0., 1., SEQ_LEN)[:, None, None]
  noise = brainstate.random.randn(SEQ_LEN, n, N_IN) * 1.5
  xs = noise + drift * jnp.array([1., 0., 0., 0.])
  return xs, labels


def cross_entropy(logits, labels):
  logp = jax.nn.log_softmax(logits)
  return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def main():
  brainstate.random.seed(42)
  model = LSTMClassifier(N_IN, N_HIDDEN, N_OUT)
  params = model.states(brainstate.ParamState)
  train_x, train_y = make_data(BATCH * 8)
  test_x, test_y = make_data(BATCH * 4)

  @brainstate.transform.jit
  def train_step(xs, ys):
    brainstate.nn.init_all_states(model, batch_size=BATCH)

    def loss_fn():
      return cross_entropy(model(xs), ys)

    grads, loss = brainstate.transform.grad(loss_fn, params, return_value=True)()
    for key in params:  # parameters may be dicts ({'weight': ..., 'bias': ...})
      params[key].value = jax.tree.map(lambda p, g: p - 0.2 * g, params[key].value, grads[key])
    return loss

  @brainstate.transform.jit
  def accuracy(xs, ys):
    brainstate.nn.init_all_states(model, batch_size=xs.shape[1])
    return jnp.mean(jnp.argmax(model(xs), axis=-1) == ys)

  for epoch in range(5):
    losses = []
    with brainstate.environ.context(fit=True):
      for i in range(0, train_y.shape[0], BATCH):
        losses.append(train_step(train_x[:, i:i + BATCH], train_y[i:i + BATCH]))
    with brainstate.environ.context(fit=False):
      acc = accuracy(test_x, test_y)
    print(f'epoch {epoch}: loss {float(jnp.mean(jnp.stack(losses))):.6f}, '
          f'test accuracy {float(acc):.4f}')


if __name__ == '__main__':
  main()
