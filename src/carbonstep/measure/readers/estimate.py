"""Estimates where no hardware counter is readable.

* CPU: busy CPU-seconds × watts per logical CPU, from a shipped table of CPU models
  (``accounting/data/cpu_power.csv``: TDP / threads). A CPU not in the table, such as
  the bare "AMD EPYC" a VM reports, gets the median watts per thread of the table's
  models of the same family; the report names which. The busy CPU-seconds are a
  cumulative counter, so the estimate has no integration error.
* RAM: 0.375 W per GB of resident memory (the eco2AI model), integrated over time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from carbonstep.measure.readers.base import Domain, Kind, Method, Scope, Share

RAM_W_PER_GB = 0.375  # eco2AI (Budennyy et al., 2022)
BYTES_PER_GB = 1e9
FAMILIES = ("EPYC", "Ryzen", "Xeon", "Core")


@dataclass(frozen=True)
class CpuPowerModel:
    """Watts drawn per busy logical CPU, and how that figure was found."""

    cpu_name: str
    w_per_thread: float
    basis: str


def _normalise(name: str) -> str:
    name = re.sub(r"\((R|TM|tm|r)\)", "", name)
    name = re.sub(r"@.*$", "", name)
    name = re.sub(r"\b(CPU|Processor|\d+-Core)\b", "", name)
    return " ".join(name.split()).lower()


@lru_cache(maxsize=1)
def _cpu_table() -> tuple[tuple[str, float, str], ...]:
    import csv

    from carbonstep.accounting import DATA_DIR

    text = (DATA_DIR / "cpu_power.csv").read_text()
    return tuple(
        (row["model"], float(row["tdp_w"]) / int(row["threads"]), row["source"])
        for row in csv.DictReader(text.splitlines())
    )


def cpu_model_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU model as the OS reports it ("AMD EPYC", "Intel(R) Xeon(R) ...")."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def cpu_power_model(cpu_name: str) -> CpuPowerModel:
    """Look ``cpu_name`` up in the table; fall back to its family's median, then to all models'."""
    import statistics

    wanted = _normalise(cpu_name)
    table = _cpu_table()
    matches = [(m, w, s) for m, w, s in table if _normalise(m) in wanted]
    if matches:
        model, w, source = max(matches, key=lambda r: len(r[0]))
        return CpuPowerModel(cpu_name, w, f"{model} in the CPU table ({source}): TDP / threads")
    for family in FAMILIES:
        if family.lower() in wanted.split():
            peers = [w for m, w, _ in table if family.lower() in _normalise(m).split()]
            return CpuPowerModel(
                cpu_name,
                statistics.median(peers),
                f"'{cpu_name}' not in the CPU table; median TDP per thread of its "
                f"{len(peers)} {family} models",
            )
    every = [w for _, w, _ in table]
    return CpuPowerModel(
        cpu_name,
        statistics.median(every),
        f"'{cpu_name}' not in the CPU table; median TDP per thread of all {len(every)} models",
    )


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
        self.description = (
            f"{scope} busy CPU time × {model.w_per_thread:.2f} W per thread ({model.basis})"
        )

    def read(self) -> float:
        return self._busy_seconds() * self.model.w_per_thread

    def close(self) -> None:
        pass


class RamEstimateReader:
    """Estimated memory power: resident GB × 0.375 W/GB (eco2AI)."""

    domain = Domain.RAM
    kind = Kind.POWER
    method = Method.ESTIMATE
    share = Share.NONE
    wrap_j = None

    def __init__(self, memory_bytes: Callable[[], float], scope: str) -> None:
        self.name = f"ram-estimate:{scope}"
        self.scope = Scope.NODE if scope == "machine" else Scope.PROCESS
        self._memory_bytes = memory_bytes
        self.description = f"{scope} resident memory × {RAM_W_PER_GB} W/GB (eco2AI model)"

    def read(self) -> float:
        return self._memory_bytes() / BYTES_PER_GB * RAM_W_PER_GB

    def close(self) -> None:
        pass
