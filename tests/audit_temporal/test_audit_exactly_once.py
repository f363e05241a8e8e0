"""Exactly once under Temporal: on the real dev server, simulator and worker, an audit write
that fails after writing, and a worker process killed right after a durable write, still leave
exactly one entry per event.id after merging; verify (with the workflow's anchors) and reconcile
are clean; merging the segments twice changes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from docket_harness import (
    KILLS,
    QUICK_CLOSE_POLICY,
    KilledRun,
    KilledRuns,
    Stack,
    anchors_of,
    approve,
    audit_entries,
    copies_by_id,
    fresh_order,
    fresh_task_queue,
    hashes_by_id,
    result_of,
    running_worker,
    submit,
)
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.audit import AuditActivities
from audit.reconcile import fetch_facts, reconcile
from audit.verify import VerifyResult, verify_paths

pytestmark = [pytest.mark.integration, pytest.mark.slow(40)]


@pytest.fixture(autouse=True, scope="module")
async def all_kills_at_once(killed_runs: KilledRuns) -> None:
    """Every killed-worker run starts with this file's first test: their waits overlap."""
    killed_runs.start(*KILLS)


class FailAfterWrite(AuditActivities):
    """Writes (durably) and then fails its first attempt: the retry writes the same entries."""

    @activity.defn(name="write_audit_entries")
    async def write_entries(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        written = await super().write_entries(entries)
        if activity.info().attempt == 1:
            raise ApplicationError("injected: failed after the entries were durable")
        return written


def assert_one_per_event_id(audit_dir: Path | list[Path], rid: str, count: int) -> None:
    by_id = hashes_by_id(audit_dir, rid)
    assert sorted(by_id) == sorted(f"{rid}:{n}" for n in range(1, count + 1))
    assert all(len(hashes) == 1 for hashes in by_id.values()), by_id


async def test_audit_write_fails_after_writing(dev_stack: Stack, tmp_path: Path) -> None:
    client, audit_dir, queue = dev_stack.client, tmp_path / "audit", fresh_task_queue("rc")
    order = fresh_order(
        dev_stack.sim, ["remove.marker--fail-after-write"], label="rc", policy=QUICK_CLOSE_POLICY
    )
    async with running_worker(
        client,
        dev_stack.endpoints(),
        audit_dir,
        task_queue=queue,
        reference=dev_stack.reference,
        audit_activities=FailAfterWrite,
    ):
        rid = await submit(client, order, dev_stack.reference, task_queue=queue)
        await approve(client, rid)
        result = await result_of(client, rid)
        anchors = await anchors_of(client, rid)
    assert result.outcome == "complied"
    n = result.audit_count
    assert n >= 5
    # every entry was written twice (first attempt + retry), identically
    assert set(copies_by_id(audit_dir, rid).values()) == {2}
    assert_one_per_event_id(audit_dir, rid, n)

    verified = verify_paths([audit_dir], anchors=anchors)
    assert verified.findings == []
    assert verified.entries == n
    assert verified.duplicates_dropped == n
    assert verified.anchors_checked == 2

    rec = await reconcile(client, [str(audit_dir)], workflow_ids=[rid])
    assert rec.findings == [], rec.render_text()
    assert rec.notes == []
    assert rec.history_entries == rec.matched_entries == n
    # the history shows attempt 2 for every audit write (one poll may have written two entries)
    writes = {w.scheduled_event_id for w in (await fetch_facts(client, rid)).writes}
    assert rec.retried_writes == len(writes) <= n
    assert rec.anchors_checked == 2
    assert dict(rec.by_status) == {"completed": 1}


def assert_rewritten_identically(run: KilledRun) -> VerifyResult:
    """The killed write and its re-run wrote the same entry: two copies of it, one distinct
    entry per event.id, and the log verifies against the workflow's anchors."""
    rid = run.request_id
    assert copies_by_id(run.audit_dir, rid)[run.killed_event_id] == 2
    assert_one_per_event_id(run.audit_dir, rid, run.result.audit_count)
    verified = verify_paths([run.audit_dir], anchors=run.anchors)
    assert verified.findings == [], verified.findings
    return verified


async def test_worker_killed_after_durable_write(killed_run: KilledRun, dev_client: Client) -> None:
    """`delivered` is written by a local activity (its time comes from history): the kill
    leaves the workflow task unfinished, its next attempt writes the identical entry."""
    run = killed_run
    rid, n = run.request_id, run.result.audit_count
    print(
        f"\nkilled after {run.killed_event_id}; the request closed {run.kill_to_close_seconds:.1f}"
        " s after the kill (the audit activity's start_to_close_timeout is 30 s)"
    )
    assert run.result.outcome == "complied", run.logs
    assert run.killed_event_id == f"{rid}:3"  # submit, approve, delivered

    # Before approval: a running workflow, checked as a prefix: clean.
    assert run.before_kill.findings == [] and run.before_kill.notes == []
    assert dict(run.before_kill.by_status) == {"running": 1}
    # After the kill: the entry is durable but its task has not completed: informational.
    assert run.after_kill.findings == [], run.after_kill.render_text()
    assert [(x.code, x.sequence) for x in run.after_kill.notes] == [("in_flight_entry", 3)]

    # Two worker processes wrote; the killed one's write of #3 and the retry's are identical.
    segments = sorted(run.audit_dir.glob("*.jsonl"))
    assert len(segments) >= 2
    verified = assert_rewritten_identically(run)
    assert verified.duplicates_dropped >= 1
    assert verified.entries == n

    rec = await reconcile(dev_client, [str(run.audit_dir)], workflow_ids=[rid])
    assert rec.findings == [], rec.render_text()
    assert rec.notes == []
    assert rec.anchors_checked == 2
    assert rec.history_entries == rec.matched_entries == n


async def test_worker_killed_after_an_updates_durable_write(
    killed_runs: KilledRuns, dev_client: Client
) -> None:
    """`approve` comes from an Update, stamped with workflow.now(): a regular activity writes
    it, so the retry after the kill is a later attempt of the same activity, same input."""
    run = await killed_runs.get("approve")
    rid = run.request_id
    assert run.result.outcome == "complied", run.logs
    assert run.killed_event_id == f"{rid}:2"
    assert_rewritten_identically(run)
    rec = await reconcile(dev_client, [str(run.audit_dir)], workflow_ids=[rid])
    assert rec.findings == [] and rec.notes == [], rec.render_text()
    assert rec.retried_writes >= 1  # the history shows the write of #2 on a later attempt


async def test_command_arriving_while_a_local_write_is_unfinished(
    killed_runs: KilledRuns, dev_client: Client
) -> None:
    """The worker dies right after the local write of the platform's `acknowledge` (from a
    poll); a `withdraw` reaches the server before the task runs again. The re-run task holds
    both the poll's answer and the command: it must record the platform's report first (the
    same #4 already in the log), and only then the command, or the log would hold two
    different entries #4."""
    run = await killed_runs.get("acknowledge, then a command")
    rid = run.request_id
    assert run.killed_event_id == f"{rid}:4", run.logs  # submit, approve, delivered, ack
    assert_rewritten_identically(run)
    actions = [e["event"]["action"] for e in audit_entries(run.audit_dir, rid)]
    assert actions[3] == "acknowledge", actions
    # The command ran after the platform's report: applied, or refused naming the state.
    assert run.command_outcome is not None
    if run.command_outcome.startswith("applied"):
        assert "withdraw" in actions[4:] and run.result.outcome == "withdrawn"
    else:
        assert "withdraw" not in actions and "state is" in run.command_outcome
    rec = await reconcile(dev_client, [str(run.audit_dir)], workflow_ids=[rid])
    assert rec.findings == [], rec.render_text()


async def test_worker_killed_after_one_write_of_two_transitions(
    killed_runs: KilledRuns, dev_client: Client
) -> None:
    """The platform acknowledged and decided before the first poll: `acknowledge` and
    `report_effect` are written by one local activity. The worker dies right after that
    write; the task's next attempt plans and writes the identical pair."""
    run = await killed_runs.get("acknowledge and report_effect in one write")
    rid = run.request_id
    assert run.result.outcome == "complied", run.logs
    assert run.killed_event_id == f"{rid}:4", run.logs  # submit, approve, delivered, ack
    # what the killed worker left: both entries of the one write, none committed yet
    assert [(x.code, x.sequence) for x in run.after_kill.notes] == [
        ("in_flight_entry", 4),
        ("in_flight_entry", 5),
    ], run.after_kill.render_text()
    assert_rewritten_identically(run)
    actions = [e["event"]["action"] for e in audit_entries(run.audit_dir, rid)]
    assert actions[3:5] == ["acknowledge", "report_effect"], actions
    rec = await reconcile(dev_client, [str(run.audit_dir)], workflow_ids=[rid])
    assert rec.findings == [] and rec.notes == [], rec.render_text()


async def test_merging_segments_twice_gives_the_same_result(
    killed_run: KilledRun, dev_client: Client, tmp_path: Path
) -> None:
    run = killed_run
    copy = tmp_path / "copy"
    shutil.copytree(run.audit_dir, copy)
    once = verify_paths([run.audit_dir], anchors=run.anchors)
    twice = verify_paths([run.audit_dir, copy], anchors=run.anchors)
    reversed_order = verify_paths([copy, run.audit_dir], anchors=run.anchors)
    for merged in (twice, reversed_order):
        assert merged.findings == []
        assert merged.entries == once.entries
        assert merged.chains == once.chains
        assert merged.heads == once.heads
        assert merged.files == 2 * once.files
        # every line of the copy is an identical duplicate of one of the original's lines
        assert merged.duplicates_dropped == once.duplicates_dropped + once.lines
    assert_one_per_event_id([run.audit_dir, copy], run.request_id, run.result.audit_count)

    rec_once = await reconcile(dev_client, [str(run.audit_dir)], workflow_ids=[run.request_id])
    rec_twice = await reconcile(
        dev_client, [str(run.audit_dir), str(copy)], workflow_ids=[run.request_id]
    )
    assert rec_once.findings == rec_twice.findings == []
    assert rec_once.matched_entries == rec_twice.matched_entries == run.result.audit_count
