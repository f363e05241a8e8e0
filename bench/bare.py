"""The bare baseline: a plain Temporal workflow with Docket's shape but none of its machinery.

Same Update (approve, with a validator that refuses until the baseline is captured), the same
activity calls (one configuration activity at start, then the same HTTP calls to the
simulator: baseline probes, deliver, polls until the platform has acknowledged and decided
every item, verification probes, re-check probes) and the same timers (poll interval,
re-checks, appeal window) as a Docket comply lifecycle, but no state machine, no audit entries
(no audit-write activities), no search-attribute or details upserts, no receipts, no signature
checks. The difference between the two is what Docket costs.

The configuration activity is Docket's own `load_deployment` (the operator's reference data
and trust roots, the same payload), run without a client, so it does not look up earlier runs
of the request id: any workflow that takes its settings from the deployment reads them once at
start, while the look-up is Docket's own protection against a replayed submission.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.config import DeploymentActivities
    from activities.platform import PlatformActivities
    from docket.intake import Deployment
    from docket.platform_protocol import OrderPayload, PlatformStatus

WORKFLOW_NAME = "BareRequest"
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
TIMEOUT = timedelta(seconds=30)


class BareInput(BaseModel):
    request_id: str
    platform: str
    order: OrderPayload
    items: list[tuple[str, str]]
    vantages: list[str]
    poll_interval: timedelta
    rechecks: list[timedelta]
    appeal_window: timedelta


class BareResult(BaseModel):
    request_id: str
    polls: int
    probes: int


@workflow.defn(name=WORKFLOW_NAME)
class BareRequest:
    def __init__(self) -> None:
        self.ready = False
        self.approved = False
        self.probes = 0
        self.config: Deployment | None = None

    @workflow.run
    async def run(self, inp: BareInput) -> BareResult:
        self.config = await workflow.execute_activity_method(
            DeploymentActivities.load_deployment,
            start_to_close_timeout=TIMEOUT,
            retry_policy=RETRY,
        )
        await self._probe(inp, inp.items, ["control"], baseline=True)
        self.ready = True
        await workflow.wait_condition(lambda: self.approved)
        ticket = await workflow.execute_activity_method(
            PlatformActivities.deliver_order,
            args=[inp.platform, inp.order],
            start_to_close_timeout=TIMEOUT,
            retry_policy=RETRY,
        )
        polls = 0
        while True:
            await self._sleep(inp.poll_interval)
            status: PlatformStatus = await workflow.execute_activity_method(
                PlatformActivities.poll_platform,
                args=[inp.platform, ticket.ticket],
                start_to_close_timeout=TIMEOUT,
                retry_policy=RETRY,
            )
            polls += 1
            decided = [e for e in status.items if e.effect not in (None, "needs_more_info")]
            if status.acknowledged_at and len(decided) == len(inp.items):
                break
        await self._probe(inp, inp.items, inp.vantages)
        decided_at = workflow.now()
        for delay in inp.rechecks:
            await self._sleep(decided_at + delay - workflow.now())
            await self._probe(inp, inp.items, inp.vantages)
        last = max([inp.appeal_window, *inp.rechecks])
        await self._sleep(decided_at + last - workflow.now())
        return BareResult(request_id=inp.request_id, polls=polls, probes=self.probes)

    async def _sleep(self, delay: timedelta) -> None:
        # A timer the way Docket makes them: wait_condition with a time-out
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: False, timeout=max(delay, timedelta(0)))

    async def _probe(
        self,
        inp: BareInput,
        items: list[tuple[str, str]],
        vantages: list[str],
        *,
        baseline: bool = False,
    ) -> None:
        method = PlatformActivities.capture_baseline if baseline else PlatformActivities.probe_item
        calls = [
            workflow.execute_activity_method(
                method,
                args=[inp.platform, item_id, url, vantage],
                start_to_close_timeout=TIMEOUT,
                retry_policy=RETRY,
            )
            for item_id, url in items
            for vantage in vantages
        ]
        self.probes += len(calls)
        await asyncio.gather(*calls)

    @workflow.query
    def is_ready(self) -> bool:
        return self.ready

    @workflow.update
    async def approve(self, payload: Any) -> dict[str, Any]:
        self.approved = True
        return {"state": "delivering"}

    @approve.validator
    def _check_approve(self, payload: Any) -> None:
        if not self.ready:
            raise ApplicationError("not ready", type="NotReady", non_retryable=True)
        if self.approved:
            raise ApplicationError("already approved", type="CommandRejected", non_retryable=True)
