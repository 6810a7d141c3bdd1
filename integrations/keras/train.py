"""Train a small Keras 3 model (torch backend) with energy, CO2e and water in History and MLflow,
then measure the energy of inference per sample.

    KERAS_BACKEND=torch python integrations/keras/train.py [--epochs 5] [--region FR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", "carbonstep-keras")  # the callback's own MLflow run goes there

import keras  # noqa: E402
import numpy as np  # noqa: E402

from carbonstep import Budget  # noqa: E402
from carbonstep.keras import CarbonCallback  # noqa: E402
from carbonstep.mlflow import save_chart_view  # noqa: E402
from carbonstep.report.formatting import format_joules, format_mass  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--region", default="FR")
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).resolve().parent / "out",
                        help="reports, ledgers and logs (default: out/ beside this script, ignored by git)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8192, 32)).astype("float32")
    y = np.sin(x[:, :4].sum(axis=1, keepdims=True)).astype("float32")
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(256, activation="gelu"),
                              keras.layers.Dense(256, activation="gelu"), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    callback = CarbonCallback(region=args.region, budget=Budget(co2_kg=0.001), interval_s=0.2,
                              output_dir=args.output_dir)
    history = model.fit(x, y, validation_split=0.2, epochs=args.epochs, batch_size=64, callbacks=[callback], verbose=2)
    print("CO2e spent so far, at each epoch's end (History 'co2_kg', cumulative):",
          ", ".join(format_mass(v) for v in history.history["co2_kg"]))
    model.predict(x, batch_size=256, callbacks=[callback], verbose=0)
    info = callback.inference_reports[-1].extra["inference"]
    print(f"inference: {format_joules(info['inference_joules_per_sample'])} per sample, "
          f"{format_joules(info['inference_joules_per_batch'])} per batch of 256")
    if callback.session.sink is not None:  # MLflow installed: the run went to MLFLOW_EXPERIMENT_NAME
        uri, experiment = callback.session.sink.tracking_uri, os.environ["MLFLOW_EXPERIMENT_NAME"]
        save_chart_view(experiment, "val_loss", tracking_uri=uri)
        print("val_loss against co2_kg, saved as a view; open it with (from the repository root):")
        print(f"  scripts/mlflow-ui {experiment} {uri}")


if __name__ == "__main__":
    main()
