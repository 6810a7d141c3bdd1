"""The errors carbonstep raises.

::

    CarbonstepError
    ├── ConfigError        bad configuration: raised at once, the message says the fix
    │   └── DataFileError  a malformed data file (intensity CSV, sites file): names the line
    ├── ReaderError        a hardware reader failed (recorded in the report, never raised into training)
    ├── SinkError          a sink could not deliver (recorded, retried or reported, never raised into training)
    └── MissingExtraError  an optional dependency is not installed: names the extra to install
"""

from __future__ import annotations


class CarbonstepError(Exception):
    """Base class of every error raised by carbonstep."""


class ConfigError(CarbonstepError, ValueError):
    """A configuration value is invalid; the message says how to fix it."""


class DataFileError(ConfigError):
    """A data file is malformed; ``path`` and ``line`` say where."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


class ReaderError(CarbonstepError):
    """A hardware reader could not read."""


class SinkError(CarbonstepError):
    """A sink could not deliver a record."""


class MissingExtraError(CarbonstepError, ImportError):
    """An optional dependency is missing."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed; install it with: pip install 'carbonstep[{extra}]'"
        )
        self.package = package
        self.extra = extra


def require(module: str, extra: str):  # noqa: ANN201 - returns a module
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module.split(".")[0], extra) from exc
