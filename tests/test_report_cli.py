"""Report JSON, the model-card block, the CLI end to end, and the light import."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carbonstep import RunReport, Tracker
from carbonstep.errors import DataFileError
from carbonstep.testing import ScriptedReader

CLI = [sys.executable, "-m", "carbonstep.cli"]


def scripted_report(tmp_path: Path | None = None) -> RunReport:
    gpu = ScriptedReader("gpu:0", "gpu", lambda t: 250.0)
    with Tracker(region="FR", readers=[gpu], interval_s=0.01, output_dir=tmp_path) as tracker:
        for step in range(4):
            time.sleep(0.01)
            tracker.mark(step=step, epoch=step // 2)
    return tracker.stop()


def test_json_round_trip_and_schema_version(tmp_path: Path) -> None:
    report = scripted_report(tmp_path)
    again = RunReport.from_json(report.to_json())
    assert again == report
    data = json.loads(report.to_json())
    assert data["schema_version"] == 1 and data["intensity"]["region"] == "FR"
    data["schema_version"] = 99
    with pytest.raises(ValueError, match="schema version 99"):
        RunReport.from_dict(data)
    path = tmp_path / "bad.json"
    path.write_text("{\"energy_kwh\": 1")
    with pytest.raises(DataFileError, match="not a carbonstep report"):
        RunReport.load(path)


def test_save_is_atomic(tmp_path: Path) -> None:
    report = scripted_report()
    target = tmp_path / "r.json"
    report.save(target)
    assert RunReport.load(target) == report
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


def test_co2_eq_emissions_block_is_hugging_face_shaped() -> None:
    report = scripted_report()
    block = report.co2_eq_emissions(training_type="fine-tuning")
    assert set(block) == {"emissions", "source", "training_type", "geographical_location", "hardware_used"}
    assert block["emissions"] == round(report.co2_kg * 1000, 4)
    assert "e" not in repr(block["emissions"]) and block["geographical_location"] == "France"
    assert block["training_type"] == "fine-tuning" and "carbonstep" in block["source"]


def test_import_loads_no_framework_and_calls_no_nvml() -> None:
    code = ("import sys, carbonstep; carbonstep.RunReport; carbonstep.Tracker; "
            "heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('torch','mlflow','pandas','numpy','lightning','pytorch_lightning','transformers','keras','pynvml',"
            "'psutil')]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_run_measures_a_busy_command_and_its_children(tmp_path: Path) -> None:
    busy = ("import multiprocessing as mp, time\n"
            "def spin(_):\n t=time.process_time()\n while time.process_time()-t<0.4: pass\n"
            "if __name__=='__main__':\n with mp.Pool(2) as p: p.map(spin,[0,0])\n")
    out = tmp_path / "run.json"
    result = subprocess.run([*CLI, "run", "--region", "FR", "--interval", "0.1", "--json", str(out), "--",
                             sys.executable, "-c", busy], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = RunReport.load(out)
    assert report.status == "completed" and report.intensity.region == "FR"
    estimate = report.extra["cpu_estimate"]
    cpu_seconds = estimate["busy_cpu_s"]
    assert 0.7 < cpu_seconds < 2.0  # two children spinning 0.4 s each, plus interpreter start-up
    joules = report.energy_kwh_cpu * 3.6e6
    if "Cloud Carbon Footprint" in estimate["source"]:  # idle W of every vCPU (its share) + busy s × (max − min)
        assert joules >= cpu_seconds * (estimate["w_high"] - estimate["w_low"]) * 0.99
    else:  # busy CPU-seconds × W per thread
        assert joules == pytest.approx(cpu_seconds * estimate["w_per_thread"], rel=0.05)
    assert "carbonstep · run" in result.stderr and "by estimate" in result.stderr
    summary = subprocess.run([*CLI, "report", str(out)], capture_output=True, text=True, check=True).stdout
    assert report.run_id in summary


def test_cli_run_passes_the_exit_code_and_marks_failure(tmp_path: Path) -> None:
    out = tmp_path / "fail.json"
    result = subprocess.run([*CLI, "run", "--region", "SE", "--json", str(out), "--", sys.executable, "-c",
                             "raise SystemExit(3)"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert RunReport.load(out).wasted


def test_cli_errors_and_listings() -> None:
    bad = subprocess.run([*CLI, "run", "--region", "Frnace", "--", "true"], capture_output=True, text=True)
    assert bad.returncode == 2 and "did you mean FR (France)" in bad.stderr
    listing = subprocess.run([*CLI, "regions", "canada"], capture_output=True, text=True, check=True).stdout
    assert "CA-QC" not in listing and "Canada" in listing
    texas = subprocess.run([*CLI, "regions", "texas"], capture_output=True, text=True, check=True).stdout
    assert "US-TX" in texas and "2023 direct" in texas and "eGRID2023" in texas and "SOURCES.md" in texas
    nothing = subprocess.run([*CLI, "regions", "atlantis"], capture_output=True, text=True)
    assert nothing.returncode == 1 and "no region matches" in nothing.stderr
    info = subprocess.run([*CLI, "info"], capture_output=True, text=True, check=True).stdout
    assert "Measured:" in info and "cpu" in info
    missing = subprocess.run([*CLI, "report", "/no/such/report.json"], capture_output=True, text=True)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_public_api_is_curated_and_resolves() -> None:
    import carbonstep

    assert carbonstep.__all__ == [
        "Budget", "CarbonstepError", "Comparison", "ConfigError", "DataFileError", "MissingExtraError", "RunReport",
        "Snapshot", "Tracker", "__version__", "compare",
    ]
    for name in carbonstep.__all__:
        assert getattr(carbonstep, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Trackr'"):
        carbonstep.Trackr  # noqa: B018
