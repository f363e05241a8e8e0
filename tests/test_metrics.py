"""Metrics: the worker serves the Temporal SDK's runtime metrics and Docket's own on
DOCKET_METRICS_ADDRESS, scraped over HTTP and parsed as Prometheus parses them.

The lifecycle test runs the real worker (docket.worker_setup.build_worker) on the real dev
server and the platform simulator, with a client connected through `metrics_runtime` on a free
port: four requests at once (one complies, one platform claims a removal our probes contradict,
one misses both SLA deadlines of a two-second policy, one is refused a delivery: 401), one
audit fsync fails (EIO, injected) and one write is retried after it was durable. The endpoint
is scraped while they run (its counters only grow) and after: it must then count exactly what
the audit log holds. A workflow whose task fails on purpose shows
the SDK's own task failure counter. The worker process itself is started with the setting,
and refuses an address it cannot serve.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from docket_harness import (
    Driver,
    Run,
    Stack,
    actor,
    audit_entries,
    comply,
    delivery_failed,
    endpoints,
    expect_workflow_task_failure,
    fast_reference,
    identities,
    liar,
    running_worker,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from temporalio import activity, workflow
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.audit import AuditActivities
from activities.platform import PlatformActivities, PlatformEndpoint
from audit.entry import ChainHead, build_entry
from audit.reader import iter_entries
from audit.writer import AuditWriter
from docket import client as docket
from docket import metrics
from docket.devserver import free_port
from docket.models import Escalate
from docket.reference import ReferenceData
from docket.settings import SettingsError, WorkerSettings, metrics_address
from platform_sim.server import PlatformSimulator
from platform_sim.testing import sample_order

pytestmark = pytest.mark.slow(20)  # the lifecycle fixture `observed`

ROOT = Path(__file__).resolve().parent.parent
SHORT_POLICY = "TEST-METRICS"  # two seconds to respond, two after the second notice


# --- reading the endpoint ---------------------------------------------------------------------


async def scrape_text(address: str) -> str:
    """GET /metrics over HTTP."""
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        response = await http.get(f"http://{address}/metrics")
    assert response.status_code == 200
    return response.text


def parse(text: str) -> list[Sample]:
    """Every sample, read with the Prometheus client's own parser."""
    return [s for f in text_string_to_metric_families(text) for s in f.samples]


async def scrape(address: str) -> list[Sample]:
    return parse(await scrape_text(address))


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there is none)."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def by_label(samples: list[Sample], name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in samples:
        if s.name == name:
            out[s.labels[label]] = out.get(s.labels[label], 0.0) + s.value
    return {k: v for k, v in out.items() if v}


# --- faults a real disk will not produce on demand ------------------------------------------


class FsyncFailsOnce:
    """os.fsync that fails with EIO the first time it makes written entries durable (not a
    new segment, still empty, or its directory); `writes` counts those fsyncs (audit writes that
    arrive together share one)."""

    def __init__(self) -> None:
        self.writes = 0

    def __call__(self, fd: int) -> None:
        held = os.fstat(fd)
        if stat.S_ISREG(held.st_mode) and held.st_size > 0:
            self.writes += 1
            if self.writes == 1:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
        os.fsync(fd)


class FailOnceAfterWrite(AuditActivities):
    """Fails one write after its entries were durable: the retry writes them again."""

    failed = False
    durable = 0  # writes that made their entries durable (writes may share an fsync)

    @activity.defn(name="write_audit_entries")
    async def write_entries(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        written = await super().write_entries(entries)
        self.durable += 1
        if not self.failed:
            self.failed = True
            raise ApplicationError("injected: failed after the entries were durable")
        return written


@workflow.defn(name="MetricsTaskFailure", sandboxed=False)
class FailingTask:
    """Its workflow task fails every time (the SDK's task failure counter must show it)."""

    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("injected: this workflow task fails on purpose (tests/test_metrics)")


# --- the lifecycle ---------------------------------------------------------------------------


def short_reference() -> ReferenceData:
    base = fast_reference()
    fast = base.sla_policies["TEST-FAST"]
    short = fast.model_copy(
        update={
            "id": SHORT_POLICY,
            "title": "Tests only: two-second deadlines",
            "respond_within": timedelta(seconds=2),
            "second_notice_within": timedelta(seconds=2),
        }
    )
    return base.model_copy(update={"sla_policies": {**base.sla_policies, SHORT_POLICY: short}})


async def ignored(d: Driver) -> Run:
    """The platform never answers: both deadlines of the short policy pass, then escalation."""
    run = await d.start("ignored", ["ignore--a"], policy=SHORT_POLICY)
    await d.reach(run, "unresponsive")
    await d.send(run, Escalate(actor=actor("tran.thi.binh"), reason="No answer at all"))
    return await d.finish(run)


@dataclass
class Observed:
    address: str
    queue: str
    text: str  # the last scrape as served
    samples: list[Sample]
    during: list[float]
    runs: dict[str, Run]
    audit_dir: Path
    durable_writes: int
    entries: list[dict[str, Any]]  # every entry of the runs, one per event.id
    lines: int  # the entries' lines in the log, retried writes included


@pytest.fixture(scope="module")
async def observed(
    dev_env: WorkflowEnvironment,
    simulator: PlatformSimulator,
    sim_secrets: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Observed]:
    address = f"127.0.0.1:{free_port()}"
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    audit_dir = tmp_path_factory.mktemp("metrics-audit")
    reference = short_reference()
    worker_secrets = {"facebook": sim_secrets["facebook"], "youtube": "sk-wrong-on-purpose"}
    runtime = metrics.metrics_runtime(address)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
        env.setenv("TEMPORAL_NAMESPACE", dev_env.client.namespace)
        env.setenv("DOCKET_TASK_QUEUE", queue)  # docket.client.submit starts requests on it
        client = await docket.connect(identity="docket-metrics-test", runtime=runtime)
        fsync = FsyncFailsOnce()
        made: list[FailOnceAfterWrite] = []  # the audit activities the worker uses

        def failing_once(writer: AuditWriter) -> FailOnceAfterWrite:
            made.append(FailOnceAfterWrite(writer))
            return made[-1]

        worker = running_worker(
            client,
            endpoints(simulator, reference, worker_secrets),
            AuditWriter(audit_dir, fsync=fsync),
            task_queue=queue,
            reference=reference,
            audit_activities=failing_once,
        )
        failing_id = f"metrics-task-failure-{uuid.uuid4().hex[:8]}"
        expect_workflow_task_failure(failing_id, "tests/test_metrics: the SDK counts it")
        failing = Worker(client, task_queue=f"{queue}-failing", workflows=[FailingTask])
        stack = Stack(client, simulator, reference, audit_dir, sim_secrets, worker_secrets)
        driver = Driver(stack, uuid.uuid4().hex[:6])
        async with worker, failing:
            scenarios = {"comply": comply, "liar": liar, "ignored": ignored}
            scenarios["delivery_failed"] = delivery_failed
            lifecycle = asyncio.gather(*(s(driver) for s in scenarios.values()))
            during: list[float] = []  # transitions counted, scraped while requests run
            while not lifecycle.done():
                await asyncio.wait({lifecycle}, timeout=0.5)
                during.append(value(await scrape(address), "docket_transitions_total"))
            done = await asyncio.wait_for(lifecycle, 180)
            handle: WorkflowHandle[Any, Any] = await client.start_workflow(
                "MetricsTaskFailure", id=failing_id, task_queue=f"{queue}-failing"
            )
            text = await scrape_text(address)
            for _ in range(100):  # the first task fails at once; its count follows it
                if value(parse(text), metrics.SDK_WORKFLOW_TASK_FAILURES):
                    break
                await asyncio.sleep(0.2)
                text = await scrape_text(address)
            await handle.terminate("tests/test_metrics: seen")
    runs = dict(zip(scenarios, done, strict=True))
    entries = [e for run in runs.values() for e in audit_entries(audit_dir, run.rid)]
    rids = {run.rid for run in runs.values()}
    lines = sum(
        1
        for _path, _line, entry in iter_entries([audit_dir])
        if str(entry.get("event", {}).get("id", "")).rpartition(":")[0] in rids
    )
    yield Observed(
        address,
        queue,
        text,
        parse(text),
        during,
        runs,
        audit_dir,
        made[0].durable,
        entries,
        lines,
    )


@pytest.mark.integration
async def test_transitions_by_action_count_each_durable_entry_once(observed: Observed) -> None:
    counted = by_label(observed.samples, "docket_transitions_total", "action")
    in_log = Counter(str(e["event"]["action"]) for e in observed.entries)
    assert counted == dict(in_log)
    assert {"submit", "approve", "delivered", "verified", "withdraw"} <= set(counted)
    # the failed fsync and the write failed after it was durable both left copies in the log
    assert observed.lines >= len(observed.entries) + 2
    assert value(observed.samples, "docket_transitions_total") == len(observed.entries)
    # recorded through the SDK's meter: the activity's labels come with it
    labels = next(s.labels for s in observed.samples if s.name == "docket_transitions_total")
    assert labels["task_queue"] == observed.queue
    assert labels["activity_type"] == "write_audit_entries"
    assert labels["namespace"] == "default"


@pytest.mark.integration
async def test_the_endpoint_serves_while_requests_run(observed: Observed) -> None:
    final = value(observed.samples, "docket_transitions_total")
    assert observed.during == sorted(observed.during)  # counters only grow
    assert any(0 < n < final for n in observed.during), observed.during


@pytest.mark.integration
async def test_sla_breaches_and_disagreements(observed: Observed) -> None:
    breaches = Counter(
        str(e["docket"]["from_state"])
        for e in observed.entries
        if e["event"]["action"] == "sla_expired"
    )
    # the ignored request missed both deadlines: the response, then the second notice
    assert breaches == {"awaiting_ack": 1, "second_notice": 1}
    assert by_label(observed.samples, "docket_sla_breaches_total", "state") == dict(breaches)

    disagreeing = Counter(
        str(e["event"]["action"])
        for e in observed.entries
        if (e["docket"].get("data") or {}).get("disagreements")
    )
    assert disagreeing, "the liar's claim was never contradicted"
    assert observed.runs["liar"].result is not None
    counted = by_label(observed.samples, "docket_disagreements_total", "action")
    assert counted == dict(disagreeing)


@pytest.mark.integration
async def test_audit_write_latency_and_failures(observed: Observed) -> None:
    s = observed.samples
    assert by_label(s, "docket_audit_write_failures_total", "error") == {"AuditWriteError": 1}
    writes = observed.durable_writes  # each write that made its entries durable
    assert value(s, "docket_audit_write_seconds_count") == writes
    assert value(s, "docket_audit_write_seconds_bucket", le="+Inf") == writes
    assert 0 < value(s, "docket_audit_write_seconds_sum") < writes * 30
    buckets = sorted(
        (float(x.labels["le"]), x.value) for x in s if x.name == "docket_audit_write_seconds_bucket"
    )
    assert [b for b, _ in buckets[:-1]] == list(metrics.AUDIT_WRITE_BUCKETS)
    assert [n for _, n in buckets] == sorted(n for _, n in buckets)  # cumulative


@pytest.mark.integration
async def test_platform_call_errors_by_platform_and_status(observed: Observed) -> None:
    refused = value(
        observed.samples,
        "docket_platform_call_errors_total",
        platform="youtube",
        status="401",
        kind="SignatureRejected",
        activity_type="deliver_order",
    )
    assert refused == 1  # refused once, not retried (non-retryable)
    assert observed.runs["delivery_failed"].result is not None


@pytest.mark.integration
async def test_the_sdk_metrics_are_served_beside_docket_s(observed: Observed) -> None:
    s = observed.samples
    assert value(s, "temporal_workflow_completed_total", workflow_type="AuthorityRequest") == 4
    assert value(s, "temporal_activity_execution_latency_count", activity_type="deliver_order") >= 4
    # durations in seconds: four deliveries to the simulator on loopback take well under 40 s
    assert value(s, "temporal_activity_execution_latency_sum", activity_type="deliver_order") < 40
    assert value(s, metrics.SDK_WORKFLOW_TASK_FAILURES, workflow_type="MetricsTaskFailure") >= 1
    assert value(s, metrics.SDK_WORKFLOW_TASK_FAILURES, workflow_type="AuthorityRequest") == 0


# --- the pieces without the server ---------------------------------------------------------


def chain(chain_id: str, steps: list[tuple[str, str | None, dict[str, Any] | None]]) -> list[Any]:
    """Valid, hash-chained entries: (action, from_state, data) each."""
    head = ChainHead.genesis(chain_id)
    out = []
    for action, from_state, data in steps:
        entry, head = build_entry(
            head,
            timestamp=datetime.now(UTC),
            action=action,
            from_state=from_state,
            to_state="closed",
            actor_id="system",
            actor_roles=["system"],
            organization="Docket",
            reason="test",
            data=data,
        )
        out.append(entry)
    return out


@pytest.fixture
def endpoint() -> Iterator[tuple[str, ActivityEnvironment]]:
    """A metrics endpoint on a free port and an activity environment recording to it."""
    address = f"127.0.0.1:{free_port()}"
    runtime = metrics.metrics_runtime(address)  # serves only while it is referenced
    env = ActivityEnvironment()
    env.metric_meter = runtime.metric_meter
    yield address, env
    del runtime


async def test_a_retried_write_counts_once_and_labels_stay_bounded(
    endpoint: tuple[str, ActivityEnvironment], tmp_path: Path
) -> None:
    address, env = endpoint
    audit = AuditActivities(AuditWriter(tmp_path))
    batch = chain(
        "req-metrics-unit",
        [
            ("submit", None, None),
            ("sla_expired", "awaiting_ack", {"timer": "respond"}),
            ("verified", "verifying", {"disagreements": [{"item_id": "i1"}]}),
            ("verified", "verifying", {"disagreements": []}),
            ("<img src=x>\n", "</nowhere>", None),  # never made by the workflow: bounded
        ],
    )
    await env.run(audit.write_entries, batch)
    await env.run(audit.write_entries, batch)  # a retry: the same event ids again
    with pytest.raises(ApplicationError) as refused:
        await env.run(audit.write_entries, [{**batch[0], "hash": "0" * 64}])
    assert refused.value.type == "MalformedAuditEntry"

    s = await scrape(address)
    assert by_label(s, "docket_transitions_total", "action") == {
        "submit": 1,
        "sla_expired": 1,
        "verified": 2,
        "other": 1,
    }
    assert by_label(s, "docket_sla_breaches_total", "state") == {"awaiting_ack": 1}
    assert by_label(s, "docket_disagreements_total", "action") == {"verified": 1}
    assert by_label(s, "docket_audit_write_failures_total", "error") == {"MalformedAuditEntry": 1}
    assert value(s, "docket_audit_write_seconds_count") == 2  # both writes were durable
    assert all("<" not in v for x in s for v in x.labels.values())


async def test_the_count_once_memory_is_bounded(
    endpoint: tuple[str, ActivityEnvironment], tmp_path: Path
) -> None:
    """Only the last `remember` event ids are kept: an older one written again counts again."""
    address, env = endpoint
    audit = AuditActivities(AuditWriter(tmp_path), metrics.AuditMetrics(remember=2))
    first, second, third = chain("req-metrics-window", [("submit", None, None)] * 3)
    for batch in ([first], [second], [third], [third], [first]):
        await env.run(audit.write_entries, batch)
    s = await scrape(address)
    assert value(s, "docket_transitions_total", action="submit") == 4  # third once, first twice


async def test_platform_call_errors_name_platform_status_and_kind(
    endpoint: tuple[str, ActivityEnvironment],
    simulator: PlatformSimulator,
    sim_secrets: dict[str, str],
) -> None:
    address, env = endpoint
    known = endpoints(simulator, fast_reference(), sim_secrets)
    down = PlatformEndpoint(
        base_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        secret=b"sk-down",
        markers=known["facebook"].markers,
    )
    activities = PlatformActivities({**known, "down": down})
    order = sample_order("req-metrics-errors", [simulator.content_url("facebook", "x--a")])
    failures: list[ApplicationError] = []
    try:
        calls: list[tuple[Any, tuple[Any, ...]]] = [
            (activities.poll_platform, ("facebook", "no-such-ticket")),  # the platform refuses
            (activities.deliver_order, ("down", order)),  # no answer
            (activities.deliver_order, ("nowhere", order)),  # not configured
        ]
        for method, args in calls:
            with pytest.raises(ApplicationError) as failed:
                await env.run(method, *args)
            failures.append(failed.value)
    finally:
        await activities.aclose()
    refused, unreachable, unknown = failures
    assert refused.details[0]["http_status"] == 404

    s = await scrape(address)
    name = "docket_platform_call_errors_total"
    assert value(s, name, platform="facebook", status="404", kind=str(refused.type)) == 1
    assert value(s, name, platform="down", status="none", kind="PlatformUnavailable") == 1
    assert unreachable.type == "PlatformUnavailable"
    assert value(s, name, platform="unknown", status="none", kind="UnknownPlatform") == 1
    assert unknown.type == "UnknownPlatform"
    assert value(s, name) == 3


# --- the setting and the worker process --------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", None),
        ("127.0.0.1:9464", "127.0.0.1:9464"),
        (" 0.0.0.0:9464 ", "0.0.0.0:9464"),
        ("[::1]:9464", "[::1]:9464"),
        ("127.0.0.1:09464", "127.0.0.1:9464"),
    ],
)
def test_the_metrics_address(raw: str, expected: str | None) -> None:
    environ = {"DOCKET_METRICS_ADDRESS": raw}
    assert metrics_address(environ) == expected
    assert WorkerSettings.from_env(environ).metrics_address == expected


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("localhost:9464", "an IP address, not a host name"),
        ("127.0.0.1", "is not IP:PORT"),
        ("::1:9464", "is not IP:PORT"),
        ("[127.0.0.1]:9464", "is not IP:PORT"),
        ("300.0.0.1:9464", "is not IP:PORT"),
        ("127.0.0.1:0", "port 0 is not from 1 to 65535"),
        ("127.0.0.1:65536", "port 65536 is not from 1 to 65535"),
        ("127.0.0.1:9464\x1b[2J", "is not IP:PORT"),
    ],
)
def test_a_bad_metrics_address_is_named(raw: str, says: str) -> None:
    with pytest.raises(SettingsError) as exc:
        metrics_address({"DOCKET_METRICS_ADDRESS": raw})
    message = str(exc.value)
    assert message.startswith("DOCKET_METRICS_ADDRESS: ")
    assert says in message
    assert "\x1b" not in message  # hostile text is quoted, never echoed raw


def worker_environ(tmp_path: Path, **settings: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKET_", "TEMPORAL_"))}
    environ.update(
        DOCKET_AUDIT_DIR=str(tmp_path / "audit"),
        DOCKET_TRUST_FILE=str(identities().trust_file),
        TEMPORAL_ADDRESS="127.0.0.1:1",  # never reached unless a test says otherwise
    )
    environ.update(settings)
    return environ


def run_worker(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_worker_refuses_a_metrics_address_it_cannot_serve(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        proc = run_worker(worker_environ(tmp_path, DOCKET_METRICS_ADDRESS=address))
    assert proc.returncode == 2
    assert f"DOCKET_METRICS_ADDRESS: cannot serve metrics on {address}" in proc.stderr
    assert "in use" in proc.stderr
    assert "Traceback" not in proc.stderr

    proc = run_worker(worker_environ(tmp_path, DOCKET_METRICS_ADDRESS="localhost:9464"))
    assert proc.returncode == 2
    assert "DOCKET_METRICS_ADDRESS: 'localhost:9464' is not IP:PORT" in proc.stderr


@pytest.mark.integration
async def test_the_worker_process_serves_metrics(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """worker.py connects through the metrics runtime: its own pollers show on the endpoint."""
    address = f"127.0.0.1:{free_port()}"
    queue = f"metrics-process-{uuid.uuid4().hex[:8]}"  # polls nobody else's requests
    environ = worker_environ(
        tmp_path,
        DOCKET_METRICS_ADDRESS=address,
        DOCKET_TASK_QUEUE=queue,
        TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=dev_env.client.namespace,
    )
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "worker.py"], cwd=ROOT, env=environ, stdout=out, stderr=out
        )
    ours: list[Sample] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not ours and proc.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.3)
            try:
                samples = await scrape(address)
            except httpx.TransportError:
                continue  # not listening yet
            ours = [s for s in samples if s.labels.get("task_queue") == queue]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 60)
    output = log.read_text()
    assert ours, f"no metrics of queue {queue} on {address}; worker said:\n{output}"
    assert all(s.name.startswith("temporal_") for s in ours)  # nothing ran: the SDK's alone
    assert code == 0, output
    assert f"http://{address}/metrics" in output  # the start is logged with the endpoint


def metrics_section() -> str:
    """The "Metrics" section of docs/operations.md."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text[text.index("\n## Metrics") :]
    end = section.find("\n## ", 1)
    return section if end < 0 else section[:end]


def fenced(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", metrics_section(), re.DOTALL)


def test_the_docs_list_every_metric_and_its_labels() -> None:
    section = metrics_section()
    for spec in metrics.METRICS:
        assert f"`{spec.exported}`" in section, spec.exported
        for label in spec.labels:
            assert f"`{label}`" in section, (spec.exported, label)
    assert f"`{metrics.SDK_WORKFLOW_TASK_FAILURES}`" in section
    assert "DOCKET_METRICS_ADDRESS" in section


# --- the documented queries and alert rules, checked by Prometheus's own promtool --------------

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not on PATH (Debian package prometheus)"
)


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def documented_rules() -> str:
    (rules,) = [block for block in fenced("yaml") if block.startswith("groups:")]
    return rules


@needs_promtool
def test_the_documented_rules_and_queries_are_valid(tmp_path: Path) -> None:
    rules = tmp_path / "docket-alerts.yml"
    rules.write_text(documented_rules())
    (block,) = fenced("promql")
    queries = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(queries) >= 6
    examples = tmp_path / "examples.yml"  # each query as a recording rule: promtool parses it
    examples.write_text(
        json.dumps(
            {
                "groups": [
                    {
                        "name": "examples",
                        "rules": [
                            {"record": f"docket:example_{n}", "expr": q}
                            for n, q in enumerate(queries)
                        ],
                    }
                ]
            }
        )
    )
    checked = promtool("check", "rules", str(rules), str(examples))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout


@pytest.mark.integration
@needs_promtool
async def test_the_endpoint_passes_promtool_check_metrics(observed: Observed) -> None:
    checked = promtool("check", "metrics", stdin=observed.text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == checked.stderr.strip() == ""


def without_annotations(rules: str) -> str:
    """The rules without their annotations (promtool compares annotations too; the test
    checks when each alert fires and with which labels)."""
    out: list[str] = []
    skipping = None
    for line in rules.splitlines():
        indent = len(line) - len(line.lstrip())
        if skipping is not None and (not line.strip() or indent > skipping):
            continue
        skipping = indent if line.strip() == "annotations:" else None
        if skipping is None:
            out.append(line)
    return "\n".join(out) + "\n"


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def fires(alert: str, at: str, *expected: dict[str, str]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [{"exp_labels": labels} for labels in expected],
    }


# Each group: series in Prometheus's expanding notation (one sample a minute; `_x5` five
# missing, `1x30` thirty-one samples of 1), then when each alert must (and must not) fire.
ALERT_CASES: list[dict[str, Any]] = [
    {  # the very first failure of a worker (a new series at 1) fires; a quiet series does not
        "input_series": [
            series(
                "docket_audit_write_failures_total",
                "_x5 1x40",
                instance="w1",
                error="AuditWriteError",
            ),
            series(
                "docket_audit_write_failures_total", "0x45", instance="w2", error="AuditWriteError"
            ),
            series(
                "docket_audit_write_failures_total",
                "0x19 1x25",
                instance="w3",
                error="MalformedAuditEntry",
            ),
        ],
        "alert_rule_test": [
            fires(
                "DocketAuditWritesFailing",
                "6m",
                {"severity": "page", "instance": "w1", "error": "AuditWriteError"},
            ),
            fires(
                "DocketAuditWritesFailing",
                "21m",
                {"severity": "page", "instance": "w3", "error": "MalformedAuditEntry"},
            ),
            fires("DocketAuditWritesFailing", "40m"),  # ten quiet minutes: resolved
        ],
    },
    {
        "input_series": [
            series(
                "temporal_workflow_task_execution_failed_total",
                "_x3 1 2 3x30",
                instance="w1",
                workflow_type="AuthorityRequest",
                failure_reason="WorkflowError",
            ),
        ],
        "alert_rule_test": [
            fires(
                "DocketWorkflowTaskFailures",
                "4m",
                {
                    "severity": "page",
                    "instance": "w1",
                    "workflow_type": "AuthorityRequest",
                    "failure_reason": "WorkflowError",
                },
            ),
            fires("DocketWorkflowTaskFailures", "30m"),
        ],
    },
    {  # 60 breaches an hour, sustained: fires after its 30 minutes pending
        "input_series": [
            series("docket_sla_breaches_total", "0+1x120", instance="w1", state="awaiting_ack")
        ],
        "alert_rule_test": [
            fires("DocketSlaBreachesHigh", "20m"),
            fires("DocketSlaBreachesHigh", "45m", {"severity": "ticket"}),
        ],
    },
    {  # 3 an hour: under the threshold
        "input_series": [
            series("docket_sla_breaches_total", "0+0.05x120", instance="w1", state="acknowledged")
        ],
        "alert_rule_test": [fires("DocketSlaBreachesHigh", "100m")],
    },
    {
        "input_series": [
            series("docket_disagreements_total", "_x10 1x60", instance="w1", action="verified")
        ],
        "alert_rule_test": [
            fires("DocketDisagreement", "11m", {"severity": "ticket"}),
            fires("DocketDisagreement", "60m"),
        ],
    },
    {  # refused (4xx but 429, or a call that cannot be made) pages; unavailable does not
        "input_series": [
            series(
                "docket_platform_call_errors_total",
                "_x5 1x30",
                platform="youtube",
                status="401",
                kind="SignatureRejected",
            ),
            series(
                "docket_platform_call_errors_total",
                "_x5 1x30",
                platform="tiktok",
                status="none",
                kind="MissingCredentials",
            ),
            series(
                "docket_platform_call_errors_total",
                "_x5 1+1x30",
                platform="facebook",
                status="503",
                kind="PlatformUnavailable",
            ),
            series(
                "docket_platform_call_errors_total",
                "_x5 1+1x30",
                platform="facebook",
                status="429",
                kind="RateLimited",
            ),
        ],
        "alert_rule_test": [
            fires(
                "DocketPlatformRefusesCalls",
                "6m",
                {
                    "severity": "page",
                    "platform": "tiktok",
                    "status": "none",
                    "kind": "MissingCredentials",
                },
                {
                    "severity": "page",
                    "platform": "youtube",
                    "status": "401",
                    "kind": "SignatureRejected",
                },
            ),
            fires("DocketPlatformRefusesCalls", "30m"),
        ],
    },
    {  # two failed calls a minute for 15 minutes: the platform is down or limits us
        "input_series": [
            series(
                "docket_platform_call_errors_total",
                "0+2x60",
                platform="facebook",
                status="503",
                kind="PlatformUnavailable",
            ),
            series(
                "docket_platform_call_errors_total",
                "0+2x60",
                platform="youtube",
                status="401",
                kind="SignatureRejected",
            ),
        ],
        "alert_rule_test": [
            fires("DocketPlatformUnavailable", "10m"),
            fires(
                "DocketPlatformUnavailable",
                "40m",
                {"severity": "ticket", "platform": "facebook", "status": "503"},
            ),
        ],
    },
]


@needs_promtool
def test_each_documented_alert_fires_when_it_must(tmp_path: Path) -> None:
    rules = tmp_path / "docket-alerts.yml"
    rules.write_text(without_annotations(documented_rules()))
    cases = tmp_path / "docket-alerts.test.yml"
    cases.write_text(
        json.dumps(
            {
                "rule_files": [rules.name],
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", **case} for case in ALERT_CASES],
            }
        )
    )
    tested = promtool("test", "rules", str(cases))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = set(re.findall(r"- alert: (\w+)", documented_rules()))
    covered = {t["alertname"] for case in ALERT_CASES for t in case["alert_rule_test"]}
    assert covered == alerts  # every documented alert has a case
