"""Estimates where no hardware counter is readable.

* CPU: watts per logical CPU ("thread") of the chip, with a range and the basis (``cpu_power.py``):
  the model's TDP over its own core and thread counts where a table or the model name gives them, else
  Cloud Carbon Footprint's min–max W per vCPU for the microarchitecture /proc/cpuinfo names,
  interpolated by the measured utilisation, else the family's median TDP. Never the TDP over the VM's
  own vCPU count. TDP-based figures charge busy CPU-seconds (a cumulative counter, no integration
  error); CCF-based ones charge every logical CPU its idle watts plus busy CPU-seconds × (max − min),
  as CCF does, the process its share of busy CPU time.
* RAM: 0.375 W per GiB of resident memory (eco2AI's model), integrated over time.
"""

from __future__ import annotations

import os
import re
import sys
import time
from functools import lru_cache
from pathlib import Path

from carbonstep._record import NamedTuple
from carbonstep.measure.readers.base import Domain, Kind, Method, Scope, Share
from carbonstep.validate import table_row

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Callable

#: W per GiB of memory in use: eco2AI's RAM model, ``memory used (GiB) * (3 / 8)`` W
#: (eco2ai 0.3.12, ``eco2ai/tools/tools_ram.py``, ``RAM.calculate_consumption``; Apache-2.0).
RAM_W_PER_GIB = 3 / 8
BYTES_PER_GIB = 1024**3
FAMILIES = ("EPYC", "Ryzen", "Xeon", "Core", "Apple")
CPU_TABLE = Path(__file__).with_name("data") / "cpu_power.csv"
APPLE_IMPLEMENTER = "0x61"  #: "CPU implementer" of Apple silicon in an arm64 /proc/cpuinfo


class CpuPowerModel(NamedTuple):
    """Watts per logical CPU: the figure, its range, how it was found and from which source.

    With ``ccf_min_w``/``ccf_max_w`` set the figure follows CCF's linear model (idle watts per logical
    CPU plus busy time × (max − min)), and ``w_per_thread`` is its value at CCF's fallback utilisation.
    """

    cpu_name: str
    w_per_thread: float
    basis: str
    w_low: float | None = None  #: None: the figure itself (no range known)
    w_high: float | None = None
    source: str = ""
    ccf_min_w: float | None = None
    ccf_max_w: float | None = None

    @property
    def low(self) -> float:
        """The low end of the range, W per thread."""
        return self.w_per_thread if self.w_low is None else self.w_low

    @property
    def high(self) -> float:
        """The high end of the range, W per thread."""
        return self.w_per_thread if self.w_high is None else self.w_high


class CpuTopology(NamedTuple):
    """Logical CPUs per package and per core, and the CPUID identity, as the OS reports them (None: not reported).

    The identity (vendor, family, model) does not take part in comparisons.
    """

    threads_per_package: int | None
    threads_per_core: int
    virtual: bool = False  #: the "hypervisor" flag: a VM, whose siblings are its share of the package
    vendor: str = ""  #: /proc/cpuinfo vendor_id ("AuthenticAMD", "GenuineIntel")
    family: int | None = None  #: "cpu family"
    model: int | None = None  #: "model"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CpuTopology) or type(other) is not type(self):
            return NotImplemented
        return self[:3] == other[:3]

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self[:3])


def normalise_cpu_name(name: str) -> str:
    """The model as a lookup key: no (R)/(TM), clock, "CPU"/"Processor"/"N-Core", "Nth Gen", vendor.

    "13th Gen Intel(R) Core(TM) i9-13900K" and "Intel Core i9-13900K" both give "core i9-13900k";
    "AMD EPYC 7763 64-Core Processor" gives "epyc 7763".
    """
    name = re.sub(r"\((?:R|TM|tm|r)\)", "", name)
    name = re.sub(r"\([^)]*\)", " ", name.split("@", 1)[0])
    name = re.split(r"\s(?:with|w/)\s", name, maxsplit=1)[0]
    name = re.sub(r"\b\d+(?:st|nd|rd|th) Gen\b", " ", name, flags=re.IGNORECASE)
    name = re.sub(r"(?<![\w-])(?:CPU|Processor|\S+-Cores?)(?![\w-])", " ", name, flags=re.IGNORECASE)
    words = name.lower().split()
    if words and words[0] in ("amd", "intel"):
        words = words[1:]
    return " ".join(words)


@lru_cache(maxsize=1)
def cpu_table() -> dict[str, tuple[str, float]]:
    """The shipped CPU table: normalised name → (model as published, TDP in W).

    The build script writes each row's key (``normalise_cpu_name`` of its model); a test rebuilds the table.
    A run looks up one model with :func:`cpu_row` instead (it reads no other row).
    """
    import csv

    rows = csv.DictReader(CPU_TABLE.read_text().splitlines())
    return {row["key"]: (row["model"], float(row["tdp_w"])) for row in rows}


def cpu_row(key: str) -> tuple[str, float] | None:
    """The CPU table's (model as published, TDP in W) for one normalised name, or None (not in the table)."""
    row = table_row(CPU_TABLE, key)
    return (row[1], float(row[2])) if row is not None else None


def _cpuinfo_fields(cpuinfo: Path) -> dict[str, str]:
    """The first processor block of /proc/cpuinfo, keys lower-cased."""
    fields: dict[str, str] = {}
    try:
        text = cpuinfo.read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    return fields


def sysctl(name: str) -> str | None:
    """``sysctl -n NAME`` on macOS (None elsewhere or on failure; bounded at 2 s)."""
    if sys.platform != "darwin":
        return None
    import subprocess

    try:
        done = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def cpu_model_name(cpuinfo: Path = Path("/proc/cpuinfo"), read_sysctl: Callable[[str], str | None] = sysctl) -> str:
    """The CPU model as the OS reports it ("AMD EPYC", "Intel(R) Xeon(R) ...", macOS: "Apple M2 Pro")."""
    fields = _cpuinfo_fields(cpuinfo)
    for key in ("model name", "hardware"):
        if fields.get(key):
            return fields[key]
    if fields.get("cpu implementer") == APPLE_IMPLEMENTER:
        return "Apple silicon (model not reported)"  # an arm64 Linux VM on a Mac names no model
    brand = read_sysctl("machdep.cpu.brand_string")  # macOS: "Apple M1", "Apple M2 Pro", "Intel(R) Core(TM) ..."
    if brand:
        return brand
    import platform

    return platform.processor() or "unknown CPU"


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def cpu_topology(cpuinfo: Path = Path("/proc/cpuinfo"),
                 read_sysctl: Callable[[str], str | None] = sysctl) -> CpuTopology:
    """Logical CPUs per package ("siblings") and per core ("siblings" / "cpu cores"), and the CPUID identity.

    Without /proc/cpuinfo (macOS), ``hw.logicalcpu`` and ``hw.physicalcpu`` of the one package.
    """
    fields = _cpuinfo_fields(cpuinfo)
    virtual = "hypervisor" in fields.get("flags", "").split()
    vendor, family, model = fields.get("vendor_id", ""), _int(fields.get("cpu family")), _int(fields.get("model"))
    siblings = _int(fields.get("siblings"))
    if not fields:
        logical, physical = _int(read_sysctl("hw.logicalcpu")), _int(read_sysctl("hw.physicalcpu"))
        if logical and physical:
            return CpuTopology(logical, max(1, logical // physical), False)
    if siblings is None:
        return CpuTopology(None, 1, virtual, vendor, family, model)
    cores = _int(fields.get("cpu cores"))
    per_core = max(1, siblings // cores) if cores else 1
    return CpuTopology(siblings, per_core, virtual, vendor, family, model)


class CpuEstimateReader:
    """Estimated CPU energy, read as a cumulative counter in joules.

    TDP basis: busy CPU-seconds × W per thread. CCF basis (``model.ccf_min_w`` set): each interval,
    every logical CPU × its idle watts × seconds + busy CPU-seconds × (max − min) (CCF's
    ``min + utilisation × (max − min)`` per vCPU); in process and container scope the tree's (the cgroup's)
    own busy CPU-seconds and its share (of the machine's busy CPU time) of the idle watts.
    """

    domain = Domain.CPU
    kind = Kind.COUNTER
    method = Method.ESTIMATE
    share = Share.NONE
    wrap_j = None

    def __init__(self, busy_seconds: Callable[[], float], model: CpuPowerModel, scope: str,
                 machine_busy_seconds: Callable[[], float] | None = None, logical_cpus: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = f"cpu-estimate:{scope}"
        self.scope = Scope.NODE if scope == "machine" else Scope.PROCESS
        self._scope_word = scope
        # a process's or a container's busy time is a share of the machine's: charged its own busy time and
        # that share of the idle watts (a container is counted once per node but is not the whole node)
        self._shared = scope != "machine"
        self._busy_seconds = busy_seconds
        self.model = model
        self._w_per_thread = model.w_per_thread  # read() runs cold at every sample: one attribute, not two
        self._ccf = model.ccf_min_w is not None and model.ccf_max_w is not None and machine_busy_seconds is not None
        self._machine = machine_busy_seconds
        self._cpus = logical_cpus or os.cpu_count() or 1
        self._clock = clock
        self._last: tuple[float, float, float] | None = None  # (time, machine busy, scope busy)
        self._total_j = 0.0
        self._seconds = 0.0  # wall time and machine busy CPU-seconds seen, for the measured utilisation
        self._machine_busy = 0.0
        self._busy_first: float | None = None  # the scope's busy CPU-seconds at the first and the latest read
        self._busy_last = 0.0

    def utilisation(self) -> float | None:
        """The machine's measured CPU utilisation so far (CCF basis; None before two reads)."""
        if not self._ccf or self._seconds <= 0:
            return None
        return min(max(self._machine_busy / (self._cpus * self._seconds), 0.0), 1.0)

    def figures(self) -> dict[str, object]:
        """The figure in use: W per thread (CCF basis: at the measured utilisation), its range, source, basis,
        and the scope's busy CPU-seconds between its first and latest reads."""
        point, util = self.model.w_per_thread, self.utilisation()
        if util is not None:
            assert self.model.ccf_min_w is not None and self.model.ccf_max_w is not None
            point = self.model.ccf_min_w + util * (self.model.ccf_max_w - self.model.ccf_min_w)
        busy = self._busy_last - self._busy_first if self._busy_first is not None else None
        return {"cpu": self.model.cpu_name, "w_per_thread": point, "w_low": self.model.low,
                "w_high": self.model.high, "source": self.model.source, "basis": self.model.basis,
                "utilisation": util, "busy_cpu_s": busy}

    @property
    def description(self) -> str:
        """Figure, range and source, as ``carbonstep info``, the report and its summary print them."""
        f = self.figures()
        util = f["utilisation"]
        at = f" at {util:.0%} measured utilisation" if isinstance(util, float) else ""
        how = ("idle W × logical CPUs + busy CPU time × (max − min)" if self._ccf else "busy CPU time")
        share = f"; idle W by the {self._scope_word}'s share of busy CPU time" if self._ccf and self._shared else ""
        return (f"{self._scope_word} {how}: {f['w_per_thread']:.2f} W per thread{at} (range {self.model.low:.2f}–"
                f"{self.model.high:.2f} W; {self.model.source or 'estimate'}: {self.model.basis}){share}")

    def read(self) -> float:
        if not self._ccf:
            busy = self._busy_last = self._busy_seconds()
            if self._busy_first is None:
                self._busy_first = busy
            return busy * self._w_per_thread
        assert self._machine is not None and self.model.ccf_min_w is not None and self.model.ccf_max_w is not None
        now = (self._clock(), self._machine(), self._busy_seconds())
        last, busy_before, self._busy_last = self._last, self._busy_last, now[2]
        if self._busy_first is None:
            self._busy_first = now[2]
        if last is None:
            self._last = now
            return self._total_j
        low, span = self.model.ccf_min_w, self.model.ccf_max_w - self.model.ccf_min_w
        if self._shared:  # its own busy time at every read; its share of idle watts once the
            self._total_j += max(now[2] - busy_before, 0.0) * span  # machine's busy time moved (read ≤ 1/s)
            if now[1] == last[1]:
                return self._total_j
        self._last = now
        seconds, machine = max(now[0] - last[0], 0.0), max(now[1] - last[1], 0.0)
        self._seconds += seconds
        self._machine_busy += machine
        idle_j = self._cpus * seconds * low
        if self._shared:
            idle_j *= min(max(now[2] - last[2], 0.0) / machine, 1.0) if machine > 0 else 0.0
        else:
            idle_j += machine * span
        self._total_j += idle_j
        return self._total_j

    def close(self) -> None:
        pass


class RamEstimateReader:
    """Estimated memory power: resident GiB × 0.375 W/GiB (eco2AI)."""

    domain = Domain.RAM
    kind = Kind.POWER
    method = Method.ESTIMATE
    share = Share.NONE
    wrap_j = None

    def __init__(self, memory_bytes: Callable[[], float], scope: str) -> None:
        self.name = f"ram-estimate:{scope}"
        self.scope = Scope.NODE if scope == "machine" else Scope.PROCESS
        self._memory_bytes = memory_bytes
        self._w_per_byte = RAM_W_PER_GIB / BYTES_PER_GIB  # read() runs cold at every sample: no global look-ups
        self.description = f"{scope} resident memory × {RAM_W_PER_GIB} W/GiB (eco2AI model)"

    def read(self) -> float:
        return self._memory_bytes() * self._w_per_byte

    def close(self) -> None:
        pass
