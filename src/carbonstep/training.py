"""What every framework callback does, without any framework.

A callback translates its hooks into ``begin`` / ``step`` / ``validation`` /
``epoch_end`` / ``end`` on a :class:`TrainingSession`; the session measures (through a
:class:`~carbonstep.Tracker`), logs (through a sink such as :class:`~carbonstep.mlflow.MlflowSink`),
checks the :class:`~carbonstep.Budget` and writes the local report. Offsets carried in
``state_dict()`` make the footprint and the budget survive checkpoint and resume.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Protocol

from ._version import __version__
from .budget import Budget, Decision
from .report import RunReport
from .session import Snapshot, Tracker

log = logging.getLogger("carbonstep")
CUMULATIVE = ("energy_kwh", "co2_kg", "water_l", "energy_kwh_gpu", "energy_kwh_cpu", "energy_kwh_ram")


class Sink(Protocol):
    run_id: str | None

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...
    def log_params(self, params: Mapping[str, Any]) -> None: ...
    def set_tags(self, tags: Mapping[str, Any]) -> None: ...
    def log_artifact(self, path: str | os.PathLike[str]) -> None: ...
    def close(self, status: str = "FINISHED") -> str | None: ...


def slurm_tags(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Slurm job id, user and nodes, when the job runs under Slurm."""
    names = {"slurm.job_id": "SLURM_JOB_ID", "slurm.user": "SLURM_JOB_USER", "slurm.node": "SLURMD_NODENAME",
             "slurm.nodelist": "SLURM_JOB_NODELIST"}
    return {tag: environ[var] for tag, var in names.items() if environ.get(var)}


class TrainingSession:
    """Measures one training run for a callback: marks, logging cadence, budget, report."""

    def __init__(
        self,
        tracker_options: Mapping[str, Any],
        budget: Budget | None = None,
        log_every_n_steps: int | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        training_type: str = "pre-training",
        summary: bool = True,
    ) -> None:
        self.tracker = Tracker(**tracker_options)  # validates the configuration at once
        if budget is not None and not isinstance(budget, Budget):
            raise TypeError(f"budget must be a carbonstep.Budget, got {type(budget).__name__}")
        self.budget = budget
        self.log_every_n_steps = log_every_n_steps
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.training_type = training_type
        self.summary = summary
        self.rank = 0
        self.sink: Sink | None = None
        self.offset = dict.fromkeys(CUMULATIVE, 0.0)
        self.epoch_costs: list[dict[str, float]] = []
        self.decision: Decision | None = None
        self.report: RunReport | None = None
        self.messages: list[str] = []
        self._epoch_start = dict(self.offset)
        self._rank_suffix = ""
        self.last_step = 0
        self.validations: list[dict[str, Any]] = []  # step, energy, CO2 and the framework's metrics

    # -- lifecycle ------------------------------------------------------------------------
    def begin(self, sink: Sink | None, output_dir: str | os.PathLike[str], log_every_n_steps: int,
              rank: int = 0, world_size: int = 1) -> None:
        """Start measuring. ``sink`` is None on every rank but the one that logs."""
        if self.tracker.running:
            return
        self.sink = sink
        self.output_dir = self.output_dir or Path(output_dir)
        self.log_every_n_steps = self.log_every_n_steps or max(1, log_every_n_steps)
        self._rank_suffix = f"-rank{rank}" if world_size > 1 else ""
        self.rank = rank
        self.tracker.output_dir = None  # the session writes the report itself, at end()
        self.tracker.start()
        atexit.register(self._end_at_exit)  # frameworks without an exception hook: a crash still reports
        self._epoch_start = self.cumulative(self.tracker.snapshot(refresh=False))
        if sink is not None:
            sink.log_params(self._params())
            sink.set_tags({"carbonstep.version": __version__, **slurm_tags()})

    def _params(self) -> dict[str, Any]:
        t = self.tracker
        intensity = t._intensity_record()
        devices = ", ".join(f"{r.name} ({r.method.value})" for r in t._readers)
        return {
            "carbonstep.region": intensity.region or intensity.region_name,
            "carbonstep.intensity_g_per_kwh": round(intensity.g_per_kwh, 3),
            "carbonstep.intensity_source": intensity.source, "carbonstep.intensity_year": intensity.year or "",
            "carbonstep.intensity_basis": intensity.basis, "carbonstep.pue": t.pue, "carbonstep.wue": t.wue,
            "carbonstep.methods": ", ".join(sorted({f"{r.domain.value}: {r.method.value}" for r in t._readers})),
            "carbonstep.devices": devices[:6000], "carbonstep.attribution": t.attribution,
        }

    def cumulative(self, snap: Snapshot) -> dict[str, float]:
        """Totals since the first segment (resume included), with average power."""
        metrics = snap.metrics()
        out = {k: metrics[k] + self.offset[k] for k in CUMULATIVE}
        out["power_w"] = metrics["power_w"]
        return out

    def step(self, step: int, epoch: int, count: float | None = None, log: bool = True) -> dict[str, float] | None:
        """Mark a training step; every ``log_every_n_steps`` return the totals (and log them, if ``log``)."""
        self.tracker.mark("step", step, epoch, count)
        if log:
            self.last_step = step  # the step the final totals are logged at
        if step % (self.log_every_n_steps or 1):
            return None
        totals = self.cumulative(self.tracker.snapshot(refresh=False))
        if log and self.sink is not None:
            self.sink.log_metrics(totals, step)
        return totals

    def validation(self, step: int, metrics: Mapping[str, float] | None = None, log: bool = True) -> dict[str, float]:
        """Record validation ``metrics`` with the energy and CO2 so far (kept in the report) and, if ``log``,
        log energy and CO2 at the step where the framework logs them."""
        self.tracker.mark("validation", step, None, None)
        self.last_step = max(self.last_step, step)
        totals = self.cumulative(self.tracker.snapshot())
        self.validations.append({"step": step, "energy_kwh": totals["energy_kwh"], "co2_kg": totals["co2_kg"],
                                 "metrics": {k: float(v) for k, v in (metrics or {}).items()}})
        if log and self.sink is not None:
            self.sink.log_metrics({"energy_kwh": totals["energy_kwh"], "co2_kg": totals["co2_kg"]}, step)
        return totals

    def epoch_end(self, epoch: int, step: int, log: bool = True) -> tuple[dict[str, float], Decision | None]:
        """Close an epoch: its cost, the totals (logged at ``step`` if ``log``), the budget's (local) decision."""
        self.tracker.mark("epoch_end", step, epoch, None)
        self.last_step = max(self.last_step, step)
        totals = self.cumulative(self.tracker.snapshot())
        cost = {"kwh": totals["energy_kwh"] - self._epoch_start["energy_kwh"],
                "co2_kg": totals["co2_kg"] - self._epoch_start["co2_kg"],
                "water_l": totals["water_l"] - self._epoch_start["water_l"]}
        self.epoch_costs.append(cost)
        self._epoch_start = totals
        metrics = {**totals, "epoch_energy_kwh": cost["kwh"], "epoch_co2_kg": cost["co2_kg"]}
        if log and self.sink is not None:
            self.sink.log_metrics(metrics, step)
        decision = None
        if self.budget is not None:
            spent = {"kwh": totals["energy_kwh"], "co2_kg": totals["co2_kg"], "water_l": totals["water_l"]}
            decision = self.budget.check(epoch, spent, self.epoch_costs)
        return metrics, decision

    def record_stop(self, decision: Decision | None, epoch: int) -> str:
        """Record that training stops after ``epoch`` (this rank's decision, or another rank's)."""
        if decision is None or not decision.stop:
            base = decision or Decision(False, epoch, "", 0.0, 0.0, 0.0, "")
            decision = Decision(True, epoch, base.quantity, base.spent, base.projected, base.limit,
                                f"another rank's budget check stopped training after epoch {epoch}")
        self.decision = decision
        if self.sink is not None:
            self.sink.set_tags({f"carbonstep.budget.{k}": v for k, v in decision.to_dict().items()})
        log.warning("carbonstep: %s", decision.reason)
        return decision.reason

    def _end_at_exit(self) -> None:
        if self.report is None and self.tracker.running:
            self.end("failed")

    def end(self, status: str = "completed") -> RunReport:
        """Stop measuring, write the local report, send the rest to the sink (idempotent)."""
        if self.report is not None:
            return self.report
        if not self.tracker.running:
            raise RuntimeError("the training session never began")
        atexit.unregister(self._end_at_exit)
        report = self.tracker.stop(status)
        final = {k: getattr(report, k) + self.offset[k] for k in CUMULATIVE}
        final["power_w"] = report.power_w
        extra = {"training_type": self.training_type, "cumulative_with_resume": final,
                 "epoch_costs": self.epoch_costs, "validation": self.validations}
        report = report.with_changes(budget=self.decision.to_dict() if self.decision else None,
                                     extra={**report.extra, **extra})
        path = report.save((self.output_dir or Path.cwd()) / f"carbonstep-{report.run_id}{self._rank_suffix}.json")
        self.report_path = path
        if self.sink is not None:
            self.sink.log_metrics(final, self.last_step)
            self.sink.set_tags({"carbonstep.status": status, "carbonstep.wasted": str(report.wasted).lower()})
            self.sink.log_artifact(path)
            message = self.sink.close("FINISHED" if status == "completed" else "FAILED")
            if message:
                self.messages.append(message)
                log.warning("carbonstep: %s", message)
        self.report = report
        if self.summary and self.rank == 0:
            from .summary import render

            print(render(report), file=sys.stderr)
            print(f"  report: {path}", file=sys.stderr)
        return report

    # -- checkpoint and resume -----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self.report is not None:
            totals = self.report.extra["cumulative_with_resume"]
        elif self.tracker.running:
            totals = self.cumulative(self.tracker.snapshot())  # checkpoints are rare: take a fresh sample
        else:
            totals = self.offset
        return {"offset": {k: totals[k] for k in CUMULATIVE}, "epoch_costs": list(self.epoch_costs),
                "budget": None if self.budget is None else {**self.budget.limits(), "predict": self.budget.predict},
                "decision": self.decision.to_dict() if self.decision else None, "version": __version__}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.offset = {k: float(state["offset"].get(k, 0.0)) for k in CUMULATIVE}
        self.epoch_costs = [dict(c) for c in state.get("epoch_costs", [])]
        if self.budget is None and state.get("budget"):
            self.budget = Budget(**state["budget"])  # the budget survives resume
        self._epoch_start = dict(self.offset)
