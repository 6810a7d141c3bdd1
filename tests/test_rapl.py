"""The RAPL reader against real powercap directory trees."""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from pathlib import Path

import pytest

from carbonstep.measure.readers.base import Domain, counter_delta
from carbonstep.measure.readers.rapl import PERMISSION_FIX, discover_rapl
from carbonstep.measure.sampler import Sampler
from carbonstep.measure.totals import EnergyTotals
from carbonstep.testing import ManualClock

WRAP_UJ = 262_143_328_850


def make_zone(root: Path, zone: str, name: str, energy_uj: int, wrap_uj: int = WRAP_UJ) -> Path:
    path = root / zone if zone.count(":") == 1 else root / zone.rsplit(":", 1)[0] / zone
    path.mkdir(parents=True)
    (path / "name").write_text(name + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{wrap_uj}\n")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    make_zone(tmp_path, "intel-rapl:0:0", "core", 500_000)
    make_zone(tmp_path, "intel-rapl:0:1", "uncore", 100_000)
    make_zone(tmp_path, "intel-rapl:0:2", "dram", 2_000_000)
    make_zone(tmp_path, "intel-rapl:1", "psys", 9_000_000)
    return tmp_path


def test_reads_package_and_dram_never_core_uncore_or_psys(tree: Path) -> None:
    readers, missing = discover_rapl(tree)
    assert [(r.name, r.domain) for r in readers] == [
        ("rapl:intel-rapl:0:package-0", Domain.CPU),
        ("rapl:intel-rapl:0:2:dram", Domain.RAM),
    ]
    assert missing == []
    assert readers[0].read() == pytest.approx(1.0)
    assert readers[0].wrap_j == pytest.approx(WRAP_UJ / 1e6)


def test_counter_wraps_through_max_energy_range(tree: Path) -> None:
    readers, _ = discover_rapl(tree)
    package = readers[0]
    clock = ManualClock()
    totals = EnergyTotals([package], clock=clock)
    sampler = Sampler([package], totals.ingest, 1.0, clock=clock)
    energy_file = tree / "intel-rapl:0" / "energy_uj"
    energy_file.write_text(f"{WRAP_UJ - 5_000_000}\n")  # 5 J before the wrap
    sampler.poll()
    clock.advance(1)
    energy_file.write_text("3000000\n")  # wrapped, 3 J after it
    sampler.poll()
    assert totals.joules[0] == pytest.approx(8.0)
    assert counter_delta(10.0, 4.0, None) == 0.0  # a reset without a known wrap counts nothing


def test_no_dram_zone_measures_package_only(tmp_path: Path) -> None:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 10)
    make_zone(tmp_path, "intel-rapl:1", "package-1", 20)
    readers, _ = discover_rapl(tmp_path)
    assert [r.domain for r in readers] == [Domain.CPU, Domain.CPU]


def test_missing_root_and_missing_files_are_reported(tmp_path: Path) -> None:
    readers, missing = discover_rapl(tmp_path / "nope")
    assert readers == [] and "does not exist" in missing[0].reason
    zone = make_zone(tmp_path, "intel-rapl:0", "package-0", 10)
    (zone / "max_energy_range_uj").unlink()
    readers, missing = discover_rapl(tmp_path)
    assert readers == [] and "not readable" in missing[0].reason


def _discover_as_nobody(root: Path) -> tuple[list, list]:
    """Run discovery with an unprivileged uid (root reads any file) and return names, reasons."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.setgid(65534)
            os.setuid(65534)
            readers, missing = discover_rapl(root)
            result: object = ([r.name for r in readers], [(m.reason, m.fix) for m in missing])
        except BaseException as exc:  # noqa: BLE001 - hand the failure to the parent
            result = exc
        try:
            os.write(write_fd, pickle.dumps(result))
        finally:
            os._exit(0)
    os.close(write_fd)
    data = b""
    while chunk := os.read(read_fd, 65536):
        data += chunk
    os.waitpid(pid, 0)
    result = pickle.loads(data)
    if isinstance(result, BaseException):
        raise result
    return result


def test_permission_denied_names_the_fix() -> None:
    base = Path(tempfile.mkdtemp(prefix="carbonstep-rapl-"))  # outside pytest's 0700 tmp dirs
    base.chmod(0o755)
    root = base / "powercap"
    zone = make_zone(root, "intel-rapl:0", "package-0", 10)
    for p in [root, zone]:
        p.chmod(0o755)
    for f in zone.iterdir():
        f.chmod(0o644)
    (zone / "energy_uj").chmod(0o400)  # root-only, as on Linux >= 5.10
    if os.geteuid() == 0:
        names, missing = _discover_as_nobody(root)
    else:
        readers, found = discover_rapl(root)
        names, missing = [r.name for r in readers], [(m.reason, m.fix) for m in found]
    assert names == []
    assert missing == [("energy_uj: permission denied", PERMISSION_FIX)]
    assert "chmod" in PERMISSION_FIX and "5.10" in PERMISSION_FIX
    shutil.rmtree(base)


def test_file_vanishing_mid_run_degrades_only_that_reader(tree: Path) -> None:
    readers, _ = discover_rapl(tree)
    clock = ManualClock()
    totals = EnergyTotals(readers, clock=clock)
    sampler = Sampler(readers, totals.ingest, 1.0, clock=clock)
    sampler.poll()
    clock.advance(1)
    (tree / "intel-rapl:0" / "intel-rapl:0:2" / "energy_uj").write_text("2500000\n")
    (tree / "intel-rapl:0" / "energy_uj").write_text("3000000\n")
    sampler.poll()
    readers[0].close()  # the package zone disappears (fd gone)
    clock.advance(1)
    (tree / "intel-rapl:0" / "intel-rapl:0:2" / "energy_uj").write_text("3000000\n")
    sampler.poll()
    assert totals.joules == pytest.approx([2.0, 1.0])
    assert totals.degraded_at[0] == pytest.approx(2.0) and totals.degraded_at[1] is None
    assert sampler.failures == [1, 0]
