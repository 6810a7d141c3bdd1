#!/usr/bin/env python3
"""Replay a recorded run (``interval_record.py``) at coarser sampling intervals; pick the coarsest interval at
which the epoch, validation and budget figures stay within 1 % of the fine recording's.

    .venv/bin/python benchmarks/interval_choice.py [benchmarks/data/interval_run.json] [--tolerance 0.01]

A replay at interval Δ samples the recorded cumulative energy at t0, t0 + Δ, t0 + 2Δ, … and at every fresh
sample the recording asked for (validation, epoch end: carbonstep's callbacks ask for one there), then places
each mark on that coarser curve by linear interpolation, as ``measure/totals.py`` does. Figures compared, each
from the replay and from the recording itself (0.05 s):

- epoch: each epoch's energy in the report (first to last mark of the epoch, as ``totals.epochs`` keeps it);
- validation: the cumulative energy at each validation mark (what the callbacks log and keep there);
- budget: the cumulative energy at each epoch's end (what a budget checks).

Each twice: as carbonstep's callbacks measure (a fresh sample at each validation and epoch end) and as a bare
``Tracker`` with ``mark()`` calls only (no fresh samples). Shown beside them, not deciding: the energy of each
validation pass alone (last step mark before it to the validation mark), a figure carbonstep does not report.
"""

from __future__ import annotations

import argparse
import bisect
import json
from pathlib import Path

CANDIDATES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0)


def energy_at(times: list[float], joules: list[float], t: float) -> float:
    """Cumulative joules at ``t``, linear between the two samples around it (clamped at the ends)."""
    i = bisect.bisect_right(times, t)
    if i == 0:
        return joules[0]
    if i == len(times):
        return joules[-1]
    t0, t1 = times[i - 1], times[i]
    return joules[i - 1] + (joules[i] - joules[i - 1]) * (t - t0) / (t1 - t0) if t1 > t0 else joules[i]


def figures(times: list[float], joules: list[float], marks: list[list]) -> dict[str, float]:
    """Every compared figure of one sampled curve, by name."""
    out: dict[str, float] = {}
    at = {i: energy_at(times, joules, m[3]) for i, m in enumerate(marks)}
    epochs: dict[int, list[float]] = {}
    last_step = None
    previous_end = 0.0
    for i, (name, step, epoch, _) in enumerate(marks):
        if epoch is not None:
            row = epochs.setdefault(epoch, [previous_end, at[i]])
            row[1] = at[i]
        if name == "step":
            last_step = at[i]
        elif name == "validation":
            out[f"(not reported) validation pass at step {step}"] = at[i] - (last_step or 0.0)
            out[f"cumulative at validation, step {step}"] = at[i]
        elif name == "epoch_end":
            out[f"budget: cumulative at the end of epoch {epoch}"] = at[i]
            previous_end = at[i]
    for epoch, (start, end) in epochs.items():
        out[f"epoch {epoch}"] = end - start
    return out


def replay(run: dict, interval: float, polls: bool) -> tuple[list[float], list[float]]:
    """The recording sampled every ``interval`` seconds (plus at its fresh samples, with ``polls``) and at stop."""
    times = [s[0] for s in run["samples"]]
    joules = [sum(s[1:]) for s in run["samples"]]
    start, end = times[0], times[-1]
    grid = [start + k * interval for k in range(int((end - start) / interval) + 1)]
    asked = {t for t in run["polls"] if start <= t <= end} if polls else set()
    points = sorted(set(grid) | asked | {end})
    return points, [energy_at(times, joules, t) for t in points]


def worst_error(reference: dict[str, float], coarse: dict[str, float], reported: bool) -> tuple[float, str]:
    """The largest relative difference over the reported figures (or over the others), and its figure."""
    return max((abs(coarse[k] - v) / abs(v), k) for k, v in reference.items()
               if v and reported != k.startswith("(not reported)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path, default=Path(__file__).parent / "data" / "interval_run.json")
    parser.add_argument("--tolerance", type=float, default=0.01)
    args = parser.parse_args()
    run = json.loads(args.run.read_text())
    times = [s[0] for s in run["samples"]]
    joules = [sum(s[1:]) for s in run["samples"]]
    reference = figures(times, joules, run["marks"])
    print(f"recording: {args.run.name}, {len(times)} samples at {run['interval_s']:g} s over "
          f"{times[-1] - times[0]:.1f} s, {len(run['marks'])} marks; {run['machine']}; {', '.join(run['devices'])}")
    print(f"{len(reference)} figures; worst relative difference from the recording per interval:\n")
    print("| interval | with the callbacks' fresh samples | bare Tracker, marks only | not reported: a validation "
          "pass alone (callbacks) |")
    print("|---|---|---|---|")
    chosen, failed = None, False
    for interval in CANDIDATES:
        cells, worst = [], 0.0
        for polls, reported in ((True, True), (False, True), (True, False)):
            error, name = worst_error(reference, figures(*replay(run, interval, polls), run["marks"]), reported)
            cells.append(f"{error * 100:.3f} % ({name})")
            worst = max(worst, error) if reported else worst
        print(f"| {interval:g} s | " + " | ".join(cells) + " |")
        failed = failed or worst > args.tolerance
        if not failed:
            chosen = interval  # the coarsest with every finer candidate within the tolerance too
    print(f"\ncoarsest interval within {args.tolerance * 100:g} %: {chosen:g} s" if chosen else
          f"\nno candidate interval within {args.tolerance * 100:g} %")


if __name__ == "__main__":
    main()
