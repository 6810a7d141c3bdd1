"""``carbonstep info``: what is measured on this machine, and how."""

from __future__ import annotations

import argparse
import os
from typing import Any


def add_parser(subparsers: Any) -> None:
    """The ``info`` command and its options."""
    p = subparsers.add_parser("info", help="what is measured on this machine, and how")
    p.add_argument("--attribution", choices=["process", "machine"], default="process")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``carbonstep info``."""
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
