"""Embodied footprint per run: cited figures over a service life, beside the operational CO2e, never in it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from carbonstep import Tracker
from carbonstep.accounting.embodied import (
    HOURS_PER_YEAR,
    EmbodiedSettings,
    read_fleet,
    service_life,
    settings_from_environment,
    shipped_figures,
)
from carbonstep.accounting.embodied_run import Host, host_facts
from carbonstep.errors import ConfigError
from carbonstep.measure.readers.nvml import discover_nvml
from carbonstep.report.builder import with_embodied
from carbonstep.report.embodied import embodied_params, model_card_line, summary_lines, usage_row
from carbonstep.report.record import RunReport
from carbonstep.report.summary import render

from .fake_nvml import FakeGpu, FakeNvml

H100 = "NVIDIA H100 80GB HBM3"
H100_BASEBOARD_KG = 1312.0  # NVIDIA HGX H100 PCF summary, 8 GPUs (scripts/data_inputs/embodied/)
GPU_SERVER = Host(("PowerEdge XE9680", "node7"), sockets=2, memory_gb=2048.0, cpus=224, cpus_usable=224)


def _run(gpus: list[FakeGpu], seconds: float = 0.2, **settings: object) -> RunReport:
    nvml = FakeNvml(gpus, time.monotonic)
    readers, _, _ = discover_nvml(nvml, visible=None)
    with Tracker(intensity=100, readers=readers, interval_s=0.01) as tracker:
        time.sleep(seconds)
    built = tracker.stop()
    assert built.embodied is not None  # the Tracker's own report carries the block (this machine's host facts)
    assert [p["name"] for p in built.embodied["parts"] if p["name"].startswith("gpu")] == [
        f"gpu:{i}" for i, g in enumerate(gpus) if g.name == H100]
    return with_embodied(built.with_changes(embodied=None), EmbodiedSettings(**settings),  # type: ignore[arg-type]
                         GPU_SERVER)


def test_a_fake_h100_run_reports_embodied_co2e_within_the_cited_range_beside_the_operational() -> None:
    report = _run([FakeGpu("GPU-aaaa", name=H100, watts=700)])
    block = report.embodied
    assert block is not None
    gpu = next(p for p in block["parts"] if p["name"] == "gpu:0")
    hours = report.duration_s / 3600
    per_gpu = H100_BASEBOARD_KG / 8
    life = service_life()
    assert (life.low, life.central, life.high) == (4.0, 5.0, 6.0)  # CCF 4; Amazon, Meta 5; Alphabet, Microsoft 6
    assert gpu["co2_kg_low"] == pytest.approx(per_gpu / (6 * HOURS_PER_YEAR) * hours)
    assert gpu["co2_kg_high"] == pytest.approx(per_gpu / (4 * HOURS_PER_YEAR) * hours)
    assert gpu["co2_kg_low"] < gpu["co2_kg"] < gpu["co2_kg_high"]
    assert gpu["co2_kg"] == pytest.approx(per_gpu / (5 * HOURS_PER_YEAR) * hours)
    assert (gpu["share"], gpu["share_basis"]) == (1.0, "whole device")
    # the operational figure is untouched: energy × intensity; the total is labelled as one
    assert report.co2_kg == pytest.approx(report.energy_kwh * 0.1, rel=1e-6)
    assert block["total_co2_kg"] == pytest.approx(report.co2_kg + block["co2_kg"])
    assert "a total" in block["total_label"]
    assert "kg_sb_eq" not in gpu and "water_l" not in gpu and "kg_sb_eq" not in block  # no source: absent
    text = render(report)
    assert "embodied" in text and "not in the carbon above" in text and "operational + embodied" in text


def test_the_rest_of_the_server_follows_the_coarse_coefficients_and_the_run_s_cpu_share() -> None:
    host = Host(("x",), sockets=2, memory_gb=400.0, cpus=64, cpus_usable=16)
    report = _run([FakeGpu("GPU-aaaa", name=H100)])
    report = with_embodied(report.with_changes(embodied=None), EmbodiedSettings(), host)
    assert report.embodied is not None
    server = {p["name"]: p for p in report.embodied["parts"] if p["name"].startswith("server")}
    assert set(server) == {"server", "server:cpu_socket", "server:dram_gb"}
    assert all(p["share"] == pytest.approx(16 / 64) for p in server.values())
    assert server["server:cpu_socket"]["units"] == 1  # one socket after the first, at 100 kg
    assert server["server:dram_gb"]["units"] == pytest.approx(400 - 16)  # 533/384 kg per GB above 16 GB
    hours = report.duration_s / 3600
    assert server["server"]["co2_kg"] == pytest.approx(1000 / (5 * HOURS_PER_YEAR) * hours * 16 / 64)
    assert server["server:dram_gb"]["co2_kg"] == pytest.approx(
        533 / 384 * 384 / (5 * HOURS_PER_YEAR) * hours * 16 / 64, rel=1e-5)


def test_an_unknown_gpu_gets_the_note_and_no_figure() -> None:
    report = _run([FakeGpu("GPU-bbbb", name="NVIDIA Mystery 9000")])
    block = report.embodied
    assert block is not None and "co2_kg" not in block and block["parts"] == []
    assert any(n.startswith("gpu:0 (NVIDIA Mystery 9000): no embodied figure") and "CARBONSTEP_EMBODIED_CSV" in n
               for n in block["notes"])
    assert embodied_params(report) == {} and model_card_line(report) is None
    assert any("no embodied figure" in line for line in summary_lines(report))


def test_a_user_s_fleet_csv_gives_the_figure_and_its_own_life(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.csv"
    fleet.write_text("model,kg_co2e,life_years,source,units,kg_sb_eq\n"
                     "NVIDIA Mystery 9000,2400,3,our vendor's PCF sheet 2025,8,0.08\n")
    report = _run([FakeGpu("GPU-bbbb", name="NVIDIA Mystery 9000")], fleet=read_fleet(fleet))
    block = report.embodied
    assert block is not None and block["notes"] == []
    gpu = block["parts"][0]
    hours = report.duration_s / 3600
    assert gpu["co2_kg"] == gpu["co2_kg_low"] == gpu["co2_kg_high"] == pytest.approx(
        300 / (3 * HOURS_PER_YEAR) * hours)
    assert gpu["life_years"] == [3, 3, 3] and gpu["source"] == "our vendor's PCF sheet 2025"
    assert gpu["kg_sb_eq"] == pytest.approx(0.01 / (3 * HOURS_PER_YEAR) * hours)
    assert block["kg_sb_eq_covers"] == ["gpu:0"]  # the server part has no depletion figure: not summed as 0


def test_a_user_s_server_row_and_service_life_override_the_shipped_ones(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.csv"
    fleet.write_text("model,kg_co2e,life_years,source,kind,gpus,kg_co2e_low,kg_co2e_high\n"
                     "PowerEdge XE9680,6000,5,vendor sheet,server,8,4000,9000\n")
    report = _run([FakeGpu("GPU-aaaa", name=H100)], fleet=read_fleet(fleet), life_years=7.0)
    block = report.embodied
    assert block is not None
    gpu, server = block["parts"]
    assert gpu["life_years"] == [7.0, 7.0, 7.0]  # the user's service life, for a shipped figure
    assert (server["model"], server["share"], server["life_years"]) == ("PowerEdge XE9680", 1 / 8, [5, 5, 5])
    assert server["co2_kg_low"] < server["co2_kg"] < server["co2_kg_high"]  # the user's 4,000–9,000 kg range


@pytest.mark.parametrize("text, fragment", [
    ("model,kg_co2e,source\nX,1,s\n", "no column life_years"),
    ("model,kg_co2e,life_years,source\nX,lots,5,s\n", "line 2: kg_co2e must be a number"),
    ("model,kg_co2e,life_years,source\nX,10,0,s\n", "line 2: life_years must be a positive number"),
    ("model,kg_co2e,life_years,source\n,10,5,s\n", "line 2: model and source must not be empty"),
    ("model,kg_co2e,life_years,source,kind\nX,10,5,s,rack\n", "kind must be 'gpu' or 'server'"),
])
def test_a_bad_fleet_csv_is_one_clear_line_when_the_tracker_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   text: str, fragment: str) -> None:
    fleet = tmp_path / "fleet.csv"
    fleet.write_text(text)
    monkeypatch.setenv("CARBONSTEP_EMBODIED_CSV", str(fleet))
    with pytest.raises(ConfigError, match=fragment) as info:
        Tracker(intensity=100, readers=[])
    assert "\n" not in str(info.value)


def test_service_life_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_from_environment({"CARBONSTEP_SERVICE_LIFE_YEARS": "5.5"}).life_years == 5.5
    with pytest.raises(ConfigError, match="positive"):
        settings_from_environment({"CARBONSTEP_SERVICE_LIFE_YEARS": "-1"})
    monkeypatch.setenv("CARBONSTEP_EMBODIED_CSV", "/nonexistent/fleet.csv")
    with pytest.raises(ConfigError, match="cannot read it"):
        settings_from_environment()


def test_params_model_card_and_usage_row_carry_the_figures() -> None:
    report = _run([FakeGpu("GPU-aaaa", name=H100), FakeGpu("GPU-cccc", name=H100)])
    block = report.embodied
    assert block is not None
    params = embodied_params(report)
    assert params["embodied_co2_kg"] == block["co2_kg"]
    assert params["embodied_co2_kg.gpu_0"] == params["embodied_co2_kg.gpu_1"] > 0
    assert params["total_co2_kg_operational_plus_embodied"] == pytest.approx(report.co2_kg + block["co2_kg"])
    line = model_card_line(report)
    assert line is not None and "not included in the figure above" in line and "HGX H100 PCF Summary" in line
    assert usage_row(report)["embodied_co2_kg"] == block["co2_kg"]
    assert report.co2_eq_emissions()["emissions"] == round(report.co2_kg * 1000, 4)  # the card's figure unchanged


def test_the_block_survives_a_json_round_trip() -> None:
    report = _run([FakeGpu("GPU-aaaa", name=H100)])
    again = RunReport.from_json(report.to_json())
    assert again.embodied == report.embodied
    assert RunReport.from_json(report.with_changes(embodied=None).to_json()).embodied is None


def test_a_fault_costs_the_block_and_one_warning_never_the_report() -> None:
    report = _run([FakeGpu("GPU-aaaa", name=H100)]).with_changes(embodied=None, devices=("not a device",))
    after = with_embodied(report, EmbodiedSettings(), GPU_SERVER)
    assert after.embodied is None and any(w.startswith("embodied footprint left out") for w in after.warnings)


def test_host_facts_read_sockets_and_product_from_a_sysfs_tree(tmp_path: Path) -> None:
    for cpu, package in [(0, 0), (1, 0), (2, 1), (3, 1)]:
        topology = tmp_path / "devices" / "system" / "cpu" / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{package}\n")
    dmi = tmp_path / "class" / "dmi" / "id"
    dmi.mkdir(parents=True)
    (dmi / "product_name").write_text("PowerEdge XE9680\n")
    for bus in ("0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0"):
        (tmp_path / "proc" / "driver" / "nvidia" / "gpus" / bus).mkdir(parents=True)
    host = host_facts(tmp_path, tmp_path / "proc")
    assert host.sockets == 2 and host.names[0] == "PowerEdge XE9680" and host.memory_gb > 0
    assert host.gpus == 4
    bare = host_facts(tmp_path / "missing", tmp_path / "missing")
    assert (bare.sockets, bare.gpus) == (1, 0)  # nothing readable: one socket, no GPU count, no product name


def test_a_cpu_only_run_without_a_server_row_gets_a_note_not_a_figure() -> None:
    from carbonstep.testing import ScriptedReader

    with Tracker(intensity=100, readers=[ScriptedReader("cpu", "cpu", lambda t: 50.0)], interval_s=0.01) as t:
        time.sleep(0.05)
    report = with_embodied(t.stop(), EmbodiedSettings(), GPU_SERVER)
    assert report.embodied is not None and "co2_kg" not in report.embodied
    assert "kind=server" in report.embodied["notes"][0]


def test_shipped_gpu_rows_are_single_figures_marked_as_such() -> None:
    gpus = [row for row in shipped_figures() if row.kind == "gpu"]
    assert [(r.match, r.kg_co2e_low, r.kg_co2e_high) for r in gpus] == [(H100, 164.0, 164.0)]
    assert all(r.kg_sb_eq is None and r.water_l is None for r in gpus)


def test_the_worked_example_of_docs_embodied_one_h100_hour() -> None:
    from carbonstep.accounting.embodied_run import embodied_record
    from carbonstep.report.record import Device

    gpu = Device("gpu:0", "gpu", "counter", f"{H100} [GPU-aaaa]: NVML total-energy counter", 0.7)
    block = embodied_record([gpu], 3600.0, "process", 0.28, EmbodiedSettings(), GPU_SERVER)
    assert block is not None
    part = block["parts"][0]
    assert (round(part["co2_kg"] * 1e3, 2), round(part["co2_kg_low"] * 1e3, 2),
            round(part["co2_kg_high"] * 1e3, 2)) == (3.74, 3.12, 4.68)
    base = next(p for p in block["parts"] if p["name"] == "server")
    assert round(base["co2_kg"] * 1e3, 1) == 22.8  # the whole server: GPU_SERVER's run may use all its CPUs


def test_on_a_gpu_server_the_server_share_is_the_run_s_share_of_its_gpus() -> None:
    host = Host(("node",), sockets=2, memory_gb=16.0, cpus=224, cpus_usable=224, gpus=8)
    report = _run([FakeGpu("GPU-aaaa", name=H100), FakeGpu("GPU-cccc", name=H100)])
    report = with_embodied(report.with_changes(embodied=None), EmbodiedSettings(), host)
    assert report.embodied is not None
    server = next(p for p in report.embodied["parts"] if p["name"] == "server")
    assert (server["share"], server["share_basis"]) == (2 / 8, "2 of its 8 GPUs")


def test_the_memory_size_is_psutils_total_without_importing_psutil() -> None:
    psutil = pytest.importorskip("psutil")
    if not hasattr(os, "sysconf"):
        pytest.skip("no sysconf: psutil is used")
    assert host_facts().memory_gb == psutil.virtual_memory().total / 2**30
