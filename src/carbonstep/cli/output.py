"""What several commands print or write: a report saved without ever being lost, warnings, exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

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
