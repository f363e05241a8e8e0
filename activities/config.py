"""The deployment's configuration, read by activities so that it reaches workflow code through
history: the operator's reference data and trust roots, never the caller's word."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

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
    ) -> None:
        self._reference = reference
        self._trust = trust
        self._trust_max_age = trust_max_age

    def activities(self) -> list[Callable[..., Any]]:
        """Every configuration activity, for `Worker(activities=...)`."""
        return [self.load_deployment, self.load_trust]

    @activity.defn(name="load_deployment")
    async def load_deployment(self) -> Deployment:
        """What a new request is checked against: the reference data (no roster: who acts is
        proven by credentials) and the trust roots."""
        try:
            reference = self._reference().for_workflows()
        except ReferenceError as exc:  # the operator's files are broken: retried until fixed
            raise ApplicationError(str(exc), type="ReferenceError") from None
        return Deployment(reference=reference, trust=await self.load_trust())

    @activity.defn(name="load_trust")
    async def load_trust(self) -> TrustSnapshot:
        """The trust roots, read now."""
        try:
            trust = self._trust()
        except TrustFileError as exc:  # retried until the operator fixes the file
            raise ApplicationError(str(exc), type="TrustFileError") from None
        return TrustSnapshot(trust=trust, max_age_seconds=int(self._trust_max_age.total_seconds()))
