"""Real Keras 3 training and inference (torch backend) with the callback, real MLflow stores."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from carbonstep import Budget  # noqa: E402
from carbonstep.keras import CarbonCallback  # noqa: E402
from carbonstep.testing import CounterReader  # noqa: E402

pytestmark = pytest.mark.slow
KWH = 3.6e6


def data(n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype("float32")
    return x, (x.sum(axis=1, keepdims=True) * 0.3).astype("float32")


def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="gelu"), keras.layers.Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    return m


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    yield uri
    mlflow.keras.autolog(disable=True)
    while mlflow.active_run():
        mlflow.end_run()


def history_steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return [m.step for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_history_progress_and_a_run_of_its_own(tmp_path: Path, store: str) -> None:
    x, y = data()
    callback = CarbonCallback(region="FR", interval_s=0.05, output_dir=tmp_path / "out")
    history = model().fit(x, y, validation_split=0.25, epochs=3, batch_size=32, callbacks=[callback], verbose=0)
    for key in ("energy_kwh", "co2_kg", "water_l", "epoch_co2_kg"):
        assert len(history.history[key]) == 3, key
    assert history.history["co2_kg"] == sorted(history.history["co2_kg"])
    client = MlflowClient(store)
    run_id = callback.session.sink.run_id
    assert history_steps(client, run_id, "val_loss") == [0, 1, 2]
    assert history_steps(client, run_id, "co2_kg") == [0, 1, 2, 2]  # epochs, then the final total at the end
    assert client.get_run(run_id).info.status == "FINISHED"
    assert callback.report.status == "completed" and len(callback.report.epochs) == 3


def test_alongside_mlflow_autolog_nothing_is_logged_twice(tmp_path: Path, store: str) -> None:
    mlflow.keras.autolog(log_models=False)
    x, y = data()
    callback = CarbonCallback(region="DE", interval_s=0.05, output_dir=tmp_path / "out")
    model().fit(x, y, validation_split=0.25, epochs=3, batch_size=32, callbacks=[callback], verbose=0)
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("Default").experiment_id])
    assert len(runs) == 1  # autolog's run
    run_id = runs[0].info.run_id
    val_steps = history_steps(client, run_id, "val_loss")
    co2_steps = history_steps(client, run_id, "co2_kg")
    assert val_steps == [0, 1, 2] and set(val_steps) <= set(co2_steps)
    assert co2_steps.count(0) == 1 and co2_steps.count(1) == 1  # one point per epoch, not two
    assert client.get_run(run_id).data.params["carbonstep.region"] == "DE"


def test_budget_stops_training(tmp_path: Path) -> None:
    holder: list = []
    callback = CarbonCallback(intensity=400.0, budget=Budget(kwh=1000 / KWH, predict=False), mlflow=False,
                              readers=[CounterReader("batches", "gpu", lambda: holder[0]._global_step * 100.0
                                                     if holder else 0.0)], interval_s=0.05, output_dir=tmp_path)
    holder.append(callback)
    x, y = data()
    history = model().fit(x, y, epochs=10, batch_size=32, callbacks=[callback], verbose=0)
    assert len(history.history["loss"]) == 2  # 800 J after epoch 0, 1600 J ≥ 1000 J after epoch 1
    assert callback.report.budget["epoch"] == 1


def test_inference_energy_per_batch_and_per_sample(tmp_path: Path, store: str) -> None:
    callback = CarbonCallback(region="SE", interval_s=0.02, output_dir=tmp_path / "out")
    m = model()
    x, _ = data(1000)
    m.predict(x, batch_size=100, callbacks=[callback], verbose=0)
    m.evaluate(x, x[:, :1], batch_size=250, callbacks=[callback], verbose=0)
    predict, evaluate = callback.inference_reports
    info = predict.extra["inference"]
    assert (info["mode"], info["inference_batches"], info["inference_samples"]) == ("predict", 10, 1000)
    assert info["inference_joules_per_sample"] == pytest.approx(predict.energy_kwh * KWH / 1000)
    assert info["inference_joules_per_batch"] == pytest.approx(predict.energy_kwh * KWH / 10)
    assert evaluate.extra["inference"]["inference_batches"] == 4
    assert len(list((tmp_path / "out").glob("carbonstep-*-predict.json"))) == 1
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("Default").experiment_id])
    values = [r.data.metrics.get("inference_joules_per_sample") for r in runs]
    assert pytest.approx(info["inference_joules_per_sample"]) in values
