"""Who measures the code running now: lets an outer measurement yield to a training session inside it.

A hyperparameter trial (:mod:`carbonstep.callbacks.optuna`) measures its objective with a
:class:`~carbonstep.Tracker`; when the objective trains with one of carbonstep's framework callbacks, the
callback's :class:`~carbonstep.training.session.TrainingSession` announces itself here, the trial stops its
own Tracker while the session measures, and takes the session's report instead: nothing is counted twice.
The owner is a context variable, so each thread (Optuna's ``n_jobs``) sees only its own trial.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token
from typing import Any, Protocol

log = logging.getLogger("carbonstep")


class Owner(Protocol):
    """An outer measurement that hands over to training sessions started inside it."""

    def session_began(self, session: Any) -> None:
        """A session is about to start measuring: stop measuring the same thing."""

    def session_ended(self, session: Any) -> None:
        """The session has written its report (``session.report``): take it, measure on."""


_owner: ContextVar[Owner | None] = ContextVar("carbonstep_measurement_owner", default=None)


def enter(owner: Owner) -> Token:
    """Make ``owner`` the measurement of the code that follows (in this thread or task)."""
    return _owner.set(owner)


def leave(token: Token) -> None:
    """Undo :func:`enter`."""
    _owner.reset(token)


def session_began(session: Any) -> None:
    """Called by a TrainingSession before its Tracker starts; never raises into training."""
    _notify("session_began", session)


def session_ended(session: Any) -> None:
    """Called by a TrainingSession once its report is built; never raises into training."""
    _notify("session_ended", session)


def _notify(event: str, session: Any) -> None:
    owner = _owner.get()
    if owner is None:
        return
    try:
        getattr(owner, event)(session)
    except Exception:  # noqa: BLE001 - the outer measurement must not stop training
        log.warning("carbonstep: the measurement around this training failed at %s", event, exc_info=True)
