#!/usr/bin/env python3
"""One measurement of one tracker, in a fresh process; prints one JSON line. Run by ``benchmarks/peers.py``
with the interpreter that has the tool (carbonstep: the project's venv; the peers: benchmarks/.peers-venv).

    python benchmarks/peer_probe.py cold TOOL               # start()+stop() after the import, in a fresh process
    python benchmarks/peer_probe.py cold-in-training TOOL   # the same with the standard library a PyTorch process
                                                            # has already loaded (TRAINING_STDLIB) imported first
    python benchmarks/peer_probe.py sampler TOOL INTERVAL SECONDS [CHILDREN]
    python benchmarks/peer_probe.py rss TOOL                # import, start, 2 s at 0.1 s sampling, stop

Stdlib only, so that it runs in either environment. CPU time of the sampler thread comes from
``/proc/self/task/<tid>/schedstat`` (nanoseconds).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time

IMPORTS = {
    "carbonstep": "from carbonstep import Tracker",
    "codecarbon": "from codecarbon import OfflineEmissionsTracker",
    "carbontracker": "from carbontracker.tracker import CarbonTracker",
    "zeus": "from zeus.monitor import ZeusMonitor",
}


def thread_cpu_s(native_id: int) -> float:
    """CPU seconds a thread has run (schedstat's first field, in ns)."""
    with open(f"/proc/self/task/{native_id}/schedstat") as handle:
        return int(handle.read().split()[0]) / 1e9


def _quiet() -> None:
    logging.disable(logging.WARNING)
    os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")


class Session:
    """start() and stop() of one tool, at ``interval`` seconds between samples (its own default when None)."""

    def __init__(self, tool: str, interval: float | None) -> None:
        self.tool, self.interval, self.out = tool, interval, tempfile.mkdtemp()
        self.count = [0]  # samples taken (carbontracker: counted through its measurement method)

    def start(self) -> None:
        if self.tool == "carbonstep":
            from carbonstep import Tracker

            options = {} if self.interval is None else {"interval_s": self.interval}
            self.handle = Tracker(intensity=100, **options).start()
        elif self.tool == "carbontracker":
            from carbontracker import tracker as ct

            original = ct.CarbonTrackerThread._collect_measurements
            count = self.count

            def counted(thread):  # type: ignore[no-untyped-def]
                count[0] += 1
                return original(thread)

            ct.CarbonTrackerThread._collect_measurements = counted
            options = {} if self.interval is None else {"update_interval": self.interval}
            self.handle = ct.CarbonTracker(epochs=1, components="cpu", sim_cpu="benchmark", sim_cpu_tdp=100,
                                           sim_cpu_util=0.5, log_dir=self.out, verbose=0, ignore_errors=True,
                                           epochs_before_pred=0, **options)
            self.handle.epoch_start()
        elif self.tool == "codecarbon":
            from codecarbon import OfflineEmissionsTracker

            options = {} if self.interval is None else {"measure_power_secs": self.interval}
            self.handle = OfflineEmissionsTracker(country_iso_code="FRA", save_to_file=False, output_dir=self.out,
                                                  log_level="error", tracking_mode="process", **options)
            self.handle.start()
        elif self.tool == "zeus":
            from zeus.monitor import ZeusMonitor

            self.handle = ZeusMonitor(gpu_indices=[], cpu_indices=[])
            self.handle.begin_window("run")
        else:
            raise SystemExit(f"unknown tool {self.tool}")

    def sampler_thread(self) -> tuple[int, object]:
        """(native thread id, a callable giving the samples taken so far)."""
        if self.tool == "carbonstep":
            sampler = self.handle._sampler
            return sampler._thread.native_id, lambda: sampler.samples
        if self.tool == "carbontracker":
            return self.handle.tracker.native_id, lambda: self.count[0]
        raise SystemExit(f"no sampler thread measured for {self.tool}")

    def stop(self) -> None:
        if self.tool == "carbonstep":
            self.handle.stop()
        elif self.tool == "carbontracker":
            self.handle.epoch_end()
            self.handle.stop()
        elif self.tool == "codecarbon":
            self.handle.stop()
        elif self.tool == "zeus":
            self.handle.end_window("run")


#: standard-library modules that ``import torch`` (2.13) has loaded before any tracker is imported: in a training
#: process a tracker's start does not pay for them (checked: ``all(m in sys.modules for m in ...)`` after the import)
TRAINING_STDLIB = ("ast", "csv", "dataclasses", "datetime", "enum", "inspect", "ipaddress", "json", "logging",
                   "pathlib", "re", "socket", "threading", "typing", "urllib.parse")


def cold(tool: str, preload: tuple[str, ...] = ()) -> dict[str, float]:
    """Wall and CPU milliseconds of construct + start + stop right after the import (first use in the process),
    with the modules in ``preload`` imported before the tool."""
    import importlib

    for name in preload:
        importlib.import_module(name)
    exec(IMPORTS[tool], {})
    session = Session(tool, None)
    wall, cpu = time.perf_counter(), time.process_time()
    session.start()
    session.stop()
    return {"wall_ms": (time.perf_counter() - wall) * 1e3, "cpu_ms": (time.process_time() - cpu) * 1e3}


def sampler(tool: str, interval: float | None, seconds: float, children: int) -> dict[str, float]:
    """CPU of the sampler thread per sample over ``seconds``, with ``children`` idle child processes."""
    kids = [subprocess.Popen(["sleep", str(seconds + 60)]) for _ in range(children)]
    try:
        session = Session(tool, interval)
        session.start()
        tid, samples = session.sampler_thread()
        time.sleep(max(interval or 1.0, 0.5) * 2)  # past the first samples and the first children's read
        c0, n0, t0 = thread_cpu_s(tid), samples(), time.monotonic()  # type: ignore[operator]
        time.sleep(seconds)
        c1, n1, t1 = thread_cpu_s(tid), samples(), time.monotonic()  # type: ignore[operator]
        session.stop()
    finally:
        for kid in kids:
            kid.kill()
            kid.wait()
    n = n1 - n0
    return {"ms_per_sample": (c1 - c0) / n * 1e3 if n else float("nan"), "samples": n,
            "ms_per_second": (c1 - c0) / (t1 - t0) * 1e3}


def rss(tool: str) -> dict[str, float]:
    """Peak resident memory (MiB) of import, start, 2 s at 0.1 s sampling, stop (``none``: the bare process)."""
    if tool != "none":
        exec(IMPORTS[tool], {})
        session = Session(tool, 0.1)
        session.start()
        time.sleep(2.0)
        session.stop()
    else:
        time.sleep(2.0)
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    _quiet()
    what, tool = sys.argv[1], sys.argv[2]
    if what == "cold":
        result = cold(tool)
    elif what == "cold-in-training":
        result = cold(tool, TRAINING_STDLIB)
    elif what == "sampler":
        interval = None if sys.argv[3] == "default" else float(sys.argv[3])
        result = sampler(tool, interval, float(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 0)
    elif what == "rss":
        result = rss(tool)
    else:
        raise SystemExit(__doc__)
    sys.stdout.flush()
    print("PROBE " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
