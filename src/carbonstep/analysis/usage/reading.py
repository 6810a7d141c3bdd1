"""Reading a folder of report files fast: a lean parse, a cache of what was read, and two processes or more.

* **Lean parse.** A report written by carbonstep (``json.dumps(indent=2)``) has its top-level members on lines
  indented by exactly two spaces, and JSON strings hold no raw newline, so ``\\n  "key": `` starts a top-level
  member and nothing else. Its ``marks`` (most of a long run's file) and ``timeline`` are cut out of the text
  before it is parsed; marks are parsed only when the run has no epochs to count samples from. Any other layout,
  or text the lean parse cannot read, is parsed whole, so errors name the same place they always did.
* **Cache.** What each file gave (its record, or the warning that skipped it) is kept in one JSON file per
  folder under ``$CARBONSTEP_USAGE_CACHE`` (else ``$XDG_CACHE_HOME/carbonstep/usage``, else
  ``~/.cache/carbonstep/usage``), keyed by the file's path, size and modification time in nanoseconds: a file
  changed in any of those is read again. Files modified in the last :data:`RACY_S` seconds are not kept (a
  change within the same clock tick would keep both size and time). ``CARBONSTEP_USAGE_CACHE=off`` reads
  everything every time; a cache that cannot be written is left alone. Only folders of at least
  :data:`CACHE_MIN_FILES` report files are cached.
* **Processes.** Files the cache does not answer are read by a pool of processes (one per CPU this process
  may use, ``CARBONSTEP_USAGE_WORKERS`` to choose) when there are at least :data:`POOL_MIN_FILES`; results come
  back in the folder's order, so counting is the same as reading one file after the other.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterator

from carbonstep.report.record import SCHEMA_VERSION
from carbonstep.report.usage_record import UNKNOWN, UsageRecord, from_report_dict
from carbonstep.validate import MAX_FILE_BYTES

CACHE_FORMAT = 2  #: raised whenever what a record is made of changes, so old caches are read again
CACHE_MIN_FILES = 1000
POOL_MIN_FILES = 2000
CHUNK_FILES = 250  #: files per task sent to a worker process
RACY_S = 2.0
PROGRESS_FILES = 10_000
PROGRESS_S = 5.0
RECORD_FIELDS = tuple(f.name for f in fields(UsageRecord))


@dataclass(frozen=True)
class Entry:
    """One report file as ``carbonstep usage`` counts it."""

    record: UsageRecord
    started_at: str
    rank: int | None  #: this process's rank when the report is one rank's of several
    part_ids: tuple[str, ...]  #: the run ids a job report covers


# -- one file ------------------------------------------------------------------------------------------
def _cut_marks(text: str) -> tuple[str, str | None]:
    """The report's text with its ``marks`` array emptied, and that array's text (None: nothing cut)."""
    key = text.find('"marks":')
    if key < 0:
        return text, None
    start = text.find("[", key)
    end = text.find("]", start)
    cut = text[start:end + 1]
    if start < 0 or end < 0 or "[" in cut[1:] or (cut.count('"') - cut.count('\\"')) % 2:
        return text, None  # a bracket inside a mark's name: parse the whole text instead
    return text[:start] + "[]" + text[end + 1:], cut


def _top_level_value(text: str, key: str, backwards: bool) -> tuple[int, int] | None:
    """Where the array value of top-level ``key`` is (start, end past its ``]``) in an indent-2 report, when a
    member follows it; None otherwise. A top-level array ends at its first ``]`` when that is the array's own
    (marks: a list of objects), else at the first ``\n  ]`` after that bracket (a nested array's: the timeline's
    points, indented further; JSON strings hold no raw newline). ``]`` alone is found by memchr; the line pattern
    costs more over many lines (marks: 40 against 6 µs) but less than stepping over 65 nested arrays' ``]``
    one by one (the timeline: 5 against 22 µs)."""
    pattern = f'\n  "{key}": ['
    start = text.rfind(pattern) if backwards else text.find(pattern)
    if start < 0:
        return None
    start += len(pattern) - 1
    end = text.find("]", start)
    if end > start + 1 and text[end - 3:end] != "\n  ":  # a nested array's or a string's bracket
        close = text.find("\n  ]", end)
        end = close + 3 if close >= 0 else -1
    if end < 0 or text[end + 1:end + 2] != ",":
        return None
    return start, end + 1


def lean_text(text: str) -> tuple[str, str | None] | None:
    """A carbonstep-written report's text with its ``marks`` and ``timeline`` emptied, and the marks' text;
    None when the text is not laid out as carbonstep writes it (then it is parsed whole)."""
    if not text.startswith('{\n  "'):
        return None
    marks = _top_level_value(text, "marks", backwards=False)
    timeline = _top_level_value(text, "timeline", backwards=True)
    spans = sorted(span for span in (marks, timeline) if span is not None)
    if len(spans) == 2 and spans[0][1] > spans[1][0]:
        return None
    pieces = []
    at = 0
    for start, end in spans:
        pieces += [text[at:start], "[]"]
        at = end
    pieces.append(text[at:])
    return "".join(pieces), (text[marks[0]:marks[1]] if marks else None)


def _parse(text: str) -> tuple[dict[str, Any], str | None]:
    lean = lean_text(text)
    if lean is not None:
        try:
            data = json.loads(lean[0])
        except ValueError:
            pass
        else:
            if isinstance(data, dict):
                return data, lean[1]
    cut, marks_text = _cut_marks(text)
    try:
        data = json.loads(cut)
    except ValueError:
        if marks_text is None:
            raise
        data, marks_text = json.loads(text), None  # the cut was wrong: read the whole report
    return data, marks_text


WORST_FIRST = ("failed", "interrupted", "running", "completed")  #: the statuses a run ends in


def regular_file_text(path: Path | str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes``; OSError otherwise. The file is opened without
    blocking and checked before anything is read, so a FIFO named ``*.json`` or a link to ``/dev/zero`` is
    refused rather than waited on or read without end."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"not a regular file (a {_kind_of(info.st_mode)})")
        data = file.read(min(info.st_size, max_bytes) + 1)  # not a buffer of max_bytes for each file
        if len(data) > info.st_size:  # it grew since: read on, to the limit
            data += file.read(max_bytes + 1 - len(data))
    if len(data) > max_bytes:
        raise OSError(f"larger than {max_bytes // 2**20} MiB, too large for a report")
    return data.decode("utf-8")


def _kind_of(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
             (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "folder"))
    return next((name for test, name in kinds if test(mode)), "special file")


def check_status(status: str) -> None:
    """ValueError unless ``status`` is one a run ends in (a run is counted, grouped and drawn by it)."""
    if status not in WORST_FIRST:
        raise ValueError(f"unknown status {str(status)[:40]!r}: a run is {', '.join(WORST_FIRST)}")


def read_report(path: Path | str, experiment: str) -> Entry:
    """One report file as a usage entry; ValueError, KeyError or TypeError naming what is wrong."""
    text = regular_file_text(path)
    data, marks_text = _parse(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"report schema version {data.get('schema_version')!r} is not supported "
                         f"(this carbonstep reads {SCHEMA_VERSION})")
    marks = data.get("marks") or []
    if marks_text is not None and not data.get("epochs") and int(data.get("marks_stride") or 1) == 1:
        marks = json.loads(marks_text)  # samples are counted from the marks only when there are no epochs
    record = from_report_dict(data, str(path), experiment, marks)
    check_status(record.status)
    extra = data.get("extra") or {}
    place = extra.get("place") or {}
    parts = extra.get("parts") or []
    rank = place.get("rank") if int(place.get("world_size") or 1) > 1 and not parts else None
    return Entry(record, str(data["started_at"]), rank, tuple(str(p.get("run_id")) for p in parts))


def experiment_of(relative: str) -> str:
    """A report file's project: the first folder below the root it was found under."""
    parts = relative.split(os.sep)
    return parts[0] if len(parts) > 1 else UNKNOWN


#: what one file gave: a row (the record's fields, started_at, rank, part ids) or the warning that skipped it
Outcome = tuple[str, Any]


def read_outcome(path: str, experiment: str) -> Outcome:
    """``("row", [...])`` for a report, ``("warning", line)`` for a file that is skipped."""
    try:
        entry = read_report(path, experiment)
    except (OSError, UnicodeDecodeError) as exc:
        return "warning", f"{path}: skipped: cannot read ({exc})"
    except RecursionError:
        return "warning", f"{path}: skipped: not a carbonstep report (JSON nested too deeply)"
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        problem = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        return "warning", f"{path}: skipped: not a carbonstep report ({problem})"
    record = entry.record
    return "row", [*(getattr(record, name) for name in RECORD_FIELDS), entry.started_at, entry.rank,
                   list(entry.part_ids)]


def entry_of(row: list[Any]) -> Entry:
    """The entry a row stands for (the inverse of :func:`read_outcome`'s row)."""
    n = len(RECORD_FIELDS)
    return Entry(UsageRecord(*row[:n]), row[n], row[n + 1], tuple(row[n + 2]))


def read_chunk(root: str, relatives: list[str]) -> list[Outcome]:
    """The outcomes of some files under ``root`` (run in a worker process)."""
    return [read_outcome(root if not rel else os.path.join(root, rel), experiment_of(rel)) for rel in relatives]


# -- the cache -----------------------------------------------------------------------------------------
def cache_file(root: Path) -> Path | None:
    """Where the cache of ``root`` lives; None when caching is off."""
    chosen = os.environ.get("CARBONSTEP_USAGE_CACHE", "")
    if chosen.lower() in ("off", "0", "no", "false"):
        return None
    base = Path(chosen) if chosen else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
        / "carbonstep" / "usage"
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]
    return base / f"reports-{digest}.json"


def _cache_header(root: Path) -> dict[str, Any]:
    from carbonstep._version import __version__

    return {"format": CACHE_FORMAT, "carbonstep": __version__, "schema": SCHEMA_VERSION,
            "fields": list(RECORD_FIELDS), "root": str(root.resolve())}


def load_cache(path: Path | None, root: Path) -> dict[str, list[Any]]:
    """``{relative path: [size, mtime_ns, kind, value]}``; empty when there is none or it does not fit."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("header") != _cache_header(root):
            return {}
        return dict(data["files"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # no cache, or one that cannot be read: everything is read again


def save_cache(path: Path | None, root: Path, files: dict[str, list[Any]]) -> None:
    """Write the cache atomically; a cache that cannot be written is left alone (it is only a cache)."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".reports-", suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({"header": _cache_header(root), "files": files}, out, separators=(",", ":"))
        os.replace(temporary, path)
    except OSError:
        try:
            os.unlink(temporary)
        except (OSError, UnboundLocalError):
            pass


# -- a folder ------------------------------------------------------------------------------------------
def relative_paths(root: Path) -> list[str]:
    """Every ``*.json`` file under ``root`` relative to it (``""``: root is the file), in a stable order."""
    if root.is_file():
        return [""]
    found = []
    top = str(root)
    for folder, dirs, files in os.walk(top):
        dirs.sort()
        prefix = os.path.relpath(folder, top)
        prefix = "" if prefix == "." else prefix + os.sep
        found += [prefix + name for name in sorted(files) if name.endswith(".json") and not name.startswith(".")]
    return found


def workers() -> int:
    """Processes to read with: ``CARBONSTEP_USAGE_WORKERS``, else the CPUs this process may use."""
    chosen = os.environ.get("CARBONSTEP_USAGE_WORKERS", "")
    if chosen.isdigit() and int(chosen) > 0:
        return int(chosen)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _in_pool(root: str, chunks: list[list[str]], count: int) -> Iterator[list[Outcome]]:
    """Each chunk's outcomes, in order, from ``count`` processes (a few chunks in flight per process)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(count, mp_context=multiprocessing.get_context(method)) as pool:
        pending = []
        queue = iter(chunks)
        for chunk in queue:
            pending.append(pool.submit(read_chunk, root, chunk))
            if len(pending) >= 3 * count:
                break
        for index in range(len(chunks)):
            yield pending[index].result()
            pending[index] = None  # type: ignore[call-overload]  # let the chunk's results go
            following = next(queue, None)
            if following is not None:
                pending.append(pool.submit(read_chunk, root, following))


def read_tree(root: Path, progress: Callable[[str], None] | None = None,
              cache_min_files: int = CACHE_MIN_FILES) -> tuple[list[Entry], list[str]]:
    """Every report under ``root`` (a folder or one file): entries in the folder's order, and a warning naming
    each file skipped. Long reads say how far they are through ``progress`` (default: a line on stderr)."""
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    started = time.monotonic()
    relatives = relative_paths(root)
    top = str(root)
    cache_path = cache_file(root) if len(relatives) >= cache_min_files else None
    cached = load_cache(cache_path, root)
    keep: dict[str, list[Any]] = {}
    outcomes: list[Outcome | None] = [None] * len(relatives)
    missing: list[int] = []
    keys: list[tuple[int, int] | None] = [None] * len(relatives)
    for index, rel in enumerate(relatives):
        try:
            stat = os.stat(os.path.join(top, rel) if rel else top)
        except OSError:
            missing.append(index)
            continue
        keys[index] = (stat.st_size, stat.st_mtime_ns)
        hit = cached.get(rel)
        if hit is not None and hit[0] == stat.st_size and hit[1] == stat.st_mtime_ns:
            outcomes[index] = (hit[2], hit[3])
            keep[rel] = hit
        else:
            missing.append(index)
    from_cache = len(relatives) - len(missing)
    done = from_cache
    last_said, last_count = started, 0

    def report_progress(final: bool = False) -> None:
        nonlocal last_said, last_count
        now = time.monotonic()
        if final and last_count == 0:
            return
        if final or done - last_count >= PROGRESS_FILES or now - last_said >= PROGRESS_S:
            say(f"carbonstep usage: {done:,} of {len(relatives):,} report files read in {root} "
                f"({from_cache:,} from the cache), {now - started:.0f} s")
            last_said, last_count = now, max(done, 1)

    chunks = [[relatives[i] for i in missing[at:at + CHUNK_FILES]] for at in range(0, len(missing), CHUNK_FILES)]
    count = min(workers(), len(chunks)) if len(missing) >= POOL_MIN_FILES else 1
    results: Iterator[list[Outcome]] = (read_chunk(top, chunk) for chunk in chunks)
    if count > 1:
        results = _in_pool(top, chunks, count)
    at = 0
    try:
        for chunk_outcomes in results:
            for outcome in chunk_outcomes:
                outcomes[missing[at]] = outcome
                at += 1
            done += len(chunk_outcomes)
            report_progress()
    except (OSError, RuntimeError) as exc:  # no processes to be had (BrokenProcessPool is a RuntimeError)
        say(f"carbonstep usage: reading in one process ({exc})")
        for index in missing[at:]:
            rel = relatives[index]
            outcomes[index] = read_outcome(os.path.join(top, rel) if rel else top, experiment_of(rel))
    report_progress(final=True)
    limit_ns = (time.time() - RACY_S) * 1e9
    for index in missing:
        key = keys[index]
        got = outcomes[index]
        if key is not None and got is not None and key[1] < limit_ns:
            keep[relatives[index]] = [key[0], key[1], got[0], got[1]]
    if cache_path is not None and (missing or len(keep) != len(cached)):
        save_cache(cache_path, root, keep)
    entries: list[Entry] = []
    warnings: list[str] = []
    for got in outcomes:
        if got is None:
            continue
        if got[0] == "row":
            entries.append(entry_of(got[1]))
        else:
            warnings.append(got[1])
    return entries, warnings
