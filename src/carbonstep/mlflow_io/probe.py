"""A short health probe of an MLflow tracking server, with MLflow's own TLS settings.

MLflow's client retries a dead server for minutes (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, backoff); a probe of
``/health`` with a timeout of a few seconds tells first whether it is worth trying. The probe verifies TLS as
MLflow does (``mlflow.utils.rest_utils.MlflowHostCreds.verify``): ``MLFLOW_TRACKING_SERVER_CERT_PATH`` is the CA
bundle, ``MLFLOW_TRACKING_INSECURE_TLS`` turns verification off, ``MLFLOW_TRACKING_CLIENT_CERT_PATH`` is the
client certificate; otherwise ``requests``' defaults (``REQUESTS_CA_BUNDLE``, proxies) apply, as for MLflow.
"""

from __future__ import annotations

import re
from typing import Any

from carbonstep.errors import MissingExtraError, require

PROBE_TIMEOUT_S = 2.0


def tls_options() -> dict[str, Any]:
    """``requests`` keyword arguments for TLS, read from MLflow's environment variables by MLflow's own parser."""
    try:
        import mlflow.environment_variables as env
    except ImportError as exc:
        raise MissingExtraError("mlflow", "mlflow") from exc
    cert_path = env.MLFLOW_TRACKING_SERVER_CERT_PATH.get()
    verify: bool | str = cert_path if cert_path else not env.MLFLOW_TRACKING_INSECURE_TLS.get()
    options: dict[str, Any] = {"verify": verify}
    client_cert = env.MLFLOW_TRACKING_CLIENT_CERT_PATH.get()
    if client_cert:
        options["cert"] = client_cert
    return options


def unreachable_reason(tracking_uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when ``tracking_uri`` answers ``/health`` within ``timeout_s`` (or is not HTTP: a local store);
    else why not, in a few words."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    requests = require("requests", "mlflow")
    try:
        response = requests.get(tracking_uri.rstrip("/") + "/health", timeout=timeout_s, **tls_options())
    except requests.exceptions.SSLError as exc:
        return (f"{tracking_uri}: TLS verification failed ({_first_line(exc)}); set MLFLOW_TRACKING_SERVER_CERT_PATH "
                "to the server's CA bundle")
    except requests.exceptions.RequestException as exc:
        return f"{tracking_uri} is not reachable ({_first_line(exc)})"
    if response.status_code != 200:
        return f"{tracking_uri}/health answered HTTP {response.status_code}"
    return None


def _first_line(exc: BaseException) -> str:
    """The system's words for a failed connection ("Connection refused"), else the error's first line."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text) or re.search(r"\[SSL: [A-Z_]+\] ([^'\")(]+)", text)
    if found:
        return found.group(1).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def reachable(tracking_uri: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether ``tracking_uri`` answers its health probe within ``timeout_s`` (TLS verified as MLflow does)."""
    return unreachable_reason(tracking_uri, timeout_s) is None


__all__ = ["PROBE_TIMEOUT_S", "reachable", "tls_options", "unreachable_reason"]
