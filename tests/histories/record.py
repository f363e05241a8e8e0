"""Regenerate the committed workflow histories that tests/workflows/test_replay.py replays.

    .venv/bin/python tests/histories/record.py [OUT_DIR]

Runs the main paths on a fresh Temporal dev server with the real worker and the platform
simulator (the same drivers as the integration tests), then saves each run's
`WorkflowHistory.to_json()` as OUT_DIR/<path>.json (default: tests/histories/). Never
overwrite a committed set: each set is what running workflows of its time look like, and
today's code must replay them all. After a change made behind `workflow.patched`, record a new
set into its own directory and add it to tests/workflows/test_replay.py:
tests/histories/local-audit/ was recorded after `audit-local-write-at-cause-time`,
tests/histories/one-write-per-poll/ after `audit-one-write-per-poll`,
tests/histories/clock-from-history/ after `audit-clock-from-history`,
tests/histories/trust-boundary/ after `trust-boundary` (signed submissions and commands,
the workflow admitting its own input), tests/histories/fewer-events/ after `fewer-events`
(one patch marker for all of those and `command-barrier-timer`, no upsert of unchanged
search attributes, the start's
fingerprint memo kept when right). The later sets have the
`prompt` path, whose first poll reports the acknowledgment and the decision together
(local-audit/prompt.json was recorded afterwards with the code of commit c47e393).
tests/histories/replay-divergence/ is not recorded by this script (see test_replay.py).
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
    comply,
    endpoints,
    fast_reference,
    ignore,
    liar,
    make_simulator,
    new_secrets,
    prompt,
    running_worker,
    start_dev_env,
)

# history file -> scenario driver
PATHS = {
    "comply": comply,  # full lifecycle: approve, deliver, ack, effect, verify, re-checks, closed
    "unresponsive": ignore,  # no answer: second notice, unresponsive, escalated
    "appeal_reversed": appeal,  # removal appealed by the content owner, reversed, reinstated
    "disputed": liar,  # platform claims removal, probes disagree, re-notified, then complied
    "prompt": prompt,  # acknowledged and decided before the first poll: one write for both
}


async def record(out_dir: Path = HERE) -> list[Path]:
    reference = fast_reference()
    sim_secrets = new_secrets()
    env = await start_dev_env()
    written = []
    try:
        with make_simulator(sim_secrets) as sim, tempfile.TemporaryDirectory() as tmp:
            audit_dir = Path(tmp)
            platforms = endpoints(sim, reference, sim_secrets)
            async with running_worker(env.client, platforms, audit_dir, reference=reference):
                stack = Stack(env.client, sim, reference, audit_dir, sim_secrets, sim_secrets)
                driver = Driver(stack, "history")
                runs: list[Run] = await asyncio.gather(*(f(driver) for f in PATHS.values()))
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
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    out_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(record(out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
