"""One job's total from the reports of its processes, nothing counted twice (``carbonstep merge``).

Process-scoped figures (a process tree's CPU time, its memory, its share of a RAPL zone)
add up as they are. A device- or node-scoped source (a GPU, a RAPL zone or a machine-wide
estimate) that several reports read on the same host is counted once: the reading that
covers the longest time is kept whole, and each other reading only for the part of its
time that no kept reading covers (its energy pro rata of time). A process's CO2e and water
shrink in proportion to the energy taken out of it, at its own intensity and factors.
Under torch.distributed the same function turns the ranks' reports into the job report.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from typing import Any, Sequence

from carbonstep.errors import ConfigError
from carbonstep.report.builder import interpolate, methods_of, thin
from carbonstep.report.record import Device, Epoch, Intensity, RunReport
from carbonstep.vocabulary import DOMAINS as DOMAIN_ENUMS

DOMAINS = tuple(d.value for d in DOMAIN_ENUMS)
SHARED_SCOPES = ("device", "node")


def _start(report: RunReport) -> float:
    return datetime.fromisoformat(report.started_at).timestamp()


def _label(report: RunReport, index: int) -> str:
    place = report.extra.get("place") or {}
    return f"rank{place['rank']}" if place.get("world_size", 1) > 1 else f"{report.host}#{index}"


def _uncovered(interval: tuple[float, float], covered: list[tuple[float, float]]) -> float:
    """Length of ``interval`` outside the union of ``covered``."""
    start, end = interval
    pieces = sorted((max(a, start), min(b, end)) for a, b in covered if b > start and a < end)
    inside, cursor = 0.0, start
    for a, b in pieces:
        a = max(a, cursor)
        if b > a:
            inside += b - a
            cursor = b
    return (end - start) - inside


def _counted_fractions(reports: Sequence[RunReport]) -> dict[tuple[int, int], float]:
    """(report, device) → fraction of its energy that is counted (1.0 unless it repeats another reading)."""
    groups: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for i, report in enumerate(reports):
        for j, device in enumerate(report.devices):
            if device.scope in SHARED_SCOPES:
                groups.setdefault((report.host, device.name), []).append((i, j))
    fractions: dict[tuple[int, int], float] = {}
    for members in groups.values():
        spans = {m: (_start(reports[m[0]]), _start(reports[m[0]]) + reports[m[0]].duration_s) for m in members}
        covered: list[tuple[float, float]] = []
        for member in sorted(members, key=lambda m: spans[m][0] - spans[m][1]):  # longest first
            span = spans[member]
            length = span[1] - span[0]
            outside = _uncovered(span, covered)
            fractions[member] = outside / length if length > 0 else (0.0 if covered else 1.0)
            covered.append(span)
    return fractions


def _timeline(parts: list[tuple[RunReport, float, float]], t0: float) -> tuple[tuple[float, float], ...]:
    """The job's cumulative kWh: each part's timeline shifted to the job's start and scaled to its counted energy."""
    shifted = [([(t + start - t0, kwh * scale) for t, kwh in report.timeline], scale)
               for report, start, scale in parts]
    times = thin(sorted({t for points, _ in shifted for t, _ in points}))
    return tuple((round(t, 3), sum(interpolate(points, t) for points, _ in shifted)) for t in times)


def _epochs(parts: list[tuple[RunReport, float, float]], t0: float) -> tuple[Epoch, ...]:
    rows: dict[int, dict[str, Any]] = {}
    for report, start, scale in parts:
        for e in report.epochs:
            row = rows.setdefault(e.epoch, {"start": float("inf"), "end": 0.0, "kwh": 0.0, "co2": 0.0,
                                            "water": 0.0, "steps": 0, "count": 0.0})
            row["start"] = min(row["start"], e.start_s + start - t0)
            row["end"] = max(row["end"], e.end_s + start - t0)
            row["kwh"] += e.energy_kwh * scale
            row["co2"] += e.co2_kg * scale
            row["water"] += e.water_l * scale
            row["steps"] = max(row["steps"], e.steps)  # the ranks of a job take the same steps
            row["count"] += e.count  # and each sees its own samples
    return tuple(Epoch(n, r["start"], r["end"], r["kwh"], r["co2"], r["water"], r["steps"], r["count"])
                 for n, r in sorted(rows.items()))


def _intensity(reports: Sequence[RunReport], co2_kg: float, facility_kwh: float) -> Intensity:
    if len({(r.intensity.g_per_kwh, r.intensity.region) for r in reports}) == 1:
        return reports[0].intensity
    names = ", ".join(dict.fromkeys(r.intensity.region or r.intensity.region_name for r in reports))
    sources = "; ".join(dict.fromkeys(r.intensity.source for r in reports))
    g = co2_kg * 1e3 / facility_kwh if facility_kwh > 0 else reports[0].intensity.g_per_kwh
    return Intensity(g, None, f"several: {names}", sources, None,
                     "+".join(sorted({r.intensity.basis for r in reports})), "", "energy-weighted over processes")


def _check(reports: Sequence[RunReport]) -> None:
    if not reports:
        raise ConfigError("nothing to merge: give the reports of a job's processes")
    seen: dict[tuple[str, Any, str], int] = {}
    for i, r in enumerate(reports):
        if "parts" in r.extra and len(reports) > 1:
            raise ConfigError(f"report {r.run_id} is already a job total (merged from {len(r.extra['parts'])} "
                              "processes): merge the per-process reports instead")
        key = (r.run_id, (r.extra.get("place") or {}).get("rank"), "")
        if key in seen:
            raise ConfigError(f"report {r.run_id} (rank {key[1]}) is given twice (#{seen[key] + 1} and #{i + 1}): "
                              "a run id names one process's report; merge each once")
        seen[key] = i
    attributions = sorted({r.attribution for r in reports})
    if len(attributions) > 1:
        machine = [r.run_id for r in reports if r.attribution == "machine"]
        raise ConfigError(f"report {machine[0] if machine else reports[0].run_id} measured the whole machine "
                          f"(attribution {', '.join(attributions)} mixed): adding it to per-process reports would "
                          "count their energy twice; merge reports of one attribution")


def merge_warnings(reports: Sequence[RunReport]) -> list[str]:
    """What a merge of well-formed reports should still be told: reports from several hosts that are not ranks of
    one distributed job (each names its host)."""
    hosts = list(dict.fromkeys(r.host for r in reports))
    distributed = all(int((r.extra.get("place") or {}).get("world_size", 1)) > 1 for r in reports)
    if len(hosts) > 1 and not distributed:
        return [f"the reports come from {len(hosts)} hosts ({', '.join(hosts[:5])}) and are not ranks of one "
                "distributed job: merged as one job, check they belong together"]
    return []


def merge(reports: Sequence[RunReport], name: str | None = None) -> RunReport:
    """The job's report: the processes' totals summed, shared devices counted once (see module doc)."""
    _check(reports)
    reports = sorted(reports, key=lambda r: ((r.extra.get("place") or {}).get("rank", 0), r.started_at))
    fractions = _counted_fractions(reports)
    t0 = min(_start(r) for r in reports)
    end = max(_start(r) + r.duration_s for r in reports)
    devices: list[Device] = []
    part_rows: list[dict[str, Any]] = []
    parts: list[tuple[RunReport, float, float]] = []
    totals = dict.fromkeys(("energy_kwh", "facility_kwh", "co2_kg", "water_l", *[f"energy_kwh_{d}" for d in DOMAINS]),
                           0.0)
    for i, r in enumerate(reports):
        label = _label(r, i)
        by_domain = {d: getattr(r, f"energy_kwh_{d}") for d in DOMAINS}
        dropped = 0.0
        for j, d in enumerate(r.devices):
            counted = d.energy_kwh * fractions.get((i, j), 1.0)
            if counted < d.energy_kwh:
                dropped += d.energy_kwh - counted
                by_domain[d.domain] = max(0.0, by_domain[d.domain] - (d.energy_kwh - counted))
            note = "" if counted == d.energy_kwh else \
                f"; {1 - counted / d.energy_kwh:.0%} read also by another process on {r.host}: counted once"
            devices.append(replace(d, name=f"{label}/{d.name}", energy_kwh=counted, description=d.description + note))
        energy = sum(by_domain.values())
        scale = energy / r.energy_kwh if r.energy_kwh > 0 else 1.0
        row = {"label": label, "run_id": r.run_id, "host": r.host, "status": r.status,
               "rank": (r.extra.get("place") or {}).get("rank"), "started_at": r.started_at,
               "duration_s": r.duration_s, "energy_kwh": energy, **{f"energy_kwh_{d}": by_domain[d] for d in DOMAINS},
               "facility_kwh": r.facility_kwh * scale, "co2_kg": r.co2_kg * scale, "water_l": r.water_l * scale,
               "duplicate_kwh_dropped": dropped}
        part_rows.append(row)
        parts.append((r, _start(r), scale))
        for key in totals:
            totals[key] += row[key]
    nodes: dict[str, dict[str, Any]] = {}
    for row in part_rows:
        node = nodes.setdefault(row["host"], {"host": row["host"], "processes": 0, "energy_kwh": 0.0,
                                              "co2_kg": 0.0, "water_l": 0.0})
        node["processes"] += 1
        for key in ("energy_kwh", "co2_kg", "water_l"):
            node[key] += row[key]
    first = reports[0]
    run_ids = list(dict.fromkeys(r.run_id for r in reports))
    run_id = run_ids[0] if len(run_ids) == 1 else "merged-" + hashlib.sha1(" ".join(run_ids).encode()).hexdigest()[:12]
    statuses = {r.status for r in reports}
    status = next((s for s in ("failed", "interrupted", "running") if s in statuses), first.status)
    energy = totals["energy_kwh"]
    weights = [p["energy_kwh"] for p in part_rows]

    def mean(values: list[float]) -> float:
        if len(set(values)) == 1 or sum(weights) <= 0:
            return values[0]
        return sum(v * w for v, w in zip(values, weights)) / sum(weights)

    hosts = list(nodes)
    from carbonstep.report.hints import with_hints

    return with_hints(RunReport(
        run_id=run_id, started_at=min(reports, key=_start).started_at, duration_s=end - t0, status=status,
        attribution=first.attribution if len({r.attribution for r in reports}) == 1 else "mixed",
        host=hosts[0] if len(hosts) == 1 else f"{len(hosts)} hosts", energy_kwh=energy,
        energy_kwh_gpu=totals["energy_kwh_gpu"], energy_kwh_cpu=totals["energy_kwh_cpu"],
        energy_kwh_ram=totals["energy_kwh_ram"], facility_kwh=totals["facility_kwh"], co2_kg=totals["co2_kg"],
        water_l=totals["water_l"],
        pue=first.pue if len({r.pue for r in reports}) == 1 or energy <= 0 else totals["facility_kwh"] / energy,
        wue_l_per_kwh=mean([r.wue_l_per_kwh for r in reports]),
        water_intensity_l_per_kwh=mean([r.water_intensity_l_per_kwh for r in reports]),
        intensity=_intensity(reports, totals["co2_kg"], totals["facility_kwh"]), methods=methods_of(devices),
        devices=tuple(devices), epochs=_epochs(parts, t0), timeline=_timeline(parts, t0),
        warnings=tuple(dict.fromkeys([*(w for r in reports for w in r.warnings), *merge_warnings(reports)])),
        wasted=any(r.wasted for r in reports), name=name or first.name,
        budget=next((r.budget for r in reports if r.budget), None),
        extra={**{k: v for k, v in first.extra.items() if k != "place"}, "parts": part_rows,
               "nodes": list(nodes.values())},
        carbonstep_version=first.carbonstep_version,
    ))


__all__ = ["merge", "merge_warnings"]
