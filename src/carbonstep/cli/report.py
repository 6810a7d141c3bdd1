"""``carbonstep report``: the summary of a saved report."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from carbonstep.cli.output import warn


def add_parser(subparsers: Any) -> None:
    """The ``report`` command and its options."""
    p = subparsers.add_parser("report", help="summarise a saved report")
    p.add_argument("path", type=Path)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``carbonstep report``."""
    from carbonstep.report.loading import implausible
    from carbonstep.report.record import RunReport
    from carbonstep.report.summary import render

    report = RunReport.load(args.path)
    warn([f"{args.path}: {line}" for line in implausible(report, time.time())])
    print(render(report))
    return 0
