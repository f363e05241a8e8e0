"""The audit-write activity: makes a transition's entry durable before the workflow moves on.

Entries are computed (and hash-chained) in workflow code; this activity only appends them
through `audit.writer.AuditWriter` (one segment per worker process, fsync before returning).
A retry may write an entry twice: readers drop identical duplicates. A failed write raises,
so the workflow does not advance; the failure shows in the UI as a failing activity.
Each write is measured (docket.metrics.AuditMetrics): its latency, its failures, and what the
entries it made durable record (transitions by action, SLA breaches, disagreements).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from audit.writer import AuditWriteError, AuditWriter
from docket.metrics import AuditMetrics

HEARTBEAT_EVERY = 1.0  # seconds; the workflow's heartbeat timeout is a few times this


class GroupCommit:
    """Audit writes that arrive together share one write and one fsync (group commit).

    The first write goes to the writer's thread at once; writes that arrive while it is on
    disk wait and then go together, and so on. Nothing waits on purpose: alone, a write costs
    what it did; under load, the fsyncs (and thread hops) are shared. Each caller returns
    only when its own entries are durable, and fails as it would alone (a malformed batch on
    its own; a failed write or fsync fails every batch of that group, each retried whole)."""

    def __init__(self, writer: AuditWriter) -> None:
        self.writer = writer
        self._waiting: list[tuple[list[dict[str, Any]], int, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def append(self, entries: list[dict[str, Any]], attempt: int) -> None:
        loop = asyncio.get_running_loop()
        durable: asyncio.Future[None] = loop.create_future()
        self._waiting.append((entries, attempt, durable))
        if self._flushing is None or self._flushing.done():
            self._flushing = loop.create_task(self._flush())
        await durable

    async def _flush(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            batches = [(entries, attempt) for entries, attempt, _ in group]
            try:
                results = await asyncio.to_thread(self.writer.append_batches, batches)
            except Exception as exc:  # a bug while rendering: every batch of the group fails
                results = [exc] * len(group)
            for (_, _, durable), error in zip(group, results, strict=True):
                if durable.done():  # its activity was cancelled meanwhile
                    continue
                if error is None:
                    durable.set_result(None)
                else:
                    durable.set_exception(error)


class AuditActivities:
    def __init__(self, writer: AuditWriter, metrics: AuditMetrics | None = None) -> None:
        self.writer = writer
        self.metrics = metrics or AuditMetrics()
        self.group = GroupCommit(writer)

    def activities(self) -> list[Callable[..., Any]]:
        """Every audit activity, for `Worker(activities=...)`."""
        return [self.write_entries, self.order_barrier]

    @activity.defn(name="audit_order_barrier")
    async def order_barrier(self) -> None:
        """Does nothing, on purpose. A command's Update handler runs it as a local activity
        before planning: its result arrives in a later activation of the same workflow task,
        after the main loop has handled whatever that task delivered (activity results, fired
        timers). So the entries the main loop writes with local activities take the same
        sequence numbers in every attempt of the task, whatever commands arrive meanwhile
        (see `workflows.authority_request.AuthorityRequest._handler`)."""

    @activity.defn(name="write_audit_entries")
    async def write_entries(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append `entries` durably (one write and one fsync, shared with the writes of other
        requests that arrive meanwhile: `GroupCommit`) or fail.

        Returns what was written (`event.id`, `event.sequence`, `hash` of each entry): a local
        activity's input is not kept in history, its result is, so `audit reconcile` reads a
        local write's entries from here."""
        attempt = activity.info().attempt
        started = time.perf_counter()
        write = asyncio.ensure_future(self.group.append(entries, attempt))
        # Heartbeat while a slow disk keeps us: a worker that dies mid-write is then noticed
        # within the heartbeat timeout (seconds) instead of the start-to-close timeout.
        heartbeats = not activity.info().is_local  # a local activity has no heartbeat
        while not (await asyncio.wait({write}, timeout=HEARTBEAT_EVERY))[0]:
            if heartbeats:
                activity.heartbeat()
        try:
            write.result()
        except AuditWriteError as exc:
            self.metrics.failed(activity.metric_meter(), "AuditWriteError")
            # Retryable: the writer abandons the failed segment and the next attempt opens a
            # fresh one. Never silent: every attempt's failure is on the activity in the UI.
            raise ApplicationError(
                f"audit log write failed, transition not applied: {exc}",
                type="AuditWriteError",
            ) from exc
        except ValueError as exc:  # a malformed entry is a bug: retrying cannot help
            self.metrics.failed(activity.metric_meter(), "MalformedAuditEntry")
            raise ApplicationError(
                f"malformed audit entry: {exc}", type="MalformedAuditEntry", non_retryable=True
            ) from exc
        except Exception as exc:
            self.metrics.failed(activity.metric_meter(), type(exc).__name__)
            raise
        self.metrics.written(activity.metric_meter(), entries, time.perf_counter() - started)
        return [
            {"id": e["event"]["id"], "sequence": e["event"]["sequence"], "hash": e["hash"]}
            for e in entries
        ]
