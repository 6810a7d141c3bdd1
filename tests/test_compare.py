"""carbonstep compare on real MLflow stores and report files, against hand-computed values."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from carbonstep import ConfigError, compare
from carbonstep.cli import main
from carbonstep.testing import ScriptedReader
from carbonstep.training.options import TrainingOptions
from carbonstep.training.session import TrainingSession
from tests.compare_stores import new_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integrations" / "gelu_study"))


def log_run(client: MlflowClient, experiment_id: str, name: str, metric: dict[int, float], co2: dict[int, float],
            key: str = "val_loss", totals: tuple[float, float, float] = (1.0, 0.35, 2.0)) -> str:
    run_id = client.create_run(experiment_id, run_name=name).info.run_id
    points = [Metric(key, v, 0, s) for s, v in metric.items()] + [Metric("co2_kg", v, 0, s) for s, v in co2.items()]
    energy, total_co2, water = totals
    client.log_batch(run_id, metrics=points + [Metric("energy_kwh", energy, 1, 99), Metric("co2_kg", total_co2, 1, 99),
                                               Metric("water_l", water, 1, 99)])  # the curves and totals: one write
    client.set_terminated(run_id)
    return run_id


@pytest.fixture
def store(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, MlflowClient, str]:
    """A new, empty store per test (a copy of the session's migrated one: tests/compare_stores.py)."""
    uri, client = new_store(tmp_path, tmp_path_factory)
    return uri, client, client.create_experiment("study")


def test_table_against_hand_computed_values(store) -> None:
    uri, client, exp = store
    a = log_run(client, exp, "gelu", {10: 3.0, 20: 2.0, 30: 1.5}, {10: 0.1, 20: 0.2, 30: 0.3})
    log_run(client, exp, "gelu-4bit", {10: 2.8, 20: 1.9, 30: 1.6}, {10: 0.09, 20: 0.18, 30: 0.27},
            totals=(0.9, 0.3, 1.8))
    result = compare([a, "gelu-4bit"], tracking_uri=uri, experiment="study")
    first, second = result.runs
    assert (first.final, first.best, first.co2_to_best_kg) == (1.5, 1.5, 0.3)
    assert (second.final, second.best, second.co2_to_best_kg) == (1.6, 1.6, 0.27)
    assert (first.energy_kwh, first.co2_kg, first.water_l) == (1.0, 0.35, 2.0)
    # levels from the weakest first value (3.0) down to the strictest level both reach (1.6)
    assert [round(r.level, 6) for r in result.levels] == [3.0, 2.65, 2.3, 1.95, 1.6]
    last = result.levels[-1]
    assert last.co2_kg == pytest.approx((0.3, 0.27)) and last.diff_pct == pytest.approx((0.0, -10.0))
    assert result.levels[2].co2_kg == pytest.approx((0.2, 0.18))  # 2.3: A at step 20 (2.0), B at step 20 (1.9)
    assert result.verdict == ("In one run each, gelu-4bit reached val_loss ≤ 1.6 with 10.0 % less CO2e than gelu "
                              "(270 g vs 300 g); with one run per recipe the comparison has no estimate of run-to-run "
                              "variation, so no winner can be named: run at least 2 seeds per recipe.")
    assert not result.notes and "gelu-4bit" in result.table()


def test_mismatched_steps_are_interpolated_and_said(store) -> None:
    uri, client, exp = store
    run = log_run(client, exp, "epochs", {15: 2.0, 25: 1.0}, {10: 0.1, 20: 0.2, 30: 0.3})
    result = compare([run], tracking_uri=uri)
    assert result.runs[0].co2_to_best_kg == pytest.approx(0.25) and result.runs[0].interpolated
    assert "interpolated" in result.notes[0]
    assert result.verdict.startswith("epochs: 250 g CO2e to reach its best val_loss 1")  # a single run


def test_max_mode_for_accuracy(store) -> None:
    uri, client, exp = store
    a = log_run(client, exp, "a", {1: 0.5, 2: 0.8, 3: 0.9}, {1: 1.0, 2: 2.0, 3: 3.0}, key="val_acc")
    b = log_run(client, exp, "b", {1: 0.6, 2: 0.85, 3: 0.88}, {1: 1.5, 2: 3.0, 3: 4.5}, key="val_acc")
    result = compare([a, b], metric="val_acc", mode="max", tracking_uri=uri)
    assert result.runs[0].best == 0.9 and result.runs[1].best == 0.88
    assert result.levels[-1].level == pytest.approx(0.88)
    assert result.levels[-1].co2_kg == pytest.approx((3.0, 4.5)) and result.levels[-1].diff_pct[1] == pytest.approx(50)
    assert "≥ 0.88 with 50.0 % more CO2e" in result.verdict


def test_missing_metric_run_and_mode_are_clear_errors(store, tmp_path: Path) -> None:
    uri, client, exp = store
    run = log_run(client, exp, "only", {1: 1.0}, {1: 0.1})
    with pytest.raises(ConfigError, match=r"no metric 'val_acc'; it has: co2_kg, energy_kwh, val_loss, water_l"):
        compare([run], metric="val_acc", tracking_uri=uri)
    with pytest.raises(ConfigError, match=r"no run named 'nope'.*runs here: only"):
        compare(["nope"], tracking_uri=uri)
    with pytest.raises(ConfigError, match="mode must be"):
        compare([run], mode="best", tracking_uri=uri)


def test_report_files_plot_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = []
    for name, losses in (("a", [2.0, 1.0, 0.5]), ("b", [1.8, 0.9, 0.6])):
        session = TrainingSession(TrainingOptions.of(**{"intensity": 100.0, "interval_s": 0.01, "name": name,
                                   "readers": [ScriptedReader("g", "gpu", lambda t: 500.0)]}, summary=False))
        session.begin(None, tmp_path / name, 1)
        for step, loss in enumerate(losses):
            session.step(step, 0)
            session.validation(step, {"val_loss": loss})
        session.end()
        paths.append(session.report_path)
    result = compare(paths)
    records = session.report.extra["validation"]
    assert result.runs[1].co2_to_best_kg == pytest.approx(records[2]["co2_kg"])  # b is best (0.6) at step 2
    png = tmp_path / "c.png"
    result.save_plot(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and len(result.figure().axes) == 3
    status = main(["compare", *map(str, paths), "--plot", str(tmp_path / "c.svg"), "--json", str(tmp_path / "c.json")])
    assert status == 0, capsys.readouterr().err
    assert (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")
    assert json.loads((tmp_path / "c.json").read_text())["metric"] == "val_loss"
    with pytest.raises(ConfigError, match="no 'val_acc' in the report's validation records; it has: val_loss"):
        compare(paths, metric="val_acc")


def test_gelu_4bit_forward_is_gelu_and_gradient_within_documented_error() -> None:
    import torch
    from gelu4bit import MAX_GRADIENT_ERROR, Gelu4Bit, pack, unpack

    x = torch.linspace(-8, 8, 200_001, requires_grad=True)
    y = Gelu4Bit()(x)
    assert torch.equal(y, torch.nn.functional.gelu(x.detach()))
    y.sum().backward()
    exact = torch.autograd.grad(torch.nn.functional.gelu(x).sum(), x)[0]
    assert (x.grad - exact).abs().max().item() <= MAX_GRADIENT_ERROR
    codes = torch.randint(0, 16, (7, 3), dtype=torch.uint8)
    packed = pack(codes)
    assert packed.numel() == 11 and torch.equal(unpack(packed, 21).view(7, 3), codes)  # 4 bits per element
