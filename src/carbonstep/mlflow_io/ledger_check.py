"""Checking one line of a local MLflow ledger (JSONL) before anything is sent (the reader is
:func:`carbonstep.mlflow_io.ledger.read_ledger`).

A ledger is written by :class:`~carbonstep.mlflow_io.sink.MlflowSink`: a ``run`` record first, then
``metric``/``param``/``tag``/``artifact`` records numbered by ``seq``, and ``sent`` records saying
how far delivery got. A line that is no such record raises :class:`DataFileError` naming the line.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Any

from carbonstep.errors import DataFileError
from carbonstep.validate import shown

#: The fields each kind of record needs, and their types.
RECORD_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "run": {"run_id": (str, type(None)), "tracking_uri": (str,)},
    "metric": {"key": (str,), "value": (numbers.Real,), "timestamp": (int,), "step": (int,), "seq": (int,)},
    "param": {"key": (str,), "value": (str,), "seq": (int,)},
    "tag": {"key": (str,), "value": (str,), "seq": (int,)},
    "artifact": {"path": (str,), "seq": (int,)},
    "sent": {"upto": (int,)},
}
FIX = "is this a carbonstep ledger (the .jsonl file an MlflowSink keeps)?"


def check_record(path: Path, number: int, line: str) -> dict[str, Any]:
    """One ledger line as a record, its fields checked; DataFileError naming the line otherwise."""
    try:
        item = json.loads(line)
    except RecursionError:
        raise DataFileError(str(path), number, f"a record nested too deeply: {FIX}") from None
    except ValueError as exc:
        raise DataFileError(str(path), number, f"not JSON ({shown(str(exc))[1:-1]}): {FIX}") from None
    if not isinstance(item, dict):
        raise DataFileError(str(path), number, f"a record must be a JSON object, got {shown(item)}: {FIX}")
    kind = item.get("type")
    if not isinstance(kind, str) or kind not in RECORD_FIELDS:
        raise DataFileError(str(path), number, f"unknown record type {shown(kind)}: {FIX}")
    for name, types in RECORD_FIELDS[kind].items():
        if name not in item:
            raise DataFileError(str(path), number, f"{kind} record has no {name!r}: {FIX}")
        value = item[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise DataFileError(str(path), number, f"{kind} record's {name!r} is {shown(value)}: {FIX}")
        if name in ("seq", "upto", "timestamp") and isinstance(value, int) and value < 0:
            raise DataFileError(str(path), number, f"{kind} record's {name!r} is negative: {FIX}")
    return item
