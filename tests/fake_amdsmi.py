"""A small stand-in for the ``amdsmi`` module that follows AMD SMI's documented behaviour.

From AMD SMI's Python API reference (ROCm/amdsmi ``docs/reference/amdsmi-py-api.md``) and what peers met on
real hardware:

- ``amdsmi_get_energy_count`` → ``{"energy_accumulator", "counter_resolution", "timestamp"}``; accumulator ×
  resolution = µJ. ROCm < 6.4 named the accumulator ``"power"`` (``api="old"`` here). Unsupported on a VM
  guest: raises ``AmdSmiLibraryException`` (status 2, AMDSMI_STATUS_NOT_SUPPORTED).
- ``amdsmi_get_power_info`` → watts; a field the GPU does not report is the string ``"N/A"`` (MI300 reports
  ``current_socket_power``, MI200 and earlier ``average_socket_power``; Zeus and AIPerf met the "N/A").
- ``amdsmi_get_gpu_activity`` → ``gfx_activity`` percent or ``"N/A"``.
- Dual-die MI250/MI250X: the odd GCD reports zero power and energy; the even one both dies' (Zeus, CodeCarbon).
- No driver: ``amdsmi_init`` raises ``AmdSmiLibraryException`` (status 34, AMDSMI_STATUS_DRIVER_NOT_LOADED).
Errors: ``AmdSmiLibraryException`` subclasses ``AmdSmiException`` and carries ``get_error_code()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

NA = "N/A"
NOT_SUPPORTED = 2
DRIVER_NOT_LOADED = 34


class AmdSmiException(Exception):
    pass


class AmdSmiLibraryException(AmdSmiException):
    def __init__(self, code: int) -> None:
        super().__init__(f"AMD SMI library error {code}")
        self.code = code

    def get_error_code(self) -> int:
        return self.code


@dataclass
class FakeAmdGpu:
    uuid: str
    model: str = "AMD Instinct MI300X"
    watts: float = 600.0
    has_counter: bool = True
    power_field: str = "current_socket_power"  #: the one power field this GPU reports (others "N/A")
    silent: bool = False  #: the odd GCD of a dual-die part: reports zero
    resolution_uj: float = 15.259  #: µJ per accumulator tick (MI300's metrics table value)
    ticks_at_start: int = 987_654_321
    activity: Any = 90


class FakeAmdSmi:
    """Pass as ``amdsmi=`` to ``discover_amd``; time comes from ``clock`` (seconds)."""

    AmdSmiException = AmdSmiException
    AmdSmiLibraryException = AmdSmiLibraryException

    def __init__(self, gpus: list[FakeAmdGpu], clock: Callable[[], float], driver: bool = True,
                 api: str = "new") -> None:
        self.gpus = gpus
        self.clock = clock
        self.t0 = clock()
        self.driver = driver
        self.api = api
        self._handles = [object() for _ in gpus]

    def _gpu(self, handle: object) -> FakeAmdGpu:
        return self.gpus[self._handles.index(handle)]

    def amdsmi_init(self, flags: int = 0) -> None:
        if not self.driver:
            raise AmdSmiLibraryException(DRIVER_NOT_LOADED)

    def amdsmi_get_processor_handles(self) -> list[object]:
        return list(self._handles)

    def amdsmi_get_gpu_device_uuid(self, handle: object) -> str:
        return self._gpu(handle).uuid

    def amdsmi_get_gpu_asic_info(self, handle: object) -> dict[str, Any]:
        return {"market_name": self._gpu(handle).model, "vendor_id": 0x1002}

    def _watts(self, gpu: FakeAmdGpu) -> float:
        return 0.0 if gpu.silent else gpu.watts

    def amdsmi_get_energy_count(self, handle: object) -> dict[str, Any]:
        gpu = self._gpu(handle)
        if not gpu.has_counter:
            raise AmdSmiLibraryException(NOT_SUPPORTED)
        ticks = gpu.ticks_at_start + int((self.clock() - self.t0) * self._watts(gpu) * 1e6 / gpu.resolution_uj)
        key = "energy_accumulator" if self.api == "new" else "power"
        return {key: ticks, "counter_resolution": gpu.resolution_uj, "timestamp": int(self.clock() * 1e9)}

    def amdsmi_get_power_info(self, handle: object) -> dict[str, Any]:
        gpu = self._gpu(handle)
        info: dict[str, Any] = {f: NA for f in ("current_socket_power", "average_socket_power")}
        info[gpu.power_field] = int(self._watts(gpu))
        info.update(gfx_voltage=NA, soc_voltage=NA, mem_voltage=NA, power_limit=750)
        return info

    def amdsmi_get_gpu_activity(self, handle: object) -> dict[str, Any]:
        return {"gfx_activity": self._gpu(handle).activity, "umc_activity": NA, "mm_activity": NA}
