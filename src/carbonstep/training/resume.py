"""The session's checkpoint: the footprint so far, saved with the model and continued from on resume."""

from __future__ import annotations

from typing import Any, Mapping

from carbonstep._version import __version__
from carbonstep.mlflow_io.names import CUMULATIVE
from carbonstep.training.budget import Budget, Decision


class Resumable:
    """Part of :class:`~carbonstep.training.session.TrainingSession`: ``state_dict`` and ``load_state_dict``."""

    report: Any
    distributed: bool
    latest: dict[str, float] | None
    tracker: Any
    offset: dict[str, float]
    epoch_costs: list[dict[str, float]]
    budget: Budget | None
    decision: Decision | None
    _restored: bool
    _epoch_start: dict[str, float]

    def cumulative(self, snap: Any) -> dict[str, float]:  # pragma: no cover - TrainingSession's
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The footprint so far, epoch costs, budget and decision: saved in a checkpoint."""
        if self.report is not None:
            totals = self.report.extra["cumulative_with_resume"]
        elif self.distributed and self.latest is not None:
            totals = self.latest  # the job totals of the last reduction: no collective here
        elif self.tracker.running:
            totals = self.cumulative(self.tracker.snapshot())  # checkpoints are rare: take a fresh sample
        else:
            totals = self.offset
        return {"offset": {k: totals[k] for k in CUMULATIVE}, "epoch_costs": list(self.epoch_costs),
                "budget": None if self.budget is None else {**self.budget.limits(), "predict": self.budget.predict},
                "decision": self.decision.to_dict() if self.decision else None, "version": __version__}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`: totals continue from the saved ones."""
        self._restored = self.report is not None  # a resume after a finished run: the next begin() keeps these
        self.offset = {k: float(state["offset"].get(k, 0.0)) for k in CUMULATIVE}
        self.epoch_costs = [dict(c) for c in state.get("epoch_costs", [])]
        if self.budget is None and state.get("budget"):
            self.budget = Budget(**state["budget"])  # the budget survives resume
        self._epoch_start = dict(self.offset)


__all__ = ["Resumable"]
