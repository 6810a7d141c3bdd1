"""The contract every sink fulfils: it consumes figures and reports, never reads hardware."""

from __future__ import annotations

import os
from typing import Any, Mapping, Protocol, Sequence

from carbonstep.errors import SinkError


class Sink(Protocol):
    """Where a training session sends its figures (MLflow, a file, a test double).

    Implementations must never raise into training: an I/O error is kept and reported.
    """

    run_id: str | None
    #: what could not be delivered so far (a SinkError each); the training session copies it into the report
    errors: Sequence[SinkError]

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Queue metrics at a training step."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Queue run parameters."""

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Queue run tags."""

    def log_artifact(self, path: str | os.PathLike[str]) -> None:
        """Queue a file to attach to the run."""

    def close(self, status: str = "FINISHED") -> str | None:
        """Flush (bounded) and end the run; return an error text when something could not be sent."""
