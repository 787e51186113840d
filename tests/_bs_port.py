"""Runs BrainState 0.5.4's own unit tests against brainstate_nnx.

The test modules are read from the installed ``brainstate`` package (the
oracle), their ``brainstate`` imports are pointed at ``brainstate_nnx`` and
each ``unittest`` test becomes one pytest case. ``weakref.ref`` of a State
falls back to a strong reference (brainstate_nnx States are ``nnx.Variable`` s,
which have ``__slots__`` and no weak-reference slot).
"""

from __future__ import annotations

import os
import re
import types
import unittest
import weakref

from conftest import oracle
brainstate = oracle()  # real BrainState 0.5.4, the oracle


BS_DIR = os.path.dirname(brainstate.__file__)


def _ref(obj):
  try:
    return weakref.ref(obj)
  except TypeError:
    return lambda: obj


def load_module(filename: str) -> types.ModuleType:
  path = os.path.join(BS_DIR, filename)
  with open(path) as f:
    src = f.read()
  # names BrainState's tests take from its private State modules are public
  # at brainstate_nnx's top level (a BrainState-internal name then fails to
  # import: such cases are listed as different by the test files)
  src = re.sub(r'\bfrom brainstate\._state(_\w+)? import', 'from brainstate_nnx import', src)
  src = re.sub(r'\bfrom brainstate import', 'from brainstate_nnx import', src)
  src = re.sub(r'^import brainstate$', 'import brainstate_nnx as brainstate', src, flags=re.M)
  src = src.replace('weakref.ref(', '_bs_port_ref(')
  mod = types.ModuleType('bs_port_' + filename[:-3])
  mod.__dict__['_bs_port_ref'] = _ref
  exec(compile(src, path, 'exec'), mod.__dict__)
  return mod


def collect(filename: str):
  """``[(test id, TestCase instance)]`` of one BrainState test module."""
  mod = load_module(filename)
  suite = unittest.defaultTestLoader.loadTestsFromModule(mod)
  out = []

  def walk(s):
    for t in s:
      if isinstance(t, unittest.TestSuite):
        walk(t)
      else:
        out.append((f'{type(t).__name__}.{t._testMethodName}', t))

  walk(suite)
  return out


def run_case(case) -> None:
  result = unittest.TestResult()
  try:
    case.run(result)
  finally:
    # drop what setUp stored (States with hooks keep the hook switch on)
    keep = {'_testMethodName', '_outcome', '_testMethodDoc', '_cleanups',
            '_subtest', '_type_equality_funcs'}
    for k in [k for k in vars(case) if k not in keep]:
      delattr(case, k)
  problems = result.errors + result.failures
  if problems:
    raise AssertionError(problems[0][1])
  if result.skipped:
    import pytest
    pytest.skip(result.skipped[0][1])
