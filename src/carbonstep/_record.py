"""``NamedTuple`` for the records a run builds, without importing ``typing``; :class:`DataclassMethods` for its
frozen dataclasses.

``class Unavailable(NamedTuple): source: str ...`` declares a record as :class:`typing.NamedTuple` does and gives the
same class (a :func:`collections.namedtuple` with the class body's defaults, methods and docstring), but it never
reads the annotations (``typing.NamedTuple`` compiles each string annotation into a ``ForwardRef``) and needs no
``typing``: a Tracker's start and stop import neither. Type checkers see ``typing.NamedTuple`` itself.
"""

from __future__ import annotations

import reprlib
from collections import namedtuple

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing is what this module avoids
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    #: what a class body may not set (as typing.NamedTuple), and what is not copied onto the class
    _PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
                             "_make", "_replace", "_asdict", "_source"})
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__", "__annotate__", "__annotate_func__",
                          "__annotations_cache__"})

    class _NamedTupleMeta(type):
        def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, object]) -> type:
            annotations = _annotations(namespace)
            defaults = [field for field in annotations if field in namespace]
            if defaults and list(annotations)[-len(defaults):] != defaults:
                raise TypeError(f"{name}: a field without a default follows one with a default")
            record = namedtuple(name, annotations, defaults=[namespace[f] for f in defaults],
                                module=namespace["__module__"])
            record.__annotations__ = annotations
            for key, value in namespace.items():
                if key in _PROHIBITED:
                    raise AttributeError(f"cannot overwrite NamedTuple attribute {key}")
                if key not in _SPECIAL and key not in record._fields:
                    setattr(record, key, value)
            return record

    NamedTuple = type.__new__(_NamedTupleMeta, "NamedTuple", (), {})

    def _annotations(namespace: dict[str, object]) -> dict[str, object]:
        """The class body's annotations: its ``__annotations__``, or (Python 3.14, PEP 649, where they are evaluated
        lazily) its annotate function's, as ``typing.NamedTuple`` reads them there."""
        if "__annotations__" in namespace:
            return dict(namespace["__annotations__"])
        try:
            import annotationlib
        except ImportError:
            return {}
        annotate = annotationlib.get_annotate_from_class_namespace(namespace)
        return annotationlib.call_annotate_function(annotate, annotationlib.Format.FORWARDREF) if annotate else {}


class DataclassMethods:
    """``__repr__``, ``__eq__`` and ``__hash__`` as ``@dataclass(frozen=True)`` generates them (same fields, same
    results), written once here instead of compiled for every class when its module is imported: a record is
    ``@dataclass(frozen=True, repr=False, eq=False)`` over this base, and stays a dataclass (``dataclasses.fields``,
    ``replace``, ``asdict``), frozen and hashable as before."""

    __slots__ = ()

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _names(type(self), "repr"))
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            names = _names(type(self), "compare")
            return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in _names(type(self), "hash")))


_NAMES: dict[tuple[type, str], tuple[str, ...]] = {}


def _names(cls: type, role: str) -> tuple[str, ...]:
    """The fields ``@dataclass`` would show (``repr``), compare (``compare``) or hash (``hash``: a field's ``hash``,
    or its ``compare`` when that is None), in order."""
    names = _NAMES.get((cls, role))
    if names is None:
        import dataclasses

        fields = dataclasses.fields(cls)
        if role == "hash":
            names = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
        else:
            names = tuple(f.name for f in fields if getattr(f, role))
        _NAMES[(cls, role)] = names
    return names


__all__ = ["DataclassMethods", "NamedTuple"]
