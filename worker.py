"""The Docket worker process: runs `AuthorityRequest` workflows and their activities.

    ./run worker                       # or: python worker.py

Connection settings come from `temporalio.envconfig` (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE, or a temporal.toml profile), so the same
worker runs against the local dev server, a self-hosted cluster or Temporal Cloud. Docket's
own settings (task queue, audit directory, logging, cache, sandbox) are listed in
`docket.settings`. Platform signing secrets are read from the environment variables that the
reference data names (`credential_env`); they stay in this process and never enter history.
While Temporal is unreachable the worker waits and retries with backoff, as a service should.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

import structlog
from temporalio.client import Client
from temporalio.runtime import Runtime

from activities.checkpoint import CheckpointActivities, CheckpointSetupError
from activities.platform import PlatformActivities
from activities.vantages import VantageConfigError, VantageDirectory
from audit.writer import AuditWriter
from docket.client import Unavailable, connect
from docket.credentials import TrustFileError, load_trust
from docket.logs import configure_logging
from docket.metrics import metrics_runtime
from docket.reference import ReferenceError, load_reference
from docket.settings import SettingsError, WorkerSettings
from docket.worker_setup import (
    WorkerSetupError,
    build_checkpoint_worker,
    build_worker,
    check_search_attributes,
    platform_endpoints,
)
from workflows.checkpoint import ensure_checkpoint_schedule

log = structlog.get_logger("docket.worker")

RECONNECT_FIRST = 1.0  # seconds before the second attempt; doubles up to RECONNECT_MAX
RECONNECT_MAX = 30.0


async def _connect_patiently(
    identity: str, stop: asyncio.Event, runtime: Runtime | None = None
) -> Client | None:
    """Connect, waiting for an unreachable server with backoff (None if asked to stop)."""
    delay = RECONNECT_FIRST
    while True:
        try:
            return await connect(identity=identity, runtime=runtime)
        except Unavailable as exc:
            log.warning("temporal unreachable; retrying", error=str(exc), retry_in_s=delay)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return None
        except TimeoutError:
            delay = min(delay * 2, RECONNECT_MAX)


async def run_worker() -> int:
    try:
        settings = WorkerSettings.from_env()
        reference = load_reference()  # checked now: a broken directory stops the start
        if settings.trust_file is None:
            raise SettingsError(
                "DOCKET_TRUST_FILE is not set: the worker checks every signed command against "
                "the operator's trust roots (see docs/identity.md; the demo writes one under "
                "var/demo/identities/trust.toml)"
            )
        trust_file = settings.trust_file
        load_trust(trust_file)  # checked now, as the reference data
        # where probes come from: DOCKET_VANTAGES_FILE / DOCKET_VANTAGE_<CC> (without them,
        # `control` from this worker and no country: those observations are "unverified")
        vantages = VantageDirectory.load()
        # Metrics: served at once (a taken port stops the start); the client, and so the
        # worker, use this runtime, so the SDK's metrics and Docket's share the endpoint.
        runtime = metrics_runtime(settings.metrics_address) if settings.metrics_address else None
    except (SettingsError, ReferenceError, TrustFileError, VantageConfigError) as exc:
        print(f"docket worker: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)  # type: ignore[arg-type]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    identity = f"docket-worker@{os.uname().nodename}:{os.getpid()}"
    client = await _connect_patiently(identity, stop, runtime)
    if client is None:
        return 0
    try:
        await check_search_attributes(client)
    except WorkerSetupError as exc:
        print(f"docket worker: {exc}", file=sys.stderr)
        return 2
    checkpointer = None
    if settings.checkpoints:
        try:
            checkpoints = CheckpointActivities.from_env()
        except CheckpointSetupError as exc:
            print(f"docket worker: {exc}", file=sys.stderr)
            return 2
        checkpointer = build_checkpoint_worker(
            client, checkpoints, task_queue=settings.checkpoint_task_queue
        )
        await ensure_checkpoint_schedule(
            client,
            interval=settings.checkpoint_interval,
            task_queue=settings.checkpoint_task_queue,
        )
    settings.audit_dir.mkdir(parents=True, exist_ok=True)
    platforms = PlatformActivities(platform_endpoints(reference), vantages=vantages)
    writer = AuditWriter(settings.audit_dir)
    worker = build_worker(
        client,
        platforms=platforms,
        writer=writer,
        reference=load_reference,  # read afresh for each new request: edits apply at once
        trust=lambda: load_trust(trust_file),
        trust_max_age=settings.trust_max_age,
        task_queue=settings.task_queue,
        max_cached_workflows=settings.max_cached_workflows,
        sandboxed=settings.sandboxed,
    )
    log.info(
        "worker started",
        task_queue=settings.task_queue,
        namespace=client.namespace,
        audit_dir=str(settings.audit_dir),
        platforms=sorted(reference.platforms),
        vantages=vantages.describe(),
        metrics=f"http://{settings.metrics_address}/metrics" if runtime else "off",
    )
    async with contextlib.AsyncExitStack() as running:
        await running.enter_async_context(worker)
        if checkpointer is not None:
            await running.enter_async_context(checkpointer)
            log.info(
                "making checkpoints",
                every_s=int(settings.checkpoint_interval.total_seconds()),
                task_queue=settings.checkpoint_task_queue,
            )
        await stop.wait()
        log.info("shutting down: finishing in-flight tasks")
    await platforms.aclose()
    writer.close()
    log.info("worker stopped")
    return 0


def main() -> None:
    code = asyncio.run(run_worker())
    # The Temporal runtime's native threads outlive the event loop, and one calling into a
    # finalizing interpreter aborts the process (seen in CI: SIGABRT instead of exit code 2
    # after "search attribute missing"). Everything is flushed and closed by now (the audit
    # writer fsyncs on every batch and was closed above), so skip finalization and exit with
    # the code we chose.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
