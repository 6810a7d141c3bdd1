"""What one sample does, counted (never timed: the cost itself is measured by ``benchmarks/run.py``)."""

from __future__ import annotations

import os

import pytest

from carbonstep.measure.readers.estimate import CpuEstimateReader, CpuPowerModel, RamEstimateReader
from carbonstep.measure.readers.process import ProcessTree
from carbonstep.measure.sampler import Sampler
from carbonstep.measure.totals import EnergyTotals
from carbonstep.testing import ManualClock, ScriptedReader


def test_one_process_clock_read_per_sample_and_memory_at_most_once_a_second(monkeypatch) -> None:
    import psutil

    # no listing and no memory read in the window; children that earlier tests left to this process (a pytest-xdist
    # worker runs many tests) are left out: the tree is this process alone
    tree = ProcessTree(refresh_s=3600.0, rss_refresh_s=3600.0, exclude=[p.pid for p in psutil.Process().children()])
    clock_reads = []
    process_time = tree._process_time
    tree._process_time = lambda: clock_reads.append(1) or process_time()
    preads: list[int] = []
    real_pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, offset: preads.append(fd) or real_pread(fd, n, offset))
    readers = [CpuEstimateReader(tree.cpu_seconds, CpuPowerModel("test", 5.0, "test"), "process"),
               RamEstimateReader(tree.rss_bytes, "process")]
    totals = EnergyTotals(readers)
    sampler = Sampler(readers, totals.ingest, 0.1)
    try:
        for _ in range(20):
            sample = sampler.poll()
            assert sample is not None and None not in sample.values
        assert len(clock_reads) == 20  # the tree's CPU time: one process-clock call per sample
        assert len(preads) <= 1  # resident memory: read once, then kept for rss_refresh_s
        assert sampler.failures == [0, 0]
    finally:
        tree.close()


def test_domain_totals_track_the_devices_through_failures_and_wraps() -> None:
    clock = ManualClock()
    gpu = ScriptedReader("gpu:0", "gpu", lambda t: 100.0, clock=clock)
    gpu_lost = ScriptedReader("gpu:1", "gpu", lambda t: 50.0, clock=clock, fail_after_s=3.0)
    package = ScriptedReader("package-0", "cpu", lambda t: 40.0, kind="counter", clock=clock, wrap_j=100.0)
    dram = ScriptedReader("dram", "ram", lambda t: 4.0, clock=clock)
    readers = [gpu, gpu_lost, package, dram]
    totals = EnergyTotals(readers, clock=clock)
    sampler = Sampler(readers, totals.ingest, 1.0, clock=clock)
    for _ in range(11):
        sampler.poll()
        clock.advance(1.0)
    assert totals.joules == pytest.approx([1000.0, 100.0, 400.0, 40.0])  # the package wrapped four times
    assert totals.degraded_at == [None, 3.0, None, None]
    assert totals.latest[1] == pytest.approx((1100.0, 400.0, 40.0))
    assert totals.latest[1] == totals.domain_joules()
    gpu_j = [vector[0] for _, vector in totals.timeline]
    assert gpu_j == pytest.approx([0, 150, 300, 400, 500, 600, 700, 800, 900, 1000, 1100])  # gpu:1 lost at 3 s


def test_timeline_thinning_keeps_every_stride_th_sample() -> None:
    clock = ManualClock()
    gpu = ScriptedReader("gpu:0", "gpu", lambda t: 10.0, clock=clock)
    totals = EnergyTotals([gpu], max_points=8, clock=clock)
    sampler = Sampler([gpu], totals.ingest, 1.0, clock=clock)
    for _ in range(100):
        sampler.poll()
        clock.advance(1.0)
    times = [t - totals.t0 for t, _ in totals.timeline]
    assert len(times) <= 8
    gaps = {round(b - a) for a, b in zip(times, times[1:])}
    assert gaps == {16.0}  # halved twice past 8 points: every 16th sample, evenly spaced
    assert totals.latest[1][0] == pytest.approx(990.0)  # the total does not depend on the thinning


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="Linux /proc")
def test_children_are_listed_from_the_tree_and_read_in_one_pass_at_most_every_refresh(monkeypatch) -> None:
    import subprocess

    children = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    tree = ProcessTree(refresh_s=3600.0, children_refresh_s=3600.0)
    try:
        tree.cpu_seconds()  # lists the tree and reads every child once
        pids = {p.pid for p in children}
        assert pids <= set(tree._children)
        assert tree._descendants_by_scan() == tree._descendants()  # /proc/<pid>/task/*/children = a walk of /proc
        assert tree._psutil is None  # no psutil on Linux
        stat_fds = {files._stat for pid, files in tree._children.items() if pid in pids}
        preads: list[int] = []
        real_pread = os.pread
        monkeypatch.setattr(os, "pread", lambda fd, n, offset: preads.append(fd) or real_pread(fd, n, offset))
        for _ in range(20):
            tree.cpu_seconds()
        assert not stat_fds & set(preads)  # within children_refresh_s: the children are not read again
        tree.expire_listing()
        tree.cpu_seconds()
        assert stat_fds <= set(preads)  # a new listing reads every child afresh (as stop() does)
    finally:
        tree.close()
        for child in children:
            child.kill()
            child.wait()


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux: /proc/stat")
def test_the_machine_busy_time_is_psutils_sum_read_with_one_pread(monkeypatch) -> None:
    psutil = pytest.importorskip("psutil")
    from carbonstep.measure.readers.process import machine_busy_cpu_seconds

    def psutil_busy() -> float:
        t = psutil.cpu_times()
        return t.user + t.system + t.nice + t.irq + t.softirq

    machine_busy_cpu_seconds()  # opens /proc/stat once
    preads: list[int] = []
    real_pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, offset: preads.append(fd) or real_pread(fd, n, offset))
    before = machine_busy_cpu_seconds()
    theirs = psutil_busy()
    after = machine_busy_cpu_seconds()
    assert len(preads) == 2  # one pread per call, no open
    assert before - 1e-6 <= theirs <= after + 1e-6  # the same counters, read in between


CCF_MODEL = CpuPowerModel("test", 1.25, "test", ccf_min_w=0.5, ccf_max_w=2.0)  # idle 0.5 W, busy 2.0 W per CPU


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux: /proc/stat")
def test_the_process_estimate_reads_proc_stat_at_most_once_a_refresh_and_again_after_a_new_listing(
        tmp_path, monkeypatch) -> None:
    from carbonstep.measure.readers import cpu_power, discover, process
    from carbonstep.vocabulary import Domain

    monkeypatch.setattr(cpu_power, "cpu_power_model", lambda *args, **kwargs: CCF_MODEL)
    found = discover("process", rapl_root=tmp_path, gpus=False)  # no RAPL: the CPU estimate, on CCF's basis
    assert found.tree is not None
    found.tree.machine_refresh_s = 3600.0
    process.machine_busy_cpu_seconds()  # /proc/stat opened once
    stat_fd = process._PROC_STAT["fd"]
    preads: list[int] = []
    real_pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, offset: preads.append(fd) or real_pread(fd, n, offset))
    totals = EnergyTotals(found.readers)
    sampler = Sampler(found.readers, totals.ingest, 0.1)
    try:
        for _ in range(20):
            assert sampler.poll() is not None
        assert preads.count(stat_fd) == 1  # the first sample's read, then the same value within the refresh
        found.tree.expire_listing()  # as stop() does before the last sample
        sampler.poll()
        assert preads.count(stat_fd) == 2
        cpu = next(i for i, r in enumerate(found.readers) if r.domain is Domain.CPU)
        assert sampler.failures[cpu] == 0 and totals.joules[cpu] >= 0.0
    finally:
        found.tree.close()


def test_the_ccf_share_of_idle_watts_waits_for_the_machine_s_busy_time_and_the_busy_time_does_not() -> None:
    now, machine, own = [0.0], [0.0], [0.0]
    reader = CpuEstimateReader(lambda: own[0], CCF_MODEL, "process", lambda: machine[0], 2, lambda: now[0])
    assert reader.read() == 0.0
    totals = []
    for second in range(1, 10):  # the machine's count not read again for 9 s: the process's busy time goes in
        now[0], own[0] = float(second), 0.5 * second
        totals.append(reader.read())
    assert totals == pytest.approx([0.5 * s * 1.5 for s in range(1, 10)])  # busy s × (max − min) at each read
    now[0], own[0], machine[0] = 10.0, 5.0, 10.0  # then it moves: 10 busy s of the machine's 20, 5 of them its own
    assert reader.read() == pytest.approx(5.0 * 1.5 + 2 * 10.0 * 0.5 * (5.0 / 10.0))  # + its share of idle watts
    one_read = CpuEstimateReader(lambda: own[0], CCF_MODEL, "process", lambda: machine[0], 2, lambda: now[0])
    now[0], own[0], machine[0] = 0.0, 0.0, 0.0
    one_read.read()
    now[0], own[0], machine[0] = 10.0, 5.0, 10.0
    assert one_read.read() == pytest.approx(reader.read())  # the same as one read over the whole window
    assert reader.utilisation() == pytest.approx(0.5)
