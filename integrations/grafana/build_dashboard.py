"""Write carbonstep.json, the Grafana dashboard for carbonstep's Prometheus metrics (run from anywhere).

Every query is run by tests/test_prometheus.py against a real Prometheus holding pushed data, with Grafana's
variables replaced as Grafana does ($__range, $__interval, and ".*" for "All"); it must return series.
"""

from __future__ import annotations

import json
from pathlib import Path

SEL = '{user=~"$user", project=~"$project"}'
DS = {"type": "prometheus", "uid": "${datasource}"}


def increase(metric: str, window: str) -> str:
    return f"increase({metric}{SEL}[{window}])"


def panel(i: int, title: str, kind: str, targets: list[tuple[str, str]], unit: str, w: int = 12,
          interval: str | None = None, description: str = "") -> dict:
    out = {
        "id": i, "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": {"h": 8, "w": w, "x": 0 if i % 2 else 12, "y": (i - 1) // 2 * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + n), "datasource": DS, "expr": expr, "legendFormat": legend,
                     "instant": kind != "timeseries", "range": kind == "timeseries"}
                    for n, (expr, legend) in enumerate(targets)],
        "options": {},
    }
    if interval:
        out["interval"] = interval
    if kind == "timeseries":
        out["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "bars", "stacking": {"mode": "normal"}}
    return out


def dashboard() -> dict:
    energy, co2, water = ("carbonstep_energy_joules_total", "carbonstep_co2_grams_total",
                          "carbonstep_water_litres_total")
    day = "$__interval"
    gpu_energy = increase(energy, "$__range").replace(SEL, SEL[:-1] + ', device="gpu"}')
    panels = [
        panel(1, "Energy per day by user", "timeseries",
              [(f"sum by (user) ({increase(energy, day)}) / 3.6e6", "{{user}}")], "kwatth", interval="1d",
              description="IT energy (before PUE) measured by carbonstep, kWh per day"),
        panel(2, "CO2e per day by project", "timeseries",
              [(f"sum by (project) ({increase(co2, day)}) / 1000", "{{project}}")], "masskg", interval="1d"),
        panel(3, "Water per day by user", "timeseries",
              [(f"sum by (user) ({increase(water, day)})", "{{user}}")], "litre", interval="1d"),
        panel(4, "Energy by project (time range)", "bargauge",
              [(f"sum by (project) ({increase(energy, '$__range')}) / 3.6e6", "{{project}}")], "kwatth"),
        panel(5, "CO2e by user (time range)", "bargauge",
              [(f"sum by (user) ({increase(co2, '$__range')}) / 1000", "{{user}}")], "masskg"),
        panel(6, "Water by project (time range)", "bargauge",
              [(f"sum by (project) ({increase(water, '$__range')})", "{{project}}")], "litre"),
        panel(7, "Wasted share of the energy (failed and interrupted runs)", "stat",
              [(f"sum({increase('carbonstep_wasted_energy_joules_total', '$__range')}) / "
                f"sum({increase(energy, '$__range')})", "wasted")], "percentunit"),
        panel(8, "GPU idle: energy of GPUs under 10 % use for over half their run", "bargauge",
              [(f"sum by (user) ({increase('carbonstep_gpu_idle_energy_joules_total', '$__range')}) / 3.6e6",
                "{{user}}")], "kwatth"),
        panel(9, "GPU idle share of GPU energy", "stat",
              [(f"sum({increase('carbonstep_gpu_idle_energy_joules_total', '$__range')}) / "
                f"sum({gpu_energy})", "idle")],
              "percentunit"),
        panel(10, "GPU-hours by account and partition", "bargauge",
              [(f"sum by (account, partition) ({increase('carbonstep_gpu_seconds_total', '$__range')}) / 3600",
                "{{account}} / {{partition}}")], "h"),
        panel(11, "Power now by host", "timeseries",
              [(f"sum by (host) (rate({energy}{SEL}[$__rate_interval]))", "{{host}}")], "watt"),
        panel(12, "Energy by device kind (time range)", "piechart",
              [(f"sum by (device) ({increase(energy, '$__range')}) / 3.6e6", "{{device}}")], "kwatth"),
    ]
    variable = {"type": "query", "datasource": DS, "includeAll": True, "allValue": ".*", "multi": True,
                "refresh": 2, "current": {"text": "All", "value": "$__all"}}
    return {
        "uid": "carbonstep-lab", "title": "carbonstep: a lab's energy, CO2e and water", "schemaVersion": 39,
        "tags": ["carbonstep", "energy", "carbon"], "time": {"from": "now-30d", "to": "now"}, "refresh": "5m",
        "templating": {"list": [
            {"type": "datasource", "name": "datasource", "query": "prometheus", "label": "Prometheus"},
            {**variable, "name": "user", "label": "user",
             "query": {"query": "label_values(carbonstep_energy_joules_total, user)", "refId": "user"},
             "definition": "label_values(carbonstep_energy_joules_total, user)"},
            {**variable, "name": "project", "label": "project",
             "query": {"query": "label_values(carbonstep_energy_joules_total, project)", "refId": "project"},
             "definition": "label_values(carbonstep_energy_joules_total, project)"},
        ]},
        "panels": panels,
    }


def main() -> None:
    path = Path(__file__).with_name("carbonstep.json")
    path.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(path)


if __name__ == "__main__":
    main()
