"""The process tree being measured (a process and its children, e.g. DataLoader workers).

Used by the CPU and RAM estimates and by ``attribution="process"`` to share out RAPL zones.
"""

from __future__ import annotations

import os
import time
from typing import Any


class ProcessTree:
    """CPU time and memory of a root process and its live descendants, via psutil.

    Children are re-listed at most every ``refresh_s`` seconds (listing walks /proc, which
    is the expensive part); between refreshes only the known processes are read.
    CPU time of children that have exited and been waited for is included through the
    root's ``children_user``/``children_system`` times, so the total keeps growing.
    """

    def __init__(self, pid: int | None = None, refresh_s: float = 5.0) -> None:
        import psutil

        self._psutil = psutil
        self.pid = os.getpid() if pid is None else pid
        self.root = psutil.Process(self.pid)
        self.refresh_s = refresh_s
        self._children: list[Any] = []
        self._listed_at = -float("inf")

    def _members(self) -> list[Any]:
        now = time.monotonic()
        if now - self._listed_at >= self.refresh_s:
            try:
                self._children = self.root.children(recursive=True)
            except self._psutil.Error:
                self._children = []
            self._listed_at = now
        return self._children

    def cpu_seconds(self) -> float:
        """Cumulative user+system CPU seconds of the tree (waited-for children included)."""
        t = self.root.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in self._members():
            try:
                c = child.cpu_times()
            except self._psutil.Error:
                continue
            total += c.user + c.system
        return total

    def rss_bytes(self) -> float:
        """Resident memory of the tree in bytes."""
        total = float(self.root.memory_info().rss)
        for child in self._members():
            try:
                total += child.memory_info().rss
            except self._psutil.Error:
                continue
        return total


def machine_busy_cpu_seconds() -> float:
    """Cumulative non-idle CPU seconds of the whole machine (all logical CPUs)."""
    import psutil

    t = psutil.cpu_times()
    # guest time is already inside user time on Linux; steal time is another VM's.
    return t.user + t.system + sum(getattr(t, f, 0.0) for f in ("nice", "irq", "softirq"))


def machine_used_memory_bytes() -> float:
    """Memory in use on the machine, in bytes."""
    import psutil

    return float(psutil.virtual_memory().used)


class ProcessShare:
    """A shared device (RAPL package or DRAM) charged at the process tree's share.

    Each interval's energy is multiplied by the tree's share of busy CPU time (package)
    or of used memory (DRAM) over that interval. Read as a cumulative counter in joules.
    """

    def __init__(self, inner: Any, tree: ProcessTree) -> None:
        from .base import Kind, Share

        self.inner = inner
        self.name = inner.name
        self.domain = inner.domain
        self.kind = Kind.COUNTER
        self.method = inner.method
        self.share = Share.NONE
        self.wrap_j = None
        basis = "busy CPU time" if inner.share is Share.CPU_TIME else "used memory"
        self.description = f"{inner.description}; the process's share of {basis}"
        self._by_cpu = inner.share is Share.CPU_TIME
        self._tree = tree
        self._total_j = 0.0
        self._last = self._state()

    def _state(self) -> tuple[float, float, float]:
        if self._by_cpu:
            return self.inner.read(), self._tree.cpu_seconds(), machine_busy_cpu_seconds()
        return self.inner.read(), self._tree.rss_bytes(), machine_used_memory_bytes()

    def read(self) -> float:
        from .base import counter_delta

        now = self._state()
        energy = counter_delta(self._last[0], now[0], self.inner.wrap_j)
        if self._by_cpu:
            machine = now[2] - self._last[2]
            share = (now[1] - self._last[1]) / machine if machine > 0 else 0.0
        else:
            share = (now[1] / now[2] + self._last[1] / self._last[2]) / 2 if now[2] > 0 else 0.0
        self._total_j += energy * min(max(share, 0.0), 1.0)
        self._last = now
        return self._total_j

    def close(self) -> None:
        self.inner.close()
