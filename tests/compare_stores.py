"""Real MLflow SQLite stores for the compare tests, without paying MLflow's schema migrations for each one.

A new ``sqlite:///`` store makes MLflow run its alembic migrations: 8-15 s per store on a loaded machine, most of
the compare tests' time when every test built its own. Here MLflow creates and migrates one empty store per test
session; every store a test asks for is a copy of it (SQLite's online backup, a tenth of a second), which MLflow
then opens as it opens any store it migrated itself (it checks the schema version on open). Each test still gets
its own store: nothing one test logs is seen by another.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mlflow import MlflowClient

_MIGRATED: list[Path] = []  #: the session's migrated empty store, once built


def _migrated(factory: pytest.TempPathFactory) -> Path:
    if not _MIGRATED or not _MIGRATED[0].is_file():
        _MIGRATED[:] = [factory.getbasetemp() / "compare-migrated-mlflow.db"]
        MlflowClient(f"sqlite:///{_MIGRATED[0]}").search_experiments()  # MLflow creates and migrates it
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
