"""The cgroup-v2 container a run is in: its CPU and memory limits, CPU time and memory in use.

Inside a container the host's counts are the wrong "machine": a job limited to 2 CPUs on a 64-CPU host
must not be charged the host's CPU time. Under ``attribution="machine"`` the readers use the container
instead (its ``cpu.stat`` usage for the CPU estimate and for its share of RAPL package energy, exactly as
a process's CPU time is used; its ``memory.current`` for DRAM), and the report says "container".

Files read (Linux cgroup v2, Documentation/admin-guide/cgroup-v2.rst): ``/proc/self/cgroup`` (``0::/path``),
and in the cgroup's directory ``cpu.max`` (``$MAX $PERIOD``, ``max`` for no limit), ``cpu.stat``
(``usage_usec``), ``memory.max`` (bytes or ``max``) and ``memory.current`` (bytes). The cgroup root is
``CARBONSTEP_CGROUP_ROOT`` or /sys/fs/cgroup: tests lay out a directory like it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any

DEFAULT_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def cpu_limit(text: str | None) -> float | None:
    """CPUs allowed by a ``cpu.max`` line (``"200000 100000"`` → 2.0); None for ``max`` or unreadable."""
    fields = (text or "").split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def memory_limit(text: str | None) -> float | None:
    """Bytes allowed by ``memory.max``; None for ``max`` or unreadable."""
    try:
        value = int(text or "")
    except ValueError:
        return None
    return float(value) if value > 0 else None


@dataclass(frozen=True)
class Cgroup:
    """A cgroup-v2 directory with a CPU or memory limit: the container a run is charged as."""

    path: Path
    cpus: float | None  #: CPUs allowed (cpu.max), None: no limit
    memory_limit_bytes: float | None  #: memory.max, None: no limit

    def cpu_seconds(self) -> float:
        """CPU seconds used by every process in the cgroup (``cpu.stat`` ``usage_usec``)."""
        for line in (_read(self.path / "cpu.stat") or "").splitlines():
            name, _, value = line.partition(" ")
            if name == "usage_usec":
                return int(value) / 1e6
        raise OSError(f"{self.path / 'cpu.stat'} has no usage_usec")

    def rss_bytes(self) -> float:
        """Memory in use by the cgroup (``memory.current``), in bytes."""
        text = _read(self.path / "memory.current")
        if text is None or not text.isdigit():
            raise OSError(f"{self.path / 'memory.current'} is not a byte count")
        return float(text)

    @property
    def summary(self) -> str:
        """One line: where it is and its limits."""
        cpus = f"{self.cpus:g} CPUs (cpu.max)" if self.cpus else "no CPU limit"
        memory = (f"{self.memory_limit_bytes / 2**30:.1f} GiB (memory.max)" if self.memory_limit_bytes
                  else "no memory limit")
        return f"container cgroup {self.path.name or '/'}: {cpus}, {memory}"


def own_cgroup(root: Path | None = None, membership: str | None = None) -> Cgroup | None:
    """The cgroup-v2 container this process is in, when it (or an ancestor up to the root) limits CPU or
    memory; None on a plain host, under cgroup v1, or when nothing is limited. ``membership`` is the text of
    /proc/self/cgroup (read when None)."""
    root = Path(root or os.environ.get("CARBONSTEP_CGROUP_ROOT") or DEFAULT_ROOT)
    if not (root / "cgroup.controllers").exists():
        return None  # not a cgroup-v2 hierarchy
    if membership is None:
        membership = _read(Path("/proc/self/cgroup")) or ""
    relative = next((line[3:] for line in membership.splitlines() if line.startswith("0::")), "/")
    here = root / relative.strip().lstrip("/")
    if not here.is_dir():
        here = root  # a cgroup namespace (a container's own view): the root is its cgroup
    directory = here
    while True:
        cpus = cpu_limit(_read(directory / "cpu.max"))
        memory = memory_limit(_read(directory / "memory.max"))
        if cpus or memory:
            return Cgroup(directory, cpus, memory)
        if directory == root or root not in directory.parents:
            return None
        directory = directory.parent


def as_container(reader: Any, cgroup: Cgroup) -> Any:
    """Mark a machine-wide reader as the container's: counted once per node, charged as "container"."""
    from carbonstep.vocabulary import Charged, Scope

    reader.scope = Scope.NODE
    reader.charged = Charged.CONTAINER
    text = reader.description.replace("the process's share", "the container's share")
    try:
        reader.description = f"{text}; {cgroup.summary}"
    except AttributeError:  # the CPU estimate writes its own from its figures (it was made with "container")
        pass
    return reader


__all__ = ["Cgroup", "as_container", "cpu_limit", "memory_limit", "own_cgroup"]
