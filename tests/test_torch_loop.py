"""carbonstep.torch.CarbonLoop on a real (tiny) PyTorch training loop: MLflow logging into a sqlite store, a
budget that stops training, the report; a failing loop ends its run as failed and raises on unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlflow")

from carbonstep import Budget  # noqa: E402
from carbonstep.testing import CounterReader  # noqa: E402
from carbonstep.torch import CarbonLoop  # noqa: E402

STEP_J = 1.8e4  #: the counter's joules per optimizer step: 0.005 kWh
BATCHES = 16  #: per epoch: 0.08 kWh an epoch


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(BATCHES * 32, 8, generator=g)
    return x, x[:, :2].sum(dim=1, keepdim=True)


def _train(carbon: CarbonLoop, steps: list[int], epochs: int) -> list[float]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.GELU(), torch.nn.Linear(32, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = _data()
    val_losses = []
    for _ in range(epochs):
        for xb, yb in zip(x.split(32), y.split(32)):
            loss = torch.nn.functional.mse_loss(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps[0] += 1
            carbon.step(xb, {"train_loss": loss.detach()})
        with torch.no_grad():
            val_losses.append(float(torch.nn.functional.mse_loss(model(x), y)))
        carbon.validation({"val_loss": val_losses[-1]})
        if carbon.epoch_end():
            break
    return val_losses


def test_a_plain_loop_logs_to_mlflow_and_its_budget_stops_it(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    steps = [0]
    reader = CounterReader("steps", "gpu", lambda: steps[0] * STEP_J)
    carbon = CarbonLoop(intensity=100.0, readers=[reader], interval_s=0.05, budget=Budget(kwh=0.2),
                        output_dir=tmp_path / "out", experiment="torch-loop", tracking_uri=uri, summary=False)
    with carbon:
        val_losses = _train(carbon, steps, epochs=10)
    # 0.08 kWh an epoch: after epoch 2 (0.16 kWh spent) the next epoch would overrun 0.2 kWh: two of ten run
    assert len(val_losses) == 2 and val_losses[1] < val_losses[0]  # it trained, and the budget stopped it
    assert carbon.decision is not None and carbon.decision.stop and carbon.decision.epoch == 1
    report = carbon.report
    assert report is not None and report.status == "completed"
    assert report.energy_kwh == pytest.approx(2 * BATCHES * STEP_J / 3.6e6, rel=0.01)
    assert report.co2_kg > 0
    assert [v["metrics"]["val_loss"] for v in report.extra["validation"]] == pytest.approx(val_losses)
    assert list((tmp_path / "out").glob("carbonstep-*.json"))

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("torch-loop")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert {"train_loss", "val_loss", "co2_kg", "energy_kwh", "epoch_co2_kg"} <= set(run.data.metrics)
    val = client.get_metric_history(run.info.run_id, "val_loss")
    co2 = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "co2_kg")}
    assert [m.step for m in val] == [BATCHES, 2 * BATCHES]  # at the optimizer step, where co2_kg is too
    assert all(m.step in co2 for m in val) and co2[BATCHES] < co2[2 * BATCHES]
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 2 * BATCHES // 10  # every 10th step
    assert run.data.tags["carbonstep.budget.stop"] in ("True", "true")


def test_a_failing_loop_ends_its_run_as_failed_and_raises(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    steps = [0]
    carbon = CarbonLoop(intensity=100.0, readers=[CounterReader("steps", "gpu", lambda: steps[0] * STEP_J)],
                        interval_s=0.05, output_dir=tmp_path / "out", experiment="torch-loop", tracking_uri=uri,
                        summary=False)
    with pytest.raises(RuntimeError, match="out of memory"), carbon:
        steps[0] += 3
        for _ in range(3):
            carbon.step(samples=32)
        raise RuntimeError("CUDA out of memory")
    assert carbon.report is not None and carbon.report.status == "failed"
    assert carbon.report.energy_kwh == pytest.approx(3 * STEP_J / 3.6e6, rel=0.01)
    (run,) = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("torch-loop").experiment_id])
    assert run.info.status == "FAILED"


def test_without_mlflow_it_still_measures(tmp_path: Path) -> None:
    with CarbonLoop(intensity=100.0, readers=[CounterReader("c", "cpu", lambda: 3.6e3)], mlflow=False,
                    output_dir=tmp_path, summary=False) as carbon:
        assert carbon.step(samples=4) is None  # not a logging step
    assert carbon.run_id is None and carbon.report is not None and carbon.report.status == "completed"


def test_importing_it_loads_no_torch_nor_mlflow() -> None:
    import json
    import subprocess
    import sys

    probe = ("import sys\nfrom carbonstep.torch import CarbonLoop\nimport json\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300)
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert not loaded & {"torch", "mlflow", "numpy", "pandas", "lightning", "keras", "transformers"}, loaded
