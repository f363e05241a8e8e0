"""Fixtures of the audit-under-Temporal tests: requests run under a worker process killed with
SIGKILL right after a durable audit write (docket_harness.run_killed_worker), on the
session's dev server, each on a task queue of its own (so no other worker picks up their
workflows and no worker of theirs writes into another test's audit directory).

Each run waits out the timeout of the task its killed worker left (the workflow task's, or
the audit activity's 30 s): test_audit_exactly_once.py starts all four together, so they cost
one wait instead of four; a run is made once per pytest process (test_reconcile_tamper.py
shares `delivered` when the same process runs both files).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from docket_harness import KilledRun, KilledRuns, Stack


@pytest.fixture(scope="session")
async def killed_runs(
    dev_stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[KilledRuns]:
    runs = KilledRuns(dev_stack, tmp_path_factory.mktemp)
    try:
        yield runs
    finally:
        for run in runs.started.values():
            run.cancel()
        await asyncio.gather(*runs.started.values(), return_exceptions=True)


@pytest.fixture
async def killed_run(killed_runs: KilledRuns) -> KilledRun:
    """The request whose worker process was SIGKILLed right after the `delivered` entry was
    durable (before the activity completed); a normal `python worker.py` finished it."""
    return await killed_runs.get("delivered")
