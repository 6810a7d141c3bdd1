"""The MLflow names carbonstep writes and reads are an interface: each one pinned, the budget tags under their
original ``carbonstep.budget.*`` names, and runs logged with the accidental ``carbonstep.callbacks.budget.*``
names still read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from carbonstep import Budget
from carbonstep.mlflow_io import names
from carbonstep.testing import CounterReader
from carbonstep.training.options import TrainingOptions
from carbonstep.training.session import TrainingSession
from carbonstep.vocabulary import DOMAINS

PINNED = {
    "PREFIX": "carbonstep.",
    "REGION": "carbonstep.region", "INTENSITY_G_PER_KWH": "carbonstep.intensity_g_per_kwh",
    "INTENSITY_SOURCE": "carbonstep.intensity_source", "INTENSITY_YEAR": "carbonstep.intensity_year",
    "INTENSITY_BASIS": "carbonstep.intensity_basis", "PUE": "carbonstep.pue", "WUE": "carbonstep.wue",
    "METHODS": "carbonstep.methods", "DEVICES": "carbonstep.devices", "ATTRIBUTION": "carbonstep.attribution",
    "VERSION": "carbonstep.version", "STATUS": "carbonstep.status", "WASTED": "carbonstep.wasted",
    "RUN_ID": "carbonstep.run_id", "HOST": "carbonstep.host", "GPU_MODEL": "carbonstep.gpu_model",
    "USER": "carbonstep.user", "SKIPPED": "carbonstep.skipped",
    "BUDGET_PREFIX": "carbonstep.budget.", "OLD_BUDGET_PREFIX": "carbonstep.callbacks.budget.",
    "ENERGY_KWH": "energy_kwh", "CO2_KG": "co2_kg", "WATER_L": "water_l", "ENERGY_KWH_GPU": "energy_kwh_gpu",
    "ENERGY_KWH_CPU": "energy_kwh_cpu", "ENERGY_KWH_RAM": "energy_kwh_ram", "POWER_W": "power_w",
    "EPOCH_ENERGY_KWH": "epoch_energy_kwh", "EPOCH_CO2_KG": "epoch_co2_kg", "USAGE_GPU_HOURS": "usage_gpu_hours",
    "USAGE_IDLE_GPU_KWH": "usage_idle_gpu_kwh", "USAGE_AFTER_LAST_EPOCH_KWH": "usage_after_last_epoch_kwh",
    "USAGE_SAMPLES": "usage_samples",
    "WATER_L_PER_KWH": "carbonstep.water_l_per_kwh", "WATER_BASIS": "carbonstep.water_basis",
    "CPU_W_PER_THREAD": "carbonstep.cpu_w_per_thread", "CPU_W_LOW": "carbonstep.cpu_w_low",
    "CPU_W_HIGH": "carbonstep.cpu_w_high", "CPU_BASIS": "carbonstep.cpu_basis", "GPU_SCOPE": "carbonstep.gpu_scope",
    "CPU_SCOPE": "carbonstep.cpu_scope", "RAM_SCOPE": "carbonstep.ram_scope",
    "EMBODIED_BASIS": "carbonstep.embodied_basis", "EMBODIED_CO2_KG": "embodied_co2_kg",
    "EMBODIED_CO2_KG_LOW": "embodied_co2_kg_low", "EMBODIED_CO2_KG_HIGH": "embodied_co2_kg_high",
    "EMBODIED_KG_SB_EQ": "embodied_kg_sb_eq", "EMBODIED_WATER_L": "embodied_water_l",
    "TOTAL_CO2_KG_WITH_EMBODIED": "total_co2_kg_operational_plus_embodied",
    "EMBODIED_PART_PREFIX": "embodied_co2_kg.",
}


def test_every_name_is_pinned() -> None:
    constants = {k: v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}
    assert constants == PINNED  # a new name is added here too, on purpose; a changed one breaks dashboards
    assert names.CUMULATIVE == ("energy_kwh", "co2_kg", "water_l", "energy_kwh_gpu", "energy_kwh_cpu",
                                "energy_kwh_ram")


def test_the_report_helpers_write_only_pinned_names() -> None:
    """The report's helpers spell their param names themselves (scope_params as ``carbonstep.<domain>_scope``):
    each must be one pinned here."""
    from carbonstep.accounting.water import given, mlflow_water_params
    from carbonstep.report.cpu_estimate import cpu_estimate_params

    class _Accounting:
        water_intensity_l_per_kwh = 1.0
        water = given(1.0)

    assert set(mlflow_water_params(_Accounting())) == {names.WATER_L_PER_KWH, names.WATER_BASIS}
    report = _Report()
    assert set(cpu_estimate_params(report)) == {names.CPU_W_PER_THREAD, names.CPU_W_LOW, names.CPU_W_HIGH,
                                                names.CPU_BASIS}
    assert set(names.END_PARAMS) >= {*cpu_estimate_params(report), names.GPU_SCOPE, names.CPU_SCOPE, names.RAM_SCOPE}
    assert {f"carbonstep.{domain.value}_scope" for domain in DOMAINS} == {
        names.GPU_SCOPE, names.CPU_SCOPE, names.RAM_SCOPE}  # scope_params' pattern, for every domain


class _Report:
    """What cpu_estimate_params reads of a report: its extra block."""

    extra = {"cpu_estimate": {"w_per_thread": 1.2, "w_low": 0.6, "w_high": 1.8, "source": "s", "basis": "b"}}


def test_budget_tags_are_written_under_carbonstep_budget() -> None:
    tags = names.budget_tags({"stop": True, "quantity": "co2_kg"})
    assert tags == {"carbonstep.budget.stop": True, "carbonstep.budget.quantity": "co2_kg"}


def test_budget_tags_are_read_under_the_old_and_the_new_names() -> None:
    old = {"carbonstep.callbacks.budget.stop": "True", "carbonstep.callbacks.budget.limit": "0.5", "other": "x"}
    assert names.budget_from_tags(old) == {"stop": "True", "limit": "0.5"}
    both = {**old, "carbonstep.budget.stop": "False"}
    assert names.budget_from_tags(both) == {"stop": "False", "limit": "0.5"}  # the current name wins
    assert names.budget_from_tags({"carbonstep.status": "completed"}) == {}


class _Tags:
    """A Sink that keeps the tags it is given."""

    def __init__(self) -> None:
        self.tags: dict[str, Any] = {}

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.tags.update(tags)

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        pass

    def close(self, status: str = "FINISHED") -> str | None:
        return None


def test_a_stopping_budget_is_tagged_under_carbonstep_budget(tmp_path: Path) -> None:
    steps = [0]
    reader = CounterReader("steps", "gpu", lambda: steps[0] * 3.6e5)  # 0.1 kWh a step
    session = TrainingSession(TrainingOptions.of(**{"intensity": 100.0, "readers": [reader], "interval_s": 0.02},
                              budget=Budget(kwh=0.25), summary=False))
    sink = _Tags()
    session.begin(sink, tmp_path, 1)
    decision = None
    for epoch in range(5):
        steps[0] += 1
        _, decision = session.epoch_end(epoch, epoch + 1)
        if decision is not None and decision.stop:
            break
    session.end()
    assert decision is not None and decision.stop
    budget = {k: v for k, v in sink.tags.items() if k.startswith("carbonstep.budget.")}
    assert budget["carbonstep.budget.stop"] is True
    assert not any(k.startswith("carbonstep.callbacks.") for k in sink.tags)
    assert names.budget_from_tags(sink.tags) == decision.to_dict()
