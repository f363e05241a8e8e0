"""A probe whose activity fails for good is recorded as inconclusive evidence; the request
goes on (it used to fail the whole workflow)."""

from __future__ import annotations

import secrets
from pathlib import Path

from docket_harness import Stack, identities, make_order, signer, wait_for
from temporalio.client import Client

from activities.platform import PlatformActivities
from audit.writer import AuditWriter
from docket import temporal_names as names
from docket import worker_setup as docket_worker
from docket.client import signed_submission
from docket.reference import ReferenceData
from docket.validation import workflow_id_for

QUEUE = "probe-failure-test"


async def test_failed_probes_are_probe_error_evidence(dev_stack: Stack, tmp_path: Path) -> None:
    client: Client = dev_stack.client
    reference: ReferenceData = dev_stack.reference
    order = make_order(
        dev_stack.sim, f"PROBE-FAIL-{secrets.token_hex(4)}", ["remove--a"], reference=reference
    )
    rid = workflow_id_for(order.authority, order.reference)
    # A worker that knows no platform at all: every probe activity fails (UnknownPlatform).
    worker = docket_worker.build_worker(
        client,
        platforms=PlatformActivities({}),
        writer=AuditWriter(tmp_path),
        reference=lambda: reference,
        trust=lambda: identities().trust,
        task_queue=QUEUE,
    )
    async with worker:
        await client.start_workflow(
            names.WORKFLOW_NAME,
            signed_submission(order, signer(order.officer)).model_dump(),
            id=rid,
            task_queue=QUEUE,
        )
        status = await wait_for(client, rid, state="pending_approval")
        timeline = await client.get_workflow_handle(rid).query("timeline")
        await client.get_workflow_handle(rid).terminate("test done")
    assert status["state"] == "pending_approval"
    (evidence,) = timeline[0]["docket"]["evidence"]
    assert evidence["observation"] == "probe_error"
    assert evidence["marker"] == "activity_failed"
    assert "not configured on this worker" in evidence["error"]
