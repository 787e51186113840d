"""A live progress display for compiled loops (the ``pbar=`` argument).

The loop itself runs inside XLA, so the display is driven from the compiled
program: on the iterations where the display must change, the loop body
issues one ordered :func:`jax.debug.callback` to the host, which creates,
advances or closes the bar. The bar is ``tqdm`` when it is installed and a
small built-in text bar otherwise.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Dict, Optional, Tuple, Union

import jax
import numpy as np

__all__ = ['ProgressBar']

_Desc = Union[str, Tuple[str, Callable[[Dict], Dict]]]


def _tqdm_class():
  """``tqdm.auto.tqdm`` if importable, else ``None``."""
  try:
    from tqdm.auto import tqdm
  except Exception:
    return None
  return tqdm


class _TextBar:
  """A minimal stand-in for ``tqdm`` (create / set_description / update / close).

  It redraws one line in place on a terminal and writes one line per update
  otherwise (logs, captured output). Unknown ``tqdm`` options are ignored.
  """

  def __init__(self, iterable=None, *, total: Optional[int] = None,
               desc: Optional[str] = None, file=None, disable: bool = False,
               ncols: Optional[int] = None, **ignored):
    if total is None and iterable is not None:
      try:
        total = len(iterable)
      except TypeError:
        total = None
    self.total = total
    self.n = 0
    self.desc = desc or ''
    self.file = file if file is not None else sys.stderr
    self.disable = bool(disable)
    self.width = ncols if ncols is not None else 30
    self.start = time.monotonic()
    self.closed = False
    self.shown = -1  # the count last drawn
    self.last_len = 0
    isatty = getattr(self.file, 'isatty', None)
    self.tty = bool(isatty()) if callable(isatty) else False

  def set_description(self, desc: Optional[str] = None, refresh: bool = True):
    self.desc = desc or ''
    if refresh:
      self._draw()

  def update(self, n: int = 1):
    if self.closed:
      return
    self.n += n
    self._draw()

  def close(self):
    if self.closed:
      return
    self.closed = True
    if self.tty or self.shown != self.n:
      self._draw(final=True)

  @staticmethod
  def _clock(seconds: float) -> str:
    if not np.isfinite(seconds):
      return '?'
    m, s = divmod(max(int(seconds), 0), 60)
    h, m = divmod(m, 60)
    return f'{h:d}:{m:02d}:{s:02d}' if h else f'{m:02d}:{s:02d}'

  def line(self) -> str:
    elapsed = time.monotonic() - self.start
    rate = self.n / elapsed if elapsed > 0 else float('nan')
    head = f'{self.desc}: ' if self.desc else ''
    rate_s = f'{rate:.2f}it/s' if np.isfinite(rate) and rate > 0 else '?it/s'
    if not self.total:
      return f'{head}{self.n}it [{self._clock(elapsed)}, {rate_s}]'
    frac = min(max(self.n / self.total, 0.0), 1.0)
    filled = int(round(frac * self.width))
    bar = '#' * filled + '-' * (self.width - filled)
    left = (self.total - self.n) / rate if np.isfinite(rate) and rate > 0 else float('nan')
    return (f'{head}{int(frac * 100):3d}%|{bar}| {self.n}/{self.total} '
            f'[{self._clock(elapsed)}<{self._clock(left)}, {rate_s}]')

  def _draw(self, final: bool = False):
    if self.disable:
      return
    text = self.line()
    self.shown = self.n
    if self.tty:
      pad = ' ' * max(self.last_len - len(text), 0)
      self.file.write('\r' + text + pad + ('\n' if final else ''))
      self.last_len = len(text)
    else:
      self.file.write(text + '\n')
    flush = getattr(self.file, 'flush', None)
    if flush is not None:
      flush()


class ProgressBar:
  """Shows the progress of a compiled ``for_loop`` / ``scan`` while it runs.

  Pass an instance (or an int, meaning ``ProgressBar(freq=int)``) as the
  ``pbar=`` argument of :func:`for_loop`, :func:`scan`,
  :func:`checkpointed_for_loop` or :func:`checkpointed_scan`. The bar is
  refreshed from inside the compiled loop through host callbacks, so it moves
  while XLA runs, also under ``jit``.

  Args:
    freq: refresh every ``freq`` iterations. By default, about every 5% of
      the loop (every iteration for loops of 20 steps or fewer).
    count: refresh this many times in total instead (not with ``freq``).
    desc: a fixed text, or ``(format_string, fn)``: ``fn`` receives a dict
      with the iteration number ``'i'`` and the loop's ``'carry'`` and ``'y'``
      (traced values) and returns the dict that fills ``format_string``,
      e.g. ``('step {i}, loss={loss:.3f}', lambda d: {'i': d['i'], 'loss': d['y']})``.
    **kwargs: options for ``tqdm`` (ignored by the built-in text bar).

  Example::

    >>> import jax.numpy as jnp
    >>> import brainstate_nnx as brainstate
    >>> total = brainstate.State(jnp.array(0.0))
    >>> def step(x):
    ...   total.value += x
    ...   return total.value
    >>> pbar = brainstate.transform.ProgressBar(freq=25, desc='summing')
    >>> ys = brainstate.transform.for_loop(step, jnp.arange(100.0), pbar=pbar)
    >>> float(total.value)
    4950.0
  """

  def __init__(self, freq: Optional[int] = None, count: Optional[int] = None,
               desc: Optional[_Desc] = None, **kwargs):
    if isinstance(freq, int) and freq <= 0:
      raise ValueError(f'ProgressBar: freq must be > 0, got {freq}.')
    if isinstance(count, int) and count <= 0:
      raise ValueError(f'ProgressBar: count must be > 0, got {count}.')
    if freq is not None and count is not None:
      raise ValueError('ProgressBar: give either freq or count, not both.')
    if desc is not None and not isinstance(desc, str):
      if not isinstance(desc, (tuple, list)):
        raise TypeError(
          'ProgressBar: desc must be a string or a (format_string, callable) '
          f'pair, got {type(desc).__name__}.'
        )
      if len(desc) != 2:
        raise ValueError(
          'ProgressBar: a desc sequence must be (format_string, callable), got '
          f'{len(desc)} elements.'
        )
      if not isinstance(desc[0], str):
        raise TypeError(
          f'ProgressBar: desc[0] must be a format string, got {type(desc[0]).__name__}.'
        )
      if not callable(desc[1]):
        raise TypeError(
          f'ProgressBar: desc[1] must be callable, got {type(desc[1]).__name__}.'
        )
    for k in ('total', 'mininterval', 'maxinterval', 'miniters'):
      kwargs.pop(k, None)
    self.print_freq = freq
    self.print_count = count
    self.desc = desc
    self.kwargs = kwargs

  def init(self, n: int) -> '_ProgressRunner':
    """The per-loop driver for a loop of ``n`` iterations (called by the loops)."""
    n = int(n)
    if self.print_count is not None:
      freq = n // self.print_count
      if freq == 0:
        raise ValueError(
          f'ProgressBar: count={self.print_count} is larger than the number '
          f'of iterations ({n}).'
        )
    elif self.print_freq is None:
      freq = max(n // 20, 1) if n > 20 else 1
    else:
      freq = self.print_freq
      if freq > n:
        raise ValueError(
          f'ProgressBar: freq={freq} is larger than the number of iterations ({n}).'
        )
    desc = f'Running for {n:,} iterations' if self.desc is None else self.desc
    return _ProgressRunner(n, freq, desc, dict(self.kwargs))

  def __repr__(self):
    return f'ProgressBar(freq={self.print_freq}, count={self.print_count}, desc={self.desc!r})'


class _ProgressRunner:
  """Called once per iteration inside the loop body with the iteration number.

  On the iterations where the display changes (the first, every ``freq``-th
  and the last) it issues a single ordered host callback that updates the
  host-side bar, so the bar's steps can never be reordered.
  """

  def __init__(self, n: int, freq: int, desc: _Desc, kwargs: dict):
    self.n = n
    self.freq = freq
    self.desc = desc
    self.kwargs = kwargs
    self.bar = None
    self.last_i = -1

  # -- host side ---------------------------------------------------------------
  def _text(self, data) -> str:
    if isinstance(self.desc, str):
      return self.desc
    return self.desc[0].format(**{k: np.asarray(v) if np.ndim(v) else np.asarray(v).item()
                                  for k, v in data.items()})

  def _tick(self, i, data):
    i = int(np.asarray(i).reshape(-1)[0])
    # Under vmap the callback runs once per batch element with the same
    # ``i``: only the first call of a run creates the bar, and updates are
    # idempotent (they move the bar to a target count).
    first = i == 0 and (self.bar is None or self.last_i != 0)
    self.last_i = i
    if first:
      cls = _tqdm_class() or _TextBar
      self.bar = cls(range(self.n), **self.kwargs)
      self.bar.set_description(self._text(data), refresh=not isinstance(self.desc, str))
    bar = self.bar
    if bar is None:  # the loop started without this runner seeing step 0
      return
    done = bar.n
    target = (i + 1) // self.freq * self.freq if i < self.n - 1 else self.n
    if target > done:
      if not isinstance(self.desc, str):
        bar.set_description(self._text(data), refresh=False)
      bar.update(target - done)
    if i >= self.n - 1:
      bar.close()
      self.bar = None

  # -- traced side -------------------------------------------------------------
  def __call__(self, i, **loop_data):
    if isinstance(self.desc, str):
      data = {}
    else:
      data = self.desc[1](dict(i=i, **loop_data))
      if not isinstance(data, dict):
        raise TypeError(
          'ProgressBar: the desc function must return a dict, got '
          f'{type(data).__name__}.'
        )
    i = jax.numpy.asarray(i)
    show = (i == 0) | (i == self.n - 1) | ((i + 1) % self.freq == 0)
    show = show & (i < self.n)
    jax.lax.cond(
      show,
      lambda i, d: jax.debug.callback(self._tick, i, d, ordered=True),
      lambda i, d: None,
      i, data,
    )
