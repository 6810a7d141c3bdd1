"""A 2-process CPU DDP (gloo) Lightning run with the callback, for test_ddp.py.

    python tests/ddp_lightning.py OUT_DIR TRACKING_URI

Each rank has a device counter (rank 0: 100 J per step, rank 1: 200 J) and a node-level
counter (50 J per step) that only the node's leader may count: 1400 J per 4-step epoch for
the job. The 2000 J budget is spent after the second epoch on the job's total (never on
either rank's own), so both ranks stop there.
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
    node = StepEnergyReader(50.0, scope="node")  # a node-level counter (RAPL-like): only rank 0 may count it
    callback = CarbonCallback(intensity=500.0, budget=Budget(kwh=2000 / KWH, predict=False), readers=[reader, node],
                              interval_s=0.05, output_dir=out / "reports")
    trainer = pl.Trainer(max_epochs=6, accelerator="cpu", devices=2, strategy="ddp", callbacks=[callback],
                         logger=MLFlowLogger(experiment_name="ddp", tracking_uri=uri), log_every_n_steps=1,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=out)
    reader.trainer = node.trainer = trainer
    trainer.fit(make_module(pl), *loaders())
    report = callback.report
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(
        {"rank": trainer.global_rank, "epochs_run": trainer.current_epoch, "budget": report.budget,
         "logged": callback.session.sink is not None, "report": str(callback.session.report_path),
         "rank_report": callback.session.rank_report.to_dict()}))


if __name__ == "__main__":
    main()
