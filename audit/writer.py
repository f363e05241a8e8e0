"""Durable append-only writer of audit entries (runs in the worker's activity, never in workflows).

Every writer instance owns one segment file ``<dir>/segment-<host>-<pid>-<startstamp>.jsonl`` so
concurrent workers never interleave. Each line's body part is exactly the canonical bytes its
hash covers (``audit.lines`` holds the line layout, in one place). Lines are rendered by a
dedicated structlog logger (not the application logger) whose minimal sink only collects bytes;
:meth:`AuditWriter.append` then writes the whole batch with one ``os.write`` (looping only on
short writes of that same buffer) and one ``fsync`` before returning. Any write/fsync failure
poisons the segment: it is closed and never written again, a CRITICAL line goes to the
application log, :class:`AuditWriteError` is raised, and the next append starts a fresh segment
(a poisoned segment that never got a byte is removed: it holds nothing, and an empty segment is
a finding for ``verify``). A segment whose last line is torn (no newline, e.g. after a crash
mid-write) is never appended to.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from audit.canonical import canonical
from audit.chain import UNHASHED_KEYS, hash_of_canonical, is_hex64
from audit.lines import render_line
from audit.reader import has_torn_tail

__all__ = ["AuditWriteError", "AuditWriter", "render_line"]  # render_line lives in audit.lines

_app_log = structlog.get_logger("docket.audit.writer")

_UNSAFE_HOST = re.compile(r"[^A-Za-z0-9._-]+")


class AuditWriteError(Exception):
    """The batch is not durable. ``path`` is the (now poisoned) segment, if one was involved."""

    def __init__(self, reason: str, path: str | os.PathLike[str] | None) -> None:
        self.reason = reason
        self.path = str(path) if path is not None else None
        super().__init__(f"audit write failed: {reason} (segment {self.path})")


def _render(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> bytes:
    body = event_dict.pop("_body")
    return render_line(event_dict, body)


class _LineSink:
    """The minimal logger behind the audit structlog logger: it collects rendered lines.

    The writer drains it and performs the single ``os.write`` per batch.
    """

    def __init__(self) -> None:
        self.pending: list[bytes] = []

    def msg(self, line: bytes) -> None:
        self.pending.append(line)

    info = msg

    def drain(self) -> bytes:
        data = b"".join(self.pending)
        self.pending.clear()
        return data


class AuditWriter:
    """Append audit entries durably to this process's own segment under ``directory``.

    ``fsync`` and ``write`` are injectable only so tests can produce faults a real disk will not
    produce on demand (fsync EIO, ENOSPC). Thread-safe; blocking (call it from a sync activity or
    a thread, not from the event loop).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        host: str | None = None,
        fsync: Callable[[int], None] = os.fsync,
        write: Callable[[int, bytes], int] = os.write,
    ) -> None:
        self.directory = Path(directory)
        self.host = _UNSAFE_HOST.sub("_", host or socket.gethostname()) or "host"
        self._fsync = fsync
        self._write = write
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self.poisoned: list[Path] = []
        self._sink = _LineSink()
        self._log: Any = structlog.wrap_logger(
            self._sink,
            processors=[
                self._add_writer_metadata,
                structlog.processors.EventRenamer("message", replace_by="_event"),
                _render,
            ],
            wrapper_class=structlog.BoundLogger,
            context_class=dict,
            cache_logger_on_first_use=False,
        )

    # -- public -------------------------------------------------------------------------------

    @property
    def segment_path(self) -> Path | None:
        """The segment currently open for appending (None before the first append)."""
        return self._path

    def append(self, entries: Iterable[Mapping[str, Any]], attempt: int) -> None:
        """Write a batch of complete entries (with prev_hash/hash) durably, or raise.

        Raises ValueError for malformed entries (nothing written) and AuditWriteError when the
        batch may not be durable (the segment is poisoned; retry the whole batch: identical
        re-writes are dropped by readers as duplicates).
        """
        batch = list(entries)
        bodies = [_check_entry(entry) for entry in batch]
        if batch:
            self._write_durably([(batch, bodies, attempt)])

    def append_batches(
        self, batches: Sequence[tuple[Iterable[Mapping[str, Any]], int]]
    ) -> list[Exception | None]:
        """Group commit: write several batches (each with its attempt number) with one
        ``os.write`` and one ``fsync``; for each batch, None once it is durable or the
        exception ``append`` would have raised for it.

        A malformed batch fails alone (ValueError; nothing of it is written) and the others are
        written; a failed write or fsync fails every batch of the group (AuditWriteError: none
        may be durable, each is retried whole, and readers drop the copies that were)."""
        results: list[Exception | None] = [None] * len(batches)
        checked = []
        for index, (entries, attempt) in enumerate(batches):
            batch = list(entries)
            try:
                bodies = [_check_entry(entry) for entry in batch]
            except ValueError as exc:
                results[index] = exc
                continue
            if batch:
                checked.append((index, (batch, bodies, attempt)))
        if checked:
            try:
                self._write_durably([group for _, group in checked])
            except (AuditWriteError, ValueError) as exc:
                for index, _ in checked:
                    results[index] = exc
        return results

    def _write_durably(
        self, groups: Sequence[tuple[Sequence[Mapping[str, Any]], Sequence[bytes], int]]
    ) -> None:
        """Render every entry of `groups` (entries, their canonical bodies, attempt) and write
        them with one ``os.write`` (continued on short writes) and one ``fsync``, or raise."""
        with self._lock:
            fd, path = self._ensure_open()
            try:
                for batch, bodies, attempt in groups:
                    for entry, body in zip(batch, bodies, strict=True):
                        fields = {k: v for k, v in entry.items() if k not in ("message", "event")}
                        self._log.info(
                            entry["message"],
                            _event=entry["event"],
                            _attempt=attempt,
                            _body=body,
                            **fields,
                        )
                data = self._sink.drain()
            except Exception:
                self._sink.pending.clear()
                raise
            try:
                done = 0
                while done < len(data):  # short writes: continue the same buffer only
                    n = self._write(fd, data[done:] if done else data)
                    if n <= 0:
                        raise OSError("os.write wrote 0 bytes")
                    done += n
                self._fsync(fd)
            except OSError as exc:
                self._poison(fd, path, exc)
                raise AuditWriteError(f"{type(exc).__name__}: {exc}", path) from exc

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> AuditWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _add_writer_metadata(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event_dict["writer"] = {
            "host": self.host,
            "pid": os.getpid(),
            "attempt": event_dict.pop("_attempt"),
            "written_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "segment": self._path.name if self._path is not None else None,
        }
        return event_dict

    def _ensure_open(self) -> tuple[int, Path]:
        if self._fd is not None and self._path is not None:
            return self._fd, self._path
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self._choose_path()
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            _app_log.critical(
                "audit_segment_open_failed", directory=str(self.directory), error=str(exc)
            )
            raise AuditWriteError(f"cannot open segment: {exc}", self.directory) from exc
        try:
            self._fsync(fd)
            dfd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                self._fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            self._poison(fd, path, exc)
            raise AuditWriteError(f"cannot make segment durable: {exc}", path) from exc
        self._fd, self._path = fd, path
        return fd, path

    def _choose_path(self) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        base = f"segment-{self.host}-{os.getpid()}-{stamp}"
        n = 0
        while True:
            path = self.directory / (f"{base}.jsonl" if n == 0 else f"{base}-{n}.jsonl")
            n += 1
            if path in self.poisoned:
                continue
            if path.exists() and has_torn_tail(path):
                # Never append after a torn line: it would glue two entries into one line.
                _app_log.warning("audit_segment_torn_tail_skipped", path=str(path))
                continue
            return path  # new, or our own clean segment (append-only reopen is safe)

    def _poison(self, fd: int, path: Path, exc: BaseException) -> None:
        self.poisoned.append(path)
        self._fd = None
        self._path = None
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_size == 0:
                os.unlink(path)  # never held a byte: nothing to keep, nothing to report
        with contextlib.suppress(OSError):
            os.close(fd)
        _app_log.critical(
            "audit_write_failed_segment_poisoned",
            path=str(path),
            error=f"{type(exc).__name__}: {exc}",
            errno=getattr(exc, "errno", None),
        )


def _check_entry(entry: Mapping[str, Any]) -> bytes:
    """The entry's canonical body (the bytes its hash covers), or ValueError."""
    for key in ("message", "event", "prev_hash", "hash"):
        if key not in entry:
            raise ValueError(f"audit entry lacks {key!r}; build it with audit.entry.build_entry")
    if not is_hex64(entry["prev_hash"]) or not is_hex64(entry["hash"]):
        raise ValueError("audit entry prev_hash/hash must be 64 lowercase hex characters")
    writer = entry.get("writer")
    if writer is not None and not isinstance(writer, Mapping):
        raise ValueError("audit entry writer metadata must be a mapping")
    body = canonical({k: v for k, v in entry.items() if k not in UNHASHED_KEYS})
    if hash_of_canonical(entry["prev_hash"], body) != entry["hash"]:
        raise ValueError(f"audit entry {entry['event'].get('id')!r}: hash does not match its body")
    return body
