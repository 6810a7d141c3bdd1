"""stop() in a busy interpreter: a read slowed by threads holding the GIL is slow, not hung.

Seen before: one Tracker in a process with 16 spinning Python threads had its CPU reader called "hung" at
stop() in 5 of 5 runs (3 of them with 0 CPU energy); 20 Trackers stopping at once had 6-15 of 20 called hung
and left their files open (6 -> 54 fds). The bound on stop() was wall time, and the sampler thread could not
get the GIL within it. These tests assert outcomes only (hung flags, energy, open fds), never a duration.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from carbonstep import Tracker
from carbonstep.measure.readers.base import Domain, Kind, Method, Scope, Share

KWH = 3.6e6
SPINNERS = 16
TRACKERS = 20
pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts /proc/self/fd")


class FileCounter:
    """A healthy counter that holds a file, as RAPL and /proc readers do: each read makes a few system calls
    (each gives the GIL up and must take it back), then counts one joule more."""

    kind = Kind.COUNTER
    method = Method.COUNTER
    share = Share.NONE
    scope = Scope.PROCESS
    wrap_j = None
    domain = Domain.CPU
    description = "test counter holding /proc/self/stat"

    def __init__(self, name: str, calls_per_read: int = 60) -> None:
        self.name = name
        self.calls_per_read = calls_per_read
        self.fd = os.open("/proc/self/stat", os.O_RDONLY)
        self.count = 0

    def read(self) -> float:
        """One joule more per read, after a few reads of the file."""
        for _ in range(self.calls_per_read):
            os.pread(self.fd, 512, 0)
        self.count += 1
        return float(self.count)

    def close(self) -> None:
        """Close the file."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _spinning(threads: int) -> tuple[threading.Event, list[threading.Thread]]:
    done = threading.Event()

    def spin() -> None:
        x = 0
        while not done.is_set():
            for _ in range(1000):
                x += 1

    spinners = [threading.Thread(target=spin, daemon=True) for _ in range(threads)]
    for thread in spinners:
        thread.start()
    return done, spinners


def _stop_all(trackers: list[Tracker]) -> list[Any]:
    reports: list[Any] = [None] * len(trackers)
    go = threading.Barrier(len(trackers))

    def stop(i: int) -> None:
        go.wait()
        reports[i] = trackers[i].stop()

    stoppers = [threading.Thread(target=stop, args=(i,)) for i in range(len(trackers))]
    for thread in stoppers:
        thread.start()
    for thread in stoppers:
        thread.join()
    return reports


def _check(trackers: list[Tracker], readers: list[FileCounter], reports: list[Any]) -> None:
    for reader, report in zip(readers, reports):
        device = report.devices[0]
        assert device.first_error is None and device.degraded_at_s is None, device.first_error
        assert reader.fd == -1  # closed: a reader called hung is left open
        assert reader.count >= 2
        # every joule up to the last read: the first read is the baseline, each later one adds a joule
        assert report.energy_kwh_cpu * KWH == pytest.approx(reader.count - 1)


def test_one_tracker_with_16_spinning_threads_is_not_called_hung() -> None:
    Tracker(intensity=100, readers=[FileCounter("warm-up")]).start().stop()
    before = _open_fds()
    done, spinners = _spinning(SPINNERS)
    try:
        reader = FileCounter("cpu", calls_per_read=150)  # a read takes seconds while 16 threads spin
        tracker = Tracker(intensity=100, readers=[reader], interval_s=0.05).start()
        for _ in range(3):
            tracker.snapshot()
        report = tracker.stop()
    finally:
        done.set()
        for thread in spinners:
            thread.join()
    _check([tracker], [reader], [report])
    assert _open_fds() == before


def test_20_trackers_stopping_at_once_under_16_spinning_threads() -> None:
    Tracker(intensity=100, readers=[FileCounter("warm-up")]).start().stop()
    before = _open_fds()
    done, spinners = _spinning(SPINNERS)
    try:
        readers = [FileCounter(f"cpu{i}") for i in range(TRACKERS)]
        trackers = [Tracker(intensity=100, readers=[r], interval_s=0.05).start() for r in readers]
        reports = _stop_all(trackers)
    finally:
        done.set()
        for thread in spinners:
            thread.join()
    _check(trackers, readers, reports)
    assert _open_fds() == before


def test_a_read_that_never_returns_is_still_called_hung_among_spinning_threads() -> None:
    from carbonstep.measure.sampler import Sampler
    from carbonstep.measure.totals import EnergyTotals

    never = threading.Event()
    reads = [0]

    class Stuck(FileCounter):
        def read(self) -> float:
            reads[0] += 1
            if reads[0] >= 3:
                never.wait()  # the device stops answering: blocked in one call, never scheduled
            return super().read()

    reader = Stuck("stuck", calls_per_read=1)
    totals = EnergyTotals([reader])
    sampler = Sampler([reader], totals.ingest, 0.02, wait_s=0.5)
    done, spinners = _spinning(SPINNERS)
    try:
        sampler.start()
        while reads[0] < 3:
            threading.Event().wait(0.05)
        sampler.stop()
    finally:
        done.set()
        for thread in spinners:
            thread.join()
    assert sampler.hung is not None and sampler.hung.index == 0
    assert totals.joules[0] == pytest.approx(1.0)  # reads 1 and 2: every joule up to the last good read
    never.set()
    reader.close()
