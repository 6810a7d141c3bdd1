"""The NVML reader against a fake module following NVML's documented units and errors."""

from __future__ import annotations

import pytest

from carbonstep.measure.readers.base import Kind, Method
from carbonstep.measure.readers.nvml import discover_nvml
from carbonstep.measure.sampler import Sampler
from carbonstep.measure.totals import EnergyTotals
from carbonstep.testing import ManualClock

from .fake_nvml import FakeGpu, FakeNvml

A = "GPU-aaaaaaaa-0000-0000-0000-000000000000"
B = "GPU-bbbbbbbb-0000-0000-0000-000000000000"
C = "GPU-cccccccc-0000-0000-0000-000000000000"


def machine(clock: ManualClock, **kw) -> FakeNvml:
    return FakeNvml([FakeGpu(A, migs=["MIG-a1", "MIG-a2"]), FakeGpu(B, has_counter=False, watts=100.0),
                     FakeGpu(C, **kw)], clock)


def names(readers) -> list[str]:
    return [r.uuid for r in readers]


def test_counter_in_millijoules_and_power_fallback_in_milliwatts() -> None:
    clock = ManualClock()
    nvml = machine(clock)
    readers, missing, warnings = discover_nvml(nvml, visible="2,1")
    assert missing == [] and warnings == []
    counter, power = readers
    assert (counter.kind, counter.method) == (Kind.COUNTER, Method.COUNTER)
    assert (power.kind, power.method) == (Kind.POWER, Method.POWER)
    assert "no energy counter" in power.description
    totals = EnergyTotals(readers, clock=clock)
    sampler = Sampler(readers, totals.ingest, 1.0, clock=clock)
    for _ in range(11):
        sampler.poll()
        clock.advance(1.0)
    assert totals.joules == pytest.approx([250.0 * 10, 100.0 * 10])  # 10 s at 250 W and 100 W
    assert counter.last_utilisation_pct == 80.0


def test_visible_devices_by_index_uuid_prefix_and_mig() -> None:
    nvml = machine(ManualClock())
    assert names(discover_nvml(nvml, visible="2,0")[0]) == [C, A]
    assert names(discover_nvml(nvml, visible="GPU-bbbb")[0]) == [B]
    assert names(discover_nvml(nvml, visible="bbbbbbbb")[0]) == [B]
    readers, _, _ = discover_nvml(nvml, visible="MIG-a1,MIG-a2")
    assert names(readers) == [A, A]  # both instances live on GPU A: each charged its own slices
    assert "MIG instance 1g.18gb [MIG-a1]" in readers[0].description
    assert names(discover_nvml(nvml, visible="1,7,0")[0]) == [B]  # CUDA stops at the invalid index
    assert names(discover_nvml(nvml, visible="")[0]) == []
    assert names(discover_nvml(nvml, visible=None, use_env=False)[0]) == [A, B, C]


def test_unknown_uuid_and_heterogeneous_index_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = machine(ManualClock(), name="NVIDIA H100 80GB HBM3")
    _, _, warnings = discover_nvml(nvml, visible="GPU-ffff")
    assert "matches 0 GPUs" in warnings[0]
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    _, _, warnings = discover_nvml(nvml, visible="0")
    assert "CUDA_DEVICE_ORDER=PCI_BUS_ID" in warnings[0]


def test_gpu_lost_mid_run_is_degraded_and_others_go_on() -> None:
    clock = ManualClock()
    nvml = machine(clock)
    readers, _, _ = discover_nvml(nvml, visible="0,2")
    totals = EnergyTotals(readers, clock=clock)
    sampler = Sampler(readers, totals.ingest, 1.0, clock=clock)
    sampler.poll()
    clock.advance(2)
    sampler.poll()
    nvml.gpus[2].lost = True
    clock.advance(2)
    sampler.poll()
    assert totals.joules == pytest.approx([1000.0, 500.0])
    assert totals.degraded_at == [None, 4.0]
    assert "GpuIsLost" in sampler.first_failure[1]


def test_no_driver_is_reported_not_raised() -> None:
    readers, missing, _ = discover_nvml(FakeNvml([], ManualClock(), driver=False))
    assert readers == [] and "NVML could not start" in missing[0].reason
    readers, missing, _ = discover_nvml(FakeNvml([], ManualClock()))
    assert readers == [] and "no NVIDIA GPU" in missing[0].reason


def test_gpu_with_neither_counter_nor_power_is_a_warning_not_a_zero() -> None:
    clock = ManualClock()
    nvml = FakeNvml([FakeGpu(A, has_counter=False)], clock)
    nvml.nvmlDeviceGetPowerUsage = lambda h: (_ for _ in ()).throw(nvml.NVMLError_NotSupported("Not Supported"))
    readers, _, warnings = discover_nvml(nvml, visible="0")
    assert readers == [] and "neither an energy counter nor power" in warnings[0]
