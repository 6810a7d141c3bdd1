"""A saved MLflow UI view of a metric against co2_kg, stored on an experiment: the chart opens with no clicks.

MLflow's experiment page can "share" a view: it stores the view's state as JSON in the experiment tag
``mlflow.sharedViewState.<key>`` and opens it from ``#/experiments/<id>?viewStateShareKey=<key>``
(MLflow 3.x front end; the keys below are the ones its runs page persists: ``compareRunCharts``,
``compareRunSections``, ``groupBy``, ``searchFilter``...). Setting the tag ``mlflow.experimentKind`` to
``custom_model_development`` makes the experiment open on its runs, not on the GenAI traces page.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from carbonstep.mlflow_io.client import client as make_client
from carbonstep.mlflow_io.client import experiment_id as find_or_create_experiment
from carbonstep.mlflow_io.names import CO2_KG

VIEW_KEY = "carbonstep-val-loss-vs-co2"  #: the share key (kept for every metric: one saved view per experiment)
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
SECTION_ID = "carbonstep-section"
X_METRIC = CO2_KG


def _line_chart(uuid: str, metric: str, x_metric: str | None, title: str) -> dict[str, Any]:
    return {"uuid": uuid, "type": "LINE", "runsCountToCompare": 100, "metricSectionId": SECTION_ID, "deleted": False,
            "isGenerated": False, "displayName": title, "metricKey": metric, "selectedMetricKeys": [metric],
            "lineSmoothness": 0, "scaleType": "log", "xAxisScaleType": "linear", "range": {},
            "xAxisKey": "metric" if x_metric else "step", "selectedXAxisMetricKey": x_metric or ""}


def view_state(metric: str = "val_loss", search_filter: str = "", group_param: str | None = None) -> dict[str, Any]:
    """The runs page state: ``metric`` against co2_kg and against step; runs grouped by the param
    ``group_param`` (mean and range) when given, each run still drawn as its own line."""
    state: dict[str, Any] = {
        "searchFilter": search_filter,
        "compareRunCharts": [
            _line_chart("carbonstep-metric-vs-co2", metric, X_METRIC, f"{metric} against co2_kg (kg CO2e)"),
            _line_chart("carbonstep-metric-vs-step", metric, None, f"{metric} per step"),
        ],
        "compareRunSections": [
            {"uuid": SECTION_ID, "name": "carbonstep: quality against carbon", "display": True, "isReordered": False,
             "deleted": False, "isGenerated": False, "columns": 2, "cardHeight": 460},
            *({"uuid": f"carbonstep-{name.split()[0].lower()}", "name": name, "display": False, "isReordered": False,
               "deleted": False, "isGenerated": True} for name in ("Model metrics", "System metrics")),
        ],  # MLflow's own sections (a chart per metric) folded, below ours
        "isAccordionReordered": True,
        "useGroupedValuesInCharts": False,  # a line per run: MLflow's group mean against a metric axis zig-zags
        "hideEmptyCharts": True,
        "runListHidden": False,
        "viewMaximized": False,
    }
    if group_param:
        state["groupBy"] = {"aggregateFunction": "average",
                            "groupByKeys": [{"mode": "param", "groupByData": group_param}]}
    return state


def url_path(experiment_id: str) -> str:
    """The URL path (after the server address) of the saved view: the experiment's runs, as charts, in the
    "Model training" side of the UI (``workflowType``; the UI otherwise opens on its GenAI overview)."""
    return (f"/#/experiments/{experiment_id}/runs?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"
            f"&compareRunsMode=CHART")


def save_chart_view(experiment: str, metric: str = "val_loss", tracking_uri: str | None = None,
                    group_param: str | None = None, search_filter: str = "",
                    run_colours: Mapping[str, str] | None = None, mlflow_client: Any = None) -> str:
    """Save, on the experiment named ``experiment`` (created if missing), a UI view charting ``metric`` against
    co2_kg; return the URL path (after the server address, e.g. ``http://127.0.0.1:5000``) that opens it.

    ``group_param`` groups the runs by that param; ``search_filter`` is the runs page's filter; ``run_colours``
    colours runs (run id → ``"#rrggbb"``, the run tag ``mlflow.runColor``). ``scripts/mlflow-ui EXPERIMENT``
    starts a light server on the store and prints the full address."""
    found = mlflow_client or make_client(tracking_uri)
    experiment_id = find_or_create_experiment(found, experiment)
    for run_id, colour in (run_colours or {}).items():
        found.set_tag(run_id, "mlflow.runColor", colour)
    found.set_experiment_tag(experiment_id, "mlflow.experimentKind", "custom_model_development")
    found.set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(view_state(metric, search_filter, group_param)))
    return url_path(experiment_id)


__all__ = ["VIEW_KEY", "VIEW_TAG", "save_chart_view", "url_path", "view_state"]
