"""Frozen dataclasses that are quick to make and quick to define: the wire's messages and the core's events.

``@dataclass(frozen=True)`` writes six methods for each class and compiles each
one on its own; for the seventy-odd classes the core and the shell define, that
was the largest part of start-up.  :func:`frozen` lets ``dataclasses`` do the
rest (the fields, ``__match_args__``, the frozen ``__setattr__`` and
``__delattr__``, so :func:`dataclasses.fields` and :func:`dataclasses.replace`
work as before) and gives the class:

- an ``__init__`` compiled once for it, which stores into the new instance's
  ``__dict__`` directly: a frozen dataclass's own sets every field through
  ``object.__setattr__``, about three times the cost of making the object
  otherwise, and several messages and events are made per datagram;
- a ``__repr__``, ``__eq__`` and ``__hash__`` shared by every such class, which
  read the class's field names: the same results as the generated ones
  (``tests/test_frozen.py`` compares them).

A class this cannot serve (slots, a default factory, a field left out of
``__init__``, keyword-only fields, ``__post_init__``, methods of its own of those
names) is made by ``dataclass(frozen=True)`` unchanged.
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, Field, FrozenInstanceError, dataclass, fields
from typing import Any, TypeVar

T = TypeVar("T")

#: The methods :func:`frozen` provides; a class defining one of them itself gets the full dataclass.
_OURS = ("__init__", "__repr__", "__eq__", "__hash__", "__post_init__", "__slots__")


def _repr(self: Any) -> str:
    cls = type(self)
    inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in cls.__frozen_names__)
    return f"{cls.__qualname__}({inner})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = self.__frozen_names__
    return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, n) for n in self.__frozen_names__))


def _setattr(self: Any, name: str, value: Any) -> None:
    cls = type(self)
    if "__frozen_names__" in cls.__dict__ or name in cls.__frozen_names__:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _delattr(self: Any, name: str) -> None:
    cls = type(self)
    if "__frozen_names__" in cls.__dict__ or name in cls.__frozen_names__:
        raise FrozenInstanceError(f"cannot delete field {name!r}")
    object.__delattr__(self, name)


def frozen(cls: type[T]) -> type[T]:
    """``@dataclass(frozen=True)``: the same class, made with one compiled method instead of six."""
    own = cls.__dict__
    names = list(own.get("__annotations__", {}))
    if any(name in own for name in _OURS) or {"self", "_own_"} & set(names) \
            or any(isinstance(value, Field) for value in own.values()) \
            or any("KW_ONLY" in str(kind) or "ClassVar" in str(kind) or "InitVar" in str(kind)
                   for kind in own.get("__annotations__", {}).values()) \
            or any(hasattr(base, "__dataclass_fields__") for base in cls.__mro__[1:]):
        return dataclass(frozen=True)(cls)
    had_doc = bool(own.get("__doc__"))
    if not had_doc:
        cls.__doc__ = "-"                # written below, once the constructor is there to describe
    made: Any = dataclass(init=False, repr=False, eq=False)(cls)
    made.__dataclass_params__.frozen = True
    every = fields(made)
    defaults = {f"_d_{f.name}": f.default for f in every if f.default is not MISSING}
    params = ", ".join(["self"] + [f.name + (f"=_d_{f.name}" if f.default is not MISSING else "")
                                   for f in every])
    body = "".join(f"    _own_[{f.name!r}] = {f.name}\n" for f in every) or "    pass\n"
    source = f"def __init__({params}):\n    _own_ = self.__dict__\n{body}"
    namespace: dict[str, Any] = dict(defaults)
    exec(source, namespace)                                  # noqa: S102 - built from field names only
    init = namespace["__init__"]
    init.__qualname__ = f"{made.__qualname__}.__init__"
    init.__module__ = made.__module__
    init.__annotations__ = {**{f.name: f.type for f in every}, "return": None}
    made.__init__ = init
    made.__frozen_names__ = tuple(f.name for f in every)
    made.__repr__ = _repr
    made.__eq__ = _eq
    made.__hash__ = _hash
    made.__setattr__ = _setattr
    made.__delattr__ = _delattr
    if not had_doc:                      # what dataclass writes for a class without a docstring
        made.__doc__ = made.__name__ + str(inspect.signature(init)).replace("(self, ", "(").replace("(self)", "()") \
            .replace(" -> None", "")
    return made


def lasting(cls: type[T]) -> type[T]:
    """``@dataclass(frozen=True)`` itself, for an object made once and read often.

    The constructor above stores into the instance's ``__dict__``, and once an
    instance's ``__dict__`` has been asked for, CPython reads its attributes by
    the dictionary rather than by the quicker inline values: a price worth paying
    for a message that is made, read a few times and dropped, not for a
    session's configuration read on every datagram.
    """
    return dataclass(frozen=True)(cls)
