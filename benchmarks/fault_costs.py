#!/usr/bin/env python3
"""Costs that must not grow with the run or the input: a logged step under a time-series intensity, and
``plan --forecast`` on long forecasts.

    .venv/bin/python benchmarks/fault_costs.py [--rows 8640 25920 2000000] [--points 4096]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def write_forecast(path: Path, rows: int, start_s: float, step_s: float = 300.0) -> Path:
    """A forecast CSV of ``rows`` 5-minute values (a daily cycle, deterministic)."""
    with path.open("w") as handle:
        handle.write("timestamp,carbon_intensity\n")
        for i in range(rows):
            handle.write(f"{start_s + i * step_s:.0f},{200 + 100 * ((i % 288) / 288):.1f}\n")
    return path


def logged_step_cost(points: int, folder: Path, constant: bool = False) -> float:
    """Seconds per logged step (a snapshot without a fresh sample) once the timeline holds ``points`` points."""
    from carbonstep.measure.tracker import Tracker
    from carbonstep.testing import CounterReader

    forecast = write_forecast(folder / "series.csv", 2000, time.time() - 3600)
    reader = CounterReader("c", "gpu", lambda: time.monotonic() * 100.0)
    intensity = 250.0 if constant else str(forecast)
    tracker = Tracker(intensity=intensity, readers=[reader], interval_s=0.001).start()
    while len(tracker._totals.timeline) < points:
        time.sleep(0.05)
    tracker._sampler.stop()  # the timeline stays as it is while the steps are timed
    tracker.snapshot(refresh=False)  # a running tracker's curve is up to date: only new points are integrated
    calls = 2000
    started = time.perf_counter()
    for _ in range(calls):
        tracker.snapshot(refresh=False)
    return (time.perf_counter() - started) / calls


def plan_cost(rows: int, folder: Path) -> tuple[float, float]:
    """CPU seconds to read a forecast of ``rows`` rows, and to find the best start of a 6 h job in it."""
    from carbonstep.accounting.timeseries import read_series
    from carbonstep.analysis.plan.plan import best_start

    path = write_forecast(folder / f"forecast-{rows}.csv", rows, 1.7e9)
    started = time.process_time()  # CPU seconds: the figure a loaded machine does not inflate
    series = read_series(path)
    read_s = time.process_time() - started
    started = time.process_time()
    best_start(series, 6 * 3600.0, 10.0, 1.7e9)
    return read_s, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="*", default=[8640, 25920, 2_000_000])
    parser.add_argument("--points", type=int, default=4096)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for constant in (True, False):
            per_step = logged_step_cost(args.points, Path(folder), constant)
            what = "constant" if constant else "time-series"
            print(f"| logged step, {what} intensity, {args.points} timeline points | {per_step * 1e6:,.1f} µs |")
        for rows in args.rows:
            read_s, plan_s = plan_cost(rows, Path(folder))
            print(f"| plan --forecast, {rows:,} rows | read {read_s:.2f} s, plan {plan_s:.2f} s (CPU) |")


if __name__ == "__main__":
    main()
