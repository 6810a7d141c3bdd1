"""Parsers for the CPU tables' inputs other than CodeCarbon's (used by ``scripts/build_cpu_data.py``).

* Cloud Carbon Footprint (CCF, Apache-2.0): min and max watts per vCPU by microarchitecture, from
  SPECpower results, as its GCP constants apply them (``GcpFootprintEstimationConstants.ts``), and the
  display names of its processor types (``ComputeProcessorTypes.ts``).
* google/cpu_features (Apache-2.0): CPUID vendor, family and model → microarchitecture
  (``GetX86Microarchitecture`` in ``src/impl_x86__base_implementation.inl``).
* Green Algorithms (CC BY 4.0): ``TDP_cpu.csv``, TDP and core count per model.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

INPUTS = Path(__file__).resolve().parent / "data_inputs"
CCF_DIR = INPUTS / "cloud-carbon-footprint-b7a049c"
CCF_CONSTANTS = CCF_DIR / "GcpFootprintEstimationConstants.ts"
CCF_TYPES = CCF_DIR / "ComputeProcessorTypes.ts"
CPU_FEATURES = INPUTS / "cpu_features-044ec8c" / "impl_x86__base_implementation.inl"
GREEN_ALGORITHMS = INPUTS / "green-algorithms-30df2fe" / "TDP_cpu.csv"

#: cpu_features' microarchitecture → CCF's processor type. A join of names, no figures. The Intel names are the
#: same microarchitectures under both projects' spellings. The EPYC generations are the server parts of AMD's
#: Zen generations: "EPYC 7003 processors identify as members of AMD CPU Family 19h, Model 01h" (WikiChip,
#: amd/cores/milan: EPYC 7003 "Milan", Zen 3), EPYC 7002 "Rome" is Zen 2 and EPYC 7001 "Naples" Zen (WikiChip,
#: amd/cores/rome and amd/cores/naples); the reader applies them to EPYC names only.
CPU_FEATURES_TO_CCF = {
    "INTEL_SNB": "SANDY_BRIDGE",
    "INTEL_IVB": "IVY_BRIDGE",
    "INTEL_HSW": "HASWELL",
    "INTEL_BDW": "BROADWELL",
    "INTEL_SKL": "SKYLAKE",
    "INTEL_CCL": "CASCADE_LAKE",
    "INTEL_CFL": "COFFEE_LAKE",
    "AMD_ZEN": "AMD_EPYC_1ST_GEN",
    "AMD_ZEN2": "AMD_EPYC_2ND_GEN",
    "AMD_ZEN3": "AMD_EPYC_3RD_GEN",
}
VENDORS = {  # cpu_features' vendor macros (include/cpuinfo_x86.h) → /proc/cpuinfo vendor_id
    "CPU_FEATURES_VENDOR_GENUINE_INTEL": "GenuineIntel",
    "CPU_FEATURES_VENDOR_AUTHENTIC_AMD": "AuthenticAMD",
    "CPU_FEATURES_VENDOR_HYGON_GENUINE": "HygonGenuine",
}


def ccf_type_names(path: Path = CCF_TYPES) -> dict[str, str]:
    """CCF's enum member → its display name ("AMD_EPYC_3RD_GEN" → "AMD EPYC 3rd Gen")."""
    return dict(re.findall(r"^\s*([A-Z0-9_]+) = '([^']+)',", path.read_text(), flags=re.MULTILINE))


def _watts_block(text: str, key: str) -> dict[str, float]:
    block = re.search(rf"{key}: \{{(.*?)\n  \}}", text, flags=re.DOTALL)
    if block is None:
        raise ValueError(f"{key} not found in the CCF constants")
    cpus = block.group(1).split("// GPUs")[0]
    return {m: float(v) for m, v in re.findall(r"COMPUTE_PROCESSOR_TYPES\.([A-Z0-9_]+)\]: ([0-9.]+)", cpus)}


def ccf_watts(path: Path = CCF_CONSTANTS) -> tuple[dict[str, tuple[float, float]], tuple[float, float]]:
    """CPU min and max W per vCPU by CCF processor type, and CCF's medians for an unknown one."""
    text = path.read_text()
    low = _watts_block(text, "MIN_WATTS_BY_COMPUTE_PROCESSOR")
    high = _watts_block(text, "MAX_WATTS_BY_COMPUTE_PROCESSOR")
    medians = tuple(float(re.search(rf"{k}: ([0-9.]+)", text).group(1))  # type: ignore[union-attr]
                    for k in ("MIN_WATTS_MEDIAN", "MAX_WATTS_MEDIAN"))
    return {k: (low[k], high[k]) for k in low if k in high}, (medians[0], medians[1])


def microarchitectures(path: Path = CPU_FEATURES) -> list[tuple[str, int, int, str]]:
    """(vendor_id, family, model, microarchitecture) rows; a model whose case returns several gives "A|B"."""
    text = path.read_text()
    body = text[text.index("X86Microarchitecture GetX86Microarchitecture("):]
    body = body[:body.index("\n}\n")]
    rows: list[tuple[str, int, int, str]] = []
    for part in re.split(r"if \(IsVendorByX86Info\(info, ", body)[1:]:
        vendor = VENDORS.get(part.split(")", 1)[0])
        if vendor is None:
            continue
        cases: list[tuple[int, int]] = []
        returns: list[str] = []
        for line in part.splitlines():
            case = re.search(r"case CPUID\((0x[0-9A-Fa-f]+), (0x[0-9A-Fa-f]+)\):", line)
            if case:
                if returns:
                    rows += [(vendor, f, m, "|".join(sorted(set(returns)))) for f, m in cases]
                    cases, returns = [], []
                cases.append((int(case.group(1), 16), int(case.group(2), 16)))
                continue
            ret = re.search(r"return ([A-Z0-9_]+);", line)
            if ret and cases and ret.group(1) != "X86_UNKNOWN":
                returns.append(ret.group(1))
            if re.search(r"^\s*default:", line) and cases:
                rows += [(vendor, f, m, "|".join(sorted(set(returns)))) for f, m in cases if returns]
                cases, returns = [], []
    return sorted(set(rows))


def green_algorithms_cores(path: Path = GREEN_ALGORITHMS) -> list[tuple[str, float, int]]:
    """(model, TDP W, cores) from Green Algorithms' TDP_cpu.csv (its first line is a units line)."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    rows = []
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        name = " ".join((row.get("model") or "").split())
        try:
            tdp_w, cores = float(row["TDP"]), int(row["n_cores"])
        except (TypeError, ValueError):
            continue  # the "Any" row: no TDP, no cores
        if name and tdp_w > 0 and cores > 0:
            rows.append((name, tdp_w, cores))
    return rows
