#!/usr/bin/env python3
"""What carbonstep's Optuna callback adds to each trial, as a share of a 1 s trial, in memory and on SQLite.

    .venv/bin/python benchmarks/optuna_trial_cost.py [--trials 30] [--rounds 3] [--split-writes]

For each storage (Optuna's in-memory storage, then one SQLite file per study), three studies in one process
taking turns trial by trial (``optimize(n_trials=1)`` each; the median over all trials): a bare objective (a few
microseconds of work); the same objective through ``CarbonCallback.track`` with ``callbacks=[carbon]`` (the
readers this machine has); and the same with a study budget that is never reached (``Budget(co2_kg=1.0)``: the
budget checks of every trial run, none stops). The added wall time per trial, over 1 s, is the overhead's share
of a 1 s trial (the target: ≤ 5 %). Then where the added time goes, on the same SQLite storage: a trial's
Tracker (construct, ``start()``, ``stop()``), the one storage write of its figures (``user_attrs["carbonstep"]``),
and the budget's check after a trial (it reads the study's trials). Last, the budget's end check on in-memory
studies of 100, 1,000 and 5,000 trials (what grows with the study). ``--split-writes``: also the figures as one
``set_user_attr`` each (as carbonstep stored them before).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

MODES = ("bare", "tracked", "budget")
LABELS = {"bare": "bare trial", "tracked": "with carbonstep's callback",
          "budget": "with the callback and a study budget (2 checks a trial)"}


def _objective(trial: Any) -> float:
    x = trial.suggest_float("x", -10, 10)
    return x * x


def _study(optuna: Any, path: Path | None, name: str) -> Any:
    storage = f"sqlite:///{path}" if path is not None else None
    return optuna.create_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(0))


def _carbon(mode: str) -> Any:
    from carbonstep import Budget
    from carbonstep.optuna import CarbonCallback

    return CarbonCallback(intensity=100, budget=Budget(co2_kg=1.0) if mode == "budget" else None)


def interleaved(optuna: Any, trials: int, paths: dict[str, Path | None]) -> dict[str, list[tuple[float, float]]]:
    """(wall s, CPU s) of each of ``trials`` trials per mode, the modes' studies taking turns trial by trial (each
    its own storage: ``paths[mode]``, None for memory), so that the load of the machine falls on all alike."""
    runs = {}
    for mode in MODES:
        study = _study(optuna, paths[mode], mode)
        study.optimize(_objective, n_trials=2)  # tables created, caches warm
        objective, callbacks = _objective, []
        if mode != "bare":
            carbon = _carbon(mode)
            objective, callbacks = carbon.track(_objective), [carbon]
            study.optimize(objective, n_trials=2, callbacks=callbacks)  # the first Tracker's imports done
        runs[mode] = (study, objective, callbacks)
    rows: dict[str, list[tuple[float, float]]] = {}
    for _ in range(trials):
        for mode, (study, objective, callbacks) in runs.items():
            _timed(rows, mode, functools.partial(study.optimize, objective, n_trials=1, callbacks=callbacks))
    return rows


def _timed(rows: dict[str, list[tuple[float, float]]], part: str, action: Any, *args: Any) -> Any:
    """``action(*args)``, its (wall s, CPU s) appended to ``rows[part]``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = action(*args)
    rows.setdefault(part, []).append((time.perf_counter() - wall, time.process_time() - cpu))
    return result


def _start_tracker(options: dict[str, Any]) -> Any:
    from carbonstep.measure.tracker import Tracker

    return Tracker(**options).start()


def _split_write(trial: Any, figures: dict[str, Any]) -> None:
    for key, value in figures.items():
        trial.set_user_attr("carbonstep." + key, value)


def parts(optuna: Any, trials: int, path: Path, split: bool) -> dict[str, tuple[float, float]]:
    """Median (wall s, CPU s) of each part of a tracked trial, on an SQLite study of ``trials`` trials."""
    carbon = _carbon("budget")
    study = _study(optuna, path, "parts")
    study.optimize(carbon.track(_objective), n_trials=2, callbacks=[carbon])
    figures = study.trials[-1].user_attrs["carbonstep"]
    options = {**carbon.tracker_options, "name": "trial"}
    rows: dict[str, list[tuple[float, float]]] = {}
    for _ in range(trials):
        tracker = _timed(rows, "tracker_start", _start_tracker, options)
        _timed(rows, "tracker_stop", tracker.stop)
        trial = study.ask()
        _timed(rows, "write", trial.set_user_attr, "carbonstep", figures)
        if split:
            _timed(rows, "split", _split_write, trial, figures)
        frozen = study.tell(trial, 1.0)
        _timed(rows, "check", carbon, study, frozen)  # Optuna's callback after the trial: the end check
    return {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in rows.items()}


def check_by_study_size(optuna: Any, sizes: tuple[int, ...], repeats: int) -> dict[int, tuple[float, float]]:
    """Median (wall s, CPU s) of the budget's end check on an in-memory study of n finished, measured trials: the
    part of a check that grows with the study (no storage I/O)."""
    figures = {"co2_kg": 1e-9, "energy_kwh": 1e-8, "water_l": 0.0}
    out = {}
    for n in sizes:
        study = _study(optuna, None, f"size{n}")
        for _ in range(n):
            trial = study.ask()
            trial.suggest_float("x", -10, 10)
            trial.set_user_attr("carbonstep", figures)
            last = study.tell(trial, 1.0)
        carbon = _carbon("budget")
        rows: dict[str, list[tuple[float, float]]] = {}
        for _ in range(repeats):
            _timed(rows, "check", carbon, study, last)
        out[n] = (statistics.median(w for w, _ in rows["check"]), statistics.median(c for _, c in rows["check"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--split-writes", action="store_true", help="also time the figures as one attr each")
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("carbonstep").setLevel(logging.ERROR)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for storage in ("memory", "sqlite"):
                paths = {m: Path(tmp, f"{m}{r}.db") if storage == "sqlite" else None for m in MODES}
                for mode, rows in interleaved(optuna, args.trials, paths).items():
                    results.setdefault((storage, mode), []).extend(rows)
        part = parts(optuna, args.trials, Path(tmp, "parts.db"), args.split_writes)
    by_size = check_by_study_size(optuna, (100, 1000, 5000), args.trials)
    med = {key: (statistics.median(w for w, _ in rows) * 1e3, statistics.median(c for _, c in rows) * 1e3)
           for key, rows in results.items()}
    print(f"load average {' '.join(f'{v:.2f}' for v in load_before)} before, "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} after; {args.rounds} rounds of {args.trials} trials "
          "per study, the studies taking turns trial by trial; medians over all trials, ms per trial\n")
    print("| storage | per trial | wall ms | CPU ms | added wall / CPU ms | share of a 1 s trial (wall / CPU) |")
    print("|---|---|---|---|---|---|")
    for storage in ("memory", "sqlite"):
        bare_wall, bare_cpu = med[(storage, "bare")]
        for mode in MODES:
            wall, cpu = med[(storage, mode)]
            added = "" if mode == "bare" else f"{wall - bare_wall:.1f} / {cpu - bare_cpu:.1f}"
            share = "" if mode == "bare" else f"**{(wall - bare_wall) / 1000:.1%}** / {(cpu - bare_cpu) / 1000:.1%}"
            print(f"| {storage} | {LABELS[mode]} | {wall:.1f} | {cpu:.1f} | {added} | {share} |")
    print(f"\n| part of a tracked trial on SQLite (median of {args.trials}) | wall ms | CPU ms |")
    print("|---|---|---|")
    names = {"tracker_start": "the trial's Tracker: construct and `start()`", "tracker_stop": "its `stop()`",
             "write": "the figures' storage write (one attr, one commit)",
             "split": "the figures as one `set_user_attr` each (before)",
             "check": "the budget's end check (`carbon(study, trial)`: reads the study's trials)"}
    for key, (wall, cpu) in part.items():
        print(f"| {names[key]} | {wall * 1e3:.1f} | {cpu * 1e3:.1f} |")
    print(f"\n| the budget's end check, in-memory study of n trials (median of {args.trials}) | wall ms | CPU ms |")
    print("|---|---|---|")
    for n, (wall, cpu) in by_size.items():
        print(f"| n = {n} | {wall * 1e3:.2f} | {cpu * 1e3:.2f} |")


if __name__ == "__main__":
    main()
