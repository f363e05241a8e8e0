"""Issue 12's attacks against the real worker: who acted is proven by a key, not claimed.

One worker for this module, on a task queue of its own on the session's dev server, whose
trust roots are a file this module controls (read afresh by the `load_trust` activity, at
most 1 s old when a command is decided), so a key can be revoked while requests run.

Every attack is sent as any Temporal client would send it (a raw `execute_update` or
`start_workflow` with a JSON argument). For each refusal: the message names what failed,
the error's details carry the identity code, and nothing happened (no Update event where the
validator refuses, no audit entry, no state change). Each test ends with the legitimate
command accepted, so the refusals are the attack's doing and not the request's state.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from docket_harness import (
    NO_CLOCK_POLICY,
    Minted,
    Stack,
    audit_entries,
    decoded_text,
    fresh_task_queue,
    identities,
    is_running,
    make_order,
    mint_credential,
    running_worker,
    sign_raw,
    signed_as_is,
    signer,
    trace,
    wait_for,
)
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from audit.canonical import canonical
from docket import client as docket
from docket import sshsig
from docket import temporal_names as names
from docket.credentials import NAMESPACE, load_trust
from docket.keys import generate_key
from docket.lifecycle import Role
from docket.models import Order, Receipt
from docket.reference import ReferenceData
from docket.signer import Signer, load_private_key, sign_command
from docket.statement import format_issued_at
from docket.validation import workflow_id_for
from platform_sim.server import PlatformSimulator

pytestmark = pytest.mark.integration

TRUST_MAX_AGE = timedelta(seconds=1)
MAKER = "nguyen.van.an"  # officer (mic)
APPROVER = "tran.thi.binh"  # approver (mic)


@dataclass
class Guarded:
    """The module's worker: its queue, audit log and trust file, and what the tests made."""

    client: Client
    sim: PlatformSimulator
    reference: ReferenceData
    queue: str
    audit_dir: Path
    trust_file: Path
    request_ids: set[str] = field(default_factory=set)
    minted: list[Minted] = field(default_factory=list)

    def mint(self, actor_id: str, roles: Iterable[Role], **options: Any) -> Signer:
        minted = mint_credential(actor_id, tuple(roles), **options)
        self.minted.append(minted)
        return minted.signer

    def revoke(self, fingerprint: str, reason: str) -> None:
        """Append a revocation to the trust file (atomically, as `./run keys revoke` does)."""
        revoked_at = (datetime.now(UTC) - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = self.trust_file.read_text(encoding="utf-8") + (
            f'\n[[revoked]]\nkey = "{fingerprint}"\nreason = "{reason}"\n'
            f"revoked_at = {revoked_at}\n"
        )
        staged = self.trust_file.with_suffix(".staged")
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, self.trust_file)
        assert load_trust(self.trust_file).revocation(fingerprint) is not None


@pytest.fixture(scope="module")
async def guarded(
    dev_stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Guarded]:
    root = tmp_path_factory.mktemp("signed-commands")
    trust_file = root / "trust.toml"
    trust_file.write_text(identities().trust_file.read_text(encoding="utf-8"), encoding="utf-8")
    audit_dir = root / "audit"
    audit_dir.mkdir()
    queue = fresh_task_queue("signed")
    reference = dev_stack.reference
    async with running_worker(
        dev_stack.client,
        dev_stack.endpoints(),
        audit_dir,
        task_queue=queue,
        reference=reference,
        trust=lambda: load_trust(trust_file),  # the operator's file, read on every refresh
        trust_max_age=TRUST_MAX_AGE,
    ):
        yield Guarded(dev_stack.client, dev_stack.sim, reference, queue, audit_dir, trust_file)


# --- helpers -------------------------------------------------------------------------------


def new_order(g: Guarded, name: str, *, officer: str = MAKER) -> Order:
    """An order to tiktok (delivered by hand, no SLA clock): it waits where a test leaves it."""
    tag = uuid.uuid4().hex[:6].upper()
    return make_order(
        g.sim,
        f"SIG-{tag}-{name}",
        [f"remove--sig-{tag.lower()}"],
        reference=g.reference,
        platform="tiktok",
        policy=NO_CLOCK_POLICY,
        officer=officer,
    )


async def parked(g: Guarded, name: str, *, officer: str = MAKER) -> str:
    """A request submitted by its officer, waiting in pending_approval."""
    order = new_order(g, name, officer=officer)
    sub = await docket.submit(
        g.client, order, signer=signer(officer), reference=g.reference, task_queue=g.queue
    )
    g.request_ids.add(sub.request_id)
    await wait_for(g.client, sub.request_id, state="pending_approval")
    return sub.request_id


async def send(g: Guarded, rid: str, trigger: str, body: dict[str, Any]) -> Receipt:
    """Send a signed command as any client would; return the receipt."""
    handle = g.client.get_workflow_handle(rid)
    receipt: Receipt = await handle.execute_update(
        trigger, body, id=f"ok-{uuid.uuid4()}", result_type=Receipt
    )
    return receipt


def signed_by(
    who: Signer, rid: str, trigger: str, payload: dict[str, Any], *, nonce: str | None = None
) -> dict[str, Any]:
    """A command signed with `who`'s key and credential (the library's signing path)."""
    return sign_command(
        who, rid, trigger, who.actor_id, payload, datetime.now(UTC), nonce
    ).model_dump()


def statement_text(rid: str, trigger: str, actor_id: str, payload: dict[str, Any]) -> str:
    """A canonical statement built by hand (any actor, any payload)."""
    return canonical(
        {
            "v": 1,
            "namespace": NAMESPACE,
            "request_id": rid,
            "trigger": trigger,
            "actor": actor_id,
            "issued_at": format_issued_at(datetime.now(UTC)),
            "nonce": uuid.uuid4().hex,
            "payload": payload,
        }
    ).decode("utf-8")


def details_of(cause: ApplicationError) -> dict[str, Any]:
    details = cause.details[0] if cause.details else {}
    assert isinstance(details, dict), cause.details
    return details


async def refused(
    g: Guarded,
    rid: str,
    trigger: str,
    body: Any,
    *,
    code: str | None,
    says: Iterable[str],
    by: str = "validator",
) -> ApplicationError:
    """Send `body`; it must be refused with `code` in the details (None: a lifecycle refusal,
    type CommandRejected), a message saying each of `says` and the state, and leave no trace:
    no Update event at all when the validator refuses (`by="validator"`); when the handler
    does (a revocation it learns of on refreshing the trust roots), a failed Update but no
    audit entry and no state change."""
    before = await trace(g.client, g.audit_dir, rid)
    update_id = f"attack-{uuid.uuid4()}"
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await g.client.get_workflow_handle(rid).execute_update(trigger, body, id=update_id)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    assert cause.non_retryable
    details = details_of(cause)
    if code is None:
        assert cause.type == "CommandRejected", (cause.type, cause.message)
    else:
        assert details.get("code") == code, (details, cause.message)
        assert cause.type in ("Unauthenticated", "InvalidCommand"), cause.type
    assert details.get("state") == before.state
    message = cause.message
    for words in says:
        assert words in message, message
    assert f"state is {before.state!r}" in message, message
    after = await trace(g.client, g.audit_dir, rid)
    if by == "validator":
        assert after == before, (before, after)
        assert update_id not in after.update_ids
    else:
        assert update_id in after.update_ids  # accepted on stale roots, then failed
        assert (after.state, after.audit_count, after.head, after.logged) == (
            before.state,
            before.audit_count,
            before.head,
            before.logged,
        )
    return cause


async def start_refused(
    g: Guarded, rid: str, start_input: Any, *, paths: set[str], says: Iterable[str]
) -> ApplicationError:
    """Start a run with `start_input` from a raw client: the workflow must fail at once,
    non-retryable, naming `paths`, with nothing written and no workflow task failed."""
    g.request_ids.add(rid)
    handle = await g.client.start_workflow(
        names.WORKFLOW_NAME, start_input, id=rid, task_queue=g.queue
    )
    with pytest.raises(WorkflowFailureError) as info:
        await asyncio.wait_for(handle.result(), 30)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    assert cause.type == "InvalidRequest" and cause.non_retryable
    issues = details_of(cause)["issues"]
    assert {issue["path"] for issue in issues} == paths, issues
    for words in says:
        assert words in cause.message, cause.message
    history = await handle.fetch_history()
    kinds = [e.event_type for e in history.events]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds
    assert kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    scheduled = {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    assert scheduled <= {"load_deployment"}, scheduled  # no probe, no audit write
    assert audit_entries(g.audit_dir, rid) == []
    return cause


def entry(g: Guarded, rid: str, sequence: int) -> dict[str, Any]:
    return audit_entries(g.audit_dir, rid)[sequence - 1]


# --- the attacks ---------------------------------------------------------------------------


async def test_a_self_declared_actor_is_refused(guarded: Guarded) -> None:
    g = guarded
    rid = await parked(g, "SELF")
    mallory = {"id": "mallory.unknown", "roles": ["approver"], "organization": "Nobody"}
    # As reported: an actor who is in no directory claims the approver role in the payload.
    await refused(
        g,
        rid,
        "approve",
        {"actor": mallory, "reason": "Because I say so"},
        code="unsigned",
        says=["unsigned", "not claimed in the payload"],
    )
    # Mallory signs, with a credential from her own CA, which no trust root knows.
    rogue_ca = generate_key()
    forged = g.mint("mallory.unknown", [Role.APPROVER], ca_key=rogue_ca)
    await refused(
        g,
        rid,
        "approve",
        signed_by(forged, rid, "approve", {"reason": "Because I say so"}),
        code="unknown_key",
        says=["mallory.unknown", "not the CA key of any organization"],
    )
    # A real approver's valid key, with another actor smuggled into the signed payload.
    smuggled = statement_text(
        rid, "approve", APPROVER, {"actor": mallory, "reason": "Signed for Mallory"}
    )
    await refused(
        g,
        rid,
        "approve",
        signed_as_is(signer(APPROVER), smuggled),
        code="malformed_statement",
        says=["payload.actor"],
    )
    # An organization's CA vouching for someone outside its roster (`actors` in the trust file).
    outsider = g.mint("mallory.insider", [Role.APPROVER], organization="mic")
    await refused(
        g,
        rid,
        "approve",
        signed_by(outsider, rid, "approve", {"reason": "Our CA says I am fine"}),
        code="bad_credential",
        says=["mallory.insider", "may certify only actors"],
    )

    receipt = await send(
        g, rid, "approve", sign_raw(APPROVER, rid, "approve", {"reason": "Legal basis checked"})
    )
    assert receipt.state == "delivering"
    approved = entry(g, rid, receipt.sequence)
    assert approved["user"] == {"id": APPROVER, "roles": ["approver"]}
    assert approved["docket"]["signed"]["key_fingerprint"] == signer(APPROVER).key_fingerprint
    assert not any("mallory" in json.dumps(e) for e in audit_entries(g.audit_dir, rid))


async def test_a_submission_under_another_officers_name(guarded: Guarded) -> None:
    g = guarded

    def submission(order: Order, by: Signer, rid: str | None = None) -> tuple[str, Any]:
        request_id = workflow_id_for(order.authority, order.reference)
        payload = {"order": order.model_dump(mode="json")}
        return rid or request_id, signed_by(by, request_id, "submit", payload)

    # Officer A signs an order that names officer B as its maker.
    order = new_order(g, "OTHER", officer="le.van.cuong")
    rid, body = submission(order, signer(MAKER))
    await start_refused(
        g,
        rid,
        body,
        paths={"payload.order.officer"},
        says=["'le.van.cuong' as its officer but 'nguyen.van.an' submitted it"],
    )
    # A platform's liaison signs the ministry's order (naming the ministry's officer) ...
    rid, body = submission(new_order(g, "LIAISON"), signer("liaison.facebook"))
    await start_refused(
        g,
        rid,
        body,
        paths={"payload.order.authority"},
        says=["liaison.facebook", "platform:facebook", "not for the authority 'mst'"],
    )
    # ... and another authority's officer signs an order of this authority under their name.
    rid, body = submission(new_order(g, "CNAM", officer="officer.cnam"), signer("officer.cnam"))
    await start_refused(
        g,
        rid,
        body,
        paths={"payload.order.authority"},
        says=["officer.cnam", "authority:ie-cnam", "not for the authority 'mst'"],
    )
    # A maker claimed in the start input, not signed.
    order = new_order(g, "CLAIM")
    rid = workflow_id_for(order.authority, order.reference)
    claimed = {
        "actor": {"id": MAKER, "roles": ["officer"], "organization": "mic"},
        "order": order.model_dump(mode="json"),
    }
    await start_refused(g, rid, claimed, paths={"(start input)"}, says=["unsigned"])
    # A valid submission, started under another request's id.
    rid, body = submission(new_order(g, "MOVED"), signer(MAKER))
    elsewhere = f"{rid}-moved"
    await start_refused(
        g, elsewhere, body, paths={"signature"}, says=["wrong_request", f"not {elsewhere!r}"]
    )
    # The very same submission under its own id is accepted.
    g.request_ids.add(rid)
    await g.client.start_workflow(names.WORKFLOW_NAME, body, id=rid, task_queue=g.queue)
    await wait_for(g.client, rid, state="pending_approval")
    submitted = entry(g, rid, 1)
    assert submitted["user"] == {"id": MAKER, "roles": ["officer"]}
    assert submitted["docket"]["signed"]["statement"] == body["statement"]


async def test_a_role_the_credential_does_not_grant(guarded: Guarded) -> None:
    g = guarded
    rid = await parked(g, "ROLE")
    # The officer's own credential grants officer only.
    await refused(
        g,
        rid,
        "approve",
        sign_raw(MAKER, rid, "approve", {"reason": "I can approve this myself"}),
        code=None,
        says=["nguyen.van.an (officer) may not approve", "needs one of the roles: approver"],
    )
    # A platform's CA writes approver into its liaison's credential.
    meta_approver = g.mint("liaison.facebook", [Role.APPROVER], organization="meta")
    await refused(
        g,
        rid,
        "approve",
        signed_by(meta_approver, rid, "approve", {"reason": "Our CA made me an approver"}),
        code="role_not_granted",
        says=["liaison.facebook", "claims approver", "meta"],
    )
    # The ministry's CA writes a role it may not grant (the review board's) beside a real one.
    overreach = g.mint(APPROVER, [Role.APPROVER, Role.APPEAL_REVIEWER], organization="mic")
    await refused(
        g,
        rid,
        "approve",
        signed_by(overreach, rid, "approve", {"reason": "Approver and reviewer"}),
        code="role_not_granted",
        says=["claims appeal_reviewer", "mic"],
    )
    receipt = await send(
        g, rid, "approve", sign_raw(APPROVER, rid, "approve", {"reason": "Legal basis checked"})
    )
    assert receipt.state == "delivering"


async def test_a_liaison_posing_as_an_officer(guarded: Guarded) -> None:
    g = guarded
    rid = await parked(g, "POSE")
    await send(g, rid, "approve", sign_raw(APPROVER, rid, "approve", {"reason": "Checked"}))
    await wait_for(g.client, rid, state="awaiting_ack")
    # As reported: the liaison gives itself the officer role and the ministry's name.
    posing = {
        "actor": {
            "id": "liaison.tiktok",
            "roles": ["officer"],
            "organization": "Bộ Thông tin và Truyền thông",
        },
        "reason": "Posing as the ministry",
    }
    await refused(g, rid, "withdraw", posing, code="unsigned", says=["unsigned"])
    # Signed with its real credential: the role comes from the credential.
    await refused(
        g,
        rid,
        "withdraw",
        sign_raw("liaison.tiktok", rid, "withdraw", {"reason": "Posing as the ministry"}),
        code=None,
        says=["liaison.tiktok (platform_liaison) may not withdraw"],
    )
    # With a credential from the platform's own CA that claims officer.
    officer_liaison = g.mint("liaison.tiktok", [Role.OFFICER], organization="tiktok")
    await refused(
        g,
        rid,
        "withdraw",
        signed_by(officer_liaison, rid, "withdraw", {"reason": "Posing as the ministry"}),
        code="role_not_granted",
        says=["liaison.tiktok", "claims officer", "tiktok"],
    )
    # Another platform's liaison, whose organization does not act for this request.
    await refused(
        g,
        rid,
        "acknowledge",
        sign_raw("liaison.facebook", rid, "acknowledge", {"reason": "Received"}),
        code="not_for_this_request",
        says=["liaison.facebook", "platform:facebook", "platform tiktok"],
    )
    receipt = await send(
        g,
        rid,
        "acknowledge",
        sign_raw("liaison.tiktok", rid, "acknowledge", {"reason": "Received by e-mail"}),
    )
    assert receipt.state == "acknowledged"
    acked = entry(g, rid, receipt.sequence)
    assert acked["user"] == {"id": "liaison.tiktok", "roles": ["platform_liaison"]}
    assert acked["docket"]["signed"]["organization_id"] == "tiktok"


async def test_a_command_signed_with_another_actors_key(guarded: Guarded) -> None:
    g = guarded
    rid = await parked(g, "KEY")
    text = statement_text(rid, "approve", APPROVER, {"reason": "Approved by Bình (really)"})
    # The statement says tran.thi.binh; the officer's key and credential sign it.
    await refused(
        g,
        rid,
        "approve",
        signed_as_is(signer(MAKER), text),
        code="actor_mismatch",
        says=["names actor 'tran.thi.binh'", "credential of 'nguyen.van.an'"],
    )
    # The approver's credential is attached, but the officer's private key signs.
    maker_key_file = identities().key_file(MAKER)
    maker_key = load_private_key(maker_key_file.read_bytes(), str(maker_key_file))
    borrowed = signer(APPROVER).certificate
    forged = sshsig.build_sshsig(
        borrowed.blob,
        NAMESPACE,
        text.encode("utf-8"),
        lambda data: sshsig.sign_with_private_key(maker_key, data),
    )
    await refused(
        g,
        rid,
        "approve",
        {"statement": text, "signature": forged},
        code="bad_signature",
        says=["signature of 'tran.thi.binh' does not match", "another key"],
    )
    receipt = await send(g, rid, "approve", signed_as_is(signer(APPROVER), text))
    assert receipt.state == "delivering"


async def test_a_payload_altered_after_signing(guarded: Guarded) -> None:
    g = guarded
    rid = await parked(g, "ALTER")
    body = sign_raw(APPROVER, rid, "approve", {"reason": "Checked the first item only"})
    statement = json.loads(body["statement"])
    statement["payload"]["reason"] = "Checked every item"
    altered = canonical(statement).decode("utf-8")
    await refused(
        g,
        rid,
        "approve",
        {**body, "statement": altered},
        code="bad_signature",
        says=["does not match this command", "altered after signing"],
    )
    # The same statement written another way (spaces, key order): not the signed bytes.
    await refused(
        g,
        rid,
        "approve",
        {**body, "statement": json.dumps(json.loads(body["statement"]), ensure_ascii=False)},
        code="malformed_statement",
        says=["canonical form"],
    )
    lines = body["signature"].splitlines()
    cut = "\n".join([*lines[:3], lines[-1]]) + "\n"
    await refused(
        g, rid, "approve", {**body, "signature": cut}, code="malformed_signature", says=[]
    )
    await refused(
        g, rid, "approve", {**body, "signature": ""}, code="unsigned", says=["no signature"]
    )
    receipt = await send(g, rid, "approve", body)  # the command as signed
    assert receipt.state == "delivering"


async def test_a_signed_command_replayed(guarded: Guarded) -> None:
    g = guarded
    first, other = await parked(g, "REPLAY1"), await parked(g, "REPLAY2")
    body = sign_raw(APPROVER, first, "approve", {"reason": "Legal basis checked"})
    # Replayed to another request, or as another command.
    await refused(
        g,
        other,
        "approve",
        body,
        code="wrong_request",
        says=[f"signed for request {first!r}, not {other!r}"],
    )
    await refused(
        g, first, "reject", body, code="wrong_trigger", says=["signed for 'approve', not 'reject'"]
    )
    # Sent twice at once under two update ids: it counts once.
    handle = g.client.get_workflow_handle(first)
    ids = [f"replay-{uuid.uuid4()}", f"replay-{uuid.uuid4()}"]
    outcomes = await asyncio.gather(
        *(handle.execute_update("approve", body, id=i, result_type=Receipt) for i in ids),
        return_exceptions=True,
    )
    receipts = [o for o in outcomes if isinstance(o, Receipt)]
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(receipts) == 1 and len(failures) == 1, outcomes
    failure = failures[0]
    assert isinstance(failure, WorkflowUpdateFailedError), failure
    assert isinstance(failure.cause, ApplicationError)
    assert "already used on this request" in failure.cause.message, failure.cause.message
    accepted_id = ids[outcomes.index(receipts[0])]
    await wait_for(g.client, first, state="awaiting_ack")  # delivered by hand: settled
    # Replayed later under a new update id: refused by the validator, no trace.
    await refused(
        g, first, "approve", body, code=None, says=["already used on this request", "sign a new"]
    )
    # The same update id again is Temporal's deduplication: the same receipt, nothing new.
    again = await handle.execute_update("approve", body, id=accepted_id, result_type=Receipt)
    assert again == receipts[0]
    actions = [e["event"]["action"] for e in audit_entries(g.audit_dir, first)]
    assert actions.count("approve") == 1, actions
    receipt = await send(
        g, other, "approve", sign_raw(APPROVER, other, "approve", {"reason": "Legal basis checked"})
    )
    assert receipt.state == "delivering"


async def test_a_replayed_command_is_refused_with_a_code(guarded: Guarded) -> None:
    g = guarded
    rid = await parked(g, "REPLAYCODE")
    body = sign_raw(APPROVER, rid, "approve", {"reason": "Legal basis checked"})
    await send(g, rid, "approve", body)
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await g.client.get_workflow_handle(rid).execute_update("approve", body)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and "already used" in cause.message
    assert details_of(cause).get("code"), details_of(cause)


async def test_an_expired_or_not_yet_valid_credential(guarded: Guarded) -> None:
    g = guarded
    rid = await parked(g, "VALIDITY")
    now = datetime.now(UTC)
    expired = g.mint(
        APPROVER,
        [Role.APPROVER],
        organization="mic",
        valid_after=now - timedelta(days=2),
        valid_before=now - timedelta(days=1),
    )
    await refused(
        g,
        rid,
        "approve",
        signed_by(expired, rid, "approve", {"reason": "Old credential"}),
        code="credential_expired",
        says=["credential of 'tran.thi.binh'", "expired at", "must issue a new one"],
    )
    early = g.mint(
        APPROVER,
        [Role.APPROVER],
        organization="mic",
        valid_after=now + timedelta(days=1),
        valid_before=now + timedelta(days=2),
    )
    await refused(
        g,
        rid,
        "approve",
        signed_by(early, rid, "approve", {"reason": "Credential of tomorrow"}),
        code="credential_not_yet_valid",
        says=["credential of 'tran.thi.binh'", "not yet at"],
    )
    receipt = await send(
        g, rid, "approve", sign_raw(APPROVER, rid, "approve", {"reason": "Legal basis checked"})
    )
    assert receipt.state == "delivering"


async def test_a_revoked_key_even_while_the_request_runs(guarded: Guarded) -> None:
    g = guarded
    laptop = g.mint(APPROVER, [Role.APPROVER], organization="mic", serial=9101)
    maker_laptop = g.mint(MAKER, [Role.OFFICER], organization="mic", serial=9102)
    running, waiting = await parked(g, "REVOKE1"), await parked(g, "REVOKE2")
    # Before the revocation the second key works like any other.
    approved = await send(
        g, running, "approve", signed_by(laptop, running, "approve", {"reason": "Checked"})
    )
    await wait_for(g.client, running, state="awaiting_ack")

    g.revoke(laptop.key_fingerprint, "laptop stolen")
    g.revoke(maker_laptop.key_fingerprint, "laptop stolen")
    tiktok = identities().trust.organization("tiktok")
    assert tiktok is not None
    [platform_ca] = tiktok.ca_fingerprints
    g.revoke(platform_ca, "CA key leaked")
    await asyncio.sleep(TRUST_MAX_AGE.total_seconds() + 0.3)  # the bound the worker promises

    # Running requests learn of it when they decide the next command (their roots are stale:
    # the validator still accepts, the handler reads the file again and refuses).
    revoked = [laptop.key_fingerprint, "was revoked", "laptop stolen"]
    await refused(
        g,
        running,
        "withdraw",
        signed_by(laptop, running, "withdraw", {"reason": "Withdrawn from a stolen laptop"}),
        code="key_revoked",
        says=revoked,
        by="handler",
    )
    # A revoked CA key: every credential it issued (here the platform liaison's) is refused.
    await refused(
        g,
        running,
        "acknowledge",
        sign_raw("liaison.tiktok", running, "acknowledge", {"reason": "Received by e-mail"}),
        code="key_revoked",
        says=[f"the CA key {platform_ca} was revoked", "CA key leaked", "new CA key"],
    )
    await refused(
        g,
        waiting,
        "approve",
        signed_by(laptop, waiting, "approve", {"reason": "From a stolen laptop"}),
        code="key_revoked",
        says=revoked,
        by="handler",
    )
    # ... whose roots are now fresh: the validator refuses before anything happens.
    await refused(
        g,
        waiting,
        "approve",
        signed_by(laptop, waiting, "approve", {"reason": "From a stolen laptop, again"}),
        code="key_revoked",
        says=revoked,
    )
    # A request started after the revocation, and a submission signed with a revoked key.
    later = await parked(g, "REVOKE3")
    await refused(
        g,
        later,
        "approve",
        signed_by(laptop, later, "approve", {"reason": "From a stolen laptop"}),
        code="key_revoked",
        says=revoked,
    )
    order = new_order(g, "REVOKE4")
    rid = workflow_id_for(order.authority, order.reference)
    await start_refused(
        g,
        rid,
        signed_by(maker_laptop, rid, "submit", {"order": order.model_dump(mode="json")}),
        paths={"signature"},
        says=["key_revoked", maker_laptop.key_fingerprint],
    )

    # The actor's other key still works; what the revoked key signed before stays on record.
    for rid, trigger in ((waiting, "approve"), (later, "approve"), (running, "withdraw")):
        receipt = await send(
            g, rid, trigger, sign_raw(APPROVER, rid, trigger, {"reason": "Legal basis checked"})
        )
        assert receipt.trigger == trigger
    before = entry(g, running, approved.sequence)
    assert before["docket"]["signed"]["key_fingerprint"] == laptop.key_fingerprint


async def test_the_maker_cannot_approve_with_a_second_key(guarded: Guarded) -> None:
    g = guarded
    rid = await parked(g, "FOUREYES")
    # The ministry's CA issues the officer a second key, as approver: a valid credential.
    second = g.mint(MAKER, [Role.APPROVER], organization="mic", serial=9201)
    assert second.key_fingerprint != signer(MAKER).key_fingerprint
    await refused(
        g,
        rid,
        "approve",
        signed_by(second, rid, "approve", {"reason": "Approved with my other key"}),
        code=None,
        says=["nguyen.van.an made this request and cannot approve it", "four-eyes"],
    )
    both = g.mint(MAKER, [Role.OFFICER, Role.APPROVER], organization="mic", serial=9202)
    await refused(
        g,
        rid,
        "approve",
        signed_by(both, rid, "approve", {"reason": "Approved with my third key"}),
        code=None,
        says=["four-eyes"],
    )
    receipt = await send(
        g, rid, "approve", sign_raw(APPROVER, rid, "approve", {"reason": "Legal basis checked"})
    )
    assert receipt.state == "delivering"


async def test_an_organization_that_does_not_act_for_the_request(guarded: Guarded) -> None:
    g = guarded
    rid = await parked(g, "ORG")
    for approver, organization in (("approver.cnam", "ie-cnam"), ("approver.a05", "mps-a05")):
        await refused(
            g,
            rid,
            "approve",
            sign_raw(approver, rid, "approve", {"reason": "Approved by another authority"}),
            code="not_for_this_request",
            says=[f"{approver} (approver) of {organization}", "not for this request", "mst"],
        )
    receipt = await send(
        g, rid, "approve", sign_raw(APPROVER, rid, "approve", {"reason": "Legal basis checked"})
    )
    assert receipt.state == "delivering"


async def test_a_stale_or_future_dated_command(guarded: Guarded) -> None:
    g = guarded
    rid = await parked(g, "WHEN")
    now = datetime.now(UTC)
    old = sign_raw(
        APPROVER, rid, "approve", {"reason": "Signed long ago"}, now=now - timedelta(minutes=20)
    )
    await refused(
        g, rid, "approve", old, code="stale", says=["more than 15 minutes before", "sign it again"]
    )
    ahead = sign_raw(
        APPROVER, rid, "approve", {"reason": "Signed ahead"}, now=now + timedelta(minutes=10)
    )
    await refused(
        g, rid, "approve", ahead, code="issued_in_future", says=["ahead of the workflow's clock"]
    )
    receipt = await send(
        g, rid, "approve", sign_raw(APPROVER, rid, "approve", {"reason": "Checked"})
    )
    assert receipt.state == "delivering"


async def test_a_captured_submission_cannot_reopen_a_closed_request(guarded: Guarded) -> None:
    g = guarded
    order = new_order(g, "AGAIN")
    rid = workflow_id_for(order.authority, order.reference)
    g.request_ids.add(rid)
    submission = sign_raw(MAKER, rid, "submit", {"order": order.model_dump(mode="json")})
    run = await g.client.start_workflow(names.WORKFLOW_NAME, submission, id=rid, task_queue=g.queue)
    await wait_for(g.client, rid, state="pending_approval")
    approval = sign_raw(APPROVER, rid, "approve", {"reason": "Legal basis checked"})
    await send(g, rid, "approve", approval)
    await wait_for(g.client, rid, state="awaiting_ack")
    withdrawal = sign_raw(MAKER, rid, "withdraw", {"reason": "Withdrawn for good"})
    await send(g, rid, "withdraw", withdrawal)
    await run.result()
    logged = len(audit_lines(g, rid))

    # Someone who captured the start input starts the request again, as any client can.
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await g.client.start_workflow(names.WORKFLOW_NAME, submission, id=rid, task_queue=g.queue)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while await is_running(g.client, rid) and loop.time() < deadline:
        status = await docket.status(g.client, rid)
        assert status["state"] != "pending_approval", "the withdrawn request is open again"
        await asyncio.sleep(0.2)
    assert not await is_running(g.client, rid)
    assert len(audit_lines(g, rid)) == logged


def audit_lines(g: Guarded, rid: str) -> list[str]:
    """Every line the audit log holds for `rid` (copies included)."""
    return [
        line
        for path in sorted(g.audit_dir.rglob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if f'"{rid}:' in line
    ]


# --- no private key anywhere ---------------------------------------------------------------


def secret_marks(private_text: bytes) -> set[str]:
    """Strings that appear wherever this ed25519 private key is written: its raw seed in hex,
    and the middle of its base64 at every byte alignment (a leak inside any base64 blob)."""
    key = load_private_key(private_text, "(test key)")
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    seed = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    marks = {seed.hex()}
    for shift in range(3):
        marks.add(base64.b64encode(seed[shift:]).decode("ascii")[4:-4])
    return marks


async def test_no_private_key_in_update_inputs_or_the_audit_log(guarded: Guarded) -> None:
    g = guarded
    assert len(g.request_ids) >= 10 and len(g.minted) >= 10
    keys_dir = identities().directory
    key_files = [
        p for p in [*keys_dir.glob("keys/*"), *keys_dir.glob("ca/*")] if p.suffix != ".pub"
    ]
    marks: set[str] = set()
    for private_text in [p.read_bytes() for p in key_files] + [m.private_text for m in g.minted]:
        marks |= secret_marks(private_text)

    texts = [
        decoded_text((await g.client.get_workflow_handle(rid).fetch_history()).to_json())
        for rid in sorted(g.request_ids)
    ]
    texts += [
        p.read_bytes().decode("utf-8", "replace")
        for p in sorted(g.audit_dir.rglob("*"))
        if p.is_file()
    ]
    assert any("SSH SIGNATURE" in t for t in texts)  # the signed inputs are there ...
    for text in texts:
        assert "PRIVATE KEY" not in text  # ... and never a key
        assert "b3BlbnNzaC1rZXktdjE" not in text  # base64 of an OpenSSH private key's magic
        leaked = [mark for mark in marks if mark in text]
        assert not leaked, leaked
