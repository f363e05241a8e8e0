"""One request's timeline as a readable table, each entry verified inline."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from audit.chain import genesis_hash, is_hex64, recompute_hash
from audit.reader import iter_entries

__all__ = ["render_timeline", "timeline"]


def _check(entry: Mapping[str, Any], expected_prev: str | None) -> str:
    if not is_hex64(entry.get("hash")) or not is_hex64(entry.get("prev_hash")):
        return "INVALID"
    try:
        ok = recompute_hash(entry) == entry["hash"]
    except (ValueError, KeyError):
        ok = False
    if not ok:
        return "HASH MISMATCH"
    if expected_prev is not None and entry["prev_hash"] != expected_prev:
        return "CHAIN BREAK"
    return "ok"


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
    if isinstance(data, dict) and data.get("outcome"):
        parts.append(f"outcome={data['outcome']}")
    return "; ".join(parts)


def timeline(chain_id: str, paths: Iterable[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """Rows (seq order) for one chain; identical duplicates merged, conflicting copies kept."""
    copies: dict[int, list[dict[str, Any]]] = {}
    for _path, _line, e in iter_entries(paths, contains=chain_id.encode()):
        ev: dict[str, Any] = e["event"] if isinstance(e.get("event"), dict) else {}
        d: dict[str, Any] = e["docket"] if isinstance(e.get("docket"), dict) else {}
        cid = d.get("chain_id") or str(ev.get("id", "")).rpartition(":")[0]
        seq = ev.get("sequence")
        if cid != chain_id or type(seq) is not int:
            continue
        same = copies.setdefault(seq, [])
        key = (e.get("hash"), e.get("prev_hash"))
        if all(
            (c.get("hash"), c.get("prev_hash")) != key
            or {k: v for k, v in c.items() if k != "writer"}
            != {k: v for k, v in e.items() if k != "writer"}
            for c in same
        ):
            same.append(e)
    rows: list[dict[str, Any]] = []
    expected: str | None = genesis_hash(chain_id)
    last = 0
    for seq in sorted(copies):
        if seq != last + 1:
            rows.append({"seq": f"{last + 1}..{seq - 1}", "check": "GAP (missing)"})
            expected = None
        for i, e in enumerate(copies[seq]):
            ev, d = e.get("event") or {}, e.get("docket") or {}
            user = e.get("user") or {}
            check = _check(e, expected)
            if len(copies[seq]) > 1:
                check += " / CONFLICT"
            rows.append(
                {
                    "seq": str(seq) if i == 0 else f"{seq}'",
                    "when": e.get("@timestamp", ""),
                    "who": f"{user.get('id', '?')} ({', '.join(user.get('roles') or [])})",
                    "action": ev.get("action", ""),
                    "transition": f"{d.get('from_state') or '-'} -> {d.get('to_state') or '-'}",
                    "reason": ev.get("reason") or "",
                    "details": _summary(d),
                    "check": check,
                }
            )
        expected = copies[seq][0].get("hash")
        last = seq
    return rows


COLUMNS = ("seq", "when", "who", "action", "transition", "reason", "details", "check")


def render_timeline(chain_id: str, rows: list[dict[str, Any]], *, width: int = 60) -> str:
    def cut(s: str) -> str:
        s = " ".join(str(s).split())
        return s if len(s) <= width else s[: width - 1] + "…"

    table = [list(COLUMNS)] + [[cut(r.get(c, "")) for c in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    lines = [f"Timeline of {chain_id}: {sum(1 for r in rows if 'when' in r)} entries", ""]
    for n, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    bad = [r for r in rows if r.get("check") != "ok"]
    lines += ["", "all entries verify" if not bad else f"{len(bad)} rows FAILED verification"]
    return "\n".join(lines) + "\n"
