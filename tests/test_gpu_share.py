"""A run's share of a shared GPU and of a MIG instance, against the fake NVML (documented units, errors and
timestamp semantics: samples newer than lastSeenTimeStamp in µs, NOT_FOUND when there are none)."""

from __future__ import annotations

import pytest

from carbonstep.measure.readers.gpu_share import GpuProcessShare, MigShare, nested_pid_namespace
from carbonstep.measure.readers.nvml import discover_nvml
from carbonstep.measure.sampler import Sampler
from carbonstep.measure.totals import EnergyTotals
from carbonstep.testing import ManualClock
from carbonstep.vocabulary import Charged, Scope

from .fake_nvml import FakeGpu, FakeMig, FakeNvml, NVMLError_NoPermission, NVMLError_NotSupported

A = "GPU-aaaaaaaa-0000-0000-0000-000000000000"
TRAINER_A, WORKER_A, TRAINER_B = 4101, 4102, 5201  # run A: a trainer and its DataLoader worker; run B: one process


def runs(nvml: FakeNvml, clock: ManualClock, *trees: frozenset[int], nested: bool = False) -> list[GpuProcessShare]:
    out = []
    for pids in trees:
        readers, missing, warnings = discover_nvml(nvml, visible="0", pids=lambda p=pids: p, clock=clock)
        assert missing == [] and warnings == []
        reader = readers[0]
        assert isinstance(reader, GpuProcessShare)
        reader._nested = lambda: nested
        out.append(reader)
    return out


def device_joules(nvml: FakeNvml) -> float:
    return nvml.nvmlDeviceGetTotalEnergyConsumption(0) / 1e3


def drive(nvml: FakeNvml, clock: ManualClock, readers: list, phases: list[tuple[float, dict]], step: float = 0.5):
    """Advance the clock through ``phases`` (seconds, changes to GPU 0), reading every reader each ``step``."""
    for seconds, changes in phases:
        nvml.set(0, **changes)
        for _ in range(round(seconds / step)):
            clock.advance(step)
            for r in readers:
                r.read()


def test_two_processes_sharing_a_gpu_sum_to_the_device_and_follow_their_load() -> None:
    clock = ManualClock()
    gpu = FakeGpu(A, watts=90.0, pids=[TRAINER_A, WORKER_A, TRAINER_B], sample_period_s=1.0)
    nvml = FakeNvml([gpu], clock)
    start_j = device_joules(nvml)
    a, b = runs(nvml, clock, frozenset({TRAINER_A, WORKER_A}), frozenset({TRAINER_B}))
    drive(nvml, clock, [a, b], [
        (10.0, dict(watts=90.0, sm_util={})),  # everyone holds it, nobody computes: idle, split 2:1 by holders
        (30.0, dict(watts=400.0, sm_util={TRAINER_A: 60, TRAINER_B: 20})),  # A at 3x B's load
        (20.0, dict(watts=250.0, sm_util={TRAINER_A: 10, WORKER_A: 5, TRAINER_B: 45})),  # B busier now
    ])
    device = device_joules(nvml) - start_j
    assert device == pytest.approx(90 * 10 + 400 * 30 + 250 * 20)
    assert a.total_j + b.total_j == pytest.approx(device, rel=0.01)
    # idle: A holds 2 of 3 contexts; then 60:20 for 30 s; then 15:45 for 20 s (one driver period of lag)
    expected_a = 900 * 2 / 3 + 12000 * 0.75 + 5000 * 0.25
    assert a.total_j == pytest.approx(expected_a, rel=0.03)
    assert b.total_j == pytest.approx(device - expected_a, rel=0.03)
    assert a.charged is Charged.PROCESS_SHARE and a.scope is Scope.PROCESS
    assert "idle windows split equally" in a.description and "activity" in a.description


def test_sampler_windows_shorter_than_the_driver_period_carry_the_last_split() -> None:
    clock = ManualClock()
    gpu = FakeGpu(A, watts=300.0, pids=[TRAINER_A, TRAINER_B], sample_period_s=2.0, utilisation=90)
    nvml = FakeNvml([gpu], clock)
    a, b = runs(nvml, clock, frozenset({TRAINER_A}), frozenset({TRAINER_B}))
    drive(nvml, clock, [a, b], [(20.0, dict(sm_util={TRAINER_A: 75, TRAINER_B: 25}))], step=0.5)
    # NOT_FOUND between samples is not idleness: only the windows before the driver's first sample are idle
    assert a.seconds["carried"] > 5.0 and a.seconds["idle"] < 2.0
    assert a.total_j / (a.total_j + b.total_j) == pytest.approx(0.75, abs=0.02)


def test_a_gpu_held_only_by_others_costs_nothing_and_an_unheld_one_is_the_runs() -> None:
    clock = ManualClock()
    nvml = FakeNvml([FakeGpu(A, watts=200.0, pids=[TRAINER_B], sm_util={TRAINER_B: 50})], clock)
    (a,) = runs(nvml, clock, frozenset({TRAINER_A}))
    drive(nvml, clock, [a], [(5.0, {}), (5.0, dict(pids=[], sm_util={}))])
    assert a.total_j == pytest.approx(200 * 5, rel=0.01)  # only the 5 s nobody held it
    assert a.seconds["not held"] == pytest.approx(5.0) and a.seconds["unheld"] == pytest.approx(5.0)


@pytest.mark.parametrize("error, said", [(NVMLError_NotSupported, "no per-process utilisation"),
                                         (NVMLError_NoPermission, "no per-process utilisation")])
def test_no_per_process_samples_charges_the_whole_device_and_says_why(error, said) -> None:
    clock = ManualClock()
    nvml = FakeNvml([FakeGpu(A, watts=100.0, pids=[TRAINER_A, TRAINER_B], process_util_error=error)], clock)
    (a,) = runs(nvml, clock, frozenset({TRAINER_A}))
    drive(nvml, clock, [a], [(4.0, {})])
    assert a.total_j == pytest.approx(400.0)
    assert a.charged is Charged.WHOLE_DEVICE and a.scope is Scope.DEVICE
    assert said in a.description and "charged the whole device" in a.description


def test_host_pids_seen_from_a_container_are_said_not_charged_as_zero() -> None:
    clock = ManualClock()
    nvml = FakeNvml([FakeGpu(A, watts=100.0, pids=[900_001], sm_util={900_001: 70})], clock)  # host pids
    (a,) = runs(nvml, clock, frozenset({7}), nested=True)  # pid 7 in the container's namespace
    drive(nvml, clock, [a], [(4.0, {})])
    assert a.total_j == pytest.approx(400.0) and a.charged is Charged.WHOLE_DEVICE
    assert "host pids" in a.description


def test_running_list_and_samples_in_different_pid_namespaces_are_said() -> None:
    clock = ManualClock()
    gpu = FakeGpu(A, pids=[TRAINER_A], sm_util={TRAINER_A: 70}, sample_pid_offset=640_000)  # HAMi-core#112
    nvml = FakeNvml([gpu], clock)
    (a,) = runs(nvml, clock, frozenset({TRAINER_A}), nested=True)
    drive(nvml, clock, [a], [(3.0, {})])
    assert a.charged is Charged.WHOLE_DEVICE and "different pids" in a.description


def test_a_process_with_samples_but_no_compute_context_is_not_a_namespace_mismatch() -> None:
    clock = ManualClock()  # e.g. a display server: utilisation samples, not in the compute list
    nvml = FakeNvml([FakeGpu(A, watts=100.0, pids=[TRAINER_A], sm_util={777: 40})], clock)
    (a,) = runs(nvml, clock, frozenset({TRAINER_A}))
    drive(nvml, clock, [a], [(4.0, {})])
    assert a.charged is Charged.PROCESS_SHARE and a.total_j < 100.0  # the run computed nothing after the first s


def test_samples_before_the_run_are_not_counted() -> None:
    clock = ManualClock()
    nvml = FakeNvml([FakeGpu(A, watts=100.0, pids=[TRAINER_A, TRAINER_B], sm_util={TRAINER_B: 90})], clock)
    clock.advance(20)  # B computed alone for 20 s before the run started
    nvml.set(0, sm_util={TRAINER_A: 50, TRAINER_B: 50})
    (a,) = runs(nvml, clock, frozenset({TRAINER_A}))
    assert a.last_seen_us > 0
    drive(nvml, clock, [a], [(10.0, {})])
    assert a.total_j == pytest.approx(500.0, rel=0.02)


def test_mig_instance_is_charged_its_slices_not_the_whole_gpu() -> None:
    clock = ManualClock()
    gpu = FakeGpu(A, name="NVIDIA H200", watts=700.0, pids=[TRAINER_A],
                  mig_devices=[FakeMig("MIG-1g", "1g.18gb", 1, 16_384), FakeMig("MIG-3g", "3g.71gb", 3, 72_704)])
    nvml = FakeNvml([gpu], clock)
    readers, _, warnings = discover_nvml(nvml, visible="MIG-1g", pids=lambda: frozenset({TRAINER_A}), clock=clock)
    assert warnings == []
    (mig,) = readers
    assert isinstance(mig, MigShare) and mig.charged is Charged.MIG_INSTANCE
    totals = EnergyTotals(readers, clock=clock)
    sampler = Sampler(readers, totals.ingest, 1.0, clock=clock)
    for _ in range(11):
        sampler.poll()
        clock.advance(1.0)
    assert totals.joules[0] == pytest.approx(700.0 * 10 / 7)  # 1 of 7 slices, not 700 W × 10 s
    assert "1g.18gb [MIG-1g]" in mig.description and "1 of 7 GPU-instance slices" in mig.description
    both, _, _ = discover_nvml(nvml, visible="MIG-1g,MIG-3g")
    assert [r.fraction for r in both] == pytest.approx([1 / 7, 3 / 7])


def test_a_gpu_in_mig_mode_seen_whole_is_the_whole_device_with_the_reason() -> None:
    clock = ManualClock()
    nvml = FakeNvml([FakeGpu(A, pids=[TRAINER_A], mig_devices=[FakeMig("MIG-1g")])], clock)
    (reader,), _, _ = discover_nvml(nvml, visible="0", pids=lambda: frozenset({TRAINER_A}), clock=clock)
    assert reader.charged is Charged.WHOLE_DEVICE and "Not Supported" in reader.description


def test_nested_pid_namespace_reads_nspid(tmp_path) -> None:
    host = tmp_path / "host"
    host.write_text("Name:\tpython\nNSpid:\t4101\n")
    container = tmp_path / "container"
    container.write_text("Name:\tpython\nNSpid:\t640123\t7\n")
    assert nested_pid_namespace(str(host)) is False
    assert nested_pid_namespace(str(container)) is True
    assert nested_pid_namespace(str(tmp_path / "missing")) is False


def test_the_report_summary_and_params_show_each_components_scope(tmp_path) -> None:
    import os

    from carbonstep.measure.tracker import Tracker
    from carbonstep.report.charged import scope_params, scope_text
    from carbonstep.report.record import RunReport
    from carbonstep.report.summary import render
    from carbonstep.testing import ScriptedReader

    nvml = FakeNvml([FakeGpu(A, watts=300.0, pids=[os.getpid(), TRAINER_B],
                             sm_util={os.getpid(): 30, TRAINER_B: 90}, sample_period_s=0.01)], _RealClock())
    (gpu,), _, _ = discover_nvml(nvml, visible="0", pids=lambda: frozenset({os.getpid()}))
    cpu = ScriptedReader("cpu", "cpu", lambda t: 50.0, kind="counter", scope="node")
    with Tracker(intensity=400.0, readers=[gpu, cpu], interval_s=0.01, output_dir=tmp_path) as tracker:
        import time

        time.sleep(0.2)
    report = tracker.stop()
    assert [d.charged for d in report.devices] == ["process share", "machine"]
    assert report.energy_kwh_gpu * 3.6e6 < 300.0 * report.duration_s * 0.5  # its share, not the whole GPU
    assert scope_params(report) == {"carbonstep.gpu_scope": "process share", "carbonstep.cpu_scope": "machine"}
    assert "by counter, charged: process share" in render(report)
    assert scope_text(report) == "gpu process share · cpu machine"
    again = RunReport.from_json(report.to_json())
    assert again.devices[0].charged == "process share"
    old = report.to_dict()
    for device in old["devices"]:
        del device["charged"]  # a report written before scopes were recorded
    assert scope_params(RunReport.from_dict(old)) == {"carbonstep.gpu_scope": "process", "carbonstep.cpu_scope":
                                                      "machine"}


class _RealClock:
    def __call__(self) -> float:
        import time

        return time.monotonic()


def test_the_wrappers_success_with_no_sample_counts_as_no_sample() -> None:
    class SuccessWithoutSamples(Exception):  # nvidia-ml-py raises NVMLError(NVML_SUCCESS) when the count is 0
        value = 0

    clock = ManualClock()
    nvml = FakeNvml([FakeGpu(A, watts=100.0, pids=[TRAINER_A, TRAINER_B])], clock)
    nvml.NVMLError = (nvml.NVMLError, SuccessWithoutSamples)

    def no_samples(handle, stamp):
        raise SuccessWithoutSamples("Success")

    nvml.nvmlDeviceGetProcessUtilization = no_samples
    (a,) = runs(nvml, clock, frozenset({TRAINER_A}))
    drive(nvml, clock, [a], [(4.0, {})])
    assert a.charged is Charged.PROCESS_SHARE and a.total_j == pytest.approx(200.0)  # idle: 1 of 2 holders
