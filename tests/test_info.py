"""``carbonstep info``: the container a run would be charged as, and AMD GPUs seen without the amdsmi package, through
a cgroup root and a sysfs root laid out as Linux lays them out."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from carbonstep.cli import main
from carbonstep.cli.info import amd_lines
from carbonstep.measure import cgroup as cg
from carbonstep.measure.readers import Discovery

from .test_cgroup import CONTAINER, _reading_membership, layout


def _info(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["info", *argv]) == 0
    return capsys.readouterr().out


@pytest.fixture
def no_rapl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "powercap").mkdir()
    monkeypatch.setenv("CARBONSTEP_POWERCAP_ROOT", str(tmp_path / "powercap"))
    monkeypatch.setenv("CARBONSTEP_DRM_ROOT", str(tmp_path / "no-drm"))


def test_info_prints_the_container_a_run_would_be_charged_as(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str],
                                                               no_rapl: None) -> None:
    layout(tmp_path / "cgroup", memory_max=str(8 * 2**30))
    monkeypatch.setenv("CARBONSTEP_CGROUP_ROOT", str(tmp_path / "cgroup"))
    monkeypatch.setattr(cg, "_read", _reading_membership(cg._read, f"0::/{CONTAINER}\n"))
    summary = "container cgroup cri-containerd-abc.scope: 2 CPUs (cpu.max), 8.0 GiB (memory.max)"
    out = _info(["--attribution", "machine"], capsys)
    assert f"Charged as a container: {summary}" in out.splitlines()
    out = _info([], capsys)  # the process tree is charged; the container is named, with the option that charges it
    assert f"In a container: {summary}; the process tree is charged (--attribution machine charges the container)" \
        in out.splitlines()
    assert "Charged as a container" not in out


def test_info_on_a_plain_host_names_no_container(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str], no_rapl: None) -> None:
    (tmp_path / "v1").mkdir()  # no cgroup.controllers: not a cgroup-v2 hierarchy
    monkeypatch.setenv("CARBONSTEP_CGROUP_ROOT", str(tmp_path / "v1"))
    for argv in ([], ["--attribution", "machine"]):
        out = _info(argv, capsys)
        assert "container" not in out.lower()


def _sysfs(base: Path) -> Path:
    """/sys as Linux lays it out for an AMD GPU at 0000:02:00.0 (a 4 × MI300 node's first card) and an NVIDIA one:
    /sys/class/drm/cardN is a link into the PCI device's drm/ folder, whose ``device`` links back to the PCI
    device, which holds ``vendor`` (0x1002: AMD, 0x10de: NVIDIA); a display connector has no device/vendor."""
    drm = base / "class" / "drm"
    drm.mkdir(parents=True)
    for card, address, vendor in (("card0", "0000:02:00.0", "0x1002"), ("card1", "0000:41:00.0", "0x10de")):
        pci = base / "devices" / "pci0000:00" / address
        (pci / "drm" / card).mkdir(parents=True)
        (pci / "vendor").write_text(f"{vendor}\n")
        (pci / "drm" / card / "device").symlink_to(f"../../../{address}", target_is_directory=True)
        (drm / card).symlink_to(os.path.relpath(pci / "drm" / card, drm), target_is_directory=True)
    (drm / "card1-DP-1").mkdir()
    (drm / "version").write_text("drm 1.1.0 20060810\n")
    return drm


@pytest.mark.skipif(importlib.util.find_spec("amdsmi") is not None, reason="amdsmi is installed here")
def test_info_lists_amd_gpus_seen_without_amdsmi_with_the_install_line(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str],
                                                                      no_rapl: None) -> None:
    drm = _sysfs(tmp_path / "sys")
    monkeypatch.setenv("CARBONSTEP_DRM_ROOT", str(drm))
    out = _info([], capsys).splitlines()
    start = out.index("AMD GPUs seen in sysfs, not measured (the amdsmi package is not installed):")
    assert out[start + 1:start + 3] == [
        "  card0 (PCI 0000:02:00.0, vendor 0x1002 AMD)",
        '      fix: pip install "carbonstep[amd]" (it needs the ROCm runtime: amdsmi loads ROCm\'s libamd_smi.so)']
    assert not any("card1" in line for line in out)  # the NVIDIA card is not AMD's


def test_amd_lines_only_when_a_card_is_not_read(tmp_path: Path) -> None:
    drm = _sysfs(tmp_path / "sys")
    installed = amd_lines(Discovery(), str(drm), amdsmi_installed=True)
    assert installed == ["AMD GPUs seen in sysfs, not measured (AMD SMI did not read them, see above):",
                         "  card0 (PCI 0000:02:00.0, vendor 0x1002 AMD)"]
    assert amd_lines(Discovery(), str(tmp_path / "none"), amdsmi_installed=False) == []

    class AmdReader:
        description = "AMD Instinct MI300X [GPU-1]: AMD SMI energy accumulator"

    assert amd_lines(Discovery(readers=[AmdReader()]), str(drm), amdsmi_installed=True) == []
