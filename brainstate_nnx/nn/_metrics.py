"""Training metrics (BrainState's ``nn.*Metric`` classes).

A metric accumulates statistics in :class:`MetricState` s (a
:class:`~brainstate_nnx.LongTermState` that is also an
``nnx.metrics.MetricState``) through ``update(**batch)``, reports them with
``compute()`` and starts over with ``reset()``. Because the accumulators are
States, ``update`` works eagerly and inside ``brainstate_nnx.transform.jit``
(the new totals are written back after the call). A metric is an
``nnx.Pytree``, so ``nnx.state(metric, nnx.metrics.MetricState)`` sees it.
"""

from __future__ import annotations

import typing as tp
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx

from .._state import LongTermState

__all__ = [
  'MetricState', 'Metric', 'AverageMetric', 'WelfordMetric', 'AccuracyMetric',
  'MultiMetric', 'PrecisionMetric', 'RecallMetric', 'F1ScoreMetric',
  'ConfusionMatrix',
]


class MetricState(LongTermState, nnx.metrics.MetricState):
  """The State of a metric's accumulators (also an ``nnx.metrics.MetricState``).

  Example::

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import brainstate_nnx as brainstate
    >>> s = brainstate.nn.MetricState(jnp.array(0))
    >>> isinstance(s, brainstate.LongTermState), isinstance(s, nnx.metrics.MetricState)
    (True, True)
  """

  __module__ = 'brainstate_nnx.nn'


class Metric(nnx.Pytree):
  """Base class of metrics: override ``reset``, ``update(**kwargs)`` and ``compute``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> class Max(brainstate.nn.Metric):
    ...   def __init__(self):
    ...     self.best = brainstate.nn.MetricState(jnp.array(-jnp.inf))
    ...   def reset(self):
    ...     self.best.value = jnp.array(-jnp.inf)
    ...   def update(self, *, values, **_):
    ...     self.best.value = jnp.maximum(self.best.value, values.max())
    ...   def compute(self):
    ...     return self.best.value
    >>> m = Max()
    >>> m.update(values=jnp.array([1.0, 5.0])); m.update(values=jnp.array([2.0]))
    >>> m.compute()
    Array(5., dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def reset(self) -> None:
    """Puts the accumulators back to their initial values."""
    raise NotImplementedError('Must override `reset()` method.')

  def update(self, **kwargs) -> None:
    """Accumulates one batch given as keyword arguments."""
    raise NotImplementedError('Must override `update()` method.')

  def compute(self):
    """The metric from what has been accumulated so far."""
    raise NotImplementedError('Must override `compute()` method.')


def _zero(dtype):
  return jnp.array(0, dtype=dtype)


class AverageMetric(Metric):
  """Running mean of the values passed as keyword ``argname``.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> m = brainstate.nn.AverageMetric('loss')
    >>> m.update(loss=jnp.array([1.0, 2.0])); m.update(loss=6.0)
    >>> m.compute()
    Array(3., dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, argname: str = 'values'):
    self.argname = argname
    self.total = MetricState(_zero(jnp.float32))
    self.count = MetricState(_zero(jnp.int32))

  def reset(self) -> None:
    self.total.value = _zero(jnp.float32)
    self.count.value = _zero(jnp.int32)

  def update(self, **kwargs) -> None:
    if self.argname not in kwargs:
      raise TypeError(f"Expected keyword argument '{self.argname}'")
    values = kwargs[self.argname]
    scalar = isinstance(values, (int, float))
    self.total.value += values if scalar else values.sum()
    self.count.value += 1 if scalar else values.size

  def compute(self) -> jax.Array:
    return self.total.value / self.count.value


@partial(jax.tree_util.register_dataclass,
         data_fields=['mean', 'standard_error_of_mean', 'standard_deviation'],
         meta_fields=[])
@dataclass
class Statistics:
  """Mean, standard error of the mean and standard deviation (a pytree)."""

  __module__ = 'brainstate_nnx.nn'

  mean: jax.Array
  standard_error_of_mean: jax.Array
  standard_deviation: jax.Array


class WelfordMetric(Metric):
  """Running mean and variance (Welford's algorithm, merged batch by batch).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> m = brainstate.nn.WelfordMetric()
    >>> m.update(values=jnp.array([1.0, 2.0])); m.update(values=jnp.array([3.0, 4.0]))
    >>> s = m.compute()
    >>> float(s.mean), round(float(s.standard_deviation), 4)
    (2.5, 1.118)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, argname: str = 'values'):
    self.argname = argname
    self.count = MetricState(_zero(jnp.int32))
    self.mean = MetricState(_zero(jnp.float32))
    self.m2 = MetricState(_zero(jnp.float32))

  def reset(self) -> None:
    self.count.value = _zero(jnp.int32)
    self.mean.value = _zero(jnp.float32)
    self.m2.value = _zero(jnp.float32)

  def update(self, **kwargs) -> None:
    if self.argname not in kwargs:
      raise TypeError(f"Expected keyword argument '{self.argname}'")
    values = kwargs[self.argname]
    scalar = isinstance(values, (int, float))
    n = 1 if scalar else values.size
    n_before = self.count.value
    self.count.value += n
    delta = (values if scalar else values.mean()) - self.mean.value
    self.mean.value += delta * n / self.count.value
    batch_m2 = 0.0 if scalar else values.var() * n
    self.m2.value += batch_m2 + delta * delta * n * n_before / self.count.value

  def compute(self) -> Statistics:
    std = (self.m2.value / self.count.value) ** 0.5
    return Statistics(
      mean=self.mean.value,
      standard_error_of_mean=std / (self.count.value ** 0.5),
      standard_deviation=std,
    )


class AccuracyMetric(AverageMetric):
  """Fraction of ``argmax(logits, -1) == labels`` (integer labels).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> m = brainstate.nn.AccuracyMetric()
    >>> m.update(logits=jnp.array([[0.1, 0.9], [0.8, 0.2]]), labels=jnp.array([1, 1]))
    >>> m.compute()
    Array(0.5, dtype=float32)
  """

  __module__ = 'brainstate_nnx.nn'

  def update(self, *, logits: jax.Array, labels: jax.Array, **_) -> None:
    if logits.ndim != labels.ndim + 1:
      raise ValueError(
        f'Expected logits.ndim==labels.ndim+1, got {logits.ndim} and {labels.ndim}'
      )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
      raise ValueError(f'Expected integer labels.dtype, got {labels.dtype}')
    labels = jnp.astype(labels, jnp.int32)
    super().update(values=(logits.argmax(axis=-1) == labels))


def _check_average(average):
  if average not in ('micro', 'macro', 'weighted'):
    raise ValueError(
      f"`average` must be one of 'micro', 'macro', 'weighted'. Got {average!r}."
    )


def _ratio(num, den):
  """Per-entry ``num / den`` with 0 where ``den == 0``."""
  return jnp.where(den > 0, num / den, jnp.zeros_like(den, dtype=jnp.float32))


def _pooled(num, den):
  return jnp.where(den > 0, num / den, jnp.float32(0.0))


class PrecisionMetric(Metric):
  """Precision ``TP / (TP + FP)``: binary (``num_classes=None``) or averaged over classes.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> m = brainstate.nn.PrecisionMetric()
    >>> m.update(predictions=jnp.array([1, 1, 0, 1]), labels=jnp.array([1, 0, 0, 1]))
    >>> round(float(m.compute()), 4)
    0.6667
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, num_classes: tp.Optional[int] = None, average: str = 'macro'):
    _check_average(average)
    self.num_classes = num_classes
    self.average = average
    self.true_positives = MetricState(self._counts())
    self.false_positives = MetricState(self._counts())
    if num_classes is not None:
      self.support = MetricState(self._counts())  # true labels per class ('weighted')

  def reset(self) -> None:
    self.true_positives.value = self._counts()
    self.false_positives.value = self._counts()
    if self.num_classes is not None:
      self.support.value = self._counts()

  def _counts(self):
    if self.num_classes is None:
      return _zero(jnp.int32)
    return jnp.zeros(self.num_classes, dtype=jnp.int32)

  def update(self, *, predictions: jax.Array, labels: jax.Array, **_) -> None:
    if self.num_classes is None:
      self.true_positives.value += jnp.sum((predictions == 1) & (labels == 1))
      self.false_positives.value += jnp.sum((predictions == 1) & (labels == 0))
      return
    for c in range(self.num_classes):
      self.true_positives.value = self.true_positives.value.at[c].add(
        jnp.sum((predictions == c) & (labels == c)))
      self.false_positives.value = self.false_positives.value.at[c].add(
        jnp.sum((predictions == c) & (labels != c)))
      self.support.value = self.support.value.at[c].add(jnp.sum(labels == c))

  def compute(self) -> jax.Array:
    tp_, fp = self.true_positives.value, self.false_positives.value
    per_class = _ratio(tp_, tp_ + fp)
    if self.num_classes is None:
      return per_class
    if self.average == 'macro':
      return jnp.mean(per_class)
    if self.average == 'micro':
      return _pooled(jnp.sum(tp_), jnp.sum(tp_) + jnp.sum(fp))
    support = self.support.value
    return _pooled(jnp.sum(per_class * support), jnp.sum(support))


class RecallMetric(Metric):
  """Recall ``TP / (TP + FN)``: binary (``num_classes=None``) or averaged over classes.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> m = brainstate.nn.RecallMetric()
    >>> m.update(predictions=jnp.array([1, 0, 0, 1]), labels=jnp.array([1, 1, 0, 1]))
    >>> round(float(m.compute()), 4)
    0.6667
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, num_classes: tp.Optional[int] = None, average: str = 'macro'):
    _check_average(average)
    self.num_classes = num_classes
    self.average = average
    self.true_positives = MetricState(self._counts())
    self.false_negatives = MetricState(self._counts())

  def _counts(self):
    if self.num_classes is None:
      return _zero(jnp.int32)
    return jnp.zeros(self.num_classes, dtype=jnp.int32)

  def reset(self) -> None:
    self.true_positives.value = self._counts()
    self.false_negatives.value = self._counts()

  def update(self, *, predictions: jax.Array, labels: jax.Array, **_) -> None:
    if self.num_classes is None:
      self.true_positives.value += jnp.sum((predictions == 1) & (labels == 1))
      self.false_negatives.value += jnp.sum((predictions == 0) & (labels == 1))
      return
    for c in range(self.num_classes):
      self.true_positives.value = self.true_positives.value.at[c].add(
        jnp.sum((predictions == c) & (labels == c)))
      self.false_negatives.value = self.false_negatives.value.at[c].add(
        jnp.sum((predictions != c) & (labels == c)))

  def compute(self) -> jax.Array:
    tp_, fn = self.true_positives.value, self.false_negatives.value
    den = tp_ + fn
    per_class = _ratio(tp_, den)
    if self.num_classes is None:
      return per_class
    if self.average == 'macro':
      return jnp.mean(per_class)
    if self.average == 'micro':
      return _pooled(jnp.sum(tp_), jnp.sum(tp_) + jnp.sum(fn))
    return _pooled(jnp.sum(per_class * den), jnp.sum(den))


class F1ScoreMetric(Metric):
  """F1 score (harmonic mean of precision and recall); macro/weighted average per-class F1.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> m = brainstate.nn.F1ScoreMetric()
    >>> m.update(predictions=jnp.array([1, 1, 0, 0]), labels=jnp.array([1, 0, 1, 0]))
    >>> float(m.compute())
    0.5
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, num_classes: tp.Optional[int] = None, average: str = 'macro'):
    self.precision_metric = PrecisionMetric(num_classes, average)
    self.recall_metric = RecallMetric(num_classes, average)

  def reset(self) -> None:
    self.precision_metric.reset()
    self.recall_metric.reset()

  def update(self, *, predictions: jax.Array, labels: jax.Array, **_) -> None:
    self.precision_metric.update(predictions=predictions, labels=labels)
    self.recall_metric.update(predictions=predictions, labels=labels)

  def compute(self) -> jax.Array:
    pm = self.precision_metric
    if pm.num_classes is None or pm.average == 'micro':
      p, r = pm.compute(), self.recall_metric.compute()
      return _pooled(2 * p * r, p + r)
    tp_, fp = pm.true_positives.value, pm.false_positives.value
    fn = self.recall_metric.false_negatives.value
    p_c = _ratio(tp_, tp_ + fp)
    r_c = _ratio(tp_, tp_ + fn)
    f1_c = _ratio(2 * p_c * r_c, p_c + r_c)
    if pm.average == 'macro':
      return jnp.mean(f1_c)
    support = pm.support.value
    return _pooled(jnp.sum(f1_c * support), jnp.sum(support))


class ConfusionMatrix(Metric):
  """``matrix[true, predicted]`` counts over ``num_classes`` classes.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> m = brainstate.nn.ConfusionMatrix(2)
    >>> m.update(predictions=jnp.array([0, 1, 1]), labels=jnp.array([0, 0, 1]))
    >>> m.compute()
    Array([[1, 1],
           [0, 1]], dtype=int32)
  """

  __module__ = 'brainstate_nnx.nn'

  def __init__(self, num_classes: int):
    self.num_classes = num_classes
    self.matrix = MetricState(jnp.zeros((num_classes, num_classes), dtype=jnp.int32))

  def reset(self) -> None:
    self.matrix.value = jnp.zeros((self.num_classes, self.num_classes), dtype=jnp.int32)

  def update(self, *, predictions: jax.Array, labels: jax.Array, **_) -> None:
    predictions = jnp.asarray(predictions, dtype=jnp.int32).flatten()
    labels = jnp.asarray(labels, dtype=jnp.int32).flatten()
    n = self.num_classes
    if not (isinstance(predictions, jax.core.Tracer) or isinstance(labels, jax.core.Tracer)):
      if jnp.any((predictions < 0) | (predictions >= n)):
        raise ValueError(f'Predictions contain values outside [0, {n})')
      if jnp.any((labels < 0) | (labels >= n)):
        raise ValueError(f'Labels contain values outside [0, {n})')
    for t in range(n):
      for p in range(n):
        count = jnp.sum((labels == t) & (predictions == p))
        self.matrix.value = self.matrix.value.at[t, p].add(count)

  def compute(self) -> jax.Array:
    return self.matrix.value


class MultiMetric(Metric):
  """Several named metrics updated, computed and reset together.

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> m = brainstate.nn.MultiMetric(accuracy=brainstate.nn.AccuracyMetric(),
    ...                               loss=brainstate.nn.AverageMetric('loss'))
    >>> m.update(logits=jnp.array([[0.1, 0.9]]), labels=jnp.array([1]), loss=jnp.array(0.3))
    >>> {k: round(float(v), 3) for k, v in m.compute().items()}
    {'accuracy': 1.0, 'loss': 0.3}
  """

  __module__ = 'brainstate_nnx.nn'

  _RESERVED = frozenset({'reset', 'update', 'compute', '_metric_names'})

  def __init__(self, **metrics):
    for name in metrics:
      if name in self._RESERVED:
        raise ValueError(
          f"Metric name '{name}' is reserved for class methods. "
          f'Please use a different name. Reserved names: {set(self._RESERVED)}'
        )
    names = []
    for name, metric in metrics.items():
      if not isinstance(metric, Metric):
        raise TypeError(
          f'All metrics must be instances of Metric, got {type(metric)} '
          f"for metric '{name}'"
        )
      names.append(name)
      setattr(self, name, metric)
    self._metric_names = tuple(names)

  def reset(self) -> None:
    for name in self._metric_names:
      getattr(self, name).reset()

  def update(self, **updates) -> None:
    for name in self._metric_names:
      getattr(self, name).update(**updates)

  def compute(self) -> dict:
    return {name: getattr(self, name).compute() for name in self._metric_names}
