"""Experimental Docket variants, measured by the lifecycle suite (never shipped).

- `AuthorityRequestRegularAudit` (variant `docket-regular-audit`): Docket's workflow as it was
  before the local audit write: every entry stamped with `workflow.now()` and written by a
  regular activity (one more activity and one more workflow task per transition).
- `AuthorityRequestNoAuditWrite` (`docket-no-audit-write`): the shipped workflow with no audit
  write at all, so the difference to `docket` is what the writes cost (activities, workflow
  activations, the writer), and the difference to `bare` is everything else Docket does.
- `AuthorityRequestNoPublish` (`docket-no-publish`): no search attribute, memo or details
  update per transition: what Docket's visibility costs the server and the worker.
- `NoDiskAuditActivities` (`docket-no-disk-write`): the shipped workflow and its local
  activities, but the activity returns without touching the log: the writer's own share.

The workflow variants keep the workflow type name, so docket.submit and the Update handlers
work unchanged. None of them keeps Docket's invariants; they only take the cost apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from activities.audit import AuditActivities
    from docket import temporal_names as names
    from docket.case import RequestResult
    from workflows.authority_request import AuthorityRequest


@workflow.defn(name=names.WORKFLOW_NAME)
class AuthorityRequestRegularAudit(AuthorityRequest):
    @workflow.init
    def __init__(self, *start: Any) -> None:
        super().__init__(*start)

    @workflow.run
    async def run(self, *start: Any) -> RequestResult:
        return await super().run(*start)

    def _clock(
        self, cause_at: datetime | None, *, received_at: datetime | None = None
    ) -> tuple[datetime, bool]:
        return workflow.now(), False


@workflow.defn(name=names.WORKFLOW_NAME)
class AuthorityRequestNoAuditWrite(AuthorityRequest):
    @workflow.init
    def __init__(self, *start: Any) -> None:
        super().__init__(*start)

    @workflow.run
    async def run(self, *start: Any) -> RequestResult:
        return await super().run(*start)

    async def _write_audit(self, entries: list[dict[str, Any]], *, local: bool) -> None:
        return None


@workflow.defn(name=names.WORKFLOW_NAME)
class AuthorityRequestNoPublish(AuthorityRequest):
    """No search attribute, memo or details update per transition (what visibility costs)."""

    @workflow.init
    def __init__(self, *start: Any) -> None:
        super().__init__(*start)

    @workflow.run
    async def run(self, *start: Any) -> RequestResult:
        return await super().run(*start)

    def _publish(self) -> None:
        return None


class NoDiskAuditActivities(AuditActivities):
    @activity.defn(name="write_audit_entries")
    async def write_entries(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"id": e["event"]["id"], "sequence": e["event"]["sequence"], "hash": e["hash"]}
            for e in entries
        ]
