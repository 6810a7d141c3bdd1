"""Powercap sysfs trees laid out as Linux lays them, for the RAPL reader's tests.

Where each shape comes from (public reports of real machines):

* Top-level links. ``/sys/class/powercap`` holds a symlink for the control type *and for every
  zone and subzone*, each pointing into ``/sys/devices/virtual/powercap/<control type>/``::

      intel-rapl      -> ../../devices/virtual/powercap/intel-rapl
      intel-rapl:0    -> ../../devices/virtual/powercap/intel-rapl/intel-rapl:0
      intel-rapl:0:0  -> ../../devices/virtual/powercap/intel-rapl/intel-rapl:0/intel-rapl:0:0
      intel-rapl-mmio:0 -> ../../devices/virtual/powercap/intel-rapl-mmio/intel-rapl-mmio:0

  (``ls -l /sys/class/powercap`` in TheAlexDev23/power-options issue #42; the same links in
  home-assistant/operating-system issue #4931). The control-type directory ``intel-rapl`` has
  ``enabled`` and no ``name`` (intel/thermal_daemon issue #401), so it is not a zone.
* Intel client CPUs with ``intel-rapl-mmio``: the MMIO interface exposes the *same* package as
  ``intel-rapl-mmio:0`` named ``package-0``; summing both counts the package twice
  (mlco2/codecarbon pull request #950, "Deduplicate MSR vs MMIO Domains").
* Intel servers: per socket a ``package-N`` zone with a ``dram`` subzone; DRAM is not part of
  the package (powercap/powercap issue #3; ml-energy/zeus pull request #92). On a two-socket
  server only package and dram domains exist (hubblo-org/scaphandre issue #85).
  ``max_energy_range_uj`` 262143328850 is the value reported on Intel (flightlessmango/MangoHud
  issue #1776).
* Multi-die packages: Linux names one zone per die ``package-X-die-Y``. On AMD Threadripper/EPYC
  (Zen 1 and 2) every die's zone mirrors the same socket-wide counter: a Threadripper 1950X shows
  top-level zones ``intel-rapl:0`` = ``package-0-die-0`` (energy_uj 10360237493) and ``intel-rapl:1``
  = ``package-0-die-1`` (energy_uj 10359908363), no subzones, ``max_energy_range_uj`` 65532610987
  (the sample domain listing in mlco2/codecarbon ``codecarbon/core/cpu.py``), read as
  "package-0-die-0: 68 W | package-0-die-1: 68 W | CodeCarbon: 137 W" at a 125 W idle wall plug: one
  counter read twice (mlco2/codecarbon issues #1274, #1379; pull request #1276 keeps distinct
  package counters and drops only mirrored ones). On multi-die Intel parts (Cascade Lake AP, two dies
  per package: powercap/raplcap issue #9) each die is a zone of its own with its own ``dram``
  subzone, and the per-die counters are distinct: they must be summed.
* AMD Zen: the ``intel_rapl_msr`` driver serves every Zen CPU (flightlessmango/MangoHud pull
  request #1651), with no DRAM domain (RRZE-HPC/likwid issue #181); ``max_energy_range_uj`` is
  65532610987 on an EPYC 7543 (a comment in hubblo-org/scaphandre's sensor code).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

INTEL_WRAP_UJ = 262_143_328_850
AMD_WRAP_UJ = 65_532_610_987


@dataclass(frozen=True)
class Zone:
    """One powercap zone: its id (``intel-rapl:0:2``), its ``name`` file and its power in watts."""

    zone_id: str
    name: str
    watts: float
    wrap_uj: int = INTEL_WRAP_UJ
    start_uj: int | None = None  #: the zone's own reading at the start (None: the tree's default)
    mirrors: str | None = None  #: the zone whose counter this one reads again (a mirrored die)

    @property
    def control_type(self) -> str:
        return self.zone_id.split(":", 1)[0]

    def relative_dir(self) -> Path:
        """Where the zone lives under devices/virtual/powercap: nested under its parents."""
        parts = self.zone_id.split(":")
        path = Path(self.control_type)
        for depth in range(2, len(parts) + 1):
            path /= ":".join(parts[:depth])
        return path


def build_tree(base: Path, zones: list[Zone], start_uj: int = 1_000_000) -> Path:
    """Write ``zones`` under ``base`` as Linux does and return the ``class/powercap`` root.

    Real files live in ``devices/virtual/powercap/<type>/<zone>/<subzone>``; the class root holds
    a relative symlink for each control type and for every zone and subzone.
    """
    devices = base / "devices" / "virtual" / "powercap"
    root = base / "class" / "powercap"
    root.mkdir(parents=True)
    for control_type in sorted({z.control_type for z in zones}):
        (devices / control_type).mkdir(parents=True, exist_ok=True)
        (devices / control_type / "enabled").write_text("1\n")
        os.symlink(Path("..", "..", "devices", "virtual", "powercap", control_type), root / control_type)
    for zone in zones:
        directory = devices / zone.relative_dir()
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "name").write_text(zone.name + "\n")
        (directory / "energy_uj").write_text(f"{start_uj if zone.start_uj is None else zone.start_uj}\n")
        (directory / "max_energy_range_uj").write_text(f"{zone.wrap_uj}\n")
        (directory / "enabled").write_text("1\n")
        os.symlink(Path("..", "..", "devices", "virtual", "powercap", zone.relative_dir()), root / zone.zone_id)
    return root


def energy_file(root: Path, zone: Zone) -> Path:
    """The zone's ``energy_uj``, reached through its top-level link."""
    return root / zone.zone_id / "energy_uj"


#: One Intel Xeon socket: package 50 W (core 30 W inside it), DRAM 5 W (outside it).
INTEL_SERVER = [
    Zone("intel-rapl:0", "package-0", 50.0),
    Zone("intel-rapl:0:0", "core", 30.0),
    Zone("intel-rapl:0:1", "dram", 5.0),
]

#: Two Intel Xeon sockets, package and dram only.
INTEL_TWO_SOCKETS = [
    Zone("intel-rapl:0", "package-0", 120.0),
    Zone("intel-rapl:0:0", "dram", 9.0),
    Zone("intel-rapl:1", "package-1", 80.0),
    Zone("intel-rapl:1:0", "dram", 6.0),
]

#: An Intel laptop: package 15 W (core, uncore inside), psys 25 W (whole platform), and the same
#: package again through intel-rapl-mmio.
INTEL_CLIENT_WITH_MMIO = [
    Zone("intel-rapl:0", "package-0", 15.0),
    Zone("intel-rapl:0:0", "core", 8.0),
    Zone("intel-rapl:0:1", "uncore", 2.0),
    Zone("intel-rapl:1", "psys", 25.0),
    Zone("intel-rapl-mmio:0", "package-0", 15.0),
]

#: AMD Zen (EPYC/Ryzen) through intel_rapl_msr: package only, no DRAM.
AMD_ZEN = [Zone("intel-rapl:0", "package-0", 180.0, AMD_WRAP_UJ)]

#: AMD Threadripper 1950X: two per-die zones mirroring one socket counter, the second read 0.33 J
#: behind the first (the readings codecarbon shows), 68 W each as codecarbon read them: 68 W in all.
AMD_THREADRIPPER_TWO_DIES = [
    Zone("intel-rapl:0", "package-0-die-0", 68.0, AMD_WRAP_UJ, start_uj=10_360_237_493),
    Zone("intel-rapl:1", "package-0-die-1", 68.0, AMD_WRAP_UJ, start_uj=10_359_908_363, mirrors="intel-rapl:0"),
]

#: AMD EPYC (Zen 1, four dies per socket): four zones mirroring one 180 W counter, read µs apart.
AMD_EPYC_FOUR_DIES = [
    Zone("intel-rapl:0", "package-0-die-0", 180.0, AMD_WRAP_UJ, start_uj=40_000_000_000),
    *[Zone(f"intel-rapl:{die}", f"package-0-die-{die}", 180.0, AMD_WRAP_UJ, start_uj=40_000_000_000 - 150 * die,
           mirrors="intel-rapl:0") for die in (1, 2, 3)],
]

#: Intel Cascade Lake AP: one package of two dies, each its own counter (since boot) and its own DRAM.
INTEL_TWO_DIES = [
    Zone("intel-rapl:0", "package-0-die-0", 150.0, start_uj=91_000_000_000),
    Zone("intel-rapl:0:0", "dram", 8.0, start_uj=7_000_000_000),
    Zone("intel-rapl:1", "package-0-die-1", 140.0, start_uj=88_500_000_000),
    Zone("intel-rapl:1:0", "dram", 7.0, start_uj=6_800_000_000),
]

#: Intel, two dies whose counters happen to read within a joule of each other at the start: only their
#: movement tells them apart (the first readings alone would take them for one counter).
INTEL_TWO_DIES_CLOSE_START = [
    Zone("intel-rapl:0", "package-0-die-0", 150.0, start_uj=91_000_000_000),
    Zone("intel-rapl:1", "package-0-die-1", 140.0, start_uj=91_000_400_000),
]


def true_watts(zones: list[Zone], name_prefix: str) -> float:
    """What the machine draws in the zones named ``name_prefix``…: each counter once (mirrors left out)."""
    return sum(z.watts for z in zones if z.name.startswith(name_prefix) and z.mirrors is None)
