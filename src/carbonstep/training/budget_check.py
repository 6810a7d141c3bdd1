"""The session's budget: the job's decision after each epoch, reduced across ranks, and the stop it records."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Mapping

from carbonstep.measure import distributed
from carbonstep.mlflow_io import names
from carbonstep.training.budget import Budget, Decision

if TYPE_CHECKING:
    from carbonstep.sinks.base import Sink

log = logging.getLogger("carbonstep")


class BudgetChecks:
    """Part of :class:`~carbonstep.training.session.TrainingSession`: what its budget decides."""

    budget: Budget | None
    distributed: bool
    epoch_costs: list[dict[str, float]]
    decision: Decision | None
    sink: Sink | None

    def _budget_decision(self, epoch: int, totals: Mapping[str, float]) -> Decision | None:
        """The budget's decision for the whole job, reduced across ranks here and nowhere else."""
        if self.budget is None:
            return None
        spent = {"kwh": totals["energy_kwh"], "co2_kg": totals["co2_kg"], "water_l": totals["water_l"]}
        decision = self.budget.check(epoch, spent, self.epoch_costs)
        stop = distributed.any_rank(decision.stop) if self.distributed else decision.stop
        if not stop:
            return decision
        self.record_stop(decision, epoch)
        return self.decision

    def record_stop(self, decision: Decision | None, epoch: int) -> str:
        """Record that training stops after ``epoch`` (this rank's decision, or another rank's); called by
        :meth:`epoch_end` when the budget stops the job."""
        if decision is None or not decision.stop:
            base = decision or Decision(False, epoch, "", 0.0, 0.0, 0.0, "")
            decision = Decision(True, epoch, base.quantity, base.spent, base.projected, base.limit,
                                f"another rank's budget check stopped training after epoch {epoch}")
        self.decision = decision
        if self.sink is not None:
            self.sink.set_tags(names.budget_tags(decision.to_dict()))
        log.warning("carbonstep: %s", decision.reason)
        return decision.reason


__all__ = ["BudgetChecks"]
