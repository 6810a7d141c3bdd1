"""No command prints a figure in scientific notation, nor a zero total for a run that used energy: every CLI
command run on small synthetic inputs (tiny runs: micro- and milli-joules, where ``%g`` would print ``1e-08``)
and its printed output scanned. Machine outputs (JSON, CSV) are not scanned: they keep full precision."""

from __future__ import annotations

import contextlib
import io
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from carbonstep import Tracker
from carbonstep.cli import main
from carbonstep.report.record import RunReport
from carbonstep.testing import CounterReader, ScriptedReader

ROOT = Path(__file__).resolve().parents[1]
UNITS = r"(?:[kMGTmµun]?(?:J|Wh|g|L|W)|t|kg|mL|µL)"
#: a number in scientific notation: 1e-08, 2.5E+03, 3.1e-5 kWh (with or without a unit after it)
SCIENTIFIC = re.compile(r"(?<![\w.])\d+(?:\.\d+)?[eE][+-]?\d+\b")
#: a zero figure with a unit of energy, CO2e or water: "0 J", "0.00 kWh", "0.000 g"
ZERO = re.compile(rf"(?<![\w.\d])0(?:\.0+)? ?{UNITS}(?![\w/])")


def run_cli(argv: list[str]) -> tuple[int, str]:
    """The exit code and what the command printed (stdout and stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue() + err.getvalue()


def tiny_report(tmp_path: Path, name: str, watts: float) -> Path:
    """A real Tracker run of a few tens of milliseconds at ``watts``: micro-watt-hours, micrograms."""
    gpu = ScriptedReader("gpu:0", "gpu", lambda t: watts)
    with Tracker(region="FR", readers=[gpu], interval_s=0.01, output_dir=tmp_path) as tracker:
        for step in range(4):
            time.sleep(0.01)
            tracker.mark(step=step, epoch=0)
    report = tracker.stop()
    assert report.energy_kwh > 0 and report.co2_kg > 0  # a non-zero run: no total may read zero
    return report.save(tmp_path / f"{name}.json")


def assert_clean(argv: list[str], output: str, true_zeros: str | None = None) -> None:
    """No figure in scientific notation; no zero figure but on the lines matching ``true_zeros`` (a regex: the
    lines whose zero is a fact, e.g. "pruned 0 trials 0 g")."""
    scientific = SCIENTIFIC.findall(output)
    assert not scientific, f"carbonstep {' '.join(argv[:1])} printed {scientific}:\n{output}"
    lines = [line for line in output.splitlines() if not (true_zeros and re.search(true_zeros, line))]
    zero = [m.group(0) for m in ZERO.finditer("\n".join(lines))]
    assert not zero, f"carbonstep {' '.join(argv[:1])} printed a zero figure {zero} for a non-zero run:\n{output}"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("reports")
    return [tiny_report(root, "a", 0.5), tiny_report(root, "b", 3.0)]


def test_info_regions_report_merge_plan(reports: list[Path], tmp_path: Path) -> None:
    plan = ROOT / "integrations" / "plan"
    commands = [
        ["info"], ["regions", "FR", "DE"],
        ["report", str(reports[0])], ["report", str(reports[1])],
        ["merge", *map(str, reports), "-o", str(tmp_path / "job.json")],
        ["plan", "--sites", str(plan / "sites.csv"), "--report", str(reports[0])],
        ["plan", "--forecast", str(plan / "forecast.csv"), "--kwh", "0.0000004", "--duration", "1h",
         "--now", "2026-06-01T00:00:00+00:00"],
    ]
    for argv in commands:
        code, output = run_cli(argv)
        assert code == 0, (argv, output)
        assert_clean(argv, output)


def test_run_measures_a_short_command(tmp_path: Path) -> None:
    argv = ["run", "--region", "FR", "--json", str(tmp_path / "run.json"), "--", sys.executable, "-c",
            "sum(range(300000))"]
    code, output = run_cli(argv)
    assert code == 0, output
    if RunReport.load(tmp_path / "run.json").energy_kwh > 0:  # a machine with no reader measures nothing
        assert_clean(argv, output)
    else:
        assert not SCIENTIFIC.findall(output), output


def test_usage_on_a_synthetic_month(tmp_path: Path) -> None:
    from carbonstep.testing.usage_synthetic import write_month

    write_month(tmp_path, 12, datetime(2026, 11, 1, tzinfo=timezone.utc), seed=3, marks_per_run=10)
    for by in ("user", "experiment", "month"):
        argv = ["usage", str(tmp_path), "--by", by]
        code, output = run_cli(argv)
        assert code == 0, output
        assert not SCIENTIFIC.findall(output), output


def test_compare_on_tiny_runs(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("tiny")
    for recipe, scale in (("gelu", 1.0), ("gelu-4bit", 0.9)):
        for seed in range(2):
            run = client.create_run(experiment, run_name=f"{recipe}-{seed}").info.run_id
            client.log_param(run, "recipe", recipe)
            loss = [Metric("val_loss", 1.0 / (s + 1) + 0.01 * seed, 0, s) for s in range(1, 4)]
            co2 = [Metric("co2_kg", 3e-9 * s * scale * (1 + 0.05 * seed), 0, s) for s in range(1, 4)]
            client.log_batch(run, metrics=loss + co2 + [Metric("energy_kwh", 5e-8 * scale, 1, 9),
                                                       Metric("water_l", 4e-8 * scale, 1, 9)])
            client.set_terminated(run)
    argv = ["compare", "--experiment", "tiny", "--tracking-uri", uri]
    code, output = run_cli(argv)
    assert code == 0, output
    assert_clean(argv, output)


def test_study_on_tiny_trials(tmp_path: Path) -> None:
    optuna = pytest.importorskip("optuna")
    from carbonstep.optuna import CarbonCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    joules = [0.0]

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        joules[0] += 0.02 + 0.01 * trial.number  # a few tens of millijoules a trial
        return x * x

    storage = f"sqlite:///{tmp_path}/study.db"
    carbon = CarbonCallback(intensity=50.0, readers=[CounterReader("cpu", "cpu", lambda: joules[0])],
                            interval_s=0.05)
    study = optuna.create_study(study_name="tiny", storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(carbon.track(objective), n_trials=6, callbacks=[carbon])
    argv = ["study", "--storage", storage]
    code, output = run_cli(argv)
    assert code == 0, output
    assert "6 trials (6 complete)" in output
    # true zeros: no pruned or failed trial; no CO2e spent between reaching 90 % of the improvement and the best
    assert_clean(argv, output, r"^\s+(pruned|failed)\s+0 trials|the last 10 % of improvement cost")
