"""The durable writer: real files with fsync; faults injected only where a disk cannot."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import structlog
from audit_helpers import ORG, chain_entries

from activities.audit import GroupCommit
from audit.chain import recompute_hash
from audit.reader import read_records
from audit.verify import verify_paths
from audit.writer import AuditWriteError, AuditWriter


def test_round_trip_keeps_vietnamese_unescaped_and_one_line_per_entry(tmp_path: Path) -> None:
    entries = chain_entries("req-mic-cv1234-2026", 5)
    w = AuditWriter(tmp_path, host="node/1 a")
    w.append(entries[:2], attempt=1)
    w.append(entries[2:], attempt=3)
    path = w.segment_path
    assert path is not None and path.parent == tmp_path
    assert path.name.startswith(f"segment-node_1_a-{os.getpid()}-") and path.suffix == ".jsonl"
    assert (path.stat().st_mode & 0o777) == 0o640
    data = path.read_bytes()
    assert ORG.encode("utf-8") in data  # not \u-escaped
    assert "Lý do 0: mạo danh lãnh đạo".encode() in data
    assert b"\\u1ed9" not in data
    # U+2028 stays literal: the body part of a line is exactly the canonical bytes (a JSON
    # Lines reader splits on \n only).
    assert b"\xe2\x80\xa8" in data and b"\\u2028" not in data
    lines = data.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 6  # CR/LF/tab stayed inside their lines
    records = list(read_records([tmp_path]))
    assert [r.error for r in records] == [None] * 5
    for rec, original in zip(records, entries, strict=True):
        assert rec.entry is not None
        writer = rec.entry.pop("writer")
        assert rec.entry == original
        assert recompute_hash(rec.entry) == original["hash"]
        assert writer["host"] == "node_1_a" and writer["pid"] == os.getpid()
        assert writer["segment"] == path.name
    assert [r.entry["event"]["sequence"] for r in records if r.entry] == [1, 2, 3, 4, 5]
    attempts = [orjson.loads(line)["writer"]["attempt"] for line in lines[:-1]]
    assert attempts == [1, 1, 3, 3, 3]
    assert verify_paths([tmp_path]).ok


def test_one_write_and_one_fsync_per_batch(tmp_path: Path) -> None:
    writes: list[int] = []
    syncs: list[int] = []

    def write(fd: int, data: bytes) -> int:
        writes.append(data.count(b"\n"))
        return os.write(fd, data)

    def fsync(fd: int) -> None:
        syncs.append(fd)
        os.fsync(fd)

    w = AuditWriter(tmp_path, fsync=fsync, write=write)
    w.append(chain_entries("req-a-1", 4), attempt=1)
    assert writes == [4]
    assert len(syncs) == 3  # new segment file + its directory, then the batch
    w.append(chain_entries("req-b-1", 3), attempt=1)
    assert writes == [4, 3] and len(syncs) == 4


def test_short_writes_continue_the_same_buffer(tmp_path: Path) -> None:
    def write(fd: int, data: bytes) -> int:
        return os.write(fd, data[:7])

    w = AuditWriter(tmp_path, write=write)
    w.append(chain_entries("req-a-1", 3), attempt=1)
    assert verify_paths([tmp_path]).summary()["entries"] == 3


@pytest.mark.parametrize("fault", ["fsync", "enospc"])
def test_write_failure_poisons_segment_and_next_append_uses_a_new_one(
    tmp_path: Path, fault: str
) -> None:
    entries = chain_entries("req-a-1", 6)
    fail = {"on": False}

    def fsync(fd: int) -> None:
        if fault == "fsync" and fail["on"]:
            raise OSError(errno.EIO, "Input/output error")
        os.fsync(fd)

    def write(fd: int, data: bytes) -> int:
        if fault == "enospc" and fail["on"]:
            half = os.write(fd, data[: len(data) // 2])  # the disk took part of it
            assert half > 0
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    w = AuditWriter(tmp_path, fsync=fsync, write=write)
    w.append(entries[:2], attempt=1)
    first = w.segment_path
    fail["on"] = True
    with structlog.testing.capture_logs() as logs, pytest.raises(AuditWriteError) as info:
        w.append(entries[2:4], attempt=1)
    assert info.value.path == str(first)
    assert first in w.poisoned and w.segment_path is None
    assert any(log["log_level"] == "critical" and log["path"] == str(first) for log in logs), logs
    size = first.stat().st_size if first else 0
    fail["on"] = False
    w.append(entries[2:], attempt=2)  # the activity retry writes the batch again
    second = w.segment_path
    assert second is not None and second != first
    assert first is not None and first.stat().st_size == size  # never written again
    result = verify_paths([tmp_path])
    codes = result.by_code()
    if fault == "fsync":
        # The bytes reached the page cache: identical duplicates, dropped.
        assert result.ok and result.duplicates_dropped == 2
    else:
        # Half a batch: the first segment ends torn; nothing else is wrong.
        assert codes == {"torn_tail": 1}
    assert result.entries == 6


def test_open_failure_raises_audit_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    w = AuditWriter(blocker)
    with pytest.raises(AuditWriteError):
        w.append(chain_entries("req-a-1", 1), attempt=1)


def test_never_appends_after_a_torn_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = AuditWriter(tmp_path, host="h")

    class FrozenClock:  # pin the segment name so the writer meets the torn file
        @staticmethod
        def now(tz: object) -> datetime:
            return datetime(2026, 11, 29, 8, 0, tzinfo=UTC)

    monkeypatch.setattr("audit.writer.datetime", FrozenClock)
    torn = tmp_path / f"segment-h-{os.getpid()}-20261129T080000000000Z.jsonl"
    good = chain_entries("req-a-1", 2)
    torn.write_bytes(b'{"partial": tr')
    w.append(good, attempt=1)
    assert w.segment_path is not None and w.segment_path != torn
    assert torn.read_bytes() == b'{"partial": tr'
    records = list(read_records([torn]))
    assert records[-1].torn and records[-1].error and "torn" in records[-1].error


def test_rejects_entries_whose_hash_does_not_match(tmp_path: Path) -> None:
    entry = chain_entries("req-a-1", 1)[0]
    entry["event"]["reason"] = "changed after hashing"
    with pytest.raises(ValueError, match="hash does not match"):
        AuditWriter(tmp_path).append([entry], attempt=1)
    assert list(tmp_path.iterdir()) == []


def test_concurrent_appends_from_threads_never_interleave(tmp_path: Path) -> None:
    w = AuditWriter(tmp_path)
    chains = {f"req-t-{i}": chain_entries(f"req-t-{i}", 20) for i in range(8)}

    def run(entries: list[dict[str, object]]) -> None:
        for k in range(0, 20, 3):
            w.append(entries[k : k + 3], attempt=1)

    threads = [threading.Thread(target=run, args=(e,)) for e in chains.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = verify_paths([tmp_path])
    assert result.ok and result.entries == 160 and result.chains == 8


def test_a_group_of_batches_is_one_write_and_one_fsync(tmp_path: Path) -> None:
    """Group commit: the batches of several requests share one write and one fsync; a
    malformed batch fails alone and nothing of it is written."""
    writes: list[int] = []
    syncs: list[int] = []

    def write(fd: int, data: bytes) -> int:
        writes.append(data.count(b"\n"))
        return os.write(fd, data)

    def fsync(fd: int) -> None:
        syncs.append(fd)
        os.fsync(fd)

    w = AuditWriter(tmp_path, fsync=fsync, write=write)
    w.append(chain_entries("req-a-0", 1), attempt=1)  # the segment is open
    bad = chain_entries("req-c-1", 2)
    bad[1] = {**bad[1], "hash": "0" * 64}
    results = w.append_batches(
        [(chain_entries("req-a-1", 2), 1), (bad, 1), (chain_entries("req-b-1", 3), 2)]
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError) and "does not match its body" in str(results[1])
    assert writes == [1, 5] and len(syncs) == 4  # segment, directory, then one per group
    written = [r.entry["event"]["id"] for r in read_records([tmp_path]) if r.entry]
    assert written == ["req-a-0:1", "req-a-1:1", "req-a-1:2", "req-b-1:1", "req-b-1:2", "req-b-1:3"]


def test_a_failed_fsync_fails_every_batch_of_the_group(tmp_path: Path) -> None:
    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, "injected EIO")

    w = AuditWriter(tmp_path, fsync=fsync)
    results = w.append_batches([(chain_entries("req-a-1", 1), 1), (chain_entries("req-b-1", 1), 1)])
    assert all(isinstance(r, AuditWriteError) for r in results), results


async def test_writes_that_arrive_together_share_an_fsync(tmp_path: Path) -> None:
    """GroupCommit (the activity's path): each caller returns once its entries are durable;
    while one fsync runs, the writes that arrive wait and then go together."""
    syncs: list[int] = []

    def slow_fsync(fd: int) -> None:
        syncs.append(fd)
        time.sleep(0.05)
        os.fsync(fd)

    group = GroupCommit(AuditWriter(tmp_path, fsync=slow_fsync))
    await group.append(chain_entries("req-x-1", 1), 1)  # opens the segment: 3 fsyncs
    before = len(syncs)
    await asyncio.gather(*(group.append(chain_entries(f"req-{i}-1", 2), 1) for i in range(20)))
    assert len(syncs) - before <= 3, len(syncs) - before  # 20 batches, at most a few fsyncs
    ids = [r.entry["event"]["id"] for r in read_records([tmp_path]) if r.entry]
    assert len(ids) == 41 and len(set(ids)) == 41
    assert verify_paths([tmp_path]).ok
