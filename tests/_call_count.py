"""How many Python-level function calls an operation makes.

The hook tests use it to see which path a State read or write takes: with no
hook registered anywhere, reading ``state.value`` makes a fixed, small number
of calls; while a hook exists (on any State, or globally) it makes more. The
count is deterministic, unlike a time.
"""

import gc
import sys


def python_calls(op, repeat: int = 3) -> int:
  """The number of Python function calls ``op()`` makes (``op`` itself counted).

  Counted with ``sys.setprofile`` with the garbage collector paused (a
  collection would run finalizers inside the measurement); the smallest of
  ``repeat`` runs, so a first-call warm-up is not counted.
  """
  counts = []
  for _ in range(repeat):
    n = [0]

    def profile(frame, event, arg):
      if event == 'call':
        n[0] += 1

    enabled = gc.isenabled()
    previous = sys.getprofile()
    gc.disable()
    try:
      sys.setprofile(profile)
      try:
        op()
      finally:
        sys.setprofile(previous)
    finally:
      if enabled:
        gc.enable()
    counts.append(n[0])
  return min(counts)


def read_write_calls(state, value) -> tuple:
  """``(calls to read state.value, calls to write it)``."""
  read = python_calls(lambda: state.value)
  write = python_calls(lambda: setattr(state, 'value', value))
  return read, write
