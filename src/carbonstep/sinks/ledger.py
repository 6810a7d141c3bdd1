"""The local JSONL ledger of a sink: every record is written here before it is sent.

Several sinks may share one ledger file (two runs in one output directory, a process and a later
one): every line carries the writing sink's id (``sink``), its own sequence number (``seq``), and
``sent`` markers say how far each sink got. A sink writes its header (``type: run``: run id and
tracking URI) first, and again whenever the file it writes to is new (the directory was removed).

Reading is tolerant of what a crash leaves: a line cut mid-write (the last one, or one another
process appended after) is skipped and counted, never a reason to refuse the complete records.
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
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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
        return (self.header or {}).get("run_id") or self.sent_run_id

    @property
    def tracking_uri(self) -> str | None:
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
    """A ledger read back: every sink's records, and the lines that could not be read."""

    sinks: dict[str | None, SinkRecords]
    damaged_lines: list[int]


def read_ledger(path: str | os.PathLike[str]) -> LedgerContents:
    """Read a ledger. Cut or garbled lines are skipped (their numbers are returned); a file with no
    sink header at all raises :class:`DataFileError`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataFileError(str(path), None, f"cannot read: {exc.strerror}") from None
    sinks: dict[str | None, SinkRecords] = {}
    damaged: list[int] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        item = _parse(raw)
        if item is None:
            damaged.append(number)
            item = _parse(raw[raw.rfind(RECORD_START):]) if raw.rfind(RECORD_START) > 0 else None
            if item is None:
                continue
        kind = item["type"]
        _add(sinks.setdefault(item.get("sink"), SinkRecords(item.get("sink"))), kind, item)
    if not any(s.header for s in sinks.values()):
        raise DataFileError(str(path), None, "not a carbonstep ledger: no sink header (a line with type 'run')")
    return LedgerContents(sinks, damaged)


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        item = json.loads(raw)
    except ValueError:
        return None
    return item if isinstance(item, dict) and isinstance(item.get("type"), str) else None


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
