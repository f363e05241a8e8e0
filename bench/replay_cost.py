"""The workflow side of worker CPU, measured by replaying one lifecycle's history many times.

    python -m bench.replay_cost [--replays 200] [--histories DIR] [--record]

A live benchmark mixes the workflow's activations with activity execution, HTTP and polling,
on a noisy machine. Replaying a recorded history runs exactly the activations a worker runs
for that lifecycle (new run, sandbox, every job, every command) and nothing else, in this one
process: a quiet, repeatable figure for changes to workflow code or worker settings.

`--record` (or a missing history) first runs one Docket and one bare lifecycle on the bench
stack (dev server in memory, simulator, worker process) and saves their histories to
`var/bench/replay/`. Then each history is replayed `--replays` times with the sandboxed and
the unsandboxed runner, alternating, and the CPU per replay is printed with the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from bench.bare import BareRequest
from bench.common import VAR, Table, fmt, say
from bench.lifecycle import Driver, connect, is_bare
from bench.stack import Server, Simulator, WorkerProcess
from bench.worker_proc import workflow_packages
from docket import worker_setup as docket_worker
from docket.temporal_names import TASK_QUEUE
from workflows import AuthorityRequest

HISTORIES = VAR / "replay"
VARIANTS = ("docket", "bare")


async def record(directory: Path) -> None:
    """One lifecycle of each variant on a fresh stack; its history saved as JSON."""
    directory.mkdir(parents=True, exist_ok=True)
    with Server("replay-record", sqlite=False) as server, Simulator(server.dir) as sim:
        for variant in VARIANTS:
            task_queue = f"replay-{variant}" if is_bare(variant) else TASK_QUEUE
            with WorkerProcess(variant, server, sim, task_queue):
                client = await connect(server)
                driver = Driver(client, sim, variant, task_queue)
                outcome = await driver.lifecycle("replay", 0)
                if not outcome.ok:
                    raise RuntimeError(f"{variant} lifecycle failed: {outcome.error}")
                wid = driver.workflow_id("replay", 0)
                history = await client.get_workflow_handle(wid).fetch_history()
                (directory / f"{variant}.json").write_text(history.to_json())
                (directory / f"{variant}.workflow_id").write_text(wid)
                say(f"recorded {variant}: {len(history.events)} events")


async def replay_cpu_ms(history: WorkflowHistory, variant: str, sandboxed: bool, n: int) -> float:
    """CPU ms per replay of `history`, each replay a new run (as a cache miss would be)."""
    replayer = Replayer(
        workflows=[BareRequest if is_bare(variant) else AuthorityRequest],
        workflow_runner=docket_worker.workflow_runner(
            sandboxed=sandboxed,
            workflow_packages=workflow_packages(variant),
        ),
        data_converter=pydantic_data_converter,
    )
    # under the recorded id: a signed submission is admitted only under the id it was signed for
    histories = [
        WorkflowHistory(workflow_id=history.workflow_id, events=history.events) for _ in range(n)
    ]
    t0 = time.process_time()
    async with replayer.workflow_replay_iterator(_aiter(histories)) as results:
        async for result in results:
            if result.replay_failure is not None:
                raise RuntimeError(f"{variant} replay failed: {result.replay_failure}")
    return (time.process_time() - t0) * 1000 / n


async def _aiter(histories: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in histories:
        yield history


async def measure(directory: Path, replays: int, rounds: int) -> Table:
    histories = {
        v: WorkflowHistory.from_json(
            (directory / f"{v}.workflow_id").read_text(), (directory / f"{v}.json").read_text()
        )
        for v in VARIANTS
    }
    samples: dict[tuple[str, bool], list[float]] = {}
    for _ in range(rounds):
        for sandboxed in (True, False):
            for variant in VARIANTS:
                ms = await replay_cpu_ms(histories[variant], variant, sandboxed, replays)
                samples.setdefault((variant, sandboxed), []).append(ms)
    rows = []
    for sandboxed in (True, False):
        docket_ms = statistics.median(samples[("docket", sandboxed)])
        bare_ms = statistics.median(samples[("bare", sandboxed)])
        rows.append(
            [
                "sandboxed" if sandboxed else "unsandboxed",
                fmt(bare_ms, 2),
                fmt(docket_ms, 2),
                f"{docket_ms / bare_ms:.2f}",
                str(len(histories["bare"].events)),
                str(len(histories["docket"].events)),
            ]
        )
    return Table(
        f"Workflow CPU per lifecycle, replayed ({replays} replays x {rounds} rounds, medians)",
        ["runner", "bare ms", "docket ms", "docket / bare", "bare events", "docket events"],
        rows,
    )


async def main_async(args: argparse.Namespace) -> None:
    directory = Path(args.histories)
    if args.record or not all((directory / f"{v}.workflow_id").exists() for v in VARIANTS):
        await record(directory)
    table = await measure(directory, args.replays, args.rounds)
    print(table.render())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replay_cost", description=__doc__)
    parser.add_argument("--replays", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--histories", default=str(HISTORIES))
    parser.add_argument("--record", action="store_true", help="record fresh histories first")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
