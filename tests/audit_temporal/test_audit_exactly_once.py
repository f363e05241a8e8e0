"""Exactly once under Temporal: on the real dev server, simulator and worker, an audit write
that fails after writing, and a worker process killed right after a durable write, still leave
exactly one entry per event.id after merging; verify (with the workflow's anchors) and reconcile
are clean; merging the segments twice changes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.audit import AuditActivities
from audit.reconcile import reconcile
from audit.verify import verify_paths
from audit_temporal.reconcile_helpers import (
    KilledRun,
    Stack,
    anchors_of,
    approve,
    copies_by_id,
    entries_by_id,
    in_process_worker,
    result_of,
    submit,
)

pytestmark = pytest.mark.integration


class FailAfterWrite(AuditActivities):
    """Writes (durably) and then fails its first attempt: the retry writes the same entries."""

    @activity.defn(name="write_audit_entries")
    async def write_entries(self, entries: list[dict[str, Any]]) -> None:
        await super().write_entries(entries)
        if activity.info().attempt == 1:
            raise ApplicationError("injected: failed after the entries were durable")


def assert_one_per_event_id(audit_dir: Path | list[Path], rid: str, count: int) -> None:
    by_id = entries_by_id(audit_dir, rid)
    assert sorted(by_id) == sorted(f"{rid}:{n}" for n in range(1, count + 1))
    assert all(len(hashes) == 1 for hashes in by_id.values()), by_id


async def test_audit_write_fails_after_writing(
    rc_stack: Stack, rc_client: Client, tmp_path: Path
) -> None:
    audit_dir = tmp_path / "audit"
    async with in_process_worker(rc_client, rc_stack, audit_dir, FailAfterWrite):
        rid = await submit(rc_client, rc_stack, "fail-after-write")
        await approve(rc_client, rc_stack, rid)
        result = await result_of(rc_client, rid)
        anchors = await anchors_of(rc_client, rid)
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

    rec = await reconcile(rc_client, [str(audit_dir)], workflow_ids=[rid])
    assert rec.findings == [], rec.render_text()
    assert rec.notes == []
    assert rec.history_entries == rec.matched_entries == n
    assert rec.retried_writes == n  # the history shows attempt 2 for every audit write
    assert rec.anchors_checked == 2
    assert dict(rec.by_status) == {"completed": 1}


async def test_worker_killed_after_durable_write(killed_run: KilledRun, rc_client: Client) -> None:
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
    # After the kill: the entry is durable but its activity has not completed: informational.
    assert run.after_kill.findings == [], run.after_kill.render_text()
    assert [(x.code, x.sequence) for x in run.after_kill.notes] == [("in_flight_entry", 3)]

    # Two worker processes wrote; the killed one's write of #3 and the retry's are identical.
    segments = sorted(run.audit_dir.glob("*.jsonl"))
    assert len(segments) >= 2
    assert copies_by_id(run.audit_dir, rid)[run.killed_event_id] == 2
    assert_one_per_event_id(run.audit_dir, rid, n)

    verified = verify_paths([run.audit_dir], anchors=run.anchors)
    assert verified.findings == []
    assert verified.duplicates_dropped >= 1
    assert verified.entries == n

    rec = await reconcile(rc_client, [str(run.audit_dir)], workflow_ids=[rid])
    assert rec.findings == [], rec.render_text()
    assert rec.notes == []
    assert rec.anchors_checked == 2
    assert rec.retried_writes >= 1  # the write of #3 completed on a later attempt
    assert rec.history_entries == rec.matched_entries == n


async def test_merging_segments_twice_gives_the_same_result(
    killed_run: KilledRun, rc_client: Client, tmp_path: Path
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

    rec_once = await reconcile(rc_client, [str(run.audit_dir)], workflow_ids=[run.request_id])
    rec_twice = await reconcile(
        rc_client, [str(run.audit_dir), str(copy)], workflow_ids=[run.request_id]
    )
    assert rec_once.findings == rec_twice.findings == []
    assert rec_once.matched_entries == rec_twice.matched_entries == run.result.audit_count
