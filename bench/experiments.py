"""Experimental Docket workflow variants, measured by the lifecycle suite (never shipped).

`AuthorityRequestRegularAudit` is Docket's workflow as it was before the local audit write:
every entry stamped with `workflow.now()` and written by a regular activity (one more
activity and one more workflow task per transition). Measured side by side with the shipped
workflow, it shows what the local write saves. It keeps the workflow type name, so
docket.submit and the Update handlers work unchanged.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from docket import temporal_names as names
    from docket.case import RequestInput, RequestResult
    from workflows.authority_request import AuthorityRequest


@workflow.defn(name=names.WORKFLOW_NAME)
class AuthorityRequestRegularAudit(AuthorityRequest):
    @workflow.init
    def __init__(self, request: RequestInput) -> None:
        super().__init__(request)

    @workflow.run
    async def run(self, request: RequestInput) -> RequestResult:
        return await super().run(request)

    def _clock(self, cause_at: datetime | None) -> tuple[datetime, bool]:
        return workflow.now(), False
