"""The ``carbonstep`` command line: the parser built from one module per command, and ``main``."""

from __future__ import annotations

import argparse
import importlib
import os
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
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's flush at exit
        return status
    except CarbonstepError as exc:
        print(f"carbonstep: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """The reader of stdout closed it (``carbonstep usage DIR | head -1``): stop quietly, as CLIs do. Python's
    documented recipe: point stdout at devnull so the flush at exit does not raise again; exit 1."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (redirected in-process)
        pass
    return 1


if __name__ == "__main__":
    sys.exit(main())
