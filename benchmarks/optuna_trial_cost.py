#!/usr/bin/env python3
"""What carbonstep's Optuna callback adds to each trial on an SQLite storage, as a share of a 1 s trial.

    .venv/bin/python benchmarks/optuna_trial_cost.py [--trials 30] [--rounds 3]

Alternating studies in one process, on one SQLite file each: a bare objective (a few microseconds of work),
and the same objective through ``CarbonCallback.track`` with ``callbacks=[carbon]`` (the readers this machine
has). The added wall time per trial, over 1 s, is the overhead's share of a 1 s trial (the target: ≤ 5 %). Then,
on the same storage, the storage writes alone: the trial's figures as one ``set_user_attr`` each (as carbonstep
stored them before) against the same figures as one attribute (one commit, as now).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path


def _objective(trial):  # type: ignore[no-untyped-def]
    x = trial.suggest_float("x", -10, 10)
    return x * x


def _study(optuna, path: Path, name: str):  # type: ignore[no-untyped-def]
    return optuna.create_study(study_name=name, storage=f"sqlite:///{path}", sampler=optuna.samplers.RandomSampler(0))


def per_trial(optuna, tracked: bool, trials: int, path: Path, name: str) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    """(wall s, CPU s) per trial, and the number of carbonstep user attrs per trial."""
    from carbonstep.optuna import CarbonCallback

    study = _study(optuna, path, name)
    study.optimize(_objective, n_trials=2)  # tables created, caches warm
    objective, callbacks = _objective, []
    if tracked:
        carbon = CarbonCallback(intensity=100)
        objective, callbacks = carbon.track(_objective), [carbon]
        study.optimize(objective, n_trials=2, callbacks=callbacks)  # the first Tracker's imports out of the window
    wall, cpu = time.perf_counter(), time.process_time()
    study.optimize(objective, n_trials=trials, callbacks=callbacks)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    attrs = len([k for k in study.trials[-1].user_attrs if k == "carbonstep" or k.startswith("carbonstep.")])
    return wall / trials, cpu / trials, attrs


def writes(optuna, figures: dict, trials: int, path: Path, name: str) -> tuple[float, float, float, float]:  # type: ignore[no-untyped-def]
    """(wall, CPU) per trial of storing ``figures`` one attribute each, then as one attribute."""
    study = _study(optuna, path, name)
    results = []
    for one in (False, True):
        wall_total = cpu_total = 0.0
        for _ in range(trials):
            trial = study.ask()
            wall, cpu = time.perf_counter(), time.process_time()
            if one:
                trial.set_user_attr("carbonstep", figures)
            else:
                for key, value in figures.items():
                    trial.set_user_attr("carbonstep." + key, value)
            wall_total += time.perf_counter() - wall
            cpu_total += time.process_time() - cpu
            study.tell(trial, 1.0)
        results += [wall_total / trials, cpu_total / trials]
    return results[0], results[1], results[2], results[3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("carbonstep").setLevel(logging.ERROR)
    bare, tracked, split, joined = [], [], [], []
    attrs = 0
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            bare.append(per_trial(optuna, False, args.trials, Path(tmp, f"bare{r}.db"), "bare"))
            tracked.append(per_trial(optuna, True, args.trials, Path(tmp, f"tracked{r}.db"), "tracked"))
            attrs = tracked[-1][2]
            if not figures:
                study = optuna.load_study(study_name="tracked", storage=f"sqlite:///{Path(tmp, 'tracked0.db')}")
                figures = study.trials[-1].user_attrs["carbonstep"]
            w = writes(optuna, figures, args.trials, Path(tmp, f"writes{r}.db"), "writes")
            split.append(w[:2])
            joined.append(w[2:])
    med = lambda rows, i: statistics.median(row[i] for row in rows) * 1e3  # noqa: E731
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {args.rounds} rounds of {args.trials} "
          f"trials; medians, ms per trial (wall / CPU)\n")
    print("| per trial on SQLite | wall ms | CPU ms |")
    print("|---|---|---|")
    print(f"| bare trial | {med(bare, 0):.1f} | {med(bare, 1):.1f} |")
    print(f"| with carbonstep's callback | {med(tracked, 0):.1f} | {med(tracked, 1):.1f} |")
    added = med(tracked, 0) - med(bare, 0)
    print(f"| added by carbonstep ({attrs} user attr per trial) | {added:.1f} | {med(tracked, 1) - med(bare, 1):.1f} |")
    print(f"| the figures as {len(figures)} `set_user_attr` calls (before) "
          f"| {med(split, 0):.1f} | {med(split, 1):.1f} |")
    print(f"| the same figures as one attribute (now) | {med(joined, 0):.1f} | {med(joined, 1):.1f} |")
    print(f"\noverhead per 1 s trial: {added / 1000:.1%} of its wall time (added wall ms / 1000 ms)")


if __name__ == "__main__":
    main()
