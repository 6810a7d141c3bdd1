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
    p.add_argument("--json", type=Path, help="write the report here (one of several ranks, e.g. under srun: "
                                             "r.json becomes r-rankN.json)")
    p.add_argument("--pushgateway", metavar="URL", help="push the totals to this Prometheus Pushgateway while the "
                   "command runs and the report at the end (carbonstep[prometheus])")
    p.add_argument("--push-every", type=float, default=30.0, metavar="S",
                   help="seconds between pushes (default 30)")
    p.add_argument("--textfile", type=Path, metavar="DIR", help="write the report's totals as a node-exporter "
                   "textfile in this folder at the end")
    p.add_argument("--metrics-port", type=int, metavar="N", help="serve the running totals on "
                   "http://127.0.0.1:N/metrics while the command runs")
    p.add_argument("--project", help="the Prometheus series' project label (default: CARBONSTEP_PROJECT or the "
                   "Slurm account)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``carbonstep run``."""
    from carbonstep.measure.distributed import environment_place, rank_path
    from carbonstep.measure.tracker import Tracker
    from carbonstep.report.summary import render

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise CarbonstepError("nothing to run: carbonstep run [options] -- CMD ARGS...")
    place = environment_place()
    json_path = check_output_file("--json", rank_path(args.json, place)) if args.json is not None else None
    outputs = prometheus_outputs(args)
    tracker = Tracker(region=args.region, attribution=args.attribution, interval_s=args.interval,
                      intensity=args.intensity, name=" ".join(" ".join(command).split())[:80])
    tracker.start()  # before the child: its CPU time counts from its first instant, none goes into the baseline
    _warn(outputs.start(tracker))
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        _warn(outputs.finish(tracker.stop("failed")))
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
    _warn(outputs.finish(report))
    print(render(report), file=sys.stderr)
    if json_path is not None:
        save_report(report, json_path)
    return exit_code(code)


def prometheus_outputs(args: argparse.Namespace) -> Any:
    """The Prometheus outputs the options ask for, checked before the command starts (a missing package or a bad
    port is one line and exit 2; a gateway that fails later is a warning, never a failure)."""
    from carbonstep.sinks.prometheus import INSTALL, Outputs, installed

    outputs = Outputs(args.pushgateway, args.textfile, args.metrics_port, args.project, every_s=args.push_every)
    if outputs.wanted and not installed():
        raise CarbonstepError(f"--pushgateway, --textfile and --metrics-port need prometheus_client: {INSTALL}")
    if args.metrics_port is not None and not 0 < args.metrics_port < 65536:
        raise CarbonstepError(f"--metrics-port {args.metrics_port}: give a TCP port from 1 to 65535")
    if not args.push_every > 0:
        raise CarbonstepError(f"--push-every {args.push_every}: give a positive number of seconds")
    return outputs


def _warn(problems: list[str]) -> None:
    for problem in problems:
        print(f"carbonstep: warning: {problem}", file=sys.stderr)
