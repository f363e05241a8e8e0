"""`AuditCheckpoint`: sign a checkpoint of the whole audit log, run by a Temporal Schedule.

The workflow only calls the `make_audit_checkpoint` activity (activities/checkpoint.py), which
runs on a worker that holds the log key (``DOCKET_LOG_KEY``, a file path: the key never enters
workflow history) and can read every audit directory. The result (tree size, root hash, new
entries) shows in the UI as the workflow's result and current details.

Wiring (the worker and the starter do this):

    worker:  Worker(..., workflows=[AuditCheckpoint, ...],
                    activities=[*CheckpointActivities.from_env().activities(), ...])
    start:   await ensure_checkpoint_schedule(client, interval=timedelta(minutes=10),
                                              task_queue=TASK_QUEUE)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from temporalio.client import (
        Client,
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleAlreadyRunningError,
        ScheduleHandle,
        ScheduleIntervalSpec,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
        ScheduleState,
        ScheduleUpdate,
        ScheduleUpdateInput,
    )

__all__ = [
    "ACTIVITY_NAME",
    "SCHEDULE_ID",
    "WORKFLOW_NAME",
    "AuditCheckpoint",
    "CheckpointOutcome",
    "CheckpointRequest",
    "checkpoint_schedule",
    "ensure_checkpoint_schedule",
]

WORKFLOW_NAME = "AuditCheckpoint"
ACTIVITY_NAME = "make_audit_checkpoint"
SCHEDULE_ID = "docket-audit-checkpoint"
# The refusal the activity raises when signing would contradict an earlier checkpoint: retrying
# cannot help, an operator must look (audit verify --checkpoint).
REFUSED = "CheckpointRefused"


@dataclass
class CheckpointRequest:
    trigger: str = "schedule"  # who asked: "schedule", "operator", ...


@dataclass
class CheckpointOutcome:
    origin: str
    size: int
    root_hash: str  # hex
    previous_size: int | None
    new_entries: int
    signed: bool
    checkpoint_file: str
    segments_read: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _details(outcome: CheckpointOutcome) -> str:
    verb = "signed" if outcome.signed else "unchanged (nothing new)"
    previous = "-" if outcome.previous_size is None else str(outcome.previous_size)
    lines = [
        f"**Checkpoint {verb}**: `{outcome.origin}` size **{outcome.size}**",
        "",
        "| | |",
        "|---|---|",
        f"| root hash | `{outcome.root_hash}` |",
        f"| previous size | {previous} |",
        f"| new entries | {outcome.new_entries} |",
        f"| segments read | {outcome.segments_read} |",
        f"| file | `{outcome.checkpoint_file}` |",
        f"| took | {outcome.seconds:.2f} s |",
    ]
    if outcome.problems:
        lines += ["", "**Problems** (see the worker log):"]
        lines += [f"- {p}" for p in outcome.problems[:20]]
    return "\n".join(lines)


@workflow.defn(name=WORKFLOW_NAME)
class AuditCheckpoint:
    """One checkpoint: the activity takes every new entry into the log's Merkle tree and signs a
    checkpoint consistent with the previous one (or refuses, and this run fails visibly)."""

    @workflow.run
    async def run(self, request: CheckpointRequest) -> CheckpointOutcome:
        workflow.set_current_details(f"Making a checkpoint (trigger: {request.trigger}) ...")
        outcome: CheckpointOutcome = await workflow.execute_activity(
            ACTIVITY_NAME,
            request,
            result_type=CheckpointOutcome,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=5),
                maximum_attempts=5,
                non_retryable_error_types=[REFUSED, "CheckpointSetupError"],
            ),
            summary="Take new audit entries into the log's Merkle tree and sign a checkpoint",
        )
        workflow.set_current_details(_details(outcome))
        return outcome


def checkpoint_schedule(
    *,
    interval: timedelta,
    task_queue: str,
    schedule_id: str = SCHEDULE_ID,
    paused: bool = False,
) -> Schedule:
    """The Schedule that starts `AuditCheckpoint` every ``interval`` (one at a time)."""
    if interval < timedelta(seconds=1):
        raise ValueError(f"checkpoint interval must be at least 1 s, got {interval}")
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW_NAME,
            CheckpointRequest("schedule"),
            id=f"{schedule_id}-run",
            task_queue=task_queue,
            execution_timeout=timedelta(hours=2),
            static_summary="Sign a checkpoint of the audit log",
            static_details=(
                "Takes every new complete audit entry into the log-wide Merkle tree and signs "
                "a C2SP checkpoint consistent with the previous one (docs/checkpoints.md)."
            ),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        # A slow run is never overlapped; a missed run is not made up for (the next one takes
        # everything new anyway).
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP, catchup_window=max(interval, timedelta(minutes=1))
        ),
        state=ScheduleState(note=f"Docket audit checkpoints every {interval}", paused=paused),
    )


async def ensure_checkpoint_schedule(
    client: Client,
    *,
    interval: timedelta,
    task_queue: str,
    schedule_id: str = SCHEDULE_ID,
    paused: bool = False,
) -> ScheduleHandle:
    """Create the checkpoint Schedule, or update it to these settings if it exists (idempotent:
    every worker or deploy may call it)."""
    schedule = checkpoint_schedule(
        interval=interval, task_queue=task_queue, schedule_id=schedule_id, paused=paused
    )
    try:
        return await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(schedule_id)

        def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await handle.update(update)
        return handle
