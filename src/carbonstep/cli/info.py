"""``carbonstep info``: what is measured on this machine, and how."""

from __future__ import annotations

import argparse
import os
from typing import Any

DRM_ROOT = "/sys/class/drm"
AMD_INSTALL = 'pip install "carbonstep[amd]" (it needs the ROCm runtime: amdsmi loads ROCm\'s libamd_smi.so)'


def add_parser(subparsers: Any) -> None:
    """The ``info`` command and its options."""
    p = subparsers.add_parser("info", help="what is measured on this machine, and how")
    p.add_argument("--attribution", choices=["process", "machine"], default="process")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``carbonstep info``."""
    from carbonstep.measure.readers import discover
    from carbonstep.measure.readers.estimate import cpu_model_name

    found = discover(args.attribution)
    print(f"carbonstep on {os.uname().nodename}: CPU {cpu_model_name()!r}, {os.cpu_count()} logical CPUs")
    print("Measured:")
    for reader in found.readers:
        print(f"  {reader.domain.value:<4} {reader.method.value:<9} {reader.description}")
    if found.unavailable:
        print("Not available:")
    for item in found.unavailable:
        print(f"  {item.source}: {item.reason}")
        if item.fix:
            print(f"      fix: {item.fix}")
    for warning in found.warnings:
        print(f"  ! {warning}")
    for line in container_lines(found, args.attribution):
        print(line)
    for line in amd_lines(found, os.environ.get("CARBONSTEP_DRM_ROOT") or DRM_ROOT):
        print(line)
    methods = {r.domain.value: r.method.value for r in found.readers}
    if methods.get("cpu") == "estimate":
        rapl_fix = any(item.fix and item.source.startswith("rapl") for item in found.unavailable)
        print("Better numbers: readable RAPL counters replace the CPU/RAM estimates "
              + ("(see the fix above)." if rapl_fix else
                 "(bare metal, or a VM that exposes /sys/class/powercap/intel-rapl*; none is readable here)."))
    for reader in found.readers:
        reader.close()
    return 0


def container_lines(found: Any, attribution: str, cgroup_root: Any = None) -> list[str]:
    """The container the run is charged as (``discover(...).container``); under ``--attribution process`` the
    container it is in, if any, and that ``machine`` would charge it."""
    if found.container is not None:
        return [f"Charged as a container: {found.container.summary}"]
    if attribution != "process":
        return []
    from carbonstep.measure.cgroup import own_cgroup

    inside = own_cgroup(cgroup_root)
    if inside is None:
        return []
    return [f"In a container: {inside.summary}; the process tree is charged (--attribution machine charges "
            "the container)"]


def _pci_address(drm_root: str, card: str) -> str:
    """The card's PCI address (``0000:03:00.0``): the name its ``device`` link points to in sysfs."""
    return os.path.basename(os.path.realpath(f"{drm_root}/{card}/device"))


def amd_lines(found: Any, drm_root: str = DRM_ROOT, amdsmi_installed: bool | None = None) -> list[str]:
    """AMD GPUs seen in sysfs (DRM cards of PCI vendor 0x1002) that no reader measures, with the install line
    when the ``amdsmi`` package is missing; nothing when there is no such card or AMD SMI reads them."""
    from carbonstep.measure.readers.amd import amd_drm_cards

    if any("AMD SMI" in r.description for r in found.readers):
        return []
    cards = amd_drm_cards(drm_root)
    if not cards:
        return []
    if amdsmi_installed is None:
        import importlib.util

        amdsmi_installed = importlib.util.find_spec("amdsmi") is not None
    why = "AMD SMI did not read them, see above" if amdsmi_installed else "the amdsmi package is not installed"
    lines = [f"AMD GPUs seen in sysfs, not measured ({why}):"]
    lines += [f"  {card} (PCI {_pci_address(drm_root, card)}, vendor 0x1002 AMD)" for card in cards]
    if not amdsmi_installed:
        lines.append(f"      fix: {AMD_INSTALL}")
    return lines
