"""Docket's tamper-evident audit log: pure entry/chain code, a durable writer and auditor tools.

``audit.canonical``, ``audit.chain`` and ``audit.entry`` import only the standard library and do
no I/O, so workflow code may use them inside Temporal's sandbox. Everything else (writer, reader,
verify, show, report, cli) runs in workers or on an auditor's machine.
"""

from audit.canonical import CanonicalError, canonical
from audit.chain import ENTRY_TAG, GENESIS_TAG, entry_hash, genesis_hash, hashed_body
from audit.entry import AuditAnchor, ChainHead, build_entry

__all__ = [
    "ENTRY_TAG",
    "GENESIS_TAG",
    "AuditAnchor",
    "CanonicalError",
    "ChainHead",
    "build_entry",
    "canonical",
    "entry_hash",
    "genesis_hash",
    "hashed_body",
]
