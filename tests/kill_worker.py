"""Test-only worker: the real worker (worker.run_worker), except that right after the first
durable audit write of the action named by DOCKET_TEST_KILL_AFTER it kills its own process with
SIGKILL, before the activity can complete. It first records which entry it wrote in
DOCKET_TEST_KILL_MARKER (a JSON file) so the test knows what to look for.

    DOCKET_TEST_KILL_AFTER=delivered DOCKET_TEST_KILL_MARKER=/tmp/k.json python kill_worker.py
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio import activity

import worker
from activities.audit import AuditActivities
from docket import worker_setup

KILL_AFTER = os.environ["DOCKET_TEST_KILL_AFTER"]
MARKER = Path(os.environ["DOCKET_TEST_KILL_MARKER"])


class KillAfterWrite(AuditActivities):
    @activity.defn(name="write_audit_entries")
    async def write_entries(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        written = await super().write_entries(entries)  # durable: one write, one fsync
        for entry in entries:
            if entry["event"]["action"] == KILL_AFTER:
                info = activity.info()
                MARKER.write_text(
                    json.dumps(
                        {
                            "event_id": entry["event"]["id"],
                            "hash": entry["hash"],
                            "attempt": info.attempt,
                            "pid": os.getpid(),
                        }
                    )
                )
                os.kill(os.getpid(), signal.SIGKILL)
        return written


if __name__ == "__main__":
    # build_worker makes its audit activities from this module global
    worker_setup.AuditActivities = KillAfterWrite  # type: ignore[attr-defined]
    sys.exit(asyncio.run(worker.run_worker()))
