"""Replay a history and check that it rebuilds, entry for entry, what its audit writes carried.

Temporal's replay compares commands (an activity of this type was scheduled, a local activity
of this type ran), never an activity's input: a workflow that plans a *different* audit entry
on replay than it wrote live replays "green", and its `timeline` query (a closed workflow's is
answered by replaying it) then contradicts the log. This check closes that gap. It replays a
history with the worker's own sandboxed runner and an interceptor that records every
`write_audit_entries` the replayed workflow issues, and compares each replayed entry with the
write at the same place in the history:

- a regular activity's input (the whole entries),
- a local activity's marker result (`id`, `sequence`, `hash` of each entry it wrote);

and the replayed case's final timeline with everything the history's writes carried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    Replayer,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from audit.reconcile import AUDIT_ACTIVITY, local_audit_writes
from docket.worker_setup import workflow_runner
from workflows import AuthorityRequest


@dataclass
class Write:
    """One audit write: which kind, and per entry (sequence, event id, hash, entry or None)."""

    kind: str  # "activity" | "local"
    entries: list[tuple[int, str, str, dict[str, Any] | None]]
    event_id: int = 0  # in the history (0: a replayed write)

    def describe(self) -> str:
        seqs = ", ".join(f"#{s}" for s, *_ in self.entries)
        where = f" (event {self.event_id})" if self.event_id else ""
        return f"{self.kind} write of {seqs or 'nothing'}{where}"


@dataclass
class Recorded:
    writes: list[Write] = field(default_factory=list)
    timeline: list[dict[str, Any]] | None = None


# workflow id -> what the replayed workflow did (filled from inside the sandbox by the interceptor)
_RECORDED: dict[str, Recorded] = {}


def _as_write(kind: str, args: Sequence[Any]) -> Write:
    (entries,) = args
    return Write(
        kind,
        [(e["event"]["sequence"], e["event"]["id"], e["hash"], dict(e)) for e in entries],
    )


def _record(write: Write) -> None:
    _RECORDED.setdefault(workflow.info().workflow_id, Recorded()).writes.append(write)


class _Outbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        if input.activity == AUDIT_ACTIVITY:
            _record(_as_write("activity", input.args))
        return super().start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle[Any]:
        if input.activity == AUDIT_ACTIVITY:
            _record(_as_write("local", input.args))
        return super().start_local_activity(input)


class _Inbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_Outbound(outbound))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        result = await super().execute_workflow(input)
        instance = workflow.instance()
        recorded = _RECORDED.setdefault(workflow.info().workflow_id, Recorded())
        recorded.timeline = list(instance.case.timeline)
        return result


class RecordAuditWrites(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _Inbound


async def history_writes(history: WorkflowHistory) -> list[Write]:
    """Every audit write the history carries, in history order: a regular activity's input
    (when it was scheduled), a completed local activity's marker result."""
    converter = pydantic_data_converter
    writes: list[Write] = []
    for ev in history.events:
        if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = ev.activity_task_scheduled_event_attributes
            if a.activity_type.name != AUDIT_ACTIVITY:
                continue
            (entries,) = await converter.decode(list(a.input.payloads))
            writes.append(
                Write(
                    "activity",
                    [(e["event"]["sequence"], e["event"]["id"], e["hash"], e) for e in entries],
                    ev.event_id,
                )
            )
        elif ev.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            local = await local_audit_writes(converter, ev)
            if local:
                writes.append(
                    Write(
                        "local",
                        [(w.sequence, w.event_id, w.hash, None) for w in local],
                        ev.event_id,
                    )
                )
    return writes


# Events a workflow task's completion records (its commands and Update responses).
_COMPLETION_EVENTS = frozenset(
    {
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED,
        EventType.EVENT_TYPE_MARKER_RECORDED,
        EventType.EVENT_TYPE_TIMER_STARTED,
        EventType.EVENT_TYPE_TIMER_CANCELED,
        EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
    }
)


async def writes_handed_over_late(history: WorkflowHistory) -> list[int]:
    """Sequences of entries whose local write was recorded by a workflow task that asked for
    the next task at once (no new event in between): what the SDK does when it answered a
    query while the write ran and still owes the workflow the write's result. That result
    then reaches the workflow in the next task, at that task's start time; replay hands it
    over in the task that recorded it, at the write's completion time."""
    events = list(history.events)
    late: list[int] = []
    for i, ev in enumerate(events):
        if ev.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            continue
        seqs: list[int] = []
        j = i + 1
        while j < len(events) and events[j].event_type in _COMPLETION_EVENTS:
            seqs += [
                w.sequence for w in await local_audit_writes(pydantic_data_converter, events[j])
            ]
            j += 1
        nxt = events[j].event_type if j < len(events) else None
        if seqs and nxt == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            late += seqs
    return late


def _diff(replayed: dict[str, Any], written: dict[str, Any], prefix: str = "") -> list[str]:
    """The paths at which two entries differ (for a readable failure)."""
    out: list[str] = []
    for key in sorted(set(replayed) | set(written)):
        a, b = replayed.get(key, "<absent>"), written.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: replayed {a!r}, written {b!r}")
    return out


@dataclass
class ReplayCheck:
    """What replaying one history found: the writes on each side and every mismatch."""

    workflow_id: str
    replayed: list[Write]
    written: list[Write]
    timeline: list[dict[str, Any]] | None
    replay_failure: Exception | None
    problems: list[str] = field(default_factory=list)

    @property
    def entries_checked(self) -> int:
        return sum(len(w.entries) for w in self.written)


def compare(
    workflow_id: str,
    replayed: list[Write],
    written: list[Write],
    timeline: list[dict[str, Any]] | None,
    replay_failure: Exception | None,
) -> ReplayCheck:
    check = ReplayCheck(workflow_id, replayed, written, timeline, replay_failure)
    problems = check.problems
    if replay_failure is not None:
        problems.append(f"replay failed: {replay_failure}")
    if len(replayed) != len(written):
        problems.append(
            f"replay issued {len(replayed)} audit writes, the history holds {len(written)}: "
            f"replayed {[w.describe() for w in replayed]}, written "
            f"{[w.describe() for w in written]}"
        )
    for n, (r, w) in enumerate(zip(replayed, written, strict=False), start=1):
        if r.kind != w.kind or len(r.entries) != len(w.entries):
            problems.append(f"write {n}: replayed {r.describe()}, history {w.describe()}")
            continue
        for (rseq, rid, rhash, rentry), (wseq, wid, whash, wentry) in zip(
            r.entries, w.entries, strict=True
        ):
            if (rseq, rid, rhash) == (wseq, wid, whash):
                continue
            detail = ""
            if rentry is not None and wentry is not None:
                detail = "; differs at " + "; ".join(_diff(rentry, wentry))
            elif rentry is not None:
                detail = f"; replayed entry: {rentry['event']['action']} at {rentry['@timestamp']}"
            problems.append(
                f"write {n} ({w.describe()}): replayed #{rseq} {rid} hash {rhash[:16]}, "
                f"history #{wseq} {wid} hash {whash[:16]}{detail}"
            )
    written_hashes = [(s, h) for w in written for s, _, h, _ in w.entries]
    if timeline is None:
        if replay_failure is None:
            problems.append("the replayed workflow did not complete (no final timeline)")
    else:
        replayed_hashes = [(e["event"]["sequence"], e["hash"]) for e in timeline]
        if replayed_hashes != written_hashes:
            first = next(
                (
                    i
                    for i, (a, b) in enumerate(zip(replayed_hashes, written_hashes, strict=False))
                    if a != b
                ),
                min(len(replayed_hashes), len(written_hashes)),
            )
            problems.append(
                f"the replayed timeline ({len(replayed_hashes)} entries) differs from the "
                f"history's writes ({len(written_hashes)} entries) from entry #{first + 1}"
            )
    return check


async def check_replay(history: WorkflowHistory) -> ReplayCheck:
    """Replay `history` with the worker's sandboxed runner and compare every audit entry the
    replay plans with the one the history's write carried."""
    replayer = Replayer(
        workflows=[AuthorityRequest],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(sandboxed=True),  # exactly what build_worker uses
        interceptors=[RecordAuditWrites()],
    )
    _RECORDED.pop(history.workflow_id, None)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    recorded = _RECORDED.pop(history.workflow_id, Recorded())
    written = await history_writes(history)
    return compare(
        history.workflow_id, recorded.writes, written, recorded.timeline, result.replay_failure
    )
