"""Temporal workflows: `AuthorityRequest` (one run per authority request) and `AuditCheckpoint`
(signs a checkpoint of the audit log; run by a Schedule).

Imported lazily: the sandbox imports this package afresh for every workflow run it starts, and
a run of one workflow has no use for the other's module (~3 ms per run to import it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workflows.authority_request import AuthorityRequest
    from workflows.checkpoint import AuditCheckpoint

__all__ = ["AuditCheckpoint", "AuthorityRequest"]


def __getattr__(name: str) -> Any:
    if name == "AuthorityRequest":
        from workflows.authority_request import AuthorityRequest

        return AuthorityRequest
    if name == "AuditCheckpoint":
        from workflows.checkpoint import AuditCheckpoint

        return AuditCheckpoint
    raise AttributeError(f"module 'workflows' has no attribute {name!r}")
