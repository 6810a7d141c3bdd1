"""Energy of inference, without any framework: joules per batch and per sample of one pass.

A framework's callback (Keras' ``predict()`` / ``evaluate()`` hooks) or any serving loop calls
``begin`` / ``batch`` / ``end`` on an :class:`InferenceSession`; the session measures through its own
:class:`~carbonstep.Tracker`, writes the report and logs the figures to a sink.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from carbonstep.accounting.footprint import J_PER_KWH
from carbonstep.measure.tracker import Tracker
from carbonstep.report.record import RunReport
from carbonstep.sinks.base import Sink


def inference_figures(report: RunReport, batches: int, samples: int) -> dict[str, float]:
    """Counts, energy, CO2e and joules per batch (and per sample, when samples were counted) of a pass."""
    joules = report.energy_kwh * J_PER_KWH
    figures: dict[str, float] = {
        "inference_batches": batches, "inference_samples": samples, "inference_energy_kwh": report.energy_kwh,
        "inference_co2_kg": report.co2_kg, "inference_joules_per_batch": joules / max(batches, 1),
    }
    if samples:
        figures["inference_joules_per_sample"] = joules / samples
    return figures


class InferenceSession:
    """Measures one inference pass named ``mode`` ("predict", "evaluate", "serve"…).

    ``tracker_options`` are Tracker arguments (validated at once); the pass's report goes to
    ``output_dir``/carbonstep-<run id>-<mode>.json.
    """

    def __init__(self, mode: str, tracker_options: Mapping[str, Any], output_dir: str | os.PathLike[str]) -> None:
        self.mode = mode
        self.output_dir = Path(output_dir)
        self.tracker = Tracker(**{**tracker_options, "name": mode, "output_dir": None})
        self.batches = 0
        self.samples = 0
        self.report: RunReport | None = None
        self.report_path: Path | None = None

    def begin(self) -> "InferenceSession":
        """Start measuring."""
        self.tracker.start()
        return self

    def batch(self, index: int, count: int | None = None) -> None:
        """A batch is done; ``count``: its samples, when known."""
        self.batches += 1
        self.samples += count or 0
        self.tracker.mark(f"{self.mode}_batch", step=index, count=count)

    def end(self, sink: Sink | None = None, step: int = 0) -> RunReport:
        """Stop measuring, write the report, log the figures to ``sink`` at ``step`` and close it."""
        if self.report is not None:
            return self.report
        report = self.tracker.stop()
        figures = inference_figures(report, self.batches, self.samples)
        self.report = report.with_changes(extra={**report.extra, "inference": {"mode": self.mode, **figures}})
        self.report_path = self.report.save(self.output_dir / f"carbonstep-{self.report.run_id}-{self.mode}.json")
        if sink is not None:
            sink.log_metrics(figures, step)
            sink.close()
        return self.report


__all__ = ["InferenceSession", "inference_figures"]
