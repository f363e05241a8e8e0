"""Tampering with a real log written by AuditWriter: every change is caught by its own code."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from audit_helpers import anchor_of, write_log

from audit.chain import entry_hash, hashed_body
from audit.entry import AuditAnchor
from audit.verify import VerifyResult, verify_paths
from audit.writer import render_line

CHAINS = {"req-mic-a-2026": 14, "req-mic-b-2026": 12, "req-mic-c-2026": 13, "req-mic-d-2026": 11}


@pytest.fixture
def log(tmp_path: Path) -> tuple[Path, dict[str, list[dict[str, Any]]], list[AuditAnchor]]:
    path, built = write_log(tmp_path / "log", CHAINS)
    anchors = [anchor_of(entries) for entries in built.values()]
    assert verify_paths([path], anchors=anchors).ok
    return path, built, anchors


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def find_line(lines: list[bytes], chain: str, seq: int) -> int:
    for i, line in enumerate(lines):
        e = orjson.loads(line)
        if e["event"]["id"] == f"{chain}:{seq}":
            return i
    raise AssertionError(f"{chain}:{seq} not found")


def rehash(entries: list[dict[str, Any]], start: int) -> None:
    """What an attacker who knows the algorithm does: recompute the chain from ``start``."""
    for i in range(start, len(entries)):
        if i > 0:
            entries[i]["prev_hash"] = entries[i - 1]["hash"]
        entries[i]["hash"] = entry_hash(entries[i]["prev_hash"], hashed_body(entries[i]))


def codes(result: VerifyResult) -> set[str]:
    return {f.code for f in result.findings}


def test_bit_flip_sweep_every_flip_detected(log: Any) -> None:
    path, _built, anchors = log
    original = path.read_bytes()
    # Writer metadata is outside the hash by design: flips there are not detectable.
    protected = [True] * len(original)
    pos = 0
    for line in original.splitlines(keepends=True):
        w = line.index(b',"writer":')
        for k in range(pos + w, pos + len(line) - 2):
            protected[k] = False
        pos += len(line)
    positions = [i for i, p in enumerate(protected) if p]
    rng = random.Random(20261129)
    sample = sorted(rng.sample(positions, 300))
    missed = []
    for n, p in enumerate(sample):
        data = bytearray(original)
        data[p] ^= 1 << (n % 8)
        path.write_bytes(bytes(data))
        result = verify_paths([path], anchors=anchors)
        if result.ok:
            missed.append((p, n % 8))
    path.write_bytes(original)
    assert missed == []


def test_writer_metadata_is_not_protected(log: Any) -> None:
    path, _built, anchors = log
    lines = lines_of(path)
    e = orjson.loads(lines[3])
    e["writer"]["host"] = "elsewhere"
    lines[3] = render_line(e)
    path.write_bytes(b"".join(lines))
    assert verify_paths([path], anchors=anchors).ok


def test_deleting_a_middle_entry_is_a_gap(log: Any) -> None:
    path, _built, _anchors = log
    lines = lines_of(path)
    del lines[find_line(lines, "req-mic-b-2026", 5)]
    path.write_bytes(b"".join(lines))
    result = verify_paths([path])
    assert codes(result) == {"gap"}
    (f,) = result.findings
    assert (f.chain_id, f.sequence, f.found, f.expected) == ("req-mic-b-2026", 6, 6, 5)


def test_reordering_lines_in_the_file_is_harmless(log: Any) -> None:
    path, _built, anchors = log
    lines = lines_of(path)
    random.Random(1).shuffle(lines)
    path.write_bytes(b"".join(lines))
    assert verify_paths([path], anchors=anchors).ok


def test_swapping_two_entries_renumbered_is_a_hash_mismatch(log: Any) -> None:
    path, built, _anchors = log
    entries = built["req-mic-a-2026"]
    lines = lines_of(path)
    i3, i4 = find_line(lines, "req-mic-a-2026", 3), find_line(lines, "req-mic-a-2026", 4)
    a, b = dict(entries[3]), dict(entries[2])  # entry 4's body at position 3 and vice versa
    for e, seq, src in ((a, 3, entries[2]), (b, 4, entries[3])):
        e["event"] = {**e["event"], "sequence": seq, "id": f"req-mic-a-2026:{seq}"}
        e["prev_hash"], e["hash"] = src["prev_hash"], src["hash"]
    lines[i3], lines[i4] = render_line(a), render_line(b)
    path.write_bytes(b"".join(lines))
    result = verify_paths([path])
    assert codes(result) == {"hash_mismatch"}
    assert sorted(f.sequence for f in result.findings if f.sequence) == [3, 4]


def test_swapping_two_entries_and_rehashing_them_is_a_chain_break(log: Any) -> None:
    path, built, _anchors = log
    entries = [dict(e) for e in built["req-mic-a-2026"]]
    entries[2], entries[3] = entries[3], entries[2]
    for seq in (3, 4):
        e = entries[seq - 1]
        e["event"] = {**e["event"], "sequence": seq, "id": f"req-mic-a-2026:{seq}"}
    entries[2]["prev_hash"] = entries[1]["hash"]
    entries[2]["hash"] = entry_hash(entries[2]["prev_hash"], hashed_body(entries[2]))
    entries[3]["prev_hash"] = entries[2]["hash"]
    entries[3]["hash"] = entry_hash(entries[3]["prev_hash"], hashed_body(entries[3]))
    lines = lines_of(path)
    for seq in (3, 4):
        lines[find_line(lines, "req-mic-a-2026", seq)] = render_line(entries[seq - 1])
    path.write_bytes(b"".join(lines))
    result = verify_paths([path])
    assert codes(result) == {"chain_break", "state_mismatch"}
    assert [f.sequence for f in result.findings if f.code == "chain_break"] == [5]
    # acknowledge (from awaiting_ack) now follows approve (to delivering), and so on
    assert [f.sequence for f in result.findings if f.code == "state_mismatch"] == [3, 4, 5]


def test_inserting_a_forged_entry_is_a_conflict(log: Any) -> None:
    path, built, _anchors = log
    entries = built["req-mic-c-2026"]
    forged = dict(entries[6])
    forged["event"] = {**forged["event"], "reason": "nothing to see"}
    forged["hash"] = entry_hash(forged["prev_hash"], hashed_body(forged))
    lines = lines_of(path)
    lines.insert(5, render_line(forged))
    path.write_bytes(b"".join(lines))
    result = verify_paths([path])
    assert "conflict" in codes(result)
    assert all(f.code in ("conflict", "chain_break") for f in result.findings)
    (c,) = [f for f in result.findings if f.code == "conflict"]
    assert (c.chain_id, c.sequence) == ("req-mic-c-2026", 7)


def test_same_body_with_altered_chain_fields_is_a_duplicate(log: Any) -> None:
    path, built, _anchors = log
    copy = dict(built["req-mic-d-2026"][4])
    copy["prev_hash"] = "0" * 64
    copy["hash"] = entry_hash(copy["prev_hash"], hashed_body(copy))
    path.write_bytes(path.read_bytes() + render_line(copy))
    result = verify_paths([path])
    assert codes(result) == {"duplicate"}
    assert result.findings[0].sequence == 5


def test_identical_copies_are_dropped_not_flagged(log: Any) -> None:
    path, _built, anchors = log
    lines = lines_of(path)
    extra = []
    for line in lines[::3]:
        e = orjson.loads(line)
        e["writer"]["attempt"] = 2  # a retry: only writer metadata differs
        extra.append(render_line(e))
    path.write_bytes(b"".join(lines + extra))
    result = verify_paths([path], anchors=anchors)
    assert result.ok and result.duplicates_dropped == len(extra)


def test_tail_truncation_is_caught_by_the_anchor(log: Any) -> None:
    path, _built, anchors = log
    lines = lines_of(path)
    del lines[find_line(lines, "req-mic-a-2026", 14)]
    del lines[find_line(lines, "req-mic-a-2026", 13)]
    path.write_bytes(b"".join(lines))
    assert verify_paths([path]).ok  # without anchors a clean truncation is invisible
    result = verify_paths([path], anchors=anchors)
    assert codes(result) == {"anchor_mismatch"}
    (f,) = result.findings
    assert f.chain_id == "req-mic-a-2026" and f.found.startswith("12 entries")


def test_whole_chain_deletion_is_a_missing_chain(log: Any) -> None:
    path, _built, anchors = log
    lines = [ln for ln in lines_of(path) if b'"req-mic-b-2026"' not in ln]
    path.write_bytes(b"".join(lines))
    result = verify_paths([path], anchors=anchors)
    assert codes(result) == {"missing_chain"}
    assert result.findings[0].chain_id == "req-mic-b-2026"


def test_rewrite_and_rehash_is_an_anchor_mismatch(log: Any) -> None:
    path, built, anchors = log
    entries = [dict(e) for e in built["req-mic-c-2026"]]
    entries[3] = {**entries[3], "event": {**entries[3]["event"], "reason": "rewritten"}}
    rehash(entries, 3)
    lines = [ln for ln in lines_of(path) if b'"req-mic-c-2026"' not in ln]
    lines += [render_line(e) for e in entries]
    path.write_bytes(b"".join(lines))
    assert verify_paths([path]).ok  # self-consistent: only the anchor can tell
    result = verify_paths([path], anchors=anchors)
    assert codes(result) == {"anchor_mismatch"}


def test_parallel_and_serial_verification_agree(log: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _built, anchors = log
    lines = lines_of(path)
    del lines[7]
    lines[9] = lines[9].replace(b"Truy", b"Truz", 1)
    path.write_bytes(b"".join(lines))
    # many chunks: line numbers are rebased across them
    serial = verify_paths([path], anchors=anchors, jobs=1, chunk_bytes=4096)
    parallel = verify_paths([path], anchors=anchors, jobs=2, chunk_bytes=4096)
    assert serial.to_dict() == parallel.to_dict()
    assert not serial.ok
