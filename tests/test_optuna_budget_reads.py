"""What the study budget reads from the storage: one read a check, and at a trial's start none when the end
check's read is exactly what a new read would find; the decisions are those of a fresh read at every check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from carbonstep import Budget
from carbonstep.callbacks.study_budget import FinishedCosts, StudyReads, costs_of, figures_of
from carbonstep.optuna import figures_in
from tests.test_optuna import WH, Meter, carbon_for, spent_study

COSTS_WH = [1.0, 3.0, 2.0, 1.0, 4.0, 2.0, 1.0, 3.0, 2.0, 5.0, 1.0, 2.0]  # trial n costs COSTS_WH[n] Wh


def _search(storage: str | None, fresh_every_check: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], int]:
    """A lone worker's study on a 20 Wh budget (prediction on, every third trial pruned): each trial's state and
    figures, the budget decision recorded, this worker's last decision, and how many times the checks read the
    storage. ``fresh_every_check``: no read kept for a start check (every check reads the storage)."""
    reads = [0]
    read = StudyReads.read

    def counted(self: StudyReads, study: Any, keep: bool = False) -> Any:
        reads[0] += 1
        return read(self, study, keep)

    with monkeypatch.context() as patch:
        patch.setattr(StudyReads, "read", counted)
        if fresh_every_check:
            patch.setattr(StudyReads, "kept_for", lambda self, study, number: None)
        meter = Meter()

        def objective(trial: optuna.Trial) -> float:
            meter.joules += COSTS_WH[trial.number] * WH
            if trial.number % 3 == 2:
                raise optuna.TrialPruned()
            return trial.suggest_float("x", 0, 1)

        carbon = carbon_for(meter, budget=Budget(kwh=0.020))
        study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(0))
        study.optimize(carbon.track(objective), n_trials=len(COSTS_WH), callbacks=[carbon])
    trials = [(t.number, t.state.name, round(figures_in(t.user_attrs)["energy_kwh"] * 1000, 9)) for t in study.trials]
    assert carbon.decision is not None
    return [trials, study.user_attrs["carbonstep.budget"], carbon.decision.to_dict()], reads[0]


@pytest.mark.parametrize("on_sqlite", [False, True])
def test_a_lone_worker_reads_the_study_once_a_trial_and_decides_as_reading_at_every_check_would(
        on_sqlite: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = (lambda name: f"sqlite:///{tmp_path / name}") if on_sqlite else (lambda name: None)
    kept, kept_reads = _search(url("kept.db"), False, monkeypatch)
    fresh, fresh_reads = _search(url("fresh.db"), True, monkeypatch)
    assert kept == fresh  # the same trials, figures and decisions
    trials = kept[0]
    # spent after each trial: 1, 4, 6, 7, 11, 13, 14, 17, 19 Wh; the next trial projected at the mean of the last
    # three: after trial 7, 17 + (2 + 1 + 3) / 3 = 19 ≤ 20 goes on; after trial 8, 19 + (1 + 3 + 2) / 3 > 20 stops
    assert [n for n, _, _ in trials] == list(range(9)) and kept[2]["stop"] and kept[2]["epoch"] == 8
    assert sum(wh for _, _, wh in trials) == pytest.approx(19.0)
    assert fresh_reads == 2 * len(trials)  # a read at each trial's start and at its end
    assert kept_reads == len(trials) + 1  # the first start, then one at each end: the next start reuses it


def test_a_trial_created_by_another_worker_after_the_end_check_is_counted_at_the_next_start() -> None:
    """9 Wh spent of 10.5: the end check of trial 8 lets a 10th trial in; another worker then starts trial 9, so
    this worker's trial 10 must count it in flight (9 + 1 + 1 > 10.5) and is refused, as a fresh read says."""
    _, carbon, study, objective = spent_study(9)
    assert carbon.decision is not None and not carbon.decision.stop
    elsewhere = study.ask()  # trial 9, running on another worker
    study.optimize(carbon.track(objective), n_trials=1, callbacks=[carbon])
    refused = study.trials[10]
    assert refused.state.name == "PRUNED" and figures_in(refused.user_attrs)["skipped"] is True
    assert "1 trial(s) running on other workers" in carbon.decision.reason
    study.tell(elsewhere, 1.0)


def test_a_trial_running_at_the_end_check_is_read_again_at_the_next_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """8 Wh spent of 10.5 and trial 8 running elsewhere at this worker's end check (8 + 1 + 1 ≤ 10.5). Trial 8 then
    spends 2 Wh; this worker's trial 9, numbered right after the read, must see it: 10 + 1.33 > 10.5, refused."""
    _, carbon, study, objective = spent_study(8)
    elsewhere = study.ask()  # trial 8
    carbon(study, study.trials[7])  # this worker's end check, trial 8 in flight
    assert carbon.decision is not None and not carbon.decision.stop
    carbon._record(elsewhere, {**figures_of([]), "energy_kwh": 0.002, "co2_kg": 0.002})
    study.tell(elsewhere, 1.0)
    ours = study.ask()
    assert ours.number == 9
    monkeypatch.setattr(study, "stop", lambda: None)  # outside optimize(), Optuna refuses stop()
    with pytest.raises(optuna.TrialPruned, match="would be exceeded"):
        carbon._refuse_if_spent(ours)
    assert carbon.decision.spent == pytest.approx(0.010)


def test_a_finished_trial_s_cost_is_made_once_and_a_running_one_s_at_every_read() -> None:
    study = optuna.create_study()
    done = study.ask()
    done.set_user_attr("carbonstep", {"co2_kg": 0.5, "energy_kwh": 1.0, "water_l": 0.0})
    study.tell(done, 2.0)
    running = study.ask()
    costs = FinishedCosts()
    first = costs.of(study.get_trials(deepcopy=False))
    assert first == costs_of(study.get_trials(deepcopy=False))
    assert [(c.state, c.co2_kg) for c in first] == [("COMPLETE", 0.5), ("RUNNING", None)]
    running.set_user_attr("carbonstep", {"co2_kg": 0.25, "energy_kwh": 0.5, "water_l": 0.0})
    second = costs.of(study.get_trials(deepcopy=False))
    assert second[0] is first[0]  # the finished trial: kept
    assert second[1].co2_kg == 0.25  # the running one: converted again
    copies = costs.of(study.get_trials(deepcopy=True))  # other objects for the same trials: converted again
    assert copies[0] is not first[0] and copies == second
