"""A workflow that checks a signed command inside Temporal's sandbox (for test_credentials).

Kept apart from the test module so the sandbox imports only this, docket's identity modules
and what they import: it proves they import and verify under the sandbox's restrictions,
deterministically, with the trust roots arriving as a workflow input (through a payload,
as they arrive through an activity result in the real workflow)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio import workflow

from docket.credentials import IdentityError, TrustRoots, verify_signed
from docket.statement import SignedCommand, verify_command


class CheckInput(BaseModel):
    command: SignedCommand
    trust: TrustRoots
    now: datetime
    request_id: str
    trigger: str


class CheckResult(BaseModel):
    ok: bool
    code: str | None = None
    actor_id: str | None = None
    organization_id: str | None = None
    roles: tuple[str, ...] = ()
    trust_digest: str = ""


@workflow.defn(sandboxed=True)
class IdentityCheckWorkflow:
    @workflow.run
    async def run(self, check: CheckInput) -> CheckResult:
        try:
            statement, credential = verify_command(
                check.command,
                check.trust,
                check.now,
                request_id=check.request_id,
                trigger=check.trigger,
            )
            verify_signed(statement.message, check.command.signature, check.trust, check.now)
        except IdentityError as exc:
            return CheckResult(ok=False, code=exc.code, trust_digest=check.trust.digest)
        return CheckResult(
            ok=True,
            actor_id=credential.actor_id,
            organization_id=credential.organization_id,
            roles=tuple(r.value for r in credential.roles),
            trust_digest=check.trust.digest,
        )
