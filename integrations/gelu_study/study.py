"""The eco2AI GELU vs 4-bit GELU study, in miniature: same model and data trained twice on CPU with the
Lightning callback into one MLflow experiment, then ``carbonstep compare`` on the two runs.

    python integrations/gelu_study/study.py [--epochs 6] [--region FR] [--out gelu_study]

Writes gelu_study/comparison.png (the paper's Figure 5 a–c) and comparison.json, and logs both to
the runs in MLflow's default local store (./mlflow.db).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).parent))

import lightning.pytorch as pl  # noqa: E402
import mlflow  # noqa: E402
import torch  # noqa: E402
from gelu4bit import Gelu4Bit  # noqa: E402
from lightning.pytorch.loggers import MLFlowLogger  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from carbonstep.cli import main as carbonstep_cli  # noqa: E402
from carbonstep.lightning import CarbonCallback  # noqa: E402

EXPERIMENT = "carbonstep-gelu-study"


class Mlp(pl.LightningModule):
    def __init__(self, activation: str, width: int = 512, depth: int = 4) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = [torch.nn.Linear(64, width)]
        for _ in range(depth - 1):
            layers += [Gelu4Bit() if activation == "gelu-4bit" else torch.nn.GELU(), torch.nn.Linear(width, width)]
        layers += [torch.nn.GELU(), torch.nn.Linear(width, 1)]
        self.net = torch.nn.Sequential(*layers)

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


def data(n: int, seed: int, shuffle: bool) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 64, generator=g)
    y = torch.sin(x[:, :4].sum(dim=1, keepdim=True)) + 0.05 * torch.randn(n, 1, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=128, shuffle=shuffle, generator=torch.Generator().manual_seed(1))


def train(activation: str, epochs: int, region: str, uri: str, out: Path) -> str:
    torch.manual_seed(0)
    logger = MLFlowLogger(experiment_name=EXPERIMENT, run_name=activation, tracking_uri=uri)
    callback = CarbonCallback(region=region, interval_s=0.2, output_dir=out / activation, summary=False)
    trainer = pl.Trainer(max_epochs=epochs, logger=logger, callbacks=[callback], log_every_n_steps=10,
                         val_check_interval=0.25, enable_checkpointing=False, enable_model_summary=False,
                         enable_progress_bar=False, default_root_dir=out)
    trainer.fit(Mlp(activation), data(16384, 0, True), data(2048, 1, False))
    print(f"trained {activation}: {callback.report.energy_kwh * 3.6e6:.1f} J, run {logger.run_id}")
    return logger.run_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--region", default="FR")
    parser.add_argument("--out", type=Path, default=Path("gelu_study"))
    args = parser.parse_args()
    uri = mlflow.get_tracking_uri()
    runs = [train(activation, args.epochs, args.region, uri, args.out) for activation in ("gelu", "gelu-4bit")]
    code = carbonstep_cli(["compare", *runs, "--metric", "val_loss", "--tracking-uri", uri, "--plot",
                           str(args.out / "comparison.png"), "--json", str(args.out / "comparison.json"),
                           "--log-artifact"])
    print(f"\nMLflow store: {uri}\nOpen the UI: mlflow ui --backend-store-uri {uri}  (experiment '{EXPERIMENT}')")
    print("Chart val_loss against co2_kg: select both runs → Chart view → a val_loss line chart → edit it, "
          "x-axis 'Metric' → co2_kg.")
    return code


if __name__ == "__main__":
    sys.exit(main())
