"""``carbonstep plan``: rank sites by CO2e and water; find the cleanest start time in a forecast."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbonstep.cli.output import warn
from carbonstep.errors import CarbonstepError

if TYPE_CHECKING:
    from carbonstep.report.record import RunReport


def add_parser(subparsers: Any) -> None:
    """The ``plan`` command and its options."""
    p = subparsers.add_parser("plan", help="rank sites by CO2e and water; find the cleanest start time in a forecast")
    p.add_argument("--sites", type=Path, help="CSV: site,pue,wue,region (or intensity)[,water_intensity]")
    p.add_argument("--forecast", type=Path, help="intensity forecast CSV (the formats --intensity reads)")
    p.add_argument("--duration", help="the job's duration, e.g. 6h or 90m (default: the report's)")
    p.add_argument("--kwh", type=float, help="the job's IT energy in kWh")
    p.add_argument("--report", type=Path, help="a previous run's report: its energy and its power profile")
    p.add_argument("--now", help="ISO time to plan from (default: the current time)")
    p.add_argument("--pue", type=float, help="PUE for the forecast plan (default: the report's, else 1)")
    p.add_argument("--encoding", help="the CSV files' text encoding (default: detected; e.g. latin-1, utf-16)")
    p.set_defaults(func=run)


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


def run(args: argparse.Namespace) -> int:
    """``carbonstep plan``."""
    from carbonstep.accounting.footprint import check_factor
    from carbonstep.analysis.plan import plan

    if not args.sites and not args.forecast:
        raise CarbonstepError("plan what? --sites SITES.csv (where) and/or --forecast INTENSITY.csv (when)")
    kwh, report = _job_energy(args)
    if args.sites:
        sites = plan.read_sites(args.sites, args.encoding)
        warn([w for site in sites for w in site.warnings])
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
        warn(list(forecast.warnings))
        chosen = plan.best_start(forecast, duration, kwh, now, pue, profile,
                                 lambda done, total: print(f"  planning: {done:,} of {total:,} starts costed",
                                                           file=sys.stderr))
        print(plan.format_start(chosen, kwh, duration, shape))
    return 0
