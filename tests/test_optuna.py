"""Real Optuna studies (in memory, SQLite, two worker processes on one storage) measured by carbonstep."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from carbonstep import Budget, ConfigError
from carbonstep.accounting.water import water_of
from carbonstep.analysis.study.study import TrialCost, analyse, best_so_far, milestones
from carbonstep.callbacks.study_budget import figures_of
from carbonstep.cli import main as cli_main
from carbonstep.optuna import CarbonCallback, check_study_budget, figures_in, stale_trial, study_totals, trial_costs
from carbonstep.testing import CounterReader

HERE = Path(__file__).resolve().parent
WH = 3600.0  # joules
optuna.logging.set_verbosity(optuna.logging.WARNING)


class Meter:
    """A counter the objective charges: the trial's energy is exactly what the objective says it spent."""

    def __init__(self) -> None:
        self.joules = 0.0

    def reader(self, name: str = "cpu") -> CounterReader:
        return CounterReader(name, "cpu", lambda: self.joules)


def carbon_for(meter: Meter, **kw) -> CarbonCallback:
    return CarbonCallback(intensity=1000.0, readers=[meter.reader()], interval_s=0.05, **kw)  # 1 g per Wh


def test_each_trial_carries_its_figures_and_the_study_sums_them_pruned_and_failed_included() -> None:
    meter = Meter()
    plan = {0: (2.0, "ok"), 1: (3.0, "prune"), 2: (1.0, "fail"), 3: (4.0, "ok")}

    def objective(trial: optuna.Trial) -> float:
        wh, outcome = plan[trial.number]
        meter.joules += wh * WH
        if outcome == "prune":
            raise optuna.TrialPruned()
        if outcome == "fail":
            raise ValueError("diverged")
        return wh

    carbon = carbon_for(meter)
    study = optuna.create_study()
    study.optimize(carbon.track(objective), n_trials=4, callbacks=[carbon], catch=(ValueError,))
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "PRUNED", "FAIL", "COMPLETE"]
    for trial in study.trials:
        wh = plan[trial.number][0]
        attrs = trial.user_attrs
        assert set(attrs) == {"carbonstep"}  # one attribute: one storage write per trial
        assert figures_in(attrs)["energy_kwh"] == pytest.approx(wh / 1000, rel=1e-9)
        assert figures_in(attrs)["co2_kg"] == pytest.approx(wh / 1000, rel=1e-9)  # 1000 g/kWh
        assert figures_in(attrs)["water_l"] == pytest.approx(wh / 1000 * water_of(None).l_per_kwh, rel=1e-9)
        assert figures_in(attrs)["methods"] == {"cpu": "counter"}
        assert figures_in(attrs)["measured_by"] == ["tracker"]
        assert figures_in(attrs)["duration_s"] > 0
    total = study_totals(study)
    assert total["energy_kwh"] == pytest.approx(0.010, rel=1e-9) and total["co2_kg"] == pytest.approx(0.010, rel=1e-9)
    assert total["states"] == {"COMPLETE": 2, "PRUNED": 1, "FAIL": 1} and total["measured"] == 4
    assert carbon.totals(study) == total


@pytest.mark.parametrize(("predict", "trials"), [(True, 4), (False, 5)])
def test_the_budget_stops_the_study_between_trials(predict: bool, trials: int) -> None:
    """1 Wh a trial, 4.5 Wh allowed: with prediction the 5th trial would overrun it, so the study stops after 4;
    without, it stops once 5 Wh are spent."""
    meter = Meter()

    def objective(trial: optuna.Trial) -> float:
        meter.joules += WH
        if trial.number % 3 == 2:
            raise optuna.TrialPruned()  # pruned trials count as spent
        return trial.suggest_float("x", 0, 1)

    carbon = carbon_for(meter, budget=Budget(kwh=0.0045, predict=predict))
    study = optuna.create_study()
    study.optimize(carbon.track(objective), n_trials=50, callbacks=[carbon])
    assert len(study.trials) == trials
    assert study_totals(study)["energy_kwh"] == pytest.approx(trials / 1000, rel=1e-9)
    recorded = study.user_attrs["carbonstep.budget"]
    assert recorded["stop"] and recorded["quantity"] == "kwh" and recorded["epoch"] == trials - 1
    assert ("would be exceeded" if predict else "budget spent") in recorded["reason"]
    assert carbon.decision is not None and carbon.decision.stop


def test_a_trial_started_after_the_budget_was_spent_is_pruned_at_once_and_stops_the_worker() -> None:
    meter = Meter()
    study = optuna.create_study()
    first = carbon_for(meter)  # a worker without a budget spends 3 Wh

    def objective(trial: optuna.Trial) -> float:
        meter.joules += WH
        return 1.0

    study.optimize(first.track(objective), n_trials=3, callbacks=[first])
    late = carbon_for(meter, budget=Budget(kwh=0.0025))  # a worker that joins with a budget already spent
    study.optimize(late.track(objective), n_trials=10, callbacks=[late])
    assert len(study.trials) == 4
    skipped = study.trials[-1]
    assert skipped.state.name == "PRUNED" and figures_in(skipped.user_attrs)["skipped"] is True
    assert figures_in(skipped.user_attrs)["energy_kwh"] == 0.0
    assert study_totals(study)["energy_kwh"] == pytest.approx(0.003, rel=1e-9)
    assert "study budget spent" in study.user_attrs["carbonstep.budget"]["reason"]


def test_a_trial_whose_tracker_cannot_start_still_runs_and_is_left_out_of_the_totals() -> None:
    class NotAReader:  # lacks what a reader has (wrap_j, scope…): the Tracker fails to start
        name = "broken"

    meter = Meter()
    carbon = CarbonCallback(intensity=1000.0, readers=[NotAReader()], interval_s=0.05)

    def objective(trial: optuna.Trial) -> float:
        meter.joules += WH
        return 1.0

    study = optuna.create_study()
    study.optimize(carbon.track(objective), n_trials=2, callbacks=[carbon])
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert "could not start" in figures_in(study.trials[0].user_attrs)["error"]
    assert "co2_kg" not in figures_in(study.trials[0].user_attrs)
    result = analyse(trial_costs(study))
    assert result.totals["measured"] == 0 and "2 finished trial(s) carry no carbonstep figures" in result.notes[0]


def test_several_threads_of_one_process_are_refused_with_the_fix() -> None:
    meter = Meter()
    carbon = carbon_for(meter)

    def objective(trial: optuna.Trial) -> float:
        time.sleep(0.2)
        return 1.0

    with pytest.raises(ConfigError, match="several worker processes on one storage"):
        optuna.create_study().optimize(carbon.track(objective), n_trials=4, n_jobs=2)


def test_study_budget_counts_trials_running_on_other_workers() -> None:
    finished = [TrialCost(i, "COMPLETE", 1.0, 0.001, 0.001, 0.0, float(i)) for i in range(6)]
    budget = Budget(co2_kg=0.0085)
    assert not check_study_budget(budget, finished, running_elsewhere=0, after_trial=5).stop  # 6 + 1 ≤ 8.5
    decision = check_study_budget(budget, finished, running_elsewhere=2, after_trial=5)  # 6 + 2 + 1 > 8.5
    assert decision.stop and decision.spent == pytest.approx(0.006) and decision.projected == pytest.approx(0.009)
    assert "2 trial(s) running on other workers" in decision.reason
    assert not check_study_budget(Budget(co2_kg=0.0085, predict=False), finished, 2, 5).stop  # no projection
    skipped = TrialCost(6, "PRUNED", None, 0.0, 0.0, 0.0, 6.0, skipped=True)  # costs nothing, predicts nothing
    assert check_study_budget(budget, [*finished, skipped], 2, 6).projected == pytest.approx(0.009)


def test_two_worker_processes_on_one_sqlite_storage_share_one_budget(tmp_path: Path) -> None:
    storage, name = f"sqlite:///{tmp_path}/study.db", "shared"
    optuna.create_study(study_name=name, storage=storage)
    workers = [subprocess.Popen([sys.executable, str(HERE / "optuna_worker.py"), storage, name, str(tmp_path), w],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in ("a", "b")]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"{w}.ready").exists() for w in ("a", "b")) and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / "go").touch()
    for worker in workers:
        _, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err[-3000:]
    results = {w: json.loads((tmp_path / f"{w}.json").read_text()) for w in ("a", "b")}
    study = optuna.load_study(study_name=name, storage=storage)
    by_worker = {w: {int(n) for n in r["ran"]} for w, r in results.items()}
    assert by_worker["a"] and by_worker["b"] and not by_worker["a"] & by_worker["b"]  # both searched, no overlap
    assert by_worker["a"] | by_worker["b"] == {t.number for t in study.trials}
    measured = {int(n): kwh for r in results.values() for n, kwh in r["ran"].items()}
    total = study_totals(study)
    assert total["energy_kwh"] == pytest.approx(sum(measured.values()), rel=1e-9)  # the storage's total = theirs
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    spent_trials = [t for t in study.trials if not figures_in(t.user_attrs).get("skipped")]
    assert all(figures_in(t.user_attrs)["energy_kwh"] == pytest.approx(0.001, rel=1e-9) for t in spent_trials)
    assert total["energy_kwh"] == pytest.approx(0.010, rel=1e-9)  # the last trial that fits ran, none past it
    assert all(r["decision"]["stop"] for r in results.values())  # each worker stopped on the study's figures
    assert max(r["seen_total_kwh"] for r in results.values()) == pytest.approx(total["energy_kwh"], rel=1e-9)


def spent_study(trials: int) -> tuple[Meter, CarbonCallback, optuna.Study, Any]:
    """A lone worker's study on a 10.5 Wh budget after ``trials`` trials of 1 Wh each: (meter, callback, study,
    objective)."""
    meter = Meter()
    carbon = carbon_for(meter, budget=Budget(kwh=0.0105))

    def objective(trial: optuna.Trial) -> float:
        meter.joules += WH
        return 1.0

    study = optuna.create_study()
    study.optimize(carbon.track(objective), n_trials=trials, callbacks=[carbon])
    return meter, carbon, study, objective


def test_two_trials_at_their_start_check_take_the_last_place_in_number_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """9 Wh spent of 10.5: trials 9 and 10 start at once on two workers. The earlier takes the last place; the
    later counts it in flight and is refused (before, each counted the other and both were refused)."""
    meter, carbon, study, _ = spent_study(9)
    first, second = study.ask(), study.ask()  # both RUNNING, neither measured yet
    stops: list[bool] = []
    monkeypatch.setattr(study, "stop", lambda: stops.append(True))  # outside optimize(), Optuna refuses stop()
    other = carbon_for(meter, budget=Budget(kwh=0.0105))  # the second worker
    other._refuse_if_spent(first)  # admitted: the later trial is not counted
    assert other.decision is not None and not other.decision.stop
    with pytest.raises(optuna.TrialPruned):
        carbon._refuse_if_spent(second)  # 9 spent + trial 9 in flight + this one > 10.5
    assert figures_in(second.study.trials[10].user_attrs)["skipped"] is True and stops == [True]
    carbon._record(first, {**figures_of([]), "energy_kwh": 1e-7, "co2_kg": 1e-7})  # trial 9 cost little after all
    study.tell(first, 1.0)
    study.tell(second, state=optuna.trial.TrialState.PRUNED)
    carbon(study, study.trials[10])  # Optuna's callback after the refused trial: its decision stands
    assert carbon.decision is not None and carbon.decision.stop and "after trial" in carbon.decision.reason


def test_a_study_written_with_one_attr_per_figure_is_still_read(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    storage = f"sqlite:///{tmp_path}/old.db"
    study = optuna.create_study(study_name="old", storage=storage)
    for value, wh in [(3.0, 2.0), (1.0, 5.0)]:
        trial = study.ask()
        for key, figure in {"co2_kg": wh / 1000, "energy_kwh": wh / 1000, "water_l": 0.0}.items():
            trial.set_user_attr("carbonstep." + key, figure)  # how carbonstep stored figures before
        study.tell(trial, value)
    skipped = study.ask()
    skipped.set_user_attr("carbonstep.co2_kg", 0.0)
    skipped.set_user_attr("carbonstep.skipped", True)
    study.tell(skipped, state=optuna.trial.TrialState.PRUNED)
    costs = trial_costs(study)
    assert [(c.co2_kg, c.skipped) for c in costs] == [(0.002, False), (0.005, False), (0.0, True)]
    assert study_totals(study)["co2_kg"] == pytest.approx(0.007, rel=1e-9)
    assert cli_main(["study", "--storage", storage]) == 0
    assert "7.00 g CO2e" in capsys.readouterr().out


def test_a_killed_worker_s_trial_is_failed_by_the_heartbeat_and_no_longer_in_flight(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url, name = f"sqlite:///{tmp_path}/study.db", "hb"
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=2,
                                         heartbeat_stale_trial_callback=stale_trial)
    study = optuna.create_study(study_name=name, storage=storage)
    meter = Meter()
    carbon = carbon_for(meter, budget=Budget(kwh=0.0035))  # 1 Wh a trial

    def objective(trial: optuna.Trial) -> float:
        meter.joules += WH
        return 1.0

    study.optimize(carbon.track(objective), n_trials=2, callbacks=[carbon])  # 2 Wh spent
    worker = subprocess.Popen([sys.executable, "-c", (
        "import time, optuna\n"
        f"s = optuna.storages.RDBStorage({url!r}, heartbeat_interval=1, grace_period=2)\n"
        f"study = optuna.load_study(study_name={name!r}, storage=s)\n"
        "def objective(trial):\n    time.sleep(1.5)\n    print('started', flush=True)\n    time.sleep(600)\n"
        "study.optimize(objective, n_trials=1)\n")], stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None and worker.stdout.readline().strip() == "started"
    worker.kill()  # SIGKILL, after its first heartbeat: no except, no finally: its trial stays RUNNING
    worker.wait(timeout=30)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "RUNNING"]
    time.sleep(3.5)  # past the grace period: the dead worker's heartbeat is stale
    with caplog.at_level("WARNING", logger="carbonstep"):
        study.optimize(carbon.track(objective), n_trials=3, callbacks=[carbon])
    # counted in flight, the dead trial would have refused trial 3 (2 spent + 1 + 1 > 3.5); failed, it does not
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    assert study_totals(study)["energy_kwh"] == pytest.approx(0.003, rel=1e-9)
    assert "trial 2 of study 'hb' failed: its worker stopped" in caplog.text
    worker.stdout.close()


def constructed_study(storage: str | None = None) -> optuna.Study:
    """Nine trials whose values, energies (1 Wh = 1 g at 1000 g/kWh) and states are given below.

    trial:  0     1    2       3    4     5     6    7     8
    value:  10    6    pruned  5    fail  4.96  7    4.95  9
    Wh:     4     2    3       5    1     6     3    8     2

    Front (cheapest first): 1 (2 g, 6), 3 (5 g, 5), 5 (6 g, 4.96), 7 (8 g, 4.95) = 21 g; dominated 0, 6, 8 = 9 g;
    pruned 3 g; failed 1 g; spent without improving 13 g of 34 g. Best so far: 10 at 4 g, 6 at 6 g, 5 at 14 g,
    4.96 at 21 g, 4.95 at 32 g. Improvement 10 → 4.95: 50 % (7.475) at 6 g, 90 % (5.455) and 99 % (5.0005) at
    14 g, 100 % at 32 g: the last 1 % cost 18 g; 2 g came after the best.
    """
    rows = [(10, 4), (6, 2), ("prune", 3), (5, 5), ("fail", 1), (4.96, 6), (7, 3), (4.95, 8), (9, 2)]
    meter = Meter()

    def objective(trial: optuna.Trial) -> float:
        value, wh = rows[trial.number]
        trial.suggest_int("i", 0, 100)
        meter.joules += wh * WH
        if value == "prune":
            raise optuna.TrialPruned()
        if value == "fail":
            raise RuntimeError("out of memory")
        return float(value)

    carbon = carbon_for(meter)
    study = optuna.create_study(study_name="constructed", storage=storage)
    study.optimize(carbon.track(objective), n_trials=len(rows), callbacks=[carbon], catch=(RuntimeError,))
    return study


def test_pareto_front_and_spent_without_improving_on_a_constructed_study() -> None:
    result = analyse(trial_costs(constructed_study()), "minimize", "constructed")
    assert [t.number for t in result.front] == [1, 3, 5, 7]
    grams = {k: round(v.co2_kg * 1e3, 9) for k, v in result.where.items()}
    assert grams == {"pareto front": 21, "dominated": 9, "pruned": 3, "failed": 1}
    assert {k: v.trials for k, v in result.where.items()} == {"pareto front": 4, "dominated": 3, "pruned": 1,
                                                              "failed": 1}
    assert result.spent_without_improving_kg == pytest.approx(0.013, rel=1e-9)
    assert result.totals["co2_kg"] == pytest.approx(0.034, rel=1e-9)
    assert [(m.pct, m.trial, round(m.co2_kg * 1e3, 9)) for m in result.milestones] == [
        (50.0, 1, 6), (90.0, 3, 14), (99.0, 3, 14), (100.0, 7, 32)]
    assert result.last_1pct_kg == pytest.approx(0.018, rel=1e-9)
    assert result.last_10pct_kg == pytest.approx(0.018, rel=1e-9)  # 90 % and 99 % came with the same trial
    assert result.after_best_kg == pytest.approx(0.002, rel=1e-9)
    text = result.table()
    assert "spent without improving (dominated + pruned + failed): 13.0 g (38.2%)" in text
    assert ("the last 10 % of improvement cost 18.0 g CO2e (52.9% of the study), the last 1 % 18.0 g (52.9%); "
            "2.00 g (5.9%) was spent after the best trial") in text
    assert json.loads(json.dumps(result.to_dict()))["last_1pct_kg"] == pytest.approx(0.018, rel=1e-9)


def test_best_so_far_follows_completion_order_and_maximize() -> None:
    trials = [TrialCost(0, "COMPLETE", 0.5, 0.002, 0.002, 0.0, 30.0), TrialCost(1, "COMPLETE", 0.9, 0.001, 0.001,
              0.0, 10.0), TrialCost(2, "PRUNED", None, 0.004, 0.004, 0.0, 20.0)]
    curve = best_so_far(trials, "maximize")  # trial 1 finished first (another worker)
    assert [(p.number, round(p.co2_kg * 1e3, 9), p.best) for p in curve] == [(1, 1, 0.9), (2, 5, 0.9), (0, 7, 0.9)]
    assert [m.trial for m in milestones(curve, "maximize")] == [1, 1, 1, 1]
    result = analyse(trials, "maximize")
    assert [t.number for t in result.front] == [1]  # cheaper and better
    assert "no trial improved on the first completed one" in result.notes


def test_the_study_command_reads_an_optuna_storage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = f"sqlite:///{tmp_path}/study.db"
    constructed_study(storage)
    out_json, out_png = tmp_path / "study.json", tmp_path / "study.png"
    assert cli_main(["study", "--storage", storage, "--json", str(out_json), "--plot", str(out_png)]) == 0
    printed = capsys.readouterr().out
    assert "study 'constructed' (minimize): 9 trials (7 complete, 1 fail, 1 pruned); 34.0 g CO2e" in printed
    data = json.loads(out_json.read_text())
    assert [t["number"] for t in data["pareto_front"]] == [1, 3, 5, 7]
    assert data["spent_without_improving_kg"] == pytest.approx(0.013, rel=1e-9)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out_png.stat().st_size > 10_000
    assert cli_main(["study", "--storage", storage, "--study", "nope"]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
    assert cli_main(["study"]) == 2


@pytest.mark.slow
def test_a_lightning_callback_inside_a_trial_is_reused_and_each_trial_is_one_mlflow_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Trial 0 trains with carbonstep's Lightning callback: 500 J of set-up, 8 steps of 100 J (the session
    measures them), 300 J of evaluation. The trial is 1600 J, not 2400: the trial's Tracker stops while the
    session measures. Trial 1 is plain code (700 J), trial 2 is pruned (200 J). One MLflow run per trial; trial 3
    (plain, 700 J) runs inside a study run of the user's, and its run is nested under it."""
    pl = pytest.importorskip("lightning.pytorch")
    from mlflow import MlflowClient

    from carbonstep.lightning import CarbonCallback as LightningCarbon

    from .lightning_model import loaders, make_module

    meter = Meter()

    class ChargePerStep(pl.Callback):
        def on_train_batch_end(self, *args: object) -> None:
            meter.joules += 100.0

    sessions = []

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("lr", 0.01, 0.1)
        if trial.number == 2:
            meter.joules += 200.0
            raise optuna.TrialPruned()
        if trial.number != 0:
            meter.joules += 700.0
            return 0.5
        meter.joules += 500.0
        inner = LightningCarbon(intensity=1000.0, readers=[meter.reader("same counter")], interval_s=0.05,
                                output_dir=tmp_path / "inner", summary=False)
        sessions.append(inner)
        trainer = pl.Trainer(max_epochs=1, logger=False, callbacks=[ChargePerStep(), inner], log_every_n_steps=2,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                             default_root_dir=tmp_path)
        trainer.fit(make_module(pl), loaders()[0])
        meter.joules += 300.0
        return 0.25

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    storage = f"sqlite:///{tmp_path}/study.db"
    carbon = CarbonCallback(intensity=1000.0, readers=[meter.reader()], interval_s=0.05, mlflow=True,
                            tracking_uri=uri, output_dir=tmp_path)
    study = optuna.create_study(study_name="with-lightning", storage=storage)
    study.optimize(carbon.track(objective), n_trials=3, callbacks=[carbon])

    attrs = [t.user_attrs for t in study.trials]
    assert [figures_in(a)["energy_kwh"] * 3.6e6 for a in attrs] == pytest.approx([1600.0, 700.0, 200.0], rel=1e-9)
    assert figures_in(attrs[0])["measured_by"] == ["TrainingSession", "tracker"]
    assert figures_in(attrs[1])["measured_by"] == ["tracker"]
    assert [Path(p).name for p in figures_in(attrs[0])["reports"]] == [sessions[0].session.report_path.name]
    assert sessions[0].report.energy_kwh * 3.6e6 == pytest.approx(800.0, rel=1e-9)  # the session's own share

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("with-lightning")  # named after the study, as Optuna's callback does
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"0", "1", "2"}
    for trial in study.trials:
        run = runs[str(trial.number)]
        assert trial.system_attrs["mlflow_run_id"] == run.info.run_id
        assert run.data.tags["number"] == str(trial.number) and run.data.tags["state"] == trial.state.name
        assert run.data.tags["direction"] == "MINIMIZE" and run.data.params["lr"] == str(trial.params["lr"])
        assert run.data.metrics["co2_kg"] == pytest.approx(figures_in(trial.user_attrs)["co2_kg"], rel=1e-9)
        assert run.info.status == "FINISHED"
    assert runs["0"].data.metrics["value"] == 0.25 and "value" not in runs["2"].data.metrics
    steps = sorted(m.step for m in client.get_metric_history(runs["0"].info.run_id, "co2_kg"))
    assert steps[0] < steps[-1] == 8  # the Lightning callback logged into the trial's run; the trial's total last
    assert runs["0"].data.params["carbonstep.intensity_g_per_kwh"] == "1000.0"

    import mlflow

    with mlflow.start_run(run_name="study run", experiment_id=experiment.experiment_id) as parent:
        study.optimize(carbon.track(objective), n_trials=1, callbacks=[carbon])
    nested = client.search_runs([experiment.experiment_id], "attributes.run_name = '3'")
    assert nested[0].data.tags["mlflow.parentRunId"] == parent.info.run_id

    assert cli_main(["study", "--mlflow-experiment", "with-lightning", "--tracking-uri", uri]) == 0
    from_mlflow = capsys.readouterr().out
    assert cli_main(["study", "--storage", storage]) == 0
    from_storage = capsys.readouterr().out
    assert "4 trials (3 complete, 1 pruned); 889 mg CO2e" in from_mlflow  # 3200 J at 1000 g/kWh
    assert from_mlflow.splitlines()[0].split(": ", 1)[1] == from_storage.splitlines()[0].split(": ", 1)[1]


@pytest.mark.slow
def test_the_example_stops_on_its_budget(tmp_path: Path) -> None:
    script = HERE.parent / "integrations" / "optuna" / "search.py"
    # about 0.14 mg CO2e a trial on this 2-CPU machine (estimated CPU): the budget stops the search after a few
    result = subprocess.run([sys.executable, str(script), "--budget-g", "0.0006", "--trials", "12"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stopped by the carbon budget after" in result.stdout and "(up to 12 per worker)" in result.stdout
    assert "spent without improving" in result.stdout and (tmp_path / "optuna-search.png").exists()
    study = optuna.load_study(study_name="carbonstep-optuna-example", storage=f"sqlite:///{tmp_path}/optuna-search.db")
    ran = [t for t in study.trials if not figures_in(t.user_attrs).get("skipped")]  # a refused trial is stored too
    assert 0 < len(ran) < 12
    assert all(figures_in(t.user_attrs)["measured_by"] == ["TrainingSession", "tracker"] for t in study.trials
               if not figures_in(t.user_attrs).get("skipped"))
