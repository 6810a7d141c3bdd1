"""Carbon budgets: when to stop training, as a pure function of what was spent.

Shared by every framework's callback through
:meth:`carbonstep.training.session.TrainingSession.epoch_end`, which also reduces the decision across
ranks (:func:`carbonstep.measure.distributed.any_rank`): every rank stops at the same epoch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from carbonstep.errors import ConfigError
from carbonstep.validate import check_number

QUANTITIES = ("co2_kg", "kwh", "water_l")
UNITS = {"co2_kg": "kg CO2e", "kwh": "kWh", "water_l": "L"}
PROJECTION_WINDOW = 3  #: the next epoch is projected from the mean of the last epochs


@dataclass(frozen=True)
class Decision:
    """What a budget check found; recorded in the report and the MLflow run."""

    stop: bool
    epoch: int
    quantity: str
    spent: float
    projected: float  #: spent + the projected cost of the next epoch
    limit: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The decision as a plain dict (report, MLflow tags)."""
        return asdict(self)


@dataclass(frozen=True)
class Budget:
    """Stop when ``spent ≥ limit``, or (``predict=True``) when the next epoch would overrun it.

    Limits are totals for the run: kg CO2e, IT kWh, litres of water. At least one is needed.
    """

    co2_kg: float | None = None
    kwh: float | None = None
    water_l: float | None = None
    predict: bool = True

    def __post_init__(self) -> None:
        limits = self.limits()
        if not limits:
            raise ConfigError("a Budget needs at least one limit: Budget(co2_kg=…, kwh=… or water_l=…)")
        for name, value in limits.items():
            check_number(f"Budget {name}", value, low=0.0, low_open=True)

    def limits(self) -> dict[str, float]:
        """The limits that are set, by quantity."""
        return {q: getattr(self, q) for q in QUANTITIES if getattr(self, q) is not None}

    def check(self, epoch: int, spent: Mapping[str, float], epoch_costs: Sequence[Mapping[str, float]]) -> Decision:
        """The decision after ``epoch``: ``spent`` so far and each finished epoch's cost."""
        recent = list(epoch_costs)[-PROJECTION_WINDOW:]
        closest: Decision | None = None
        for quantity, limit in self.limits().items():
            used = spent[quantity]
            next_cost = sum(c[quantity] for c in recent) / len(recent) if recent else 0.0
            projected = used + next_cost
            unit = UNITS[quantity]
            if used >= limit:
                reason = f"budget spent: {used:.6g} ≥ {limit:.6g} {unit} after epoch {epoch}"
                return Decision(True, epoch, quantity, used, projected, limit, reason)
            if self.predict and projected > limit:
                reason = (f"budget would be exceeded: {used:.6g} {unit} spent + {next_cost:.6g} projected for "
                          f"the next epoch > {limit:.6g} {unit}; stopped after epoch {epoch}")
                return Decision(True, epoch, quantity, used, projected, limit, reason)
            share = used / limit
            if closest is None or share > closest.spent / closest.limit:
                closest = Decision(False, epoch, quantity, used, projected, limit,
                                   f"{used:.6g} of {limit:.6g} {unit} spent ({share:.0%})")
        assert closest is not None
        return closest
