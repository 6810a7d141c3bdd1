"""The AMD SMI reader against a fake module following AMD SMI's documented units and errors."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import pytest

from carbonstep.cli import main
from carbonstep.measure.readers import amd, discover
from carbonstep.measure.readers.amd import amd_device_present, discover_amd, energy_uj, is_dual_die, power_w
from carbonstep.measure.readers.base import Kind, Method
from carbonstep.measure.sampler import Sampler
from carbonstep.measure.totals import EnergyTotals
from carbonstep.testing import ManualClock

from .fake_amdsmi import NA, FakeAmdGpu, FakeAmdSmi

A = "a1b2c3d4-0000-1000-8000-00000000000a"
B = "b1b2c3d4-0000-1000-8000-00000000000b"
C = "c1b2c3d4-0000-1000-8000-00000000000c"


def energy_j(readers, clock: ManualClock, seconds: int) -> dict[str, float]:
    """Joules per reader over ``seconds`` of 1 Hz sampling through the real sampler and totals."""
    totals = EnergyTotals(readers, clock=clock)
    sampler = Sampler(readers, totals.ingest, 1.0, clock=clock)
    for _ in range(seconds + 1):
        sampler.poll()
        clock.advance(1.0)
    return {r.name: j for r, j in zip(readers, totals.joules)}


def test_units_of_the_documented_dicts() -> None:
    assert energy_uj({"energy_accumulator": 1000, "counter_resolution": 15.259}) == pytest.approx(15259.0)
    assert energy_uj({"power": 2, "counter_resolution": 1.0}) == 2.0  # ROCm < 6.4's name
    assert power_w({"socket_power": NA, "current_socket_power": 512, "average_socket_power": NA}) == 512
    assert power_w({"current_socket_power": NA, "average_socket_power": 300}) == 300
    assert power_w({"current_socket_power": NA, "average_socket_power": NA}) is None
    with pytest.raises(ValueError, match="no usable counter"):
        energy_uj({"energy_accumulator": NA, "counter_resolution": 1.0})


@pytest.mark.parametrize("api", ["new", "old"])
def test_energy_accumulator_in_microjoules_over_ten_seconds(api: str) -> None:
    clock = ManualClock()
    smi = FakeAmdSmi([FakeAmdGpu(A, watts=600.0)], clock, api=api)
    readers, missing, warnings = discover_amd(smi, environ={})
    assert missing == [] and warnings == []
    (reader,) = readers
    assert (reader.kind, reader.method) == (Kind.COUNTER, Method.COUNTER)
    assert "MI300X" in reader.description and A in reader.description
    joules = energy_j(readers, clock, 10)["gpu:0"]
    assert joules == pytest.approx(6000.0, rel=1e-4)  # 600 W × 10 s, to the accumulator's resolution
    assert reader.last_utilisation_pct == 90.0


def test_vm_guest_without_the_accumulator_falls_back_to_power_never_zero() -> None:
    clock = ManualClock()
    smi = FakeAmdSmi([FakeAmdGpu(A, has_counter=False, watts=250.0, power_field="average_socket_power",
                                 activity=NA)], clock)
    (reader,), _, _ = discover_amd(smi, environ={})
    assert (reader.kind, reader.method) == (Kind.POWER, Method.POWER)
    assert "no energy accumulator" in reader.description
    assert energy_j([reader], clock, 10)["gpu:0"] == pytest.approx(2500.0)
    assert reader.last_utilisation_pct is None  # "N/A" is not 0 %


def test_no_driver_and_no_gpu_are_reported_not_raised() -> None:
    clock = ManualClock()
    readers, missing, _ = discover_amd(FakeAmdSmi([FakeAmdGpu(A)], clock, driver=False), environ={})
    assert readers == [] and "could not start" in missing[0].reason
    readers, missing, _ = discover_amd(FakeAmdSmi([], clock), environ={})
    assert readers == [] and missing[0].reason == "no AMD GPU visible to this process"


def test_rocr_then_hip_visible_devices_by_index_and_uuid() -> None:
    clock = ManualClock()
    smi = FakeAmdSmi([FakeAmdGpu(A), FakeAmdGpu(B), FakeAmdGpu(C)], clock)
    pick = lambda env: [r.uuid for r in discover_amd(smi, environ=env)[0]]  # noqa: E731
    assert pick({"ROCR_VISIBLE_DEVICES": "2,0"}) == [C, A]
    assert pick({"ROCR_VISIBLE_DEVICES": "1,2", "HIP_VISIBLE_DEVICES": "1"}) == [C]  # HIP indexes ROCR's list
    assert pick({"CUDA_VISIBLE_DEVICES": "1"}) == [B]  # HIP honours CUDA_VISIBLE_DEVICES too
    assert pick({"ROCR_VISIBLE_DEVICES": "GPU-b1b2c3d4"}) == [B]  # unique prefix of the id
    readers, _, warnings = discover_amd(smi, environ={"ROCR_VISIBLE_DEVICES": "0,7,1"})
    assert [r.uuid for r in readers] == [A] and "out of range" in warnings[0]  # the runtime stops there too
    readers, _, warnings = discover_amd(smi, environ={"ROCR_VISIBLE_DEVICES": "GPU-0000"})
    assert readers == [] and "matches 0 GPUs" in warnings[0]


def test_dual_die_odd_gcd_is_measured_through_its_partner_once() -> None:
    clock = ManualClock()
    smi = FakeAmdSmi([FakeAmdGpu(A, model="AMD Instinct MI250X", watts=500.0, power_field="average_socket_power"),
                      FakeAmdGpu(B, model="AMD Instinct MI250X", silent=True, power_field="average_socket_power")],
                     clock)
    (reader,), _, _ = discover_amd(smi, environ={"ROCR_VISIBLE_DEVICES": "1"})
    assert reader.uuid == A and "covers both dies" in reader.description
    assert energy_j([reader], clock, 4)["gpu:0"] == pytest.approx(2000.0, rel=1e-4)
    both, _, _ = discover_amd(smi, environ={})
    assert [r.uuid for r in both] == [A]  # the package's counter is counted once
    assert is_dual_die("AMD Instinct MI250X") and not is_dual_die("AMD Instinct MI210")


def test_local_rank_keeps_its_own_gpu() -> None:
    clock = ManualClock()
    smi = FakeAmdSmi([FakeAmdGpu(A), FakeAmdGpu(B)], clock)
    (reader,), _, _ = discover_amd(smi, environ={}, local_rank=1)
    assert reader.uuid == B and "local rank 1" in reader.description


def test_discover_and_info_show_amd_gpus_like_nvidia_ones(monkeypatch, capsys, tmp_path) -> None:
    clock = ManualClock()
    smi = FakeAmdSmi([FakeAmdGpu(A)], clock)
    found = discover(rapl_root=tmp_path, amdsmi=smi, nvml=None)
    assert [r.uuid for r in found.readers if r.domain.value == "gpu"] == [A]
    monkeypatch.setitem(sys.modules, "amdsmi", smi)  # what `import amdsmi` gives the CLI
    monkeypatch.setattr(amd, "amd_device_present", partial(amd_device_present, *_sysfs(tmp_path, "0x1002")))
    monkeypatch.setenv("CARBONSTEP_POWERCAP_ROOT", str(tmp_path))
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"gpu  counter   AMD Instinct MI300X [{A}]: AMD SMI energy accumulator" in out


def _sysfs(base: Path, *vendors: str, kfd: bool = False) -> tuple[str, str]:
    """A /dev and a /sys/class/drm as Linux lays them out: card<N>/device/vendor holds the PCI vendor id
    ("0x1002\\n" for AMD, "0x10de\\n" for NVIDIA); connectors (card<N>-DP-1) have no vendor file."""
    dev, drm = base / "dev", base / "sys" / "class" / "drm"
    dev.mkdir(parents=True)
    drm.mkdir(parents=True)
    if kfd:
        (dev / "kfd").write_text("")
    for n, vendor in enumerate(vendors):
        (drm / f"card{n}" / "device").mkdir(parents=True)
        (drm / f"card{n}" / "device" / "vendor").write_text(f"{vendor}\n")
        (drm / f"card{n}-DP-1").mkdir()
    return str(dev), str(drm)


def test_an_amd_gpu_is_found_by_its_device_node_or_pci_vendor(tmp_path: Path) -> None:
    assert not amd_device_present(*_sysfs(tmp_path / "none"))
    assert not amd_device_present(*_sysfs(tmp_path / "nvidia", "0x10de"))
    assert amd_device_present(*_sysfs(tmp_path / "radeon", "0x10de", "0x1002"))
    assert amd_device_present(*_sysfs(tmp_path / "rocm", kfd=True))
    assert not amd_device_present(str(tmp_path / "missing"), str(tmp_path / "missing"))


def test_without_an_amd_gpu_an_installed_amdsmi_is_neither_started_nor_mentioned(monkeypatch, tmp_path) -> None:
    smi = FakeAmdSmi([FakeAmdGpu(A)], ManualClock())
    started: list[bool] = []
    real_init = smi.amdsmi_init
    monkeypatch.setattr(smi, "amdsmi_init", lambda *a: started.append(True) or real_init(*a), raising=False)
    monkeypatch.setitem(sys.modules, "amdsmi", smi)  # installed (another tool brought it)
    monkeypatch.setattr(amd, "amd_device_present", partial(amd_device_present, *_sysfs(tmp_path, "0x10de")))
    assert discover_amd(environ={}) == ([], [], [])
    assert started == []
    monkeypatch.setattr(amd, "amd_device_present", partial(amd_device_present, *_sysfs(tmp_path / "amd", "0x1002")))
    readers, _, _ = discover_amd(environ={})
    assert started == [True] and [r.uuid for r in readers] == [A]
