"""Every ``>>>`` example in the package's docstrings runs and prints what it shows.

The modules are found by walking ``brainstate_nnx`` (so a new module is
picked up without touching this file); each module's examples are one test,
so a failure names the module and shows doctest's report. Every module is
walked, private ones included: that is where the public objects are defined,
and each object's examples are taken from the module whose source defines it
(also for a class that sets ``__module__`` to its public namespace), so every
example runs exactly once.
"""

import doctest
import importlib
import inspect
import io
import pkgutil

import pytest

import brainstate_nnx

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names():
  names = [brainstate_nnx.__name__]
  for info in pkgutil.walk_packages(brainstate_nnx.__path__, brainstate_nnx.__name__ + '.'):
    names.append(info.name)
  return sorted(names)


def _home_globals(cls):
  """The globals of the module whose source defines ``cls`` (``None``: unknown)."""
  for member in vars(cls).values():
    if isinstance(member, (staticmethod, classmethod)):
      member = member.__func__
    elif isinstance(member, property):
      member = member.fget
    member = inspect.unwrap(member) if callable(member) else member
    if (inspect.isfunction(member) and member.__qualname__.startswith(cls.__qualname__ + '.')
        and member.__globals__.get('__name__', '').startswith(brainstate_nnx.__name__)):
      return member.__globals__
  return None


class _Finder(doctest.DocTestFinder):
  """Takes a class from the module that defines it, whatever its ``__module__``."""

  def _from_module(self, module, obj):
    if inspect.isclass(obj):
      home = _home_globals(obj)
      if home is not None:
        return home is module.__dict__
    elif inspect.isfunction(obj):
      obj = inspect.unwrap(obj)  # e.g. a contextlib.contextmanager
    return super()._from_module(module, obj)


def _doctests(name):
  module = importlib.import_module(name)
  finder = _Finder(exclude_empty=True)
  tests = [t for t in finder.find(module, name) if t.examples]
  return sorted(tests, key=lambda t: (t.lineno or 0, t.name))


def _collect():
  found = {}
  for name in _module_names():
    tests = _doctests(name)
    if tests:
      found[name] = tests
  return found


_FOUND = _collect()


def test_examples_are_found():
  # the walk reaches the namespaces and the modules behind them
  assert brainstate_nnx.transform.jit.__module__ in _FOUND
  assert any(name.startswith('brainstate_nnx.nn.') for name in _FOUND)
  assert any(name.startswith('brainstate_nnx.random.') for name in _FOUND)
  assert sum(len(t.examples) for tests in _FOUND.values() for t in tests) > 200


@pytest.mark.filterwarnings(
  # jax.debug.breakpoint flattens the locals of every frame on the stack when
  # it is traced; pytest's generators there make JAX warn.
  "ignore:Python iterable type 'generator':DeprecationWarning")
@pytest.mark.parametrize('name', sorted(_FOUND), ids=lambda n: n.replace('brainstate_nnx.', ''))
def test_docstring_examples(name):
  runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
  report = io.StringIO()
  for test in _FOUND[name]:
    brainstate_nnx.random.seed(0)
    runner.run(test, out=report.write, clear_globs=True)
  assert runner.tries > 0
  assert runner.failures == 0, (
    f'{runner.failures} of {runner.tries} examples failed:\n{report.getvalue()}')
