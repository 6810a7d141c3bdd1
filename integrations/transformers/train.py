"""Fine-tune a tiny BERT (built from a config: no hub access) on synthetic data with the HF Trainer,
measuring energy, CO2e and water into MLflow's default local store, and writing the model card.

    python integrations/transformers/train.py [--epochs 3] [--region FR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import mlflow  # noqa: E402
import torch  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments  # noqa: E402

from carbonstep.mlflow import save_chart_view  # noqa: E402
from carbonstep.transformers import CarbonCallback  # noqa: E402


class Synthetic(torch.utils.data.Dataset):
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(5, 1000, (n, 32), generator=g)
        self.labels = (self.ids[:, :4].float().mean(dim=1) > 500).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones_like(self.ids[i]), "labels": self.labels[i]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--region", default="FR")
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).resolve().parent / "out",
                        help="model card, reports, Trainer output (default: out/ beside this script, ignored by git)")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", "carbonstep-transformers")
    config = BertConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=64, num_labels=2)
    training = TrainingArguments(output_dir=str(args.output_dir / "hf-tiny-bert"), num_train_epochs=args.epochs,
                                 per_device_train_batch_size=32,
                                 logging_steps=10, eval_strategy="epoch", save_strategy="no", report_to="mlflow",
                                 use_cpu=True, disable_tqdm=True, learning_rate=5e-4)
    trainer = Trainer(model=BertForSequenceClassification(config), args=training, train_dataset=Synthetic(2048, 0),
                      eval_dataset=Synthetic(256, 1))
    CarbonCallback.install(trainer, region=args.region, interval_s=0.2, output_dir=args.output_dir / "carbonstep")
    trainer.train()
    trainer.create_model_card(model_name="hf-tiny-bert")
    print(f"\nModel card with co2_eq_emissions: {args.output_dir / 'hf-tiny-bert'}/README.md")
    uri, experiment = mlflow.get_tracking_uri(), os.environ["MLFLOW_EXPERIMENT_NAME"]
    save_chart_view(experiment, "eval_loss", tracking_uri=uri)
    print("eval_loss against co2_kg, saved as a view; open it with (from the repository root):")
    print(f"  scripts/mlflow-ui {experiment} {uri}")


if __name__ == "__main__":
    main()
