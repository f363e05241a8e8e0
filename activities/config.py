"""The deployment's configuration, read by activities so that it reaches workflow code through
history: the operator's reference data (and, with signed commands, the trust roots), never
the caller's word."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from docket.reference import ReferenceData


class DeploymentActivities:
    """`reference`: how this worker reads the operator's reference data (the files under
    DOCKET_REFERENCE_DIR, read afresh for every new request, so an edit reaches the next
    request without restarting workers)."""

    def __init__(self, reference: Callable[[], ReferenceData]) -> None:
        self._reference = reference

    def activities(self) -> list[Callable[..., Any]]:
        """Every configuration activity, for `Worker(activities=...)`."""
        return [self.load_reference]

    @activity.defn(name="load_reference")
    async def load_reference(self) -> ReferenceData:
        """The reference data a new request is checked and resolved against (no actors: who
        acts is proven by credentials, not looked up)."""
        return self._reference().model_copy(update={"actors": {}})
