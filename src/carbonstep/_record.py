"""``NamedTuple`` for the records a run builds, without importing ``typing``.

``class Unavailable(NamedTuple): source: str ...`` declares a record as :class:`typing.NamedTuple` does and gives the
same class (a :func:`collections.namedtuple` with the class body's defaults, methods and docstring), but it never
reads the annotations (``typing.NamedTuple`` compiles each string annotation into a ``ForwardRef``) and needs no
``typing``: a Tracker's start and stop import neither. Type checkers see ``typing.NamedTuple`` itself.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing is what this module avoids
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    #: what a class body may not set (as typing.NamedTuple), and what is not copied onto the class
    _PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
                             "_make", "_replace", "_asdict", "_source"})
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})

    class _NamedTupleMeta(type):
        def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, object]) -> type:
            annotations = namespace.get("__annotations__", {})
            defaults = [field for field in annotations if field in namespace]
            if defaults and list(annotations)[-len(defaults):] != defaults:
                raise TypeError(f"{name}: a field without a default follows one with a default")
            record = namedtuple(name, annotations, defaults=[namespace[f] for f in defaults],
                                module=namespace["__module__"])
            record.__annotations__ = dict(annotations)
            for key, value in namespace.items():
                if key in _PROHIBITED:
                    raise AttributeError(f"cannot overwrite NamedTuple attribute {key}")
                if key not in _SPECIAL and key not in record._fields:
                    setattr(record, key, value)
            return record

    NamedTuple = type.__new__(_NamedTupleMeta, "NamedTuple", (), {})

__all__ = ["NamedTuple"]
