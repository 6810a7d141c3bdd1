"""A run's share of a GPU it shares with other processes, or of the MIG instance it runs on.

:class:`GpuProcessShare` splits each sampling window's device energy (counter, else power) between the
processes using the GPU:

* **activity rule** — a window in which NVML has per-process utilisation samples
  (``nvmlDeviceGetProcessUtilization``: SM %, by pid, newer than the last timestamp seen) is split by
  each process's summed SM % over the window; the run's share is that of its process tree (the root and
  its children: DataLoader workers, ``carbonstep run``'s command);
* **idle rule** — a window with no sample (NVML_ERROR_NOT_FOUND: nobody computed) is split **equally
  among the processes holding the GPU** (``nvmlDeviceGetComputeRunningProcesses``): the run pays its
  holders' count over all holders. While the device still reports utilisation (a sample period longer
  than the window), the last window's activity split is carried instead;
* a window in which no process holds the GPU is charged to the run whole (idle energy of a GPU it sees and
  nobody else claims), and a window in which others hold it and the run does not is charged nothing:
  this is how a single-GPU job on a multi-GPU node is no longer charged every GPU it can see.

When NVML cannot give per-process samples (NOT_SUPPORTED on vGPU and MIG, NO_PERMISSION, an old driver)
or its pids cannot be matched to this run's (inside a container with its own pid namespace the driver
reports host pids), the whole device is charged and the description says why: never a silent 100 % or 0 %.

:class:`MigShare` charges a MIG instance its slice fraction of the parent GPU's energy (NVML has no
per-instance energy, and documents per-process utilisation as not supported in MIG mode).
"""

from __future__ import annotations

import time

from carbonstep.measure.readers.base import Kind, Scope, Share, counter_delta
from carbonstep.vocabulary import Charged, Domain

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any, Callable

_REASONS = ("activity", "carried", "idle", "unheld", "not held", "whole")


def nested_pid_namespace(status: str = "/proc/self/status") -> bool:
    """True when this process runs in a pid namespace below the host's (a container): its ``NSpid`` line
    lists more than one pid. NVML's pids are the host's (NVIDIA/nvidia-docker#1483)."""
    try:
        with open(status, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("NSpid:"):
                    return len(line.split()) > 2
    except OSError:
        pass
    return False


def tree_pids(tree: Any, refresh_s: float = 5.0, clock: Callable[[], float] = time.monotonic
              ) -> Callable[[], frozenset[int]]:
    """A cheap callable giving the pids of ``tree`` (a ProcessTree): the root and its descendants
    (others ranks' subtrees left out), listed again at most every ``refresh_s`` seconds."""
    state: list[Any] = [-float("inf"), frozenset({tree.pid})]

    def pids() -> frozenset[int]:
        now = clock()
        if now - state[0] < refresh_s:
            return state[1]
        state[0] = now
        try:
            children = tree.root.children(recursive=True)
            parents = {p.pid: p.ppid() for p in children}
        except Exception:  # noqa: BLE001 - a process gone mid-listing: keep the last listing
            return state[1]
        excluded = set(getattr(tree, "exclude", ()))
        found = {tree.pid}
        for pid in parents:
            up: int | None = pid
            while up is not None and up != tree.pid and up not in excluded:
                up = parents.get(up)
            if up == tree.pid:
                found.add(pid)
        state[1] = frozenset(found)
        return state[1]

    return pids


class _DeviceEnergy:
    """The parent GPU reader's energy per window (counter delta, or trapezoid of power)."""

    def __init__(self, inner: Any, clock: Callable[[], float]) -> None:
        self.inner = inner
        self.clock = clock
        self.last = (clock(), inner.read())

    def window(self) -> tuple[float, float]:
        """(seconds, joules) since the previous call."""
        t, value = self.clock(), self.inner.read()
        t0, before = self.last
        self.last = (t, value)
        if self.inner.kind is Kind.COUNTER:
            return t - t0, counter_delta(before, value, self.inner.wrap_j)
        return t - t0, (value + before) / 2 * (t - t0)


class GpuProcessShare:
    """The run's share of a GPU that several processes use (see the module's rules). Cumulative joules."""

    domain = Domain.GPU
    kind = Kind.COUNTER
    share = Share.NONE
    wrap_j = None

    def __init__(self, inner: Any, pids: Callable[[], frozenset[int]], clock: Callable[[], float] = time.monotonic,
                 nested_namespace: Callable[[], bool] = nested_pid_namespace) -> None:
        self.inner = inner
        self.name, self.method = inner.name, inner.method
        self.uuid, self.index, self.gpu_name = inner.uuid, inner.index, inner.gpu_name
        self._nvml, self._handle = inner.nvml, inner.handle
        self._pids, self._nested = pids, nested_namespace
        self.total_j = 0.0
        self.seconds = dict.fromkeys(_REASONS, 0.0)  #: seconds of windows charged by each rule
        self.whole_reason: str | None = None  #: why the whole device is charged (None: shares apply)
        self.last_seen_us = 0
        self.last_activity: dict[int, float] = {}
        self.holders = 0  #: processes holding the GPU at the last window
        try:  # the driver's buffer so far is before this run: only its newest timestamp is kept
            self.last_seen_us = max(int(s.timeStamp) for s in self._nvml.nvmlDeviceGetProcessUtilization(
                self._handle, 0))
        except AttributeError:
            self.whole_reason = "this nvidia-ml-py has no nvmlDeviceGetProcessUtilization"
        except self._nvml.NVMLError as exc:
            if not _not_found(self._nvml, exc):
                self.whole_reason = f"NVML gives no per-process utilisation on this GPU ({exc})"
        self._energy = _DeviceEnergy(inner, clock)

    @property
    def last_utilisation_pct(self) -> float | None:
        """The GPU's utilisation at the last read (for the report's utilisation figures)."""
        return self.inner.last_utilisation_pct

    @property
    def scope(self) -> Scope:
        """A share adds up over processes; a whole device is counted once."""
        return Scope.DEVICE if self.whole_reason else Scope.PROCESS

    @property
    def charged(self) -> Charged:
        """Process share, or whole device (the description says why)."""
        return Charged.WHOLE_DEVICE if self.whole_reason else Charged.PROCESS_SHARE

    @property
    def description(self) -> str:
        """The parent reader's line and how the run was charged, with the time under each rule."""
        total = sum(self.seconds.values()) or 1.0
        parts = [f"{why} {100 * s / total:.0f} %" for why, s in self.seconds.items() if s > 0]
        rules = ("split by SM activity (NVML per-process utilisation); idle windows split equally among "
                 "the processes holding the GPU")
        if self.whole_reason:
            return f"{self.inner.description}; charged the whole device: {self.whole_reason}" + (
                f" (windows: {', '.join(parts)})" if parts else "")
        return f"{self.inner.description}; this run's share: {rules}" + (
            f" (windows: {', '.join(parts)})" if parts else "")

    def read(self) -> float:
        """Cumulative joules charged to the run."""
        dt, energy = self._energy.window()
        fraction, why = self._fraction()
        self.total_j += energy * fraction
        self.seconds[why] += dt
        return self.total_j

    def _fraction(self) -> tuple[float, str]:
        if self.whole_reason:
            return 1.0, "whole"
        nvml = self._nvml
        try:
            holders = {int(p.pid) for p in nvml.nvmlDeviceGetComputeRunningProcesses(self._handle)}
            samples = self._new_samples()
        except nvml.NVMLError as exc:
            self.whole_reason = f"NVML stopped giving per-process figures ({exc})"
            return 1.0, "whole"
        self.holders = len(holders)
        activity: dict[int, float] = {}
        for s in samples:
            activity[int(s.pid)] = activity.get(int(s.pid), 0.0) + min(max(float(s.smUtil), 0.0), 100.0)
        ours = self._pids()
        if holders and activity and not holders & set(activity) and self._nested():
            self.whole_reason = ("NVML's running processes and its utilisation samples name different pids "
                                 "(two pid namespaces: Project-HAMi/HAMi-core#112)")
            return 1.0, "whole"
        if not holders and not activity:
            return 1.0, "unheld"
        if not ours & (holders | set(activity)):
            if self._nested():
                self.whole_reason = ("this run is in a container with its own pid namespace and NVML reports "
                                     "host pids, none of which is this run's")
                return 1.0, "whole"
            return 0.0, "not held"
        return self._split(ours, holders, activity)

    def _split(self, ours: frozenset[int], holders: set[int], activity: dict[int, float]) -> tuple[float, str]:
        total = sum(activity.values())
        if total > 0:
            self.last_activity = activity
            return sum(v for p, v in activity.items() if p in ours) / total, "activity"
        carried = self.last_activity
        if carried and (self.inner.last_utilisation_pct or 0.0) > 0:
            return sum(v for p, v in carried.items() if p in ours) / sum(carried.values()), "carried"
        return len(ours & holders) / len(holders), "idle"

    def _new_samples(self) -> list[Any]:
        try:
            samples = self._nvml.nvmlDeviceGetProcessUtilization(self._handle, self.last_seen_us)
        except self._nvml.NVMLError as exc:
            if _not_found(self._nvml, exc):
                return []
            raise
        fresh = [s for s in samples if int(s.timeStamp) > self.last_seen_us]
        if fresh:
            self.last_seen_us = max(int(s.timeStamp) for s in fresh)
        return fresh

    def close(self) -> None:
        """Close the parent reader."""
        self.inner.close()


def _not_found(nvml: Any, exc: BaseException) -> bool:
    """No sample newer than the timestamp given: NVML_ERROR_NOT_FOUND (6), or NVML_SUCCESS (0) with no
    sample to size a buffer for, which nvidia-ml-py's wrapper raises as an error too."""
    cls = getattr(nvml, "NVMLError_NotFound", None)
    return (cls is not None and isinstance(exc, cls)) or getattr(exc, "value", None) in (0, 6)


class MigShare:
    """A MIG instance's share of its parent GPU's energy: its GPU-instance slices over the GPU's."""

    domain = Domain.GPU
    kind = Kind.COUNTER
    share = Share.NONE
    scope = Scope.DEVICE  # processes on one instance count it once
    charged = Charged.MIG_INSTANCE
    wrap_j = None

    def __init__(self, inner: Any, mig_uuid: str, profile: str, fraction: float, basis: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.mig_uuid, self.profile, self.fraction = mig_uuid, profile, fraction
        self.name = f"{inner.name}/{mig_uuid}"
        self.method = inner.method
        self.uuid, self.index, self.gpu_name = inner.uuid, inner.index, inner.gpu_name
        self.last_utilisation_pct: float | None = None  # NVML gives none in MIG mode
        self.description = (f"MIG instance {profile} [{mig_uuid}] of {inner.description}; charged "
                            f"{fraction:.3f} of the GPU's energy ({basis}): NVML has no per-instance energy and "
                            "no per-process utilisation in MIG mode")
        self.total_j = 0.0
        self._energy = _DeviceEnergy(inner, clock)

    def read(self) -> float:
        """Cumulative joules charged to the instance."""
        self.total_j += self._energy.window()[1] * self.fraction
        return self.total_j

    def close(self) -> None:
        """Close the parent reader."""
        self.inner.close()


__all__ = ["GpuProcessShare", "MigShare", "nested_pid_namespace", "tree_pids"]
