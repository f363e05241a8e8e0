"""Roles and identity on the real dev server: each trigger only for the roles the actor's
credential grants, four-eyes, the appeal reviewer is never an earlier decider; a refusal
leaves no history event, no audit entry and no state change; the proven identity is in the
audit entry (with the signature) and in the history (the signed Update and the caller's
client identity). The roles a test's command object claims are ignored: only the
credential counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from docket_harness import (
    DEMO_POLICY,
    PLATFORM,
    UPDATE_EVENTS,
    actor,
    count_events,
    endpoint,
    failed_tasks,
    fresh_order,
    history,
    issue,
    running_worker,
    signer,
    submit,
    wait_for,
)
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from docket import client as docket
from docket.lifecycle import Role
from docket.models import Approve, Command, DecideAppeal, FileAppeal, Withdraw
from docket.reference import default_reference
from platform_sim.server import PlatformSimulator

pytestmark = pytest.mark.integration


async def refused(client: Client, rid: str, command: Command, *needles: str) -> None:
    """The command is refused with a clear message and leaves no trace."""
    events = await history(client, rid)
    before = (len(events), count_events(events, *UPDATE_EVENTS))
    status = await docket.status(client, rid)
    with pytest.raises(docket.CommandRefused) as info:
        await issue(client, rid, command)
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    assert f"state is {status['state']!r}" in message
    after = await history(client, rid)
    # No Update event at all (the validator rejected it before it was admitted) ...
    assert count_events(after, *UPDATE_EVENTS) == before[1]
    # ... no audit entry and no state change.
    now = await docket.status(client, rid)
    assert now["audit"] == status["audit"] and now["state"] == status["state"]


def update_payloads(events: list[Any], name: str) -> list[tuple[str, bytes]]:
    """(caller identity, raw payload) of every accepted Update `name` in the history."""
    out = []
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            req = e.workflow_execution_update_accepted_event_attributes.accepted_request
            if req.input.name == name:
                out.append((req.meta.identity, b"".join(p.data for p in req.input.args.payloads)))
    return out


async def test_roles_four_eyes_and_identity(
    dev_client: Client,
    simulator: PlatformSimulator,
    facebook_secret: str,
    audit_dir: Path,
    task_queue: str,
) -> None:
    ref = default_reference()
    eps = {PLATFORM: endpoint(ref, simulator.base_url(PLATFORM), facebook_secret)}
    binh = actor("tran.thi.binh")  # approver (MIC's credential)
    async with running_worker(dev_client, eps, audit_dir, task_queue=task_queue):
        rid = await submit(
            dev_client, fresh_order(simulator, ["remove--roles"], label="REL", policy=DEMO_POLICY)
        )
        # maker with both roles: the four-eyes rule, on its own request
        own = await submit(
            dev_client,
            fresh_order(
                simulator, ["remove--own"], label="REL", policy=DEMO_POLICY, officer="le.van.cuong"
            ),
        )
        await wait_for(dev_client, rid, state="pending_approval")
        await wait_for(dev_client, own, state="pending_approval")

        # a liaison claiming the approver role: the credential grants platform_liaison only,
        # and Meta's credentials do not act for the ministry's requests at all
        posing = actor("liaison.facebook").model_copy(update={"roles": (Role.APPROVER,)})
        await refused(
            dev_client,
            rid,
            Approve(actor=posing, reason="Looks fine to us"),
            "liaison.facebook (platform_liaison) may not approve",
            "needs one of the roles: approver",
        )
        await refused(
            dev_client,
            rid,
            Approve(actor=actor("nguyen.van.an"), reason="I drafted it, it is urgent"),
            "may not approve",
        )
        await refused(
            dev_client,
            own,
            Approve(actor=actor("le.van.cuong"), reason="I drafted it and I approve it"),
            "le.van.cuong made this request and cannot approve it",
            "four-eyes",
        )
        await refused(
            dev_client,
            rid,
            Withdraw(actor=actor("auditor.state"), reason="Auditors only read"),
            "auditor.state (auditor) may not withdraw",
        )

        # The approver acts through a client that carries their identity.
        as_binh = await Client.connect(
            dev_client.service_client.config.target_host,
            data_converter=dev_client.data_converter,
            identity=binh.id,
        )
        receipt = await issue(as_binh, rid, Approve(actor=binh, reason="Legal basis checked"))
        assert receipt.state == "delivering"
        entry = (await docket.timeline(dev_client, rid))[receipt.sequence - 1]
        assert entry["event"]["action"] == "approve"
        assert entry["user"] == {"id": "tran.thi.binh", "roles": ["approver"]}
        assert entry["organization"]["name"] == binh.organization
        signed = entry["docket"]["signed"]
        assert json.loads(signed["statement"])["actor"] == "tran.thi.binh"
        assert signed["signature"].startswith("-----BEGIN SSH SIGNATURE-----")
        assert signed["key_fingerprint"] == signer("tran.thi.binh").key_fingerprint
        assert signed["organization_id"] == "mic"
        [(identity, payload)] = update_payloads(await history(dev_client, rid), "approve")
        assert identity == "tran.thi.binh"
        assert b"tran.thi.binh" in payload and b"SSH SIGNATURE" in payload

        await wait_for(dev_client, rid, state="monitoring", timeout=60)
        # a board member files an appeal as a content owner ...
        board_member = actor("reviewer.appellant")
        appeal = await issue(
            dev_client,
            rid,
            FileAppeal(
                actor=board_member,
                reason="The post is lawful",
                appellant_type="content_owner",
                target_items=("i1",),
                grounds="Bài viết phản ánh sự việc có thật.",
            ),
        )
        assert appeal.state == "appealed"
        # ... and may not decide it, though their credential grants appeal_reviewer;
        await refused(
            dev_client,
            rid,
            DecideAppeal(actor=board_member, reason="My own appeal", outcome="reversed"),
            "reviewer.appellant took part in the decision under appeal",
        )
        # the approver may not decide it (no reviewer role), nor the platform liaison.
        await refused(
            dev_client,
            rid,
            DecideAppeal(actor=binh, reason="I know this case", outcome="upheld"),
            "may not decide_appeal",
            "appeal_reviewer",
        )
        await refused(
            dev_client,
            rid,
            DecideAppeal(actor=actor("liaison.facebook"), reason="Upheld", outcome="upheld"),
            "liaison.facebook (platform_liaison) may not decide_appeal",
        )
        decided = await issue(
            dev_client,
            rid,
            DecideAppeal(actor=actor("pham.thi.dung"), reason="Removal upheld", outcome="upheld"),
        )
        assert decided.state == "monitoring"
        entry = (await docket.timeline(dev_client, rid))[decided.sequence - 1]
        assert entry["user"]["id"] == "pham.thi.dung"
        assert entry["docket"]["appeal"]["reviewer"] == "pham.thi.dung"
        events = await history(dev_client, rid)
        [(_, payload)] = update_payloads(events, "decide_appeal")
        assert b"pham.thi.dung" in payload
        assert failed_tasks(events) == []
        await issue(dev_client, own, Withdraw(actor=actor("le.van.cuong"), reason="Test done"))
