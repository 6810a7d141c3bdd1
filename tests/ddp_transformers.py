"""Two processes under torchrun (gloo, CPU) with the HF Trainer and the callback, for test_transformers.py.

As ddp_lightning.py: device counters of 100 and 200 J per step, a node-level counter of
50 J per step that only the node's leader counts, a 2000 J budget spent after two epochs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from hf_model import GlobalStepEnergy, Synthetic, tiny_bert  # noqa: E402
from transformers import Trainer, TrainingArguments  # noqa: E402

from carbonstep import Budget  # noqa: E402
from carbonstep.transformers import CarbonCallback  # noqa: E402

KWH = 3.6e6


def main() -> None:
    out, uri = Path(sys.argv[1]), sys.argv[2]
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["MLFLOW_EXPERIMENT_NAME"] = "hf-ddp"
    rank = int(os.environ.get("RANK", "0"))
    reader = GlobalStepEnergy(100.0 * (rank + 1))  # 4 steps per epoch per rank: 400 J vs 800 J
    node = GlobalStepEnergy(50.0, scope="node")
    args = TrainingArguments(output_dir=str(out / "model"), num_train_epochs=6, per_device_train_batch_size=8,
                             logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
                             ddp_backend="gloo")
    trainer = Trainer(model=tiny_bert(), args=args, train_dataset=Synthetic())
    reader.trainer = node.trainer = trainer
    callback = CarbonCallback(intensity=300.0, budget=Budget(kwh=2000 / KWH, predict=False), readers=[reader, node],
                              interval_s=0.05, output_dir=out / "reports")
    trainer.add_callback(callback)
    trainer.train()
    (out / f"rank{rank}.json").write_text(json.dumps(
        {"rank": rank, "global_step": trainer.state.global_step, "budget": callback.report.budget,
         "logged": callback.session.sink is not None, "report": str(callback.session.report_path),
         "rank_report": callback.session.rank_report.to_dict()}))


if __name__ == "__main__":
    main()
