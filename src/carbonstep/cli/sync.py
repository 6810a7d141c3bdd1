"""``carbonstep sync``: send MLflow records kept in a local ledger while the server was unreachable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from carbonstep.errors import CarbonstepError


def add_parser(subparsers: Any) -> None:
    """The ``sync`` command and its options."""
    p = subparsers.add_parser("sync",
                              help="send MLflow records kept in a local ledger while the server was unreachable")
    p.add_argument("ledgers", nargs="+", type=Path)
    p.add_argument("--tracking-uri", help="the MLflow server to send to (default: MLFLOW_TRACKING_URI; the URI "
                   "written in a ledger is never used)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``carbonstep sync``."""
    from carbonstep.mlflow_io.sync import sync_ledger_details, sync_target

    sync_target(args.tracking_uri)  # no target: one line, before any ledger is read
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
        for named in result.ledger_uris:
            print(f"{path}: the ledger named {named}; sent to {result.target} instead (pass --tracking-uri to "
                  "choose)", file=sys.stderr)
        sent = result.sent
        runs = f" to run{'s' if len(set(result.runs)) > 1 else ''} {', '.join(dict.fromkeys(result.runs))}"
        print(f"{path}: {sent} record{'s' if sent != 1 else ''} sent{runs}" if sent
              else f"{path}: nothing left to send")
        if result.damaged_lines:
            lines = ", ".join(map(str, result.damaged_lines[:10]))
            print(f"{path}: skipped {len(result.damaged_lines)} damaged line(s): {lines}", file=sys.stderr)
            for warning in result.warnings[:10]:
                print(f"  {warning}", file=sys.stderr)
        for refused in result.refused:
            print(f"{path}: not uploaded: {refused} (only reports beside the ledger, unchanged since the run, are)",
                  file=sys.stderr)
    return 0
