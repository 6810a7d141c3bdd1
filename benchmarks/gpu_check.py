#!/usr/bin/env python3
"""Is carbonstep right on this GPU? One command, about four minutes, a table and a JSON file.

    python benchmarks/gpu_check.py [--seconds 60] [--json gpu_check.json] [--require-gpu] [--shared]

1. discovery: the GPUs NVML sees, which one carbonstep selects with CUDA_VISIBLE_DEVICES unset, ``0``, the
   GPU's UUID and (MIG on) a ``MIG-`` id, and the method it chooses (counter or power);
2. energy truth: a training loop that keeps the GPU busy for ``--seconds``; carbonstep's GPU energy against
   this script's own reading of NVML's total-energy counter at the loop's start and end (within 1 %) and
   against its own 10 Hz integration of NVML power (within 3 %); then the same with carbonstep forced onto
   power integration (as on a GPU without the counter);
3. cost: one NVML read, the sampler's CPU per sample at 10 Hz, and the step time tracked/untracked at 10 Hz
   over alternated blocks (goal: under 0.5 %);
4. the Lightning callback on that loop: ``energy_kwh_gpu`` is logged, non-zero, and the figure sent at the
   end equals the report's;
5. with ``--shared`` instead of 2-4: two training processes on the same GPU, each under carbonstep, one at 3x
   the other's batch: their GPU energies sum to the device's counter within 3 % and the larger batch gets the
   larger share (benchmarks/gpu_share_check.py).

Needs torch with CUDA and carbonstep from this tree (``PYTHONPATH=src``); Lightning for check 4. Exits 1 if
a check fails; with no NVIDIA GPU it says so and exits 0 (1 with ``--require-gpu``). ``run_checks`` takes the
NVML module and the device, so the tests run every check on CPU against a fake NVML.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

J_PER_KWH = 3.6e6
COUNTER_TOLERANCE = 0.01
POWER_TOLERANCE = 0.03
STEP_OVERHEAD_GOAL = 0.005


@dataclass
class Check:
    """One line of the table: ``passed`` is None for a figure that is reported, not judged."""

    section: str
    name: str
    value: str
    passed: bool | None = None


# -- the workload ---------------------------------------------------------------------------------------------
class Workload:
    """A training step of an MLP; on a GPU, wide enough (bf16, 4 × 8192²) to draw several hundred watts."""

    def __init__(self, device: str, width: int | None = None, batch: int | None = None) -> None:
        import torch

        self.torch = torch
        self.device = device
        width = width or (8192 if device == "cuda" else 64)
        self.batch = batch or (4096 if device == "cuda" else 32)
        layers: list[Any] = []
        for _ in range(4):
            layers += [torch.nn.Linear(width, width), torch.nn.GELU()]
        self.model = torch.nn.Sequential(*layers).to(device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.x = torch.randn(self.batch, width, device=device)

    def step(self) -> None:
        """One forward, backward and optimizer step."""
        with self.torch.autocast(self.device, dtype=self.torch.bfloat16, enabled=self.device == "cuda"):
            loss = self.model(self.x).float().pow(2).mean()
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def sync(self) -> None:
        """Wait for the device to finish queued work."""
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def run_for(self, seconds: float) -> int:
        """Train for about ``seconds``; the number of steps taken."""
        steps, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.step()
            steps += 1
            if steps % 10 == 0:
                self.sync()
        self.sync()
        return steps


# -- independent NVML readings -----------------------------------------------------------------------------
class PowerIntegrator:
    """This script's own 10 Hz trapezoid of ``nvmlDeviceGetPowerUsage`` (mW), in a thread of its own.

    The first and last readings are taken on entry and exit, on the caller's thread, so the integral covers
    exactly the window between them whatever the thread's scheduling.
    """

    def __init__(self, nvml: Any, handle: Any, interval_s: float = 0.1) -> None:
        self.nvml, self.handle, self.interval_s = nvml, handle, interval_s
        self.joules = 0.0
        self._last = (0.0, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-check-power", daemon=True)

    def _add_reading(self) -> None:
        t, w = time.monotonic(), self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1e3
        t_prev, w_prev = self._last
        self.joules += (w + w_prev) / 2 * (t - t_prev)
        self._last = (t, w)

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self._stop.is_set():
            deadline += self.interval_s
            if not self._stop.wait(max(0.0, deadline - time.monotonic())):
                self._add_reading()

    def __enter__(self) -> PowerIntegrator:
        self._last = (time.monotonic(), self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1e3)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._add_reading()


def counter_j(nvml: Any, handle: Any) -> float:
    """NVML's total-energy counter, read by this script (mJ since the driver loaded → J)."""
    return nvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3


class _WithoutCounter:
    """The NVML module as a GPU without the energy counter shows it: carbonstep must integrate power."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml

    def __getattr__(self, name: str) -> Any:
        return getattr(self._nvml, name)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:  # noqa: N802 - NVML's name
        raise self._nvml.NVMLError_NotSupported()


# -- 1. discovery ---------------------------------------------------------------------------------------------
def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _mig_id(nvml: Any, handle: Any) -> str | None:
    """The UUID of the first MIG instance of ``handle`` when MIG is on; None otherwise."""
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
        if current != getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1):
            return None
        return _text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, 0)))
    except (AttributeError, nvml.NVMLError):
        return None


def discovery_checks(nvml: Any) -> tuple[list[Check], str]:
    """What NVML sees and what carbonstep selects under each CUDA_VISIBLE_DEVICES form; GPU 0's UUID."""
    from carbonstep.measure.readers.nvml import discover_nvml

    checks = []
    handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
    uuids = [_text(nvml.nvmlDeviceGetUUID(h)) for h in handles]
    for i, (h, uuid) in enumerate(zip(handles, uuids)):
        checks.append(Check("discovery", f"NVML GPU {i}", f"{_text(nvml.nvmlDeviceGetName(h))} {uuid}"))
    cases = {"unset": None, "0": "0", "GPU 0's UUID": uuids[0]}
    mig = _mig_id(nvml, handles[0])
    if mig:
        cases["GPU 0's first MIG id"] = mig
    else:
        checks.append(Check("discovery", "MIG", "off or not supported on GPU 0: MIG selection not checked"))
    for label, spec in cases.items():
        readers, _, warnings = discover_nvml(nvml, visible=spec, use_env=False)
        chosen = [(r.uuid, r.method.value) for r in readers]
        expected = uuids if spec is None else [uuids[0]]
        ok = [u for u, _ in chosen] == expected
        shown = ", ".join(f"{u[:12]}… ({m})" for u, m in chosen) or "none"
        checks.append(Check("discovery", f"CUDA_VISIBLE_DEVICES={label}", shown + (f"; {warnings}" if warnings else ""),
                            ok))
        for r in readers:
            r.close()
    return checks, uuids[0]


# -- 2. energy truth ------------------------------------------------------------------------------------------
def _relative(a: float, b: float) -> float:
    return abs(a - b) / b if b else float("inf")


def measure_energy(nvml: Any, handle: Any, reader: Any, workload: Workload, seconds: float) -> dict[str, float]:
    """carbonstep's GPU joules for one training window, beside this script's counter and power readings.

    carbonstep's figure is the difference of two refreshed snapshots taken right beside the script's own
    counter reads, so both cover the same window.
    """
    from carbonstep import Tracker

    tracker = Tracker(intensity=100, interval_s=0.1, readers=[reader])
    tracker.start()
    try:
        first = tracker.snapshot()
        has_counter = True
        try:
            start_j = counter_j(nvml, handle)
        except nvml.NVMLError:
            has_counter, start_j = False, 0.0
        with PowerIntegrator(nvml, handle) as power:
            steps = workload.run_for(seconds)
        end_j = counter_j(nvml, handle) if has_counter else 0.0
        last = tracker.snapshot()
    finally:
        tracker.stop()
    return {"carbonstep_j": (last.energy_kwh_gpu - first.energy_kwh_gpu) * J_PER_KWH,
            "counter_j": end_j - start_j if has_counter else 0.0, "power_j": power.joules, "steps": steps,
            "duration_s": last.duration_s - first.duration_s}


def energy_checks(nvml: Any, uuid: str, workload: Workload, seconds: float) -> tuple[list[Check], dict[str, Any]]:
    """carbonstep on its chosen method, then forced onto power integration, against this script's readings."""
    from carbonstep.measure.readers.nvml import discover_nvml

    handle = nvml.nvmlDeviceGetHandleByUUID(uuid)
    checks, figures = [], {}
    for label, module in (("chosen method", nvml), ("forced power", _WithoutCounter(nvml))):
        readers, _, _ = discover_nvml(module, visible=uuid, use_env=False)
        reader = readers[0]
        got = measure_energy(nvml, handle, reader, workload, seconds)
        figures[label] = {**got, "method": reader.method.value}
        watts = got["carbonstep_j"] / got["duration_s"] if got["duration_s"] else 0.0
        checks.append(Check("energy", f"{label}: carbonstep ({reader.method.value})",
                            f"{got['carbonstep_j']:.1f} J over {got['duration_s']:.1f} s ({watts:.0f} W mean)"))
        if got["counter_j"]:
            gap = _relative(got["carbonstep_j"], got["counter_j"])
            tolerance = COUNTER_TOLERANCE if reader.method.value == "counter" else POWER_TOLERANCE
            checks.append(Check("energy", f"{label}: vs NVML counter read by this script",
                                f"{got['counter_j']:.1f} J, gap {gap:.2%} (≤ {tolerance:.0%})", gap <= tolerance))
        gap = _relative(got["carbonstep_j"], got["power_j"])
        checks.append(Check("energy", f"{label}: vs this script's 10 Hz power integral",
                            f"{got['power_j']:.1f} J, gap {gap:.2%} (≤ {POWER_TOLERANCE:.0%})", gap <= POWER_TOLERANCE))
        reader.close()
    return checks, figures


# -- 3. cost --------------------------------------------------------------------------------------------------
def read_cost_us(reader: Any, n: int = 500) -> float:
    """Wall time of one reader.read() (NVML energy or power, and utilisation), in µs."""
    start = time.perf_counter()
    for _ in range(n):
        reader.read()
    return (time.perf_counter() - start) / n * 1e6


def sampler_cpu_ms(reader: Any, seconds: float) -> float:
    """Process CPU per sample of carbonstep's 10 Hz sampler, over an idle window (minus an untracked one)."""
    from carbonstep import Tracker

    def idle_cpu(tracked: bool) -> float:
        tracker = Tracker(intensity=100, interval_s=0.1, readers=[reader]) if tracked else None
        if tracker:
            tracker.start()
        start = time.process_time()
        time.sleep(seconds)
        used = time.process_time() - start
        if tracker:
            tracker.stop()
        return used

    return max(0.0, idle_cpu(True) - idle_cpu(False)) / (seconds / 0.1) * 1e3


def step_overhead(
    reader: Any, workload: Workload, blocks: int, block_s: float,
) -> tuple[float, list[float], list[float]]:
    """Median step time tracked at 10 Hz over untracked, from alternated blocks; and both lists (ms)."""
    from carbonstep import Tracker

    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(blocks * 2):
        tracked = i % 2 == 1
        tracker = Tracker(intensity=100, interval_s=0.1, readers=[reader]) if tracked else None
        if tracker:
            tracker.start()
        start = time.perf_counter()
        steps = workload.run_for(block_s)
        times[tracked].append((time.perf_counter() - start) / steps * 1e3)
        if tracker:
            tracker.stop()
    ratio = statistics.median(times[True]) / statistics.median(times[False]) - 1
    return ratio, times[True], times[False]


def cost_checks(nvml: Any, uuid: str, workload: Workload, seconds: float) -> tuple[list[Check], dict[str, Any]]:
    """NVML read cost, sampler CPU per sample and step overhead at 10 Hz."""
    from carbonstep.measure.readers.nvml import discover_nvml

    readers, _, _ = discover_nvml(nvml, visible=uuid, use_env=False)
    reader = readers[0]
    read_us = read_cost_us(reader)
    cpu_ms = sampler_cpu_ms(reader, max(2.0, seconds / 12))
    ratio, tracked, untracked = step_overhead(reader, workload, blocks=4, block_s=max(0.5, seconds / 15))
    reader.close()
    checks = [
        Check("cost", "one NVML read (energy or power + utilisation)", f"{read_us:.1f} µs"),
        Check("cost", "sampler CPU per sample at 10 Hz", f"{cpu_ms:.3f} ms"),
        Check("cost", "step time tracked / untracked at 10 Hz", f"{ratio:+.2%} (goal < {STEP_OVERHEAD_GOAL:.1%})",
              ratio < STEP_OVERHEAD_GOAL),
    ]
    return checks, {"read_us": read_us, "sampler_cpu_ms_per_sample": cpu_ms, "step_overhead": ratio,
                    "step_ms_tracked": tracked, "step_ms_untracked": untracked}


# -- 4. the Lightning callback --------------------------------------------------------------------------------
def lightning_checks(reader_factory: Callable[[], Any], device: str, steps: int, output_dir: Path) -> list[Check]:
    """A short Lightning run of the same model with the callback: energy_kwh_gpu logged, non-zero, consistent."""
    try:
        import lightning.pytorch as pl
    except ImportError:
        return [Check("lightning", "callback", "lightning is not installed: not checked", None)]
    import torch

    from carbonstep.lightning import CarbonCallback

    work = Workload(device)

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = work.model

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return self.model(batch[0]).float().pow(2).mean()

        def configure_optimizers(self) -> Any:
            return torch.optim.AdamW(self.parameters(), lr=1e-4)

    data = torch.utils.data.TensorDataset(work.x.detach().cpu().repeat(4, 1))
    loader = torch.utils.data.DataLoader(data, batch_size=work.batch)
    callback = CarbonCallback(intensity=100, interval_s=0.1, readers=[reader_factory()], mlflow=False,
                              output_dir=output_dir, progress_bar=False)
    trainer = pl.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_steps=steps,
                         callbacks=[callback], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         log_every_n_steps=5, enable_model_summary=False, precision="bf16-mixed" if device == "cuda"
                         else "32-true", default_root_dir=str(output_dir))
    trainer.fit(Module(), loader)
    report = callback.report
    logged = float(trainer.callback_metrics.get("energy_kwh_gpu", 0.0))
    sent = report.extra["cumulative_with_resume"]["energy_kwh_gpu"] if report else 0.0
    total = report.energy_kwh_gpu if report else 0.0
    return [
        Check("lightning", "energy_kwh_gpu in trainer.callback_metrics", f"{logged:.3e} kWh", 0 < logged <= total),
        Check("lightning", "final energy_kwh_gpu sent = report's", f"{sent:.3e} vs {total:.3e} kWh",
              total > 0 and sent == total),
    ]


# -- the run --------------------------------------------------------------------------------------------------
def run_checks(nvml: Any, device: str, seconds: float, output_dir: Path) -> tuple[list[Check], dict[str, Any]]:
    """Every check against ``nvml`` (pynvml or a fake) with the workload on ``device``."""
    from carbonstep.measure.readers.nvml import discover_nvml

    checks, uuid = discovery_checks(nvml)
    workload = Workload(device)
    workload.run_for(min(5.0, seconds / 10))  # warm-up: clocks and power ramp up before the measured window
    energy, energy_figures = energy_checks(nvml, uuid, workload, seconds)
    cost, cost_figures = cost_checks(nvml, uuid, workload, seconds)
    lightning = lightning_checks(lambda: discover_nvml(nvml, visible=uuid, use_env=False)[0][0], device,
                                 steps=max(20, int(seconds)), output_dir=output_dir)
    return checks + energy + cost + lightning, {"energy": energy_figures, "cost": cost_figures}


def shared_run_checks(nvml: Any, seconds: float, output_dir: Path) -> tuple[list[Check], dict[str, Any]]:
    """Discovery, then two processes sharing GPU 0 (benchmarks/gpu_share_check.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import gpu_share_check

    checks, uuid = discovery_checks(nvml)
    result = gpu_share_check.run_pair(nvml, uuid, seconds, output_dir)
    return checks + gpu_share_check.judge(result), {"shared": asdict(result)}


def render(checks: list[Check]) -> str:
    """The table, one check a row."""
    rows = ["| section | check | value | result |", "|---|---|---|---|"]
    for c in checks:
        result = "—" if c.passed is None else ("pass" if c.passed else "**FAIL**")
        rows.append(f"| {c.section} | {c.name} | {c.value} | {result} |")
    return "\n".join(rows)


def environment(nvml: Any) -> dict[str, str]:
    """Driver, CUDA and library versions for the record."""
    import platform

    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": str(torch.version.cuda)}
    try:
        info["driver"] = _text(nvml.nvmlSystemGetDriverVersion())
    except (AttributeError, nvml.NVMLError):
        info["driver"] = "unknown"
    return info


def main(argv: list[str] | None = None, nvml: Any = None, device: str | None = None) -> int:
    """Run the checks; 0 when all pass (or no GPU without --require-gpu), 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each measured training window")
    parser.add_argument("--json", type=Path, default=Path("gpu_check.json"), help="where to write the results")
    parser.add_argument("--require-gpu", action="store_true", help="exit 1 when no NVIDIA GPU is found")
    parser.add_argument("--shared", action="store_true",
                        help="two training processes on GPU 0: their shares against the device (no setting changed)")
    args = parser.parse_args(argv)
    real = nvml is None
    if real:
        import pynvml as nvml
    try:
        nvml.nvmlInit()
        count = nvml.nvmlDeviceGetCount()
    except nvml.NVMLError as exc:
        count, reason = 0, f"NVML could not start: {exc}"
    else:
        reason = "NVML sees no GPU"
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if count == 0 or (real and device != "cuda"):
        why = reason if count == 0 else "torch sees no CUDA device"
        print(f"gpu_check: no NVIDIA GPU found ({why}); nothing was checked.")
        args.json.write_text(json.dumps({"gpu": None, "reason": why}, indent=2))
        return 1 if args.require_gpu else 0
    started = time.time()
    if args.shared:
        checks, figures = shared_run_checks(nvml, args.seconds, args.json.parent / "gpu_check_out")
    else:
        checks, figures = run_checks(nvml, device, args.seconds, args.json.parent / "gpu_check_out")
    table = render(checks)
    print(table)
    failed = [c for c in checks if c.passed is False]
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), "device": device,
              "environment": environment(nvml), "checks": [asdict(c) for c in checks], "figures": figures,
              "seconds": args.seconds, "wall_s": time.time() - started, "failed": len(failed)}
    args.json.write_text(json.dumps(result, indent=2))
    print(f"\n{len(checks)} checks, {len(failed)} failed, {time.time() - started:.0f} s; results in {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
