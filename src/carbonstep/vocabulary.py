"""The words every layer shares: which component (``Domain``), how it was read (``Kind``, ``Method``),
whose it is (``Share``, ``Scope``).

It sits at the bottom of the package (it imports nothing from carbonstep), so readers, the report
builder and the analyses can all name a domain or a scope without importing each other.
"""

from __future__ import annotations

from enum import Enum


class Domain(str, Enum):
    """The component a reader measures."""

    GPU = "gpu"
    CPU = "cpu"
    RAM = "ram"


#: Every domain, in the order energy vectors hold them: (gpu, cpu, ram) joules.
DOMAINS = (Domain.GPU, Domain.CPU, Domain.RAM)


class Kind(str, Enum):
    """How a reader's value is to be turned into energy."""

    COUNTER = "counter"  #: read() returns cumulative joules (may wrap at ``wrap_j``)
    POWER = "power"  #: read() returns instantaneous watts (integrated by trapezoid)


class Method(str, Enum):
    """How a number was obtained; every component in a report carries one."""

    COUNTER = "counter"  #: a hardware energy counter (NVML total energy, RAPL)
    POWER = "power"  #: hardware power readings integrated over time
    ESTIMATE = "estimate"  #: a model (utilisation × power, memory × W/GB)


class Share(str, Enum):
    """Which process share applies to a shared device under ``attribution="process"``."""

    NONE = "none"  #: the device is the process's own (its GPUs, its estimates)
    CPU_TIME = "cpu_time"  #: the CPU package: the process's share of busy CPU time
    MEMORY = "memory"  #: DRAM: the process's share of used memory


class Scope(str, Enum):
    """What a reader's energy belongs to: decides how processes of one job are summed."""

    PROCESS = "process"  #: this process tree only: processes' figures add up as they are
    DEVICE = "device"  #: a whole device (a GPU): the process that uses it counts it
    NODE = "node"  #: the whole machine (RAPL zones, machine-wide estimates): counted once per node


class Charged(str, Enum):
    """What a run was charged for on a component: the scope a report, its summary and its sinks show."""

    PROCESS = "process"  #: the run's process tree (its CPU time, its memory)
    PROCESS_SHARE = "process share"  #: a shared GPU split between the processes using it, by their activity
    WHOLE_DEVICE = "whole device"  #: a whole GPU (its own, or no per-process figures: the report says why)
    MIG_INSTANCE = "MIG instance"  #: a MIG instance's share of its parent GPU
    CONTAINER = "container"  #: the cgroup-v2 container the run is in (its CPU time, its memory)
    MACHINE = "machine"  #: the whole machine


def charged_of(scope: Scope) -> Charged:
    """The default charge of a reader that does not state one, from its summing scope."""
    return {Scope.PROCESS: Charged.PROCESS, Scope.DEVICE: Charged.WHOLE_DEVICE}.get(scope, Charged.MACHINE)


__all__ = ["DOMAINS", "Charged", "Domain", "Kind", "Method", "Scope", "Share", "charged_of"]
