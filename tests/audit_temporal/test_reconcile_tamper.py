"""reconcile catches what the log alone cannot show, on a real run's log (the killed-worker run):
a deleted entry, a forged extra entry, a conflicting forged copy, a rewritten-and-rehashed
chain, a chain Temporal does not know; and the CLI's exit codes and JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from docket_harness import ROOT, KilledRun, Stack
from temporalio.client import Client

from audit.chain import entry_hash, hashed_body
from audit.entry import ChainHead, build_entry
from audit.reconcile import ReconcileResult, reconcile
from audit.verify import verify_paths
from audit.writer import render_line

pytestmark = [pytest.mark.integration, pytest.mark.slow(30)]


def copy_log(run: KilledRun, tmp_path: Path) -> Path:
    target = tmp_path / "audit"
    shutil.copytree(run.audit_dir, target)
    return target


def chain(audit_dir: Path, rid: str) -> list[dict[str, Any]]:
    """The chain's distinct entries in order (first copy of each event.id)."""
    seen: dict[int, dict[str, Any]] = {}
    for seg in sorted(audit_dir.glob("*.jsonl")):
        for line in seg.read_bytes().splitlines():
            e = orjson.loads(line)
            if e["docket"]["chain_id"] == rid:
                seen.setdefault(e["event"]["sequence"], e)
    return [seen[k] for k in sorted(seen)]


def drop_lines(audit_dir: Path, keep: Callable[[dict[str, Any]], bool]) -> int:
    dropped = 0
    for seg in sorted(audit_dir.glob("*.jsonl")):
        lines = seg.read_bytes().splitlines(keepends=True)
        kept = [ln for ln in lines if keep(orjson.loads(ln))]
        dropped += len(lines) - len(kept)
        seg.write_bytes(b"".join(kept))
    return dropped


def add_segment(audit_dir: Path, entries: list[dict[str, Any]], name: str = "forger") -> None:
    path = audit_dir / f"segment-{name}-1-20260101T000000000000Z.jsonl"
    with path.open("ab") as fh:
        for e in entries:
            fh.write(render_line(e))


def forged_next(prev: dict[str, Any] | None, rid: str, seq: int, prev_hash: str) -> dict[str, Any]:
    """A well-formed entry with a valid hash that links to `prev_hash` (as a forger would)."""
    entry, _ = build_entry(
        ChainHead(rid, seq - 1, prev_hash),
        timestamp=datetime.now(UTC),
        action="withdraw",
        from_state="closed",
        to_state="closed",
        actor_id="tran.thi.binh",
        actor_roles=["approver"],
        organization="Bộ Thông tin và Truyền thông",
        reason="forged after the fact",
    )
    return entry


def codes(result: ReconcileResult) -> list[tuple[str, int | None]]:
    return sorted((f.code, f.sequence) for f in result.findings)


async def rec(client: Client, audit_dir: Path, rid: str) -> ReconcileResult:
    return await reconcile(client, [str(audit_dir)], workflow_ids=[rid])


async def test_deleted_entry(killed_run: KilledRun, dev_client: Client, tmp_path: Path) -> None:
    rid = killed_run.request_id
    log = copy_log(killed_run, tmp_path)
    assert drop_lines(log, lambda e: e["event"]["id"] != f"{rid}:4") >= 1
    result = await rec(dev_client, log, rid)
    assert codes(result) == [("missing_entry", 4)], result.render_text()
    assert result.findings[0].found == "absent"
    assert "gap" in verify_paths([log]).by_code()


async def test_deleted_tail(killed_run: KilledRun, dev_client: Client, tmp_path: Path) -> None:
    rid, n = killed_run.request_id, killed_run.result.audit_count
    log = copy_log(killed_run, tmp_path)
    drop_lines(log, lambda e: e["event"]["id"] != f"{rid}:{n}")
    assert verify_paths([log]).ok  # internally consistent: only an anchor shows it
    result = await rec(dev_client, log, rid)
    assert codes(result) == [
        ("anchor_mismatch", n),
        ("anchor_mismatch", n),
        ("missing_entry", n),
    ], result.render_text()


async def test_forged_extra_entry(
    killed_run: KilledRun, dev_client: Client, tmp_path: Path
) -> None:
    rid, n = killed_run.request_id, killed_run.result.audit_count
    log = copy_log(killed_run, tmp_path)
    head = chain(log, rid)[-1]
    add_segment(log, [forged_next(head, rid, n + 1, head["hash"])])
    # a valid, linked entry, but after `closed`: the log alone tells that much now
    assert verify_paths([log]).by_code() == {"after_terminal": 1}
    assert verify_paths([log], anchors=killed_run.anchors).by_code() == {
        "after_terminal": 1,
        "anchor_mismatch": 2,
    }
    result = await rec(dev_client, log, rid)
    assert codes(result) == [
        ("anchor_mismatch", n),  # the result's anchor
        ("anchor_mismatch", n),  # the memo's audit_anchor
        ("unrecorded_entry", n + 1),
    ], result.render_text()


async def test_forged_conflicting_copy(
    killed_run: KilledRun, dev_client: Client, tmp_path: Path
) -> None:
    rid = killed_run.request_id
    log = copy_log(killed_run, tmp_path)
    first = chain(log, rid)[0]
    forged = forged_next(first, rid, 2, first["hash"])  # a second, different #2
    add_segment(log, [forged])
    assert "conflict" in verify_paths([log]).by_code()
    result = await rec(dev_client, log, rid)
    assert codes(result) == [("unrecorded_entry", 2)], result.render_text()
    assert forged["hash"] in result.findings[0].found


async def test_rewritten_and_rehashed_chain(
    killed_run: KilledRun, dev_client: Client, tmp_path: Path
) -> None:
    rid, n = killed_run.request_id, killed_run.result.audit_count
    log = copy_log(killed_run, tmp_path)
    entries = chain(log, rid)
    entries[1]["event"]["reason"] = "Approved after a full legal review (rewritten)"
    prev = entries[0]["hash"]
    for e in entries[1:]:
        e.pop("writer", None)
        e["prev_hash"] = prev
        e["hash"] = prev = entry_hash(prev, hashed_body(e))
    drop_lines(log, lambda e: e["docket"]["chain_id"] != rid)
    add_segment(log, entries, name="rewriter")
    emptied = [seg for seg in log.glob("*.jsonl") if seg.stat().st_size == 0]
    assert emptied and verify_paths([log]).by_code() == {"empty_file": len(emptied)}
    for seg in emptied:  # a careful forger removes the segments they emptied
        seg.unlink()
    assert verify_paths([log]).ok  # consistent: a rewrite with re-hashing is invisible alone
    result = await rec(dev_client, log, rid)
    found = codes(result)
    assert found.count(("anchor_mismatch", n)) == 2
    for seq in range(2, n + 1):
        assert ("missing_entry", seq) in found
        assert ("unrecorded_entry", seq) in found
    assert len(found) == 2 + 2 * (n - 1), result.render_text()


async def test_edited_body_without_rehash(
    killed_run: KilledRun, dev_client: Client, tmp_path: Path
) -> None:
    rid = killed_run.request_id
    log = copy_log(killed_run, tmp_path)
    for seg in log.glob("*.jsonl"):
        text = seg.read_text(encoding="utf-8")
        seg.write_text(text.replace("Checked (test)", "Checked (edited)"), encoding="utf-8")
    assert "hash_mismatch" in verify_paths([log]).by_code()
    result = await rec(dev_client, log, rid)
    assert codes(result) == [("missing_entry", 2), ("unrecorded_entry", 2)], result.render_text()
    assert "does not recompute" in result.findings[0].found


async def test_unknown_chain_in_full_reconcile(
    killed_run: KilledRun, dev_client: Client, tmp_path: Path
) -> None:
    rid = "req-mst-forged-chain"
    log = copy_log(killed_run, tmp_path)
    first = forged_next(None, rid, 1, ChainHead.genesis(rid).head_hash)
    add_segment(log, [first])
    # No query and no ids: every AuthorityRequest workflow (other tests' runs, whose logs are
    # elsewhere, show up as missing_chain: ignored here) plus the log's unknown chains.
    result = await reconcile(dev_client, [str(log)])
    mine = [
        (f.code, f.chain_id) for f in result.findings if f.chain_id in (rid, killed_run.request_id)
    ]
    assert mine == [("unknown_chain", rid)], result.render_text()


def run_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env.update(TEMPORAL_ADDRESS=stack.address, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "audit", "reconcile", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_cli(killed_run: KilledRun, dev_stack: Stack, tmp_path: Path) -> None:
    rid, n = killed_run.request_id, killed_run.result.audit_count
    ok = run_cli(dev_stack, str(killed_run.audit_dir), "--workflow-id", rid)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK: 1 workflows (1 completed)"), ok.stdout + ok.stderr

    log = copy_log(killed_run, tmp_path)
    drop_lines(log, lambda e: e["event"]["id"] != f"{rid}:{n}")
    bad = run_cli(dev_stack, str(log), "--workflow-id", rid, "--json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    report = json.loads(bad.stdout)
    assert report["summary"]["findings_by_code"] == {
        "missing_entry": 1,
        "anchor_mismatch": 2,
    }, bad.stdout + bad.stderr
    assert {f["workflow_id"] for f in report["findings"]} == {rid}

    missing = run_cli(dev_stack, str(tmp_path / "nowhere"))
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert "no such audit file" in missing.stderr
