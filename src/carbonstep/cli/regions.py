"""``carbonstep regions``: the shipped grid intensities, searched."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    """The ``regions`` command and its options."""
    p = subparsers.add_parser("regions", help="the shipped grid intensities")
    p.add_argument("query", nargs="*", help="region codes or parts of names (all regions when none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``carbonstep regions``."""
    from carbonstep.accounting.regions import search

    rows = search(args.query or "")
    if not rows:
        print(f"no region matches {' '.join(args.query)!r}", file=sys.stderr)
        return 1
    from carbonstep.accounting.regions import format_listing

    print(format_listing(rows))
    return 0
