"""carbonstep: the energy, carbon and water of each training step and epoch.

``import carbonstep`` is light: it loads no framework, no MLflow, no torch and no NVML;
the public names below are imported on first use.
"""

from __future__ import annotations

from carbonstep._version import __version__

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing alone costs more than the rest of this module
if TYPE_CHECKING:
    from typing import Any

    from carbonstep.analysis.compare.compare import Comparison, compare
    from carbonstep.errors import CarbonstepError, ConfigError, DataFileError, MissingExtraError
    from carbonstep.measure.tracker import Snapshot, Tracker
    from carbonstep.report.record import RunReport
    from carbonstep.training.budget import Budget

_EXPORTS = {
    "Tracker": "measure.tracker",
    "Snapshot": "measure.tracker",
    "RunReport": "report.record",
    "Budget": "training.budget",
    "compare": "analysis.compare.compare",
    "Comparison": "analysis.compare.compare",
    "CarbonstepError": "errors",
    "ConfigError": "errors",
    "DataFileError": "errors",
    "MissingExtraError": "errors",
}

__all__ = [
    "Budget", "CarbonstepError", "Comparison", "ConfigError", "DataFileError", "MissingExtraError", "RunReport",
    "Snapshot", "Tracker", "__version__", "compare",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'carbonstep' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"carbonstep.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
