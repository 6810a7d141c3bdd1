"""Train a small regressor with a plain PyTorch loop (no framework), measuring energy, CO2e and water into
MLflow with carbonstep.torch.CarbonLoop, under a carbon budget.

    python integrations/torch/train.py [--epochs 4] [--region FR] [--co2-budget-kg 0.001]

Logs into MLflow's default local store (./mlflow.db), prints the footprint, and saves an MLflow UI view of
val_loss against co2_kg (``scripts/mlflow-ui carbonstep-torch`` opens it).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402
import torch  # noqa: E402

from carbonstep import Budget  # noqa: E402
from carbonstep.mlflow import save_chart_view  # noqa: E402
from carbonstep.report.formatting import format_mass  # noqa: E402
from carbonstep.torch import CarbonLoop  # noqa: E402

EXPERIMENT = "carbonstep-torch"


def data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 32, generator=g)
    return x, torch.sin(x[:, :4].sum(dim=1, keepdim=True)) + 0.1 * torch.randn(n, 1, generator=g)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--region", default="FR")
    parser.add_argument("--co2-budget-kg", type=float, default=0.001)
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).resolve().parent / "out",
                        help="reports and ledgers (default: out/ beside this script, ignored by git)")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 256), torch.nn.GELU(), torch.nn.Linear(256, 256),
                                torch.nn.GELU(), torch.nn.Linear(256, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    (x, y), (x_val, y_val) = data(8192, 0), data(1024, 1)
    uri = mlflow.get_tracking_uri()  # MLflow's default local store: sqlite:///<cwd>/mlflow.db
    with CarbonLoop(region=args.region, budget=Budget(co2_kg=args.co2_budget_kg), output_dir=args.output_dir,
                    experiment=EXPERIMENT, tracking_uri=uri, interval_s=0.2) as carbon:
        for epoch in range(args.epochs):
            for batch in torch.randperm(len(x)).split(64):
                loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                carbon.step(x[batch], {"train_loss": loss.detach()})
            with torch.no_grad():
                val_loss = float(torch.nn.functional.mse_loss(model(x_val), y_val))
            carbon.validation({"val_loss": val_loss})
            print(f"epoch {epoch}: val_loss {val_loss:.4f}")
            if carbon.epoch_end():
                print(f"stopped by the budget: {carbon.decision.reason if carbon.decision else ''}")
                break
    report = carbon.report
    if report is not None:
        print(f"\nCO2e of the run: {format_mass(report.co2_kg)}")
    print(f"MLflow run {carbon.run_id} in {uri}")
    save_chart_view(EXPERIMENT, "val_loss", tracking_uri=uri)
    print("val_loss against co2_kg, saved as a view; open it with (from the repository root):")
    print(f"  scripts/mlflow-ui {EXPERIMENT} {uri}")


if __name__ == "__main__":
    main()
