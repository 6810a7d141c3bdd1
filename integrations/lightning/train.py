"""Train a small model with PyTorch Lightning, measuring energy, CO2e and water into MLflow.

    python integrations/lightning/train.py [--epochs 4] [--region FR]

Runs on a CPU in well under a minute, logs into MLflow's default local store
(./mlflow.db), prints the footprint, and saves an MLflow UI view of val_loss against co2_kg
(``scripts/mlflow-ui carbonstep-lightning`` opens it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import lightning.pytorch as pl  # noqa: E402
import mlflow  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.loggers import MLFlowLogger  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from carbonstep import Budget  # noqa: E402
from carbonstep.lightning import CarbonCallback  # noqa: E402
from carbonstep.mlflow import save_chart_view  # noqa: E402

EXPERIMENT = "carbonstep-lightning"


class Regressor(pl.LightningModule):
    def __init__(self, width: int = 256) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(32, width), torch.nn.GELU(), torch.nn.Linear(width, width),
                                       torch.nn.GELU(), torch.nn.Linear(width, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def data(n: int, seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 32, generator=g)
    y = torch.sin(x[:, :4].sum(dim=1, keepdim=True)) + 0.1 * torch.randn(n, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=64, shuffle=seed == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--region", default="FR")
    parser.add_argument("--co2-budget-kg", type=float, default=None)
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).resolve().parent / "out",
                        help="reports, ledgers and logs (default: out/ beside this script, ignored by git)")
    args = parser.parse_args()
    uri = mlflow.get_tracking_uri()  # MLflow's default local store: sqlite:///<cwd>/mlflow.db
    logger = MLFlowLogger(experiment_name=EXPERIMENT, tracking_uri=uri)
    budget = Budget(co2_kg=args.co2_budget_kg) if args.co2_budget_kg else None
    callback = CarbonCallback(region=args.region, budget=budget, interval_s=0.2)
    trainer = pl.Trainer(max_epochs=args.epochs, logger=logger, callbacks=[callback], log_every_n_steps=10,
                         val_check_interval=0.5, enable_checkpointing=False, enable_model_summary=False,
                         default_root_dir=args.output_dir)
    trainer.fit(Regressor(), data(8192, 0), data(1024, 1))
    print(f"\nMLflow run {logger.run_id} in {uri}")
    save_chart_view(EXPERIMENT, "val_loss", tracking_uri=uri)
    print("val_loss against co2_kg, saved as a view; open it with (from the repository root):")
    print(f"  scripts/mlflow-ui {EXPERIMENT} {uri}")


if __name__ == "__main__":
    main()
