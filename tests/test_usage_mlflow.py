"""``carbonstep usage`` over MLflow: the window, the experiments and the users are searched for by the store itself
(paged), and the answer is the one that reading every run and filtering here gives."""

from __future__ import annotations

import gc
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from carbonstep.analysis.usage.sources import Collected, mlflow_user_filters, read_mlflow
from carbonstep.analysis.usage.usage import Filters, parse_moment
from carbonstep.mlflow_io import names
from carbonstep.mlflow_io.client import collector_paused, iter_experiments
from carbonstep.report.usage_record import UNKNOWN
from carbonstep.testing.usage_synthetic import MonthGenerator, write_mlflow

pytest.importorskip("mlflow")

NOVEMBER = datetime(2026, 11, 1, tzinfo=timezone.utc)
START_MS = int(datetime(2026, 11, 20, tzinfo=timezone.utc).timestamp() * 1000)
OCTOBER_MS = int(datetime(2026, 10, 5, tzinfo=timezone.utc).timestamp() * 1000)


def _log(client: Any, experiment: str, tags: dict[str, str], energy: float = 1.0, start_ms: int = START_MS,
         drop_user_tag: bool = False) -> str:
    """One run as carbonstep's sink leaves it, with the user fields given (``mlflow.user`` also sets user_id)."""
    from mlflow.entities import Metric

    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run = client.create_run(experiment_id, start_time=start_ms, tags=tags, run_name=f"hand-{len(tags)}")
    client.log_batch(run.info.run_id, metrics=[Metric("energy_kwh", energy, start_ms, 0),
                                               Metric("co2_kg", 0.1, start_ms, 0)], synchronous=True)
    if drop_user_tag:  # user_id stays: a run that names its user only there
        client.delete_tag(run.info.run_id, "mlflow.user")
    client.set_terminated(run.info.run_id, "FINISHED", start_ms + 3_600_000)
    return str(run.info.run_id)


def write_store(uri: str) -> dict[str, str]:
    """A store with synthetic jobs (users in ``slurm.user`` and ``carbonstep.user``) and runs that name their user
    in one place only, in places that disagree, or not at all; and runs that cannot be counted (a NaN energy, an
    unknown status) which a search for someone else, or for another month, must never bring back."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    write_mlflow(uri, list(MonthGenerator(NOVEMBER, seed=5, marks_per_run=1).jobs(14)))
    runs = {
        "mlflow-user-only": _log(client, "hand", {"mlflow.user": "zoe"}),
        "user-id-only": _log(client, "hand", {"mlflow.user": "zoe"}, drop_user_tag=True),
        "empty-slurm-user": _log(client, "hand", {"slurm.user": "", names.USER: "zoe"}),
        "slurm-wins": _log(client, "hand", {"slurm.user": "ada", names.USER: "zoe"}),
        "nobody": _log(client, "hand", {}, drop_user_tag=False),
        "quote": _log(client, "hand", {names.USER: "o'brien"}),
        "nan-of-mallory": _log(client, "other", {names.USER: "mallory", "mlflow.user": "mallory"},
                               energy=math.nan),
        "october-bad-status": _log(client, "hand", {names.USER: "zoe", names.STATUS: "exploded"},
                                   start_ms=OCTOBER_MS),
    }
    for index in range(5):  # more experiments than a page of the tests' small pages
        client.create_experiment(f"empty-{index}")
    return runs


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    folder = tmp_path_factory.mktemp("usage-mlflow")
    uri = f"sqlite:///{folder}/mlflow.db"
    return uri, write_store(uri)


class SearchSpy:
    """Counts what the store's search answered (the real client's ``search_runs``, wrapped)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import mlflow

        self.calls: list[str] = []
        self.run_ids: list[str] = []
        original = mlflow.MlflowClient.search_runs

        def search_runs(client: Any, *args: Any, **kwargs: Any) -> Any:
            page = original(client, *args, **kwargs)
            self.calls.append(args[1] if len(args) > 1 else kwargs.get("filter_string", ""))
            self.run_ids += [run.info.run_id for run in page]
            return page

        monkeypatch.setattr(mlflow.MlflowClient, "search_runs", search_runs)


def read(uri: str, filters: Filters, page_size: int = 1000) -> tuple[list[Any], Collected]:
    """The records the command keeps, read with the store filtering (as the command reads)."""
    side = Collected()
    records = read_mlflow(uri, filters.experiments or None, filters.since_s, filters.until_s, side,
                          page_size=page_size, users=filters.users or None)
    return sorted((r for r in records if filters.keep(r)), key=lambda r: r.source), side


def read_all_then_filter(uri: str, filters: Filters) -> list[Any]:
    """The same answer the slow way: every run of the store read, the filters applied here."""
    records = read_mlflow(uri, None, None, None, Collected())
    return sorted((r for r in records if filters.keep(r)), key=lambda r: r.source)


USER_CASES = [["zoe"], ["ada"], ["ada", "zoe"], [UNKNOWN], ["o'brien"], ["nobody-at-all"]]


@pytest.mark.parametrize("users", USER_CASES, ids=lambda users: "+".join(users))
def test_the_store_filters_users_and_the_answer_is_unchanged(store: tuple[str, dict[str, str]],
                                                             users: list[str]) -> None:
    uri, _ = store
    filters = Filters(users=users)
    kept, _ = read(uri, filters, page_size=2)
    assert kept == read_all_then_filter(uri, filters)


def test_who_a_run_belongs_to_follows_the_same_order_as_before(store: tuple[str, dict[str, str]]) -> None:
    uri, runs = store
    zoe = {r.source.removeprefix("mlflow:") for r in read(uri, Filters(users=["zoe"]))[0]}
    assert zoe == {runs["mlflow-user-only"], runs["user-id-only"], runs["empty-slurm-user"]}
    ada = {r.source.removeprefix("mlflow:") for r in read(uri, Filters(users=["ada"]))[0]}
    assert runs["slurm-wins"] in ada and len(ada) > 1  # the synthetic jobs of ada, and the one Slurm says is hers


def test_runs_of_other_users_and_other_months_are_never_read(store: tuple[str, dict[str, str]],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    uri, runs = store
    everything = Collected()
    read_mlflow(uri, None, None, None, everything)
    assert len(everything.warnings) == 2  # the NaN energy and the unknown status: read, so skipped with a line
    spy = SearchSpy(monkeypatch)
    kept, side = read(uri, Filters(since_s=parse_moment("--from", "2026-11-01"), users=["zoe"]), page_size=2)
    assert side.warnings == [] and len(kept) == 3
    assert runs["nan-of-mallory"] not in spy.run_ids and runs["october-bad-status"] not in spy.run_ids
    assert len(spy.calls) == len(mlflow_user_filters(["zoe"]) or []) == 4  # one search per place a user is named
    assert all("start_time >=" in query for query in spy.calls)
    named_zoe = {runs[k] for k in ("mlflow-user-only", "user-id-only", "empty-slurm-user", "slurm-wins")}
    assert set(spy.run_ids) == named_zoe  # nothing else crossed: the one Slurm gives to ada is dropped here


def test_the_experiment_filter_and_the_window_are_the_stores_too(store: tuple[str, dict[str, str]],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    uri, runs = store
    spy = SearchSpy(monkeypatch)
    filters = Filters(since_s=parse_moment("--from", "2026-11-15"), until_s=parse_moment("--to", "2026-12-01"),
                      experiments=["hand"])
    kept, side = read(uri, filters, page_size=3)
    answered = set(spy.run_ids)
    assert runs["nan-of-mallory"] not in answered and runs["october-bad-status"] not in answered
    assert len(answered) == 6 and side.warnings == []  # the six runs logged by hand on 20 November
    assert kept == read_all_then_filter(uri, filters) and {r.experiment for r in kept} == {"hand"}


def test_every_page_of_experiments_is_read(store: tuple[str, dict[str, str]]) -> None:
    import mlflow

    uri, _ = store
    client = mlflow.MlflowClient(uri)
    assert len(client.search_experiments(max_results=2)) == 2  # one page is not all of them
    paged = [e.name for e in iter_experiments(client, page_size=2)]
    assert sorted(paged) == sorted(e.name for e in client.search_experiments(max_results=1000))
    assert {f"empty-{i}" for i in range(5)} | {"hand", "other"} <= set(paged)


def test_user_names_the_filter_cannot_carry_are_filtered_here() -> None:
    assert mlflow_user_filters(None) is None and mlflow_user_filters([]) is None
    assert mlflow_user_filters(["o'brien"]) is None and mlflow_user_filters(["a\\b"]) is None
    assert mlflow_user_filters(["ada", UNKNOWN]) is None  # runs naming nobody: no search finds them
    assert mlflow_user_filters(["ada", "ada"]) == ["tags.`slurm.user` = 'ada'", "tags.`carbonstep.user` = 'ada'",
                                                    "tags.`mlflow.user` = 'ada'", "attributes.user_id = 'ada'"]


def test_the_collector_is_paused_only_while_a_page_is_built() -> None:
    def failing() -> Iterator[None]:
        with collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("the store went away")
        yield  # pragma: no cover

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        next(failing())
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def test_the_collector_runs_again_after_a_store_is_read(store: tuple[str, dict[str, str]]) -> None:
    uri, _ = store
    read_mlflow(uri, None, None, None, Collected(), page_size=4)
    assert gc.isenabled()


@pytest.mark.slow
def test_a_server_filters_users_and_the_window_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from .mlflow_server import MlflowServer

    server = MlflowServer(tmp_path).start()
    try:
        runs = write_store(server.uri)
        for users in (["zoe"], ["ada", "zoe"], [UNKNOWN]):
            filters = Filters(users=users)
            assert read(server.uri, filters, page_size=2)[0] == read_all_then_filter(server.uri, filters)
        spy = SearchSpy(monkeypatch)
        kept, side = read(server.uri, Filters(since_s=parse_moment("--from", "2026-11-01"), users=["zoe"]),
                          page_size=2)
        assert len(kept) == 3 and side.warnings == []
        assert runs["nan-of-mallory"] not in spy.run_ids and runs["october-bad-status"] not in spy.run_ids
    finally:
        server.stop()
