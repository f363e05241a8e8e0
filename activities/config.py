"""The deployment's configuration, read by activities so that it reaches workflow code through
history: the operator's reference data and trust roots, never the caller's word."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from docket.credentials import TrustFileError, TrustRoots
from docket.intake import Deployment, TrustSnapshot
from docket.reference import ReferenceData, ReferenceError

# How long a running request may decide on trust roots it read before reading them again:
# a revocation reaches every command sent after that (docs/identity.md).
DEFAULT_TRUST_MAX_AGE = timedelta(minutes=5)


class DeploymentActivities:
    """`reference` and `trust` read the operator's reference data and trust roots (the files
    under DOCKET_REFERENCE_DIR and DOCKET_TRUST_FILE, read afresh each time, so an edit reaches
    the next request or command without restarting workers)."""

    def __init__(
        self,
        reference: Callable[[], ReferenceData],
        trust: Callable[[], TrustRoots],
        *,
        trust_max_age: timedelta = DEFAULT_TRUST_MAX_AGE,
        client: Client | None = None,
    ) -> None:
        """`client`: to find a request id's earlier runs (without one, none are looked for)."""
        self._reference = reference
        self._trust = trust
        self._trust_max_age = trust_max_age
        self._client = client

    def activities(self) -> list[Callable[..., Any]]:
        """Every configuration activity, for `Worker(activities=...)`."""
        return [self.load_deployment, self.load_trust]

    @activity.defn(name="load_deployment")
    async def load_deployment(self) -> Deployment:
        """What a new request is checked against: the reference data (no roster: who acts is
        proven by credentials), the trust roots, and its id's earlier admitted runs."""
        try:
            reference = self._reference().for_workflows()
        except ReferenceError as exc:  # the operator's files are broken: retried until fixed
            raise ApplicationError(str(exc), type="ReferenceError") from None
        info = activity.info()
        return Deployment(
            reference=reference,
            trust=await self.load_trust(),
            admitted_runs=await self._admitted_runs(info.workflow_id, info.workflow_run_id),
        )

    async def _admitted_runs(self, workflow_id: str | None, run_id: str | None) -> tuple[str, ...]:
        """Earlier runs of this request id that got as far as writing an audit entry. A run
        refused at its start wrote nothing: its id may be filed again, correctly. Their
        histories decide (a memo or search attribute could be set by any client)."""
        if self._client is None or not workflow_id:
            return ()
        query = f"WorkflowId = '{workflow_id}'"
        admitted = []
        try:
            async for execution in self._client.list_workflows(query):
                if execution.run_id == run_id:
                    continue
                handle = self._client.get_workflow_handle(workflow_id, run_id=execution.run_id)
                history = await handle.fetch_history()
                if any(_is_audit_write(event) for event in history.events):
                    admitted.append(execution.run_id)
        except RPCError as exc:
            if exc.status != RPCStatusCode.UNIMPLEMENTED:
                raise
            # the time-skipping test server lists nothing: there, earlier runs are not looked for
            activity.logger.warning("earlier runs of %s not checked: %s", workflow_id, exc)
        return tuple(admitted)

    @activity.defn(name="load_trust")
    async def load_trust(self) -> TrustSnapshot:
        """The trust roots, read now."""
        try:
            trust = self._trust()
        except TrustFileError as exc:  # retried until the operator fixes the file
            raise ApplicationError(str(exc), type="TrustFileError") from None
        return TrustSnapshot(trust=trust, max_age_seconds=int(self._trust_max_age.total_seconds()))


def _is_audit_write(event: HistoryEvent) -> bool:
    """An audit write in a history: a scheduled `write_audit_entries` activity, or a local
    activity's marker (local writes record their activity type in the marker's data)."""
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        scheduled = event.activity_task_scheduled_event_attributes
        return scheduled.activity_type.name == "write_audit_entries"
    if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
        marker = event.marker_recorded_event_attributes
        if "data" not in marker.details:
            return False
        return any(b"write_audit_entries" in p.data for p in marker.details["data"].payloads)
    return False
