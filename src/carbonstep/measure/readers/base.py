"""What every energy reader is: a small protocol and the records it produces.

The enums a reader is described by (``Domain``, ``Kind``, ``Method``, ``Share``, ``Scope``) live in
:mod:`carbonstep.vocabulary` and are importable from here too.
"""

from __future__ import annotations

from carbonstep._record import NamedTuple
from carbonstep.vocabulary import Domain, Kind, Method, Scope, Share

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Protocol, runtime_checkable
else:  # at run time the protocol is a plain class (nothing checks a reader against it): no typing imported
    Protocol = object

    def runtime_checkable(cls: type) -> type:
        return cls


@runtime_checkable
class Reader(Protocol):
    """A source of energy for one device. Knows hardware only: no threads, no totals."""

    name: str
    domain: Domain
    kind: Kind
    method: Method
    share: Share
    scope: Scope
    wrap_j: float | None
    description: str

    def read(self) -> float:
        """Cumulative joules (``Kind.COUNTER``) or watts (``Kind.POWER``)."""
        ...

    def close(self) -> None:
        """Release what the reader holds."""
        ...


class Unavailable(NamedTuple):
    """A source that was looked for and not used, and why (shown by ``carbonstep info``)."""

    source: str
    reason: str
    fix: str = ""


def counter_delta(previous: float, current: float, wrap_j: float | None) -> float:
    """Energy between two reads of a cumulative counter that wraps at ``wrap_j``.

    A drop with no known wrap (a counter reset, e.g. a driver reload) counts as zero.
    """
    if current >= previous:
        return current - previous
    if wrap_j:
        return current + wrap_j - previous
    return 0.0


__all__ = ["Domain", "Kind", "Method", "Reader", "Scope", "Share", "Unavailable", "counter_delta"]
