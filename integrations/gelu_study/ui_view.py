"""A saved MLflow UI view for the study: the runs grouped by recipe, val_loss against co2_kg, no clicks.

Each run is drawn as its own line in its recipe's colour (the run tag ``mlflow.runColor``).

MLflow's experiment page can "share" a view: it stores the view's state as JSON in the experiment tag
``mlflow.sharedViewState.<key>`` and opens it from ``#/experiments/<id>?viewStateShareKey=<key>``
(MLflow 3.x front end; the keys below are the ones its runs page persists: ``compareRunCharts``,
``compareRunSections``, ``groupBy``, ``searchFilter``...). Setting the tag ``mlflow.experimentKind`` to
``custom_model_development`` makes the experiment open on its runs, not on the GenAI traces page.
"""

from __future__ import annotations

import json
from typing import Any

VIEW_KEY = "carbonstep-val-loss-vs-co2"
SECTION_ID = "carbonstep-section"


def _line_chart(uuid: str, metric: str, x_metric: str | None, title: str) -> dict[str, Any]:
    return {"uuid": uuid, "type": "LINE", "runsCountToCompare": 100, "metricSectionId": SECTION_ID, "deleted": False,
            "isGenerated": False, "displayName": title, "metricKey": metric, "selectedMetricKeys": [metric],
            "lineSmoothness": 0, "scaleType": "log", "xAxisScaleType": "linear", "range": {},
            "xAxisKey": "metric" if x_metric else "step", "selectedXAxisMetricKey": x_metric or ""}


def view_state(metric: str, search_filter: str) -> dict[str, Any]:
    """The runs page state: recipes as groups (mean and range), ``metric`` against co2_kg and against step."""
    return {
        "searchFilter": search_filter,
        "compareRunCharts": [
            _line_chart("carbonstep-metric-vs-co2", metric, "co2_kg", f"{metric} against co2_kg (kg CO2e)"),
            _line_chart("carbonstep-metric-vs-step", metric, None, f"{metric} per step"),
        ],
        "compareRunSections": [
            {"uuid": SECTION_ID, "name": "carbonstep: quality against carbon", "display": True, "isReordered": False,
             "deleted": False, "isGenerated": False, "columns": 2, "cardHeight": 460},
            *({"uuid": f"carbonstep-{name.split()[0].lower()}", "name": name, "display": False, "isReordered": False,
               "deleted": False, "isGenerated": True} for name in ("Model metrics", "System metrics")),
        ],  # MLflow's own sections (a chart per metric) folded, below ours
        "isAccordionReordered": True,
        "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "param", "groupByData": "recipe"}]},
        "useGroupedValuesInCharts": False,  # a line per run: MLflow's group mean against a metric axis zig-zags
        "hideEmptyCharts": True,
        "runListHidden": False,
        "viewMaximized": False,
    }


def save_view(client: Any, experiment_id: str, metric: str, search_filter: str,
              run_colours: dict[str, str] | None = None) -> str:
    """Store the view on the experiment, colour runs (run id → "#rrggbb", the run tag ``mlflow.runColor``, e.g. one
    colour per recipe); the URL path (after the server address) that opens the view."""
    for run_id, colour in (run_colours or {}).items():
        client.set_tag(run_id, "mlflow.runColor", colour)
    client.set_experiment_tag(experiment_id, "mlflow.experimentKind", "custom_model_development")
    client.set_experiment_tag(experiment_id, f"mlflow.sharedViewState.{VIEW_KEY}",
                              json.dumps(view_state(metric, search_filter)))
    return url_path(experiment_id)


def url_path(experiment_id: str) -> str:
    """The URL path (after the server address) of the saved view: the experiment's runs, as charts, in the
    "Model training" side of the UI (``workflowType``; the UI otherwise opens on its GenAI overview)."""
    return (f"/#/experiments/{experiment_id}/runs?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"
            f"&compareRunsMode=CHART")
