"""Pure builder for audit entries (stdlib only; no I/O, clocks or randomness: sandbox-safe).

Workflow code keeps a :class:`ChainHead` per request, calls :func:`build_entry` for each
transition with ``workflow.now()`` as the timestamp, hands the entry to the audit-write activity
and keeps the returned head. The workflow result carries :meth:`ChainHead.anchor`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from audit.canonical import canonical
from audit.chain import genesis_hash, hash_of_canonical, is_hex64

__all__ = ["AuditAnchor", "ChainHead", "build_entry", "format_timestamp"]


@dataclass(frozen=True, slots=True)
class AuditAnchor:
    """What a workflow result carries so an auditor can pin the log: entry count and head hash."""

    chain_id: str
    count: int
    head_hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "count": self.count, "head_hash": self.head_hash}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditAnchor:
        """Accepts ``chain_id`` or ``workflow_id``; ``count`` and ``head_hash`` are required."""
        chain_id = data.get("chain_id", data.get("workflow_id"))
        count = data.get("count")
        head = data.get("head_hash")
        if not isinstance(chain_id, str) or not chain_id:
            raise ValueError("anchor needs a non-empty chain_id (or workflow_id)")
        if type(count) is not int or count < 0:
            raise ValueError(f"anchor {chain_id}: count must be a non-negative int, got {count!r}")
        if not is_hex64(head):
            raise ValueError(f"anchor {chain_id}: head_hash must be 64 lowercase hex characters")
        return cls(chain_id, count, str(head))


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The state of one request's chain: last sequence written (0 = none) and its hash."""

    chain_id: str
    sequence: int
    head_hash: str

    @classmethod
    def genesis(cls, chain_id: str) -> ChainHead:
        if not chain_id:
            raise ValueError("chain_id must be non-empty")
        return cls(chain_id, 0, genesis_hash(chain_id))

    def anchor(self) -> AuditAnchor:
        return AuditAnchor(self.chain_id, self.sequence, self.head_hash)


def format_timestamp(ts: datetime) -> str:
    """ISO 8601 UTC with microseconds and 'Z', e.g. 2026-11-29T08:00:00.123456Z."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware (use workflow.now())")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_entry(
    chain: ChainHead,
    *,
    timestamp: datetime,
    action: str,
    from_state: str | None,
    to_state: str,
    actor_id: str,
    actor_roles: Sequence[str],
    organization: str,
    reason: str | None,
    outcome: str = "success",
    items: Sequence[Mapping[str, Any]] | None = None,
    evidence: Sequence[Mapping[str, Any]] | None = None,
    request: Mapping[str, Any] | None = None,
    appeal: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    signed: Mapping[str, Any] | None = None,
    message: str | None = None,
) -> tuple[dict[str, Any], ChainHead]:
    """Build the next entry of ``chain`` (with prev_hash and hash, without writer metadata).

    Returns the entry and the new head. Raises CanonicalError (naming the path) if any value is
    outside the canonical subset (floats, non-ASCII keys, huge ints...), ValueError on bad args.
    """
    if isinstance(actor_roles, str):
        raise ValueError("actor_roles must be a sequence of role names, not a string")
    sequence = chain.sequence + 1
    docket: dict[str, Any] = {
        "chain_id": chain.chain_id,
        "from_state": from_state,
        "to_state": to_state,
    }
    for key, part in (
        ("items", items),
        ("evidence", evidence),
        ("request", request),
        ("appeal", appeal),
        ("data", data),
        ("signed", signed),
    ):
        if part is not None:
            docket[key] = part
    event: dict[str, Any] = {
        "id": f"{chain.chain_id}:{sequence}",
        "sequence": sequence,
        "action": action,
        "outcome": outcome,
        "kind": "event",
    }
    if reason is not None:
        event["reason"] = reason
    body: dict[str, Any] = {
        "@timestamp": format_timestamp(timestamp),
        "message": message
        if message is not None
        else f"{action}: {from_state or 'none'} -> {to_state}",
        "event": event,
        "user": {"id": actor_id, "roles": list(actor_roles)},
        "organization": {"name": organization},
        "docket": docket,
    }
    # raises CanonicalError naming the path, e.g. $.docket.data.x
    raw = canonical(body)
    # Round-trip through the canonical bytes: the returned entry holds fresh plain JSON values
    # (tuples become lists; no aliasing of the caller's objects) and is exactly what was hashed
    # (the canonical form of `entry` is `raw` again).
    entry: dict[str, Any] = json.loads(raw)
    digest = hash_of_canonical(chain.head_hash, raw)
    entry["prev_hash"] = chain.head_hash
    entry["hash"] = digest
    return entry, ChainHead(chain.chain_id, sequence, digest)
