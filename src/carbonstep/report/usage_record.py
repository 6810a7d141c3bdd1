"""One run, reduced to what ``carbonstep usage`` adds up: a few dozen numbers and labels, never a timeline.

A :class:`UsageRecord` is made from a report (a file's parsed JSON, or a :class:`RunReport`) or from an
MLflow run's metrics, params and tags. What a report does not say outright is derived here:

* **user**: the Slurm job's user, else the login name the report recorded, else ``unknown``;
* **GPU model**: the GPU devices' NVML names (the part of the description before ``[uuid]``);
* **GPU-hours**: each distinct GPU (by UUID) counts the time of the process that read it, once;
* **idle-GPU energy**: the energy of GPUs that were idle (under 10 % utilisation) for more than half
  of the run: the GPUs the report's ``idle_gpu`` hint names (:mod:`carbonstep.report.hints`);
* **energy after the last epoch**: for a failed or interrupted run, the energy spent after its last
  completed epoch ended (all of it when it stopped in its first epoch): lost even with a checkpoint
  per epoch. Known only for runs that record epochs (the framework callbacks);
* **samples**: the samples counted in its epochs (or its marks when none was thinned out);
* **embodied CO2e**: the report's ``embodied`` block (:mod:`carbonstep.report.embodied`), with its range; kept
  apart from the operational ``co2_kg``, never added into it (None: the run has no figure);
* **scope**: what each component was charged for (:mod:`carbonstep.report.charged`), e.g.
  ``gpu process share · cpu container``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Mapping

from carbonstep.mlflow_io import names
from carbonstep.report.charged import charged_by_domain
from carbonstep.report.hints import IDLE_SHARE
from carbonstep.report.record import Device
from carbonstep.vocabulary import DOMAINS

WASTED_STATUSES = ("failed", "interrupted")
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One run (or one job: its ranks counted once) as ``carbonstep usage`` counts it."""

    run_id: str
    source: str  #: the report file, or ``mlflow:<run id>``
    name: str
    started_s: float  #: POSIX seconds (UTC)
    duration_s: float
    status: str  #: completed / failed / interrupted / running
    user: str
    experiment: str
    account: str
    partition: str
    job_id: str
    host: str
    gpu_model: str
    region: str
    intensity_g_per_kwh: float | None
    intensity_source: str
    energy_kwh: float
    co2_kg: float
    water_l: float
    gpu_hours: float
    idle_gpu_kwh: float
    after_last_epoch_kwh: float | None  #: None: not known (the run recorded no epochs)
    samples: float | None  #: None: not counted
    embodied_co2_kg: float | None = None  #: the hardware's embodied CO2e charged to the run; None: no figure
    embodied_co2_kg_low: float | None = None
    embodied_co2_kg_high: float | None = None
    scope: str = UNKNOWN  #: what the run was charged for, per component (``gpu process share · cpu container``)

    @property
    def wasted_kwh(self) -> float:
        """The run's energy if it failed or was interrupted (it bought no result), else 0."""
        return self.energy_kwh if self.status in WASTED_STATUSES else 0.0

    def with_changes(self, **changes: Any) -> "UsageRecord":
        """A copy with some fields replaced."""
        return replace(self, **changes)


#: no run's energy (kWh), CO2e (kg) or water (L) reaches this: a sanity limit, far above any computation's, below
#: which a month of totals cannot overflow a float
IMPLAUSIBLE_AMOUNT = 1e15


def amount(data: Mapping[str, Any], key: str) -> float:
    """``data[key]`` as a finite, non-negative number below :data:`IMPLAUSIBLE_AMOUNT`; ValueError naming the field
    otherwise."""
    value = float(data[key])
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{key} is {data[key]!r}: not a finite, non-negative number")
    if value >= IMPLAUSIBLE_AMOUNT:
        raise ValueError(f"{key} is {data[key]!r}: more than any run (the limit is {IMPLAUSIBLE_AMOUNT:,.0f})")
    return value


def _posix_s(iso: str) -> float:
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        from datetime import timezone

        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def gpu_model_of(devices: list[Mapping[str, Any]]) -> str:
    """The GPU models among ``devices`` (NVML names), joined with ``+``; ``no GPU`` when there is none."""
    models = sorted({str(d.get("description", "")).split(" [")[0].split(":")[0].strip() or "GPU"
                     for d in devices if d.get("domain") == "gpu"})
    return "+".join(models) or "no GPU"


def _gpu_key(device: Mapping[str, Any]) -> str:
    description = str(device.get("description", ""))
    if "[" in description and "]" in description:
        return description[description.index("[") + 1:description.index("]")]  # the GPU's UUID
    return str(device.get("name", ""))


def gpu_hours_of(devices: list[Mapping[str, Any]], duration_s: float, parts: list[Mapping[str, Any]]) -> float:
    """GPU-hours: each distinct GPU once, for the time of the process that read it (a job's part, or the run)."""
    part_s = {str(p.get("label")): float(p.get("duration_s") or 0.0) for p in parts}
    seconds: dict[str, float] = {}
    for device in devices:
        if device.get("domain") != "gpu":
            continue
        label = str(device.get("name", "")).split("/")[0] if parts else ""
        span_s = part_s.get(label, duration_s)
        key = _gpu_key(device)
        seconds[key] = max(seconds.get(key, 0.0), span_s)
    return sum(seconds.values()) / 3600.0


def idle_gpu_kwh_of(devices: list[Mapping[str, Any]]) -> float:
    """Energy of the GPUs idle for more than half the run (the ``idle_gpu`` hint's rule)."""
    return sum(float(d.get("energy_kwh") or 0.0) for d in devices
               if d.get("domain") == "gpu" and (d.get("idle_fraction") or 0.0) > IDLE_SHARE)


def after_last_epoch_kwh_of(data: Mapping[str, Any]) -> float | None:
    """Energy a failed or interrupted run spent after its last completed epoch (0 for other runs)."""
    if data.get("status") not in WASTED_STATUSES:
        return 0.0
    epochs = data.get("epochs") or []
    energy = float(data.get("energy_kwh") or 0.0)
    if epochs:
        return max(0.0, energy - sum(float(e.get("energy_kwh") or 0.0) for e in epochs))
    if "epoch_costs" in (data.get("extra") or {}):  # a framework callback's run that finished no epoch
        return energy
    return None


def samples_of(data: Mapping[str, Any], marks: list[Mapping[str, Any]] | None) -> float | None:
    """Samples counted by the run's epochs, else by its marks if none was thinned out; None if not counted."""
    if (data.get("extra") or {}).get("count_unit", "sample") != "sample":
        return None
    count = sum(float(e.get("count") or 0.0) for e in data.get("epochs") or [])
    if count <= 0 and marks and int(data.get("marks_stride") or 1) == 1:
        count = sum(float(m.get("count") or 0.0) for m in marks)
    return count if count > 0 else None


def user_of(extra: Mapping[str, Any]) -> str:
    """The Slurm job's user, else the recorded login name, else ``unknown``."""
    slurm = extra.get("slurm") or {}
    return str(slurm.get("user") or extra.get("user") or UNKNOWN)


def host_of(data: Mapping[str, Any]) -> str:
    """The run's host; a job over several hosts (``extra.nodes``): their names joined with ``+``."""
    nodes = (data.get("extra") or {}).get("nodes") or []
    if len(nodes) > 1:
        return "+".join(sorted(str(n.get("host")) for n in nodes))
    return str(data.get("host") or UNKNOWN)


def embodied_of(data: Mapping[str, Any]) -> dict[str, float | None]:
    """The embodied CO2e of a report's parsed JSON and its range (``embodied.co2_kg``, ``_low``, ``_high``);
    None each where the report has no usable figure (a damaged block costs the figure, never the run)."""
    block = data.get("embodied") or {}
    none: dict[str, float | None] = {"embodied_co2_kg": None, "embodied_co2_kg_low": None,
                                     "embodied_co2_kg_high": None}
    if not isinstance(block, Mapping) or block.get("co2_kg") is None:
        return none
    try:
        return _embodied_figures(block)
    except (TypeError, ValueError):
        return none


def _embodied_figures(block: Mapping[str, Any]) -> dict[str, float | None]:
    central = amount(block, "co2_kg")
    return {"embodied_co2_kg": central,
            "embodied_co2_kg_low": amount(block, "co2_kg_low") if block.get("co2_kg_low") is not None else central,
            "embodied_co2_kg_high": amount(block, "co2_kg_high") if block.get("co2_kg_high") is not None
            else central}


def _scope_cell(by_domain: Mapping[str, str]) -> str:
    return " · ".join(f"{domain} {scope}" for domain, scope in by_domain.items()) or UNKNOWN


def scope_of(devices: list[Mapping[str, Any]]) -> str:
    """The run's scope in one cell, as :func:`carbonstep.report.charged.scope_text` writes it for a report
    (``gpu process share · cpu container``); ``unknown`` when no device is listed."""
    listed = [Device(str(d.get("name", "")), str(d.get("domain", "")), str(d.get("method", "")), "", 0.0,
                     scope=str(d.get("scope") or "process"), charged=str(d.get("charged") or ""))
              for d in devices]
    return _scope_cell(charged_by_domain(listed))


def scope_of_params(params: Mapping[str, str]) -> str:
    """The scope of an MLflow run from its params (``carbonstep.gpu_scope``, ``carbonstep.cpu_scope`` …)."""
    return _scope_cell({d.value: str(params[f"carbonstep.{d.value}_scope"]) for d in DOMAINS
                        if params.get(f"carbonstep.{d.value}_scope")})


def mlflow_fields(metrics: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The record's embodied and scope fields from an MLflow run: the metric ``embodied_co2_kg`` (its range from
    the metrics or params ``embodied_co2_kg_low``/``_high`` when logged) and the ``carbonstep.<domain>_scope``
    params; None/``unknown`` where the run does not carry them."""
    def number(key: str) -> float | None:
        value = metrics.get(key, params.get(key))
        try:
            return amount({key: value}, key) if value not in (None, "") else None
        except (TypeError, ValueError):
            return None

    central = number("embodied_co2_kg")
    low, high = number("embodied_co2_kg_low"), number("embodied_co2_kg_high")
    return {"embodied_co2_kg": central,
            "embodied_co2_kg_low": None if central is None else central if low is None else low,
            "embodied_co2_kg_high": None if central is None else central if high is None else high,
            "scope": scope_of_params(params)}


def combined_fields(records: list[UsageRecord]) -> dict[str, Any]:
    """The embodied and scope fields of a job made of several records (ranks without a job report): the embodied
    figures summed (None when any rank has none: a partial sum would pass for the job's), the scopes joined."""
    def total(name: str) -> float | None:
        values = [getattr(r, name) for r in records]
        return None if any(v is None for v in values) else sum(values)

    return {"embodied_co2_kg": total("embodied_co2_kg"), "embodied_co2_kg_low": total("embodied_co2_kg_low"),
            "embodied_co2_kg_high": total("embodied_co2_kg_high"),
            "scope": " + ".join(sorted({r.scope for r in records}))}


def from_report_dict(data: Mapping[str, Any], source: str, experiment: str,
                     marks: list[Mapping[str, Any]] | None = None) -> UsageRecord:
    """A record from a report's parsed JSON (``marks`` apart: they may have been skipped when read).

    Raises KeyError, TypeError or ValueError when ``data`` is not a report.
    """
    extra = data.get("extra") or {}
    slurm = extra.get("slurm") or {}
    devices = list(data.get("devices") or [])
    intensity = data["intensity"]
    duration_s = amount(data, "duration_s")
    return UsageRecord(
        run_id=str(data["run_id"]), source=source, name=str(data.get("name") or data["run_id"]),
        started_s=_posix_s(data["started_at"]), duration_s=duration_s, status=str(data["status"]),
        user=user_of(extra), experiment=str(extra.get("experiment") or experiment),
        account=str(slurm.get("account") or UNKNOWN), partition=str(slurm.get("partition") or UNKNOWN),
        job_id=str(slurm.get("job_id") or ""), host=host_of(data),
        gpu_model=gpu_model_of(devices), region=str(intensity.get("region") or intensity.get("region_name")),
        intensity_g_per_kwh=float(intensity["g_per_kwh"]), intensity_source=str(intensity.get("source") or ""),
        energy_kwh=amount(data, "energy_kwh"), co2_kg=amount(data, "co2_kg"), water_l=amount(data, "water_l"),
        gpu_hours=gpu_hours_of(devices, duration_s, list(extra.get("parts") or [])),
        idle_gpu_kwh=idle_gpu_kwh_of(devices), after_last_epoch_kwh=after_last_epoch_kwh_of(data),
        samples=samples_of(data, marks), **embodied_of(data), scope=scope_of(devices),
    )


def usage_figures(report: Any) -> dict[str, float]:
    """The derived figures of a :class:`RunReport` that an MLflow run carries as metrics (``usage_*``)."""
    data = report.to_dict()
    figures = {"usage_gpu_hours": gpu_hours_of(data["devices"], report.duration_s, data["extra"].get("parts") or []),
               "usage_idle_gpu_kwh": idle_gpu_kwh_of(data["devices"])}
    after = after_last_epoch_kwh_of(data)
    if after is not None:
        figures["usage_after_last_epoch_kwh"] = after
    samples = samples_of(data, data["marks"])
    if samples is not None:
        figures["usage_samples"] = samples
    return figures


def usage_tags(report: Any) -> dict[str, str]:
    """The labels an MLflow run carries for ``carbonstep usage`` (``carbonstep.*`` tags)."""
    data = report.to_dict()
    return {names.RUN_ID: report.run_id, names.HOST: report.host,
            names.GPU_MODEL: gpu_model_of(data["devices"]), names.USER: user_of(report.extra)}
