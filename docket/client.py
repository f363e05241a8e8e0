"""Functions for scripts: submit requests and drive them (the CLI in starter.py uses these).

    client = await connect(identity="nguyen.van.an")
    result = await submit(client, order, submitted_by=actor)
    receipt = await send_command(client, result.request_id, Approve(actor=..., reason=...))

Connection settings come from `temporalio.envconfig` (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE). Every failure is a `DocketError` subclass
with a message that says what is wrong and what is allowed, and an `exit_code` for CLIs.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from docket import temporal_names as names
from docket.case import RequestInput, RequestResult
from docket.lifecycle import Role
from docket.models import Actor, Command, Order, Receipt
from docket.reference import ReferenceData
from docket.validation import fingerprint, workflow_id_for

T = TypeVar("T")


class DocketError(Exception):
    exit_code = 1


class CommandRefused(DocketError):
    """The workflow refused the command (state, role, four-eyes, unknown item...)."""

    exit_code = 1

    def __init__(self, message: str, state: str | None = None, allowed: Sequence[str] = ()):
        super().__init__(message)
        self.state = state
        self.allowed = list(allowed)


class BadInput(DocketError):
    exit_code = 2


class NotFound(DocketError):
    exit_code = 3


class SubmissionConflict(DocketError):
    """The same workflow id already holds a different request."""

    exit_code = 4


class Unavailable(DocketError):
    exit_code = 5


async def connect(identity: str | None = None) -> Client:
    """A client from envconfig with Docket's data converter; `identity` names the official."""
    options: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    options.setdefault("target_host", "localhost:7233")
    options["data_converter"] = pydantic_data_converter
    if identity:
        options["identity"] = identity
    try:
        return await Client.connect(**options)
    except RuntimeError as exc:
        raise Unavailable(
            f"cannot reach Temporal at {options['target_host']} ({exc}); start the dev server "
            "(./run demo) or set TEMPORAL_ADDRESS / TEMPORAL_PROFILE"
        ) from None


def build_input(
    order: Order,
    submitted_by: Actor,
    reference: ReferenceData,
    *,
    poll_interval: timedelta | None = None,
) -> RequestInput:
    """Resolve the reference data the request relies on (a snapshot recorded with it).

    `poll_interval` overrides the platform's (the demo and tests poll every second)."""
    if Role.OFFICER not in submitted_by.roles:
        raise BadInput(f"{submitted_by.id} cannot submit requests: needs the role officer")
    if submitted_by.id != order.officer:
        raise BadInput(
            f"officer: the request names {order.officer!r} as its officer but you act as "
            f"{submitted_by.id!r}; the maker must submit their own request"
        )
    platform = reference.platforms[order.platform]
    if poll_interval is not None:
        platform = platform.model_copy(update={"poll_interval": poll_interval})
    vantages = (*(c for c in order.territorial_scope if c != "global"), "control")
    return RequestInput(
        request_id=workflow_id_for(order.authority, order.reference),
        order=order,
        submitted_by=submitted_by,
        fingerprint=fingerprint(order),
        authority=reference.authorities[order.authority],
        platform=platform,
        policy=reference.sla_policies[order.sla_policy],
        legal_bases=tuple(reference.legal_bases[c.basis] for c in order.legal_bases),
        categories=tuple(reference.categories[c] for c in order.categories),
        vantages=vantages,
    )


@dataclass(frozen=True)
class Submitted:
    request_id: str
    run_id: str | None
    created: bool  # False: the same request was already there; we attached to it


async def submit(
    client: Client,
    order: Order,
    *,
    submitted_by: Actor,
    reference: ReferenceData,
    poll_interval: timedelta | None = None,
) -> Submitted:
    """Start the request's workflow, or attach to it if the same request is already there.

    Idempotent: the workflow id derives from authority + reference. The same payload again
    attaches to the existing run; a different payload under the same id is SubmissionConflict.
    """
    request = build_input(order, submitted_by, reference, poll_interval=poll_interval)
    request_id = request.request_id
    submission_id = str(uuid.uuid4())  # tells "we started it" from "it was already there"
    summary = (
        f"{order.authority} {order.reference} -> {order.platform}: {len(order.items)} item(s), "
        f"{request.policy.id}"
    )
    details = "\n".join(
        [
            f"**Authority:** {request.authority.name} ({order.authority})",
            f"**Reference:** {order.reference}",
            f"**Platform:** {request.platform.name}",
            "**Legal bases:** " + "; ".join(f"{c.basis} {c.provision}" for c in order.legal_bases),
            f"**SLA policy:** {request.policy.id}: {request.policy.title}",
            f"**Scope:** {', '.join(order.territorial_scope)}",
            f"**Categories:** {', '.join(order.categories)}",
        ]
    )

    async def start() -> None:
        with contextlib.suppress(WorkflowAlreadyStartedError):  # a closed run with this id
            await client.start_workflow(
                names.WORKFLOW_NAME,
                request,
                id=request_id,
                task_queue=names.TASK_QUEUE,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                memo={
                    "fingerprint": request.fingerprint,
                    "submitted_by": submitted_by.id,
                    "submission_id": submission_id,
                },
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(names.REQUEST_STATE, "submitting"),
                        SearchAttributePair(names.PLATFORM, order.platform),
                        SearchAttributePair(names.AUTHORITY, order.authority),
                        SearchAttributePair(names.LEGAL_BASIS, order.legal_bases[0].basis),
                        SearchAttributePair(names.CATEGORIES, list(order.categories)),
                        SearchAttributePair(names.SLA_BREACHED, False),
                    ]
                ),
                static_summary=summary,
                static_details=details,
                result_type=RequestResult,
            )

    # Retrying is safe: a start whose answer was lost is found again (USE_EXISTING) and
    # recognised as ours by its submission id.
    await _retrying(start, request_id)
    return await _attach(client, request_id, request.fingerprint, submission_id)


async def _attach(client: Client, request_id: str, wanted: str, submission_id: str) -> Submitted:
    description = await _retrying(client.get_workflow_handle(request_id).describe, request_id)
    memo = await description.memo()
    existing = memo.get("fingerprint")
    if existing != wanted:
        raise SubmissionConflict(
            f"{request_id} already holds a different request (fingerprint {str(existing)[:12]}"
            f" vs {wanted[:12]}); the authority's reference must be unique: use a new reference"
            " or withdraw the existing request"
        )
    created = memo.get("submission_id") == submission_id
    return Submitted(request_id=request_id, run_id=description.run_id, created=created)


async def send_command(
    client: Client,
    request_id: str,
    command: Command,
    *,
    update_id: str | None = None,
    attempts: int = 5,
) -> Receipt:
    """Send one command as a Temporal Update; return the receipt once its audit entry is durable.

    RPC time-outs are retried with the *same* update id, which Temporal deduplicates, so a
    command is applied at most once and either succeeds or fails clearly.
    """
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(request_id)
    update_id = update_id or f"{command.trigger}-{uuid.uuid4()}"
    payload = command.model_dump(mode="json")

    async def call() -> Receipt:
        try:
            receipt: Receipt = await handle.execute_update(
                command.trigger, payload, id=update_id, result_type=Receipt
            )
        except WorkflowUpdateFailedError as exc:
            raise _refusal(exc.cause) from None
        return receipt

    try:
        return await _retrying(call, request_id, attempts=attempts)
    except Unavailable as exc:
        raise Unavailable(
            f"{command.trigger} on {request_id}: {exc} after {attempts} tries "
            f"(update id {update_id}; sending it again is safe)"
        ) from None


def _refusal(cause: BaseException | None) -> DocketError:
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details else {}
        state = details.get("state") if isinstance(details, dict) else None
        allowed = details.get("allowed", []) if isinstance(details, dict) else []
        if cause.type == "InvalidCommand":
            return BadInput(cause.message)
        return CommandRefused(cause.message, state, allowed)
    return CommandRefused(str(cause))


def _rpc_error(exc: RPCError, request_id: str) -> DocketError:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return NotFound(f"no request {request_id!r} (check the id with `starter.py list`)")
    if exc.status in (
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    ):
        return Unavailable(f"Temporal is unavailable: {exc.message}")
    if exc.status == RPCStatusCode.INVALID_ARGUMENT:
        return BadInput(exc.message)
    return DocketError(f"{request_id}: {exc.message}")


async def query(client: Client, request_id: str, name: str) -> Any:
    handle = client.get_workflow_handle(request_id)
    return await _retrying(lambda: handle.query(name), request_id)


async def _retrying(call: Callable[[], Awaitable[T]], request_id: str, *, attempts: int = 5) -> T:
    """`call()`, retried with backoff while Temporal is unavailable, overloaded or slow to
    answer (only for calls that are safe to repeat: Updates keep their id); other errors
    become DocketErrors at once."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            error: DocketError = Unavailable("no answer in time")
        except RPCError as exc:
            error = _rpc_error(exc, request_id)
        if not isinstance(error, Unavailable) or attempt == attempts:
            raise error
        await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
    raise AssertionError("unreachable")


async def status(client: Client, request_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await query(client, request_id, "status")
    return result


async def timeline(client: Client, request_id: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await query(client, request_id, "timeline")
    return result


async def result(client: Client, request_id: str) -> RequestResult:
    """Wait for the request to close; its result carries the audit anchor."""
    handle = client.get_workflow_handle(request_id, result_type=RequestResult)
    try:
        finished: RequestResult = await handle.result()
        return finished
    except WorkflowFailureError as exc:
        raise DocketError(f"{request_id} failed: {exc.cause}") from None
    except RPCError as exc:
        raise _rpc_error(exc, request_id) from None


@dataclass(frozen=True)
class Listed:
    request_id: str
    state: str | None
    platform: str | None
    authority: str | None
    outcome: str | None
    sla_breached: bool | None
    due_at: datetime | None
    running: bool


def list_query(
    *,
    state: str | None = None,
    platform: str | None = None,
    authority: str | None = None,
    breached: bool | None = None,
    overdue: bool = False,
    open_only: bool = False,
    now: datetime | None = None,
) -> str:
    """A visibility query over Docket's search attributes (values are quoted safely)."""
    clauses = [f"WorkflowType = '{names.WORKFLOW_NAME}'"]
    for key, value in (
        (names.REQUEST_STATE, state),
        (names.PLATFORM, platform),
        (names.AUTHORITY, authority),
    ):
        if value is not None:
            if not all(c.isalnum() or c in "-_." for c in value):
                raise BadInput(f"--{key.name.lower()}: {value!r} has characters not allowed")
            clauses.append(f"{key.name} = '{value}'")
    if breached is not None:
        clauses.append(f"{names.SLA_BREACHED.name} = {'true' if breached else 'false'}")
    if overdue:
        moment = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        clauses.append(f"{names.DUE_AT.name} < '{moment}'")
        clauses.append("ExecutionStatus = 'Running'")
    if open_only:
        clauses.append("ExecutionStatus = 'Running'")
    return " AND ".join(clauses)


async def list_requests(
    client: Client, query_text: str, limit: int = 1000
) -> AsyncIterator[Listed]:
    count = 0
    async for execution in client.list_workflows(query_text):
        attrs = execution.typed_search_attributes
        yield Listed(
            request_id=execution.id,
            state=attrs.get(names.REQUEST_STATE),
            platform=attrs.get(names.PLATFORM),
            authority=attrs.get(names.AUTHORITY),
            outcome=attrs.get(names.OUTCOME),
            sla_breached=attrs.get(names.SLA_BREACHED),
            due_at=attrs.get(names.DUE_AT),
            running=execution.status == WorkflowExecutionStatus.RUNNING,
        )
        count += 1
        if count >= limit:
            return
