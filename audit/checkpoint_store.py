"""The checkpointer's files: the on-disk Merkle tree and the recorded global order of entries.

``tree/level-NN.bin``: level N of the tree, 32 bytes per complete aligned node (level 0 = leaf
hashes), append-only. 1M entries take 64 MB; a root or a proof reads O(log n) nodes, an append
of k leaves writes about 2k nodes. Memory stays bounded by the batch being appended.

``order.jsonl``: one JSON line per (run, segment) range of complete lines the checkpointer took,
in leaf order: ``{"count": k, "end": e, "first": i, "path": "segment-....jsonl", "source":
"host-a", "start": s}`` = leaves ``[i, i + k)`` are the k lines in bytes ``[s, e)`` of that
segment. The checkpoint's root commits to these lines in this order, so the index cannot be
changed (entries dropped, reordered or added) without the root changing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from audit.merkle import HASH_SIZE, node_hash

__all__ = ["OrderError", "OrderRecord", "StoreError", "TreeStore", "append_order", "read_order"]


class StoreError(Exception):
    """The tree files are missing nodes or inconsistent."""


class OrderError(ValueError):
    """The order index is malformed (file:line and what is wrong in the message)."""


class TreeStore:
    """The levels of one append-only tree, one file per level."""

    def __init__(self, directory: str | os.PathLike[str], *, create: bool = True) -> None:
        self.directory = Path(directory)
        if create:
            self.directory.mkdir(parents=True, exist_ok=True)
        elif not self.directory.is_dir():
            raise StoreError(f"no tree directory {self.directory}")
        self._fds: dict[int, int] = {}
        self._counts: dict[int, int] = {}
        self._writable = create

    def _path(self, level: int) -> Path:
        return self.directory / f"level-{level:02d}.bin"

    def _fd(self, level: int) -> int | None:
        fd = self._fds.get(level)
        if fd is None:
            path = self._path(level)
            if not self._writable and not path.exists():
                return None
            flags = (os.O_RDWR | os.O_CREAT) if self._writable else os.O_RDONLY
            fd = os.open(path, flags | os.O_CLOEXEC, 0o640)
            self._fds[level] = fd
            self._counts[level] = os.fstat(fd).st_size // HASH_SIZE
        return fd

    def count(self, level: int) -> int:
        return self._counts[level] if self._fd(level) is not None else 0

    @property
    def size(self) -> int:
        return self.count(0)

    def node(self, level: int, index: int) -> bytes:
        fd = self._fd(level)
        if fd is None or not 0 <= index < self._counts[level]:
            raise StoreError(f"tree node ({level}, {index}) is not stored in {self.directory}")
        data = os.pread(fd, HASH_SIZE, index * HASH_SIZE)
        if len(data) != HASH_SIZE:
            raise StoreError(f"{self._path(level)} is shorter than its node count")
        return data

    def nodes(self, level: int, start: int, count: int) -> list[bytes]:
        """``count`` consecutive nodes of one level (one read)."""
        fd = self._fd(level)
        if fd is None or start < 0 or start + count > self._counts[level]:
            raise StoreError(f"tree nodes ({level}, {start}+{count}) are not stored")
        data = os.pread(fd, count * HASH_SIZE, start * HASH_SIZE)
        if len(data) != count * HASH_SIZE:
            raise StoreError(f"{self._path(level)} is shorter than its node count")
        return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]

    def append(self, leaf_hashes: Sequence[bytes]) -> None:
        """Append leaf hashes and every parent they complete."""
        level, nodes = 0, list(leaf_hashes)
        while nodes:
            fd = self._fd(level)
            assert fd is not None
            count = self._counts[level]
            pending = [self.node(level, count - 1), *nodes] if count % 2 else nodes
            data = b"".join(nodes)
            written = os.pwrite(fd, data, count * HASH_SIZE)
            if written != len(data):
                raise StoreError(f"short write to {self._path(level)}")
            self._counts[level] = count + len(nodes)
            nodes = [node_hash(pending[i], pending[i + 1]) for i in range(0, len(pending) - 1, 2)]
            level += 1

    def truncate(self, size: int) -> None:
        """Drop everything beyond ``size`` leaves (undo a run that crashed before committing)."""
        level = 0
        while True:
            fd = self._fd(level)
            if fd is None:
                return
            keep = size >> level
            if self._counts[level] > keep:
                os.ftruncate(fd, keep * HASH_SIZE)
                self._counts[level] = keep
            if self._counts[level] == 0 and keep == 0 and level > 0:
                return
            level += 1
            if not self._path(level).exists():
                return

    def sync(self) -> None:
        for fd in self._fds.values():
            os.fsync(fd)
        dfd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._counts.clear()

    def __enter__(self) -> TreeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class OrderRecord:
    first: int  # index of the first leaf
    count: int
    source: str
    path: str  # relative to the source directory, "/" separated
    start: int  # byte range [start, end) of the segment: exactly `count` complete lines
    end: int
    line: int = 0  # where this record is in order.jsonl (1-based), for messages

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "count": self.count,
                "end": self.end,
                "first": self.first,
                "path": self.path,
                "source": self.source,
                "start": self.start,
            },
            option=orjson.OPT_SORT_KEYS,
        )


def _record(value: Any, where: str, expected_first: int, line: int) -> OrderRecord:
    if not isinstance(value, dict):
        raise OrderError(f"{where}: not a JSON object")
    ints = {}
    for key in ("first", "count", "start", "end"):
        v = value.get(key)
        if type(v) is not int or v < 0:
            raise OrderError(f"{where}: {key!r} must be a non-negative integer, got {v!r}")
        ints[key] = v
    for key in ("source", "path"):
        if not isinstance(value.get(key), str) or not value[key]:
            raise OrderError(f"{where}: {key!r} must be a non-empty string")
    path = value["path"]
    if path.startswith("/") or ".." in path.split("/"):
        raise OrderError(f"{where}: path {path!r} must be relative, without '..'")
    if ints["first"] != expected_first:
        raise OrderError(
            f"{where}: first leaf {ints['first']}, expected {expected_first} (records must be "
            "contiguous: the index was edited or a record lost)"
        )
    if ints["count"] < 1 or ints["end"] - ints["start"] < ints["count"]:
        raise OrderError(f"{where}: {ints['count']} lines cannot fit in bytes {ints['start']}..")
    return OrderRecord(
        ints["first"],
        ints["count"],
        value["source"],
        path,
        ints["start"],
        ints["end"],
        line,
    )


def read_order(path: str | os.PathLike[str], *, repair_torn: bool = False) -> list[OrderRecord]:
    """Every record of the order index, checked (contiguous leaves, sane ranges).

    ``repair_torn``: the checkpointer's own recovery: a last line without its newline is a
    record whose run crashed before it committed; it is cut off. Otherwise it is an error.
    Raises OrderError naming file:line; a missing file is an empty index.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return []
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        if not repair_torn:
            raise OrderError(f"{p}: the last line has no newline (a checkpoint run crashed?)")
        with open(p, "r+b") as f:
            f.truncate(cut)
            os.fsync(f.fileno())
        data = data[:cut]
    records: list[OrderRecord] = []
    total = 0
    for n, raw in enumerate(data.split(b"\n")[:-1], 1):
        where = f"{p}:{n}"
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise OrderError(f"{where}: not JSON ({exc})") from None
        rec = _record(value, where, total, n)
        records.append(rec)
        total += rec.count
    return records


def append_order(path: str | os.PathLike[str], records: Sequence[OrderRecord]) -> None:
    """Append records durably (one write, fsync)."""
    if not records:
        return
    data = b"".join(r.to_json() + b"\n" for r in records)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        done = 0
        while done < len(data):
            done += os.write(fd, data[done:])
        os.fsync(fd)
    finally:
        os.close(fd)
