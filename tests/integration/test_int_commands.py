"""Commands and submissions on the real dev server: refused commands leave no trace, and
submission is idempotent (same payload attaches; a different one under the same reference is
a conflict)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from docket_harness import (
    NO_CLOCK_POLICY,
    Stack,
    actor,
    audit_entries,
    issue,
    liaison,
    make_order,
    sign_raw,
    signer,
    wait_for,
)
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from docket import client as docket
from docket.models import (
    Acknowledge,
    Approve,
    Command,
    FileAppeal,
    ItemEffect,
    ReportEffect,
    Withdraw,
)

pytestmark = pytest.mark.integration

UPDATE_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
}


def update_ids(history: WorkflowHistory) -> set[str]:
    """Update ids named by any update event of the history."""
    ids = set()
    for e in history.events:
        if e.event_type not in UPDATE_EVENTS:
            continue
        if e.HasField("workflow_execution_update_admitted_event_attributes"):
            ids.add(e.workflow_execution_update_admitted_event_attributes.request.meta.update_id)
        if e.HasField("workflow_execution_update_accepted_event_attributes"):
            attrs = e.workflow_execution_update_accepted_event_attributes
            ids.add(attrs.accepted_request.meta.update_id)
            ids.add(attrs.protocol_instance_id)
        if e.HasField("workflow_execution_update_completed_event_attributes"):
            ids.add(e.workflow_execution_update_completed_event_attributes.meta.update_id)
    return ids


@dataclass
class Snapshot:
    events: int
    update_ids: set[str]
    state: str
    audit_count: int
    head: str
    logged: int


async def snapshot(stack: Stack, rid: str) -> Snapshot:
    history = await stack.client.get_workflow_handle(rid).fetch_history()
    status = await docket.status(stack.client, rid)
    return Snapshot(
        events=len(history.events),
        update_ids=update_ids(history),
        state=status["state"],
        audit_count=status["audit"]["count"],
        head=status["audit"]["head_hash"],
        logged=len(audit_entries(stack.audit_dir, rid)),
    )


async def refused(stack: Stack, rid: str, update_id: str, cmd: Command) -> docket.CommandRefused:
    with pytest.raises(docket.CommandRefused) as info:
        await issue(stack.client, rid, cmd, update_id=update_id)
    return info.value


async def malformed(stack: Stack, rid: str, update_id: str, name: str, payload: Any) -> str:
    """Send a raw payload (what a buggy script might send); return the refusal's message."""
    handle = stack.client.get_workflow_handle(rid)
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(name, payload, id=update_id)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidCommand"
    return cause.message


async def parked(stack: Stack, name: str, slug: str, **order: Any) -> str:
    built = make_order(
        stack.sim,
        f"CMD-{uuid.uuid4().hex[:6]}-{name}",
        [f"{slug}-{name}"],
        reference=stack.reference,
        **order,
    )
    submitted_by = actor(built.officer)
    sub = await docket.submit(
        stack.client, built, signer=signer(submitted_by.id), reference=stack.reference
    )
    await wait_for(stack.client, sub.request_id, state="pending_approval")
    return sub.request_id


async def test_refused_commands_leave_no_trace(dev_stack: Stack) -> None:
    stack = dev_stack
    # A: le.van.cuong is officer *and* approver; he made this request.
    a = await parked(stack, "maker", "ignore--a", officer="le.van.cuong")
    # B: no API (tiktok) and no clock (DSA Art. 9): parked in awaiting_ack, nothing runs.
    b = await parked(stack, "manual", "remove--b", platform="tiktok", policy=NO_CLOCK_POLICY)
    await issue(
        stack.client, b, Approve(actor=actor("tran.thi.binh"), reason="Checked; deliver by hand")
    )
    await wait_for(stack.client, b, state="awaiting_ack")

    before = {a: await snapshot(stack, a), b: await snapshot(stack, b)}
    assert before[a].state == "pending_approval" and before[b].state == "awaiting_ack"

    # wrong role: an officer without the approver role
    err = await refused(
        stack, a, "bad-role", Approve(actor=actor("nguyen.van.an"), reason="Looks fine to me")
    )
    assert err.state == "pending_approval"
    assert err.allowed == ["approve", "reject", "withdraw"]
    assert "may not approve" in str(err) and "approver" in str(err)
    assert "state is 'pending_approval'; allowed now: approve, reject, withdraw" in str(err)

    # the maker approving their own request (four-eyes)
    err = await refused(
        stack, a, "bad-maker", Approve(actor=actor("le.van.cuong"), reason="I drafted it")
    )
    assert "four-eyes" in str(err) and err.state == "pending_approval"
    assert "allowed now: approve, reject, withdraw" in str(err)

    # wrong state: the platform reporting an effect on an order never sent
    effect = ItemEffect(item_id="i1", effect="removed_globally")
    err = await refused(
        stack,
        a,
        "bad-state",
        ReportEffect(actor=liaison("facebook"), reason="Removed it", effects=(effect,)),
    )
    assert "'report_effect' is not allowed in state 'pending_approval'" in str(err)
    assert err.allowed == ["approve", "reject", "withdraw"]

    # malformed payload, signed with a valid key: no reason
    message = await malformed(
        stack, a, "bad-payload", "approve", sign_raw("tran.thi.binh", a, "approve", {})
    )
    assert "invalid approve command" in message and "payload.reason" in message

    # unsigned: an actor claimed in the payload, as any Temporal client could send it
    message = await malformed(
        stack,
        a,
        "bad-unsigned",
        "approve",
        {
            "actor": {"id": "tran.thi.binh", "roles": ["approver"], "organization": "MST"},
            "reason": "Trust me",
        },
    )
    assert "unsigned" in message and "state is 'pending_approval'" in message

    # unknown item
    ghost = ItemEffect(item_id="i9", effect="removed_globally")
    err = await refused(
        stack,
        b,
        "bad-item",
        ReportEffect(actor=liaison("tiktok"), reason="Removed it", effects=(ghost,)),
    )
    assert "unknown item 'i9'" in str(err) and "items: i1" in str(err)
    assert err.state == "awaiting_ack"
    assert "allowed now: acknowledge, report_effect, withdraw" in str(err)

    # an appeal while nothing has been decided
    err = await refused(
        stack,
        b,
        "bad-appeal",
        FileAppeal(
            actor=actor("hoang.minh.uploader"),
            reason="My post",
            appellant_type="content_owner",
            target_items=("i1",),
            grounds="Lawful",
        ),
    )
    assert "'file_appeal' is not allowed in state 'awaiting_ack'" in str(err)

    # malformed effect: "restricted" without the countries
    message = await malformed(
        stack,
        b,
        "bad-effect",
        "report_effect",
        sign_raw(
            "liaison.tiktok",
            b,
            "report_effect",
            {"reason": "Restricted it", "effects": [{"item_id": "i1", "effect": "restricted"}]},
        ),
    )
    assert "restricted_in" in message

    for rid, was in before.items():
        now = await snapshot(stack, rid)
        assert now == was, rid  # no event, no update, no state change, no audit entry
        assert not {u for u in now.update_ids if u.startswith("bad-")}

    # the same checks see an accepted command: one update, new events, one more entry
    receipt = await issue(
        stack.client,
        b,
        Acknowledge(actor=liaison("tiktok"), reason="Received by e-mail"),
        update_id="good-ack",
    )
    after = await snapshot(stack, b)
    assert "good-ack" in after.update_ids
    assert after.events > before[b].events
    assert (after.state, after.audit_count, after.logged) == (
        "acknowledged",
        before[b].audit_count + 1,
        before[b].logged + 1,
    )
    assert receipt.sequence == after.audit_count and receipt.hash == after.head

    for rid in (a, b):
        await issue(stack.client, rid, Withdraw(actor=actor("le.van.cuong"), reason="Test done"))


async def test_submission_is_idempotent(dev_stack: Stack) -> None:
    stack = dev_stack
    order = make_order(
        stack.sim,
        f"IDEM-{uuid.uuid4().hex[:6]}",
        ["remove--idem"],
        reference=stack.reference,
        platform="tiktok",
        policy=NO_CLOCK_POLICY,
    )
    maker = actor(order.officer)
    first = await docket.submit(
        stack.client, order, signer=signer(maker.id), reference=stack.reference
    )
    again = await docket.submit(
        stack.client, order, signer=signer(maker.id), reference=stack.reference
    )
    assert first.created and not again.created
    assert (again.request_id, again.run_id) == (first.request_id, first.run_id)

    changed = order.model_copy(
        update={"statement_of_reasons": order.statement_of_reasons + " Amended."}
    )
    with pytest.raises(docket.SubmissionConflict) as info:
        await docket.submit(
            stack.client, changed, signer=signer(maker.id), reference=stack.reference
        )
    assert first.request_id in str(info.value) and "different request" in str(info.value)

    await wait_for(stack.client, first.request_id, state="pending_approval")
    await issue(stack.client, first.request_id, Withdraw(actor=maker, reason="Filed by mistake"))
    await docket.result(stack.client, first.request_id)
    # after it closed: the same payload still attaches (no second run), a different one conflicts
    closed = await docket.submit(
        stack.client, order, signer=signer(maker.id), reference=stack.reference
    )
    assert not closed.created and closed.run_id == first.run_id
    with pytest.raises(docket.SubmissionConflict):
        await docket.submit(
            stack.client, changed, signer=signer(maker.id), reference=stack.reference
        )
    runs = [w async for w in stack.client.list_workflows(f"WorkflowId = '{first.request_id}'")]
    assert len(runs) <= 1  # visibility may lag, but never shows a second run
    timeline = await docket.timeline(stack.client, first.request_id)
    assert [e["event"]["action"] for e in timeline] == ["submit", "withdraw"]
