"""A tiny Lightning regression model on synthetic data, for the tests and the DDP script."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from carbonstep.testing import CounterReader


def make_module(pl, width: int = 16, fail_at_step: int | None = None):
    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(8, width), torch.nn.GELU(), torch.nn.Linear(width, 1))

        def training_step(self, batch, batch_idx):
            if fail_at_step is not None and self.global_step >= fail_at_step:
                raise RuntimeError("loss diverged")
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    return Tiny()


def loaders(n: int = 256, batch: int = 32) -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g)
    y = x.sum(dim=1, keepdim=True) * 0.3
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=batch), DataLoader(data, batch_size=batch)


class StepEnergyReader(CounterReader):
    """A GPU-like counter charging ``joules_per_step`` per optimizer step of ``trainer`` (set after creation)."""

    def __init__(self, joules_per_step: float, scope: str = "process") -> None:
        super().__init__("node-energy" if scope == "node" else "step-energy", "cpu" if scope == "node" else "gpu",
                         lambda: self.trainer.global_step * joules_per_step if self.trainer else 0, scope)
        self.trainer = None
