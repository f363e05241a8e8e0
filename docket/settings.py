"""Settings shared by the worker, the client tools and the demo, read once from the environment.

Temporal's own connection settings (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
TEMPORAL_TLS_*, TEMPORAL_PROFILE) are read by `temporalio.envconfig` in `docket.client.connect`;
everything Docket adds is here, with the variable that sets it:

- DOCKET_TASK_QUEUE: the requests' task queue, for the worker and the clients
  (default `authority-requests`)
- DOCKET_AUDIT_DIR: where this worker appends its audit segments (default `var/audit`)
- DOCKET_REFERENCE_DIR: the deployment's reference data (default: the shipped docket/data)
- DOCKET_LOG_FORMAT: application logs, `console` (default) or `json`
- DOCKET_MAX_CACHED_WORKFLOWS: runs kept in memory; the rest replay when they wake (1000)
- DOCKET_WORKFLOW_SANDBOX: `on` (default), or `off` to run workflow code unsandboxed
- DOCKET_TRUST_FILE: the operator's trust roots (organizations' CA keys, revoked keys);
  required: without it no signed command can be checked (docs/identity.md)
- DOCKET_TRUST_MAX_AGE: seconds a running request may use trust roots it read before reading
  them again, i.e. how soon a revocation reaches running requests (default 300)
- DOCKET_LOG_KEY: the audit log's checkpoint signing key (a file); set on the one worker that
  makes checkpoints (with DOCKET_CHECKPOINT_DIR and DOCKET_CHECKPOINT_SOURCES, see
  docs/checkpoints.md)
- DOCKET_CHECKPOINT_INTERVAL: seconds between scheduled checkpoints (default 600)
- DOCKET_CHECKPOINT_TASK_QUEUE: the checkpointer's task queue (default `audit-checkpoints`)
- DOCKET_METRICS_ADDRESS: `IP:PORT` where the worker serves Prometheus metrics at /metrics
  (e.g. 127.0.0.1:9464); unset: no metrics, nothing listens (docket.metrics)
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from docket import temporal_names as names


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable and what is allowed."""


def task_queue(environ: Mapping[str, str] | None = None) -> str:
    """The requests' task queue: the worker polls it and clients start requests on it."""
    environ = os.environ if environ is None else environ
    value = environ.get("DOCKET_TASK_QUEUE", "").strip() or names.TASK_QUEUE
    if len(value) > 200 or any(c.isspace() for c in value):
        raise SettingsError(
            f"DOCKET_TASK_QUEUE: {value[:40]!r} is not a task queue name (no spaces, "
            "at most 200 characters)"
        )
    return value


def _choice(environ: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = environ.get(name, "").strip().lower() or default
    if value not in allowed:
        raise SettingsError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: {raw!r} is not a whole number") from None
    if value < 1:
        raise SettingsError(f"{name}: must be at least 1, got {value}")
    return value


_ADDRESS = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<v4>[0-9.]+)):(?P<port>[0-9]{1,5})")


def metrics_address(environ: Mapping[str, str] | None = None) -> str | None:
    """Where the worker serves Prometheus metrics (`IP:PORT`), or None: no metrics.

    An IP address, not a host name (the SDK's exporter binds a socket address as given)."""
    environ = os.environ if environ is None else environ
    raw = environ.get("DOCKET_METRICS_ADDRESS", "").strip()
    if not raw:
        return None
    found = _ADDRESS.fullmatch(raw)
    try:
        if found is None:
            raise ValueError
        ip = ipaddress.ip_address(found["v6"] or found["v4"])
        if found["v6"] and ip.version != 6:
            raise ValueError
        port = int(found["port"])
    except ValueError:
        raise SettingsError(
            f"DOCKET_METRICS_ADDRESS: {raw[:60]!r} is not IP:PORT (an IP address, not a host "
            "name, then a port: e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464)"
        ) from None
    if not 1 <= port <= 65535:
        raise SettingsError(f"DOCKET_METRICS_ADDRESS: port {port} is not from 1 to 65535")
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker process is configured with (secrets excepted: see `platform_endpoints`)."""

    task_queue: str = names.TASK_QUEUE
    audit_dir: Path = field(default_factory=lambda: Path("var/audit"))
    log_format: str = "console"
    max_cached_workflows: int = 1000
    sandboxed: bool = True
    trust_file: Path | None = None
    trust_max_age: timedelta = timedelta(minutes=5)
    checkpoints: bool = False  # DOCKET_LOG_KEY is set: this worker makes checkpoints
    checkpoint_interval: timedelta = timedelta(minutes=10)
    checkpoint_task_queue: str = names.CHECKPOINT_TASK_QUEUE
    metrics_address: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        """Read every setting; raise SettingsError naming the first variable that is wrong."""
        environ = os.environ if environ is None else environ
        return cls(
            task_queue=task_queue(environ),
            audit_dir=Path(environ.get("DOCKET_AUDIT_DIR", "").strip() or "var/audit"),
            log_format=_choice(environ, "DOCKET_LOG_FORMAT", "console", ("console", "json")),
            max_cached_workflows=_positive_int(environ, "DOCKET_MAX_CACHED_WORKFLOWS", 1000),
            sandboxed=_choice(environ, "DOCKET_WORKFLOW_SANDBOX", "on", ("on", "off")) == "on",
            trust_file=Path(trust)
            if (trust := environ.get("DOCKET_TRUST_FILE", "").strip())
            else None,
            trust_max_age=timedelta(seconds=_positive_int(environ, "DOCKET_TRUST_MAX_AGE", 300)),
            checkpoints=bool(environ.get("DOCKET_LOG_KEY", "").strip()),
            checkpoint_interval=timedelta(
                seconds=_positive_int(environ, "DOCKET_CHECKPOINT_INTERVAL", 600)
            ),
            checkpoint_task_queue=environ.get("DOCKET_CHECKPOINT_TASK_QUEUE", "").strip()
            or names.CHECKPOINT_TASK_QUEUE,
            metrics_address=metrics_address(environ),
        )
