"""A 2-process CPU DDP (gloo) Lightning run with the callback, for test_ddp.py.

    python tests/ddp_lightning.py OUT_DIR TRACKING_URI

Rank 1 charges twice the energy per step of rank 0, so only rank 1's own budget check
would stop; the decision must be reduced so that both ranks stop after the same epoch.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import lightning.pytorch as pl  # noqa: E402
from lightning.pytorch.loggers import MLFlowLogger  # noqa: E402
from lightning_model import StepEnergyReader, loaders, make_module  # noqa: E402

from carbonstep import Budget  # noqa: E402
from carbonstep.lightning import CarbonCallback  # noqa: E402

KWH = 3.6e6


def main() -> None:
    out, uri = Path(sys.argv[1]), sys.argv[2]
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    reader = StepEnergyReader(100.0 * (rank + 1))  # 4 steps per epoch per rank: 400 J vs 800 J
    callback = CarbonCallback(intensity=500.0, budget=Budget(kwh=1000 / KWH, predict=False), readers=[reader],
                              interval_s=0.05, output_dir=out / "reports")
    trainer = pl.Trainer(max_epochs=6, accelerator="cpu", devices=2, strategy="ddp", callbacks=[callback],
                         logger=MLFlowLogger(experiment_name="ddp", tracking_uri=uri), log_every_n_steps=1,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=out)
    reader.trainer = trainer
    trainer.fit(make_module(pl), *loaders())
    report = callback.report
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(
        {"rank": trainer.global_rank, "epochs_run": trainer.current_epoch, "budget": report.budget,
         "logged": callback.session.sink is not None}))


if __name__ == "__main__":
    main()
