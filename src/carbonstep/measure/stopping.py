"""The stop path of a Tracker: faults noted, sources closed, the report built, its path and its writing.

Imported at ``stop()`` (and for ``Tracker.report_path``), not with the Tracker.
"""

from __future__ import annotations

import os
from pathlib import Path

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: see measure/tracker.py
if TYPE_CHECKING:
    from typing import Any, Sequence

    from carbonstep.accounting.embodied import EmbodiedSettings
    from carbonstep.accounting.factors import Accounting
    from carbonstep.measure.distributed import Place
    from carbonstep.measure.readers.base import Reader, Unavailable
    from carbonstep.measure.sampler import Sampler
    from carbonstep.measure.totals import EnergyTotals
    from carbonstep.report.record import RunReport


def note_faults(totals: EnergyTotals, sampler: Sampler, warnings: list[str]) -> None:
    """Name a read that never returned, and marks lost while the sampler was stuck (appended to ``warnings``)."""
    hung = sampler.hung
    if hung is not None:
        i = hung.index
        sampler.failures[i] += 1
        sampler.first_failure[i] = (sampler.first_failure[i] or
                                    f"hung: a read made no progress for {sampler.wait_s:g} s at stop")
        if totals.degraded_at[i] is None:
            totals.degraded_at[i] = totals.elapsed_s(hung.since)
    if sampler.late_polls:
        warnings.append(f"{sampler.late_polls} fresh sample(s) asked for (validation, epoch end) took over "
                        f"{sampler.wait_s:g} s: the figures then used the last sample taken")
    if totals.marks_dropped or len(totals.pending) == totals.pending.maxlen:
        warnings.append(f"over {totals.pending.maxlen} marks waited for one sample: the oldest were dropped")


def close_sources(readers: Sequence[Reader], tree: Any, sampler: Sampler) -> None:
    """Close every reader but one whose read hangs (closing it could hang too), then the process tree."""
    hung = sampler.hung
    for i, reader in enumerate(readers):
        if hung is not None and i == hung.index:
            continue
        try:
            reader.close()
        except Exception:  # noqa: BLE001 - closing must not hide the report
            log().debug("carbonstep: closing %s failed", reader.name, exc_info=True)
    if tree is not None and hung is None:
        tree.close()


def build_report(run: tuple[str, float, str, str | None, str], place: Place | None, warnings: Sequence[str],
                 unavailable: Sequence[Unavailable], accounting: Accounting, totals: EnergyTotals, sampler: Sampler,
                 status: str, embodied: EmbodiedSettings | None) -> RunReport:
    """The report of a stopped run; ``run``: (run id, start's UNIX time, attribution, name, count unit)."""
    from carbonstep.report.builder import RunFacts
    from carbonstep.report.builder import build_report as build

    run_id, started_wall, attribution, name, count_unit = run
    facts = RunFacts(
        run_id, started_wall, attribution, name, count_unit, place.to_dict() if place else None, tuple(warnings),
        tuple(f"{u.source}: {u.reason} — fix: {u.fix}" for u in unavailable if u.fix))
    return build(facts, accounting, totals, sampler, status, embodied)


def report_path(output_dir: Path | None, run_id: str, place: Place | None) -> Path:
    """``output_dir`` (default: the working directory)/carbonstep-<run id>.json, or for one rank of several
    carbonstep-<run id>-rank<N>.json."""
    from carbonstep.measure.distributed import rank_path

    return rank_path((output_dir or Path.cwd()) / f"carbonstep-{run_id}.json", place)


def write_report(report: RunReport, path: Path) -> Path | None:
    """Write the report at ``path``, never over another process's file (if another process of the job took that
    name anyway, with the same run id and rank, ``-<host>-<pid>`` is added); the file written (None if nowhere
    could be written). A path that fails: the temporary directory, said on stderr and in the log."""
    try:
        return report.save(path, exclusive=True)
    except FileExistsError:
        import socket

        path = path.with_name(f"{path.stem}-{socket.gethostname()}-{os.getpid()}{path.suffix}")
    except OSError:
        pass
    saved, message = report.save_or_fallback(path)
    if message is not None:
        log().warning("carbonstep: %s", message)
        import sys

        print(f"carbonstep: warning: {message}", file=sys.stderr)
    return saved


def log() -> Any:
    """The "carbonstep" logger (with a NullHandler), imported on first use: a run starts without ``logging``."""
    import logging

    logger = logging.getLogger("carbonstep")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    return logger


__all__ = ["build_report", "close_sources", "log", "note_faults", "report_path", "write_report"]
