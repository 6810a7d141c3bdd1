"""Real MLflow SQLite stores for the compare tests, without paying MLflow's schema migrations for each one.

A new ``sqlite:///`` store makes MLflow run its alembic migrations: 8-15 s per store on a loaded machine, most of
the compare tests' time when every test built its own. Here MLflow creates and migrates one empty store per test
session (with SQLite's syncs to disk off while it does: half the time); every store a test asks for is a copy of it
(SQLite's online backup, a tenth of a second), which MLflow then opens as it opens any store it migrated itself (it
checks the schema version on open). Each test still gets its own store: nothing one test logs is seen by another.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

_MIGRATED: list[Path] = []  #: the session's migrated empty store, once built


def _unsynced(connection: Any, _record: Any) -> None:
    """SQLite without waiting for the disk after each of the migrations' hundreds of statements: the empty template
    only has to be complete once MLflow is done (it is then copied with SQLite's backup), not to survive a crash."""
    if isinstance(connection, sqlite3.Connection):
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA journal_mode=MEMORY")


def _migrated(factory: pytest.TempPathFactory) -> Path:
    if not _MIGRATED or not _MIGRATED[0].is_file():
        path = factory.getbasetemp() / "compare-migrated-mlflow.db"
        event.listen(Engine, "connect", _unsynced)  # only while MLflow builds the template: the copies are as usual
        try:
            MlflowClient(f"sqlite:///{path}").search_experiments()  # MLflow creates and migrates it
        finally:
            event.remove(Engine, "connect", _unsynced)
        _MIGRATED[:] = [path]
    return _MIGRATED[0]


def new_store(folder: Path, factory: pytest.TempPathFactory) -> tuple[str, MlflowClient]:
    """A fresh, empty MLflow store at ``folder``/mlflow.db: its tracking URI and a client on it."""
    path = folder / "mlflow.db"
    source, target = sqlite3.connect(_migrated(factory)), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    uri = f"sqlite:///{path}"
    return uri, MlflowClient(uri)
