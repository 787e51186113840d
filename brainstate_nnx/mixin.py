"""BrainState's mixins: parameter descriptions, computing modes, type combinators.

Example::

  >>> import brainstate_nnx as brainstate
  >>> class Cell(brainstate.mixin.ParamDesc):
  ...   def __init__(self, size, tau=1.0):
  ...     self.size, self.tau = size, tau
  >>> desc = Cell.desc(tau=2.0)          # describe now, build later
  >>> cell = desc(10)
  >>> (cell.size, cell.tau)
  (10, 2.0)
  >>> mode = brainstate.mixin.JointMode(brainstate.mixin.Batching(), brainstate.mixin.Training())
  >>> mode.has(brainstate.mixin.Training)
  True
"""


from typing import Any, Optional, Sequence, TypeVar, Union, _GenericAlias

__all__ = [
  'Mixin', 'ParamDesc', 'ParamDescriber', 'JointTypes', 'OneOfTypes',
  '_JointGenericAlias', '_OneOfGenericAlias',
  'Mode', 'JointMode', 'Batching', 'Training',
]

T = TypeVar('T')


def hashable(x) -> bool:
  """Whether ``hash(x)`` works.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.mixin.hashable((1, 2)), brainstate.mixin.hashable([1, 2])
    (True, False)
  """
  try:
    hash(x)
  except TypeError:
    return False
  return True


class Mixin(object):
  """Marker base class of all mixins (adds no behaviour).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> issubclass(brainstate.mixin.ParamDesc, brainstate.mixin.Mixin)
    True
  """


class ParamDesc(Mixin):
  """Gives a class ``desc(*args, **kwargs)``: a :class:`ParamDescriber` that builds it later.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> class Syn(brainstate.mixin.ParamDesc):
    ...   def __init__(self, n, tau=5.0):
    ...     self.n, self.tau = n, tau
    >>> Syn.desc(tau=3.0)(4).tau
    3.0
  """

  non_hashable_params: Optional[Sequence[str]] = None

  @classmethod
  def desc(cls, *args, **kwargs) -> 'ParamDescriber':
    """A :class:`ParamDescriber` of this class with the given leading arguments."""
    return ParamDescriber(cls, *args, **kwargs)


class HashableDict(dict):
  """A dict with a hash; unhashable values are replaced by their ``str``.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> d = brainstate.mixin.HashableDict({'a': [1, 2]})
    >>> d['a'], hash(d) == hash(brainstate.mixin.HashableDict({'a': [1, 2]}))
    ('[1, 2]', True)
  """

  def __init__(self, the_dict: dict):
    super().__init__({k: (v if hashable(v) else str(v)) for k, v in the_dict.items()})

  def __hash__(self):
    return hash(frozenset(self.items()))


class NoSubclassMeta(type):
  """Metaclass of classes that cannot be subclassed.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> class Sub(brainstate.mixin.ParamDescriber):
    ...   pass
    Traceback (most recent call last):
    ...
    TypeError: type 'ParamDescriber' is not an acceptable base type
  """

  def __new__(mcs, name, bases, classdict):
    for b in bases:
      if isinstance(b, NoSubclassMeta):
        raise TypeError(f"type '{b.__name__}' is not an acceptable base type")
    return type.__new__(mcs, name, bases, dict(classdict))


class ParamDescriber(metaclass=NoSubclassMeta):
  """A class together with some of its constructor arguments (a deferred constructor).

  Calling it (or ``init``) builds the object; call-time positional arguments
  come after the stored ones, keyword arguments override the stored ones.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> d = brainstate.mixin.ParamDescriber(dict, a=1)
    >>> d(b=2)
    {'a': 1, 'b': 2}
    >>> d
    ParamDescriber(dict(a=1))
  """

  def __init__(self, cls: T, *desc_tuple, **desc_dict):
    self.cls: type = cls
    self.args = desc_tuple
    self.kwargs = desc_dict
    self._identifier = (cls, tuple(desc_tuple), HashableDict(desc_dict))

  def __call__(self, *args, **kwargs) -> T:
    return self.cls(*self.args, *args, **{**self.kwargs, **kwargs})

  def init(self, *args, **kwargs):
    """Same as calling the describer."""
    return self.__call__(*args, **kwargs)

  def __repr__(self):
    parts = [repr(a) for a in self.args] + [f'{k}={v!r}' for k, v in self.kwargs.items()]
    return f'ParamDescriber({self.cls.__name__}({", ".join(parts)}))'

  def __instancecheck__(self, instance):
    return isinstance(instance, ParamDescriber) and issubclass(instance.cls, self.cls)

  @classmethod
  def __class_getitem__(cls, item: type):
    return ParamDescriber(item)

  @property
  def identifier(self):
    """``(cls, args, kwargs)``, hashable; read-only."""
    return self._identifier

  @identifier.setter
  def identifier(self, value: Any):
    raise AttributeError('Cannot set the identifier.')


def not_implemented(func):
  """Wraps ``func`` into a function raising ``NotImplementedError`` (marked as such).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> f = brainstate.mixin.not_implemented(lambda: 1)
    >>> brainstate.mixin.is_not_implemented(f)
    True
  """

  def wrapper(*args, **kwargs):
    raise NotImplementedError(f'{func.__name__} is not implemented.')

  wrapper.not_implemented = True
  return wrapper


def is_not_implemented(fn) -> bool:
  """Whether ``fn`` was made by :func:`not_implemented`."""
  return hasattr(fn, 'not_implemented')


def _type_names(args):
  return ', '.join(
    f'{a.__module__}.{a.__name__}' if hasattr(a, '__module__') and hasattr(a, '__name__') else str(a)
    for a in args
  )


class _JointGenericAlias(_GenericAlias, _root=True):
  """The type made by :data:`JointTypes`: an instance of every one of its types."""

  def __instancecheck__(self, obj):
    return all(isinstance(obj, c) for c in self.__args__)

  def __subclasscheck__(self, subclass):
    return all(issubclass(subclass, c) for c in self.__args__)

  def __eq__(self, other):
    if not isinstance(other, _JointGenericAlias):
      return NotImplemented
    return set(self.__args__) == set(other.__args__)

  def __hash__(self):
    return hash(frozenset(self.__args__))

  def __repr__(self):
    return f'JointTypes[{_type_names(self.__args__)}]'

  def __reduce__(self):
    return (_JointGenericAlias, (self.__origin__, self.__args__))

  def __call__(self, *args, **kwargs):
    raise TypeError(
      f'Cannot instantiate {self!r}: it is an intersection type used for isinstance/issubclass '
      f'checks and annotations, not a constructor. Instantiate one of its component classes directly.'
    )


class _OneOfGenericAlias(_GenericAlias, _root=True):
  """The type made by :data:`OneOfTypes`: an instance of at least one of its types."""

  def __instancecheck__(self, obj):
    return any(isinstance(obj, c) for c in self.__args__)

  def __subclasscheck__(self, subclass):
    return any(issubclass(subclass, c) for c in self.__args__)

  def __eq__(self, other):
    if not isinstance(other, _OneOfGenericAlias):
      return NotImplemented
    return set(self.__args__) == set(other.__args__)

  def __hash__(self):
    return hash(frozenset(self.__args__))

  def __repr__(self):
    return f'OneOfTypes[{_type_names(self.__args__)}]'

  def __reduce__(self):
    return (_OneOfGenericAlias, (self.__origin__, self.__args__))


def _unique(types, what):
  if len(types) == 0:
    raise TypeError(f'Cannot create a {what} of no types.')
  out = []
  seen = set()
  for t in types:
    if t not in seen:
      seen.add(t)
      out.append(t)
  return out


class _JointTypesClass:
  """``JointTypes[A, B]`` / ``JointTypes(A, B)``: the intersection type (single type: itself).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> class A: pass
    >>> class B: pass
    >>> class AB(A, B): pass
    >>> isinstance(AB(), brainstate.mixin.JointTypes[A, B]), isinstance(A(), brainstate.mixin.JointTypes[A, B])
    (True, False)
  """

  def __call__(self, *types):
    unique = _unique(types, 'JointTypes')
    if len(unique) == 1:
      return unique[0]
    return _JointGenericAlias(object, tuple(unique))

  def __getitem__(self, item):
    return self(*item) if isinstance(item, tuple) else self(item)


class _OneOfTypesClass:
  """``OneOfTypes[A, B]`` / ``OneOfTypes(A, B)``: the union type (single type: itself).

  Example::

    >>> import brainstate_nnx as brainstate
    >>> isinstance(1.5, brainstate.mixin.OneOfTypes[int, float])
    True
  """

  def __call__(self, *types):
    unique = _unique(types, 'OneOfTypes')
    if len(unique) == 1:
      return unique[0]
    return _OneOfGenericAlias(Union, tuple(unique))

  def __getitem__(self, item):
    return self(*item) if isinstance(item, tuple) else self(item)


JointTypes = _JointTypesClass()
OneOfTypes = _OneOfTypesClass()


class Mode(Mixin):
  """A computing mode; modes compare equal when they have the same class.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> m = brainstate.mixin.Training()
    >>> m, m.is_a(brainstate.mixin.Training), m.has(brainstate.mixin.Mode)
    (Training, True, True)
  """

  def __repr__(self):
    return self.__class__.__name__

  def __eq__(self, other: 'Mode'):
    assert isinstance(other, Mode)
    return other.__class__ == self.__class__

  def __hash__(self):
    return hash(self.__class__)

  def is_a(self, mode: type) -> bool:
    """Whether this mode is exactly of class ``mode``."""
    assert isinstance(mode, type), 'Must be a type.'
    return self.__class__ == mode

  def has(self, mode: type) -> bool:
    """Whether this mode is an instance of ``mode``."""
    assert isinstance(mode, type), 'Must be a type.'
    return isinstance(self, mode)


class JointMode(Mode):
  """Several modes at once; attributes are looked up in its modes.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> m = brainstate.mixin.JointMode(brainstate.mixin.Batching(8), brainstate.mixin.Training())
    >>> m.batch_size, m.has(brainstate.mixin.Batching)
    (8, True)
  """

  def __init__(self, *modes: Mode):
    for m in modes:
      if not isinstance(m, Mode):
        raise TypeError(f'The supported type must be a tuple/list of Mode. But we got {m}')
    self.modes = tuple(modes)
    self.types = set([m.__class__ for m in modes])

  def __repr__(self):
    return f"{self.__class__.__name__}({', '.join(repr(m) for m in self.modes)})"

  def has(self, mode: type) -> bool:
    """Whether one of the modes is a subclass of ``mode``."""
    assert isinstance(mode, type), 'Must be a type.'
    return any(issubclass(c, mode) for c in self.types)

  def is_a(self, cls: type) -> bool:
    """Whether the modes' classes are exactly the types of ``cls`` (a :data:`JointTypes`)."""
    return JointTypes(*tuple(self.types)) == cls

  def __getattr__(self, item):
    if item in ('modes', 'types'):
      return super().__getattribute__(item)
    for m in self.modes:
      if hasattr(m, item):
        return getattr(m, item)
    return super().__getattribute__(item)


class Batching(Mode):
  """The batching mode, with its batch size and axis.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.mixin.Batching(4)
    Batching(in_size=4, axis=0)
  """

  def __init__(self, batch_size: int = 1, batch_axis: int = 0):
    self.batch_size = batch_size
    self.batch_axis = batch_axis

  def __repr__(self):
    return f'{self.__class__.__name__}(in_size={self.batch_size}, axis={self.batch_axis})'


class Training(Mode):
  """The training mode.

  Example::

    >>> import brainstate_nnx as brainstate
    >>> brainstate.mixin.Training() == brainstate.mixin.Training()
    True
  """
