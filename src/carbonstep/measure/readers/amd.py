"""AMD Instinct and Radeon GPUs through AMD SMI's Python bindings (``amdsmi``, extra ``amd``).

What the library returns, from AMD SMI's Python API reference (``docs/reference/amdsmi-py-api.md`` in
ROCm/amdsmi):

- ``amdsmi_get_energy_count(h)`` → ``{"energy_accumulator", "counter_resolution", "timestamp"}``;
  ``energy_accumulator × counter_resolution`` is the energy since the last restart or GPU reset, **in µJ**.
  Before ROCm 6.4 the accumulator's key was ``"power"`` (same meaning; renamed, the old name deprecated).
  The accumulator is a ``uint64_t`` in the C API, so it does not wrap in practice. Not supported on a
  virtual machine guest: the call raises ``AmdSmiLibraryException``.
- ``amdsmi_get_power_info(h)`` → watts in ``socket_power`` (ROCm 7), ``current_socket_power`` (MI300 and
  newer) or ``average_socket_power`` (MI200 and earlier); a field a GPU does not report holds the string
  ``"N/A"``.
- ``amdsmi_get_gpu_activity(h)["gfx_activity"]`` → percent, or ``"N/A"``.

Which GPUs: ``ROCR_VISIBLE_DEVICES`` (indices or ``GPU-`` UUIDs) is applied first, then
``HIP_VISIBLE_DEVICES`` (or ``CUDA_VISIBLE_DEVICES``, which HIP also honours) as indices into what is
left — the order in which the ROCm runtime applies them (ROCm "environment variables" reference; PyTorch's
``torch.cuda._parse_visible_devices``).

Dual-die parts: on MI250/MI250X (and, per CodeCarbon's ``gpu_amd.py``, other dual-GCD MI200/MI300 parts,
MI210 excepted) AMD's driver reports both dies' power and energy on the even-indexed GCD and zero on the odd
one (Zeus ``zeus/device/gpu/amd.py`` and CodeCarbon both document this). A visible odd GCD that reads zero
is therefore measured through its even partner, like a MIG instance through its parent on NVIDIA, and the
report says the figure covers both dies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from carbonstep.measure.readers.base import Domain, Kind, Method, Scope, Share, Unavailable

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a run imports no typing
if TYPE_CHECKING:
    from typing import Any, Mapping

UJ_PER_J = 1e6
POWER_FIELDS = ("socket_power", "current_socket_power", "average_socket_power")
INSTALL = "pip install 'carbonstep[amd]' (the amdsmi version that matches your ROCm)"


def _number(value: Any) -> float | None:
    """A reading, or None where AMD SMI reports "N/A" (or anything that is not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def energy_uj(counts: Mapping[str, Any]) -> float:
    """Energy in µJ from ``amdsmi_get_energy_count``'s dict (``energy_accumulator`` or, before ROCm 6.4,
    ``power``) × ``counter_resolution``."""
    ticks = _number(counts.get("energy_accumulator", counts.get("power")))
    resolution = _number(counts.get("counter_resolution"))
    if ticks is None or resolution is None:
        raise ValueError(f"amdsmi_get_energy_count returned no usable counter: {dict(counts)!r}")
    return ticks * resolution


def power_w(info: Mapping[str, Any]) -> float | None:
    """Watts from ``amdsmi_get_power_info``'s dict: the first field this GPU reports."""
    for name in POWER_FIELDS:
        value = _number(info.get(name))
        if value is not None:
            return value
    return None


def is_dual_die(model: str) -> bool:
    """MI200 and MI300 parts whose driver reports two GCDs' energy on one (MI210 is single-die)."""
    name = model.upper()
    return ("MI2" in name and "MI210" not in name) or "MI3" in name


class AmdSmiReader:
    """One AMD GPU, read as a counter (J) or as power (W)."""

    domain = Domain.GPU
    share = Share.NONE
    scope = Scope.DEVICE
    wrap_j = None  # a uint64 accumulator: it does not wrap in practice; a drop (GPU reset) counts as zero

    def __init__(self, amdsmi: Any, handle: Any, index: int, uuid: str, model: str, note: str = "") -> None:
        self._amdsmi = amdsmi
        self._handle = handle
        self.index = index
        self.uuid = uuid
        self.gpu_name = model
        self.name = f"gpu:{index}"
        self.last_utilisation_pct: float | None = None
        try:
            energy_uj(amdsmi.amdsmi_get_energy_count(handle))
            self.kind, self.method = Kind.COUNTER, Method.COUNTER
            how = "AMD SMI energy accumulator"
        except (amdsmi.AmdSmiException, ValueError, KeyError):
            if power_w(amdsmi.amdsmi_get_power_info(handle)) is None:
                raise ValueError("neither an energy accumulator nor a power reading") from None
            self.kind, self.method = Kind.POWER, Method.POWER
            how = "AMD SMI socket power readings (no energy accumulator here), integrated"
        self.description = f"{model} [{uuid}]: {how}{'; ' + note if note else ''}"

    def read(self) -> float:
        """Cumulative joules (counter) or watts (power)."""
        if self.kind is Kind.COUNTER:
            value = energy_uj(self._amdsmi.amdsmi_get_energy_count(self._handle)) / UJ_PER_J
        else:
            watts = power_w(self._amdsmi.amdsmi_get_power_info(self._handle))
            if watts is None:
                raise ValueError("AMD SMI returned no power reading")
            value = watts
        try:
            self.last_utilisation_pct = _number(self._amdsmi.amdsmi_get_gpu_activity(self._handle).get("gfx_activity"))
        except self._amdsmi.AmdSmiException:
            self.last_utilisation_pct = None
        return value

    def close(self) -> None:
        """Nothing to release: AMD SMI stays initialised for the process."""


@dataclass(frozen=True)
class _Gpu:
    index: int
    handle: Any
    uuid: str
    model: str


def _normalise_uuid(text: str) -> str:
    text = text.strip().lower()
    return (text[4:] if text.startswith("gpu-") else text).replace("-", "")


def _uuid_matches(uuid: str, key: str) -> bool:
    """ROCm tools print a GPU's id in different forms (``GPU-`` + 16 hex digits for ROCR, a dashed
    UUID from AMD SMI); a unique prefix or suffix of the hex digits identifies it."""
    return uuid.startswith(key) or uuid.endswith(key)


def _select(gpus: list[_Gpu], spec: str | None, what: str) -> tuple[list[_Gpu], list[str]]:
    """Apply one visibility variable (indices or UUIDs, in its order) to ``gpus``."""
    if spec is None:
        return gpus, []
    chosen: list[_Gpu] = []
    warnings: list[str] = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            break
        if entry.lstrip("-").isdigit():
            index = int(entry)
            if not 0 <= index < len(gpus):
                warnings.append(f"{what} entry {entry!r} is out of range ({len(gpus)} GPUs); stopped there")
                break
            chosen.append(gpus[index])
            continue
        key = _normalise_uuid(entry)
        hits = [g for g in gpus if key and _uuid_matches(_normalise_uuid(g.uuid), key)]
        if len(hits) != 1:
            warnings.append(f"{what} entry {entry!r} matches {len(hits)} GPUs; stopped there")
            break
        chosen.append(hits[0])
    return chosen, warnings


def visible_gpus(gpus: list[_Gpu], environ: Mapping[str, str]) -> tuple[list[_Gpu], list[str]]:
    """The GPUs this process may use: ``ROCR_VISIBLE_DEVICES`` first, then HIP's (or CUDA's) indices."""
    chosen, warnings = _select(gpus, environ.get("ROCR_VISIBLE_DEVICES"), "ROCR_VISIBLE_DEVICES")
    hip_name = "HIP_VISIBLE_DEVICES" if environ.get("HIP_VISIBLE_DEVICES") is not None else "CUDA_VISIBLE_DEVICES"
    chosen, more = _select(chosen, environ.get(hip_name), hip_name)
    return chosen, warnings + more


def _reads_zero(amdsmi: Any, handle: Any) -> bool:
    try:
        return not power_w(amdsmi.amdsmi_get_power_info(handle))
    except amdsmi.AmdSmiException:
        return True


def _measured_as(amdsmi: Any, gpu: _Gpu, every: list[_Gpu]) -> tuple[_Gpu, str]:
    """The GPU whose counters carry ``gpu``'s energy (its even partner for a silent odd GCD), and a note."""
    if not is_dual_die(gpu.model):
        return gpu, ""
    if gpu.index % 2 == 1 and gpu.index - 1 < len(every) and _reads_zero(amdsmi, gpu.handle):
        partner = every[gpu.index - 1]
        if partner.model == gpu.model:
            return partner, (f"dual-die GPU: GCD {gpu.index} reports no power of its own; measured through "
                             f"GCD {partner.index}, whose figure covers both dies")
    return gpu, "dual-die GPU: this GCD's figure covers both dies of the package"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _enumerate(amdsmi: Any) -> list[_Gpu]:
    gpus = []
    for index, handle in enumerate(amdsmi.amdsmi_get_processor_handles()):
        uuid = _text(amdsmi.amdsmi_get_gpu_device_uuid(handle))
        try:
            model = _text(amdsmi.amdsmi_get_gpu_asic_info(handle).get("market_name") or "AMD GPU")
        except amdsmi.AmdSmiException:
            model = "AMD GPU"
        gpus.append(_Gpu(index, handle, uuid, model))
    return gpus


AMD_PCI_VENDOR = "0x1002"  #: AMD/ATI's PCI vendor id, as sysfs writes it in /sys/class/drm/card*/device/vendor


def amd_driver_loaded(kfd: str = "/dev/kfd") -> bool:
    """Whether the amdgpu compute driver is present (ROCm's ``/dev/kfd``): only then is a missing
    ``amdsmi`` worth reporting."""
    return os.path.exists(kfd)


def amd_device_present(dev_root: str = "/dev", drm_root: str = "/sys/class/drm") -> bool:
    """Whether this machine has an AMD GPU: ROCm's ``/dev/kfd``, or a DRM card whose PCI vendor is AMD's.

    Checked before ``amdsmi`` is imported: where the package is installed but no AMD GPU exists (another
    tool installed it), importing and initialising it costs milliseconds and prints a libamd_smi.so message.
    """
    return amd_driver_loaded(f"{dev_root}/kfd") or bool(amd_drm_cards(drm_root))


def amd_drm_cards(drm_root: str = "/sys/class/drm") -> list[str]:
    """The DRM cards (``card0`` …, sorted) whose PCI vendor is AMD's, read from sysfs without ``amdsmi``."""
    try:
        cards = sorted(os.listdir(drm_root))
    except OSError:
        return []
    found = []
    for card in cards:
        try:
            with open(f"{drm_root}/{card}/device/vendor") as handle:
                if handle.read().strip().lower() == AMD_PCI_VENDOR:
                    found.append(card)
        except OSError:
            continue  # a connector (card0-DP-1) or a device without a PCI vendor
    return found


def _import_amdsmi() -> tuple[Any, Unavailable | None]:
    try:
        import amdsmi
    except ImportError:
        if not amd_driver_loaded():
            return None, None
        return None, Unavailable("amdsmi", "an AMD GPU driver is loaded but amdsmi is not installed", INSTALL)
    except (AttributeError, OSError, KeyError) as exc:  # installed, but its ROCm library does not load
        return None, Unavailable("amdsmi", f"amdsmi could not load its ROCm library: {exc}", INSTALL)
    return amdsmi, None


def discover_amd(
    amdsmi: Any = None, environ: Mapping[str, str] | None = None, local_rank: int | None = None,
) -> tuple[list[AmdSmiReader], list[Unavailable], list[str]]:
    """Readers for the AMD GPUs this process uses; what was unavailable; warnings.

    ``amdsmi`` is the AMD SMI module (imported when None, only where :func:`amd_device_present`): tests
    pass a fake that follows AMD SMI's documented units and errors. ``environ`` overrides ``os.environ``
    for the visibility variables.
    ``local_rank`` (one of several ranks on this node that all see every GPU): keep the GPU at that
    position only (the ``cuda:LOCAL_RANK`` convention, which ROCm builds of PyTorch share).
    """
    if amdsmi is None:
        if not amd_device_present():
            return [], [], []  # no AMD GPU here: amdsmi is neither imported nor mentioned
        amdsmi, missing = _import_amdsmi()
        if amdsmi is None:
            return [], [missing] if missing is not None else [], []
    environ = os.environ if environ is None else environ
    try:
        amdsmi.amdsmi_init()
    except amdsmi.AmdSmiException as exc:
        return [], [Unavailable("amdsmi", f"AMD SMI could not start: {exc} (no amdgpu driver or GPU)")], []
    try:
        every = _enumerate(amdsmi)
        chosen, warnings = visible_gpus(every, environ)
        rank_note = ""
        if local_rank is not None and len(chosen) > 1:
            if local_rank < len(chosen):
                chosen, rank_note = [chosen[local_rank]], f"assumed from local rank {local_rank} (cuda:LOCAL_RANK)"
            else:
                warnings.append(f"local rank {local_rank} but only {len(chosen)} AMD GPUs visible: every visible "
                                "GPU is counted by this rank (set ROCR_VISIBLE_DEVICES per rank)")
        readers: list[AmdSmiReader] = []
        seen: set[str] = set()
        for gpu in chosen:
            source, note = _measured_as(amdsmi, gpu, every)
            note = "; ".join(n for n in (note, rank_note) if n)
            if source.uuid in seen:
                continue  # both GCDs of one package visible: its counter is counted once
            seen.add(source.uuid)
            try:
                readers.append(AmdSmiReader(amdsmi, source.handle, source.index, source.uuid, source.model, note))
            except (amdsmi.AmdSmiException, ValueError) as exc:
                warnings.append(f"GPU {gpu.index} ({gpu.model}) has neither an energy counter nor power: {exc}")
    except amdsmi.AmdSmiException as exc:
        return [], [Unavailable("amdsmi", f"AMD SMI query failed: {exc}")], []
    missing_list = [] if readers else [Unavailable("amdsmi", "no AMD GPU visible to this process")]
    return readers, missing_list, warnings


__all__ = ["AmdSmiReader", "discover_amd", "energy_uj", "is_dual_die", "power_w", "visible_gpus"]
