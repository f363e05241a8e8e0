"""A probe whose activity fails for good is recorded as inconclusive evidence; the request
goes on (it used to fail the whole workflow)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from docket_harness import Stack, make_order, running_worker, signer, wait_for
from temporalio.client import Client

from docket import temporal_names as names
from docket.client import signed_submission
from docket.reference import ReferenceData
from docket.validation import workflow_id_for

pytestmark = pytest.mark.integration


async def test_failed_probes_are_probe_error_evidence(
    dev_stack: Stack, task_queue: str, tmp_path: Path
) -> None:
    client: Client = dev_stack.client
    reference: ReferenceData = dev_stack.reference
    order = make_order(
        dev_stack.sim, f"PROBE-FAIL-{secrets.token_hex(4)}", ["remove--a"], reference=reference
    )
    rid = workflow_id_for(order.authority, order.reference)
    # A worker that knows no platform at all: every probe activity fails (UnknownPlatform).
    async with running_worker(client, {}, tmp_path, task_queue=task_queue, reference=reference):
        await client.start_workflow(
            names.WORKFLOW_NAME,
            signed_submission(order, signer(order.officer)).model_dump(),
            id=rid,
            task_queue=task_queue,
        )
        status = await wait_for(client, rid, state="pending_approval")
        timeline = await client.get_workflow_handle(rid).query("timeline")
        await client.get_workflow_handle(rid).terminate("test done")
    assert status["state"] == "pending_approval"
    (evidence,) = timeline[0]["docket"]["evidence"]
    assert evidence["observation"] == "probe_error"
    assert evidence["marker"] == "activity_failed"
    assert "not configured on this worker" in evidence["error"]
