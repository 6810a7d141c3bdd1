"""benchmarks/gpu_check.py on CPU against the fake NVML: its arithmetic and its failure paths, so that the
first run on a real GPU is not its first run."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

from .fake_nvml import FakeGpu, FakeNvml

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
A = "GPU-aaaaaaaa-0000-0000-0000-000000000000"
B = "GPU-bbbbbbbb-0000-0000-0000-000000000000"


def load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class FastCounterNvml(FakeNvml):
    """A GPU whose energy counter runs 5 % fast against its power readings: the check must notice."""

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:  # noqa: N802
        return int(super().nvmlDeviceGetTotalEnergyConsumption(handle) * 1.05)


def test_no_gpu_is_said_clearly_and_only_fails_when_required(tmp_path, capsys) -> None:
    check = load()
    nvml = FakeNvml([], time.monotonic)
    assert check.main(["--json", str(tmp_path / "r.json")], nvml=nvml, device="cpu") == 0
    assert "no NVIDIA GPU found (NVML sees no GPU); nothing was checked." in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text()) == {"gpu": None, "reason": "NVML sees no GPU"}
    assert check.main(["--json", str(tmp_path / "r.json"), "--require-gpu"], nvml=nvml, device="cpu") == 1
    broken = FakeNvml([FakeGpu(A)], time.monotonic, driver=False)
    assert check.main(["--json", str(tmp_path / "r.json")], nvml=broken, device="cpu") == 0
    assert "NVML could not start: NVML Shared Library Not Found" in capsys.readouterr().out


def test_discovery_selects_gpu_zero_by_index_and_uuid() -> None:
    check = load()
    checks, uuid = check.discovery_checks(FakeNvml([FakeGpu(A), FakeGpu(B, has_counter=False)], time.monotonic))
    assert uuid == A
    judged = {c.name: c for c in checks if c.passed is not None}
    assert set(judged) == {"CUDA_VISIBLE_DEVICES=unset", "CUDA_VISIBLE_DEVICES=0", "CUDA_VISIBLE_DEVICES=GPU 0's UUID"}
    assert all(c.passed for c in judged.values())
    assert "(counter)" in judged["CUDA_VISIBLE_DEVICES=0"].value
    assert "(power)" in judged["CUDA_VISIBLE_DEVICES=unset"].value  # GPU B has no counter
    assert any(c.name == "MIG" and "not checked" in c.value for c in checks)


def test_energy_truth_passes_on_an_honest_gpu_and_fails_on_a_lying_counter() -> None:
    check = load()
    work = check.Workload("cpu")
    honest = FakeNvml([FakeGpu(A, watts=300.0)], time.monotonic)
    checks, figures = check.energy_checks(honest, A, work, seconds=3.0)
    judged = [c for c in checks if c.passed is not None]
    assert len(judged) == 4 and all(c.passed for c in judged), check.render(checks)
    assert figures["chosen method"]["method"] == "counter" and figures["forced power"]["method"] == "power"
    assert figures["chosen method"]["carbonstep_j"] == pytest.approx(300.0 * figures["chosen method"]["duration_s"],
                                                                     rel=0.01)
    lying = FastCounterNvml([FakeGpu(A, watts=300.0)], time.monotonic)
    checks, _ = check.energy_checks(lying, A, work, seconds=3.0)
    power_gaps = [c for c in checks if "power integral" in c.name]
    assert power_gaps[0].passed is False  # carbonstep trusts the counter: 5 % over the power integral
    assert "gap 5." in power_gaps[0].value or "gap 4.9" in power_gaps[0].value


def test_whole_check_on_the_fake_writes_table_and_json(tmp_path, capsys) -> None:
    check = load()
    out = tmp_path / "gpu.json"
    code = check.main(["--seconds", "3", "--json", str(out)], nvml=FakeNvml([FakeGpu(A)], time.monotonic),
                      device="cpu")
    result = json.loads(out.read_text())
    assert code == (1 if result["failed"] else 0)
    names = {c["name"]: c for c in result["checks"]}
    assert names["energy_kwh_gpu in trainer.callback_metrics"]["passed"] is True
    assert names["final energy_kwh_gpu sent = report's"]["passed"] is True
    assert names["chosen method: vs NVML counter read by this script"]["passed"] is True
    assert result["figures"]["cost"]["read_us"] > 0
    assert "step time tracked / untracked at 10 Hz" in names
    assert "| energy | chosen method: carbonstep (counter) |" in capsys.readouterr().out
