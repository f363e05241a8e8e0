"""compare_workflow / check_anchors on hand-built facts (no Temporal): the cases a real run
does not produce on demand (terminated mid-write, a missing chain, a log that ran ahead of the
fetched history of a running workflow, an identical retry copy)."""

from __future__ import annotations

from audit.entry import AuditAnchor
from audit.reconcile import (
    HistoryWrite,
    LogCopy,
    WorkflowFacts,
    check_anchors,
    compare_workflow,
)

WID = "req-mst-unit"
H = [f"{n:064x}" for n in range(10)]


def facts(status: str, *writes: tuple[int, str, str]) -> WorkflowFacts:
    f = WorkflowFacts(WID, "run-1", status)
    for n, (seq, h, st) in enumerate(writes, 1):
        f.writes.append(HistoryWrite(seq, f"{WID}:{seq}", h, st, 10 * n))
    return f


def log(*copies: tuple[int, str, bool]) -> dict[int, list[LogCopy]]:
    out: dict[int, list[LogCopy]] = {}
    for n, (seq, h, intact) in enumerate(copies, 1):
        out.setdefault(seq, []).append(LogCopy(seq, f"{WID}:{seq}", h, intact, "seg.jsonl", n))
    return out


def test_clean_prefix_and_in_flight_write() -> None:
    f = facts("running", (1, H[1], "completed"), (2, H[2], "pending"))
    findings, notes, matched = compare_workflow(f, log((1, H[1], True), (2, H[2], True)))
    assert findings == [] and matched == 1
    assert [(n.code, n.sequence) for n in notes] == [("in_flight_entry", 2)]


def test_terminated_mid_write_is_a_note() -> None:
    f = facts("terminated", (1, H[1], "completed"), (2, H[2], "canceled"))
    findings, notes, _ = compare_workflow(f, log((1, H[1], True), (2, H[2], True)))
    assert findings == []
    assert [n.code for n in notes] == ["unacknowledged_entry"]


def test_log_ahead_of_history_needs_the_later_fetch() -> None:
    first = facts("running", (1, H[1], "completed"))
    chain = log((1, H[1], True), (2, H[2], True))
    findings, _, _ = compare_workflow(first, chain)
    assert [(x.code, x.sequence) for x in findings] == [("unrecorded_entry", 2)]
    later = facts("running", (1, H[1], "completed"), (2, H[2], "completed"))
    findings, notes, matched = compare_workflow(first, chain, explain=later)
    assert findings == [] and notes == [] and matched == 1


def test_missing_chain_and_altered_copy() -> None:
    f = facts("completed", (1, H[1], "completed"), (2, H[2], "completed"))
    findings, _, _ = compare_workflow(f, None)
    assert [x.code for x in findings] == ["missing_chain"]
    findings, _, _ = compare_workflow(f, log((1, H[1], True), (2, H[2], False)))
    assert sorted((x.code, x.sequence) for x in findings) == [
        ("missing_entry", 2),
        ("unrecorded_entry", 2),
    ]


def test_anchors() -> None:
    f = facts("completed", (1, H[1], "completed"), (2, H[2], "completed"))
    f.result_anchor = AuditAnchor(WID, 2, H[2])
    f.memo_anchor = AuditAnchor(WID, 2, H[2])
    assert check_anchors(f, log((1, H[1], True), (2, H[2], True)))[:2] == ([], [])
    findings, _, checked = check_anchors(f, log((1, H[1], True)))
    assert checked == 2 and [x.code for x in findings] == ["anchor_mismatch"] * 2
    f.memo_anchor = None
    findings, notes, _ = check_anchors(f, log((1, H[1], True), (2, H[2], True)))
    assert findings == [] and [n.code for n in notes] == ["no_anchor"]
    # a result that disagrees with its own history is reported too
    f.result_anchor = AuditAnchor(WID, 2, H[3])
    findings, _, _ = check_anchors(f, log((1, H[1], True), (2, H[3], True)))
    assert len(findings) == 1 and "own history" in findings[0].message
