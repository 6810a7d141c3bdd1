"""Stores opened only to be read: checked to exist, and to be the kind asked for, before MLflow or Optuna sees them.

MLflow and Optuna create a store they are pointed at: a mistyped ``sqlite:///x.db`` becomes a new, empty database
(and a "0 runs" answer), an unrelated SQLite file gains MLflow's tables or Optuna's. The readers (``usage``,
``compare``, ``study``) call :func:`check_readable_store` first: a SQLite file is opened read-only
(``file:…?mode=ro``, sqlite3's URI form) and its tables looked up, a ``file:`` store must be an existing folder,
and an HTTP server must answer its health probe within seconds (:mod:`carbonstep.mlflow_io.probe`).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from urllib.parse import quote, unquote, urlparse

from carbonstep.errors import ConfigError
from carbonstep.mlflow_io.probe import unreachable_reason

#: tables each kind of store always has (the ``__tablename__`` of MLflow's
#: ``mlflow/store/tracking/dbmodels/models.py`` and of Optuna's ``optuna/storages/_rdb/models.py``, as installed):
#: a SQLite file lacking them is not that store
TABLES = {"mlflow": frozenset({"experiments", "runs", "metrics"}),
          "optuna": frozenset({"studies", "trials", "trial_values"})}
WHAT = {"mlflow": "MLflow tracking store", "optuna": "Optuna storage"}


def sqlite_path(uri: str) -> str | None:
    """The file of a ``sqlite:///path`` URI (query string left out), or None for any other URI."""
    if not uri.startswith("sqlite:///"):
        return None
    return unquote(uri[len("sqlite:///"):].split("?", 1)[0])


def sqlite_tables(path: str) -> set[str]:
    """The tables of a SQLite file, opened read-only (nothing is created or changed); ConfigError if the file is
    missing, not a regular file, or not a SQLite database."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigError(f"{path}: no such file ({exc.strerror or exc})") from None
    except ValueError:
        raise ConfigError(f"{path!r}: not a file path") from None
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{path}: not a regular file")
    try:
        connection = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True, timeout=5.0)
        try:
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{path}: not a readable SQLite database ({reason})") from None
    return {str(row[0]) for row in rows}


def check_readable_store(uri: str, kind: str) -> None:
    """Check that ``uri`` names an existing store of ``kind`` ("mlflow" or "optuna") without creating or changing
    anything; one-line ConfigError ("no such …") otherwise. URIs of other schemes (a database server) pass."""
    what = WHAT[kind]
    path = sqlite_path(uri)
    if path is not None:
        try:
            tables = sqlite_tables(path)
        except ConfigError as exc:
            raise ConfigError(f"{uri}: no such {what} ({exc}); reading never creates one") from None
        if not TABLES[kind] <= tables:
            raise ConfigError(f"{uri}: no such {what}: the SQLite file has no {kind} tables "
                              f"({len(tables)} others); reading never adds them")
        return
    if uri.startswith("sqlite:"):
        raise ConfigError(f"{uri}: not a SQLite file URI: write sqlite:///relative/path.db or sqlite:////absolute.db")
    if uri.startswith("file:"):
        if kind != "mlflow":
            raise ConfigError(f"{uri}: an {what} is a database URL such as sqlite:///study.db")
        folder = unquote(urlparse(uri).path)
        if not os.path.isdir(folder):
            raise ConfigError(f"{uri}: no such {what} (no folder {folder}); reading never creates one")
        return
    reason = unreachable_reason(uri)
    if reason:
        raise ConfigError(f"{reason}: start the tracking server, or pass another URI")


__all__ = ["TABLES", "check_readable_store", "sqlite_path", "sqlite_tables"]
