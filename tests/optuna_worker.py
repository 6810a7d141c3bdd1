"""One worker of an Optuna study shared through a SQLite storage, for test_optuna.py.

    python tests/optuna_worker.py STORAGE STUDY OUT_DIR NAME

Each trial costs exactly 1 Wh (a counter) and 0.1 s; the study's budget is 10.5 Wh. The worker waits for
OUT_DIR/go (so that both workers search at once), then writes OUT_DIR/NAME.json: the trials it ran, the
figures it measured for each, and how its search stopped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import optuna

from carbonstep import Budget
from carbonstep.optuna import CarbonCallback, figures_in, study_totals
from carbonstep.testing import CounterReader

WH = 3600.0  # joules
LIMIT_KWH = 0.0105


def main() -> None:
    storage, name, out, worker = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True)
    (out / f"{worker}.ready").touch()
    deadline = time.monotonic() + 60
    while not (out / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    joules = [0.0]
    ran: dict[int, float] = {}

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        trial.set_user_attr("worker", worker)
        time.sleep(0.1)
        joules[0] += WH
        return x * x

    def remember(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        ran[trial.number] = figures_in(trial.user_attrs).get("energy_kwh", -1.0)

    carbon = CarbonCallback(intensity=1000.0, readers=[CounterReader("cpu", "cpu", lambda: joules[0])],
                            interval_s=0.05, budget=Budget(kwh=LIMIT_KWH))
    study.optimize(carbon.track(objective), n_trials=100, callbacks=[carbon, remember])
    result = {"pid": os.getpid(), "ran": ran, "decision": carbon.decision.to_dict() if carbon.decision else None,
              "seen_total_kwh": study_totals(study)["energy_kwh"]}
    (out / f"{worker}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
