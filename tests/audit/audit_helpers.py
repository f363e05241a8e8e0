"""Shared builders for the audit tests (imported by the test modules in this directory)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from audit.entry import AuditAnchor, ChainHead, build_entry
from audit.writer import AuditWriter

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
ORG = "Bộ Thông tin và Truyền thông"
ACTIONS = [
    ("submit", None, "pending_approval"),
    ("approve", "pending_approval", "delivering"),
    ("delivered", "delivering", "awaiting_ack"),
    ("acknowledge", "awaiting_ack", "acknowledged"),
    ("report_effect", "acknowledged", "verifying"),
    ("verified", "verifying", "monitoring"),
]
RECHECK = ("recheck", "monitoring", "monitoring")  # every entry after the sixth


def chain_entries(chain_id: str, n: int, *, start: datetime = T0) -> list[dict[str, Any]]:
    """n deterministic entries of one chain (same inputs -> byte-identical entries), a
    lifecycle that makes sense: submit ... verified, then rechecks while monitoring."""
    head = ChainHead.genesis(chain_id)
    out: list[dict[str, Any]] = []
    for i in range(n):
        action, frm, to = ACTIONS[i] if i < len(ACTIONS) else RECHECK
        entry, head = build_entry(
            head,
            timestamp=start + timedelta(minutes=7 * i),
            action=action,
            from_state=frm,
            to_state=to,
            actor_id="tran.van.b" if i % 2 else "nguyen.van.a",
            actor_roles=["approver"] if i % 2 else ["maker"],
            organization=ORG,
            reason=f"Lý do {i}: mạo danh lãnh đạo\r\nline two\ttab \u2028 sep",
            items=[{"item_id": f"it-{i}", "url": f"https://facebook.example/p/{i}"}],
            data={"step": i, "note": "Truyền thông 😀"},
        )
        out.append(entry)
    return out


def anchor_of(entries: list[dict[str, Any]]) -> AuditAnchor:
    last = entries[-1]
    return AuditAnchor(last["docket"]["chain_id"], last["event"]["sequence"], last["hash"])


def write_log(
    directory: Path, chains: dict[str, int], *, host: str = "test"
) -> tuple[Path, dict[str, list[dict[str, Any]]]]:
    """Write chains (interleaved, in small batches) with a real AuditWriter; return its segment."""
    built = {cid: chain_entries(cid, n) for cid, n in chains.items()}
    writer = AuditWriter(directory, host=host)
    longest = max(chains.values())
    for i in range(0, longest, 2):
        for entries in built.values():
            batch = entries[i : i + 2]
            if batch:
                writer.append(batch, attempt=1)
    path = writer.segment_path
    writer.close()
    assert path is not None
    return path, built
