"""Real MLflow SQLite stores for the compare tests, without paying MLflow's schema migrations for each one.

A new ``sqlite:///`` store makes MLflow run its alembic migrations: 8-15 s per store on a loaded machine, most of
the compare tests' time when every test built its own. Here MLflow creates and migrates one empty store per test
session; every store a test asks for is a copy of it (SQLite's online backup, a tenth of a second), which MLflow
then opens as it opens any store it migrated itself (it checks the schema version on open). Each test still gets
its own store: nothing one test logs is seen by another.

These stores' files (and only these: they end in :data:`SUFFIX`) are written without waiting for the disk after each
commit (SQLite's ``synchronous=OFF``, the rollback journal in memory): a test store need not survive a crash of the
machine, and on a shared disk the waits were the largest part of logging the tests' runs (9 ms a commit, about 1000
commits). What MLflow writes, and what compare reads back, is the same.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

SUFFIX = ".compare-test.db"  #: the name ending of the stores made here
_MIGRATED: list[Path] = []  #: the session's migrated empty store, once built


def _unsynced(connection: Any, _record: Any) -> None:
    """On each new SQLite connection MLflow opens to one of these stores: no syncs to disk (see the module)."""
    if not isinstance(connection, sqlite3.Connection):
        return
    files = [str(row[2]) for row in connection.execute("PRAGMA database_list")]
    if any(name.endswith(SUFFIX) for name in files):
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA journal_mode=MEMORY")


def _migrated(factory: pytest.TempPathFactory) -> Path:
    if not event.contains(Engine, "connect", _unsynced):
        event.listen(Engine, "connect", _unsynced)
    if not _MIGRATED or not _MIGRATED[0].is_file():
        path = factory.getbasetemp() / f"migrated{SUFFIX}"
        MlflowClient(f"sqlite:///{path}").search_experiments()  # MLflow creates and migrates it
        _MIGRATED[:] = [path]
    return _MIGRATED[0]


def new_store(folder: Path, factory: pytest.TempPathFactory) -> tuple[str, MlflowClient]:
    """A fresh, empty MLflow store in ``folder``: its tracking URI and a client on it."""
    path = folder / f"mlflow{SUFFIX}"
    source, target = sqlite3.connect(_migrated(factory)), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    uri = f"sqlite:///{path}"
    return uri, MlflowClient(uri)
