"""Metrics: differential tests against BrainState 0.5.4, eagerly and under jit."""

import brainstate
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import brainstate_nnx as bsn

_R = np.random.RandomState(1)
_BATCHES = [
  dict(
    logits=jnp.asarray(_R.randn(6, 3), jnp.float32),
    labels=jnp.asarray(_R.randint(0, 3, 6), jnp.int32),
    predictions=jnp.asarray(_R.randint(0, 3, 6), jnp.int32),
    values=jnp.asarray(_R.randn(6) * 2 + 1, jnp.float32),
  )
  for _ in range(3)
]
_BIN = [dict(predictions=b['predictions'] % 2, labels=b['labels'] % 2) for b in _BATCHES]

# id -> (factory(lib), batches)
_METRICS = {
  'average': (lambda l: l.nn.AverageMetric(), _BATCHES),
  'average_named': (lambda l: l.nn.AverageMetric('values'), _BATCHES),
  'welford': (lambda l: l.nn.WelfordMetric(), _BATCHES),
  'accuracy': (lambda l: l.nn.AccuracyMetric(), _BATCHES),
  'precision_bin': (lambda l: l.nn.PrecisionMetric(), _BIN),
  'recall_bin': (lambda l: l.nn.RecallMetric(), _BIN),
  'f1_bin': (lambda l: l.nn.F1ScoreMetric(), _BIN),
  **{f'{n}_{avg}': (lambda l, n=n, avg=avg: getattr(l.nn, n)(3, avg), _BATCHES)
     for n in ('PrecisionMetric', 'RecallMetric', 'F1ScoreMetric')
     for avg in ('macro', 'micro', 'weighted')},
  'confusion': (lambda l: l.nn.ConfusionMatrix(3), _BATCHES),
  'multi': (lambda l: l.nn.MultiMetric(acc=l.nn.AccuracyMetric(), avg=l.nn.AverageMetric(),
                                       f1=l.nn.F1ScoreMetric(3, 'weighted')), _BATCHES),
}


def _leaves(x):
  if hasattr(x, 'standard_deviation'):  # Statistics
    return [x.mean, x.standard_error_of_mean, x.standard_deviation]
  if isinstance(x, dict):
    return [v for k in sorted(x) for v in _leaves(x[k])]
  return [x]


def _same(a, b):
  la, lb = _leaves(a), _leaves(b)
  assert len(la) == len(lb)
  for x, y in zip(la, lb):
    assert jnp.asarray(x).dtype == jnp.asarray(y).dtype
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('key', sorted(_METRICS))
def test_eager_matches_brainstate(key):
  make, batches = _METRICS[key]
  ours, ref = make(bsn), make(brainstate)
  for b in batches:
    ours.update(**b)
    ref.update(**b)
    _same(ours.compute(), ref.compute())
  ours.reset()
  ref.reset()
  ours.update(**batches[0])
  ref.update(**batches[0])
  _same(ours.compute(), ref.compute())


@pytest.mark.parametrize('key', ['welford', 'accuracy', 'F1ScoreMetric_weighted', 'confusion',
                                 'multi', 'precision_bin'])
def test_jit_matches_brainstate(key):
  make, batches = _METRICS[key]
  ours, ref = make(bsn), make(brainstate)

  @bsn.transform.jit
  def step_ours(b):
    ours.update(**b)
    return ours.compute()

  @brainstate.transform.jit
  def step_ref(b):
    ref.update(**b)
    return ref.compute()

  for b in batches:
    _same(step_ours(b), step_ref(b))
  _same(ours.compute(), ref.compute())  # the accumulators were written back


def test_python_scalars_and_welford_statistics():
  for lib in (bsn, brainstate):
    m = lib.nn.AverageMetric('loss')
    for v in (1, 2.5, jnp.array([3.0, 4.0])):
      m.update(loss=v)
    np.testing.assert_allclose(m.compute(), 10.5 / 4)
    w = lib.nn.WelfordMetric()
    w.update(values=2.0)
    w.update(values=jnp.array([1.0, 3.0, 6.0]))
    s = w.compute()
    x = np.array([2.0, 1.0, 3.0, 6.0])
    np.testing.assert_allclose(s.mean, x.mean(), rtol=1e-6)
    np.testing.assert_allclose(s.standard_deviation, x.std(), rtol=1e-6)
    np.testing.assert_allclose(s.standard_error_of_mean, x.std() / 2, rtol=1e-6)
  # Statistics is a pytree
  assert len(jax.tree.leaves(s)) == 3


def test_metric_states_are_nnx_metric_states():
  m = bsn.nn.MultiMetric(acc=bsn.nn.AccuracyMetric(), cm=bsn.nn.ConfusionMatrix(2))
  st = nnx.state(m, nnx.metrics.MetricState)
  assert set(st.keys()) == {'acc', 'cm'}
  assert isinstance(m.acc.total, bsn.LongTermState)
  assert isinstance(m.acc.total, nnx.metrics.MetricState)

  @nnx.jit
  def step(m, logits, labels):
    m.update(logits=logits, labels=labels, predictions=labels)

  step(m, jnp.array([[0.0, 1.0], [1.0, 0.0]]), jnp.array([1, 1]))
  assert float(m.acc.compute()) == 0.5
  np.testing.assert_array_equal(m.cm.compute(), [[0, 0], [0, 2]])


def test_bad_input_errors_match_brainstate():
  for lib in (bsn, brainstate):
    with pytest.raises(TypeError, match="Expected keyword argument 'loss'"):
      lib.nn.AverageMetric('loss').update(values=1.0)
    with pytest.raises(TypeError, match="Expected keyword argument 'values'"):
      lib.nn.WelfordMetric().update(x=1.0)
    acc = lib.nn.AccuracyMetric()
    with pytest.raises(ValueError, match='Expected logits.ndim==labels.ndim\\+1'):
      acc.update(logits=jnp.ones(3), labels=jnp.ones(3, jnp.int32))
    with pytest.raises(ValueError, match='Expected integer labels.dtype'):
      acc.update(logits=jnp.ones((3, 2)), labels=jnp.ones(3))
    for cls in (lib.nn.PrecisionMetric, lib.nn.RecallMetric, lib.nn.F1ScoreMetric):
      with pytest.raises(ValueError, match="`average` must be one of"):
        cls(3, 'mean')
    cm = lib.nn.ConfusionMatrix(2)
    with pytest.raises(ValueError, match='Predictions contain values outside'):
      cm.update(predictions=jnp.array([2]), labels=jnp.array([0]))
    with pytest.raises(ValueError, match='Labels contain values outside'):
      cm.update(predictions=jnp.array([0]), labels=jnp.array([-1]))
    with pytest.raises(ValueError, match="Metric name 'update' is reserved"):
      lib.nn.MultiMetric(update=lib.nn.AverageMetric())
    with pytest.raises(TypeError, match='All metrics must be instances of Metric'):
      lib.nn.MultiMetric(a=3)
    for meth, args in (('reset', ()), ('compute', ()), ('update', ())):
      with pytest.raises(NotImplementedError, match=f'Must override `{meth}\\(\\)`'):
        getattr(lib.nn.Metric(), meth)(*args)
