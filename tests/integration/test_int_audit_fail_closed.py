"""Fail closed under Temporal: while the audit log cannot be written (ENOSPC injected into
the real writer), a command does not advance the request and returns no receipt, and a
transition of the main loop (written by a local activity) is not applied and nothing follows
it; once the disk recovers, both complete and the log verifies."""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from docket_harness import Stack, actor, issue, make_order, running_worker, signer, wait_for
from temporalio.client import Client

from audit.entry import AuditAnchor
from audit.verify import verify_paths
from audit.writer import AuditWriter
from docket import client as docket
from docket import temporal_names as names
from docket.client import signed_submission
from docket.models import Approve
from docket.validation import workflow_id_for

pytestmark = [pytest.mark.integration, pytest.mark.slow(20)]


class FullDisk:
    """os.write that fails with ENOSPC while `full` is set, for every write or only for those
    containing `only` (a fault a real disk will not produce on demand)."""

    def __init__(self, only: bytes = b"") -> None:
        self.full = False
        self.only = only
        self.refused = 0

    def __call__(self, fd: int, data: bytes) -> int:
        if self.full and self.only in data:
            self.refused += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)


def new_request(stack: Stack, prefix: str) -> tuple[str, dict[str, Any]]:
    """A fresh one-item request (the simulator removes the item), not yet started: its id
    and its start input."""
    order = make_order(
        stack.sim, f"{prefix}-{secrets.token_hex(4)}", ["remove--a"], reference=stack.reference
    )
    return workflow_id_for(order.authority, order.reference), signed_submission(
        order, signer(order.officer)
    ).model_dump()


async def test_no_transition_without_its_audit_entry(
    dev_stack: Stack, task_queue: str, tmp_path: Path
) -> None:
    client: Client = dev_stack.client
    rid, request = new_request(dev_stack, "FAIL-CLOSED")
    disk = FullDisk()
    async with running_worker(
        client,
        {},  # no platform: never reached, the request stays before delivery
        AuditWriter(tmp_path, write=disk),
        task_queue=task_queue,
        reference=dev_stack.reference,
    ):
        await client.start_workflow(names.WORKFLOW_NAME, request, id=rid, task_queue=task_queue)
        before = await wait_for(client, rid, state="pending_approval")

        disk.full = True
        approve = Approve(actor=actor("tran.thi.binh"), reason="Checked while the disk is full")
        sent = asyncio.create_task(issue(client, rid, approve))
        while disk.refused < 2:  # the write was attempted and retried, and failed each time
            await asyncio.sleep(0.2)
        held = await docket.status(client, rid)
        assert not sent.done()  # no receipt without a durable entry
        assert held["state"] == "pending_approval"
        assert held["audit"] == before["audit"]

        disk.full = False
        receipt = await asyncio.wait_for(sent, timeout=60)
        assert receipt.state == "delivering"
        assert receipt.sequence == before["audit"]["count"] + 1
        # this worker knows no platform, so delivery fails next (and is recorded)
        final = await wait_for(client, rid, state="delivery_failed")
        timeline = await docket.timeline(client, rid)
        await client.get_workflow_handle(rid).terminate("test done")
    assert [e["event"]["action"] for e in timeline] == ["submit", "approve", "delivery_failed"]
    assert timeline[1]["hash"] == receipt.hash
    anchor = AuditAnchor(rid, final["audit"]["count"], final["audit"]["head_hash"])
    result = verify_paths([tmp_path], anchors=[anchor])
    assert result.ok, [f.render() for f in result.findings]


async def test_no_local_write_no_transition_and_nothing_after(
    dev_stack: Stack, task_queue: str, tmp_path: Path
) -> None:
    """`delivered` is written by a local activity: while it fails, the request stays in
    `delivering`, the count does not move and the platform is not polled."""
    client: Client = dev_stack.client
    rid, request = new_request(dev_stack, "FAIL-CLOSED-LOCAL")
    disk = FullDisk(only=b'"action":"delivered"')
    disk.full = True
    async with running_worker(
        client,
        dev_stack.endpoints(),
        AuditWriter(tmp_path, write=disk),
        task_queue=task_queue,
        reference=dev_stack.reference,
    ):
        await client.start_workflow(names.WORKFLOW_NAME, request, id=rid, task_queue=task_queue)
        await wait_for(client, rid, state="pending_approval")
        approve = Approve(actor=actor("tran.thi.binh"), reason="Checked (test)")
        receipt = await issue(client, rid, approve)
        assert receipt.state == "delivering"
        while disk.refused < 2:  # the local write was attempted and retried, failing each time
            await asyncio.sleep(0.2)
        held = await docket.status(client, rid)
        assert held["state"] == "delivering"
        assert held["audit"]["count"] == receipt.sequence == 2
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            async for e in client.get_workflow_handle(rid).fetch_history_events()
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        assert "poll_platform" not in scheduled, scheduled

        disk.full = False
        final = await wait_for(client, rid, action="delivered", timeout=60)
        timeline = await docket.timeline(client, rid)
        await client.get_workflow_handle(rid).terminate("test done")
    assert [e["event"]["action"] for e in timeline][:3] == ["submit", "approve", "delivered"]
    anchor = AuditAnchor(rid, final["audit"]["count"], final["audit"]["head_hash"])
    # read while the request ran: the disk held `delivered` past the 8 s respond deadline, so
    # `sla_expired` may follow before the run is terminated (the log grows past the anchor)
    result = verify_paths([tmp_path], anchors=[anchor], anchors_are_prefixes=True)
    assert result.ok, [f.render() for f in result.findings]
