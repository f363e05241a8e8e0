"""Suite `memory`: the Docket worker's RSS with N open requests waiting on timers.

Each size gets a fresh in-memory dev server and a fresh worker process. N requests are
submitted and approved (200 at a time); each is then delivered and waits in awaiting_ack on
a timer (poll interval and SLA 1 h). Once the visibility store counts N requests in
awaiting_ack, the worker's RSS (now and peak) is read from /proc. The SDK caches at most
1,000 workflow runs per worker by default (max_cached_workflows), so above 1,000 open
requests the rest are evicted and replayed when their timer fires.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from bench.common import Table, fmt, rss_mib, say
from bench.lifecycle import Driver, Outcome, connect
from bench.stack import Server, Simulator, WorkerProcess
from docket.temporal_names import TASK_QUEUE

WAIT = timedelta(hours=1)
CONCURRENCY = 200


async def measure(n: int, time_budget: float, max_cached: int | None = None) -> list[str]:
    label = f"{n}" + (f" (cache {max_cached})" if max_cached else "")
    with (
        Server(f"memory-{n}", sqlite=False) as server,
        Simulator(server.dir) as sim,
        WorkerProcess(
            "docket",
            server,
            sim,
            TASK_QUEUE,
            max_cached=max_cached,
            poll_seconds=WAIT.total_seconds(),
        ) as worker,
    ):
        client = await connect(server)
        driver = Driver(client, sim, "docket", TASK_QUEUE, poll_interval=WAIT)
        idle_rss, _ = worker.rss()
        tag = f"m{int(time.time())}"
        gate = asyncio.Semaphore(CONCURRENCY)
        failures = 0
        t0 = time.perf_counter()
        deadline = t0 + time_budget

        async def one(i: int) -> None:
            nonlocal failures
            async with gate:
                if time.perf_counter() > deadline:
                    return  # out of time: measure what was reached
                try:
                    wid = await driver.start(tag, i)
                    await driver.approve(wid, Outcome())
                except Exception:
                    failures += 1

        await asyncio.gather(*(one(i) for i in range(n)))
        query = "RequestState = 'awaiting_ack'"
        while True:
            waiting = (await client.count_workflows(query)).count
            if waiting >= n - failures or time.perf_counter() > deadline:
                break
            await asyncio.sleep(1)
        elapsed = time.perf_counter() - t0
        await asyncio.sleep(2)
        rss, peak = worker.rss()
        server_rss, _ = rss_mib(server.pid)
    reached = "yes" if waiting >= n else f"no: {waiting} in {elapsed:.0f} s"
    say(
        f"    memory N={label}: {waiting} waiting after {elapsed:.0f} s; worker RSS {rss:.0f} "
        f"MiB (peak {peak:.0f}, idle {idle_rss:.0f}), server {server_rss:.0f} MiB"
    )
    per = (rss - idle_rss) * 1024 / max(waiting, 1)
    return [
        label,
        str(waiting),
        reached,
        fmt(elapsed, 0),
        fmt(idle_rss, 0),
        fmt(rss, 0),
        fmt(peak, 0),
        fmt(per, 0),
        fmt(server_rss, 0),
    ]


async def run_suite(sizes: list[int], time_budget: float, max_cached: int | None) -> list[Table]:
    rows = []
    for n in sizes:
        say(f"  memory: {n} open requests waiting on timers (budget {time_budget:.0f} s)")
        rows.append(await measure(n, time_budget, max_cached))
    return [
        Table(
            "Worker memory, N open requests waiting on timers (Docket worker, in-memory server)",
            [
                "N",
                "waiting",
                "reached",
                "seconds",
                "idle RSS MiB",
                "RSS MiB",
                "peak RSS MiB",
                "KiB/request",
                "server RSS MiB",
            ],
            rows,
        )
    ]
