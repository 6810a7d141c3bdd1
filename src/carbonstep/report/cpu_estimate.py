"""The CPU estimate's figure, range and basis as a report carries them (``extra["cpu_estimate"]``).

For the sinks: ``cpu_estimate_params`` gives the MLflow params, ``cpu_hardware_line`` the Hugging Face
model card's hardware entry. Reports without an estimated CPU (RAPL, or older reports) give nothing.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol


class HasExtra(Protocol):
    """A report, as far as the estimate is concerned: its ``extra`` block (this module sits below the record)."""

    @property
    def extra(self) -> Mapping[str, Any]: ...

MLFLOW_PARAM_MAX = 500  #: MLflow's limit on a param value (characters) in its older servers


def cpu_estimate(report: HasExtra) -> dict[str, Any] | None:
    """The estimate's figures ({cpu, w_per_thread, w_low, w_high, source, basis, utilisation}), or None."""
    found = report.extra.get("cpu_estimate")
    if not isinstance(found, dict):
        return None
    try:
        float(found["w_per_thread"]), float(found["w_low"]), float(found["w_high"])
    except (KeyError, TypeError, ValueError):
        return None
    return found


def cpu_estimate_params(report: HasExtra) -> dict[str, str]:
    """MLflow params: ``carbonstep.cpu_w_per_thread``, ``cpu_w_low``, ``cpu_w_high``, ``cpu_basis`` ({} without)."""
    found = cpu_estimate(report)
    if found is None:
        return {}
    basis = f"{found.get('source') or 'estimate'}: {found.get('basis', '')}"
    return {
        "carbonstep.cpu_w_per_thread": f"{float(found['w_per_thread']):.4g}",
        "carbonstep.cpu_w_low": f"{float(found['w_low']):g}",
        "carbonstep.cpu_w_high": f"{float(found['w_high']):g}",
        "carbonstep.cpu_basis": basis[:MLFLOW_PARAM_MAX],
    }


def cpu_estimate_text(found: dict[str, Any]) -> str:
    """One line: "1.24 W per thread (range 0.45–2.02 W; Cloud Carbon Footprint …)"."""
    util = found.get("utilisation")
    at = f" at {float(util):.0%} utilisation" if isinstance(util, (int, float)) else ""
    return (f"{float(found['w_per_thread']):.2f} W per thread{at} (range {float(found['w_low']):.2f}–"
            f"{float(found['w_high']):.2f} W; {found.get('source') or 'estimate'})")


def cpu_hardware_line(report: HasExtra) -> str | None:
    """The model card's hardware entry for an estimated CPU, e.g. "CPU AMD EPYC (estimated: 1.24 W per thread …)"."""
    found = cpu_estimate(report)
    if found is None:
        return None
    return f"CPU {found.get('cpu') or ''} (estimated: {cpu_estimate_text(found)})".replace("CPU  (", "CPU (")
