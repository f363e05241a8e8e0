"""The checkpoint activity: runs `audit.checkpoint.make_checkpoint` on a worker that holds the
log key and can read every audit source directory.

Configuration (worker environment, never workflow input):

    DOCKET_LOG_KEY             path of the log's private key file (mode 600)
    DOCKET_CHECKPOINT_DIR      the checkpointer's state (default var/checkpoints)
    DOCKET_CHECKPOINT_SOURCES  LABEL=DIR,... one per worker host (default local=$DOCKET_AUDIT_DIR)

Only one worker should register this activity (or all must share the state directory: the
checkpointer takes a lock, so a second concurrent run fails fast and is retried).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from audit.checkpoint import (
    CheckpointConfig,
    CheckpointError,
    CheckpointRefused,
    ConfigError,
    make_checkpoint,
    signer_from_env,
)
from audit.note import SignerKey
from workflows.checkpoint import ACTIVITY_NAME, CheckpointOutcome, CheckpointRequest

__all__ = ["CheckpointActivities", "CheckpointSetupError"]

log = structlog.get_logger("docket.checkpoint")
HEARTBEAT_EVERY = 5.0


class CheckpointSetupError(Exception):
    """The worker cannot make checkpoints (missing key, bad sources); the message says what."""


class CheckpointActivities:
    def __init__(self, config: CheckpointConfig, key: SignerKey) -> None:
        self.config = config
        self._key = key

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CheckpointActivities:
        """Key and directories from the environment; raises CheckpointSetupError."""
        try:
            return cls(CheckpointConfig.from_env(environ), signer_from_env(environ))
        except ConfigError as exc:
            raise CheckpointSetupError(str(exc)) from None

    def activities(self) -> list[Callable[..., Any]]:
        """For `Worker(activities=...)`."""
        return [self.make_checkpoint]

    @activity.defn(name=ACTIVITY_NAME)
    async def make_checkpoint(self, request: CheckpointRequest) -> CheckpointOutcome:
        work = asyncio.ensure_future(asyncio.to_thread(make_checkpoint, self.config, self._key))
        while not (await asyncio.wait({work}, timeout=HEARTBEAT_EVERY))[0]:
            activity.heartbeat()
        try:
            result = work.result()
        except CheckpointRefused as exc:
            log.critical("audit_checkpoint_refused", reason=str(exc))
            raise ApplicationError(
                f"checkpoint refused: {exc}", type="CheckpointRefused", non_retryable=True
            ) from None
        except (CheckpointError, OSError) as exc:
            raise ApplicationError(f"checkpoint failed: {exc}", type=type(exc).__name__) from None
        for problem in result.problems:
            log.warning("audit_checkpoint_problem", problem=problem)
        log.info(
            "audit_checkpoint",
            trigger=request.trigger,
            size=result.size,
            new_entries=result.new_entries,
            signed=result.signed,
        )
        return CheckpointOutcome(
            origin=result.origin,
            size=result.size,
            root_hash=result.root.hex(),
            previous_size=result.previous_size,
            new_entries=result.new_entries,
            signed=result.signed,
            checkpoint_file=result.checkpoint_path,
            segments_read=result.segments_read,
            problems=result.problems,
            seconds=round(result.seconds, 3),
        )
