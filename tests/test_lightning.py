"""Real Lightning training with the callback, real MLflow sqlite stores."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
from lightning.pytorch.loggers import MLFlowLogger
from mlflow import MlflowClient

from carbonstep import Budget, ConfigError, RunReport
from carbonstep.lightning import CarbonCallback

from .lightning_model import StepEnergyReader, loaders, make_module

pytestmark = pytest.mark.slow
KWH = 3.6e6  # joules


def trainer_for(tmp_path: Path, callback, epochs: int, logger=None, **kw) -> pl.Trainer:
    return pl.Trainer(max_epochs=epochs, logger=logger or False, callbacks=[callback], log_every_n_steps=2,
                      enable_checkpointing=False, default_root_dir=tmp_path, enable_model_summary=False,
                      enable_progress_bar=False, **kw)


def steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_logs_into_the_mlflow_logger_run_at_validation_steps(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    logger = MLFlowLogger(experiment_name="lightning", tracking_uri=uri)
    callback = CarbonCallback(region="FR", interval_s=0.05)
    trainer = trainer_for(tmp_path, callback, 3, logger, val_check_interval=4)
    trainer.fit(make_module(pl), *loaders())
    client = MlflowClient(uri)
    run = client.get_run(logger.run_id)
    val_steps = steps(client, logger.run_id, "val_loss")
    assert len(val_steps) == 6  # twice per epoch
    assert set(val_steps) <= set(steps(client, logger.run_id, "co2_kg"))
    assert set(val_steps) <= set(steps(client, logger.run_id, "energy_kwh"))
    assert steps(client, logger.run_id, "epoch_co2_kg") == [8, 16, 24]
    for key in ("water_l", "energy_kwh_cpu", "energy_kwh_ram", "energy_kwh_gpu", "power_w", "epoch_energy_kwh"):
        assert client.get_metric_history(logger.run_id, key), key
    co2 = [m.value for m in sorted(client.get_metric_history(logger.run_id, "co2_kg"), key=lambda m: m.step)]
    assert co2 == sorted(co2) and co2[-1] > 0  # cumulative
    assert run.data.params["carbonstep.region"] == "FR" and run.data.params["carbonstep.intensity_year"] == "2024"
    assert run.data.params["carbonstep.methods"] == "cpu: estimate, ram: estimate"
    assert run.data.tags["carbonstep.version"] and run.data.tags["carbonstep.status"] == "completed"
    assert [a.path for a in client.list_artifacts(logger.run_id)] == [f"carbonstep-{callback.report.run_id}.json"]
    assert {"energy_kwh", "co2_kg", "energy_wh", "co2_g", "epoch_co2_kg"} <= set(trainer.callback_metrics)
    report = RunReport.load(tmp_path / "carbonstep" / f"carbonstep-{callback.report.run_id}.json")
    assert report.status == "completed" and len(report.epochs) == 3
    assert report.co2_kg == pytest.approx(co2[-1], rel=1e-9)


def step_budget_run(tmp_path: Path, budget: Budget, epochs: int = 5, **kw) -> tuple[pl.Trainer, CarbonCallback]:
    reader = StepEnergyReader(joules_per_step=100.0)  # 8 steps per epoch: 800 J per epoch
    callback = CarbonCallback(intensity=500.0, budget=budget, readers=[reader], mlflow=False, interval_s=0.05, **kw)
    trainer = trainer_for(tmp_path, callback, epochs)
    reader.trainer = trainer
    trainer.fit(make_module(pl), *loaders())
    return trainer, callback


def test_budget_spent_stops_at_the_epoch_boundary(tmp_path: Path) -> None:
    trainer, callback = step_budget_run(tmp_path, Budget(kwh=1500 / KWH, predict=False))
    assert trainer.current_epoch == 2  # stopped after epoch 1: 1600 J ≥ 1500 J
    decision = callback.report.budget
    assert decision["epoch"] == 1 and decision["spent"] == pytest.approx(1600 / KWH)
    assert "budget spent" in decision["reason"] and decision["limit"] == pytest.approx(1500 / KWH)


def test_budget_predicted_to_overrun_stops_before_it_happens(tmp_path: Path) -> None:
    trainer, callback = step_budget_run(tmp_path, Budget(co2_kg=1200 / KWH * 0.5, predict=True))
    assert trainer.current_epoch == 1  # after epoch 0: 800 J spent + 800 projected > 1200 J
    decision = callback.report.budget
    assert decision["quantity"] == "co2_kg" and decision["projected"] == pytest.approx(1600 / KWH * 0.5)
    assert "would be exceeded" in decision["reason"]


def test_resume_keeps_the_footprint_and_the_budget(tmp_path: Path) -> None:
    reader = StepEnergyReader(100.0)
    first = CarbonCallback(intensity=500.0, budget=Budget(kwh=3000 / KWH, predict=False), readers=[reader],
                           mlflow=False, interval_s=0.05)
    trainer = trainer_for(tmp_path, first, 2)
    reader.trainer = trainer
    trainer.fit(make_module(pl), *loaders())
    checkpoint = tmp_path / "two_epochs.ckpt"
    trainer.save_checkpoint(checkpoint)
    state = next(v for k, v in __import__("torch").load(checkpoint, weights_only=False)["callbacks"].items()
                 if "CarbonCallback" in k)
    assert state["offset"]["energy_kwh"] == pytest.approx(1600 / KWH) and state["budget"]["kwh"] > 0

    reader2 = StepEnergyReader(100.0)
    resumed = CarbonCallback(intensity=500.0, readers=[reader2], mlflow=False, interval_s=0.05)  # no budget given
    trainer2 = trainer_for(tmp_path, resumed, 6)
    reader2.trainer = trainer2
    trainer2.fit(make_module(pl), *loaders(), ckpt_path=checkpoint)
    decision = resumed.report.budget
    assert decision["epoch"] == 3 and decision["spent"] == pytest.approx(3200 / KWH)  # 1600 before + 1600 after
    assert resumed.report.extra["cumulative_with_resume"]["energy_kwh"] == pytest.approx(3200 / KWH)


def test_a_crash_still_writes_the_report_marked_wasted(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    logger = MLFlowLogger(experiment_name="crash", tracking_uri=uri)
    callback = CarbonCallback(region="DE", interval_s=0.05)
    trainer = trainer_for(tmp_path, callback, 3, logger)
    with pytest.raises(RuntimeError, match="diverged"):
        trainer.fit(make_module(pl, fail_at_step=10), *loaders())
    report = callback.report
    assert report.status == "failed" and report.wasted and report.energy_kwh > 0
    saved = json.loads((tmp_path / "carbonstep" / f"carbonstep-{report.run_id}.json").read_text())
    assert saved["wasted"] is True
    tags = MlflowClient(uri).get_run(logger.run_id).data.tags
    assert tags["carbonstep.wasted"] == "true" and tags["carbonstep.status"] == "failed"


def test_pytorch_lightning_namespace(tmp_path: Path) -> None:
    import pytorch_lightning as ptl

    from carbonstep.pytorch_lightning import CarbonCallback as PtlCallback

    callback = PtlCallback(region="SE", mlflow=False, interval_s=0.05)
    trainer = ptl.Trainer(max_epochs=2, logger=False, callbacks=[callback], enable_checkpointing=False,
                          default_root_dir=tmp_path, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(make_module(ptl), *loaders())
    assert callback.report.status == "completed" and len(callback.report.epochs) == 2
    assert "co2_kg" in trainer.callback_metrics


def test_bad_budget_is_an_error_at_construction() -> None:
    with pytest.raises(ConfigError, match="at least one limit"):
        Budget()
    with pytest.raises(ConfigError, match="co2_kg must be a finite number > 0"):
        Budget(co2_kg=0)
    with pytest.raises(ConfigError, match="kwh must be"):
        Budget(kwh=float("nan"))
    with pytest.raises(TypeError, match="carbonstep.Budget"):
        CarbonCallback(budget={"kwh": 1})
