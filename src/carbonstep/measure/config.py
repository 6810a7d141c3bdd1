"""A Tracker's configuration as one frozen, validated record.

:func:`tracker_config` turns a Tracker's arguments into a :class:`TrackerConfig` (or one clear
:class:`~carbonstep.errors.ConfigError`); the Tracker keeps the record and hands its
:class:`~carbonstep.accounting.factors.Accounting` to the accounting and the report.
The clocks are part of it, so a test can drive a Tracker on a clock of its own.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from carbonstep._record import DataclassMethods
from carbonstep.accounting.embodied import EmbodiedSettings, settings_from_environment
from carbonstep.accounting.factors import Accounting, build_accounting
from carbonstep.errors import ConfigError
from carbonstep.validate import check_int, check_output_dir, parse_number, shown

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any, Callable

    from carbonstep.measure.distributed import Place

ATTRIBUTIONS = ("process", "machine")
DEFAULT_INTERVAL_S = 5.0  #: seconds between samples: the coarsest interval at which a recorded run's epoch,
# validation and budget figures stay within 1 % of its 0.05 s timeline (benchmarks/interval_choice.py replays
# benchmarks/data/interval_run.json; a CPU-only run: see benchmarks/README.md). Fresh samples are taken at
# validation and epoch ends whatever the interval.


@dataclass(frozen=True, repr=False, eq=False)  # repr, == and hash: DataclassMethods
class TrackerConfig(DataclassMethods):
    """What a Tracker measures and how it charges it; immutable once built."""

    accounting: Accounting  #: PUE, WUE, water and carbon intensity
    interval_s: float = DEFAULT_INTERVAL_S  #: seconds between samples
    attribution: str = "process"  #: "process" (this process tree's share) or "machine"
    output_dir: Path | None = None  #: where stop() writes the report; None: not written
    name: str | None = None
    pid: int | None = None  #: the process tree measured; None: this process
    place: Place | None = None  #: this rank's place in a job; None: from the environment at start
    count_unit: str = "sample"  #: what mark(count=...) counts
    clock: Callable[[], float] = time.monotonic  #: seconds, for samples and marks
    wall_clock: Callable[[], float] = time.time  #: UNIX seconds, for the start time and time series
    warnings: tuple[str, ...] = field(default=())  #: found while building (a guessed region, an odd factor)
    #: the user's embodied-footprint figures and service life (CARBONSTEP_EMBODIED_CSV,
    #: CARBONSTEP_SERVICE_LIFE_YEARS), read and checked when the Tracker is made; None: read at the end
    embodied: EmbodiedSettings | None = None


def tracker_config(
    region: str | None = None,
    pue: float | None = None,
    wue: float | None = None,
    intensity: Any = None,
    interval_s: float = DEFAULT_INTERVAL_S,
    attribution: str = "process",
    output_dir: str | os.PathLike[str] | None = None,
    *,
    water_intensity_l_per_kwh: float | None = None,
    pid: int | None = None,
    name: str | None = None,
    place: Place | None = None,
    count_unit: str = "sample",
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> TrackerConfig:
    """A validated :class:`TrackerConfig` from a Tracker's arguments (see :class:`~carbonstep.Tracker`)."""
    if attribution not in ATTRIBUTIONS:
        raise ConfigError(f"attribution must be 'process' or 'machine', got {shown(attribution)}")
    accounting, warnings = build_accounting(region, pue, wue, intensity, water_intensity_l_per_kwh)
    interval, _ = parse_number("interval_s", interval_s, low=1e-3, meaning="seconds between samples")
    directory = check_output_dir("output_dir", output_dir) if output_dir is not None else None
    return TrackerConfig(accounting, interval, attribution, directory, name, _pid(pid), place, count_unit, clock,
                         wall_clock, tuple(warnings), settings_from_environment())


#: The largest process id any supported system can hold: a pid is a signed 32-bit int (glibc's bits/typesizes.h:
#: ``#define __PID_T_TYPE __S32_TYPE``); a larger one would overflow the OS call (OverflowError), not be looked up.
PID_MAX = 2**31 - 1


def _pid(pid: Any) -> int | None:
    if pid is None:
        return None
    pid = check_int("pid", pid, low=1, high=PID_MAX, meaning="a process id", fix="pass the id of a running process")
    import psutil

    if not psutil.pid_exists(pid):
        raise ConfigError(f"pid={pid}: no such process on this machine; pass the id of a running process "
                          "(or leave pid out to measure this one)")
    return pid


__all__ = ["ATTRIBUTIONS", "DEFAULT_INTERVAL_S", "TrackerConfig", "tracker_config"]
