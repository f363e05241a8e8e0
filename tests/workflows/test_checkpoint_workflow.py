"""`AuditCheckpoint` and its Schedule on the real Temporal dev server, with our own Worker.

Two worker hosts write audit entries in separate directories (two processes, each with its own
AuditWriter); the checkpoint activity is configured with both directories as sources.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    WorkflowExecutionDescription,
    WorkflowFailureError,
)
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.checkpoint import CheckpointActivities, CheckpointSetupError
from audit.checkpoint import CheckpointConfig, Source, open_checkpoint
from audit.checkpoint_store import TreeStore
from audit.checkpoint_verify import verify_completeness
from audit.merkle import consistency_proof, verify_consistency
from audit.note import SignerKey, generate_key
from workflows.checkpoint import (
    AuditCheckpoint,
    CheckpointOutcome,
    CheckpointRequest,
    ensure_checkpoint_schedule,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import sys
sys.path[:0] = [{root!r}, {helpers!r}]
from pathlib import Path
from audit_helpers import write_log
write_log(Path(sys.argv[1]), {{sys.argv[2]: int(sys.argv[3])}}, host=sys.argv[4])
"""


def write_from_another_process(directory: Path, chain: str, n: int, host: str) -> None:
    """A separate OS process appends a chain with its own AuditWriter (as a worker would)."""
    code = WRITER.format(root=str(ROOT), helpers=str(ROOT / "tests" / "audit"))
    subprocess.run(
        [sys.executable, "-c", code, str(directory), chain, str(n), host],
        check=True,
        timeout=60,
    )


class Setup:
    def __init__(self, tmp: Path) -> None:
        self.a, self.b = tmp / "host-a" / "audit", tmp / "host-b" / "audit"
        self.config = CheckpointConfig(
            tmp / "checkpoints", (Source("host-a", self.a), Source("host-b", self.b))
        )
        self.key: SignerKey = generate_key("docket.test/audit")
        self.task_queue = f"checkpoints-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def setup(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Setup]:
    s = Setup(tmp_path)
    write_from_another_process(s.a, "req-mst-a1", 6, "host-a")
    write_from_another_process(s.b, "req-mst-b1", 4, "host-b")
    activities = CheckpointActivities(s.config, s.key)
    async with Worker(
        dev_env.client,
        task_queue=s.task_queue,
        workflows=[AuditCheckpoint],
        activities=activities.activities(),
    ):
        yield s


async def _wait_for_runs(
    client: Client, schedule_id: str, n: int, timeout: float
) -> list[WorkflowExecutionDescription]:
    """Until the schedule has started n runs that have finished; their descriptions."""
    handle = client.get_schedule_handle(schedule_id)
    deadline = time.monotonic() + timeout
    while True:
        finished = []
        for action in (await handle.describe()).info.recent_actions:
            started = action.action
            if isinstance(started, ScheduleActionExecutionStartWorkflow):
                run = client.get_workflow_handle(
                    started.workflow_id, run_id=started.first_execution_run_id
                )
                desc = await run.describe()
                if desc.close_time is not None:
                    finished.append(desc)
        if len(finished) >= n:
            return finished
        assert time.monotonic() < deadline, f"{len(finished)} of {n} scheduled runs finished"
        await asyncio.sleep(0.5)


async def test_schedule_makes_consistent_checkpoints_of_two_hosts(
    dev_env: WorkflowEnvironment, setup: Setup
) -> None:
    client = dev_env.client
    schedule_id = f"docket-audit-checkpoint-{uuid.uuid4().hex[:6]}"
    handle = await ensure_checkpoint_schedule(
        client, interval=timedelta(hours=1), task_queue=setup.task_queue, schedule_id=schedule_id
    )
    try:
        # idempotent: a second call (another worker, a redeploy) updates the same schedule
        await ensure_checkpoint_schedule(
            client,
            interval=timedelta(seconds=2),
            task_queue=setup.task_queue,
            schedule_id=schedule_id,
        )
        desc = await handle.describe()
        assert desc.schedule.spec.intervals[0].every == timedelta(seconds=2)
        ids = [s.id async for s in await client.list_schedules()]
        assert ids.count(schedule_id) == 1
        [run, *_] = await _wait_for_runs(client, schedule_id, 1, 60)
        # what the UI shows for a scheduled run: its summary, details, and the result
        assert run.workflow_type == "AuditCheckpoint"
        assert await run.static_summary() == "Sign a checkpoint of the audit log"
        assert "Merkle tree" in (await run.static_details() or "")
        done = client.get_workflow_handle(run.id, run_id=run.run_id, result_type=CheckpointOutcome)
        result = await done.result()
        assert result.signed and result.size == 10
        write_from_another_process(setup.a, "req-mst-a2", 3, "host-a")
        write_from_another_process(setup.b, "req-mst-b2", 5, "host-b")
        history = setup.config.state_dir / "checkpoints"
        deadline = time.monotonic() + 60
        while not (history / f"{18:012d}").exists():
            assert time.monotonic() < deadline, sorted(p.name for p in history.iterdir())
            await asyncio.sleep(0.5)
    finally:
        await handle.delete()
    sizes = sorted(int(p.name) for p in history.iterdir())
    assert sizes[0] == 10 and sizes[-1] == 18
    verifier = setup.key.verifier()
    with TreeStore(setup.config.tree_dir) as store:
        prev = None
        for size in sizes:
            cp = open_checkpoint((history / f"{size:012d}").read_bytes(), verifier).checkpoint
            if prev is not None:
                proof = consistency_proof(store, prev.size, cp.size)
                verify_consistency(prev.size, cp.size, prev.root, cp.root, proof)
            prev = cp
    result = verify_completeness([setup.a, setup.b], setup.config.checkpoint_path, verifier)
    assert result.ok and result.entries_checked == 18 and result.not_checkpointed == 0


async def test_on_demand_run_shows_its_result_and_keeps_the_key_out_of_history(
    dev_env: WorkflowEnvironment, setup: Setup
) -> None:
    wf_id = f"checkpoint-{uuid.uuid4().hex[:8]}"
    outcome = await dev_env.client.execute_workflow(
        AuditCheckpoint.run,
        CheckpointRequest("operator"),
        id=wf_id,
        task_queue=setup.task_queue,
    )
    assert outcome.signed and outcome.size == 10 and outcome.previous_size is None
    signed = open_checkpoint(setup.config.checkpoint_path.read_bytes(), setup.key.verifier())
    assert outcome.root_hash == signed.checkpoint.root.hex()
    handle = dev_env.client.get_workflow_handle(wf_id)
    history = (await handle.fetch_history()).to_json()
    secret = setup.key.encode().strip().split("+", 4)[4]
    seed = base64.b64decode(secret)[1:]
    assert secret not in history and seed.hex() not in history
    assert base64.b64encode(seed).decode() not in history
    assert "make_audit_checkpoint" in history


async def test_a_refused_checkpoint_fails_the_run_without_retrying(
    dev_env: WorkflowEnvironment, setup: Setup
) -> None:
    client = dev_env.client
    await client.execute_workflow(
        AuditCheckpoint.run,
        CheckpointRequest("operator"),
        id=f"checkpoint-{uuid.uuid4().hex[:8]}",
        task_queue=setup.task_queue,
    )
    # 10 leaves: the root is node(3, 0) + node(1, 4); damage the latter
    level1 = setup.config.tree_dir / "level-01.bin"
    data = bytearray(level1.read_bytes())
    data[-1] ^= 1
    level1.write_bytes(bytes(data))
    before = setup.config.checkpoint_path.read_bytes()
    with pytest.raises(WorkflowFailureError) as failed:
        await client.execute_workflow(
            AuditCheckpoint.run,
            CheckpointRequest("operator"),
            id=f"checkpoint-{uuid.uuid4().hex[:8]}",
            task_queue=setup.task_queue,
        )
    cause = failed.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError) and cause.cause.type == "CheckpointRefused"
    assert "refusing to sign" in str(cause.cause)
    assert cause.retry_state is not None and cause.retry_state.name == "NON_RETRYABLE_FAILURE"
    assert setup.config.checkpoint_path.read_bytes() == before


def test_activities_from_env_need_the_key(tmp_path: Path) -> None:
    with pytest.raises(CheckpointSetupError, match="DOCKET_LOG_KEY is not set"):
        CheckpointActivities.from_env({"DOCKET_AUDIT_DIR": str(tmp_path / "a")})
    key = generate_key("docket.test/audit")
    kf = tmp_path / "k"
    kf.write_text(key.encode())
    os.chmod(kf, 0o600)
    acts = CheckpointActivities.from_env(
        {"DOCKET_LOG_KEY": str(kf), "DOCKET_CHECKPOINT_DIR": str(tmp_path / "ck")}
    )
    assert [a.__name__ for a in acts.activities()] == ["make_checkpoint"]
