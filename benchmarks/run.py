#!/usr/bin/env python3
"""carbonstep benchmarks: one command, a markdown table on stdout.

    .venv/bin/python benchmarks/run.py [--rounds 5] [--steps 600]

Ratios come from alternating runs in one process (these machines are shared and noisy).
CodeCarbon's offline tracker is measured on the same loop when it is installed
(``pip install 'carbonstep[bench]'``).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def import_time(runs: int) -> dict[str, float]:
    """Median wall times over bare Python: imports, and a cold start (import, start, stop)."""
    def once(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        return time.perf_counter() - start

    codes = {
        "bare": "pass",
        "import carbonstep": "import carbonstep",
        "import carbonstep; carbonstep.Tracker": "import carbonstep; carbonstep.Tracker",
        "cold start: import, Tracker().start(), stop()":
            "import carbonstep; carbonstep.Tracker(intensity=100).start().stop()",
    }
    if has_codecarbon():
        codes["import codecarbon"] = "import codecarbon"
    times: dict[str, list[float]] = {name: [] for name in codes}
    for _ in range(runs):
        for name, code in codes.items():
            times[name].append(once(code))
    base = statistics.median(times.pop("bare"))
    return {name: statistics.median(values) - base for name, values in times.items()}


def mark_cost() -> float:
    from carbonstep import Tracker

    with Tracker(intensity=100, interval_s=0.5) as tracker:
        n = 200_000
        best = min(timeit.repeat(lambda: tracker.mark(step=1, epoch=0), number=n, repeat=5))
    return best / n * 1e6


def sampler_cpu_per_sample(seconds: float = 4.0) -> tuple[float, int]:
    from carbonstep import Tracker

    tracker = Tracker(intensity=100, interval_s=0.01).start()
    thread = tracker._sampler._thread

    def cpu() -> float:  # schedstat: nanoseconds on CPU (psutil's thread times tick at 10 ms)
        with open(f"/proc/self/task/{thread.native_id}/schedstat") as handle:
            return int(handle.read().split()[0]) / 1e9

    before, samples_before = cpu(), tracker._sampler.samples
    time.sleep(seconds)
    after, samples_after = cpu(), tracker._sampler.samples
    tracker.stop()
    samples = samples_after - samples_before
    return (after - before) / samples * 1e3, samples


def has_codecarbon() -> bool:
    import importlib.util

    return importlib.util.find_spec("codecarbon") is not None


def training_loop(steps: int, mark=None) -> tuple[float, float]:
    """(wall, process CPU) seconds per step."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.GELU(), torch.nn.Linear(512, 1))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = torch.randn(128, 256), torch.randn(128, 1)
    start, cpu_start = time.perf_counter(), time.process_time()
    for step in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        if mark is not None:
            mark(step=step, epoch=0, count=128)
    return (time.perf_counter() - start) / steps, (time.process_time() - cpu_start) / steps


def overhead(rounds: int, steps: int) -> dict[str, list[tuple[float, float]]]:
    from carbonstep import Tracker

    def tracked(interval: float) -> tuple[float, float]:
        with Tracker(intensity=100, interval_s=interval) as tracker:
            return training_loop(steps, tracker.mark)

    def codecarbon(interval: float) -> tuple[float, float]:
        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        with tempfile.TemporaryDirectory() as out:
            cc = OfflineEmissionsTracker(country_iso_code="FRA", measure_power_secs=interval, save_to_file=False,
                                         output_dir=out, log_level="error", tracking_mode="process")
            cc.start()
            try:
                return training_loop(steps)
            finally:
                cc.stop()

    variants = {"untracked": lambda: training_loop(steps), "carbonstep 1 s": lambda: tracked(1.0),
                "carbonstep 0.1 s": lambda: tracked(0.1)}
    if has_codecarbon():
        variants["CodeCarbon 1 s"] = lambda: codecarbon(1.0)
    training_loop(100)  # warm up
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            times[name].append(run())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--import-runs", type=int, default=15)
    args = parser.parse_args()
    imports = import_time(args.import_runs)
    mark_us = mark_cost()
    sample_ms, samples = sampler_cpu_per_sample()
    times = overhead(args.rounds, args.steps)
    base = statistics.median(t[0] for t in times["untracked"])
    print("| measurement | result | target / peer |")
    print("|---|---|---|")
    for name, seconds in imports.items():
        target = "< 50 ms" if name == "import carbonstep" else "peer" if "codecarbon" in name else ""
        print(f"| `{name}` over bare Python (median of {args.import_runs}) | {seconds * 1e3:.1f} ms | {target} |")
    print(f"| `Tracker.mark()` | {mark_us:.2f} µs | < 5 µs |")
    print(f"| sampler CPU time per sample (CPU + RAM estimate, {samples} samples) | {sample_ms:.3f} ms | "
          "Carbontracker 0.16 ms, CodeCarbon 1.1 ms |")
    print(f"| training step, untracked (median of {args.rounds}) | {base * 1e3:.3f} ms | |")
    for name, values in times.items():
        if name == "untracked":
            continue
        for i, what in ((0, "wall"), (1, "CPU")):
            ratio = statistics.median(t[i] / u[i] for t, u in zip(values, times["untracked"]))
            target = "< 0.5 % at 0.1 s" if "carbonstep" in name else "peer"
            print(f"| step {what} time, {name} / untracked (median of {args.rounds} alternating pairs) | "
                  f"{ratio:.4f} ({(ratio - 1) * 100:+.2f} %) | {target} |")


if __name__ == "__main__":
    main()
