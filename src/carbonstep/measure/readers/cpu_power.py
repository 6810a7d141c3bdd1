"""Watts per logical CPU ("thread") of the chip, with their range and basis, never from the VM's size.

The tables in ``data/`` are built by ``scripts/build_cpu_data.py`` from recorded inputs (SOURCES.md):

* ``cpu_power.csv``: TDP by model (CodeCarbon 3.3.2, MIT); ``cpu_cores.csv``: TDP and cores by model
  (Green Algorithms, CC BY 4.0).
* ``cpu_arch.csv``: CPUID vendor/family/model → microarchitecture (google/cpu_features, Apache-2.0) and
  Cloud Carbon Footprint's processor type; ``cpu_ccf.csv``: CCF's min and max W per vCPU by type
  (derived by CCF from SPECpower; Apache-2.0).

Order: the model's TDP over the chip's own core count (model name or Green Algorithms) × threads per
core; on bare metal without a core count, TDP over /proc/cpuinfo ``siblings`` (the whole package);
else, for a generic EPYC or Xeon name, CCF's range for the microarchitecture, interpolated by
utilisation (``min + u × (max − min)``, 50 % until measured, as CCF does); else the family's median TDP.
"""

from __future__ import annotations

import csv
import os
import re
from functools import lru_cache
from pathlib import Path

from carbonstep._record import NamedTuple
from carbonstep.measure.readers.estimate import (
    FAMILIES,
    CpuPowerModel,
    CpuTopology,
    cpu_row,
    cpu_topology,
    normalise_cpu_name,
    table_row,
)

DATA = Path(__file__).with_name("data")
CCF_SOURCE = "Cloud Carbon Footprint (SPECpower-derived W per vCPU, Apache-2.0)"
CCF_FALLBACK_UTILISATION = 0.5  #: CCF's utilisation when none is measured (its methodology: 2020 hyperscale mean)
TDP_SOURCE = "CodeCarbon 3.3.2 TDP table (MIT)"
GA_SOURCE = "Green Algorithms TDP_cpu.csv (CC BY 4.0)"
SERVER_WORD = {"AuthenticAMD": "epyc", "GenuineIntel": "xeon"}  #: CCF's types are server parts


class CcfRange(NamedTuple):
    """CCF's W per vCPU at 0 % and 100 % utilisation for one microarchitecture (or several: the widest)."""

    name: str
    min_w: float
    max_w: float

    def at(self, utilisation: float) -> float:
        """CCF's interpolation: ``min + utilisation × (max − min)``."""
        return self.min_w + min(max(utilisation, 0.0), 1.0) * (self.max_w - self.min_w)


def _rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader((DATA / name).read_text(encoding="utf-8").splitlines()))


@lru_cache(maxsize=1)
def cores_table() -> dict[str, tuple[str, float, int]]:
    """Green Algorithms' models: normalised name → (model, TDP W, cores)."""
    return {r["key"]: (r["model"], float(r["tdp_w"]), int(r["cores"])) for r in _rows("cpu_cores.csv")}


def cores_row(key: str) -> tuple[str, float, int] | None:
    """Green Algorithms' (model, TDP W, cores) for one normalised name, or None; reads no other row."""
    row = table_row(DATA / "cpu_cores.csv", key)
    return (row[1], float(row[2]), int(row[3])) if row is not None else None


def family_tdp(family: str | None) -> tuple[int, float, float, float]:
    """(models, median, lowest, highest TDP W) of a family's models in the CPU table (None: of all its models),
    precomputed by the build script in ``cpu_families.csv``."""
    row = table_row(DATA / "cpu_families.csv", family or "*")
    if row is None:
        raise LookupError(f"cpu_families.csv has no row for {family!r}")
    return int(row[1]), float(row[2]), float(row[3]), float(row[4])


@lru_cache(maxsize=1)
def arch_table() -> dict[tuple[str, int, int], tuple[str, str]]:
    """(vendor_id, family, model) → (microarchitecture(s), CCF type(s)), "|"-separated."""
    return {(r["vendor_id"], int(r["family"]), int(r["model"])): (r["microarchitecture"], r["ccf_type"])
            for r in _rows("cpu_arch.csv")}


@lru_cache(maxsize=1)
def ccf_table() -> dict[str, tuple[str, float, float]]:
    """CCF type → (name, min W, max W) per vCPU; "MEDIAN" for an unknown microarchitecture."""
    return {r["ccf_type"]: (r["name"], float(r["min_w"]), float(r["max_w"])) for r in _rows("cpu_ccf.csv")}


def arch_row(vendor: str, family: int, model: int) -> tuple[str, str] | None:
    """:func:`arch_table`'s entry for one CPUID identity, or None; reads no other row."""
    row = table_row(DATA / "cpu_arch.csv", vendor, str(family), str(model))
    return (row[3], row[4]) if row is not None else None


def ccf_row(ccf_type: str) -> tuple[str, float, float]:
    """:func:`ccf_table`'s entry for one CCF type; reads no other row (a type the table lacks: KeyError, as there)."""
    row = table_row(DATA / "cpu_ccf.csv", ccf_type)
    if row is None:
        raise KeyError(ccf_type)
    return row[1], float(row[2]), float(row[3])


def ccf_range(topology: CpuTopology, cpu_name: str) -> CcfRange | None:
    """CCF's range for this CPU's microarchitecture, or None (no CPUID, not a server name, no CCF type)."""
    if topology.family is None or topology.model is None:
        return None
    word = SERVER_WORD.get(topology.vendor)
    if word is None or word not in normalise_cpu_name(cpu_name).split():
        return None
    found = arch_row(topology.vendor, topology.family, topology.model)
    if found is None:
        return None
    uarch, types = found
    label = f"family {topology.family} model {topology.model} = {uarch.replace('|', ' or ')} (cpu_features)"
    if not types:
        name, low, high = ccf_row("MEDIAN")
        return CcfRange(f"{label}, not in CCF's table: CCF's {name}", low, high)
    rows = [ccf_row(t) for t in types.split("|")]
    names = " or ".join(r[0] for r in rows)
    return CcfRange(f"{label} → CCF {names}", min(r[1] for r in rows), max(r[2] for r in rows))


def _named_cores(cpu_name: str) -> tuple[int, str] | None:
    named = re.search(r"\b(\d+)-Cores?\b", cpu_name, flags=re.IGNORECASE)  # "64-Core", "64-Cores" (Threadripper PRO)
    return (int(named.group(1)), f"{named.group(0)} in the model name") if named else None


def _from_tdp(cpu_name: str, model: str, tdp_w: float, source: str, cores: tuple[int, str],
              topology: CpuTopology) -> CpuPowerModel:
    count, where = cores
    per_core = tdp_w / count
    head = f"{model} in the {source}: TDP {tdp_w:g} W / {count} cores ({where})"
    if topology.threads_per_core > 1 or not topology.virtual:
        threads = count * topology.threads_per_core
        return CpuPowerModel(cpu_name, tdp_w / threads,
                             f"{head} × {topology.threads_per_core} threads per core (/proc/cpuinfo) = "
                             f"{threads} threads; range: none published", tdp_w / threads, tdp_w / threads, source)
    low, high = per_core / 2, per_core
    return CpuPowerModel(cpu_name, (low + high) / 2,
                         f"{head}; the VM reports 1 thread per core, so SMT may be hidden: 1 or 2 threads per "
                         f"core, {low:.2f}–{high:.2f} W, the middle taken", low, high, source)


def cpu_power_model(cpu_name: str, topology: CpuTopology | None = None) -> CpuPowerModel:
    """Watts per busy logical CPU of ``cpu_name`` with range and basis (see the module's docstring)."""
    topology = topology or cpu_topology()
    key = normalise_cpu_name(cpu_name)
    tdp_row, ga_row = cpu_row(key), cores_row(key)
    cores = _named_cores(cpu_name) or (
        (ga_row[2], "Green Algorithms' n_cores") if ga_row else None)
    if tdp_row and cores:
        return _from_tdp(cpu_name, tdp_row[0], tdp_row[1], "CPU table", cores, topology)
    if ga_row and cores:
        return _from_tdp(cpu_name, ga_row[0], ga_row[1], GA_SOURCE, cores, topology)
    if tdp_row and topology.threads_per_package and not topology.virtual:
        threads = topology.threads_per_package
        w = tdp_row[1] / threads
        return CpuPowerModel(cpu_name, w, f"{tdp_row[0]} in the CPU table: TDP {tdp_row[1]:g} W / {threads} "
                                          "logical CPUs per package (/proc/cpuinfo siblings); range: none published",
                             w, w, TDP_SOURCE)
    ccf = ccf_range(topology, cpu_name)
    if ccf is not None:
        point = ccf.at(CCF_FALLBACK_UTILISATION)
        return CpuPowerModel(cpu_name, point,
                             f"{ccf.name}: {ccf.min_w:g}–{ccf.max_w:g} W per vCPU at 0–100 % utilisation, "
                             f"min + utilisation × (max − min), {CCF_FALLBACK_UTILISATION:.0%} until measured",
                             ccf.min_w, ccf.max_w, CCF_SOURCE, ccf_min_w=ccf.min_w, ccf_max_w=ccf.max_w)
    return _fallback(cpu_name, key, tdp_row, topology)


def _fallback(cpu_name: str, key: str, tdp_row: tuple[str, float] | None, topology: CpuTopology) -> CpuPowerModel:
    threads, threads_basis = _threads_per_package(topology)
    if tdp_row:
        w = tdp_row[1] / threads
        return CpuPowerModel(cpu_name, w, f"{tdp_row[0]} in the CPU table: TDP {tdp_row[1]:g} W / {threads_basis}",
                             w, w, TDP_SOURCE)
    family = next((f for f in FAMILIES if f.lower() in key.split()), None)
    count, tdp_w, low_w, high_w = family_tdp(family)
    which = f"its {count} {family} models" if family else f"all {count} models"
    return CpuPowerModel(cpu_name, tdp_w / threads,
                         f"'{cpu_name}' not in the CPU table; median TDP {tdp_w:g} W of {which} (range "
                         f"{low_w:g}–{high_w:g} W) / {threads_basis}",
                         low_w / threads, high_w / threads, TDP_SOURCE)


def _threads_per_package(topology: CpuTopology) -> tuple[int, str]:
    if topology.threads_per_package and topology.virtual:
        return topology.threads_per_package, (
            f"{topology.threads_per_package} logical CPUs per package (/proc/cpuinfo siblings of a VM: the "
            "host's package is larger, so this is an upper bound)")
    if topology.threads_per_package:
        return topology.threads_per_package, f"{topology.threads_per_package} logical CPUs per package " \
                                             "(/proc/cpuinfo siblings)"
    threads = os.cpu_count() or 1
    return threads, f"{threads} logical CPUs (no package topology reported; an upper bound)"
