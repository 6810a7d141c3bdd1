"""Reports: the frozen :class:`RunReport` record, its builder, the one-screen summary and efficiency hints.

``carbonstep.report`` keeps the record's names importable from here (``from carbonstep.report import RunReport``),
loaded on first use: a module of this package (the run's context at start) does not load the record with it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: see measure/tracker.py
if TYPE_CHECKING:
    from carbonstep.report.record import SCHEMA_VERSION, Device, Epoch, Intensity, Mark, RunReport

__all__ = ["SCHEMA_VERSION", "Device", "Epoch", "Intensity", "Mark", "RunReport"]


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module 'carbonstep.report' has no attribute {name!r}")
    from carbonstep.report import record

    value = getattr(record, name)
    globals()[name] = value
    return value
