"""Regenerate the committed workflow histories that tests/workflows/test_replay.py replays.

    .venv/bin/python tests/histories/record.py

Runs the main paths on a fresh Temporal dev server with the real worker and the platform
simulator (the same drivers as the integration tests), then saves each run's
`WorkflowHistory.to_json()` as tests/histories/<path>.json. Re-record only when a change to
AuthorityRequest is *meant* to be incompatible (and then version it for running workflows:
`workflow.patched`); otherwise a replay failure is exactly the bug the test is there to catch.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
for entry in (HERE.parent.parent, HERE.parent):  # the project, then tests/ (docket_harness)
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from docket_harness import (  # noqa: E402
    Driver,
    Run,
    Stack,
    appeal,
    build_worker,
    comply,
    fast_reference,
    ignore,
    liar,
    make_simulator,
    new_secrets,
    start_dev_env,
)

# history file -> scenario driver
PATHS = {
    "comply": comply,  # full lifecycle: approve, deliver, ack, effect, verify, re-checks, closed
    "unresponsive": ignore,  # no answer: second notice, unresponsive, escalated
    "appeal_reversed": appeal,  # removal appealed by the content owner, reversed, reinstated
    "disputed": liar,  # platform claims removal, probes disagree, re-notified, then complied
}


async def record(out_dir: Path = HERE) -> list[Path]:
    reference = fast_reference()
    sim_secrets = new_secrets()
    env = await start_dev_env()
    written = []
    try:
        with make_simulator(sim_secrets) as sim, tempfile.TemporaryDirectory() as tmp:
            audit_dir = Path(tmp)
            worker, platforms, writer = build_worker(
                env.client, sim, audit_dir, sim_secrets, reference
            )
            async with worker:
                stack = Stack(env.client, sim, reference, audit_dir, sim_secrets, sim_secrets)
                driver = Driver(stack, "history")
                runs: list[Run] = await asyncio.gather(*(f(driver) for f in PATHS.values()))
            await platforms.aclose()
            writer.close()
        for name, run in zip(PATHS, runs, strict=True):
            history = await env.client.get_workflow_handle(run.rid).fetch_history()
            target = out_dir / f"{name}.json"
            # indented so a re-recording diffs readably; still WorkflowHistory.from_json input
            target.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
            assert run.result is not None
            print(f"{target.name}: {run.rid} -> {run.result.outcome}, {len(history.events)} events")
            written.append(target)
    finally:
        await env.shutdown()
    return written


def main() -> int:
    asyncio.run(record())
    return 0


if __name__ == "__main__":
    sys.exit(main())
