"""One request's timeline as a readable table, each entry verified inline.

:func:`timeline` reads the rows of one chain from the log (each stored line checked byte for
byte); :func:`timeline_rows` makes the same rows from entries as the workflow's ``timeline``
query returns them (no writer metadata, no file); :func:`render_timeline` prints either, one
line per entry, every value through ``docket.text.terminal``, so a line break or an escape
sequence in a reason can never plant a fake row or recolour the screen.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from audit.canonical import CanonicalError, canonical
from audit.chain import UNHASHED_KEYS, chain_id_of, genesis_hash, hash_of_canonical, is_hex64
from audit.lines import inspect_line
from audit.reader import iter_lines
from docket.text import terminal

__all__ = ["COLUMNS", "render_timeline", "timeline", "timeline_rows"]

COLUMNS = ("seq", "when", "who", "action", "transition", "reason", "details", "check")

# One copy of an entry: the parsed entry and what checking it found (None: it verifies).
_Copy = tuple[dict[str, Any], str | None]


def _summary(d: Mapping[str, Any]) -> str:
    parts: list[str] = []
    items = d.get("items")
    if isinstance(items, list) and items:
        effects = [
            f"{i.get('item_id')}={i['effect']}"
            for i in items
            if isinstance(i, dict) and "effect" in i
        ]
        parts.append(", ".join(effects) if effects else f"{len(items)} items")
    evidence = d.get("evidence")
    if isinstance(evidence, list) and evidence:
        parts.append(
            ", ".join(
                f"{e.get('item_id')}@{e.get('vantage')}:{e.get('observation')}"
                for e in evidence
                if isinstance(e, dict)
            )
        )
    appeal = d.get("appeal")
    if isinstance(appeal, dict):
        parts.append(
            f"appeal {appeal.get('appeal_id')} "
            f"{appeal.get('appellant_type') or appeal.get('outcome') or ''}".strip()
        )
    data = d.get("data")
    if isinstance(data, dict):
        marks = data.get("verification")
        if isinstance(marks, dict) and marks:
            parts.append("verification " + ", ".join(f"{k}={v}" for k, v in marks.items()))
        if data.get("outcome"):
            parts.append(f"outcome={data['outcome']}")
    return "; ".join(parts)


def _entry_problem(entry: Mapping[str, Any]) -> str | None:
    """For an entry without stored bytes (a query result): does its hash recompute?"""
    if not is_hex64(entry.get("hash")) or not is_hex64(entry.get("prev_hash")):
        return "INVALID"
    try:
        body = canonical({k: v for k, v in entry.items() if k not in UNHASHED_KEYS})
    except CanonicalError:
        return "INVALID"
    if hash_of_canonical(str(entry["prev_hash"]), body) != entry["hash"]:
        return "HASH MISMATCH"
    return None


def _line_problem(raw: bytes) -> _Copy | None:
    check = inspect_line(raw)
    entry = check.entry
    if entry is None:
        return None
    if check.code == "invalid_entry":
        return entry, "INVALID"
    problems = []
    if check.code == "non_canonical":
        problems.append("NON-CANONICAL")
    if check.recomputed != entry.get("hash"):
        problems.append("HASH MISMATCH")
    return entry, " / ".join(problems) or None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Identical copies (a retried write): equal but for writer metadata."""
    return {k: v for k, v in a.items() if k != "writer"} == {
        k: v for k, v in b.items() if k != "writer"
    }


def _rows(chain_id: str, copies: Mapping[int, list[_Copy]]) -> list[dict[str, Any]]:
    from docket.lifecycle import TERMINAL

    rows: list[dict[str, Any]] = []
    expected: str | None = genesis_hash(chain_id)
    last = 0
    prev_to: str | None = None
    for seq in sorted(copies):
        if seq != last + 1:
            rows.append({"seq": f"{last + 1}..{seq - 1}", "check": "GAP (missing)"})
            expected = None
        for i, (e, problem) in enumerate(copies[seq]):
            ev, d, user = _obj(e.get("event")), _obj(e.get("docket")), _obj(e.get("user"))
            checks = [problem] if problem else []
            if expected is not None and e.get("prev_hash") != expected:
                checks.append("CHAIN BREAK")
            if seq == last + 1:
                if prev_to is not None and prev_to in TERMINAL:
                    checks.append("AFTER TERMINAL")
                elif d.get("from_state") != prev_to:
                    checks.append("STATE MISMATCH")
            if len(copies[seq]) > 1:
                checks.append("CONFLICT")
            roles = user.get("roles")
            roles = roles if isinstance(roles, list) else []
            rows.append(
                {
                    "seq": str(seq) if i == 0 else f"{seq}'",
                    "when": e.get("@timestamp", ""),
                    "who": f"{user.get('id', '?')} ({', '.join(str(r) for r in roles)})",
                    "action": ev.get("action", ""),
                    "transition": f"{d.get('from_state') or '-'} -> {d.get('to_state') or '-'}",
                    "reason": ev.get("reason") or "",
                    "details": _summary(d),
                    "check": " / ".join(checks) or "ok",
                }
            )
        first = copies[seq][0][0]
        expected = first.get("hash")
        prev_to = _obj(first.get("docket")).get("to_state")
        last = seq
    return rows


def timeline(chain_id: str, paths: Iterable[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """Rows (seq order) for one chain from the log; identical duplicates merged, conflicting
    copies kept. Raises MissingInput / UnreadableInput (audit.reader) for unreadable paths."""
    wanted = chain_id.encode()
    copies: dict[int, list[_Copy]] = {}
    for _path, _line, raw in iter_lines(paths):
        # A cheap prefilter; a line with escapes may spell the chain id differently.
        if wanted not in raw and b"\\u" not in raw:
            continue
        got = _line_problem(raw)
        if got is None:
            continue
        e, problem = got
        ev = e.get("event")
        seq = ev.get("sequence") if isinstance(ev, dict) else None
        if chain_id_of(e) != chain_id or type(seq) is not int:
            continue
        same = copies.setdefault(seq, [])
        if not any(_same(c, e) and p == problem for c, p in same):
            same.append((e, problem))
    return _rows(chain_id, copies)


def timeline_rows(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows from entries as the workflow's ``timeline`` query returns them (in order, without
    writer metadata or a file), each checked: its hash recomputes, it links, it makes sense."""
    copies: dict[int, list[_Copy]] = {}
    chain_id = ""
    for entry in entries:
        e = dict(entry)
        chain_id = chain_id or (chain_id_of(e) or "")
        ev = e.get("event")
        seq = ev.get("sequence") if isinstance(ev, dict) else None
        if type(seq) is not int:
            continue
        same = copies.setdefault(seq, [])
        if not any(_same(c, e) for c, _ in same):
            same.append((e, _entry_problem(e)))
    return _rows(chain_id, copies)


def render_timeline(
    chain_id: str | None, rows: Sequence[Mapping[str, Any]], *, width: int | None = 60
) -> str:
    """The timeline as a table: one line per entry (or gap), then whether all verify.

    ``rows`` are :func:`timeline`'s rows, or audit entries as the workflow's ``timeline``
    query returns them (recognised by their ``event``; checked with :func:`timeline_rows`).
    ``width``: longest cell (longer ones are cut with "…"); None keeps every cell whole."""
    if rows and "event" in rows[0]:
        if chain_id is None:
            chain_id = chain_id_of(rows[0]) or "?"
        rows = timeline_rows(rows)

    def cell(value: Any) -> str:
        s = terminal(value)  # escapes control and bidi characters; one line
        return s if width is None or len(s) <= width else s[: width - 1] + "…"

    table = [list(COLUMNS)] + [[cell(r.get(c, "")) for c in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    entries = sum(1 for r in rows if "when" in r)
    lines = [f"Timeline of {terminal(chain_id or '?')}: {entries} entries", ""]
    for n, row in enumerate(table):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    bad = [r for r in rows if r.get("check") != "ok"]
    lines += ["", "all entries verify" if not bad else f"{len(bad)} rows FAILED verification"]
    return "\n".join(lines) + "\n"
