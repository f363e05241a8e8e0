"""The one finding type of every audit tool (verify, reconcile, and whatever checks the log next).

A :class:`Finding` says what is wrong (``code``), where (``chain_id``/``sequence``, ``file``/
``line``, ``run_id`` for a Temporal run), what was found and what was expected, and what to do
(``message``). Its values may come from a tampered log, so :meth:`Finding.render` prints every
one of them through ``docket.text.terminal`` (no control bytes, no bidi tricks, one line each).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docket.text import terminal

__all__ = ["Finding"]

# Wide enough for every code of every tool, so their outputs line up.
_CODE_WIDTH = 19


@dataclass(slots=True)
class Finding:
    """One discrepancy (or, where a tool keeps ``notes``, one explained oddity)."""

    code: str
    message: str
    chain_id: str | None = None  # the request's workflow id
    sequence: int | None = None
    file: str | None = None
    line: int | None = None
    found: Any = None
    expected: Any = None
    run_id: str | None = None  # the Temporal run, for findings about a workflow's history

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "chain_id": self.chain_id,
            "run_id": self.run_id,
            "sequence": self.sequence,
            "file": self.file,
            "line": self.line,
            "found": self.found,
            "expected": self.expected,
            "message": self.message,
        }

    def render(self, prefix: str = "") -> str:
        """A block of lines for a terminal: code, entry and place, found/expected, message."""
        who = f"{self.chain_id}#{self.sequence}" if self.sequence is not None else self.chain_id
        if self.file:
            where = f"{self.file}:{self.line}" if self.line is not None else self.file
        elif self.run_id:
            where = f"run {self.run_id}"
        else:
            where = "-"
        head = f"{prefix}{self.code:<{_CODE_WIDTH}} {terminal(who or '-')}  ({terminal(where)})"
        if self.found is not None or self.expected is not None:
            head += (
                f"\n    found:    {terminal(self.found)}\n    expected: {terminal(self.expected)}"
            )
        return f"{head}\n    {terminal(self.message)}"
