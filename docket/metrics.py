"""Docket's Prometheus metrics: their names, the runtime that serves them, what records them.

The worker serves one endpoint, ``http://<DOCKET_METRICS_ADDRESS>/metrics``, from the Temporal
SDK's runtime (`metrics_runtime`; the client is connected with that runtime, and the worker
uses its client's): the SDK's own metrics (``temporal_*``) beside Docket's (``docket_*``).
Docket's are recorded through the SDK's metric meter (``activity.metric_meter()``), which adds
the labels ``namespace``, ``task_queue`` and ``activity_type``; the runtime adds
``service_name``. Without an address the SDK's meter is a no-op and nothing listens.

Prometheus conventions throughout: counters end in ``_total`` (the exporter adds it, to the
SDK's counters too) and durations are in seconds. docs/operations.md ("Metrics") lists every
metric with its labels, example queries and alert rules.

Labels only ever take values from a bounded set (lifecycle actions and states, configured
platforms, HTTP statuses, error kinds named in code): a hostile or buggy input cannot make
the endpoint grow without limit.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from docket.lifecycle import TRIGGERS, State
from docket.settings import SettingsError

# Names as created on the meter. The exporter adds `_total` to counters: see `exported`.
TRANSITIONS = "docket_transitions"
AUDIT_WRITE_SECONDS = "docket_audit_write_seconds"
AUDIT_WRITE_FAILURES = "docket_audit_write_failures"
SLA_BREACHES = "docket_sla_breaches"
DISAGREEMENTS = "docket_disagreements"
PLATFORM_CALL_ERRORS = "docket_platform_call_errors"

#: The SDK's own counter of failed workflow tasks as this endpoint exports it (Temporal's SDK
#: metrics reference lists it as ``workflow_task_execution_failed``, without prefix or suffix).
SDK_WORKFLOW_TASK_FAILURES = "temporal_workflow_task_execution_failed_total"

#: Audit writes take a write and an fsync: about a millisecond on an SSD, tens on a disk in
#: trouble. (The SDK's default buckets start at 50 ms and would put every write in the first.)
AUDIT_WRITE_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

#: How many event ids the audit metrics remember to count each entry once: a retry of a
#: write comes seconds after it, far fewer entries than this later (~8 MiB at most).
REMEMBER_WRITTEN = 65_536

OTHER = "other"  # a label value outside the known set (never expected; bounded all the same)
NONE = "none"  # no HTTP status: nothing was sent, or no answer came


@dataclass(frozen=True)
class MetricSpec:
    """One of Docket's metrics, as documented (docs/operations.md names each `exported`)."""

    name: str
    kind: str  # counter or histogram
    labels: tuple[str, ...]
    description: str

    @property
    def exported(self) -> str:
        """The name Prometheus sees (``_total`` on counters)."""
        return f"{self.name}_total" if self.kind == "counter" else self.name


METRICS = (
    MetricSpec(
        TRANSITIONS,
        "counter",
        ("action",),
        "Transitions made durable in the audit log (each event.id once per worker process)",
    ),
    MetricSpec(
        AUDIT_WRITE_SECONDS,
        "histogram",
        (),
        "Seconds a successful audit write took (queueing for a thread, write, fsync)",
    ),
    MetricSpec(
        AUDIT_WRITE_FAILURES,
        "counter",
        ("error",),
        "Audit write attempts that failed (the transition was not applied)",
    ),
    MetricSpec(
        SLA_BREACHES,
        "counter",
        ("state",),
        "SLA deadlines the platform missed (sla_expired entries), by the state whose "
        "deadline passed",
    ),
    MetricSpec(
        DISAGREEMENTS,
        "counter",
        ("action",),
        "Entries recording a disagreement: the platform claims an effect our probes do not observe",
    ),
    MetricSpec(
        PLATFORM_CALL_ERRORS,
        "counter",
        ("platform", "status", "kind"),
        "Failed platform API calls (each attempt), by platform, HTTP status and error kind",
    ),
)
_SPECS = {spec.name: spec for spec in METRICS}

_ACTIONS = frozenset({"submit", *TRIGGERS})
_STATES = frozenset(state.value for state in State)


class MetricsError(SettingsError):
    """The metrics endpoint cannot be served; the message names the setting and why."""


def prometheus_config(address: str) -> PrometheusConfig:
    """How the endpoint exports: Prometheus conventions, fine buckets for audit writes."""
    return PrometheusConfig(
        bind_address=address,
        counters_total_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides={AUDIT_WRITE_SECONDS: AUDIT_WRITE_BUCKETS},
    )


def metrics_runtime(address: str) -> Runtime:
    """A Temporal runtime serving Prometheus metrics on `address` (``IP:PORT``) at once.

    Connect the worker's client with it (`docket.client.connect(runtime=...)`): the SDK's
    worker and activity metrics come from the client's runtime. Raises MetricsError when the
    address cannot be served (in use, not an address of this machine)."""
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=prometheus_config(address)))
    except ValueError as exc:
        reason = str(exc).removeprefix("Failed starting Prometheus exporter: ")
        raise MetricsError(
            f"DOCKET_METRICS_ADDRESS: cannot serve metrics on {address} ({reason}); choose "
            "another address, or leave it unset to serve no metrics"
        ) from None


def _counter(meter: MetricMeter, name: str) -> Any:
    return meter.create_counter(name, _SPECS[name].description)


def _bounded(value: object, allowed: frozenset[str]) -> str:
    return value if isinstance(value, str) and value in allowed else OTHER


class AuditMetrics:
    """What the audit write activity records: every entry it makes durable (its action, an SLA
    breach, a disagreement), counted once per process however often a retry writes it again,
    the latency of each successful write and each failed attempt."""

    def __init__(self, remember: int = REMEMBER_WRITTEN) -> None:
        self._written: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    def _first_time(self, entries: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The entries whose event.id this process has not counted yet (now remembered)."""
        fresh = []
        for entry in entries:
            event = entry.get("event")
            if not isinstance(event, Mapping) or not isinstance(event.get("id"), str):
                continue  # the writer refuses such an entry; never let a metric fail a write
            if event["id"] in self._written:
                continue
            self._written[event["id"]] = None
            fresh.append(entry)
        while len(self._written) > self._remember:
            self._written.popitem(last=False)
        return fresh

    def written(
        self, meter: MetricMeter, entries: Iterable[Mapping[str, Any]], seconds: float
    ) -> None:
        """`entries` are durable; the write took `seconds`."""
        meter.create_histogram_float(
            AUDIT_WRITE_SECONDS, _SPECS[AUDIT_WRITE_SECONDS].description
        ).record(max(seconds, 0.0))
        fresh = self._first_time(entries)
        if not fresh:
            return
        transitions = _counter(meter, TRANSITIONS)
        for entry in fresh:
            event = entry["event"]  # a mapping with an id (_first_time)
            docket = entry.get("docket")
            docket = docket if isinstance(docket, Mapping) else {}
            action = _bounded(event.get("action"), _ACTIONS)
            transitions.add(1, {"action": action})
            if action == "sla_expired":
                state = _bounded(docket.get("from_state"), _STATES)
                _counter(meter, SLA_BREACHES).add(1, {"state": state})
            data = docket.get("data")
            if isinstance(data, Mapping) and data.get("disagreements"):
                _counter(meter, DISAGREEMENTS).add(1, {"action": action})

    def failed(self, meter: MetricMeter, error: str) -> None:
        """A write attempt failed with `error` (the ApplicationError type it raised)."""
        _counter(meter, AUDIT_WRITE_FAILURES).add(1, {"error": error})


def platform_call_failed(meter: MetricMeter, platform: str, exc: Exception) -> None:
    """Count a failed platform API call: the platform, the HTTP status of the answer (``none``
    when nothing was sent or no answer came) and the error's kind (docket.platform_protocol's
    PlatformFailure kinds, e.g. PlatformUnavailable, RateLimited, SignatureRejected)."""
    kind = exc.type if isinstance(exc, ApplicationError) and exc.type else type(exc).__name__
    status = NONE
    if isinstance(exc, ApplicationError) and exc.details and isinstance(exc.details[0], Mapping):
        http_status = exc.details[0].get("http_status")
        if isinstance(http_status, int) and 100 <= http_status <= 599:
            status = str(http_status)
    # Past UnknownPlatform the platform is one the worker is configured with.
    label = "unknown" if kind == "UnknownPlatform" else platform
    _counter(meter, PLATFORM_CALL_ERRORS).add(
        1, {"platform": label, "status": status, "kind": kind}
    )


P = ParamSpec("P")
R = TypeVar("R")


def counts_platform_errors(
    fn: Callable[P, Awaitable[R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """For a platform API activity method ``(self, platform, ...)``: count each failure in
    ``docket_platform_call_errors`` (then raise it unchanged). Put it under ``@activity.defn``
    (the SDK reads the wrapped method's signature)."""

    @functools.wraps(fn)
    async def counted(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            if activity.in_activity():
                platform = args[1] if len(args) > 1 else kwargs.get("platform")
                platform_call_failed(activity.metric_meter(), str(platform), exc)
            raise

    return counted
