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
import threading
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
    issue,
    make_order,
    running_worker,
    signer,
    wait_for,
)
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import (
    HandleQueryInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from activities.audit import AuditActivities
from activities.platform import PlatformActivities
from docket import client as docket
from docket import temporal_names as names
from docket.client import signed_submission
from docket.models import Approve, Withdraw
from docket.validation import workflow_id_for

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


async def query_until(stop: asyncio.Event, client: Client, rid: str) -> None:
    """Ask for the request's status without a pause until `stop` is set (queries make the
    worker answer between a task's activations, where the races of this module happen)."""
    while not stop.is_set():
        with contextlib.suppress(docket.DocketError):
            await docket.status(client, rid)
        await asyncio.sleep(0.005)


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
    stop = asyncio.Event()
    # build_worker's worker, with slow queries and slow local writes
    async with running_worker(
        client,
        endpoints(dev_stack.sim, dev_stack.reference, dev_stack.worker_secrets),
        tmp_path,
        task_queue=QUEUE,
        reference=dev_stack.reference,
        audit_activities=SlowLocalWrites,
        interceptors=[SlowQueries()],
    ):
        await client.start_workflow(names.WORKFLOW_NAME, request, id=rid, task_queue=QUEUE)
        await wait_for(client, rid, state="pending_approval")
        queries = [asyncio.create_task(query_until(stop, client, rid)) for _ in range(3)]
        try:
            approve = Approve(actor=actor("tran.thi.binh"), reason="Checked")
            await issue(client, rid, approve)
            result = await asyncio.wait_for(docket.result(client, rid), 120)
        finally:
            stop.set()
            await asyncio.gather(*queries)
        timeline = await docket.timeline(client, rid)  # the worker replays the closed run
        history = await client.get_workflow_handle(rid).fetch_history()

    assert result.outcome == "complied"
    # the case this test is about happened (else it proves nothing: make queries slower)
    assert await writes_handed_over_late(history), "no local write was handed over late"
    check = await check_replay(history)
    assert check.problems == []
    assert check.entries_checked == result.audit_count == len(timeline)
    logged = audit_entries(tmp_path, rid)
    assert [e["hash"] for e in timeline] == [e["hash"] for e in logged]
    assert timeline[-1]["hash"] == result.audit_head


class CommandRace:
    """Test-only choreography of the race (faults no real part produces on demand): a poll is
    in flight when a command arrives and answers once the command's handler waits for the
    main loop; a query is being answered as the old barrier (a local activity) ends."""

    def __init__(self) -> None:
        self.poll_waiting = asyncio.Event()
        self.handler_started = threading.Event()
        self.query_running = threading.Event()


RACE = CommandRace()


class _RaceInbound(WorkflowInboundInterceptor):
    async def handle_query(self, input: HandleQueryInput) -> Any:
        RACE.query_running.set()
        try:
            time.sleep(QUERY_TIME)  # holds the workflow's thread, as a busy worker would
            return await super().handle_query(input)
        finally:
            RACE.query_running.clear()

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        if input.update == "withdraw" and not workflow.unsafe.is_replaying():
            RACE.handler_started.set()
        return await super().handle_update_handler(input)


class RaceInterceptor(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _RaceInbound


class RaceBarrier(AuditActivities):
    @activity.defn(name="audit_order_barrier")
    async def order_barrier(self) -> None:
        for _ in range(200):  # ends once a query is being answered (at most 2 s)
            if RACE.query_running.is_set():
                break
            await asyncio.sleep(0.01)


class RacePolls(PlatformActivities):
    @activity.defn(name="poll_platform")
    async def poll_platform(self, platform: str, ticket: str) -> Any:
        RACE.poll_waiting.set()
        for _ in range(500):  # answers once the command waits for the main loop (at most 5 s)
            if RACE.handler_started.is_set():
                break
            await asyncio.sleep(0.01)
        return await super().poll_platform(platform, ticket)


async def test_a_command_sent_while_a_poll_is_in_flight_replays_in_the_same_order(
    dev_stack: Stack, tmp_path: Path
) -> None:
    """A command that arrives while the main loop waits for a poll waits for the main loop to
    record what the poll brought. Whatever waits in between must hand over in the same task
    live and on replay; a local activity did not (its result could come a task late when a
    query was answered meanwhile), so replay ran the command first: a nondeterminism error on
    every later replay (a `timeline` query, a worker restart), the request wedged. Now it is
    a timer, which history orders."""
    client = dev_stack.client

    async def attempt() -> tuple[str, WorkflowHistory, list[dict[str, Any]]]:
        """One request, withdrawn about when a poll is in flight (about half the time)."""
        global RACE
        RACE = CommandRace()
        order = make_order(
            dev_stack.sim,
            f"ORDER-{secrets.token_hex(4)}",
            ["ignore--a"],  # never acknowledged: the main loop keeps polling
            reference=dev_stack.reference,
        )
        rid = workflow_id_for(order.authority, order.reference)
        request = signed_submission(order, signer(order.officer)).model_dump()
        stop = asyncio.Event()
        await client.start_workflow(names.WORKFLOW_NAME, request, id=rid, task_queue=QUEUE)
        await wait_for(client, rid, state="pending_approval")
        await issue(client, rid, Approve(actor=actor("tran.thi.binh"), reason="Checked"))
        await wait_for(client, rid, state="awaiting_ack")
        queries = [asyncio.create_task(query_until(stop, client, rid)) for _ in range(3)]
        try:
            # The old barrier failed most often when the command came in just as a poll was
            # scheduled, a timing no hook controls: this lands there about half the time.
            await asyncio.sleep(0.5)
            await issue(client, rid, Withdraw(actor=actor("tran.thi.binh"), reason="Resolved"))
            await wait_for(client, rid, state="closed", timeout=120)
        finally:
            stop.set()
            await asyncio.gather(*queries)
        history = await client.get_workflow_handle(rid).fetch_history()
        timeline = await docket.timeline(client, rid)  # the worker replays the closed run
        return rid, history, timeline

    raced: list[tuple[str, WorkflowHistory, list[dict[str, Any]]]] = []
    async with running_worker(
        client,
        RacePolls(endpoints(dev_stack.sim, dev_stack.reference, dev_stack.worker_secrets)),
        tmp_path,
        task_queue=QUEUE,
        reference=dev_stack.reference,
        audit_activities=RaceBarrier,
        interceptors=[RaceInterceptor()],
    ):
        for _ in range(8):  # until one command raced a poll (P(none in 8) < 0.1 %)
            rid, history, timeline = await attempt()
            if withdraw_arrived_during_a_poll(history):
                raced.append((rid, history, timeline))
                break

    assert raced, "no command raced a poll: the test proved nothing"
    rid, history, timeline = raced[0]
    check = await check_replay(history)
    assert check.problems == []
    logged = audit_entries(tmp_path, rid)
    assert [e["hash"] for e in timeline] == [e["hash"] for e in logged]


def withdraw_arrived_during_a_poll(history: WorkflowHistory) -> bool:
    """Whether the withdraw was accepted between a poll's scheduling and its completion."""
    polls_in_flight: set[int] = set()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.activity_type.name == "poll_platform":
                polls_in_flight.add(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            polls_in_flight.discard(
                event.activity_task_completed_event_attributes.scheduled_event_id
            )
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            accepted = event.workflow_execution_update_accepted_event_attributes
            if accepted.accepted_request.input.name == "withdraw":
                return bool(polls_in_flight)
    return False
