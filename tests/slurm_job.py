"""One task of a 2-task ``srun`` job: tiny gloo DDP Lightning training with the carbonstep callback (test_slurm.py).

    srun -n2 --ntasks-per-node=2 python tests/slurm_job.py OUT_DIR TRACKING_URI

Lightning reads its ranks from Slurm's variables (SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS). Each task has a device
counter (rank 0: 100 J per step, rank 1: 200 J) and a node-level counter (50 J per step) that only the node's leader
counts: 2 epochs of 4 steps make 8 × (100 + 50) + 8 × 200 = 2800 J for the job.
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

from carbonstep.lightning import CarbonCallback  # noqa: E402


def main() -> None:
    out, uri = Path(sys.argv[1]), sys.argv[2]
    rank = int(os.environ["SLURM_PROCID"])
    reader = StepEnergyReader(100.0 * (rank + 1))
    node = StepEnergyReader(50.0, scope="node")
    callback = CarbonCallback(intensity=500.0, readers=[reader, node], interval_s=0.05, output_dir=out / "reports")
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=2, num_nodes=1, strategy="ddp", callbacks=[callback],
                         logger=MLFlowLogger(experiment_name="slurm", tracking_uri=uri), log_every_n_steps=1,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=out)
    reader.trainer = node.trainer = trainer
    trainer.fit(make_module(pl), *loaders())
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(
        {"rank": trainer.global_rank, "world_size": trainer.world_size, "report": str(callback.session.report_path),
         "rank_report": callback.session.rank_report.to_dict()}))


if __name__ == "__main__":
    main()
