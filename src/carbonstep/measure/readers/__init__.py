"""Hardware readers and ``discover()``, which picks what this machine can measure."""

from __future__ import annotations

import os
from pathlib import Path

from carbonstep.measure.readers.base import Domain, Kind, Method, Reader, Scope, Share, Unavailable

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Discovery", "Domain", "Kind", "Method", "Reader", "Scope", "Share", "Unavailable", "discover"]


class Discovery:
    """What ``discover()`` found: readers to use, sources not used (and why), warnings."""

    def __init__(self, readers: list[Any] | None = None, unavailable: list[Unavailable] | None = None,
                 warnings: list[str] | None = None, tree: Any = None, container: Any = None) -> None:
        self.readers: list[Any] = readers if readers is not None else []
        self.unavailable: list[Unavailable] = unavailable if unavailable is not None else []
        self.warnings: list[str] = warnings if warnings is not None else []
        self.tree = tree  #: the measured ProcessTree (None when nothing needs it)
        self.container = container  #: the cgroup-v2 container charged under attribution="machine" (a Cgroup)

    def __repr__(self) -> str:
        return (f"Discovery(readers={self.readers!r}, unavailable={self.unavailable!r}, warnings={self.warnings!r}, "
                f"tree={self.tree!r}, container={self.container!r})")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return vars(self) == vars(other)


def powercap_root() -> Path:
    """The powercap sysfs root: ``CARBONSTEP_POWERCAP_ROOT`` or /sys/class/powercap."""
    from carbonstep.measure.readers.rapl import DEFAULT_ROOT

    return Path(os.environ.get("CARBONSTEP_POWERCAP_ROOT") or DEFAULT_ROOT)


NVIDIA_NODES = ("/dev/nvidiactl", "/proc/driver/nvidia/version", "/dev/dxg")  #: the driver's control node,
# its /proc entry, and WSL2's GPU paravirtualisation node (through which NVML works there)


def nvidia_driver_present(nodes: tuple[str, ...] = NVIDIA_NODES) -> bool:
    """Whether an NVIDIA driver is loaded here (any of ``nodes`` exists): only then is NVML imported and
    started (importing pynvml and a failing ``nvmlInit`` cost tens of milliseconds at every start)."""
    return any(os.path.exists(node) for node in nodes)


def discover(
    attribution: str = "process",
    pid: int | None = None,
    rapl_root: Path | None = None,
    nvml: Any = None,
    gpus: bool = True,
    place: Any = None,
    amdsmi: Any = None,
) -> Discovery:
    """Readers for the devices this process uses, best method first.

    GPUs: NVML (NVIDIA) and AMD SMI (AMD; ``amdsmi`` is that module, for tests). CPU and DRAM:
    RAPL counters where readable, else the estimates.
    ``attribution="process"`` measures the process tree rooted at ``pid``. ``place``
    (:class:`~carbonstep.measure.distributed.Place`) keeps other ranks out of the tree and, with
    several ranks on a node, picks this rank's GPU.
    """
    from carbonstep.measure.readers.amd import discover_amd
    from carbonstep.measure.readers.cpu_power import cpu_power_model
    from carbonstep.measure.readers.estimate import CpuEstimateReader, RamEstimateReader, cpu_model_name
    from carbonstep.measure.readers.process import (
        ProcessShare,
        ProcessTree,
        machine_busy_cpu_seconds,
        machine_used_memory_bytes,
    )
    from carbonstep.measure.readers.rapl import discover_rapl

    found = Discovery()
    tree = ProcessTree(pid, exclude=place.peer_pids if place is not None else ())
    process = attribution == "process"
    if gpus:
        local_rank = place.local_rank if place is not None and place.local_world_size > 1 else None
        if nvml is None and not nvidia_driver_present():
            gpu_readers: list[Any] = []
            warnings: list[str] = []
            missing = [Unavailable("nvml", "no NVIDIA driver on this machine (no /dev/nvidiactl)")]
        else:  # NVML and the GPU-sharing reader are imported only where a driver may answer
            from carbonstep.measure.readers.gpu_share import tree_pids
            from carbonstep.measure.readers.nvml import discover_nvml

            gpu_readers, missing, warnings = discover_nvml(nvml, local_rank=local_rank,
                                                           pids=tree_pids(tree) if process else None)
        amd_readers, amd_missing, amd_warnings = discover_amd(amdsmi, local_rank=local_rank)
        found.readers += gpu_readers + amd_readers
        found.unavailable += missing + amd_missing
        found.warnings += warnings + amd_warnings
    rapl_readers, missing = discover_rapl(rapl_root or powercap_root())
    found.unavailable += missing
    domains = {r.domain for r in rapl_readers}
    container = None
    if not process:  # "machine" inside a container is the container
        from carbonstep.measure.cgroup import as_container, own_cgroup

        container = own_cgroup()
    if container is not None:
        as_tree: Any = container  # a cgroup reads as a process tree does: cpu_seconds(), rss_bytes()
        found.readers += [as_container(ProcessShare(r, as_tree), container) for r in rapl_readers]
    else:
        found.readers += [ProcessShare(r, tree) for r in rapl_readers] if process else rapl_readers
    if Domain.CPU not in domains:
        busy = tree.cpu_seconds if process else (container.cpu_seconds if container else machine_busy_cpu_seconds)
        machine = tree.machine_busy_cpu_seconds if process else machine_busy_cpu_seconds  # process: read ≤ 1/s
        cpu = CpuEstimateReader(busy, cpu_power_model(cpu_model_name()), "container" if container else attribution,
                                machine_busy_seconds=machine)
        found.readers.append(as_container(cpu, container) if container else cpu)
    if Domain.RAM not in domains:
        memory = tree.rss_bytes if process else (container.rss_bytes if container else machine_used_memory_bytes)
        ram = RamEstimateReader(memory, "container" if container else attribution)
        found.readers.append(as_container(ram, container) if container else ram)
    found.tree = tree
    found.container = container
    return found
