"""``carbonstep merge``: one job's total from the reports of its processes (shared devices once)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from carbonstep.cli.output import save_report, warn
from carbonstep.validate import check_output_file


def add_parser(subparsers: Any) -> None:
    """The ``merge`` command and its options."""
    p = subparsers.add_parser("merge", help="one job's total from the reports of its processes (shared devices once)")
    p.add_argument("reports", nargs="+", type=Path)
    p.add_argument("-o", "--output", type=Path, help="write the job report here (default carbonstep-<id>-job.json)")
    p.add_argument("--name", help="a name for the job")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``carbonstep merge``."""
    from carbonstep.report.loading import implausible
    from carbonstep.report.merge import merge, merge_warnings
    from carbonstep.report.record import RunReport
    from carbonstep.report.summary import render

    out = check_output_file("--output", args.output) if args.output is not None else None
    reports = [RunReport.load(path) for path in args.reports]
    now_s = time.time()
    warn([f"{path}: {line}" for path, report in zip(args.reports, reports) for line in implausible(report, now_s)]
         + merge_warnings(reports))
    job = merge(reports, name=args.name)
    print(render(job))
    written = save_report(job, out or Path(f"carbonstep-{job.run_id}-job.json"))
    if written is not None:
        print(f"wrote {written}")
    return 0
