"""Read audit segments: every ``*.jsonl`` under the given files/directories, line by line.

Yields one :class:`Record` per line with the parsed entry or the reason it could not be parsed,
and marks a torn tail (a last line without its newline: the process died mid-write).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "Record",
    "default_paths",
    "find_segments",
    "has_torn_tail",
    "iter_entries",
    "read_records",
]


@dataclass(slots=True)
class Record:
    path: str
    line_no: int  # 1-based
    offset: int  # byte offset of the line in the file
    raw: bytes  # without the trailing newline
    entry: dict[str, Any] | None  # parsed JSON object, or None
    error: str | None  # why it is unusable (unparseable, not an object, torn)
    torn: bool = False


def default_paths() -> list[str]:
    """$DOCKET_AUDIT_DIR, else ./var/audit."""
    return [os.environ.get("DOCKET_AUDIT_DIR") or os.path.join("var", "audit")]


def find_segments(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """All ``*.jsonl`` files named or found (recursively) under the paths, sorted, deduplicated.

    Raises FileNotFoundError for a path that does not exist.
    """
    found: dict[Path, None] = {}
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for f in sorted(path.rglob("*.jsonl")):
                if f.is_file():
                    found[f.resolve()] = None
        elif path.is_file():
            found[path.resolve()] = None
        else:
            raise FileNotFoundError(f"no such audit file or directory: {path}")
    return sorted(found)


def has_torn_tail(path: str | os.PathLike[str]) -> bool:
    """True if the file is non-empty and does not end with a newline."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def parse_line(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return None, f"unparseable JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"not a JSON object but {type(value).__name__}"
    return value, None


def read_file(path: str | os.PathLike[str]) -> Iterator[Record]:
    name = str(path)
    data = Path(path).read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    offset = 0
    for i, raw in enumerate(lines, 1):
        entry, err = parse_line(raw) if raw.strip() else (None, "empty line")
        yield Record(name, i, offset, raw, entry, err)
        offset += len(raw) + 1
    if tail:
        yield Record(
            name,
            len(lines) + 1,
            offset,
            tail,
            None,
            f"torn tail: last line has no newline ({len(tail)} bytes; process died mid-write)",
            torn=True,
        )


def read_records(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Record]:
    for path in find_segments(paths):
        yield from read_file(path)


def iter_entries(
    paths: Iterable[str | os.PathLike[str]], *, contains: bytes | None = None
) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Stream (path, line_no, entry) for every parseable object line; skips bad/torn lines.

    ``contains``: a cheap byte prefilter (lines without it are not parsed). Use ``verify`` to
    learn about the lines skipped here.
    """
    loads = orjson.loads
    for path in find_segments(paths):
        name = str(path)
        with open(path, "rb") as f:
            for i, raw in enumerate(f, 1):
                if not raw.endswith(b"\n"):
                    break  # torn tail: never acknowledged
                if contains is not None and contains not in raw:
                    continue
                try:
                    value = loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if type(value) is dict:
                    yield name, i, value
