#!/usr/bin/env python3
"""carbonstep benchmarks: one command, a markdown table on stdout.

    .venv/bin/python benchmarks/run.py [--rounds 5] [--steps 600]
    .venv/bin/python benchmarks/run.py --peers      # against CodeCarbon, Carbontracker and Zeus (peers.py)

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
import threading
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


def thread_cpu_s(thread: threading.Thread) -> float:
    """CPU seconds a thread has run (schedstat, in ns: psutil's thread times tick at 10 ms)."""
    with open(f"/proc/self/task/{thread.native_id}/schedstat") as handle:
        return int(handle.read().split()[0]) / 1e9


class BareWake:
    """The floor for any sampler thread: a Python thread that wakes on a ``Lock.acquire(timeout)`` deadline
    loop and does nothing else."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.wakes = 0
        self._stop = threading.Lock()
        self._stop.acquire()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        deadline = time.monotonic()
        while True:
            deadline += self.interval_s
            now = time.monotonic()
            if self._stop.acquire(timeout=max(deadline - now, 0.0)):
                return
            self.wakes += 1

    def stop(self) -> None:
        self._stop.release()
        self.thread.join()


def sampler_vs_bare_wake(rounds: int, seconds: float = 3.0, interval_s: float = 0.1) -> dict[str, float]:
    """CPU per sample of a default Tracker's sampler thread and of a bare wake-up loop, side by side at the same
    rate in the same process; the ratio is the median over ``rounds`` of per-round ratios."""
    from carbonstep import Tracker

    sampler_ms, bare_ms, ratios, samples = [], [], [], 0
    for _ in range(rounds):
        tracker = Tracker(intensity=100, interval_s=interval_s).start()
        time.sleep(interval_s / 2)  # half a period apart: neither thread waits for the other's GIL
        bare = BareWake(interval_s)
        sampler = tracker._sampler
        thread = sampler._thread
        time.sleep(interval_s * 3)  # both threads past their start
        s0, b0, n0, w0 = thread_cpu_s(thread), thread_cpu_s(bare.thread), sampler.samples, bare.wakes
        time.sleep(seconds)
        s1, b1, n1, w1 = thread_cpu_s(thread), thread_cpu_s(bare.thread), sampler.samples, bare.wakes
        bare.stop()
        tracker.stop()
        sampler_ms.append((s1 - s0) / (n1 - n0) * 1e3)
        bare_ms.append((b1 - b0) / (w1 - w0) * 1e3)
        ratios.append(sampler_ms[-1] / bare_ms[-1])
        samples += n1 - n0
    return {"sampler_ms": statistics.median(sampler_ms), "bare_ms": statistics.median(bare_ms),
            "ratio": statistics.median(ratios), "samples": samples, "hz": 1 / interval_s}


def tree_listing_ms(runs: int = 5) -> float:
    """CPU milliseconds of one listing of this process's children (the sampler does it every ``refresh_s``,
    5 s by default; the 3 s windows of ``sampler_vs_bare_wake`` fall between two listings, so it is shown apart)."""
    from carbonstep.measure.readers.process import ProcessTree

    tree = ProcessTree()
    try:
        times = []
        for _ in range(runs):
            start = time.thread_time()
            tree._list(time.monotonic())
            times.append(time.thread_time() - start)
    finally:
        tree.close()
    return statistics.median(times) * 1e3


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
    parser.add_argument("--sampler-rounds", type=int, default=7)
    parser.add_argument("--only-sampler", action="store_true", help="print the sampler / bare wake-up rows only")
    parser.add_argument("--peers", action="store_true",
                        help="the comparison with CodeCarbon, Carbontracker and Zeus only (benchmarks/peers.py; "
                             "needs `bash benchmarks/peers_venv.sh` once)")
    args = parser.parse_args()
    if args.peers:
        import peers  # benchmarks/peers.py, beside this script

        peers.main([])
        return
    if args.only_sampler:
        wake = sampler_vs_bare_wake(args.sampler_rounds)
        print(f"sampler {wake['sampler_ms']:.3f} ms, bare wake-up {wake['bare_ms']:.3f} ms per sample at "
              f"{wake['hz']:g} Hz: ratio {wake['ratio']:.2f} (median of {args.sampler_rounds}, target ≤ 1.5)")
        listing_ms = tree_listing_ms()
        print(f"process-tree listing {listing_ms:.2f} ms CPU every 5 s: {listing_ms / 50:.3f} ms per sample at 10 Hz "
              "(not in the windows above)")
        return
    imports = import_time(args.import_runs)
    mark_us = mark_cost()
    wake = sampler_vs_bare_wake(args.sampler_rounds)
    times = overhead(args.rounds, args.steps)
    base = statistics.median(t[0] for t in times["untracked"])
    print("| measurement | result | target / peer |")
    print("|---|---|---|")
    for name, seconds in imports.items():
        target = "< 50 ms" if name == "import carbonstep" else "peer" if "codecarbon" in name else ""
        print(f"| `{name}` over bare Python (median of {args.import_runs}) | {seconds * 1e3:.1f} ms | {target} |")
    print(f"| `Tracker.mark()` | {mark_us:.2f} µs | < 5 µs |")
    print(f"| sampler thread CPU per sample at {wake['hz']:g} Hz (default readers, {wake['samples']} samples) | "
          f"{wake['sampler_ms']:.3f} ms | Carbontracker 0.16 ms, CodeCarbon 1.1 ms |")
    print(f"| bare Python thread wake-up (`Lock.acquire(timeout)` loop), side by side | {wake['bare_ms']:.3f} ms | |")
    print(f"| sampler / bare wake-up (median of {args.sampler_rounds} rounds) | {wake['ratio']:.2f} | ≤ 1.5 |")
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
