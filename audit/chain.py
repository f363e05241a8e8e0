"""Hash chain of one request's audit entries (pure; stdlib only; sandbox-safe).

genesis  = sha256(b"docket.audit.v1/genesis\\x00" + chain_id (UTF-8)).hexdigest()
hash_i   = sha256(b"docket.audit.v1/entry\\x00" + bytes.fromhex(prev_hash_i)
                  + canonical(body_i)).hexdigest()
body_i   = the entry without the top-level keys "hash", "prev_hash" and "writer".
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from audit.canonical import canonical

GENESIS_TAG = b"docket.audit.v1/genesis\x00"
ENTRY_TAG = b"docket.audit.v1/entry\x00"
UNHASHED_KEYS = frozenset({"hash", "prev_hash", "writer"})

__all__ = [
    "ENTRY_TAG",
    "GENESIS_TAG",
    "UNHASHED_KEYS",
    "chain_id_of",
    "chain_of_event_id",
    "entry_hash",
    "genesis_hash",
    "hash_of_canonical",
    "hashed_body",
    "is_hex64",
    "recompute_hash",
]

_HEX = frozenset("0123456789abcdef")


def is_hex64(value: object) -> bool:
    """True for a 64-character lowercase hex string (the only accepted hash spelling)."""
    return isinstance(value, str) and len(value) == 64 and _HEX.issuperset(value)


def genesis_hash(chain_id: str) -> str:
    """The prev_hash of a chain's first entry."""
    return hashlib.sha256(GENESIS_TAG + chain_id.encode("utf-8")).hexdigest()


def entry_hash(prev_hash: str, body: Any) -> str:
    """hash_i from the previous hash (64 lowercase hex) and the entry body."""
    return hash_of_canonical(prev_hash, canonical(body))


def hash_of_canonical(prev_hash: str, raw: bytes) -> str:
    """hash_i from the previous hash and the body's canonical bytes (`canonical(body)`)."""
    if not is_hex64(prev_hash):
        raise ValueError(f"prev_hash must be 64 lowercase hex characters, got {prev_hash!r}")
    return hashlib.sha256(ENTRY_TAG + bytes.fromhex(prev_hash) + raw).hexdigest()


def chain_of_event_id(event_id: str) -> str:
    """The chain id inside an ``event.id`` (``<chain_id>:<sequence>``; a chain id may hold ':')."""
    return event_id.rpartition(":")[0]


def chain_id_of(entry: Mapping[str, Any]) -> str | None:
    """The chain an entry belongs to: ``docket.chain_id``, else the chain part of ``event.id``;
    None when neither is a string."""
    docket = entry.get("docket")
    if type(docket) is dict:
        cid = docket.get("chain_id")
        if cid is not None:
            return cid if type(cid) is str else None
    event = entry.get("event")
    if type(event) is dict:
        eid = event.get("id")
        if type(eid) is str:
            return chain_of_event_id(eid)
    return None


def hashed_body(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an entry that is hashed: everything but hash, prev_hash and writer."""
    return {k: v for k, v in entry.items() if k not in UNHASHED_KEYS}


def recompute_hash(entry: Mapping[str, Any]) -> str:
    """Recompute an entry's hash from its own prev_hash and body (raises on malformed input)."""
    return entry_hash(entry["prev_hash"], hashed_body(entry))
