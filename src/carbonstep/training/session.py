"""What every framework callback does, without any framework.

A callback translates its hooks into ``begin`` / ``step`` / ``validation`` /
``epoch_end`` / ``end`` on a :class:`TrainingSession`; the session measures (through a
:class:`~carbonstep.Tracker`), logs (through a sink such as :class:`~carbonstep.mlflow_io.sink.MlflowSink`),
checks the :class:`~carbonstep.Budget` and writes the local report. Offsets carried in
``state_dict()`` make the footprint and the budget survive checkpoint and resume.

Under torch.distributed every rank measures its own share (see :mod:`carbonstep.measure.distributed`);
the totals logged and given to the budget are summed over ranks at each logging step,
validation, epoch end and at the end, where rank zero also writes the job's report
(:func:`carbonstep.report.merge.merge` of every rank's report).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from carbonstep.measure import distributed
from carbonstep.measure.tracker import Snapshot, Tracker
from carbonstep.mlflow_io import names
from carbonstep.report.record import RunReport
from carbonstep.sinks.base import Sink
from carbonstep.training import scope
from carbonstep.training.budget import Decision
from carbonstep.training.budget_check import BudgetChecks
from carbonstep.training.mlflow_record import (
    end_record,
    end_tags,
    final_metrics,
    run_params,
    start_tags,
    usage_record,
)
from carbonstep.training.options import TrainingOptions
from carbonstep.training.resume import Resumable
from carbonstep.training.signals import EndOnSignal

log = logging.getLogger("carbonstep")
CUMULATIVE = names.CUMULATIVE


class TrainingSession(BudgetChecks, EndOnSignal, Resumable):
    """Measures one training run for a callback: marks, logging cadence, budget, report; checkpoints and the
    end on a signal come from its parts (:mod:`~carbonstep.training.resume`, :mod:`~carbonstep.training.signals`)."""

    def __init__(self, options: TrainingOptions) -> None:
        if not isinstance(options, TrainingOptions):
            raise TypeError(f"options must be a carbonstep TrainingOptions, got {type(options).__name__}")
        self.options = options  #: as the adapter received them; a second fit() starts a fresh Tracker from them
        self.tracker = Tracker(**options.tracker_arguments())  # validates the configuration at once
        self.budget = options.budget
        self.log_every_n_steps = options.log_every_n_steps
        self.output_dir = Path(options.output_dir) if options.output_dir is not None else None
        self.training_type = options.training_type
        self.summary = options.summary
        self.rank = 0
        self.world_size = 1
        self.distributed = False  #: several ranks in a torch.distributed process group: totals are reduced
        self.latest: dict[str, float] | None = None  #: the job totals last computed (reduced, under DDP)
        self.rank_report: RunReport | None = None  #: this process's own report (== report without DDP)
        self.report_path: Path | None = None
        self._previous_sigterm: Any = None
        self.sink: Sink | None = None
        self.prometheus: Any = None  #: the Prometheus outputs of the current run (sinks.prometheus.Outputs)
        self.offset = dict.fromkeys(CUMULATIVE, 0.0)
        self.epoch_costs: list[dict[str, float]] = []
        self.decision: Decision | None = None
        self.report: RunReport | None = None
        self.messages: list[str] = []
        self._epoch_start = dict(self.offset)
        self._rank_suffix = ""
        self.last_step = 0
        self.validations: list[dict[str, Any]] = []  # step, energy, CO2 and the framework's metrics
        self._logged_step: int | None = None  # the last step whose totals were logged (and reduced)
        self._micro_count = 0.0  # samples of micro-batches since the last optimizer step
        self._ending = False  # end() is under way: a SIGTERM now waits for the report, then acts
        self._deferred_signal: int | None = None
        self._restored = False  # load_state_dict() since the last run ended: a resume, offsets kept

    # -- lifecycle ------------------------------------------------------------------------
    def begin(self, sink: Sink | None, output_dir: str | os.PathLike[str], log_every_n_steps: int,
              rank: int = 0, world_size: int = 1) -> None:
        """Start measuring. ``sink`` is None on every rank but the one that logs. After a finished run (a
        second ``fit()`` with the same callback) this is a fresh measurement with a report of its own."""
        if self.tracker.running:
            return
        if self.report is not None:
            self._next_run()
        self.sink = sink
        self.output_dir = self.output_dir or Path(output_dir)
        self.log_every_n_steps = self.log_every_n_steps or max(1, log_every_n_steps)
        self._rank_suffix = f"-rank{rank}" if world_size > 1 else ""
        self.rank, self.world_size = rank, world_size
        self.distributed = world_size > 1 and distributed.in_process_group()
        # every rank: agree on one run id, see which ranks share a host (a collective under DDP)
        place, run_id = distributed.job_place(self.tracker.run_id)
        scope.session_began(self)  # an Optuna trial around this run stops measuring what this session measures
        self.tracker.start(place, run_id)
        self.prometheus = self._start_prometheus()
        atexit.register(self._end_at_exit)  # frameworks without an exception hook: a crash still reports
        self._catch_sigterm()
        self._epoch_start = self.job_totals(self.tracker.snapshot(refresh=False))
        if sink is not None:
            sink.log_params(run_params(self.tracker))
            sink.set_tags(start_tags())

    def _next_run(self) -> None:
        """Forget the finished run: a new Tracker, no report, no per-run records. Offsets and epoch costs are
        kept only when ``load_state_dict()`` came in between (a resume from a checkpoint)."""
        self.tracker = Tracker(**self.options.tracker_arguments())
        self.report = self.rank_report = self.report_path = self.decision = self.latest = self.sink = None
        self.messages, self.validations = [], []
        self.last_step, self._logged_step, self._micro_count = 0, None, 0.0
        self._ending, self._deferred_signal = False, None
        if not self._restored:
            self.offset = dict.fromkeys(CUMULATIVE, 0.0)
            self.epoch_costs = []
            self._epoch_start = dict(self.offset)
        self._restored = False

    def cumulative(self, snap: Snapshot) -> dict[str, float]:
        """This process's totals since the first segment (resume included), with average power."""
        metrics = snap.metrics()
        out = {k: metrics[k] + self.offset[k] for k in CUMULATIVE}
        out["power_w"] = metrics["power_w"]
        return out

    def job_totals(self, snap: Snapshot) -> dict[str, float]:
        """The job's totals: summed over ranks under DDP (a collective: every rank calls it), resume included."""
        metrics = snap.metrics()
        keys = (*CUMULATIVE, "power_w")
        values = [metrics[k] for k in keys]
        if self.distributed:
            values = distributed.sum_across_ranks(values)
        out = dict(zip(keys, values))
        for k in CUMULATIVE:
            out[k] += self.offset[k]
        self.latest = out
        return out

    def latest_totals(self) -> dict[str, float]:
        """The job totals without a collective: the last reduced ones under DDP, else fresh local ones."""
        if self.distributed and self.latest is not None:
            return dict(self.latest)
        return self.cumulative(self.tracker.snapshot(refresh=False))

    def step(self, step: int, epoch: int, count: float | None = None, log: bool = True,
             optimizer_stepped: bool = True) -> dict[str, float] | None:
        """Mark a training step; every ``log_every_n_steps`` return the totals (and log them, if ``log``).

        Under gradient accumulation call it per micro-batch with ``optimizer_stepped=False`` until the one that
        stepped: one mark per optimizer step (with every micro-batch's samples), one log and one reduction per
        logging step. A step number already logged is not logged (nor reduced) again.
        """
        if not optimizer_stepped:
            self._micro_count += count or 0.0
            return None
        if self._micro_count:
            count, self._micro_count = (count or 0.0) + self._micro_count, 0.0
        self.tracker.mark("step", step, epoch, count)
        if log:
            self.last_step = step  # the step the final totals are logged at
        if step % (self.log_every_n_steps or 1) or step == self._logged_step:
            return None
        self._logged_step = step
        totals = self.job_totals(self.tracker.snapshot(refresh=False))
        if log and self.sink is not None:
            self.sink.log_metrics(totals, step)
        return totals

    def validation(self, step: int, metrics: Mapping[str, float] | None = None, log: bool = True) -> dict[str, float]:
        """Record validation ``metrics`` with the energy and CO2 so far (kept in the report) and, if ``log``,
        log energy and CO2 at the step where the framework logs them."""
        self.tracker.mark("validation", step, None, None)
        self.last_step = max(self.last_step, step)
        totals = self.job_totals(self.tracker.snapshot())
        self.validations.append({"step": step, "energy_kwh": totals["energy_kwh"], "co2_kg": totals["co2_kg"],
                                 "metrics": {k: float(v) for k, v in (metrics or {}).items()}})
        if log and self.sink is not None:
            self.sink.log_metrics({names.ENERGY_KWH: totals["energy_kwh"], names.CO2_KG: totals["co2_kg"]}, step)
        return totals

    def epoch_end(self, epoch: int, step: int, log: bool = True) -> tuple[dict[str, float], Decision | None]:
        """Close an epoch: its cost, the job totals (logged at ``step`` if ``log``), the budget's decision.

        The decision is the job's: taken on the job totals and, under DDP, stopping every rank when any
        rank's check stops (a collective: every rank calls ``epoch_end``). A stop is recorded here; the
        callback only tells its framework to stop when ``decision.stop``.
        """
        self.tracker.mark("epoch_end", step, epoch, None)
        self.last_step = max(self.last_step, step)
        totals = self.job_totals(self.tracker.snapshot())
        cost = {"kwh": totals["energy_kwh"] - self._epoch_start["energy_kwh"],
                "co2_kg": totals["co2_kg"] - self._epoch_start["co2_kg"],
                "water_l": totals["water_l"] - self._epoch_start["water_l"]}
        self.epoch_costs.append(cost)
        self._epoch_start = totals
        metrics = {**totals, names.EPOCH_ENERGY_KWH: cost["kwh"], names.EPOCH_CO2_KG: cost["co2_kg"]}
        if log and self.sink is not None:
            self.sink.log_metrics(metrics, step)
        return metrics, self._budget_decision(epoch, totals)

    def end(self, status: str = "completed") -> RunReport:
        """Stop measuring, write the report(s), send the rest to the sink (idempotent).

        Under DDP a completed run is a collective: rank zero gathers every rank's report and writes the
        job's. A failed or interrupted run is not (other ranks may be gone): each rank writes its own,
        and ``carbonstep merge`` makes the job total from them.
        """
        if self.report is not None:
            return self.report
        if not self.tracker.running:
            raise RuntimeError("the training session never began")
        atexit.unregister(self._end_at_exit)
        previous_sigterm, self._ending = self._previous_sigterm, True
        try:
            report = self._end(status)
        finally:
            self._ending = False
            self._restore_sigterm()
        if self._deferred_signal is not None:  # a SIGTERM came while the report was being written
            signum, self._deferred_signal = self._deferred_signal, None
            self._forward_sigterm(previous_sigterm, signum, None)
        return report

    def _end(self, status: str) -> RunReport:
        extra = {"training_type": self.training_type, "epoch_costs": self.epoch_costs,
                 "validation": self.validations}
        own = self.tracker.stop(status)
        own = own.with_changes(budget=self.decision.to_dict() if self.decision else None,
                               extra={**own.extra, **extra})
        if self.prometheus is not None:  # this rank's own figures: never the job's, never those with resume
            self._warn(self.prometheus.finish(own))
        out = self.output_dir or Path.cwd()
        together = self.distributed and status == "completed"
        if self.world_size > 1 and not together:
            own = own.with_changes(warnings=(*own.warnings, f"rank {self.rank} of {self.world_size} only: the "
                                             "job total is `carbonstep merge` of every rank's report"))
        self.rank_report = own
        if self.world_size > 1:
            self.report_path = self._save(own, out / f"carbonstep-{own.run_id}{self._rank_suffix}.json")
        job = own
        if together:
            gathered = distributed.gather_to_zero(own.to_dict())
            if gathered is not None:
                from carbonstep.report.merge import merge

                job = merge([RunReport.from_dict(r) for r in gathered])
        final = {k: getattr(job, k) + self.offset[k] for k in CUMULATIVE}
        final["power_w"] = job.power_w
        job = job.with_changes(extra={**job.extra, "cumulative_with_resume": final})
        if self.world_size == 1 or (together and self.rank == 0):
            self.report_path = self._save(job, out / f"carbonstep-{job.run_id}.json")
        self.report = job if self.rank == 0 or self.world_size == 1 else own
        scope.session_ended(self)  # the trial around this run (if any) takes this report and measures on
        if self.sink is not None:
            tags = end_tags(status, job)
            if self.world_size == 1 or together:  # a lone rank's figures are not the job's: not logged as such
                figures, labels = usage_record(job)  # what `carbonstep usage` counts and groups by
                params, embodied = end_record(job, resumed=any(self.offset.values()))
                self.sink.log_params(params)  # the CPU estimate's range, the scopes: known from the report only
                self.sink.log_metrics(final_metrics(final, {**figures, **embodied}), self.last_step)
                tags.update(labels)
            self.sink.set_tags(tags)
            if self.report_path is not None:  # always set above; the check is for the type
                self.sink.log_artifact(self.report_path)
            message = self.sink.close("FINISHED" if status == "completed" else "FAILED")
            if message:
                self.messages.append(message)
                log.warning("carbonstep: %s", message)
            sink_errors = tuple(str(e) for e in getattr(self.sink, "errors", ()))
            if sink_errors and self.report_path is not None:  # the report says what the sink could not deliver
                self.report = self.report.with_changes(sink_errors=sink_errors)
                self.report_path = self._save(self.report, out / self.report_path.name)
        if self.summary and self.rank == 0:
            from carbonstep.report.summary import render

            print(render(self.report), file=sys.stderr)
            print(f"  report: {self.report_path}", file=sys.stderr)
        return self.report

    def _start_prometheus(self) -> Any:
        """The Prometheus outputs the options ask for, started on this rank (None when none is asked for)."""
        o = self.options
        if not (o.pushgateway or o.textfile_dir is not None or o.metrics_port is not None):
            return None
        from carbonstep.sinks.prometheus import Outputs

        outputs = Outputs(o.pushgateway, o.textfile_dir, o.metrics_port)
        self._warn(outputs.start(self.tracker))
        return outputs

    def _warn(self, problems: list[str]) -> None:
        for problem in problems:
            self.messages.append(problem)
            log.warning("carbonstep: %s", problem)

    def _save(self, report: RunReport, path: Path) -> Path | None:
        """Write a report without ever raising into training: a path that fails (read-only, removed, full)
        sends it to the temporary directory, and the message saying where is logged and kept in ``messages``."""
        written, message = report.save_or_fallback(path)
        if message is not None:
            self.messages.append(message)
            log.warning("carbonstep: %s", message)
            print(f"carbonstep: warning: {message}", file=sys.stderr)  # the log may be silent: say where it went
        return written
