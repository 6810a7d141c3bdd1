"""The one way into MLflow: its modules (imported here, on use), a client, the one experiment lookup and the one
run reader. Every other carbonstep module that reads or writes MLflow goes through these functions.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from carbonstep.errors import ConfigError, MissingExtraError
from carbonstep.mlflow_io.probe import unreachable_reason

MAX_EXPERIMENTS_PER_SEARCH = 100  #: MLflow's ``search_runs`` takes at most 100 experiment ids at a time


def load_mlflow() -> Any:
    """The ``mlflow`` module, or :class:`MissingExtraError` naming the ``mlflow`` extra."""
    try:
        import mlflow
    except ImportError as exc:
        raise MissingExtraError("mlflow", "mlflow") from exc
    return mlflow


def load_entities() -> Any:
    """The ``mlflow.entities`` module (Metric, Param, RunTag …), or :class:`MissingExtraError`."""
    try:
        import mlflow.entities
    except ImportError as exc:
        raise MissingExtraError("mlflow", "mlflow") from exc
    return mlflow.entities


def installed() -> bool:
    """Whether MLflow can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None


def default_tracking_uri() -> str:
    """The tracking URI MLflow would use (``MLFLOW_TRACKING_URI``, or its local default)."""
    return str(load_mlflow().get_tracking_uri())


def client(tracking_uri: str | None = None) -> Any:
    """An ``MlflowClient`` for ``tracking_uri`` (None: MLflow's default). No request is made."""
    return load_mlflow().MlflowClient(tracking_uri)


def answering_client(tracking_uri: str | None, hint: str = "start the tracking server, or pass --tracking-uri") -> Any:
    """A client, once a short probe says its server answers (MLflow's own retries take minutes); else one
    clear :class:`ConfigError`."""
    reason = unreachable_reason(tracking_uri or default_tracking_uri())
    if reason:
        raise ConfigError(f"{reason}: {hint}")
    return client(tracking_uri)


def find_experiment(mlflow_client: Any, name: str) -> Any:
    """The experiment named ``name``, or a :class:`ConfigError` that lists the experiments there are."""
    found = mlflow_client.get_experiment_by_name(name)
    if found is None:
        names = [e.name for e in mlflow_client.search_experiments()]
        raise ConfigError(f"no MLflow experiment {name!r}; there are: {', '.join(names) or 'none'}")
    return found


def experiment_id(mlflow_client: Any, name: str) -> str:
    """The id of the experiment named ``name``, created when there is none (for writers)."""
    found = mlflow_client.get_experiment_by_name(name)
    return str(found.experiment_id if found else mlflow_client.create_experiment(name))


def iter_runs(mlflow_client: Any, experiment_ids: Sequence[str], filter_string: str = "",
              order_by: Sequence[str] | None = None, page_size: int = 1000,
              limit: int | None = None) -> Iterator[Any]:
    """The runs of ``experiment_ids`` matching ``filter_string``, a page at a time (and at most 100 experiments
    per request, as MLflow requires), stopping after ``limit`` runs when given."""
    ids = list(experiment_ids)
    count = 0
    for start in range(0, len(ids), MAX_EXPERIMENTS_PER_SEARCH):
        token = None
        while True:
            page = mlflow_client.search_runs(ids[start:start + MAX_EXPERIMENTS_PER_SEARCH], filter_string,
                                             max_results=page_size, order_by=list(order_by or []) or None,
                                             page_token=token)
            for run in page:
                yield run
                count += 1
                if limit is not None and count >= limit:
                    return
            token = page.token
            if not token:
                break


def autologging_disabled(flavor: str) -> bool:
    """Whether MLflow's autologging is switched off for ``flavor`` (e.g. ``"keras"``); False without MLflow."""
    try:
        from mlflow.utils.autologging_utils import autologging_is_disabled
    except ImportError:
        return False
    return bool(autologging_is_disabled(flavor))


__all__ = [
    "MAX_EXPERIMENTS_PER_SEARCH", "answering_client", "autologging_disabled", "client", "default_tracking_uri",
    "experiment_id", "find_experiment", "installed", "iter_runs", "load_entities", "load_mlflow",
]
