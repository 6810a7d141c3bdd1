"""Discovery and configuration paths of the Tracker, end to end (fixture trees, fake NVML)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from carbonstep import Tracker
from carbonstep.measure.readers import discover
from carbonstep.measure.readers.nvml import discover_nvml
from carbonstep.testing import ScriptedReader

from .fake_nvml import FakeGpu, FakeNvml
from .powercap_trees import Zone, build_tree


def test_powercap_root_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = build_tree(tmp_path, [Zone("intel-rapl:0", "package-0", 50.0), Zone("intel-rapl:0:1", "dram", 5.0)])
    monkeypatch.setenv("CARBONSTEP_POWERCAP_ROOT", str(root))
    found = discover("process", gpus=False)
    assert [(r.domain.value, r.method.value) for r in found.readers] == [("cpu", "counter"), ("ram", "counter")]
    assert "share of busy CPU time" in found.readers[0].description  # process attribution of a shared package
    machine = discover("machine", gpus=False)
    assert [r.name for r in machine.readers] == ["rapl:intel-rapl:0:package-0", "rapl:intel-rapl:0:1:dram"]


def test_interval_is_lowered_so_a_rapl_counter_cannot_wrap_twice() -> None:
    reader = ScriptedReader("rapl", "cpu", lambda t: 10.0, kind="counter", wrap_j=1000.0)  # wraps at 1 kJ
    tracker = Tracker(intensity=100, readers=[reader], interval_s=5.0).start()
    report = tracker.stop()
    assert tracker.view.interval_s == pytest.approx(1000.0 / 1000.0 / 2)  # 1 kJ at 1 kW, halved
    assert any("interval_s lowered from 5" in w for w in report.warnings)


def test_gpu_utilisation_reaches_the_report() -> None:
    nvml = FakeNvml([FakeGpu("GPU-aaaa", utilisation=5)], time.monotonic)
    readers, _, _ = discover_nvml(nvml, visible="0")
    with Tracker(intensity=100, readers=readers, interval_s=0.01) as tracker:
        time.sleep(0.1)
    device = tracker.stop().devices[0]
    assert device.utilisation_pct == pytest.approx(5.0) and device.idle_fraction == pytest.approx(1.0)
    assert device.method == "counter" and device.energy_kwh == pytest.approx(250 * 0.1 / 3.6e6, rel=0.5)


def test_time_series_intensity_is_energy_weighted_over_the_run(tmp_path: Path) -> None:
    now = time.time()
    series = tmp_path / "grid.csv"
    series.write_text("timestamp,carbon_intensity\n"
                      f"{now - 3600:.0f},100\n{now + 0.15:.3f},500\n{now + 3600:.0f},500\n")
    gpu = ScriptedReader("gpu", "gpu", lambda t: 100.0)
    with Tracker(intensity=series, readers=[gpu], interval_s=0.01) as tracker:
        time.sleep(0.3)
    report = tracker.stop()
    assert report.intensity.chosen_by.startswith("time series")
    assert 100 < report.intensity.g_per_kwh < 500  # half the energy at 100, half at 500 g/kWh
    assert report.intensity.g_per_kwh == pytest.approx(300, abs=80)
    assert report.co2_kg == pytest.approx(report.energy_kwh * report.intensity.g_per_kwh / 1000, rel=0.05)


def test_lowered_interval_is_printed_with_its_digits() -> None:
    reader = ScriptedReader("rapl", "cpu", lambda t: 10.0, kind="counter", wrap_j=125.0)  # 125 J / 1 kW / 2
    tracker = Tracker(intensity=100, readers=[reader], interval_s=1.0).start()
    report = tracker.stop()
    assert tracker.view.interval_s == pytest.approx(0.0625)
    assert any("interval_s lowered from 1 to 0.0625 s" in w for w in report.warnings), report.warnings


def test_without_an_nvidia_driver_nvml_is_not_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from carbonstep.measure import readers

    assert readers.nvidia_driver_present((str(tmp_path / "nvidiactl"),)) is False
    (tmp_path / "nvidiactl").write_text("")  # the driver's control node, as /dev/nvidiactl
    assert readers.nvidia_driver_present((str(tmp_path / "nvidiactl"),)) is True
    monkeypatch.setitem(sys.modules, "pynvml", None)  # importing it now fails: discovery must not try
    monkeypatch.setattr(readers, "nvidia_driver_present", lambda: False)
    found = discover("process", rapl_root=tmp_path)
    assert [u.reason for u in found.unavailable if u.source == "nvml"] == [
        "no NVIDIA driver on this machine (no /dev/nvidiactl)"]
    monkeypatch.setattr(readers, "nvidia_driver_present", lambda: True)
    found = discover("process", rapl_root=tmp_path)
    assert [u.reason for u in found.unavailable if u.source == "nvml"] == ["nvidia-ml-py is not installed"]
    found.tree.close()
