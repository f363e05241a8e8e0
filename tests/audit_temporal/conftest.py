"""Fixtures for the audit-under-Temporal tests: a dev server of their own (so that no other
test's worker picks up these workflows and no worker of theirs writes into another test's audit
directory), the platform simulator, and one request run under a worker killed with SIGKILL
(shared by the exactly-once, merge and tamper tests because it costs one activity timeout).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the project's packages, not tests/<name> namespace packages
    sys.path.insert(1, str(ROOT))

import pytest  # noqa: E402
from temporalio.client import Client  # noqa: E402

from audit_temporal.reconcile_helpers import KilledRun, Stack, make_stack, run_killed_worker  # noqa: E402
from docket import worker_setup as docket_worker  # noqa: E402
from docket.devserver import DevServer, connect_when_ready, free_port  # noqa: E402


@pytest.fixture(scope="session")
def rc_stack() -> Iterator[Stack]:
    """A headless dev server (in-memory, search attributes registered) and the simulator."""
    server = DevServer(port=free_port(), ui_port=None)
    server.start()
    try:
        with make_stack(server.address) as stack:
            yield stack
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def rc_client(rc_stack: Stack) -> AsyncIterator[Client]:
    client = await connect_when_ready(rc_stack.address, identity="audit-temporal-tests")
    await docket_worker.check_search_attributes(client)
    yield client


@pytest.fixture(scope="session")
async def killed_run(
    rc_stack: Stack, rc_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> KilledRun:
    """One request whose worker process is SIGKILLed right after the `delivered` entry is
    durable (before the activity completes); a normal `python worker.py` finishes it."""
    return await run_killed_worker(
        rc_stack, rc_client, tmp_path_factory.mktemp("killed-run"), kill_after="delivered"
    )
