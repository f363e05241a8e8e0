"""A worker in its own process, so its CPU and memory are measured apart from the load.

    python -m bench.worker_proc --variant docket|bare --address HOST:PORT --task-queue Q \
        --sim-url URL --secret S --audit-dir DIR

Prints READY once polling, runs until SIGTERM/SIGINT. Variants:
  docket                  worker.build_worker as shipped (the real Docket worker)
  bare                    bench.bare.BareRequest + the same platform activities, same sandbox
  docket-unsandboxed      Docket's worker with UnsandboxedWorkflowRunner
                          (what DOCKET_WORKFLOW_SANDBOX=off ships)
  bare-unsandboxed        the bare workflow with UnsandboxedWorkflowRunner (its fair baseline)
  docket-regular-audit    experiment: every entry by a regular activity (the earlier design,
                          bench.experiments)
  docket-passthrough-all  experiment: the sandbox with_passthrough_all_modules()
  docket-no-audit-write   experiment: no audit write at all (what the writes cost)
  docket-no-disk-write    experiment: the local writes run but never touch the disk
  docket-no-publish       experiment: no search attribute, memo or details update
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.audit import AuditActivities
from activities.config import DeploymentActivities
from activities.platform import PlatformActivities, PlatformEndpoint
from audit.writer import AuditWriter
from bench.bare import BareRequest
from bench.experiments import (
    AuthorityRequestNoAuditWrite,
    AuthorityRequestNoPublish,
    AuthorityRequestRegularAudit,
    NoDiskAuditActivities,
)
from bench.lifecycle import bench_identities, bench_reference, is_bare
from docket import worker_setup as docket_worker
from docket.credentials import TrustRoots, load_trust
from docket.reference import ReferenceData
from platform_sim.scenarios import markers_for
from workflows import AuthorityRequest

VARIANTS = (
    "docket",
    "bare",
    "docket-unsandboxed",
    "bare-unsandboxed",
    "docket-regular-audit",
    "docket-passthrough-all",
    "docket-no-audit-write",
    "docket-no-disk-write",
    "docket-no-publish",
)


def workflow_packages(variant: str) -> tuple[str, ...]:
    """The packages whose modules the sandbox re-imports for this variant's workflow."""
    return ("bench",) if is_bare(variant) else tuple(docket_worker.WORKFLOW_PACKAGES)


def build(
    variant: str,
    client: Client,
    platforms: PlatformActivities,
    writer: AuditWriter,
    task_queue: str,
    max_cached: int | None,
    reference: ReferenceData,
    trust: TrustRoots,
) -> Worker:
    if variant == "docket" and max_cached is None:
        return docket_worker.build_worker(
            client,
            platforms=platforms,
            writer=writer,
            reference=lambda: reference,
            trust=lambda: trust,
            task_queue=task_queue,
        )
    # the same runner as Docket's worker (sandbox, passthrough, each workflow module compiled
    # once per process), for the bare workflow's module too
    runner: WorkflowRunner = docket_worker.workflow_runner(
        sandboxed="unsandboxed" not in variant,
        workflow_packages=workflow_packages(variant),
    )
    if "passthrough-all" in variant:
        restrictions = SandboxRestrictions.default.with_passthrough_modules(
            *docket_worker.PASSTHROUGH
        ).with_passthrough_all_modules()
        runner = SandboxedWorkflowRunner(restrictions=restrictions)
    cache = 1000 if max_cached is None else max_cached  # the SDK default is 1000
    if is_bare(variant):
        # the same configuration activity as Docket's, without the look-up of earlier runs
        config = DeploymentActivities(lambda: reference, lambda: trust)
        return Worker(
            client,
            task_queue=task_queue,
            workflows=[BareRequest],
            activities=[*platforms.activities(), config.load_deployment],
            max_concurrent_activities=200,
            workflow_runner=runner,
            max_cached_workflows=cache,
        )
    workflow_class = {
        "docket-regular-audit": AuthorityRequestRegularAudit,
        "docket-no-audit-write": AuthorityRequestNoAuditWrite,
        "docket-no-publish": AuthorityRequestNoPublish,
    }.get(variant, AuthorityRequest)
    audit = (NoDiskAuditActivities if variant == "docket-no-disk-write" else AuditActivities)(
        writer
    )
    deployment = DeploymentActivities(lambda: reference, lambda: trust, client=client)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[workflow_class],
        activities=[*audit.activities(), *platforms.activities(), *deployment.activities()],
        max_concurrent_activities=200,
        workflow_runner=runner,
        max_cached_workflows=cache,
    )


async def run(args: argparse.Namespace) -> int:
    client = await Client.connect(
        args.address, data_converter=pydantic_data_converter, identity=f"bench-{args.variant}"
    )
    endpoint = PlatformEndpoint(
        base_url=f"{args.sim_url}/{args.platform}",
        secret=args.secret.encode(),
        markers=markers_for(args.platform),
    )
    platforms = PlatformActivities({args.platform: endpoint})
    writer = AuditWriter(Path(args.audit_dir))
    reference = bench_reference(timedelta(seconds=args.poll_seconds))
    trust = load_trust(bench_identities().trust_file)
    docket_worker.remember_missing_modules()  # as build_worker does, for every variant
    worker = build(
        args.variant, client, platforms, writer, args.task_queue, args.max_cached, reference, trust
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print("READY", flush=True)
        await stop.wait()
    await platforms.aclose()
    writer.close()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_proc")
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--sim-url", required=True)
    parser.add_argument("--platform", default="facebook")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--audit-dir", required=True)
    parser.add_argument("--max-cached", type=int, default=None)
    parser.add_argument("--poll-seconds", type=float, default=1.0, help="platform poll interval")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
