#!/usr/bin/env python3
"""Record a real training run's fine energy timeline, for ``interval_choice.py`` to replay at coarser intervals.

    .venv/bin/python benchmarks/interval_record.py [--epochs 4] [--seconds 12] [--out benchmarks/data/interval_run.json]

A small torch model (MLP, SGD) trains for ``--epochs`` epochs of about ``--seconds`` seconds each, with a
validation pass at each epoch's end (about a fifth of an epoch, without gradients), the Tracker sampling every
0.05 s with the readers this machine has. The training loop marks every step and, like carbonstep's callbacks
(``callbacks/session.py``), asks for a fresh sample at each validation and each epoch's end. Written: every
sample's time and cumulative joules per domain (gpu, cpu, ram), every mark, and the times of the fresh samples.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=12.0, help="training seconds per epoch")
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "interval_run.json")
    args = parser.parse_args()

    import torch

    from carbonstep import Tracker

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.GELU(), torch.nn.Linear(512, 1))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = torch.randn(256, 256), torch.randn(256, 1)
    samples: list[list[float]] = []
    marks: list[list[object]] = []
    polls: list[float] = []
    tracker = Tracker(intensity=100, interval_s=args.interval).start()
    totals, sampler = tracker._totals, tracker._sampler
    assert totals is not None and sampler is not None
    ingest = totals.ingest

    def recording(sample: object) -> None:
        ingest(sample)  # type: ignore[arg-type]
        assert totals.latest is not None
        samples.append([totals.latest[0], *totals.latest[1]])

    assert totals.latest is not None
    samples.append([totals.latest[0], *totals.latest[1]])  # the first sample, taken by start()
    sampler._deliver = recording  # every sample from now on, before the thinning of the report's timeline
    clock = totals.clock

    def mark(name: str, step: int, epoch: int | None) -> None:
        marks.append([name, step, epoch, clock()])
        tracker.mark(name, step, epoch)

    def fresh() -> None:
        polls.append(clock())
        tracker.snapshot()

    step = 0
    for epoch in range(args.epochs):
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
            step += 1
            mark("step", step, epoch)
        end = time.monotonic() + args.seconds / 5
        with torch.no_grad():
            while time.monotonic() < end:
                model(x)
        mark("validation", step, None)
        fresh()
        mark("epoch_end", step, epoch)
        fresh()
    report = tracker.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "what": "cumulative joules per domain (gpu, cpu, ram) at every sample of a Tracker at "
                f"{args.interval:g} s; marks [name, step, epoch, t]; polls: times of fresh samples asked for",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
                   f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} at the end",
        "devices": [f"{d.name}: {d.method}" for d in report.devices],
        "command": f"benchmarks/interval_record.py --epochs {args.epochs} --seconds {args.seconds:g}",
        "interval_s": args.interval, "t0": totals.t0, "samples": samples, "marks": marks, "polls": polls,
    }, separators=(",", ":")))
    print(f"{len(samples)} samples, {len(marks)} marks, {len(polls)} fresh samples -> {args.out}")


if __name__ == "__main__":
    main()
