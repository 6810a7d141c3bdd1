"""A tiny config-built BERT classifier and synthetic data for the transformers tests (no hub access)."""

from __future__ import annotations

import torch
from transformers import BertConfig, BertForSequenceClassification

from carbonstep.testing import CounterReader


class Synthetic(torch.utils.data.Dataset):
    def __init__(self, n: int = 64, length: int = 16, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(5, 100, (n, length), generator=g)
        self.labels = (self.ids[:, 0] > 50).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones_like(self.ids[i]), "labels": self.labels[i]}


def tiny_bert() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=128, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(config)


class GlobalStepEnergy(CounterReader):
    """A counter charging ``joules_per_step`` per optimizer step of an HF ``trainer`` (set after creation)."""

    def __init__(self, joules_per_step: float, scope: str = "process") -> None:
        super().__init__("node-energy" if scope == "node" else "step-energy", "cpu" if scope == "node" else "gpu",
                         lambda: self.trainer.state.global_step * joules_per_step if self.trainer else 0, scope)
        self.trainer = None
