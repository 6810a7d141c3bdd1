"""A run inside a cgroup-v2 container is charged as the container, through a cgroup root laid out like
/sys/fs/cgroup with the kernel's file formats (Documentation/admin-guide/cgroup-v2.rst)."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonstep.measure import cgroup as cg
from carbonstep.measure.readers import discover, process
from carbonstep.measure.readers.estimate import RAM_W_PER_GIB
from carbonstep.measure.sampler import Sampler
from carbonstep.measure.totals import EnergyTotals
from carbonstep.testing import ManualClock
from carbonstep.vocabulary import Charged, Domain, Scope

from .powercap_trees import Zone, build_tree

CONTAINER = "kubepods.slice/kubepods-pod1.slice/cri-containerd-abc.scope"


def layout(root: Path, cpu_max: str = "200000 100000", memory_max: str = "max", where: str = CONTAINER) -> Path:
    """A cgroup-v2 root with one container's directory; limits on ``where`` (the container or its pod)."""
    (root / "cgroup.controllers").parent.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    container = root / CONTAINER
    container.mkdir(parents=True)
    for directory in [container, *container.relative_to(root).parents]:
        path = root / directory
        (path / "cpu.max").write_text("max 100000\n")
        (path / "memory.max").write_text("max\n")
    (root / where / "cpu.max").write_text(cpu_max + "\n")
    (root / where / "memory.max").write_text(memory_max + "\n")
    (root / "cpu.max").unlink()  # the root cgroup has no cpu.max or memory.max
    (root / "memory.max").unlink()
    stat(container, 0)
    (container / "memory.current").write_text(f"{3 * 2**30}\n")
    return container


def stat(container: Path, usage_usec: int) -> None:
    (container / "cpu.stat").write_text(f"usage_usec {usage_usec}\nuser_usec {usage_usec * 9 // 10}\n"
                                        f"system_usec {usage_usec // 10}\nnr_periods 0\nnr_throttled 0\n"
                                        "throttled_usec 0\n")


def test_limits_and_usage_are_read_in_the_kernels_formats(tmp_path: Path) -> None:
    container = layout(tmp_path)
    found = cg.own_cgroup(tmp_path, f"0::/{CONTAINER}\n")
    assert found is not None and found.path == container
    assert found.cpus == 2.0 and found.memory_limit_bytes is None
    stat(container, 1_500_000)
    assert found.cpu_seconds() == 1.5 and found.rss_bytes() == 3 * 2**30
    assert "2 CPUs (cpu.max)" in found.summary and "no memory limit" in found.summary


def test_a_limit_on_the_pod_is_found_from_the_container(tmp_path: Path) -> None:
    layout(tmp_path, cpu_max="max 100000", memory_max=str(8 * 2**30), where="kubepods.slice/kubepods-pod1.slice")
    found = cg.own_cgroup(tmp_path, f"0::/{CONTAINER}\n")
    assert found is not None and found.path.name == "kubepods-pod1.slice" and found.memory_limit_bytes == 8 * 2**30


def test_no_limit_cgroup_v1_and_bad_files_are_not_a_container(tmp_path: Path) -> None:
    layout(tmp_path / "none", cpu_max="max 100000")
    assert cg.own_cgroup(tmp_path / "none", f"0::/{CONTAINER}\n") is None
    v1 = tmp_path / "v1"
    v1.mkdir()
    assert cg.own_cgroup(v1, "12:cpu,cpuacct:/docker/abc\n") is None
    assert cg.cpu_limit("garbage") is None and cg.cpu_limit("0 100000") is None and cg.memory_limit("max") is None
    namespaced = tmp_path / "ns"  # a cgroup namespace: /proc/self/cgroup says "0::/", the root is the container
    (namespaced).mkdir()
    (namespaced / "cgroup.controllers").write_text("cpu memory\n")
    (namespaced / "cpu.max").write_text("50000 100000\n")
    found = cg.own_cgroup(namespaced, "0::/\n")
    assert found is not None and found.cpus == 0.5


def test_a_two_cpu_container_on_a_64_cpu_host_is_charged_by_its_own_cpu_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    container = layout(tmp_path / "cgroup")
    monkeypatch.setenv("CARBONSTEP_CGROUP_ROOT", str(tmp_path / "cgroup"))
    monkeypatch.setattr(cg, "_read", _reading_membership(cg._read, f"0::/{CONTAINER}\n"))
    powercap = build_tree(tmp_path / "powercap", [Zone("intel-rapl:0", "package-0", 0)])
    host_busy = [0.0]
    monkeypatch.setattr(process, "machine_busy_cpu_seconds", lambda: host_busy[0])
    found = discover("machine", rapl_root=powercap, gpus=False)
    assert found.container is not None and found.container.cpus == 2.0
    package = next(r for r in found.readers if r.domain is Domain.CPU)
    ram = next(r for r in found.readers if r.domain is Domain.RAM)
    assert package.charged is Charged.CONTAINER and package.scope is Scope.NODE
    assert "container's share" in package.description and "2 CPUs (cpu.max)" in package.description
    assert ram.charged is Charged.CONTAINER and ram.read() == pytest.approx(3 * RAM_W_PER_GIB)  # memory.current
    clock = ManualClock()
    totals = EnergyTotals([package], clock=clock)
    sampler = Sampler([package], totals.ingest, 1.0, clock=clock)
    sampler.poll()
    energy = powercap / "intel-rapl:0" / "energy_uj"
    for second in range(1, 11):  # the host: 48 of 64 CPUs busy, the package at 300 W; the container: 2 CPUs
        clock.advance(1.0)
        host_busy[0] = 48.0 * second
        stat(container, 2_000_000 * second)
        energy.write_text(f"{300_000_000 * second}\n")
        sampler.poll()
    assert totals.joules[0] == pytest.approx(3000.0 * 2 / 48, rel=1e-3)  # its CPU time's share, not the host's package


def _reading_membership(read, membership: str):
    def read_with(path: Path) -> str | None:
        return membership.strip() if str(path) == "/proc/self/cgroup" else read(path)

    return read_with
