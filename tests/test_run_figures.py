"""The run's figures from its report (CPU estimate range, scope, water, embodied CO2e) reach MLflow, the model card
and ``compare``: read back from a real sqlite MLflow store, a real model card file and real comparisons."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from carbonstep import Tracker, compare
from carbonstep.accounting.embodied import EmbodiedSettings
from carbonstep.accounting.embodied_run import Host
from carbonstep.accounting.water import water_of
from carbonstep.measure.readers.cpu_power import cpu_power_model
from carbonstep.measure.readers.estimate import CpuEstimateReader, cpu_model_name, cpu_topology
from carbonstep.measure.readers.nvml import discover_nvml
from carbonstep.mlflow_io import names
from carbonstep.mlflow_io.sink import MlflowSink
from carbonstep.report.builder import with_embodied
from carbonstep.report.charged import charged_by_domain
from carbonstep.report.record import RunReport
from carbonstep.training.mlflow_record import end_record
from carbonstep.training.options import TrainingOptions
from carbonstep.training.session import TrainingSession

from .fake_nvml import FakeGpu, FakeNvml

H100 = "NVIDIA H100 80GB HBM3"
GPU_SERVER = Host(("PowerEdge XE9680", "node7"), sockets=2, memory_gb=2048.0, cpus=224, cpus_usable=224)


@pytest.fixture(autouse=True)
def _shipped_embodied_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped figures and service life, whatever the machine's environment says."""
    monkeypatch.delenv("CARBONSTEP_EMBODIED_CSV", raising=False)
    monkeypatch.delenv("CARBONSTEP_SERVICE_LIFE_YEARS", raising=False)


def _cpuinfo(tmp_path: Path) -> Path:
    """/proc/cpuinfo as this project's CI VM prints it (two vCPUs of an "AMD EPYC", family 25 model 1)."""
    block = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n"
             "stepping\t: 1\nphysical id\t: 0\nsiblings\t: 2\ncore id\t\t: 0\ncpu cores\t: 2\n"
             "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep ht syscall nx hypervisor lahf_lm\n\n")
    path = tmp_path / "cpuinfo"
    path.write_text(block + block.replace("processor\t: 0", "processor\t: 1"))
    return path


def _readers(tmp_path: Path) -> list[object]:
    """A fake H100 (NVML) and the real CPU estimate reader on the VM's CPU, half busy (busy-time counters)."""
    gpus, _, _ = discover_nvml(FakeNvml([FakeGpu("GPU-aaaa", name=H100, watts=700)], time.monotonic), visible=None)
    info = _cpuinfo(tmp_path)
    model = cpu_power_model(cpu_model_name(info), cpu_topology(info))
    start = time.monotonic()
    busy = lambda: time.monotonic() - start  # noqa: E731 - one of two vCPUs busy: 50 % utilisation
    return [*gpus, CpuEstimateReader(busy, model, "machine", busy, 2)]


def _session(tmp_path: Path, sink: MlflowSink | None) -> TrainingSession:
    options = TrainingOptions.of(region="FR", readers=_readers(tmp_path), interval_s=0.01, summary=False)
    session = TrainingSession(options)
    session.begin(sink, tmp_path, 1)
    for step in range(3):
        time.sleep(0.03)
        session.step(step, 0)
    session.epoch_end(0, 2)
    session.end()
    return session


def test_a_session_logs_the_reports_figures_to_mlflow(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sink = MlflowSink(tracking_uri=uri, experiment="figures", ledger_path=tmp_path / "ledger.jsonl")
    session = _session(tmp_path, sink)
    report = session.report
    assert report is not None and not sink.errors
    client = MlflowClient(uri)
    run = client.get_run(sink.run_id)
    params, metrics = run.data.params, run.data.metrics

    estimate = report.extra["cpu_estimate"]
    assert 0.0 < estimate["w_low"] < estimate["w_high"]  # the range of the VM's CPU, from its cpuinfo
    assert params[names.CPU_W_PER_THREAD] == f"{estimate['w_per_thread']:.4g}"
    assert (params[names.CPU_W_LOW], params[names.CPU_W_HIGH]) == (f"{estimate['w_low']:g}",
                                                                    f"{estimate['w_high']:g}")
    basis = params[names.CPU_BASIS]
    assert basis.startswith("Cloud Carbon Footprint") and "AMD EPYC 3rd Gen" in basis

    water = water_of("FR")  # the region's water intensity, logged at the start with its range and basis
    assert params[names.WATER_L_PER_KWH] == f"{water.l_per_kwh:g}"
    assert params[names.WATER_BASIS] == water.label() and "France" in params[names.WATER_BASIS]

    scopes = charged_by_domain(report.devices)
    assert set(scopes) == {"gpu", "cpu"}
    assert (params[names.GPU_SCOPE], params[names.CPU_SCOPE]) == (scopes["gpu"], scopes["cpu"])
    assert params[names.CPU_SCOPE] == "machine" and names.RAM_SCOPE not in params  # no RAM reader in this run

    block = report.embodied
    assert block is not None and block["co2_kg"] > 0
    assert metrics[names.EMBODIED_CO2_KG] == pytest.approx(block["co2_kg"])
    assert metrics[names.EMBODIED_CO2_KG_LOW] < metrics[names.EMBODIED_CO2_KG] < metrics[names.EMBODIED_CO2_KG_HIGH]
    gpu_part = next(p for p in block["parts"] if p["name"] == "gpu:0")
    assert metrics[names.EMBODIED_PART_PREFIX + "gpu_0"] == pytest.approx(gpu_part["co2_kg"])
    assert metrics[names.CO2_KG] == pytest.approx(report.co2_kg)  # the operational figure, embodied not in it
    assert metrics[names.TOTAL_CO2_KG_WITH_EMBODIED] == pytest.approx(report.co2_kg + block["co2_kg"])
    history = client.get_metric_history(sink.run_id, names.EMBODIED_CO2_KG)
    assert [m.step for m in history] == [session.last_step]  # once, at the run's end
    assert params[names.EMBODIED_BASIS].startswith("cradle-to-gate over a service life of 5 years (range 4-6)")
    assert "HGX H100" in params[names.EMBODIED_BASIS]
    for key in params:  # every carbonstep param is a pinned name
        assert not key.startswith(names.PREFIX) or key in vars(names).values(), key


def _estimated_report(tmp_path: Path) -> RunReport:
    """A run's report with an estimated CPU and an embodied block (a fake H100 in a known server)."""
    readers = _readers(tmp_path)
    with Tracker(intensity=100, readers=readers, interval_s=0.01) as tracker:
        time.sleep(0.05)
    report = tracker.stop()
    assert "cpu_estimate" in report.extra
    return with_embodied(report.with_changes(embodied=None), EmbodiedSettings(), GPU_SERVER)


def test_a_resumed_run_leaves_out_the_segments_own_figures(tmp_path: Path) -> None:
    report = _estimated_report(tmp_path)
    params, metrics = end_record(report, resumed=False)
    assert names.CPU_W_PER_THREAD in params and metrics[names.EMBODIED_CO2_KG] > 0
    again, none = end_record(report, resumed=True)  # a param cannot change; the segment's embodied is not the run's
    assert none == {} and names.CPU_W_PER_THREAD not in again
    assert again == {k: v for k, v in params.items() if k != names.CPU_W_PER_THREAD}
    broken = report.with_changes(embodied={"co2_kg": 1.0})  # a damaged block: nothing logged, the end goes on
    assert end_record(broken, resumed=False) == ({}, {})


def test_the_model_card_says_the_embodied_emissions_beside_the_operational_figure(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from huggingface_hub import ModelCard

    from carbonstep.callbacks.transformers import add_co2_to_model_card
    from carbonstep.report.embodied import model_card_line

    report = _estimated_report(tmp_path)
    line = model_card_line(report)
    assert line is not None
    card = tmp_path / "README.md"
    card.write_text("---\nlicense: mit\n---\n\n# tiny\n\nA model.\n")
    add_co2_to_model_card(card, report, "fine-tuning")
    add_co2_to_model_card(card, report, "fine-tuning")  # on_train_end and create_model_card both write it
    text = card.read_text()
    loaded = ModelCard.load(card)
    assert loaded.data.co2_eq_emissions == report.co2_eq_emissions("fine-tuning")
    assert loaded.data.co2_eq_emissions["emissions"] == round(report.co2_kg * 1000, 4)  # operational only
    assert "embodied" not in str(loaded.data.co2_eq_emissions).lower()
    assert text.count(line) == 1 and loaded.text.rstrip().endswith(line) and "A model." in loaded.text
    add_co2_to_model_card(card, report.with_changes(embodied=None), "fine-tuning")
    assert "Embodied (manufacturing)" not in card.read_text() and "A model." in card.read_text()


def _log_run(client: MlflowClient, experiment: str, name: str, co2: float, cpu_kwh: float,
             estimate: tuple[float, float, float] | None, embodied: float | None) -> str:
    """A finished run as the session logs it: val_loss and co2_kg at steps 1 and 2, the totals, the CPU estimate's
    params and the embodied CO2e metric."""
    run_id = client.create_run(experiment, run_name=name).info.run_id
    metrics = [Metric("val_loss", 2.0, 0, 1), Metric("val_loss", 1.0, 0, 2), Metric("co2_kg", co2 / 2, 0, 1),
               Metric("co2_kg", co2, 0, 2), Metric("energy_kwh", 1.0, 1, 2), Metric("energy_kwh_cpu", cpu_kwh, 1, 2),
               Metric("water_l", 1.0, 1, 2)]
    if embodied is not None:
        metrics.append(Metric(names.EMBODIED_CO2_KG, embodied, 1, 2))
    params = [Param(names.METHODS, "cpu: estimate, gpu: nvml-energy")]
    if estimate is not None:
        point, low, high = estimate
        params += [Param(names.CPU_W_PER_THREAD, f"{point:g}"), Param(names.CPU_W_LOW, f"{low:g}"),
                   Param(names.CPU_W_HIGH, f"{high:g}"), Param(names.CPU_BASIS, "Cloud Carbon Footprint: EPYC")]
    client.log_batch(run_id, metrics=metrics, params=params)
    client.set_terminated(run_id)
    return run_id


EPYC = (1.2, 0.6, 1.8)  #: W per thread at the run's utilisation, and the range's ends (3× apart)
CO2 = {"a-s1": 0.300, "a-s2": 0.310, "b-s1": 0.250, "b-s2": 0.262}  #: b about 17 % less, a tight interval


def test_compare_shows_embodied_beside_co2e_and_says_when_the_cpu_range_makes_absolutes_rough(
        mlflow_study_store: tuple[str, MlflowClient, str]) -> None:
    uri, client, exp = mlflow_study_store
    runs = [_log_run(client, exp, name, co2, 1.0, EPYC, 0.05) for name, co2 in CO2.items()]  # all CPU, estimated
    result = compare(runs, tracking_uri=uri)
    assert [r.embodied_co2_kg for r in result.runs] == [0.05] * 4
    assert [r.co2_kg for r in result.runs] == list(CO2.values())  # operational, embodied not added
    header, first = result.table().splitlines()[:2]
    assert "embodied CO2e" in header and "50.0 g" in first and "300 g" in first
    verdict = result.levels[-1]
    spread = (100 + verdict.diff_pct_high[1]) / (100 + verdict.diff_pct_low[1])
    assert 1.0 < spread < 3.0  # the ratio's interval is narrower than the estimate's 0.6-1.8 W (3×)
    note = next(n for n in result.notes if n.startswith("the CPU estimate's range"))
    assert "(0.60–1.80 W per thread) makes the absolute kWh and CO2e rough" in note
    assert "up to 3.00× between the range's ends" in note
    assert note.endswith("the ratio between recipes holds because all runs share the same estimate")
    assert result.to_dict()["runs"][0]["embodied_co2_kg"] == 0.05


def test_no_note_when_the_estimate_hardly_moves_the_energy_and_a_different_one_when_estimates_differ(
        mlflow_study_store: tuple[str, MlflowClient, str]) -> None:
    uri, client, exp = mlflow_study_store
    small = [_log_run(client, exp, name, co2, 0.01, EPYC, None) for name, co2 in CO2.items()]  # 1 % of the kWh
    result = compare(small, tracking_uri=uri)
    assert not any("CPU estimate" in n for n in result.notes)  # 1.02× between the ends: inside the interval
    assert "embodied" not in result.table().splitlines()[0]  # no run recorded it: no column
    other = (1.0, 0.4, 2.0)
    mixed = [_log_run(client, exp, name, co2, 1.0, EPYC if name.startswith("a") else other, None)
             for name, co2 in CO2.items()]
    note = next(n for n in compare(mixed, tracking_uri=uri).notes if n.startswith("the CPU estimate's range"))
    assert "(0.40–2.00 W per thread)" in note and "do not share one CPU estimate" in note


def test_compare_reads_the_embodied_and_the_estimate_from_report_files(tmp_path: Path) -> None:
    paths = []
    for name, losses in (("a", [2.0, 1.0]), ("b", [1.9, 0.9])):
        options = TrainingOptions.of(intensity=100.0, readers=_readers(tmp_path), interval_s=0.01, summary=False,
                                     name=name)
        session = TrainingSession(options)
        session.begin(None, tmp_path / name, 1)
        for step, loss in enumerate(losses):
            time.sleep(0.02)
            session.step(step, 0)
            session.validation(step, {"val_loss": loss})
        report = session.end()
        path = tmp_path / f"{name}.json"
        with_embodied(report.with_changes(embodied=None), EmbodiedSettings(), GPU_SERVER).save(path)
        paths.append(path)
    result = compare(paths)
    reports = [RunReport.load(p) for p in paths]
    assert [r.embodied_co2_kg for r in result.runs] == [rep.embodied["co2_kg"] for rep in reports]  # type: ignore[index]
    assert [r.co2_kg for r in result.runs] == [rep.co2_kg for rep in reports]
    series = result.series[0]
    assert series.cpu_estimate is not None
    assert series.cpu_estimate["w_low"] == pytest.approx(reports[0].extra["cpu_estimate"]["w_low"], rel=1e-5)
    assert series.energy_kwh_cpu == reports[0].energy_kwh_cpu
