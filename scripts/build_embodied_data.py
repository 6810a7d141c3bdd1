#!/usr/bin/env python3
"""Build accounting/data/embodied.csv, service_life.csv and EMBODIED_SOURCES.md from recorded inputs.

Maintainers only. Each input is a small JSON file in ``scripts/data_inputs/embodied/`` holding the
figures exactly as read in a published document, with its address, title, publisher, year, page or
table, licence, the date it was read and where (see docs/EMBODIED.md). Usage:

    python scripts/build_embodied_data.py [--check]

Rows:

* GPUs: the NVIDIA HGX H100 PCF summary's cradle-to-gate figure for the 8-GPU baseboard, divided by
  its 8 GPUs, matched to the NVML names the input lists. A single figure: low = high.
* The rest of the server: Cloud Carbon Footprint's coarse coefficients (a base server, each extra CPU
  socket, each GB of DRAM above a threshold). Single figures.
* Service life: every useful life (years) the inputs give; the library takes their lowest, median
  and highest as the range and central value.

Abiotic depletion and manufacturing water stay empty where an input gives none: never zero.
``--check`` writes nothing and exits 1 if the shipped files differ from what the inputs give.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
INPUTS = REPO / "scripts" / "data_inputs" / "embodied"
NVIDIA_H100 = INPUTS / "nvidia-hgx-h100-pcf.json"
CCF_SERVER = INPUTS / "ccf-server-coefficients.json"
SERVICE_LIFE = INPUTS / "hyperscaler-service-life.json"
DATA_DIR = REPO / "src" / "carbonstep" / "accounting" / "data"
TABLE = DATA_DIR / "embodied.csv"
LIFE_TABLE = DATA_DIR / "service_life.csv"
SOURCES = DATA_DIR / "EMBODIED_SOURCES.md"
TABLE_COLUMNS = ("key", "kind", "match", "per", "threshold", "kg_co2e_low", "kg_co2e_high", "figure",
                 "kg_sb_eq_low", "kg_sb_eq_high", "water_l_low", "water_l_high", "boundary", "source", "locator",
                 "licence")
LIFE_COLUMNS = ("key", "who", "years", "source", "locator", "licence")


class InputError(ValueError):
    """An input file lacks something the build needs."""


@dataclass(frozen=True)
class EmbodiedBuild:
    """The texts of the shipped files."""

    table: str
    life_table: str
    sources: str


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in ("key", "title", "publisher", "year", "url", "locator", "licence", "read_on", "read_where", "figures"):
        if key not in data:
            raise InputError(f"{path.name}: no {key!r}")
    return data


def number(value: float) -> str:
    """A figure as the table writes it: at most 6 decimals, no trailing zeros."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _cite(data: dict[str, Any]) -> str:
    return f"{data['publisher']}, {data['title']} ({data['url']})"


def _optional(value: Any) -> str:
    return "" if value is None else number(float(value))


def _gpu_rows(data: dict[str, Any]) -> list[dict[str, str]]:
    kg = float(data["figures"]["kg_co2e"])
    gpus = int(data["gpus_per_item"])
    per_gpu = number(kg / gpus)
    figure = f"{data['figures']['range']}; {number(kg)} kg CO2e per {data['item']} / {gpus} GPUs"
    return [{
        "key": data["key"], "kind": "gpu", "match": name, "per": "GPU", "threshold": "",
        "kg_co2e_low": per_gpu, "kg_co2e_high": per_gpu, "figure": figure,
        "kg_sb_eq_low": _optional(data.get("abiotic_depletion_kg_sb_eq")),
        "kg_sb_eq_high": _optional(data.get("abiotic_depletion_kg_sb_eq")),
        "water_l_low": _optional(data.get("manufacturing_water_l")),
        "water_l_high": _optional(data.get("manufacturing_water_l")),
        "boundary": data["boundary"], "source": _cite(data), "locator": data["locator"],
        "licence": data["licence"],
    } for name in data["nvml_names"]]


def _server_rows(data: dict[str, Any]) -> list[dict[str, str]]:
    f = data["figures"]
    base = {"match": "", "kg_sb_eq_low": "", "kg_sb_eq_high": "", "water_l_low": "", "water_l_high": "",
            "boundary": data["boundary"], "source": _cite(data), "locator": data["locator"], "licence": data["licence"]}
    dram = number(float(f["dram_kg_co2e"]) / float(f["dram_gb"]))
    return [
        {**base, "key": f"{data['key']}-base", "kind": "server_base", "per": "server", "threshold": "",
         "kg_co2e_low": number(f["base_server_kg_co2e"]), "kg_co2e_high": number(f["base_server_kg_co2e"]),
         "figure": f"{f['range']}; {f['base_server_is']}"},
        {**base, "key": f"{data['key']}-cpu", "kind": "server_cpu_socket", "per": "CPU socket after the first",
         "threshold": "1", "kg_co2e_low": number(f["extra_cpu_socket_kg_co2e"]),
         "kg_co2e_high": number(f["extra_cpu_socket_kg_co2e"]), "figure": f["range"]},
        {**base, "key": f"{data['key']}-dram", "kind": "server_dram_gb",
         "per": f"GB of DRAM above {f['dram_threshold_gb']} GB", "threshold": number(f["dram_threshold_gb"]),
         "kg_co2e_low": dram, "kg_co2e_high": dram, "figure": f"{f['range']}; {f['dram_note']}"},
    ]


def _life_rows(service: dict[str, Any], ccf: dict[str, Any]) -> list[dict[str, str]]:
    rows = [{"key": service["key"], "who": who, "years": number(years), "source": _cite(service),
             "locator": service["locator"], "licence": service["licence"]}
            for who, years in sorted(service["figures"].items())]
    rows.append({"key": ccf["key"], "who": "Cloud Carbon Footprint (commodity rack server lifespan)",
                 "years": number(ccf["figures"]["rack_server_lifespan_years"]), "source": _cite(ccf),
                 "locator": ccf["locator"], "licence": ccf["licence"]})
    return rows


def _csv(columns: tuple[str, ...], rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _sources(inputs: list[tuple[Path, dict[str, Any]]]) -> str:
    lines = ["# Sources of embodied.csv and service_life.csv", "",
             "Built by `scripts/build_embodied_data.py` from the inputs below; do not edit by hand.",
             "Method, scope and a worked example: docs/EMBODIED.md.", ""]
    for path, data in inputs:
        lines += [f"## {data['title']}", "",
                  f"- input: `scripts/data_inputs/embodied/{path.name}`",
                  f"- sha256 of the input: `{sha256(path)}`",
                  f"- publisher: {data['publisher']}",
                  f"- year: {data['year']}",
                  f"- address: {data['url']}",
                  f"- where in it: {data['locator']}",
                  f"- licence: {data['licence']}",
                  f"- read on {data['read_on']}: {data['read_where']}",
                  f"- figures as read: `{json.dumps(data['figures'], sort_keys=True, ensure_ascii=False)}`", ""]
    lines += ["Not used: Boavizta's code and data (AGPL-3.0) and any share-alike data.", ""]
    return "\n".join(lines)


def build(nvidia: Path = NVIDIA_H100, ccf: Path = CCF_SERVER, service: Path = SERVICE_LIFE) -> EmbodiedBuild:
    """The shipped tables and their SOURCES text as the inputs give them."""
    inputs = [(path, _load(path)) for path in (nvidia, ccf, service)]
    nvidia_data, ccf_data, service_data = (data for _, data in inputs)
    rows = _gpu_rows(nvidia_data) + _server_rows(ccf_data)
    return EmbodiedBuild(_csv(TABLE_COLUMNS, rows), _csv(LIFE_COLUMNS, _life_rows(service_data, ccf_data)),
                         _sources(inputs))


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the shipped files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the shipped files are stale")
    args = parser.parse_args(argv)
    result = build()
    outputs = [(TABLE, result.table), (LIFE_TABLE, result.life_table), (SOURCES, result.sources)]
    if args.check:
        stale = [str(p.relative_to(REPO)) for p, text in outputs if not p.exists() or p.read_text() != text]
        if stale:
            print("stale: " + ", ".join(stale))
            return 1
        print("up to date")
        return 0
    for path, text in outputs:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
