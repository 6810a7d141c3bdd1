"""Real transformers Trainer runs on a tiny config-built model, real MLflow stores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from transformers import Trainer, TrainingArguments

from carbonstep import Budget, RunReport
from carbonstep.callbacks.transformers import FOOTPRINT_FILE, CarbonCallback

from .hf_model import GlobalStepEnergy, Synthetic, tiny_bert

pytestmark = pytest.mark.slow
KWH = 3.6e6
HERE = Path(__file__).parent


def arguments(tmp_path: Path, report_to: str, epochs: int = 3) -> TrainingArguments:
    return TrainingArguments(output_dir=str(tmp_path / "model"), num_train_epochs=epochs, per_device_train_batch_size=8,
                             logging_steps=2, eval_strategy="epoch", save_strategy="no", report_to=report_to,
                             use_cpu=True, disable_tqdm=True, learning_rate=1e-3)


def test_logs_into_hf_mlflow_run_at_eval_steps_and_into_log_history(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "hf")
    trainer = Trainer(model=tiny_bert(), args=arguments(tmp_path, "mlflow"), train_dataset=Synthetic(),
                      eval_dataset=Synthetic(32, seed=1))
    callback = CarbonCallback.install(trainer, region="FR", interval_s=0.05)
    trainer.train()
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("hf").experiment_id])
    assert len(runs) == 1  # HF's run, not a second one of ours
    run_id = runs[0].info.run_id
    eval_steps = {m.step for m in client.get_metric_history(run_id, "eval_loss")}
    assert len(eval_steps) == 3 and eval_steps <= {m.step for m in client.get_metric_history(run_id, "co2_kg")}
    assert eval_steps <= {m.step for m in client.get_metric_history(run_id, "energy_kwh")}
    assert client.get_run(run_id).data.params["carbonstep.region"] == "FR"
    assert any("co2_kg" in entry and "loss" in entry for entry in trainer.state.log_history)
    assert (tmp_path / "model" / FOOTPRINT_FILE).exists()
    trainer.create_model_card(model_name="tiny")
    card = (tmp_path / "model" / "README.md").read_text()
    assert "co2_eq_emissions:" in card and "geographical_location: France" in card
    assert f"emissions: {callback.report.co2_eq_emissions()['emissions']}" in card


def test_report_to_none_and_budget_stop(tmp_path: Path) -> None:
    reader = GlobalStepEnergy(100.0)  # 8 steps per epoch: 800 J
    trainer = Trainer(model=tiny_bert(), args=arguments(tmp_path, "none", epochs=5), train_dataset=Synthetic(),
                      eval_dataset=Synthetic(32, seed=1))
    reader.trainer = trainer
    callback = CarbonCallback(intensity=300.0, budget=Budget(kwh=1200 / KWH), readers=[reader], mlflow=False,
                              interval_s=0.05)
    trainer.add_callback(callback)
    trainer.train()
    assert trainer.state.global_step == 8  # stopped after epoch 0: 800 J + 800 J projected > 1200 J
    report = callback.report
    assert report.budget["epoch"] == 0 and "would be exceeded" in report.budget["reason"]
    assert RunReport.load(tmp_path / "model" / FOOTPRINT_FILE).budget == report.budget


def test_crash_writes_a_wasted_report_at_exit(tmp_path: Path) -> None:
    script = f"""
import sys; sys.path.insert(0, {str(HERE)!r})
from transformers import Trainer, TrainingArguments, TrainerCallback
from carbonstep.transformers import CarbonCallback
from hf_model import Synthetic, tiny_bert
class Boom(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == 3: raise RuntimeError("diverged")
args = TrainingArguments(output_dir={str(tmp_path / 'model')!r}, num_train_epochs=2, report_to="none", use_cpu=True,
                         save_strategy="no", disable_tqdm=True, per_device_train_batch_size=8)
Trainer(model=tiny_bert(), args=args, train_dataset=Synthetic(),
        callbacks=[CarbonCallback(region="SE", mlflow=False, interval_s=0.05), Boom()]).train()
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert result.returncode != 0 and "diverged" in result.stderr
    reports = list((tmp_path / "model").glob("carbonstep-*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert report["status"] == "failed" and report["wasted"] is True and report["energy_kwh"] > 0
