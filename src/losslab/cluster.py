"""Jobs on other machines: a shared MLflow tracking server (``tracking=server``) and the sweep's parent run.

- A job finds its sweep's parent run through the environment (``LOSSLAB_PARENT_RUN_ID``, set by the launching
  process) or, on a machine the environment did not reach, through the sweep dir's ``mlflow_parent.txt``
  (written by the sweep's first callback: the store's URI, then the parent run id).
- An ``http(s)`` tracking URI is checked before anything starts: a server that does not answer is one line
  within seconds (MLflow itself retries for minutes, then prints a traceback), and MLflow's own retries are
  bounded for the rest of the run (``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``MLFLOW_HTTP_REQUEST_TIMEOUT``,
  unless set).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from losslab.errors import ConfigError
from losslab.paths import PARENT_FILE

PARENT_RUN_ENV = "LOSSLAB_PARENT_RUN_ID"  # the sweep's parent run id, set by the launching process
HTTP_BOUNDS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
PROBE_TIMEOUT_S = 5.0


def is_http(uri) -> bool:
    return str(uri).startswith(("http://", "https://"))


def shown(uri: str) -> str:
    """The URI as shown: its credentials masked (``http://***@host``, :mod:`losslab.secrets`)."""
    from losslab.secrets import mask_text

    return mask_text(uri)


def check_server(uri) -> None:
    """For an ``http(s)`` tracking URI: bound MLflow's HTTP retries and check that a server answers its
    ``/health`` within seconds; refuse with one line otherwise. Other URIs: nothing to check here."""
    if not is_http(uri):
        return
    import urllib.error
    import urllib.request

    for key, value in HTTP_BOUNDS.items():
        os.environ.setdefault(key, value)
    parts = urlsplit(str(uri))
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    health = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", ""))
    try:
        with urllib.request.urlopen(health, timeout=PROBE_TIMEOUT_S):
            return
    except urllib.error.HTTPError as err:  # it answers: an auth proxy (401/403) or an older server is there
        if err.code in (401, 403, 404):
            return
        reason = f"HTTP {err.code} from {health}"
    except (urllib.error.URLError, OSError) as err:
        reason = str(getattr(err, "reason", err))
    raise ConfigError(
        f"tracking.uri={shown(uri)}: no MLflow server answers there ({reason}); start one (mlflow server "
        "--backend-store-uri ... --artifacts-destination ... --host ... --port ...), or pick another "
        "tracking.uri (tracking=mlflow: a local sqlite store)"
    )


def parent_run_id(uri) -> str | None:
    """The parent run of the sweep this job belongs to: from the environment, else from the sweep dir's
    ``mlflow_parent.txt`` when it names the same store; None outside a sweep."""
    if os.environ.get(PARENT_RUN_ENV):
        return os.environ[PARENT_RUN_ENV]
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    for folder in [job_dir, *job_dir.parents][:4]:  # <sweep dir>/<subdir>: the subdir may be nested
        marker = folder / PARENT_FILE
        if marker.is_file():
            lines = marker.read_text().split("\n")
            from losslab.secrets import without_credentials  # the file holds the URI without them

            if len(lines) >= 2 and lines[0].strip() == without_credentials(uri) and lines[1].strip():
                return lines[1].strip()
            return None
    return None
