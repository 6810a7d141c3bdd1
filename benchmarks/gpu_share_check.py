#!/usr/bin/env python3
"""Two training processes on one GPU, each under carbonstep: do their GPU shares add up to the device?

    python benchmarks/gpu_check.py --shared [--seconds 60]       # or this file directly, same flags

Two worker processes (no MIG or other setting changed) train the same MLP on GPU 0, one at 3x the other's
batch, each paced to a fixed step rate so that the larger batch keeps the GPU busy about 3x as long. Each runs
a carbonstep ``Tracker`` (attribution "process") between the same two wall-clock instants, while this
script reads NVML's total-energy counter at those instants. Pass when

* both reports say "process share" (not "whole device"),
* the two GPU energies sum to the counter's difference within 3 %,
* the 3x-batch process gets the larger share.

``judge`` is the same on hardware and in tests/test_gpu_check.py, where two readers over the fake NVML stand
in for the workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SUM_TOLERANCE = 0.03
SMALL_BATCH, BATCH_RATIO, WIDTH, STEP_PERIOD_S = 1024, 3, 8192, 0.05


@dataclass
class Shared:
    """What one shared run gave: the device's joules over the window, and each worker's."""

    device_j: float
    small_j: float
    large_j: float
    small_charged: str
    large_charged: str
    note: str = ""


def judge(result: Shared) -> list[Any]:
    """The checks of a shared run (gpu_check's ``Check`` rows)."""
    from gpu_check import Check

    total = result.small_j + result.large_j
    gap = abs(total - result.device_j) / result.device_j if result.device_j > 0 else float("inf")
    return [
        Check("shared", "both runs charged a process share",
              f"{result.small_charged} / {result.large_charged}",
              result.small_charged == result.large_charged == "process share"),
        Check("shared", "shares sum to the device counter",
              f"{result.small_j:.0f} + {result.large_j:.0f} J vs {result.device_j:.0f} J, gap {100 * gap:.2f} % "
              f"(goal {100 * SUM_TOLERANCE:.0f} %)", gap <= SUM_TOLERANCE),
        Check("shared", f"the {BATCH_RATIO}x-batch run gets the larger share",
              f"{result.large_j / total:.2f} of the sum" if total > 0 else "no energy",
              result.large_j > result.small_j),
    ]


def _counter_j(nvml: Any, handle: Any) -> float:
    return nvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3


def _sleep_until(wall_s: float) -> None:
    while (left := wall_s - time.time()) > 0:
        time.sleep(min(left, 0.05))


def worker(batch: int, start_s: float, end_s: float, ready: Path, report: Path, device: str = "cuda",
           width: int = WIDTH) -> None:
    """One training process: warm up, wait for the common start, train paced under a Tracker until the end."""
    import torch

    from carbonstep.measure.tracker import Tracker

    model = torch.nn.Sequential(*[m for _ in range(4) for m in (torch.nn.Linear(width, width), torch.nn.GELU())])
    model = model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, width, device=device)

    def step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(x).float().pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(5):
        step()  # the CUDA context exists (NVML lists this process) before the window starts
    ready.write_text("ready")
    _sleep_until(start_s)
    tracker = Tracker(intensity=400.0, interval_s=0.5, output_dir=report.parent)
    tracker.start()
    tick = time.time()
    while tick < end_s - STEP_PERIOD_S:
        step()
        tick += STEP_PERIOD_S
        time.sleep(max(0.0, tick - time.time()))
    _sleep_until(end_s)
    result = tracker.stop()
    gpu = [d for d in result.devices if d.domain == "gpu"]
    report.write_text(json.dumps({"gpu_j": result.energy_kwh_gpu * 3.6e6,
                                  "charged": gpu[0].charged if gpu else "no GPU reader",
                                  "description": gpu[0].description if gpu else ""}))


def run_pair(nvml: Any, uuid: str, seconds: float, out: Path) -> Shared:
    """Start the two workers on the GPU ``uuid`` and read the device counter over their common window."""
    out.mkdir(parents=True, exist_ok=True)
    handle = nvml.nvmlDeviceGetHandleByUUID(uuid)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": uuid}
    start_s = time.time() + 60.0  # time for both to start, load torch and warm up
    end_s = start_s + seconds
    procs, files = [], []
    for name, batch in (("small", SMALL_BATCH), ("large", SMALL_BATCH * BATCH_RATIO)):
        ready, report = out / f"{name}.ready", out / f"{name}.json"
        for f in (ready, report):
            f.unlink(missing_ok=True)
        procs.append(subprocess.Popen([sys.executable, __file__, "--worker", str(batch), str(start_s), str(end_s),
                                       str(ready), str(report)], env=env))
        files.append((ready, report))
    try:
        while not all(r.exists() for r, _ in files):
            if time.time() > start_s - 1 or any(p.poll() is not None for p in procs):
                raise RuntimeError("a worker did not get ready in time")
            time.sleep(0.1)
        _sleep_until(start_s)
        before = _counter_j(nvml, handle)
        _sleep_until(end_s)
        after = _counter_j(nvml, handle)
        for p in procs:
            p.wait(timeout=60)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    small, large = (json.loads(report.read_text()) for _, report in files)
    return Shared(after - before, small["gpu_j"], large["gpu_j"], small["charged"], large["charged"],
                  f"small: {small['description']} | large: {large['description']}")


def main(argv: list[str] | None = None) -> int:
    """Worker mode (``--worker``), or run the shared check alone."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        batch, start_s, end_s, ready, report = argv[1:6]
        worker(int(batch), float(start_s), float(end_s), Path(ready), Path(report))
        return 0
    import gpu_check

    return gpu_check.main(["--shared", *argv])


if __name__ == "__main__":
    sys.exit(main())
