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


def load_shared():
    load()  # gpu_share_check imports gpu_check's Check row
    spec = importlib.util.spec_from_file_location("gpu_share_check", SCRIPT.parent / "gpu_share_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_shared_gpu_check_on_the_fake_two_processes_sum_to_the_device_and_follow_their_load() -> None:
    from carbonstep.measure.readers.nvml import discover_nvml
    from carbonstep.testing import ManualClock

    shared = load_shared()
    clock = ManualClock()
    small_pid, large_pid = 3001, 3002  # the large batch keeps the GPU busy about 3x as long
    nvml = FakeNvml([FakeGpu(A, watts=450.0, pids=[small_pid, large_pid], sm_util={small_pid: 20, large_pid: 60})],
                    clock)
    readers = [discover_nvml(nvml, visible=A, pids=lambda p=pid: frozenset({p}), clock=clock)[0][0]
               for pid in (small_pid, large_pid)]
    before = nvml.nvmlDeviceGetTotalEnergyConsumption(0) / 1e3
    for second in range(60):
        clock.advance(0.5)
        if second == 30:
            nvml.set(0, watts=300.0, sm_util={small_pid: 10, large_pid: 30})
        for reader in readers:
            reader.read()
    device = nvml.nvmlDeviceGetTotalEnergyConsumption(0) / 1e3 - before
    result = shared.Shared(device, readers[0].total_j, readers[1].total_j, readers[0].charged.value,
                           readers[1].charged.value)
    checks = shared.judge(result)
    assert [c.passed for c in checks] == [True, True, True], [c.value for c in checks]
    assert result.large_j / (result.small_j + result.large_j) == pytest.approx(0.75, abs=0.02)
    lopsided = shared.judge(shared.Shared(device, result.small_j, result.large_j * 1.1, "process share",
                                          "whole device"))
    assert [c.passed for c in lopsided] == [False, False, True]  # 10 % over the device, and a whole device
    swapped = shared.judge(shared.Shared(device, result.large_j, result.small_j, "process share", "process share"))
    assert swapped[2].passed is False


def test_shared_worker_trains_paced_under_a_tracker_and_writes_its_share(tmp_path) -> None:
    shared = load_shared()
    start = time.time() + 0.5
    report = tmp_path / "small.json"
    shared.worker(8, start, start + 1.5, tmp_path / "small.ready", report, device="cpu", width=32)
    result = json.loads(report.read_text())
    assert (tmp_path / "small.ready").read_text() == "ready"
    assert set(result) == {"gpu_j", "charged", "description"} and result["gpu_j"] >= 0.0
