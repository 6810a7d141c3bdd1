"""The ``carbonstep`` command line: the parser built from one module per command, and ``main``."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn, Sequence

from carbonstep.errors import CarbonstepError

#: one module of this package per command, each with ``add_parser(subparsers)`` and ``run(args)``; what a command
#: needs (optuna, mlflow, matplotlib …) is imported inside its ``run``, so building the parser stays light
COMMANDS = ("info", "run", "regions", "report", "merge", "plan", "compare", "sync", "usage", "study")


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print one line (no usage dump) and exit 2, as every bad argument does."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``carbonstep`` command line: every subcommand and its options."""
    parser = OneLineParser(prog="carbonstep", description="Energy, CO2e and water of computations.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in COMMANDS:
        importlib.import_module(f"carbonstep.cli.{name}").add_parser(sub)
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
