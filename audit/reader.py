"""Find and read audit segments: every ``*.jsonl`` under the given files/directories.

:func:`discover` walks the paths and reports, instead of skipping, whatever it cannot read: a
directory or file it may not open, a symbolic link that points nowhere, something that is not
a regular file, an empty segment. :func:`read_records` yields one :class:`Record` per line with
the parsed entry or the reason it could not be parsed, and marks a torn tail (a last line
without its newline: the process died mid-write).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "InputProblem",
    "Inputs",
    "MissingInput",
    "Record",
    "UnreadableInput",
    "default_paths",
    "discover",
    "find_segments",
    "has_torn_tail",
    "iter_entries",
    "iter_lines",
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


class MissingInput(FileNotFoundError):
    """A path given on the command line does not exist (or is a link to nothing)."""


@dataclass(frozen=True, slots=True)
class InputProblem:
    """Something under the paths that could not be read: ``code`` is ``unreadable``,
    ``dangling_link`` or ``empty_file``; ``found`` the OS error or the link's target."""

    code: str
    path: str
    message: str
    found: str | None = None

    def render(self) -> str:
        return f"{self.path}: {self.code}: {self.found or ''} ({self.message})"


@dataclass(slots=True)
class Inputs:
    """What :func:`discover` found: segments to read (sorted, each once), problems, and the
    files under the directories that are not segments (not ``*.jsonl``)."""

    files: list[Path] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)

    def blocking(self) -> list[InputProblem]:
        """Problems that hide entries (an empty segment hides none)."""
        return [p for p in self.problems if p.code != "empty_file"]


class UnreadableInput(OSError):
    """Part of the log could not be read: a report from it would be incomplete."""

    def __init__(self, problems: list[InputProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.render() for p in problems))


def default_paths() -> list[str]:
    """$DOCKET_AUDIT_DIR, else ./var/audit."""
    return [os.environ.get("DOCKET_AUDIT_DIR") or os.path.join("var", "audit")]


def _os_error(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror or exc}"


_UNREADABLE_DIR = "the directory could not be listed: segments in it were not read"
_UNREADABLE_FILE = "the segment could not be read: its entries were not checked"


def discover(paths: Iterable[str | os.PathLike[str]]) -> Inputs:
    """Every ``*.jsonl`` file named or found (recursively, following links) under ``paths``.

    A file named directly is read whatever its name. Raises :class:`MissingInput` for a named
    path that does not exist; everything below the named paths that cannot be read is in
    ``Inputs.problems``, never skipped silently."""
    inputs = Inputs()
    found: dict[Path, None] = {}
    seen_dirs: set[tuple[int, int]] = set()

    def add_file(path: Path, st: os.stat_result) -> None:
        if not stat.S_ISREG(st.st_mode):
            inputs.problems.append(
                InputProblem(
                    "unreadable",
                    str(path),
                    "not a regular file (a FIFO, socket or device is never a segment): "
                    "nothing was read from it",
                    f"file type {stat.filemode(st.st_mode)[0]}",
                )
            )
            return
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            inputs.problems.append(
                InputProblem("unreadable", str(path), _UNREADABLE_FILE, _os_error(exc))
            )
            return
        if st.st_size == 0:
            inputs.problems.append(
                InputProblem(
                    "empty_file",
                    str(path),
                    "the segment holds no bytes: a writer died between creating it and its "
                    "first write, or its content was deleted (compare with backups)",
                    "0 bytes",
                )
            )
            return
        found[Path(os.path.realpath(path))] = None

    def walk(top: Path) -> None:
        stack = [top]
        while stack:
            directory = stack.pop()
            try:
                st = os.stat(directory)
                key = (st.st_dev, st.st_ino)
                if key in seen_dirs:
                    continue  # a link back up the tree, or the same directory twice
                seen_dirs.add(key)
                with os.scandir(directory) as it:
                    listing = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                inputs.problems.append(
                    InputProblem("unreadable", str(directory), _UNREADABLE_DIR, _os_error(exc))
                )
                continue
            below: list[Path] = []
            for entry in listing:
                path = Path(entry.path)
                try:
                    st = os.stat(path)  # follows links
                except FileNotFoundError:
                    if os.path.islink(path):
                        inputs.problems.append(
                            InputProblem(
                                "dangling_link",
                                str(path),
                                "a symbolic link under the log points nowhere: whatever it "
                                "pointed to (segments, a directory) was not read",
                                f"-> {os.readlink(path)}",
                            )
                        )
                    continue  # removed while we were listing
                except OSError as exc:
                    inputs.problems.append(
                        InputProblem("unreadable", str(path), _UNREADABLE_FILE, _os_error(exc))
                    )
                    continue
                if stat.S_ISDIR(st.st_mode):
                    below.append(path)
                elif entry.name.endswith(".jsonl"):
                    add_file(path, st)
                else:
                    inputs.ignored.append(path)
            stack.extend(reversed(below))

    for p in paths:
        path = Path(p)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if os.path.islink(path):
                raise MissingInput(
                    f"dangling symbolic link: {path} -> {os.readlink(path)}"
                ) from None
            raise MissingInput(f"no such audit file or directory: {path}") from None
        except OSError as exc:
            inputs.problems.append(
                InputProblem("unreadable", str(path), _UNREADABLE_FILE, _os_error(exc))
            )
            continue
        if stat.S_ISDIR(st.st_mode):
            walk(path)
        else:
            add_file(path, st)
    inputs.files = sorted(found)
    return inputs


def find_segments(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """All segment files :func:`discover` finds, sorted, each once.

    Raises :class:`MissingInput` for a path that does not exist and :class:`UnreadableInput`
    when something under the paths cannot be read."""
    inputs = discover(paths)
    blocking = inputs.blocking()
    if blocking:
        raise UnreadableInput(blocking)
    return inputs.files


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


def iter_lines(
    paths: Iterable[str | os.PathLike[str]], *, contains: bytes | None = None
) -> Iterator[tuple[str, int, bytes]]:
    """Stream (path, line_no, raw line without its newline) of every complete line; a torn
    last line (never acknowledged) is not yielded. ``contains``: only lines holding it."""
    for path in find_segments(paths):
        name = str(path)
        with open(path, "rb") as f:
            for i, raw in enumerate(f, 1):
                if not raw.endswith(b"\n"):
                    break
                if contains is None or contains in raw:
                    yield name, i, raw[:-1]


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
