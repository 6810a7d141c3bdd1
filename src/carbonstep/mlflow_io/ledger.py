"""The local JSONL ledger of a sink: every record is written here before it is sent.

Several sinks may share one ledger file (two runs in one output directory, a process and a later
one): every line carries the writing sink's id (``sink``), its own sequence number (``seq``), and
``sent`` markers say how far each sink got. A sink writes its header (``type: run``: run id and
tracking URI) first, and again whenever the file it writes to is new (the directory was removed).

Reading is tolerant of what a crash or a bad disk leaves: a line cut mid-write (the last one, or one another
process appended after), a garbage or NUL-filled line anywhere, or a line that is no valid record is skipped with
a warning naming it, never a reason to refuse the good records around it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from carbonstep.errors import DataFileError, SinkError

RECORD_START = b'{"type": '  #: how every ledger line begins: a cut line followed by another writer's is split here


class Ledger:
    """Appends one sink's records to a JSONL file; an I/O error is kept (``error``), never raised."""

    def __init__(self, path: str | os.PathLike[str], sink_id: str | None, header: dict[str, Any],
                 header_written: bool = False) -> None:
        """``sink_id`` tags every line (None: a ledger from before sink ids); ``header_written``: the file
        already holds this sink's header (``sync`` appending its ``sent`` marker)."""
        self.path = Path(path)
        self.sink_id = sink_id
        self.header = {"type": "run", **header, "sink": sink_id}  # "type" first: see RECORD_START
        self.error: SinkError | None = None  #: the first write that failed (None: every write succeeded)
        self.failed_writes = 0
        self._file_id = _file_id(self.path) if header_written else None  # (device, inode) the header went to
        self._lock = threading.Lock()

    def append(self, items: Iterable[dict[str, Any]]) -> bool:
        """Append ``items`` (tagged with this sink's id) in one write; False if the write failed."""
        lines = [json.dumps({**item, "sink": self.sink_id}) + "\n" for item in items]
        if not lines:
            return True
        with self._lock:
            try:
                self._write(lines)
            except OSError as exc:
                self.failed_writes += 1
                if self.error is None:
                    self.error = SinkError(f"cannot write the ledger {self.path}: {exc.strerror or exc}")
                return False
        return True

    def _write(self, lines: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # less the umask
        try:
            stat = os.fstat(fd)
            if (stat.st_dev, stat.st_ino) != self._file_id:  # a file this sink has not written its header to
                lines = [json.dumps(self.header) + "\n", *lines]
            data = "".join(lines).encode()
            written = os.write(fd, data)  # one append: lines of concurrent writers do not interleave
            if written != len(data):
                raise OSError(28, f"short write ({written} of {len(data)} bytes)")
            self._file_id = (stat.st_dev, stat.st_ino)
        finally:
            os.close(fd)


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def file_digest(path: str | os.PathLike[str]) -> str | None:
    """The SHA-256 of a file, or None if it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


@dataclass
class SinkRecords:
    """What one sink wrote to a ledger: its header, its records, and how far they were sent."""

    sink_id: str | None
    header: dict[str, Any] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    sent_upto: int = 0
    sent_run_id: str | None = None  #: the run a previous sync created for a sink that had none

    @property
    def run_id(self) -> str | None:
        """The MLflow run these records belong to: the header's, else the one `sync` created for them."""
        return (self.header or {}).get("run_id") or self.sent_run_id

    @property
    def tracking_uri(self) -> str | None:
        """The tracking server this sink logged to, from its header."""
        return (self.header or {}).get("tracking_uri")

    def pending(self) -> list[dict[str, Any]]:
        """Records not yet sent, in the order written (each sequence number once)."""
        seen: set[int] = set()
        out = []
        for item in self.records:
            seq = item.get("seq", 0)
            if seq > self.sent_upto and seq not in seen:
                seen.add(seq)
                out.append(item)
        return out


@dataclass
class LedgerContents:
    """A ledger read back: every sink's records, and the lines that could not be read (skipped)."""

    sinks: dict[str | None, SinkRecords]
    damaged_lines: list[int]
    warnings: list[str] = field(default_factory=list)  #: one line per skipped line: where and what is wrong


def read_ledger(path: str | os.PathLike[str]) -> LedgerContents:
    """Read a ledger, each record checked (:mod:`carbonstep.mlflow_io.ledger_check`). A line that is no valid
    record (cut by a crash, garbage, NUL bytes, a wrong field) is skipped: its number goes to ``damaged_lines``
    and a warning naming it and the problem to ``warnings``; a whole record another writer appended onto a cut
    line is recovered. Only a file without any sink header (no ledger at all) raises :class:`DataFileError`,
    naming the first bad line if there was one."""
    from carbonstep.mlflow_io.ledger_check import FIX, check_record
    from carbonstep.validate import read_file_bytes

    path = Path(path)
    data = read_file_bytes(path)
    sinks: dict[str | None, SinkRecords] = {}
    damaged: list[int] = []
    warnings: list[str] = []
    first_error: DataFileError | None = None
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            item = check_record(path, number, raw.decode("utf-8"))
            sink_id = item.get("sink")
            if sink_id is not None and not isinstance(sink_id, str):
                raise DataFileError(str(path), number, f"a record's 'sink' must be text, got "
                                                       f"{type(sink_id).__name__}: {FIX}")
        except (DataFileError, UnicodeDecodeError) as exc:
            error = exc if isinstance(exc, DataFileError) else DataFileError(
                str(path), number, f"not UTF-8 text (byte {exc.start}): {FIX}")
            first_error = first_error or error
            damaged.append(number)
            recovered = None if _is_json(raw) else _recover(path, number, raw)
            if recovered is None:
                warnings.append(f"{error}; line skipped")
                continue
            warnings.append(f"{path}, line {number}: cut mid-write; the record appended after it is kept")
            item = recovered
            sink_id = item.get("sink")
        _add(sinks.setdefault(sink_id, SinkRecords(sink_id)), item["type"], item)
    if not any(s.header for s in sinks.values()):
        if first_error is not None:
            raise first_error
        raise DataFileError(str(path), None, f"no 'run' record (the ledger is empty or truncated): {FIX}")
    return LedgerContents(sinks, damaged, warnings)


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return True


def _recover(path: Path, number: int, raw: bytes) -> dict[str, Any] | None:
    """The record another writer appended onto a cut line, if there is one whole."""
    from carbonstep.mlflow_io.ledger_check import check_record

    start = raw.rfind(RECORD_START)
    if start <= 0:
        return None
    try:
        item = check_record(path, number, raw[start:].decode("utf-8"))
    except (DataFileError, UnicodeDecodeError):
        return None
    return item if item.get("sink") is None or isinstance(item.get("sink"), str) else None


def _add(sink: SinkRecords, kind: str, item: dict[str, Any]) -> None:
    if kind == "run":
        sink.header = sink.header or item  # a header written again (new file) repeats the first
    elif kind == "sent":
        if int(item.get("upto", 0)) >= sink.sent_upto:
            sink.sent_upto = int(item.get("upto", 0))
            sink.sent_run_id = item.get("run_id") or sink.sent_run_id
    elif isinstance(item.get("seq"), int):
        sink.records.append(item)


__all__ = ["Ledger", "LedgerContents", "SinkRecords", "file_digest", "read_ledger"]
