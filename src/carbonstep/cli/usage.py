"""``carbonstep usage``: its options, and the command that reads, groups and writes the table."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

from carbonstep.analysis.usage.html import page
from carbonstep.analysis.usage.sources import collect
from carbonstep.analysis.usage.usage import (
    GROUPS,
    PERIODS,
    SORT_KEYS,
    STATUSES,
    Filters,
    Usage,
    group_names,
    parse_moment,
    parse_since,
    summarise,
    table,
    to_csv,
    to_json,
)
from carbonstep.errors import ConfigError


def add_parser(subparsers: Any) -> None:
    """Register ``carbonstep usage``."""
    p = subparsers.add_parser("usage", help="a lab's footprint over many runs, by user, project, job, period …",
                              description="Reads report folders and MLflow stores, keeps the runs in the window and "
                              "the filters, groups them and prints per group: runs, GPU-hours, kWh, CO2e, water, "
                              "share, the energy of failed and interrupted runs (wasted), of it the energy after "
                              "their last completed epoch, idle-GPU energy and J per sample; largest first, with "
                              "the total. Each job counts once.")
    p.add_argument("sources", nargs="+", help="folders of report files (searched recursively), report files, or "
                                              "MLflow tracking URIs (sqlite:///mlflow.db, http://host:5000)")
    p.add_argument("--since", help="only runs started in the last 30d / 12h / 2w")
    p.add_argument("--from", dest="start", help="only runs started from this ISO date/time (UTC)")
    p.add_argument("--to", dest="end", help="only runs started before this ISO date/time (UTC)")
    p.add_argument("--user", action="append", default=[], help="only this user (repeatable)")
    p.add_argument("--experiment", "--project", action="append", default=[],
                   help="only this MLflow experiment / project folder (repeatable)")
    p.add_argument("--status", action="append", default=[], choices=STATUSES, help="only this status (repeatable)")
    p.add_argument("--by", default="user", help=f"group by, comma-separated: {', '.join(GROUPS)} (default user)")
    p.add_argument("--sort", default="energy_kwh", choices=SORT_KEYS, help="sort groups by (default energy_kwh)")
    p.add_argument("--period", default=None, choices=PERIODS, help="the HTML chart's bars (default: by the window)")
    p.add_argument("--csv", type=Path, help="write the table as CSV")
    p.add_argument("--json", type=Path, help="write the table as JSON")
    p.add_argument("--html", type=Path, help="write one self-contained page with charts")
    p.set_defaults(func=run)


def filters_from(args: argparse.Namespace, now_s: float) -> Filters:
    """The filters the options ask for."""
    if args.since and args.start:
        raise ConfigError("give --since or --from, not both")
    since_s = parse_since(args.since, now_s) if args.since else parse_moment("--from", args.start) \
        if args.start else None
    until_s = parse_moment("--to", args.end) if args.end else None
    if since_s is not None and until_s is not None and until_s <= since_s:
        raise ConfigError("--to must be after the window's start")
    return Filters(since_s, until_s, list(args.user), list(args.experiment), list(args.status))


def run(args: argparse.Namespace) -> int:
    """The body of ``carbonstep usage``."""
    filters = filters_from(args, time.time())
    by = group_names(args.by)
    collected = collect(list(args.sources), filters.experiments or None, filters.since_s, filters.until_s,
                        filters.users or None)
    for warning in collected.warnings:
        print(f"carbonstep: warning: {warning}", file=sys.stderr)
    usage = summarise(collected.records, by, filters, args.sort)
    usage.sources, usage.warnings, usage.notes = collected.sources, collected.warnings, collected.notes
    print(table(usage))
    outputs: list[tuple[str, Path | None, Callable[[], str]]] = [
        ("--csv", args.csv, lambda: to_csv(usage)), ("--json", args.json, lambda: to_json(usage)),
        ("--html", args.html, lambda: _page(usage, args.period))]
    for option, path, render in outputs:
        if path is not None:
            write_output(option, path, render())
            print(f"wrote {path}")
    return 0


def _page(usage: Usage, period: str | None) -> str:
    return page(usage, period)


def write_output(option: str, path: Path, text: str) -> None:
    """Write ``text`` to ``path``; a path that cannot be written is a ConfigError naming the option."""
    try:
        path.write_text(text, encoding="utf-8")
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{option} {path}: cannot write it ({reason}); give a file path in a writable folder") \
            from None
