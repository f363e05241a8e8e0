"""Where the worker's CPU goes during a lifecycle trial (investigation tool, not a suite).

    .venv/bin/pip install py-spy        # not a project dependency
    python -m bench.profile_worker --variant docket --n 100

Runs one trial like the lifecycle suite while `py-spy record` samples the worker process,
then prints the share of samples (inclusive) per area: the workflow sandbox, Docket's
workflow code, the audit writer, payload conversion, the HTTP client, the SDK's core bridge.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import time
from collections import Counter

from bench.common import VAR, say
from bench.lifecycle import run_trial
from bench.stack import Server, Simulator, WorkerProcess

AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sandbox (workflow_sandbox/_importer, _restrictions)", ("workflow_sandbox",)),
    ("workflow activation (temporalio/worker/_workflow_instance)", ("_workflow_instance.py",)),
    (
        "Docket workflow code (workflows/, docket/case, docket/lifecycle)",
        (
            "workflows/authority_request.py",
            "docket/case.py",
            "docket/lifecycle.py",
        ),
    ),
    ("transitions (state machine)", ("transitions/",)),
    (
        "audit entry build/hash in workflow (audit/entry, canonical, chain)",
        (
            "audit/entry.py",
            "audit/canonical.py",
            "audit/chain.py",
        ),
    ),
    ("audit writer activity (audit/writer.py, structlog)", ("audit/writer.py", "structlog/")),
    ("payload conversion (converter, pydantic)", ("temporalio/converter.py", "pydantic")),
    (
        "activities: platform HTTP (httpx, httpcore, activities/platform)",
        (
            "httpx/",
            "httpcore/",
            "activities/platform.py",
        ),
    ),
    ("activity worker (temporalio/worker/_activity)", ("_activity.py",)),
    ("SDK core bridge (temporalio/bridge)", ("temporalio/bridge",)),
    ("asyncio event loop", ("asyncio/",)),
)


def summarise(raw: str) -> list[tuple[str, float]]:
    total = 0
    hits: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        for name, needles in AREAS:
            if any(needle in stack for needle in needles):
                hits[name] += n
    return [(name, 100 * hits[name] / max(total, 1)) for name, _ in AREAS]


async def main(variant: str, n: int, sqlite: bool) -> None:
    spy = shutil.which("py-spy") or str(VAR.parent.parent / ".venv" / "bin" / "py-spy")
    with Server(f"profile-{variant}", sqlite=sqlite) as server, Simulator(server.dir) as sim:
        # a warm-up trial on another worker, then the profiled one
        await run_trial(server, sim, variant, max(10, n // 10), f"w{int(time.time())}")
        out = server.dir / f"profile-{variant}.txt"
        original = WorkerProcess.__enter__

        def enter(self: WorkerProcess) -> WorkerProcess:
            original(self)
            self.spy = subprocess.Popen(  # type: ignore[attr-defined]
                [spy, "record", "-p", str(self.pid), "-r", "200", "-f", "raw", "-o", str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
            return self

        WorkerProcess.__enter__ = enter  # type: ignore[method-assign]
        try:
            await run_trial(server, sim, variant, n, f"p{int(time.time())}")
        finally:
            WorkerProcess.__enter__ = original  # type: ignore[method-assign]
        time.sleep(3)  # py-spy writes its file when the worker exits
    say(f"profile of the {variant} worker ({out}):")
    for name, share in summarise(out.read_text()):
        say(f"  {share:5.1f}%  {name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.profile_worker")
    parser.add_argument("--variant", default="docket")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.variant, args.n, args.sqlite))
