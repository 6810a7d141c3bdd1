"""Reports: the frozen :class:`RunReport` record, its builder, the one-screen summary and efficiency hints.

``carbonstep.report`` keeps the record's names importable from here (``from carbonstep.report import RunReport``).
"""

from carbonstep.report.record import SCHEMA_VERSION, Device, Epoch, Intensity, Mark, RunReport

__all__ = ["SCHEMA_VERSION", "Device", "Epoch", "Intensity", "Mark", "RunReport"]
