#!/usr/bin/env python3
"""Build the CPU tables in measure/readers/data/ from their recorded inputs.

Maintainers only. ``cpu_power.csv`` comes from ``codecarbon/data/hardware/cpu_power.csv`` of the
``codecarbon==3.3.2`` wheel (MIT), kept in ``scripts/data_inputs/codecarbon-3.3.2/``;
re-obtain it with ``pip download --no-deps codecarbon==3.3.2`` and unzip. ``cpu_cores.csv``,
``cpu_arch.csv`` and ``cpu_ccf.csv`` come from Green Algorithms, google/cpu_features and Cloud
Carbon Footprint (see ``scripts/cpu_arch_inputs.py`` and SOURCES.md). Usage:

    python scripts/build_cpu_data.py [--check]

Rows are keyed by the normalised model name the reader looks up (``normalise_cpu_name``).
Rows with no positive TDP are dropped; rows that normalise to the same key keep one name when
their TDPs agree and are dropped when they disagree (the lookup could not choose). The
input's name, version and sha256 go to ``SOURCES.md`` beside the table. ``--check`` writes
nothing and exits 1 if the shipped files differ from what the input gives.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))

import cpu_arch_inputs as arch  # noqa: E402

from carbonstep.measure.readers.estimate import FAMILIES, normalise_cpu_name  # noqa: E402

INPUT = REPO / "scripts" / "data_inputs" / "codecarbon-3.3.2" / "cpu_power.csv"
INPUT_NAME = "codecarbon==3.3.2: codecarbon/data/hardware/cpu_power.csv"
DATA_DIR = REPO / "src" / "carbonstep" / "measure" / "readers" / "data"
TABLE = DATA_DIR / "cpu_power.csv"
SOURCES = DATA_DIR / "SOURCES.md"
CORES = DATA_DIR / "cpu_cores.csv"
ARCH = DATA_DIR / "cpu_arch.csv"
CCF = DATA_DIR / "cpu_ccf.csv"
FAMILY_TABLE = DATA_DIR / "cpu_families.csv"
#: every input with its name, how to re-obtain it and its licence, in the order SOURCES.md lists them
INPUTS = (
    (INPUT, INPUT_NAME, "`pip download --no-deps codecarbon==3.3.2`",
     "MIT, Copyright (c) 2019 Mila, BCG Gamma, CometML, Haverford College; Copyright (c) 2023 Code Carbon NGO"),
    (arch.GREEN_ALGORITHMS, "GreenAlgorithms/green-algorithms-tool@30df2feead1c7f5db87a3d86ca1239470a0cd415: "
     "data/latest/TDP_cpu.csv", "git show of that commit", "CC BY 4.0 (Lannelongue, Grealey, Inouye, "
     "\"Green Algorithms: Quantifying the Carbon Footprint of Computation\", Adv. Sci. 2021)"),
    (arch.CPU_FEATURES, "google/cpu_features@044ec8c0f785895d312b6c37845ec5d8811c6406: "
     "src/impl_x86__base_implementation.inl", "git show of that commit", "Apache-2.0, Copyright Google LLC"),
    (arch.CCF_CONSTANTS, "cloud-carbon-footprint/cloud-carbon-footprint@b7a049c7d25c0022919ab9010199dd9e77aa4577: "
     "packages/gcp/src/domain/GcpFootprintEstimationConstants.ts", "git show of that commit",
     "Apache-2.0, (c) 2021 Thoughtworks, Inc."),
    (arch.CCF_TYPES, "cloud-carbon-footprint/cloud-carbon-footprint@b7a049c7d25c0022919ab9010199dd9e77aa4577: "
     "packages/core/src/compute/ComputeProcessorTypes.ts", "git show of that commit",
     "Apache-2.0, (c) 2021 Thoughtworks, Inc."),
)


@dataclass(frozen=True)
class CpuBuild:
    """The table text, the sources text, and what was dropped on the way (for the maintainer)."""

    table: str
    sources: str
    dropped: tuple[str, ...]
    others: dict[Path, str]  #: the other tables: cpu_cores.csv, cpu_arch.csv, cpu_ccf.csv, cpu_families.csv


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tdp(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _preferred(names: list[str]) -> str:
    """The name to ship for a key: one with its vendor first, then the shortest, then alphabetical."""
    return min(names, key=lambda n: (not n.startswith(("AMD ", "Intel ", "Apple ")), len(n), n))


def build(input_csv: Path = INPUT) -> CpuBuild:
    """The shipped table and SOURCES.md as the input gives them."""
    by_key: dict[str, list[tuple[str, float]]] = {}
    dropped: list[str] = []
    with input_csv.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            name = " ".join(row["Name"].split())
            tdp_w = _tdp(row["TDP"])
            key = normalise_cpu_name(name)
            if tdp_w is None or not key:
                dropped.append(f"{name!r}: no usable TDP ({row['TDP']!r})")
                continue
            by_key.setdefault(key, []).append((name, tdp_w))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["key", "model", "tdp_w"])  # the lookup key, so a run does not normalise 4,700 names
    kept: dict[str, float] = {}
    for key in sorted(by_key):
        rows = by_key[key]
        if len({tdp for _, tdp in rows}) > 1:
            dropped.append(f"{key!r}: rows disagree ({'; '.join(f'{n} {t:g} W' for n, t in rows)})")
            continue
        writer.writerow([key, _preferred([n for n, _ in rows]), f"{rows[0][1]:g}"])
        kept[key] = rows[0][1]
    others = {CORES: cores_table(), ARCH: arch_table(), CCF: ccf_table(), FAMILY_TABLE: families_table(kept)}
    counts = {path.name: text.count("\n") - 1 for path, text in others.items()}
    return CpuBuild(out.getvalue(), sources_text(input_csv, len(kept), len(dropped), counts), tuple(dropped), others)


def _csv(header: list[str], rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def families_table(tdp_by_key: dict[str, float]) -> str:
    """Per family (EPYC, Ryzen, Xeon, Core, Apple: a word of the key) and for all models (family ``*``): how many
    models, their median, lowest and highest TDP; a run reads one row instead of the whole table."""
    rows: list[list[object]] = []
    for family in (*FAMILIES, "*"):
        peers = [tdp for key, tdp in tdp_by_key.items() if family == "*" or family.lower() in key.split()]
        if peers:
            rows.append([family, len(peers), f"{statistics.median(peers):g}", f"{min(peers):g}", f"{max(peers):g}"])
    return _csv(["family", "models", "median_tdp_w", "min_tdp_w", "max_tdp_w"], rows)


def cores_table() -> str:
    """Green Algorithms' models with TDP and core count, keyed like cpu_power.csv (duplicate keys dropped)."""
    by_key: dict[str, list[tuple[str, float, int]]] = {}
    for name, tdp_w, cores in arch.green_algorithms_cores():
        by_key.setdefault(normalise_cpu_name(name), []).append((name, tdp_w, cores))
    rows: list[list[object]] = [[k, v[0][0], f"{v[0][1]:g}", v[0][2]] for k, v in sorted(by_key.items())
                                if k and len({(t, c) for _, t, c in v}) == 1]
    return _csv(["key", "model", "tdp_w", "cores"], rows)


def arch_table() -> str:
    """vendor_id, family, model (decimal, as /proc/cpuinfo prints them) → microarchitecture and CCF type."""
    rows: list[list[object]] = []
    for vendor, family, model, names in arch.microarchitectures():
        ccf = [arch.CPU_FEATURES_TO_CCF.get(n) for n in names.split("|")]
        rows.append([vendor, family, model, names, "|".join(c for c in ccf if c) if all(ccf) else ""])
    return _csv(["vendor_id", "family", "model", "microarchitecture", "ccf_type"], rows)


def ccf_table() -> str:
    """CCF's min and max W per vCPU for each CPU type it has figures for, and its medians (type MEDIAN)."""
    names = arch.ccf_type_names()
    watts, (median_low, median_high) = arch.ccf_watts()
    rows: list[list[object]] = [[t, names[t], f"{lo:g}", f"{hi:g}"] for t, (lo, hi) in sorted(watts.items())]
    rows.append(["MEDIAN", "median of all CCF's GCP microarchitectures", f"{median_low:g}", f"{median_high:g}"])
    return _csv(["ccf_type", "name", "min_w", "max_w"], rows)


def sources_text(input_csv: Path, kept: int, dropped: int, counts: dict[str, int]) -> str:
    """SOURCES.md for the CPU tables: each input by name, version, checksum and licence, and the method."""
    inputs = "\n".join(f"- input: `{name}`, re-obtained with {how}\n  - sha256 of the input: "
                       f"`{sha256(input_csv if path == INPUT else path)}`\n  - licence: {licence}"
                       for path, name, how, licence in INPUTS)
    return f"""# Data sources

Generated by `scripts/build_cpu_data.py`; do not edit by hand.

- `cpu_power.csv`: {kept} CPU models (model name, TDP in W), from CodeCarbon. {dropped} input rows
  were left out: no usable TDP, or several rows with one model name and different TDPs.
- `cpu_cores.csv`: {counts["cpu_cores.csv"]} models with TDP and core count, from Green Algorithms.
- `cpu_arch.csv`: {counts["cpu_arch.csv"]} CPUID (vendor, family, model) → microarchitecture rows, from
  google/cpu_features; where that model maps to several microarchitectures (by stepping), all are listed.
  `ccf_type` joins the microarchitecture to Cloud Carbon Footprint's processor type (a join of names,
  in `scripts/cpu_arch_inputs.py`, empty where CCF has no such type).
- `cpu_ccf.csv`: {counts["cpu_ccf.csv"]} rows: Cloud Carbon Footprint's min and max W per vCPU for each CPU
  microarchitecture (derived by CCF from SPECpower results; 0 % and 100 % utilisation), as CCF's GCP
  constants apply them, and CCF's medians for an unknown microarchitecture.
- `cpu_families.csv`: {counts["cpu_families.csv"]} rows: the number of models and the median, lowest and highest
  TDP of each family (EPYC, Ryzen, Xeon, Core, Apple; a word of the key) in `cpu_power.csv`, and of all its
  models (family `*`), computed from `cpu_power.csv` (so a run reads one row, not the whole table).

{inputs}

## How the CPU estimate uses them

Watts per logical CPU ("thread") come from the chip, never from the size of the VM:

1. The model is in CodeCarbon's or Green Algorithms' table and its core count is known (from "N-Core(s)"
   in the model name, else Green Algorithms' `n_cores`): TDP / (cores × threads per core), threads per core
   from /proc/cpuinfo (`siblings` / `cpu cores`). A VM that reports one thread per core may hide SMT: the
   range is then TDP / (2 × cores) to TDP / cores and the figure their middle.
2. Bare metal, model in the table, no core count in any table: TDP / `siblings` (the whole package).
3. A generic name ("AMD EPYC", "Intel(R) Xeon(R) CPU @ 2.20GHz") or a VM without the chip's counts:
   the microarchitecture from /proc/cpuinfo (`vendor_id`, `cpu family`, `model`) via `cpu_arch.csv`,
   and CCF's min and max W per vCPU for it, interpolated as CCF's methodology does:
   `min + utilisation × (max − min)` per logical CPU, utilisation measured over the run (CCF's fallback,
   50 %, before any measurement). EPYC types only for names with "EPYC", Intel types only for "Xeon".
   A model with several candidate microarchitectures gets the widest of their ranges.
4. Otherwise the median TDP of the model's family (EPYC, Ryzen, Xeon, Core) in CodeCarbon's table, or of
   all models, per logical CPU, with the family's lowest and highest TDP as the range.
"""


def main() -> int:
    """Write (or with --check, compare) the CPU table and its SOURCES.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=INPUT)
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    result = build(args.input)
    targets = {TABLE: result.table, SOURCES: result.sources, **result.others}
    if args.check:
        stale = [str(p) for p, text in targets.items() if not p.exists() or p.read_text() != text]
        print("stale: " + ", ".join(stale) if stale else "up to date")
        return 1 if stale else 0
    for line in result.dropped:
        print("dropped", line)
    for path, text in targets.items():
        path.write_text(text)
    print(f"wrote {TABLE.relative_to(REPO)} ({result.table.count(chr(10)) - 1} models)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
