"""``carbonstep run``: measure a command and its child processes."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from carbonstep.cli.output import exit_code, save_report
from carbonstep.errors import CarbonstepError
from carbonstep.validate import check_output_file


def add_parser(subparsers: Any) -> None:
    """The ``run`` command and its options."""
    p = subparsers.add_parser("run", help="measure a command and its child processes")
    p.add_argument("--region")
    p.add_argument("--intensity", help="g CO2e/kWh, or a CSV time series")
    p.add_argument("--attribution", choices=["process", "machine"], default="process")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between samples (default 1)")
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``carbonstep run``."""
    from carbonstep.measure.tracker import Tracker
    from carbonstep.report.summary import render

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise CarbonstepError("nothing to run: carbonstep run [options] -- CMD ARGS...")
    json_path = check_output_file("--json", args.json) if args.json is not None else None
    tracker = Tracker(region=args.region, attribution=args.attribution, interval_s=args.interval,
                      intensity=args.intensity, name=" ".join(" ".join(command).split())[:80])
    tracker.start()  # before the child: its CPU time counts from its first instant, none goes into the baseline
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        tracker.stop("failed")
        raise CarbonstepError(f"cannot run {command[0]!r}: {exc.strerror}") from None
    tracker.list_processes_again()  # the next sample sees the child
    forwarded: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        forwarded.append(signum)
        child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    status = "interrupted" if forwarded else "completed" if code == 0 else "failed"
    report = tracker.stop(status)
    print(render(report), file=sys.stderr)
    if json_path is not None:
        save_report(report, json_path)
    return exit_code(code)
