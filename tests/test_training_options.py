"""TrainingOptions: one typed, frozen record from an adapter's arguments to the session, unchanged."""

from __future__ import annotations

import dataclasses

import pytest

from carbonstep import Budget
from carbonstep.testing import CounterReader
from carbonstep.training.options import TrainingOptions
from carbonstep.training.session import TrainingSession


def test_an_adapters_arguments_become_one_record() -> None:
    reader = CounterReader("c", "cpu", lambda: 0.0)
    options = TrainingOptions.of("FR", Budget(co2_kg=1.0), 5, "out", "fine-tuning", pue=1.2, intensity=80.0,
                                 summary=False, readers=[reader], interval_s=0.5)
    assert (options.region, options.pue, options.intensity, options.log_every_n_steps) == ("FR", 1.2, 80.0, 5)
    assert (options.output_dir, options.training_type, options.summary) == ("out", "fine-tuning", False)
    assert dict(options.tracker) == {"readers": [reader], "interval_s": 0.5}
    assert options.tracker_arguments() == {"readers": [reader], "interval_s": 0.5, "region": "FR", "pue": 1.2,
                                           "intensity": 80.0, "output_dir": None}


def test_the_record_is_frozen_and_checked() -> None:
    options = TrainingOptions(region="FR")
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.region = "DE"  # type: ignore[misc]
    with pytest.raises(TypeError):
        options.tracker["interval_s"] = 1.0  # type: ignore[index]
    with pytest.raises(TypeError, match="region"):
        TrainingOptions(tracker={"region": "FR"})
    with pytest.raises(TypeError, match="Budget"):
        TrainingOptions(budget={"kwh": 1.0})  # type: ignore[arg-type]
    assert options.with_changes(region="DE").region == "DE" and options.region == "FR"


def test_the_session_receives_the_record_unchanged() -> None:
    options = TrainingOptions(intensity=100.0, tracker={"readers": [CounterReader("c", "cpu", lambda: 0.0)]},
                              summary=False, log_every_n_steps=3)
    session = TrainingSession(options)
    assert session.options is options and session.log_every_n_steps == 3
    with pytest.raises(TypeError, match="TrainingOptions"):
        TrainingSession({"intensity": 100.0})  # type: ignore[arg-type]
