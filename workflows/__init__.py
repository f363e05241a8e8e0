"""Temporal workflows: `AuthorityRequest` (one run per authority request) and `AuditCheckpoint`
(signs a checkpoint of the audit log; run by a Schedule)."""

from workflows.authority_request import AuthorityRequest
from workflows.checkpoint import AuditCheckpoint

__all__ = ["AuditCheckpoint", "AuthorityRequest"]
