"""The one way into MLflow: its modules (imported here, on use), a client, the one experiment lookup and the one
run reader. Every other carbonstep module that reads or writes MLflow goes through these functions.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from carbonstep.errors import ConfigError, MissingExtraError
from carbonstep.mlflow_io.probe import unreachable_reason

MAX_EXPERIMENTS_PER_SEARCH = 100  #: MLflow's ``search_runs`` takes at most 100 experiment ids at a time
#: runs (or experiments) asked for per request: MLflow's own default page, ``SEARCH_MAX_RESULTS_DEFAULT`` = 1000
#: (``mlflow/store/tracking/__init__.py``; a server takes up to 50,000, ``mlflow/server/handlers.py``). Larger
#: pages cost memory: 10,000 runs read in pages of 5,000 peaked at 502 MiB against 291 MiB in pages of 1,000.
SEARCH_PAGE = 1000


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


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for the block (restored as it was, even on an error).

    MLflow's SQL store builds a SQLAlchemy object per tag, param and metric of a page of runs (about 300,000
    for 10,000 carbonstep runs), and the collector's passes over them were more than half of the CPU time of
    reading such a store: 16.9-19.5 CPU-s with the collector, 7.1-8.4 without (``benchmarks/README.md``).
    Reference counting frees a page's objects when it is done; the few cycles left are collected when the
    collector runs again. Pausing it changes no result, and the peak memory by 2 MiB (289 against 291 MiB,
    the 10,000 runs)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def search_page(mlflow_client: Any, experiment_ids: Sequence[str], filter_string: str, page_size: int,
                order_by: Sequence[str] | None, token: str | None) -> Any:
    """One page of ``search_runs`` (a ``PagedList`` whose ``token`` leads to the next), built with the
    collector paused."""
    with collector_paused():
        return mlflow_client.search_runs(list(experiment_ids), filter_string, max_results=page_size,
                                         order_by=list(order_by or []) or None, page_token=token)


def iter_runs(mlflow_client: Any, experiment_ids: Sequence[str], filter_string: str = "",
              order_by: Sequence[str] | None = None, page_size: int = SEARCH_PAGE,
              limit: int | None = None) -> Iterator[Any]:
    """The runs of ``experiment_ids`` matching ``filter_string``, a page at a time (and at most 100 experiments
    per request, as MLflow requires), stopping after ``limit`` runs when given."""
    ids = list(experiment_ids)
    count = 0
    for start in range(0, len(ids), MAX_EXPERIMENTS_PER_SEARCH):
        token = None
        while True:
            page = search_page(mlflow_client, ids[start:start + MAX_EXPERIMENTS_PER_SEARCH], filter_string,
                               page_size, order_by, token)
            for run in page:
                yield run
                count += 1
                if limit is not None and count >= limit:
                    return
            token = page.token
            if not token:
                break


def iter_experiments(mlflow_client: Any, page_size: int = SEARCH_PAGE) -> Iterator[Any]:
    """Every active experiment, a page at a time (``search_experiments`` answers one page of at most
    ``max_results``: 1,000 by default)."""
    token = None
    while True:
        page = mlflow_client.search_experiments(max_results=page_size, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def autologging_disabled(flavor: str) -> bool:
    """Whether MLflow's autologging is switched off for ``flavor`` (e.g. ``"keras"``); False without MLflow."""
    try:
        from mlflow.utils.autologging_utils import autologging_is_disabled
    except ImportError:
        return False
    return bool(autologging_is_disabled(flavor))


__all__ = [
    "MAX_EXPERIMENTS_PER_SEARCH", "SEARCH_PAGE", "answering_client", "autologging_disabled", "client",
    "collector_paused", "default_tracking_uri", "experiment_id", "find_experiment", "installed", "iter_experiments",
    "iter_runs", "load_entities", "load_mlflow", "search_page",
]
