"""Progress of long audit commands, on stderr, only when a person is watching.

The library functions (``verify_paths``, ``build_report``) take any :class:`Progress`; the CLI
passes :func:`for_stream`'s, which is a tqdm bar when the stream is a terminal and the log is
large enough to take a moment, and nothing otherwise: piped or redirected output, CI logs and
scripts see not one extra byte.
"""

from __future__ import annotations

import os
from typing import IO, Any, Protocol

__all__ = ["MIN_BYTES", "Progress", "TerminalProgress", "for_stream"]

#: Below this a log is checked in well under a second: no bar.
MIN_BYTES = 1 << 20


class Progress(Protocol):
    def start(self, total_bytes: int, what: str) -> None: ...

    def advance(self, done_bytes: int) -> None: ...

    def finish(self) -> None: ...


class TerminalProgress:
    """A tqdm bar in bytes on ``stream`` (a terminal), shown for logs of MIN_BYTES or more."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._bar: Any = None

    def start(self, total_bytes: int, what: str) -> None:
        if total_bytes < MIN_BYTES:
            return
        from tqdm import tqdm  # type: ignore[import-untyped]  # imported only to draw a bar

        try:
            size = os.get_terminal_size(self._stream.fileno())
            sized = size.columns > 0 and size.lines > 0
        except (AttributeError, ValueError, OSError):
            sized = False
        self._bar = tqdm(
            total=total_bytes,
            desc=f"audit {what}",
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=self._stream,
            leave=False,
            # a terminal that reports no size (a fresh pseudo-terminal, a serial console)
            # still gets a bar: tqdm would draw one 0 columns wide, or hide it as off-screen
            dynamic_ncols=sized,
            ncols=None if sized else 80,
            nrows=None if sized else 24,
        )

    def advance(self, done_bytes: int) -> None:
        if self._bar is not None:
            self._bar.update(done_bytes)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def for_stream(stream: IO[str]) -> Progress | None:
    """A bar on ``stream`` if it is a terminal, else None (no progress output at all)."""
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    return TerminalProgress(stream) if interactive else None
