"""What a run was charged for, per component: the scope each report, summary and sink shows.

A component's scope is one of "process", "process share" (a shared GPU split by activity), "whole device",
"MIG instance", "container" or "machine" (:class:`carbonstep.vocabulary.Charged`); several devices of one
component with different scopes are joined with "+", like methods.
"""

from __future__ import annotations

from typing import Sequence

from carbonstep.report.record import Device, RunReport
from carbonstep.vocabulary import DOMAINS, Scope, charged_of


def device_charged(device: Device) -> str:
    """A device's scope; reports written before scopes were recorded fall back on their summing scope."""
    if device.charged:
        return device.charged
    try:
        return charged_of(Scope(device.scope)).value
    except ValueError:
        return device.scope


def charged_by_domain(devices: Sequence[Device]) -> dict[str, str]:
    """Domain → the scopes its devices were charged at, e.g. {"gpu": "process share", "cpu": "container"}."""
    out: dict[str, str] = {}
    for domain in DOMAINS:
        used = sorted({device_charged(d) for d in devices if d.domain == domain.value})
        if used:
            out[domain.value] = "+".join(used)
    return out


def scope_params(report: RunReport) -> dict[str, str]:
    """The scopes as run parameters (``carbonstep.gpu_scope`` …) for a tracking server."""
    return {f"carbonstep.{domain}_scope": scope for domain, scope in charged_by_domain(report.devices).items()}


def scope_text(report: RunReport) -> str:
    """One cell for a table of runs (the usage page): ``gpu process share · cpu container · ram container``."""
    return " · ".join(f"{domain} {scope}" for domain, scope in charged_by_domain(report.devices).items())


__all__ = ["charged_by_domain", "device_charged", "scope_params", "scope_text"]
