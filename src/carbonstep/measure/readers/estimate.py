"""Estimates where no hardware counter is readable.

* CPU: busy CPU-seconds × watts per logical CPU = the model's TDP / its logical CPUs per
  package. TDPs come from ``data/cpu_power.csv`` (CodeCarbon's CPU table, built by
  ``scripts/build_cpu_data.py``), matched on the whole normalised model name, never a substring.
  That table has no core counts, so the logical CPUs per package come from the model name
  ("AMD EPYC 7763 64-Core Processor") or else from /proc/cpuinfo ("siblings"); in a VM the
  latter is the VM's share of the package, which makes the estimate an upper bound. A CPU not
  in the table, such as the bare "AMD EPYC" a VM reports, gets the median TDP of the table's
  models of the same family; the report names which. The busy CPU-seconds are a cumulative
  counter, so the estimate has no integration error.
* RAM: 0.375 W per GiB of resident memory (eco2AI's model), integrated over time.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from carbonstep.measure.readers.base import Domain, Kind, Method, Scope, Share

#: W per GiB of memory in use: eco2AI's RAM model, ``memory used (GiB) * (3 / 8)`` W
#: (eco2ai 0.3.12, ``eco2ai/tools/tools_ram.py``, ``RAM.calculate_consumption``; Apache-2.0).
RAM_W_PER_GIB = 3 / 8
BYTES_PER_GIB = 1024**3
FAMILIES = ("EPYC", "Ryzen", "Xeon", "Core")
CPU_TABLE = Path(__file__).with_name("data") / "cpu_power.csv"
APPLE_IMPLEMENTER = "0x61"  #: "CPU implementer" of Apple silicon in an arm64 /proc/cpuinfo


@dataclass(frozen=True)
class CpuPowerModel:
    """Watts drawn per busy logical CPU, and how that figure was found."""

    cpu_name: str
    w_per_thread: float
    basis: str


@dataclass(frozen=True)
class CpuTopology:
    """Logical CPUs per package and per core, as /proc/cpuinfo reports them (None: not reported)."""

    threads_per_package: int | None
    threads_per_core: int
    virtual: bool = False  #: the "hypervisor" flag: a VM, whose siblings are its share of the package


def normalise_cpu_name(name: str) -> str:
    """The model as a lookup key: no (R)/(TM), clock, "CPU"/"Processor"/"N-Core", "Nth Gen", vendor.

    "13th Gen Intel(R) Core(TM) i9-13900K" and "Intel Core i9-13900K" both give "core i9-13900k";
    "AMD EPYC 7763 64-Core Processor" gives "epyc 7763".
    """
    name = re.sub(r"\((?:R|TM|tm|r)\)", "", name)
    name = re.sub(r"\([^)]*\)", " ", name.split("@", 1)[0])
    name = re.split(r"\s(?:with|w/)\s", name, maxsplit=1)[0]
    name = re.sub(r"\b\d+(?:st|nd|rd|th) Gen\b", " ", name, flags=re.IGNORECASE)
    name = re.sub(r"(?<![\w-])(?:CPU|Processor|\S+-Core)(?![\w-])", " ", name, flags=re.IGNORECASE)
    words = name.lower().split()
    if words and words[0] in ("amd", "intel"):
        words = words[1:]
    return " ".join(words)


@lru_cache(maxsize=1)
def cpu_table() -> dict[str, tuple[str, float]]:
    """The shipped CPU table: normalised name → (model as published, TDP in W).

    The build script writes each row's key (``normalise_cpu_name`` of its model); a test rebuilds the table.
    """
    import csv

    rows = csv.DictReader(CPU_TABLE.read_text().splitlines())
    return {row["key"]: (row["model"], float(row["tdp_w"])) for row in rows}


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


def cpu_model_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU model as the OS reports it ("AMD EPYC", "Intel(R) Xeon(R) ...")."""
    fields = _cpuinfo_fields(cpuinfo)
    for key in ("model name", "hardware"):
        if fields.get(key):
            return fields[key]
    if fields.get("cpu implementer") == APPLE_IMPLEMENTER:
        return "Apple silicon (model not reported)"  # an arm64 Linux VM on a Mac names no model
    import platform

    return platform.processor() or "unknown CPU"


def cpu_topology(cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuTopology:
    """Logical CPUs per package ("siblings") and per core ("siblings" / "cpu cores")."""
    fields = _cpuinfo_fields(cpuinfo)
    virtual = "hypervisor" in fields.get("flags", "").split()
    try:
        siblings = int(fields["siblings"])
    except (KeyError, ValueError):
        return CpuTopology(None, 1, virtual)
    try:
        per_core = max(1, siblings // int(fields["cpu cores"]))
    except (KeyError, ValueError, ZeroDivisionError):
        per_core = 1
    return CpuTopology(siblings, per_core, virtual)


def _threads_per_package(cpu_name: str, topology: CpuTopology) -> tuple[int, str]:
    named = re.search(r"\b(\d+)-Core\b", cpu_name, flags=re.IGNORECASE)
    if named:
        threads = int(named.group(1)) * topology.threads_per_core
        return threads, f"{threads} logical CPUs per package ({named.group(0)} in the model name)"
    if topology.threads_per_package and topology.virtual:
        return topology.threads_per_package, (
            f"{topology.threads_per_package} logical CPUs per package (/proc/cpuinfo siblings of a VM: the "
            "host's package is larger, so this is an upper bound)")
    if topology.threads_per_package:
        return topology.threads_per_package, f"{topology.threads_per_package} logical CPUs per package " \
                                             "(/proc/cpuinfo siblings)"
    threads = os.cpu_count() or 1
    return threads, f"{threads} logical CPUs (no package topology reported; an upper bound)"


def cpu_power_model(cpu_name: str, topology: CpuTopology | None = None) -> CpuPowerModel:
    """TDP per logical CPU of ``cpu_name``: exact model, else its family's median TDP, else all models'."""
    import statistics

    threads, threads_basis = _threads_per_package(cpu_name, topology or cpu_topology())
    wanted = normalise_cpu_name(cpu_name)
    table = cpu_table()
    if wanted in table:
        model, tdp_w = table[wanted]
        return CpuPowerModel(cpu_name, tdp_w / threads,
                             f"{model} in the CPU table: TDP {tdp_w:g} W / {threads_basis}")
    for family in FAMILIES:
        if family.lower() in wanted.split():
            peers = [tdp for key, (_, tdp) in table.items() if family.lower() in key.split()]
            tdp_w = statistics.median(peers)
            return CpuPowerModel(cpu_name, tdp_w / threads,
                                 f"'{cpu_name}' not in the CPU table; median TDP {tdp_w:g} W of its {len(peers)} "
                                 f"{family} models / {threads_basis}")
    tdp_w = statistics.median(tdp for _, tdp in table.values())
    return CpuPowerModel(cpu_name, tdp_w / threads,
                         f"'{cpu_name}' not in the CPU table; median TDP {tdp_w:g} W of all {len(table)} models / "
                         f"{threads_basis}")


class CpuEstimateReader:
    """Estimated CPU energy: a cumulative counter of busy CPU-seconds × W per thread."""

    domain = Domain.CPU
    kind = Kind.COUNTER
    method = Method.ESTIMATE
    share = Share.NONE
    wrap_j = None

    def __init__(self, busy_seconds: Callable[[], float], model: CpuPowerModel, scope: str) -> None:
        self.name = f"cpu-estimate:{scope}"
        self.scope = Scope.NODE if scope == "machine" else Scope.PROCESS
        self._busy_seconds = busy_seconds
        self.model = model
        self._w_per_thread = model.w_per_thread  # read() runs cold at every sample: one attribute, not two
        self.description = (
            f"{scope} busy CPU time × {model.w_per_thread:.2f} W per thread ({model.basis})"
        )

    def read(self) -> float:
        return self._busy_seconds() * self._w_per_thread

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
