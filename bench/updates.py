"""Suite `updates`: does any command fail for its caller under load?

N requests of one variant are started on a fresh SQLite dev server (200 at a time) and
brought to the point where they accept approval; then all N approve Updates are sent at once.
The bare client calls `execute_update` once (as a plain Temporal client does); Docket's
client is `docket.client.send_command`, which retries RPC time-outs and unavailability with
the same update id. Counted: every `execute_update` call (attempt) and its exception, and what
the caller finally sees. The server allows 1,200 concurrent long polls per namespace
(frontend.namespaceCount); past that, calls fail with RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from bench.common import Table, fmt, percentile, say
from bench.lifecycle import Driver, NotReadyError, connect
from bench.stack import Server, Simulator, WorkerProcess
from docket.temporal_names import TASK_QUEUE

CONCURRENCY = 200
attempts: Counter[str] = Counter()


def _ratio(a: str, b: str) -> str:
    try:
        return f"{float(a.replace(',', '')) / float(b.replace(',', '')):.2f}"
    except ValueError:
        return "-"


def _count_attempts() -> None:
    """Count every execute_update call in this process and how it ends (both variants)."""
    original: Callable[..., Any] = WorkflowHandle.execute_update
    if getattr(original, "_bench_counted", False):
        return

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        attempts["calls"] += 1
        try:
            return await original(self, *args, **kwargs)
        except RPCError as exc:
            attempts[f"RPCError {exc.status.name if exc.status else '?'}"] += 1
            raise
        except Exception as exc:
            attempts[type(exc).__name__] += 1
            raise

    counted._bench_counted = True  # type: ignore[attr-defined]
    WorkflowHandle.execute_update = counted  # type: ignore[method-assign]


async def measure(variant: str, n: int) -> list[str]:
    _count_attempts()
    attempts.clear()
    task_queue = TASK_QUEUE if variant == "docket" else "bench-bare-updates"
    with (
        Server(f"updates-{variant}-{n}", sqlite=True) as server,
        Simulator(server.dir) as sim,
        WorkerProcess(variant, server, sim, task_queue) as worker,
    ):
        client = await connect(server)
        driver = Driver(client, sim, variant, task_queue)
        tag = f"u{int(time.time())}"
        gate = asyncio.Semaphore(CONCURRENCY)
        t0 = time.perf_counter()

        async def prepare(i: int) -> str | None:
            async with gate:
                try:
                    wid = await driver.start(tag, i)
                    while not await driver.is_ready(wid):
                        await asyncio.sleep(0.5)
                    return wid
                except Exception as exc:
                    say(f"    prepare failed: {type(exc).__name__}: {exc}"[:200])
                    return None

        ids = [w for w in await asyncio.gather(*(prepare(i) for i in range(n))) if w]
        prepared = time.perf_counter() - t0
        attempts.clear()
        outcomes: Counter[str] = Counter()
        rtts: list[float] = []

        async def approve(wid: str) -> None:
            t = time.perf_counter()
            try:
                await driver.approve_once(wid)
                rtts.append((time.perf_counter() - t) * 1000)
                outcomes["ok"] += 1
            except NotReadyError:
                outcomes["NotReady"] += 1
            except RPCError as exc:
                outcomes[f"RPCError {exc.status.name if exc.status else '?'}"] += 1
            except Exception as exc:
                outcomes[type(exc).__name__] += 1

        s0, w0 = server.cpu_ms(), worker.cpu_ms()
        t1 = time.perf_counter()
        await asyncio.gather(*(approve(w) for w in ids))
        burst = time.perf_counter() - t1
        server_ms, worker_ms = server.cpu_ms() - s0, worker.cpu_ms() - w0
    calls = attempts["calls"]
    failed_attempts = calls - outcomes["ok"]
    failed = len(ids) - outcomes["ok"]
    say(
        f"    updates {variant} N={n}: prepared {len(ids)} in {prepared:.0f} s; burst {burst:.1f}"
        f" s (CPU: worker {worker_ms / 1000:.1f} s, server {server_ms / 1000:.1f} s); caller "
        f"outcomes {dict(outcomes)}; attempts {dict(attempts)}"
    )
    errors = ", ".join(f"{k} {v}" for k, v in attempts.items() if k != "calls") or "-"
    return [
        variant,
        str(len(ids)),
        str(calls),
        f"{failed_attempts} ({100 * failed_attempts / max(calls, 1):.1f}%)",
        errors,
        f"{failed} ({100 * failed / max(len(ids), 1):.1f}%)",
        fmt(percentile(rtts, 50), 0),
        fmt(percentile(rtts, 95), 0),
        fmt(burst, 1),
        fmt(worker_ms / max(len(ids), 1), 1),
        fmt(server_ms / max(len(ids), 1), 1),
    ]


async def run_suite(n: int) -> list[Table]:
    rows = []
    for variant in ("bare", "docket"):
        say(f"  updates: {variant}, {n} concurrent approvals on SQLite")
        rows.append(await measure(variant, n))
    p50 = {row[0]: row[6] for row in rows}
    ratio = _ratio(p50["docket"], p50["bare"])
    return [
        Table(
            f"Approve Updates sent at once to {n} open requests (SQLite dev server); "
            f"p50 docket / bare {ratio} (target <= 2)",
            [
                "client",
                "requests",
                "update calls",
                "calls failed",
                "errors seen",
                "failed for the caller",
                "p50 ms",
                "p95 ms",
                "burst s",
                "worker CPU ms/update",
                "server CPU ms/update",
            ],
            rows,
        )
    ]
