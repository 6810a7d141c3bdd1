"""A tiny real Lightning run whose validation waits on a slow device, for a signal at a random moment.

    python tests/fault_lightning.py OUT_DIR

10 J per optimizer step (a counter read in 0.3 s); OUT_DIR/ready appears after the 5th step and
OUT_DIR/progress holds the steps taken.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import lightning.pytorch as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from carbonstep.lightning import CarbonCallback  # noqa: E402
from tests.lightning_model import StepEnergyReader, loaders, make_module  # noqa: E402


class SlowStepEnergy(StepEnergyReader):
    """A device whose every read takes 0.3 s."""

    def read(self) -> float:
        time.sleep(0.3)
        return super().read()


class Progress(pl.Callback):
    """Writes the steps taken; says when the test may signal."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.fd = os.open(out / "progress", os.O_WRONLY | os.O_CREAT, 0o644)

    def on_train_batch_end(self, trainer, *args) -> None:
        os.pwrite(self.fd, f"{trainer.global_step:>12}".encode(), 0)
        if trainer.global_step == 5:
            (self.out / "ready").write_text("training")
        time.sleep(0.01)


def main() -> None:
    out = Path(sys.argv[1])
    reader = SlowStepEnergy(10.0)
    carbon = CarbonCallback(region="FR", mlflow=False, output_dir=out, readers=[reader], interval_s=0.05, summary=False)
    trainer = pl.Trainer(max_epochs=1000, logger=False, callbacks=[carbon, Progress(out)], log_every_n_steps=1,
                         val_check_interval=3, enable_checkpointing=False, default_root_dir=out,
                         enable_progress_bar=False, enable_model_summary=False)
    reader.trainer = trainer
    trainer.fit(make_module(pl), *loaders())


if __name__ == "__main__":
    main()
