"""Read segments in chunks of whole lines, in worker processes when the log is large.

``verify`` and ``report`` both cut every segment into chunks of about :data:`CHUNK_BYTES`
(extended to the end of a line), scan each chunk with their own function, in parallel when the
log is at least :data:`PARALLEL_MIN_BYTES`, and get the results back in file and offset order.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = [
    "CHUNK_BYTES",
    "PARALLEL_MIN_BYTES",
    "Chunk",
    "gc_paused",
    "map_chunks",
    "plan_chunks",
    "read_lines",
]

CHUNK_BYTES = 16 * 1024 * 1024
PARALLEL_MIN_BYTES = 32 * 1024 * 1024

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes ``[start, end)`` of one segment; ``end`` is just after a newline or at the end."""

    file_idx: int
    path: str
    start: int
    end: int
    last: bool  # the chunk ends at the end of the file

    @property
    def size(self) -> int:
        return self.end - self.start


def plan_chunks(files: Sequence[Path], chunk_bytes: int = CHUNK_BYTES) -> list[Chunk]:
    """Every file cut into chunks of whole lines (an empty file is one empty chunk).

    Raises OSError if a file cannot be opened or read."""
    out: list[Chunk] = []
    for idx, path in enumerate(files):
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start = 0
            while start < size:
                end = start + chunk_bytes
                if end >= size:
                    end = size
                else:
                    f.seek(end)
                    end += len(f.readline())  # extend to the end of the current line
                out.append(Chunk(idx, str(path), start, end, end >= size))
                start = end
        if size == 0:
            out.append(Chunk(idx, str(path), 0, 0, True))
    return out


def read_lines(chunk: Chunk) -> list[bytes]:
    """The chunk's lines; the last element is what follows the last newline (b"" or a torn
    tail)."""
    with open(chunk.path, "rb") as f:
        f.seek(chunk.start)
        return f.read(chunk.size).split(b"\n")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector: scans and indexes create millions of small objects, none
    cyclic, and the collector would only rescan them again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def map_chunks(
    scan: Callable[[Chunk], R],
    chunks: Sequence[Chunk],
    *,
    jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
    while_waiting: Callable[[], object] | None = None,
) -> Iterator[R]:
    """``scan`` over every chunk, results in chunk order, each as soon as it and the ones before
    it are ready. ``jobs``: worker processes (default: all CPUs when the chunks add up to at
    least PARALLEL_MIN_BYTES, else 1: below that, starting workers costs more than it saves).
    ``progress`` is called with each finished chunk's size in bytes. ``scan`` must be picklable
    (a module-level function or a functools.partial of one). ``while_waiting`` is called once
    the work is handed out (e.g. to import what the caller needs next while workers scan)."""
    total = sum(c.size for c in chunks)
    if jobs is None:
        jobs = (os.cpu_count() or 1) if total >= PARALLEL_MIN_BYTES else 1
    if jobs > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(chunks))) as pool:
            results = pool.map(scan, chunks)  # submits every chunk now
            if while_waiting is not None:
                while_waiting()
            for chunk, result in zip(chunks, results, strict=True):
                if progress is not None:
                    progress(chunk.size)
                yield result
    else:
        if while_waiting is not None:
            while_waiting()
        for chunk in chunks:
            result = scan(chunk)
            if progress is not None:
                progress(chunk.size)
            yield result
