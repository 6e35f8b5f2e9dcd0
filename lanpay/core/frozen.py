"""Frozen dataclasses that are quick to make: the wire's messages and the core's events.

A frozen dataclass refuses attribute assignment, so the ``__init__`` that
``dataclasses`` writes sets every field through ``object.__setattr__``: on
CPython 3.11 that is about three times the cost of making the object
otherwise, and several messages and events are made per datagram.  The
``__init__`` put in its place stores into the new instance's ``__dict__``
directly: same parameters, same defaults, same object, and the class is as
frozen as before (only its constructor writes).  A class this cannot serve
(slots, a default factory, a field left out of ``__init__``, ``__post_init__``)
keeps the generated one.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any, TypeVar

T = TypeVar("T")


def frozen(cls: type[T]) -> type[T]:
    """``@dataclass(frozen=True)``, with the quicker ``__init__`` where it applies."""
    made: Any = dataclass(frozen=True)(cls)
    every = fields(made)
    if "__slots__" in made.__dict__ or hasattr(made, "__post_init__") or {"self", "_own_"} & {f.name for f in every} \
            or any(f.default_factory is not MISSING or not f.init or f.kw_only for f in every):
        return made
    defaults = {f"_d_{f.name}": f.default for f in every if f.default is not MISSING}
    params = ", ".join(["self"] + [f.name + (f"=_d_{f.name}" if f.default is not MISSING else "")
                                   for f in every])
    body = "".join(f"    _own_[{f.name!r}] = {f.name}\n" for f in every)
    source = f"def __init__({params}):\n    _own_ = self.__dict__\n{body}"
    namespace: dict[str, Any] = dict(defaults)
    exec(source, namespace)                                  # noqa: S102 - built from field names only
    init = namespace["__init__"]
    init.__qualname__ = f"{made.__qualname__}.__init__"
    init.__module__ = made.__module__
    init.__doc__ = made.__init__.__doc__
    init.__annotations__ = dict(made.__init__.__annotations__)
    made.__init__ = init
    return made
