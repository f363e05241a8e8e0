"""Replay plans every audit entry a history wrote, even when the SDK hands a local write's result
over a workflow task late.

While a local activity runs, a query the worker answers makes the SDK complete the workflow task
and ask for another at once; the local activity's result then reaches the workflow in that next
task, at that task's start time. Replay hands it over in the task that recorded its marker, at
the write's completion time. Before `CLOCK_FROM_HISTORY_PATCH`, entries whose time was read in
that activation (`verified`, a re-check due at once, the end of the monitoring window, a command
after its ordering barrier) came out different on replay: a closed request's `timeline`, answered
by replaying it, differed from its log (docs/design-notes.md, "Times from history, not from a
local activity's task").

Here the worker answers queries slowly (a test interceptor: 0.3 s per query) and its local writes
take 20 ms, faults no real worker produces on demand, while a client queries the request non-stop,
so that results of local writes are handed over late; the request must still replay entry for
entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from audit_replay import check_replay, writes_handed_over_late
from docket_harness import (
    Stack,
    actor,
    audit_entries,
    endpoints,
    identities,
    issue,
    make_order,
    signer,
    wait_for,
)
from temporalio import activity
from temporalio.worker import (
    HandleQueryInput,
    Interceptor,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from activities.audit import AuditActivities
from activities.config import DeploymentActivities
from activities.platform import PlatformActivities
from audit.writer import AuditWriter
from docket import client as docket
from docket import temporal_names as names
from docket.client import signed_submission
from docket.models import Approve
from docket.validation import workflow_id_for
from docket.worker_setup import workflow_runner
from workflows import AuthorityRequest

QUEUE = "replay-determinism-test"

pytestmark = [pytest.mark.integration, pytest.mark.slow(12)]
QUERY_TIME = 0.3  # seconds the worker takes to answer a query: far longer than a local write
WRITE_TIME = 0.02  # seconds a local write takes (a slow disk): a query may start meanwhile


class SlowLocalWrites(AuditActivities):
    @activity.defn(name="write_audit_entries")
    async def write_entries(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if activity.info().is_local:
            await asyncio.sleep(WRITE_TIME)
        return await super().write_entries(entries)


class _SlowQueryInbound(WorkflowInboundInterceptor):
    async def handle_query(self, input: HandleQueryInput) -> Any:
        time.sleep(QUERY_TIME)  # holds the workflow's thread, as a busy worker would
        return await super().handle_query(input)


class SlowQueries(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _SlowQueryInbound


async def test_local_writes_handed_over_late_replay_entry_for_entry(
    dev_stack: Stack, tmp_path: Path
) -> None:
    client = dev_stack.client
    order = make_order(
        dev_stack.sim,
        f"REPLAY-{secrets.token_hex(4)}",
        ["remove.marker--post"],
        reference=dev_stack.reference,
    )
    request = signed_submission(order, signer(order.officer)).model_dump()
    rid = workflow_id_for(order.authority, order.reference)
    platforms = PlatformActivities(
        endpoints(dev_stack.sim, dev_stack.reference, dev_stack.worker_secrets)
    )
    writer = AuditWriter(tmp_path)
    audit = SlowLocalWrites(writer)
    # build_worker's worker, with slow queries and slow local writes
    worker = Worker(
        client,
        task_queue=QUEUE,
        workflows=[AuthorityRequest],
        activities=[
            *audit.activities(),
            *platforms.activities(),
            *DeploymentActivities(
                lambda: dev_stack.reference, lambda: identities().trust, client=client
            ).activities(),
        ],
        workflow_runner=workflow_runner(sandboxed=True),
        interceptors=[SlowQueries()],
    )
    stop = asyncio.Event()

    async def query_non_stop() -> None:
        while not stop.is_set():
            with contextlib.suppress(docket.DocketError):
                await docket.status(client, rid)
            await asyncio.sleep(0.005)

    try:
        async with worker:
            await client.start_workflow(names.WORKFLOW_NAME, request, id=rid, task_queue=QUEUE)
            await wait_for(client, rid, state="pending_approval")
            queries = [asyncio.create_task(query_non_stop()) for _ in range(3)]
            try:
                approve = Approve(actor=actor("tran.thi.binh"), reason="Checked")
                await issue(client, rid, approve)
                result = await asyncio.wait_for(docket.result(client, rid), 120)
            finally:
                stop.set()
                await asyncio.gather(*queries)
            timeline = await docket.timeline(client, rid)  # the worker replays the closed run
            history = await client.get_workflow_handle(rid).fetch_history()
    finally:
        await platforms.aclose()
        writer.close()

    assert result.outcome == "complied"
    # the case this test is about happened (else it proves nothing: make queries slower)
    assert await writes_handed_over_late(history), "no local write was handed over late"
    check = await check_replay(history)
    assert check.problems == []
    assert check.entries_checked == result.audit_count == len(timeline)
    logged = audit_entries(tmp_path, rid)
    assert [e["hash"] for e in timeline] == [e["hash"] for e in logged]
    assert timeline[-1]["hash"] == result.audit_head
