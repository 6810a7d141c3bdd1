"""Several processes of one job: places, node-level sources once per node, per-rank GPUs, ``merge``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from carbonstep import ConfigError, Tracker
from carbonstep.cli import main as cli
from carbonstep.measure.distributed import Place, environment_place
from carbonstep.measure.readers import discover
from carbonstep.measure.readers.nvml import discover_nvml
from carbonstep.measure.readers.process import ProcessTree
from carbonstep.report.context import slurm_tags
from carbonstep.report.merge import merge
from carbonstep.report.record import Device, Intensity, RunReport
from carbonstep.testing import CounterReader, ManualClock

from .fake_nvml import FakeGpu, FakeNvml
from .test_rapl import make_zone

KWH = 3.6e6


def test_place_from_launcher_and_slurm_variables() -> None:
    torchrun = environment_place({"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"})
    assert (torchrun.rank, torchrun.local_rank, torchrun.world_size, torchrun.node_leader) == (5, 1, 8, False)
    slurm = environment_place({"SLURM_PROCID": "4", "SLURM_LOCALID": "0", "SLURM_NTASKS": "8"})
    assert (slurm.rank, slurm.local_rank, slurm.world_size, slurm.node_leader) == (4, 0, 8, True)
    both = environment_place({"LOCAL_RANK": "2", "SLURM_LOCALID": "0"})  # the launcher's own variable wins
    assert both.local_rank == 2 and not both.node_leader
    assert environment_place({}).node_leader and environment_place({}).world_size == 1
    tags = slurm_tags({"SLURM_JOB_ID": "77", "SLURM_JOB_USER": "ada", "SLURM_JOB_NODELIST": "gpu[01-04]"})
    assert tags == {"slurm.job_id": "77", "slurm.user": "ada", "slurm.nodelist": "gpu[01-04]"}


def test_node_level_sources_are_read_by_the_node_leader_only(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    monkeypatch.setenv("CARBONSTEP_POWERCAP_ROOT", str(tmp_path))
    follower = Place(rank=1, local_rank=1, world_size=2, local_world_size=2, host="n1", node_leader=False)
    with Tracker(intensity=100, attribution="machine", interval_s=0.05, place=follower) as tracker:
        pass
    report = tracker.stop()
    assert [d.name for d in report.devices if d.domain != "gpu"] == []  # RAPL and the machine RAM estimate
    assert {u.source for u in tracker.unavailable} >= {"rapl:intel-rapl:0:package-0", "ram-estimate:machine"}
    assert report.extra["place"]["rank"] == 1
    leader = replace(follower, rank=0, local_rank=0, node_leader=True)
    with Tracker(intensity=100, attribution="machine", interval_s=0.05, place=leader) as tracker:
        pass
    assert {d.scope for d in tracker.stop().devices} == {"node"}
    # under process attribution every source is the process's own share: nothing is left to the leader
    with Tracker(intensity=100, interval_s=0.05, place=follower) as tracker:
        pass
    assert {d.scope for d in tracker.stop().devices} == {"process"}


def test_given_node_level_reader_is_dropped_on_a_follower() -> None:
    node = CounterReader("node", "cpu", lambda: 1.0, scope="node")
    own = CounterReader("own", "gpu", lambda: 1.0, scope="device")
    tracker = Tracker(intensity=100, readers=[node, own], interval_s=0.05,
                      place=Place(rank=3, local_rank=1, host="n1", node_leader=False))
    with tracker:
        pass
    assert [d.name for d in tracker.stop().devices] == ["own"]


def test_process_tree_leaves_out_other_ranks_and_their_children() -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    spawner = [sys.executable, "-c", "import subprocess, sys, time; "
               f"subprocess.Popen({sleeper!r}); time.sleep(60)"]
    peer, worker = subprocess.Popen(spawner), subprocess.Popen(sleeper)  # a peer rank with a worker; our worker
    try:
        tree = ProcessTree(refresh_s=0.0, exclude=[peer.pid])
        pids: set[int] = set()
        import psutil

        # the processes this test started (a pytest-xdist worker may still hold children of earlier tests)
        ours: set[int] = set()
        for _ in range(100):  # until the peer's own child exists
            ours = {peer.pid, worker.pid} | {p.pid for p in psutil.Process(peer.pid).children()}
            pids = {files.pid for files in tree._members()}
            if len(ours) >= 3:
                break
            time.sleep(0.05)
        assert len(ours) >= 3 and ours <= {p.pid for p in tree.root.children(recursive=True)}
        assert pids & ours == {worker.pid}  # neither the peer nor the peer's child
    finally:
        import psutil

        for process in psutil.Process(peer.pid).children(recursive=True):
            process.kill()
        for process in (peer, worker):
            process.kill()
            process.wait()


def test_each_rank_counts_its_own_gpu() -> None:
    a, b, c = (f"GPU-{x * 8}-0000-0000-0000-000000000000" for x in "abc")
    clock = ManualClock()
    nvml = FakeNvml([FakeGpu(a), FakeGpu(b, pids=[os.getpid()]), FakeGpu(c)], clock)
    readers, _, warnings = discover_nvml(nvml, visible=None, use_env=False, local_rank=0)
    assert [r.uuid for r in readers] == [b] and "compute processes" in readers[0].description and not warnings
    nvml = FakeNvml([FakeGpu(a), FakeGpu(b), FakeGpu(c)], clock)  # no CUDA context yet: cuda:LOCAL_RANK
    readers, _, _ = discover_nvml(nvml, visible=None, use_env=False, local_rank=2)
    assert [r.uuid for r in readers] == [c] and "local rank 2" in readers[0].description
    readers, _, warnings = discover_nvml(nvml, visible=None, use_env=False, local_rank=5)
    assert len(readers) == 3 and "every visible GPU" in warnings[0]
    readers, _, _ = discover_nvml(nvml, visible="1", use_env=False, local_rank=1)  # one GPU per rank already
    assert [r.uuid for r in readers] == [b]
    found = discover("process", gpus=True, nvml=FakeNvml([FakeGpu(a), FakeGpu(b)], clock),
                     place=Place(rank=1, local_rank=1, world_size=2, local_world_size=2))
    assert [r.uuid for r in found.readers if r.domain.value == "gpu"] == [b]


# -- merge: hand-computed -------------------------------------------------------------
def _report(host: str, start: str, duration_s: float, devices: list[tuple[str, str, str, float]],
            g_per_kwh: float, rank: int | None = None, run_id: str = "r") -> RunReport:
    kwh = {d: sum(e for _, dom, _, e in devices if dom == d) for d in ("gpu", "cpu", "ram")}
    total = sum(kwh.values())
    return RunReport(
        run_id=run_id, started_at=start, duration_s=duration_s, status="completed", attribution="machine",
        host=host, energy_kwh=total, energy_kwh_gpu=kwh["gpu"], energy_kwh_cpu=kwh["cpu"], energy_kwh_ram=kwh["ram"],
        facility_kwh=total, co2_kg=total * g_per_kwh / 1e3, water_l=total * 3.14, pue=1.0, wue_l_per_kwh=0.0,
        water_intensity_l_per_kwh=3.14, intensity=Intensity(g_per_kwh, host, host, "test", 2024, "lifecycle"),
        methods={"cpu": "counter"},
        devices=tuple(Device(n, dom, "counter", n, e, scope=scope) for n, dom, scope, e in devices),
        timeline=((0.0, 0.0), (duration_s, total)),
        extra={"place": {"rank": rank, "world_size": 3}} if rank is not None else {},
    )


def test_merge_counts_a_node_once_by_host_and_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p0 = _report("h1", "2026-01-01T00:00:00+00:00", 100, [("rapl", "cpu", "node", 0.010),
                                                         ("cpu-est", "cpu", "process", 0.002)], 100, run_id="a")
    p1 = _report("h1", "2026-01-01T00:00:50+00:00", 100, [("rapl", "cpu", "node", 0.010),
                                                         ("cpu-est", "cpu", "process", 0.004)], 100, run_id="b")
    p2 = _report("h2", "2026-01-01T00:00:00+00:00", 100, [("rapl", "cpu", "node", 0.020)], 300, run_id="c")
    job = merge([p0, p1, p2])
    # h1's package: p0 whole (0–100 s); p1 covers 50–150 s, half of it already counted → 0.005 kWh
    assert job.energy_kwh == pytest.approx(0.010 + 0.002 + 0.005 + 0.004 + 0.020)
    assert job.co2_kg == pytest.approx((0.012 * 100 + 0.009 * 100 + 0.020 * 300) / 1e3)
    assert job.water_l == pytest.approx(0.041 * 3.14)
    assert job.intensity.g_per_kwh == pytest.approx(8.1 / 0.041) and "several" in job.intensity.region_name
    assert job.duration_s == pytest.approx(150) and job.host == "2 hosts"
    dropped = {p["run_id"]: p["duplicate_kwh_dropped"] for p in job.extra["parts"]}
    assert dropped == pytest.approx({"a": 0, "b": 0.005, "c": 0})
    assert {n["host"]: (n["processes"], round(n["energy_kwh"], 9)) for n in job.extra["nodes"]} == \
        {"h1": (2, 0.021), "h2": (1, 0.020)}
    assert job.timeline[-1][1] == pytest.approx(job.energy_kwh)
    assert sum(d.energy_kwh for d in job.devices) == pytest.approx(job.energy_kwh)
    assert any("counted once" in d.description for d in job.devices)
    # disjoint in time on one host: both counted whole
    later = _report("h1", "2026-01-01T00:10:00+00:00", 100, [("rapl", "cpu", "node", 0.010)], 100, run_id="d")
    assert merge([p0, later]).energy_kwh == pytest.approx(0.022)
    # the CLI writes the job report and says what it dropped
    paths = [r.save(tmp_path / f"{r.run_id}.json") for r in (p0, p1, p2)]
    out = tmp_path / "job.json"
    assert cli(["merge", *map(str, paths), "-o", str(out)]) == 0
    assert RunReport.load(out).energy_kwh == pytest.approx(job.energy_kwh)
    assert "5.00 Wh read twice, counted once" in capsys.readouterr().out  # p1's 0.005 kWh


def test_merge_refuses_what_would_count_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _report("h1", "2026-01-01T00:00:00+00:00", 10, [("g", "gpu", "device", 0.001)], 100, rank=0, run_id="j")
    b = _report("h1", "2026-01-01T00:00:00+00:00", 10, [("g", "gpu", "device", 0.001)], 100, rank=1, run_id="j")
    with pytest.raises(ConfigError, match="given twice"):
        merge([a, a])
    job = merge([a, b])
    assert [p["label"] for p in job.extra["parts"]] == ["rank0", "rank1"]
    with pytest.raises(ConfigError, match="already a job total"):
        merge([job, a])
    with pytest.raises(ConfigError, match="nothing to merge"):
        merge([])
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "run_id": ')
    assert cli(["merge", str(bad)]) == 2
    assert "bad.json" in capsys.readouterr().err
