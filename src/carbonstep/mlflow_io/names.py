"""Every MLflow tag, param and metric name carbonstep writes or reads, in one place.

Dashboards and queries depend on these strings: a change here is a change of the public interface, and
``tests/test_mlflow_names.py`` pins each of them. Writers and readers import the names from here; no other
module spells a ``carbonstep.*`` MLflow name as a literal.

Where the values are assembled: the params and tags of a training run in
:func:`carbonstep.training.mlflow_record.run_params`, :func:`~carbonstep.training.mlflow_record.end_record` and the
tag functions beside them.
"""

from __future__ import annotations

from typing import Any, Mapping

PREFIX = "carbonstep."

# -- params: how a run was measured (logged once, at the start) ----------------------------------
REGION = "carbonstep.region"
INTENSITY_G_PER_KWH = "carbonstep.intensity_g_per_kwh"
INTENSITY_SOURCE = "carbonstep.intensity_source"
INTENSITY_YEAR = "carbonstep.intensity_year"
INTENSITY_BASIS = "carbonstep.intensity_basis"
PUE = "carbonstep.pue"
WUE = "carbonstep.wue"
METHODS = "carbonstep.methods"
DEVICES = "carbonstep.devices"
ATTRIBUTION = "carbonstep.attribution"
WATER_L_PER_KWH = "carbonstep.water_l_per_kwh"
WATER_BASIS = "carbonstep.water_basis"

# -- params: what the run's report says of how it was measured (logged once, at the end) --------
CPU_W_PER_THREAD = "carbonstep.cpu_w_per_thread"  #: the CPU estimate's figure (at the measured utilisation)
CPU_W_LOW = "carbonstep.cpu_w_low"  #: … and its range
CPU_W_HIGH = "carbonstep.cpu_w_high"
CPU_BASIS = "carbonstep.cpu_basis"
GPU_SCOPE = "carbonstep.gpu_scope"  #: what the run was charged for, per component ("process share", "container" …)
CPU_SCOPE = "carbonstep.cpu_scope"
RAM_SCOPE = "carbonstep.ram_scope"
EMBODIED_BASIS = "carbonstep.embodied_basis"  #: the embodied figures' service life and sources

#: the params logged at the run's end, from its report
END_PARAMS = (CPU_W_PER_THREAD, CPU_W_LOW, CPU_W_HIGH, CPU_BASIS, GPU_SCOPE, CPU_SCOPE, RAM_SCOPE, EMBODIED_BASIS)

# -- tags: what happened, and the labels `carbonstep usage` groups by ----------------------------
VERSION = "carbonstep.version"
STATUS = "carbonstep.status"
WASTED = "carbonstep.wasted"
RUN_ID = "carbonstep.run_id"
HOST = "carbonstep.host"
GPU_MODEL = "carbonstep.gpu_model"
USER = "carbonstep.user"
SKIPPED = "carbonstep.skipped"  #: an Optuna trial pruned at its start because the study's budget was spent

#: the budget's decision, one tag per field of :meth:`carbonstep.Budget.check`'s decision
BUDGET_PREFIX = "carbonstep.budget."
#: the same tags as written by the releases whose layout step renamed them by accident; read, never written
OLD_BUDGET_PREFIX = "carbonstep.callbacks.budget."

# -- metrics: the totals at each logging step (cumulative over a resume) --------------------------
ENERGY_KWH = "energy_kwh"
CO2_KG = "co2_kg"
WATER_L = "water_l"
ENERGY_KWH_GPU = "energy_kwh_gpu"
ENERGY_KWH_CPU = "energy_kwh_cpu"
ENERGY_KWH_RAM = "energy_kwh_ram"
POWER_W = "power_w"
EPOCH_ENERGY_KWH = "epoch_energy_kwh"
EPOCH_CO2_KG = "epoch_co2_kg"
USAGE_GPU_HOURS = "usage_gpu_hours"
USAGE_IDLE_GPU_KWH = "usage_idle_gpu_kwh"
USAGE_AFTER_LAST_EPOCH_KWH = "usage_after_last_epoch_kwh"
USAGE_SAMPLES = "usage_samples"

# -- metrics: the embodied footprint, at the run's last step; beside co2_kg, never added into it --
EMBODIED_CO2_KG = "embodied_co2_kg"
EMBODIED_CO2_KG_LOW = "embodied_co2_kg_low"
EMBODIED_CO2_KG_HIGH = "embodied_co2_kg_high"
EMBODIED_KG_SB_EQ = "embodied_kg_sb_eq"
EMBODIED_WATER_L = "embodied_water_l"
TOTAL_CO2_KG_WITH_EMBODIED = "total_co2_kg_operational_plus_embodied"  #: the labelled sum, its own metric
EMBODIED_PART_PREFIX = "embodied_co2_kg."  #: one metric per device and server part, e.g. embodied_co2_kg.gpu_0
EMBODIED_METRICS = (EMBODIED_CO2_KG, EMBODIED_CO2_KG_LOW, EMBODIED_CO2_KG_HIGH, EMBODIED_KG_SB_EQ, EMBODIED_WATER_L,
                    TOTAL_CO2_KG_WITH_EMBODIED)

#: the metrics that add up over a run and continue from a checkpoint on resume
CUMULATIVE = (ENERGY_KWH, CO2_KG, WATER_L, ENERGY_KWH_GPU, ENERGY_KWH_CPU, ENERGY_KWH_RAM)


def budget_tags(decision: Mapping[str, Any]) -> dict[str, Any]:
    """The tags that record a budget decision (``decision``: :meth:`Decision.to_dict`), under the
    ``carbonstep.budget.*`` names."""
    return {BUDGET_PREFIX + key: value for key, value in decision.items()}


def budget_from_tags(tags: Mapping[str, Any]) -> dict[str, Any]:
    """The budget decision a run's tags record, read under the current names and, for runs logged by the
    releases that wrote them, under the old ``carbonstep.callbacks.budget.*`` names (the current ones win)."""
    found = {key[len(OLD_BUDGET_PREFIX):]: value for key, value in tags.items() if key.startswith(OLD_BUDGET_PREFIX)}
    found.update({key[len(BUDGET_PREFIX):]: value for key, value in tags.items() if key.startswith(BUDGET_PREFIX)})
    return found


__all__ = [
    "ATTRIBUTION", "BUDGET_PREFIX", "CO2_KG", "CPU_BASIS", "CPU_SCOPE", "CPU_W_HIGH", "CPU_W_LOW", "CPU_W_PER_THREAD",
    "CUMULATIVE", "DEVICES", "EMBODIED_BASIS", "EMBODIED_CO2_KG", "EMBODIED_CO2_KG_HIGH", "EMBODIED_CO2_KG_LOW",
    "EMBODIED_KG_SB_EQ", "EMBODIED_METRICS", "EMBODIED_PART_PREFIX", "EMBODIED_WATER_L", "END_PARAMS", "ENERGY_KWH",
    "ENERGY_KWH_CPU", "ENERGY_KWH_GPU", "ENERGY_KWH_RAM", "EPOCH_CO2_KG", "EPOCH_ENERGY_KWH", "GPU_MODEL", "GPU_SCOPE",
    "HOST", "INTENSITY_BASIS", "INTENSITY_G_PER_KWH", "INTENSITY_SOURCE", "INTENSITY_YEAR", "METHODS",
    "OLD_BUDGET_PREFIX", "POWER_W", "PREFIX", "PUE", "RAM_SCOPE", "REGION", "RUN_ID", "SKIPPED", "STATUS",
    "TOTAL_CO2_KG_WITH_EMBODIED", "USAGE_AFTER_LAST_EPOCH_KWH", "USAGE_GPU_HOURS", "USAGE_IDLE_GPU_KWH",
    "USAGE_SAMPLES", "USER", "VERSION", "WASTED", "WATER_BASIS", "WATER_L", "WATER_L_PER_KWH", "budget_from_tags",
    "budget_tags",
]
