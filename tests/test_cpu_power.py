"""The CPU power table: exact model matching on real /proc/cpuinfo model strings, and its fallbacks.

The model strings are as Linux prints them on those machines (each seen in public logs:
"AMD EPYC 7763 64-Core Processor" on cloud CI runners, "13th Gen Intel(R) Core(TM) i9-13900K",
"Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz" ...). An arm64 Linux VM on a Mac prints no model
name at all, only "CPU implementer : 0x61".
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from carbonstep.measure.readers.cpu_power import (
    arch_row,
    arch_table,
    ccf_row,
    ccf_table,
    cores_row,
    cores_table,
    cpu_power_model,
    family_tdp,
)
from carbonstep.measure.readers.estimate import (
    CPU_TABLE,
    FAMILIES,
    CpuTopology,
    cpu_model_name,
    cpu_row,
    cpu_table,
    cpu_topology,
    normalise_cpu_name,
)

BARE_METAL_SMT = CpuTopology(threads_per_package=8, threads_per_core=2)

#: (model name as /proc/cpuinfo prints it, the table's model, its TDP in the input dataset)
REAL_MODELS = [
    ("AMD EPYC 7763 64-Core Processor", "AMD EPYC 7763", 280.0),
    ("AMD EPYC 9654 96-Core Processor", "AMD EPYC 9654", 360.0),
    ("Intel(R) Xeon(R) Platinum 8480+", "Intel Xeon Platinum 8480+", 350.0),
    ("13th Gen Intel(R) Core(TM) i9-13900K", "Intel Core i9-13900K", 125.0),
    ("AMD Ryzen 9 7950X3D 16-Core Processor", "AMD Ryzen 9 7950X3D", 120.0),  # not the 7950X's 170 W
    ("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", "Intel Xeon Gold 6248R", 205.0),  # not the 6248's 150 W
    ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", "Intel Xeon Gold 6248", 150.0),
    ("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz", "Intel Xeon E5-2686 v4", 145.0),
    ("AMD Ryzen 7 PRO 4750U with Radeon Graphics", "AMD Ryzen 7 PRO 4750U", 15.0),
]


def _input_tdp(model: str) -> float:
    """The TDP the input dataset (CodeCarbon's table) gives ``model``."""
    source = Path(__file__).resolve().parents[1] / "scripts" / "data_inputs" / "codecarbon-3.3.2" / "cpu_power.csv"
    with source.open(newline="", encoding="utf-8") as handle:
        return next(float(r["TDP"]) for r in csv.DictReader(handle) if r["Name"] == model)


@pytest.mark.parametrize(("reported", "model", "tdp_w"), REAL_MODELS)
def test_real_model_strings_find_their_own_row(reported: str, model: str, tdp_w: float) -> None:
    assert _input_tdp(model) == tdp_w  # the expectation is the dataset's own figure
    found = cpu_power_model(reported, BARE_METAL_SMT)
    assert found.basis.startswith(f"{model} in the CPU table: TDP {tdp_w:g} W")
    named = [w for w in reported.split() if w.endswith("-Core")]
    # the chip's own cores (model name, else Green Algorithms' table: the Gold 6248 has 20) × 2 threads per core,
    # never the 8 logical CPUs the machine reports
    cores = int(named[0].split("-")[0]) if named else (20 if model == "Intel Xeon Gold 6248" else None)
    threads = cores * 2 if cores else 8
    assert found.w_per_thread == pytest.approx(tdp_w / threads)


def test_no_model_borrows_a_longer_or_shorter_name() -> None:
    """The audit's false matches: a suffix (X3D, R) is part of the model, not noise."""
    assert cpu_power_model("AMD Ryzen 9 7950X3D 16-Core Processor", BARE_METAL_SMT).w_per_thread * 32 == 120
    assert cpu_power_model("AMD Ryzen 9 7950X 16-Core Processor", BARE_METAL_SMT).w_per_thread * 32 == 170
    assert "6248R" in cpu_power_model("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", BARE_METAL_SMT).basis
    # a model absent from the table never takes the row of a model whose name it contains
    unknown = cpu_power_model("Intel(R) Xeon(R) Gold 6248RX CPU", BARE_METAL_SMT)
    assert "not in the CPU table" in unknown.basis and "Xeon models" in unknown.basis


def test_table_keys_are_unique_and_every_row_is_reachable() -> None:
    with CPU_TABLE.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) > 4000
    keys = [normalise_cpu_name(r["model"]) for r in rows]
    assert len(set(keys)) == len(keys) == len(cpu_table())
    assert all(float(r["tdp_w"]) > 0 for r in rows)


def test_unknown_models_fall_back_and_say_so() -> None:
    vm = cpu_power_model("AMD EPYC", CpuTopology(4, 2, virtual=True))  # what many VMs report
    assert "'AMD EPYC' not in the CPU table; median TDP" in vm.basis and "EPYC models" in vm.basis
    assert "upper bound" in vm.basis and vm.w_per_thread > 0
    other = cpu_power_model("Some Future CPU 9000", BARE_METAL_SMT)
    assert "median TDP" in other.basis and f"all {len(cpu_table())} models" in other.basis


def test_apple_silicon_vm_is_named_unknown_and_falls_back(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"
                       "CPU implementer\t: 0x61\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0x000\n"
                       "CPU revision\t: 0\n\nprocessor\t: 1\nBogoMIPS\t: 48.00\nCPU implementer\t: 0x61\n")
    name = cpu_model_name(cpuinfo)
    assert name == "Apple silicon (model not reported)"
    topology = cpu_topology(cpuinfo)
    assert topology.threads_per_package is None
    model = cpu_power_model(name, topology)
    assert "not in the CPU table" in model.basis and "Apple models" in model.basis
    assert "no package topology" in model.basis and model.low <= model.w_per_thread <= model.high


def test_topology_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6248R CPU @ "
                       "3.00GHz\nphysical id\t: 0\nsiblings\t: 48\ncore id\t\t: 0\ncpu cores\t: 24\n"
                       "flags\t\t: fpu vme de pse tsc msr pae mce\n\nprocessor\t: 1\nsiblings\t: 48\n")
    assert cpu_model_name(cpuinfo) == "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz"
    topology = cpu_topology(cpuinfo)
    assert topology == CpuTopology(48, 2, virtual=False)
    model = cpu_power_model(cpu_model_name(cpuinfo), topology)
    assert model.w_per_thread == pytest.approx(205 / 48)
    assert "48 logical CPUs per package (/proc/cpuinfo siblings)" in model.basis
    vm = tmp_path / "vm"
    vm.write_text(cpuinfo.read_text().replace("mce\n", "mce hypervisor\n").replace("siblings\t: 48", "siblings\t: 4")
                  .replace("cpu cores\t: 24", "cpu cores\t: 2"))
    assert cpu_topology(vm) == CpuTopology(4, 2, virtual=True)
    assert "upper bound" in cpu_power_model(cpu_model_name(vm), cpu_topology(vm)).basis


def test_measure_does_not_import_accounting() -> None:
    import ast

    readers = Path(__file__).resolve().parents[1] / "src" / "carbonstep" / "measure" / "readers"
    for module in readers.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("carbonstep.accounting"), module.name


def test_the_report_carries_the_cpu_figure_its_range_and_source(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A VM reporting the bare "AMD EPYC" (family 25, model 1) gets CCF's EPYC 3rd Gen range, not a median TDP."""
    from carbonstep import Tracker
    from carbonstep.measure.readers import cpu_power, estimate
    from carbonstep.report.cpu_estimate import cpu_estimate_params
    from carbonstep.report.summary import render

    monkeypatch.setattr(estimate, "cpu_model_name", lambda: "AMD EPYC")  # what many VMs report
    this_vm = CpuTopology(2, 1, virtual=True, vendor="AuthenticAMD", family=25, model=1)
    monkeypatch.setattr(cpu_power, "cpu_topology", lambda: this_vm)
    monkeypatch.setenv("CARBONSTEP_POWERCAP_ROOT", str(tmp_path / "no-powercap"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    tracker = Tracker(intensity=100, attribution="machine", interval_s=0.05).start()
    report = tracker.stop()
    cpu = next(d for d in report.devices if d.domain == "cpu")
    assert cpu.method == "estimate"
    assert "AMD EPYC 3rd Gen" in cpu.description and "Cloud Carbon Footprint" in cpu.description
    figures = report.extra["cpu_estimate"]
    assert figures["w_low"] <= figures["w_per_thread"] <= figures["w_high"] < 100
    params = cpu_estimate_params(report)
    assert params["carbonstep.cpu_w_low"] == f"{figures['w_low']:g}"
    assert "AMD EPYC 3rd Gen" in params["carbonstep.cpu_basis"]
    assert f"{figures['w_low']:.2f}–{figures['w_high']:.2f} W" in render(report)


def test_one_row_lookups_agree_with_the_whole_tables() -> None:
    """A run reads one row (``cpu_row``, ``cores_row``) and the precomputed family figures: the same as parsing all."""
    table = cpu_table()
    assert any(any(c in key for c in ',"') for key in table)  # a quoted key is looked up too
    for key, value in table.items():
        assert cpu_row(key) == value, key
    for key, value in cores_table().items():
        assert cores_row(key) == value, key
    for missing in ("no such cpu", "epyc", "", "7763,"):
        assert cpu_row(missing) is None and cores_row(missing) is None
    for (vendor, family, model), value in arch_table().items():
        assert arch_row(vendor, family, model) == value, (vendor, family, model)
    assert arch_row("AuthenticAMD", 25, 9999) is None and arch_row("NoSuchVendor", 25, 1) is None
    for ccf_type, value in ccf_table().items():
        assert ccf_row(ccf_type) == value, ccf_type
    with pytest.raises(KeyError):
        ccf_row("NO_SUCH_TYPE")
    for family in (*FAMILIES, None):
        peers = [tdp for key, (_, tdp) in table.items() if family is None or family.lower() in key.split()]
        assert family_tdp(family) == (len(peers), statistics.median(peers), min(peers), max(peers)), family
