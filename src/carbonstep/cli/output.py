"""What several commands print or write: a report saved without ever being lost, warnings, exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from carbonstep.report.record import RunReport


def exit_code(returncode: int) -> int:
    """The shell's exit status for a child's ``returncode``: 128+N for a child killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def save_report(report: RunReport, path: Path) -> Path | None:
    """Write ``report`` to ``path``, else to the temporary directory, saying where on stderr; if
    nothing can be written, print the report's JSON to stderr. The report is never lost."""
    written, message = report.save_or_fallback(path)
    if message is not None:
        print(f"carbonstep: {message}" + ("; the report follows:" if written is None else ""), file=sys.stderr)
    if written is None:
        print(report.to_json(indent=None), file=sys.stderr)
    return written


def warn(warnings: list[str]) -> None:
    """Print each warning on its own line on stderr."""
    for warning in warnings:
        print(f"carbonstep: warning: {warning}", file=sys.stderr)


def check_plot_path(option: str, path: Path) -> None:
    """A ConfigError, before any work, when ``path``'s suffix is not an image format matplotlib writes (no suffix:
    matplotlib's default, PNG). Needs the plot extra, as the plot does."""
    from carbonstep.errors import ConfigError, require

    require("matplotlib", "plot")
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = path.suffix.lower().lstrip(".")
    if suffix and suffix not in formats:
        raise ConfigError(f"{option} {path}: .{suffix} is not an image format; give .png, .svg or .pdf "
                          f"(matplotlib writes {', '.join(sorted(formats))})")


def written(option: str, path: Path, write: Callable[[], Path]) -> Path:
    """``write()``'s path; an OSError or ValueError while writing (a full disk, a folder turned read-only, a
    format refused) becomes one ConfigError line naming the option."""
    from carbonstep.errors import ConfigError

    try:
        return write()
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else (str(exc).splitlines() or [""])[0]
        raise ConfigError(f"{option} {path}: cannot write it ({reason}); give a file path in a writable folder") \
            from None
