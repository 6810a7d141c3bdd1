"""Two-process DDP training on a CPU (gloo) with Lightning: one job total, nothing counted twice.

    python integrations/ddp/train.py [--epochs 2] [--devices 2] [--region DE]

Each rank measures its own process (rank 1, a child of rank 0 under Lightning's launcher, is
left out of rank 0's tree); the totals logged to MLflow are summed over ranks with all_reduce;
rank 0 writes the job report beside each rank's own, and prints the per-rank table. The same
job total comes from the rank reports with `carbonstep merge`.
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

from carbonstep.lightning import CarbonCallback  # noqa: E402
from carbonstep.report.formatting import format_energy, format_mass  # noqa: E402


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(32, 128), torch.nn.ReLU(), torch.nn.Linear(128, 4))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def data(n: int, seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 32, generator=g)
    return DataLoader(TensorDataset(x, (x[:, :4].argmax(dim=1))), batch_size=64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--region", default="DE")
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).resolve().parent / "out",
                        help="reports, ledgers and logs (default: out/ beside this script, ignored by git)")
    args = parser.parse_args()
    callback = CarbonCallback(region=args.region, interval_s=0.2, output_dir=args.output_dir / "carbonstep-ddp")
    logger = MLFlowLogger(experiment_name="carbonstep-ddp", tracking_uri=mlflow.get_tracking_uri())
    trainer = pl.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=args.devices, strategy="ddp",
                         logger=logger, callbacks=[callback], log_every_n_steps=5, enable_checkpointing=False,
                         enable_model_summary=False, enable_progress_bar=False,
                         default_root_dir=args.output_dir)
    trainer.fit(Classifier(), data(4096, 0), data(512, 1))
    if trainer.is_global_zero:
        job = callback.report
        print(f"\njob total {format_energy(job.energy_kwh)}, {format_mass(job.co2_kg)} CO2e "
              f"= the sum of {len(job.extra['parts'])} ranks:")
        for part in job.extra["parts"]:
            print(f"  {part['label']}: {format_energy(part['energy_kwh'])} on {part['host']}")
        print(f"job report: {callback.session.report_path}")
        print("the same total from the rank reports: "
              f"carbonstep merge {args.output_dir}/carbonstep-ddp/carbonstep-*-rank*.json")


if __name__ == "__main__":
    main()
