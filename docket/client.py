"""Functions for scripts: submit requests and drive them (the CLI in starter.py uses these).

    signer = load_signer(key="~/.docket/tran.thi.binh", actor="tran.thi.binh")  # docket.signer
    client = await connect(identity=signer.actor_id)
    result = await submit(client, order, signer=maker_signer)
    receipt = await send_command(client, result.request_id, "approve", {"reason": "..."},
                                 signer=signer)

Every submission and command is signed by the acting official's key (docket.signer): the
workflow takes who acts and their roles from the credential, never from the payload.

Connection settings come from `temporalio.envconfig` (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE). Every failure is a `DocketError` subclass
with a message that says what is wrong and what is allowed, and an `exit_code` for CLIs.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
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
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig, RPCError, RPCStatusCode

from docket import settings
from docket import temporal_names as names
from docket.case import RequestResult
from docket.credentials import IdentityError
from docket.models import Order, Receipt, parse_command
from docket.reference import ReferenceData, format_loc
from docket.signer import Signer, SignerError, sign_command
from docket.statement import SignedCommand
from docket.validation import fingerprint, workflow_id_for

T = TypeVar("T")


class DocketError(Exception):
    exit_code = 1


class CommandRefused(DocketError):
    """The workflow refused the command (state, role, four-eyes, unknown item...)."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        state: str | None = None,
        allowed: Sequence[str] = (),
        code: str | None = None,
    ):
        super().__init__(message)
        self.state = state
        self.allowed = list(allowed)
        self.code = code  # for a refused identity: unsigned, bad_signature, key_revoked, ...


class BadInput(DocketError):
    exit_code = 2


class NotFound(DocketError):
    exit_code = 3


class SubmissionConflict(DocketError):
    """The same workflow id already holds a different request."""

    exit_code = 4


class Unavailable(DocketError):
    """Temporal did not answer (down, unreachable, overloaded, a lost connection): nothing
    is known to have happened, and sending the same command again is safe."""

    exit_code = 5


class QueryFailed(DocketError):
    """The worker could not answer a query about the request (it could not replay it, or the
    query raised): nothing about the request changed."""

    exit_code = 7


class AccessDenied(DocketError):
    """Temporal refused this client's credentials (namespace, API key, mTLS)."""

    exit_code = 6


# How long the SDK's core retries a call that failed in transport before it gives up (then
# `retrying` tries the call a few more times, for outages longer than one RPC's patience).
RPC_RETRY = RetryConfig(
    initial_interval_millis=200,
    multiplier=2.0,
    max_interval_millis=5_000,
    max_elapsed_time_millis=20_000,
    max_retries=10,
)


async def connect(identity: str | None = None, *, runtime: Runtime | None = None) -> Client:
    """A client from envconfig with Docket's data converter; `identity` names the official.
    `runtime`: the worker's, when it serves metrics (docket.metrics.metrics_runtime)."""
    options: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    options.setdefault("target_host", "localhost:7233")
    options["data_converter"] = pydantic_data_converter
    options.setdefault("retry_config", RPC_RETRY)
    if identity:
        options["identity"] = identity
    if runtime is not None:
        options["runtime"] = runtime
    try:
        return await Client.connect(**options)
    except RuntimeError as exc:
        raise Unavailable(
            f"cannot reach Temporal at {options['target_host']} ({exc}); start the dev server "
            "(./run demo) or set TEMPORAL_ADDRESS / TEMPORAL_PROFILE"
        ) from None


def signed_submission(
    order: Order, signer: Signer, *, now: datetime | None = None
) -> SignedCommand:
    """The start input of a request: the order, signed by its maker (the order's officer)."""
    if signer.actor_id != order.officer:
        raise BadInput(
            f"officer: the request names {order.officer!r} as its officer but you sign as "
            f"{signer.actor_id!r}; the maker must submit their own request"
        )
    request_id = workflow_id_for(order.authority, order.reference)
    payload = {"order": order.model_dump(mode="json")}
    return _sign(signer, request_id, "submit", payload, now)


def signed_command(
    request_id: str,
    trigger: str,
    payload: Mapping[str, Any],
    signer: Signer,
    *,
    now: datetime | None = None,
) -> SignedCommand:
    """An Update's input: the command's fields (reason, effects...; never an actor), signed.
    The fields are checked against the command's model first (BadInput names each one)."""
    if "actor" in payload:
        raise BadInput("actor: who acts is the signer, not a field of the command")
    try:
        parse_command(trigger, {**payload, "actor": _placeholder_actor(signer)})
    except ValidationError as exc:
        problems = "\n  ".join(
            f"{format_loc(tuple(e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise BadInput(f"invalid {trigger} command:\n  {problems}") from None
    except ValueError as exc:  # unknown trigger
        raise BadInput(str(exc)) from None
    return _sign(signer, request_id, trigger, dict(payload), now)


def _sign(
    signer: Signer,
    request_id: str,
    trigger: str,
    payload: dict[str, Any],
    now: datetime | None,
) -> SignedCommand:
    try:
        return sign_command(
            signer, request_id, trigger, signer.actor_id, payload, now or datetime.now(UTC)
        )
    except (SignerError, IdentityError) as exc:
        raise BadInput(f"cannot sign: {exc}") from None


def _placeholder_actor(signer: Signer) -> dict[str, Any]:
    """Only to validate a command's fields here: the workflow puts the proven actor in."""
    return {"id": signer.actor_id, "roles": ["officer"], "organization": "(per credential)"}


@dataclass(frozen=True)
class Submitted:
    request_id: str
    run_id: str | None
    created: bool  # False: the same request was already there; we attached to it


async def submit(
    client: Client,
    order: Order,
    *,
    signer: Signer,
    reference: ReferenceData | None = None,
    task_queue: str | None = None,
    now: datetime | None = None,
) -> Submitted:
    """Start the request's workflow, or attach to it if the same request is already there.

    Idempotent: the workflow id derives from authority + reference. The same payload again
    attaches to the existing run; a different payload under the same id is SubmissionConflict.
    `reference` (this side's copy of the reference data) only names things in the UI summary;
    the workflow resolves the order against the operator's own.
    """
    signed = signed_submission(order, signer, now=now)
    request_id = workflow_id_for(order.authority, order.reference)
    order_fingerprint = fingerprint(order)
    submission_id = str(uuid.uuid4())  # tells "we started it" from "it was already there"
    authority = reference.authorities.get(order.authority) if reference else None
    policy = reference.sla_policies.get(order.sla_policy) if reference else None
    summary = (
        f"{order.authority} {order.reference} -> {order.platform}: {len(order.items)} item(s), "
        f"{order.sla_policy}"
    )
    details = "\n".join(
        [
            f"**Authority:** {authority.name if authority else order.authority} "
            f"({order.authority})",
            f"**Reference:** {order.reference}",
            f"**Platform:** {order.platform}",
            "**Legal bases:** " + "; ".join(f"{c.basis} {c.provision}" for c in order.legal_bases),
            f"**SLA policy:** {order.sla_policy}" + (f": {policy.title}" if policy else ""),
            f"**Scope:** {', '.join(order.territorial_scope)}",
            f"**Categories:** {', '.join(order.categories)}",
        ]
    )

    async def start() -> None:
        with contextlib.suppress(WorkflowAlreadyStartedError):  # a closed run with this id
            await client.start_workflow(
                names.WORKFLOW_NAME,
                signed.model_dump(),
                id=request_id,
                task_queue=task_queue or settings.task_queue(),
                # a run the workflow refused at its start wrote nothing: the id may be filed
                # again, correctly (the workflow itself refuses an id already filed)
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                memo={
                    "fingerprint": order_fingerprint,
                    "submitted_by": signer.actor_id,
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
    await retrying(start, request_id)
    return await _attach(client, request_id, order_fingerprint, submission_id)


async def _attach(client: Client, request_id: str, wanted: str, submission_id: str) -> Submitted:
    description = await retrying(client.get_workflow_handle(request_id).describe, request_id)
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
    trigger: str,
    payload: Mapping[str, Any],
    *,
    signer: Signer,
    update_id: str | None = None,
    attempts: int = 3,
    now: datetime | None = None,
) -> Receipt:
    """Sign one command (dated `now`, default the current time) and send it as a Temporal
    Update; return the receipt once its audit entry is durable.

    A lost answer (time-out, lost connection, a restarting server) is retried with the *same*
    update id and the same signed command, which Temporal deduplicates: a command is applied
    at most once, and either succeeds or fails clearly (Unavailable: safe to send again)."""
    signed = signed_command(request_id, trigger, payload, signer, now=now)
    return await send_signed(
        client, request_id, trigger, signed, update_id=update_id, attempts=attempts
    )


async def send_signed(
    client: Client,
    request_id: str,
    trigger: str,
    signed: SignedCommand,
    *,
    update_id: str | None = None,
    attempts: int = 3,
) -> Receipt:
    """Send an already signed command (e.g. one made by `starter.py sign`)."""
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(request_id)
    update_id = update_id or f"{trigger}-{uuid.uuid4()}"
    body = signed.model_dump()

    async def call() -> Receipt:
        try:
            receipt: Receipt = await handle.execute_update(
                trigger, body, id=update_id, result_type=Receipt
            )
        except WorkflowUpdateFailedError as exc:
            raise _refusal(exc.cause) from None
        return receipt

    try:
        return await retrying(call, request_id, attempts=attempts)
    except Unavailable as exc:
        raise Unavailable(
            f"{trigger} on {request_id}: {exc} after {attempts} tries "
            f"(update id {update_id}; sending it again is safe)"
        ) from None


def _refusal(cause: BaseException | None) -> DocketError:
    if isinstance(cause, ApplicationError):
        details = cause.details[0] if cause.details else {}
        state = details.get("state") if isinstance(details, dict) else None
        allowed = details.get("allowed", []) if isinstance(details, dict) else []
        code = details.get("code") if isinstance(details, dict) else None
        if cause.type == "InvalidCommand":
            return BadInput(cause.message)
        return CommandRefused(cause.message, state, allowed, code)
    return CommandRefused(str(cause))


def _rpc_error(exc: RPCError, request_id: str) -> DocketError:
    """A definite answer from Temporal becomes its DocketError; anything else (a lost
    connection, a time-out, an overloaded or restarting server: transport errors come back as
    UNAVAILABLE, UNKNOWN, INTERNAL, CANCELLED, ...) is `Unavailable`, safe to send again."""
    status = exc.status
    if status == RPCStatusCode.NOT_FOUND:
        return NotFound(f"no request {request_id!r} (check the id with `starter.py list`)")
    if status == RPCStatusCode.INVALID_ARGUMENT:
        return BadInput(exc.message)
    if status == RPCStatusCode.ALREADY_EXISTS:
        return SubmissionConflict(f"{request_id}: {exc.message}")
    if status == RPCStatusCode.FAILED_PRECONDITION:
        return CommandRefused(f"{request_id}: {exc.message}")
    if status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED):
        return AccessDenied(
            f"Temporal refused this client ({exc.message}); check TEMPORAL_NAMESPACE, "
            "TEMPORAL_API_KEY and the TLS settings"
        )
    return Unavailable(
        f"Temporal did not answer ({status.name if status else 'no status'}: {exc.message})"
    )


async def query(client: Client, request_id: str, name: str) -> Any:
    handle = client.get_workflow_handle(request_id)
    try:
        return await retrying(lambda: handle.query(name), request_id)
    except WorkflowQueryFailedError as exc:
        # the worker could not answer (e.g. it cannot replay the request): an operator's
        # problem, named as such, not a traceback
        raise QueryFailed(
            f"{request_id}: the worker could not answer {name!r}: {exc}; see the workflow in "
            "the Temporal UI and docs/operations.md"
        ) from None


async def retrying(
    call: Callable[[], Awaitable[T]],
    request_id: str = "",
    *,
    attempts: int = 5,
    max_delay: float = 5.0,
) -> T:
    """`call()`, tried again with backoff while Temporal does not answer (`Unavailable`: the
    SDK's own RetryConfig has already retried each RPC for a while; this covers longer
    outages, and Update time-outs, which it does not retry). Only for calls that are safe to
    repeat (an Update keeps its id). Every other error becomes its DocketError at once."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except Unavailable as exc:  # a call that already translated (send_command, submit)
            error: DocketError = exc
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            error = Unavailable("no answer in time")
        except RPCError as exc:
            error = _rpc_error(exc, request_id)
        if not isinstance(error, Unavailable) or attempt == attempts:
            raise error
        await asyncio.sleep(min(0.2 * 2**attempt, max_delay))
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
