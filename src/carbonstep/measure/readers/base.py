"""What every energy reader is: a small protocol and the records it produces."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol, runtime_checkable


class Domain(str, Enum):
    """The component a reader measures."""

    GPU = "gpu"
    CPU = "cpu"
    RAM = "ram"


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


@runtime_checkable
class Reader(Protocol):
    """A source of energy for one device. Knows hardware only: no threads, no totals."""

    name: str
    domain: Domain
    kind: Kind
    method: Method
    share: Share
    scope: Scope
    wrap_j: float | None
    description: str

    def read(self) -> float:
        """Cumulative joules (``Kind.COUNTER``) or watts (``Kind.POWER``)."""
        ...

    def close(self) -> None:
        """Release what the reader holds."""
        ...


@dataclass(frozen=True)
class Unavailable:
    """A source that was looked for and not used, and why (shown by ``carbonstep info``)."""

    source: str
    reason: str
    fix: str = ""


def counter_delta(previous: float, current: float, wrap_j: float | None) -> float:
    """Energy between two reads of a cumulative counter that wraps at ``wrap_j``.

    A drop with no known wrap (a counter reset, e.g. a driver reload) counts as zero.
    """
    if current >= previous:
        return current - previous
    if wrap_j:
        return current + wrap_j - previous
    return 0.0
