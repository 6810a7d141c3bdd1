"""The ``carbonstep`` command line."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Sequence

from carbonstep.cli import compare as compare_cli
from carbonstep.errors import CarbonstepError
from carbonstep.validate import check_output_file

if TYPE_CHECKING:
    from carbonstep.report.record import RunReport


def _cmd_info(args: argparse.Namespace) -> int:
    from carbonstep.measure.readers import discover
    from carbonstep.measure.readers.estimate import cpu_model_name

    found = discover(args.attribution)
    print(f"carbonstep on {os.uname().nodename}: CPU {cpu_model_name()!r}, {os.cpu_count()} logical CPUs")
    print("Measured:")
    for reader in found.readers:
        print(f"  {reader.domain.value:<4} {reader.method.value:<9} {reader.description}")
    if found.unavailable:
        print("Not available:")
    for item in found.unavailable:
        print(f"  {item.source}: {item.reason}")
        if item.fix:
            print(f"      fix: {item.fix}")
    for warning in found.warnings:
        print(f"  ! {warning}")
    methods = {r.domain.value: r.method.value for r in found.readers}
    if methods.get("cpu") == "estimate":
        rapl_fix = any(item.fix and item.source.startswith("rapl") for item in found.unavailable)
        print("Better numbers: readable RAPL counters replace the CPU/RAM estimates "
              + ("(see the fix above)." if rapl_fix else
                 "(bare metal, or a VM that exposes /sys/class/powercap/intel-rapl*; none is readable here)."))
    for reader in found.readers:
        reader.close()
    return 0


def _cmd_regions(args: argparse.Namespace) -> int:
    from carbonstep.accounting.regions import search

    rows = search(args.query or "")
    if not rows:
        print(f"no region matches {args.query!r}", file=sys.stderr)
        return 1
    from carbonstep.accounting.regions import format_listing

    print(format_listing(rows))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from carbonstep.report.record import RunReport
    from carbonstep.report.summary import render

    print(render(RunReport.load(args.path)))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
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


def _cmd_merge(args: argparse.Namespace) -> int:
    from carbonstep.report.merge import merge
    from carbonstep.report.record import RunReport
    from carbonstep.report.summary import render

    out = check_output_file("--output", args.output) if args.output is not None else None
    job = merge([RunReport.load(path) for path in args.reports], name=args.name)
    print(render(job))
    written = save_report(job, out or Path(f"carbonstep-{job.run_id}-job.json"))
    if written is not None:
        print(f"wrote {written}")
    return 0


def _job_energy(args: argparse.Namespace) -> tuple[float, RunReport | None]:
    """The job's IT kWh (and its report, if one was given) from --kwh or --report."""
    from carbonstep.accounting.footprint import check_factor
    from carbonstep.report.record import RunReport

    if (args.kwh is None) == (args.report is None):
        raise CarbonstepError("give the job's energy: --kwh N or --report REPORT.json (one of them)")
    if args.report is not None:
        report = RunReport.load(args.report)
        return report.energy_kwh, report
    return check_factor("--kwh", args.kwh, 0.0, "the job's IT energy in kWh"), None


def _cmd_plan(args: argparse.Namespace) -> int:
    from carbonstep.accounting.footprint import check_factor
    from carbonstep.analysis.plan import plan

    if not args.sites and not args.forecast:
        raise CarbonstepError("plan what? --sites SITES.csv (where) and/or --forecast INTENSITY.csv (when)")
    kwh, report = _job_energy(args)
    if args.sites:
        sites = plan.read_sites(args.sites, args.encoding)
        _warn([w for site in sites for w in site.warnings])
        print(plan.format_sites(plan.rank_sites(sites, kwh), kwh))
    if args.forecast:
        import time

        from carbonstep.accounting.timeseries import parse_time, read_series

        if args.duration:
            duration = plan.parse_duration(args.duration)
        elif report is not None and report.duration_s > 0:
            duration = report.duration_s
        else:
            raise CarbonstepError("--duration is needed (e.g. 6h) unless --report gives the job's duration")
        profile = plan.profile_of(report.timeline) if report is not None else plan.flat_profile()
        shape = "power profile of the report's run" if report is not None and len(report.timeline) > 1 \
            else "flat power"
        now = parse_time(args.now, "--now") if args.now else time.time()
        pue = args.pue if args.pue is not None else (report.pue if report is not None else 1.0)
        pue = check_factor("--pue", pue, 1.0, "power usage effectiveness")
        if args.sites:
            print()
        forecast = read_series(args.forecast, args.encoding,
                               lambda rows: print(f"  reading {args.forecast}: {rows:,} rows", file=sys.stderr))
        _warn(list(forecast.warnings))
        chosen = plan.best_start(forecast, duration, kwh, now, pue, profile,
                                 lambda done, total: print(f"  planning: {done:,} of {total:,} starts costed",
                                                           file=sys.stderr))
        print(plan.format_start(chosen, kwh, duration, shape))
    return 0


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"carbonstep: warning: {warning}", file=sys.stderr)


def _cmd_sync(args: argparse.Namespace) -> int:
    from carbonstep.mlflow_io.sink import sync_ledger_details

    for path in args.ledgers:
        try:
            result = sync_ledger_details(path, args.tracking_uri)
        except CarbonstepError:
            raise
        except OSError as exc:
            raise CarbonstepError(f"cannot read {path}: {exc.strerror or exc}") from None
        except Exception as exc:  # noqa: BLE001 - the server's error, said plainly
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise CarbonstepError(f"could not send {path}: {reason}") from None
        sent = result.sent
        runs = f" to run{'s' if len(set(result.runs)) > 1 else ''} {', '.join(dict.fromkeys(result.runs))}"
        print(f"{path}: {sent} record{'s' if sent != 1 else ''} sent{runs}" if sent
              else f"{path}: nothing left to send")
        if result.damaged_lines:
            lines = ", ".join(map(str, result.damaged_lines[:10]))
            print(f"{path}: skipped {len(result.damaged_lines)} damaged line(s) (cut by a crash?): {lines}",
                  file=sys.stderr)
        for refused in result.refused:
            print(f"{path}: not uploaded: {refused} (only reports beside the ledger, unchanged since the run, are)",
                  file=sys.stderr)
    return 0


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print one line (no usage dump) and exit 2, as every bad argument does."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``carbonstep`` command line: every subcommand and its options."""
    parser = OneLineParser(prog="carbonstep", description="Energy, CO2e and water of computations.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("info", help="what is measured on this machine, and how")
    p.add_argument("--attribution", choices=["process", "machine"], default="process")
    p.set_defaults(func=_cmd_info)
    p = sub.add_parser("run", help="measure a command and its child processes")
    p.add_argument("--region")
    p.add_argument("--intensity", help="g CO2e/kWh, or a CSV time series")
    p.add_argument("--attribution", choices=["process", "machine"], default="process")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between samples (default 1)")
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("regions", help="the shipped grid intensities")
    p.add_argument("query", nargs="?")
    p.set_defaults(func=_cmd_regions)
    p = sub.add_parser("report", help="summarise a saved report")
    p.add_argument("path", type=Path)
    p.set_defaults(func=_cmd_report)
    p = sub.add_parser("merge", help="one job's total from the reports of its processes (shared devices once)")
    p.add_argument("reports", nargs="+", type=Path)
    p.add_argument("-o", "--output", type=Path, help="write the job report here (default carbonstep-<id>-job.json)")
    p.add_argument("--name", help="a name for the job")
    p.set_defaults(func=_cmd_merge)
    p = sub.add_parser("plan", help="rank sites by CO2e and water; find the cleanest start time in a forecast")
    p.add_argument("--sites", type=Path, help="CSV: site,pue,wue,region (or intensity)[,water_intensity]")
    p.add_argument("--forecast", type=Path, help="intensity forecast CSV (the formats --intensity reads)")
    p.add_argument("--duration", help="the job's duration, e.g. 6h or 90m (default: the report's)")
    p.add_argument("--kwh", type=float, help="the job's IT energy in kWh")
    p.add_argument("--report", type=Path, help="a previous run's report: its energy and its power profile")
    p.add_argument("--now", help="ISO time to plan from (default: the current time)")
    p.add_argument("--pue", type=float, help="PUE for the forecast plan (default: the report's, else 1)")
    p.add_argument("--encoding", help="the CSV files' text encoding (default: detected; e.g. latin-1, utf-16)")
    p.set_defaults(func=_cmd_plan)
    compare_cli.add_parser(sub)
    p = sub.add_parser("sync", help="send MLflow records kept in a local ledger while the server was unreachable")
    p.add_argument("ledgers", nargs="+", type=Path)
    p.add_argument("--tracking-uri", help="send to this server instead of the one recorded in the ledger")
    p.set_defaults(func=_cmd_sync)
    from carbonstep.callbacks import optuna as optuna_study  # optuna itself is imported only when used
    from carbonstep.cli import usage

    usage.add_parser(sub)
    optuna_study.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``carbonstep`` command line; the exit status (2 for bad input, with one line saying why)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CarbonstepError as exc:
        print(f"carbonstep: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
