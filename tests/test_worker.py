"""The worker refuses to start, with the command to fix it, when search attributes are missing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from docket.devserver import find_binary
from docket.reference import default_reference
from docket.temporal_names import SEARCH_ATTRIBUTES
from worker import WorkerSetupError, check_search_attributes, platform_endpoints

ROOT = Path(__file__).resolve().parent.parent


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def bare_server() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server with none of Docket's search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"), ui=False
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def test_check_names_every_missing_attribute_and_the_fix(
    bare_server: WorkflowEnvironment,
) -> None:
    with pytest.raises(WorkerSetupError) as exc:
        await check_search_attributes(bare_server.client)
    message = str(exc.value)
    for key in SEARCH_ATTRIBUTES:
        assert key.name in message
    assert (
        "temporal operator search-attribute create --namespace default "
        "--name Categories --type KeywordList" in message
    )


async def test_worker_process_exits_2_with_the_fix(bare_server: WorkflowEnvironment) -> None:
    host = bare_server.client.service_client.config.target_host
    env = {**os.environ, "TEMPORAL_ADDRESS": host, "DOCKET_AUDIT_DIR": "/tmp/docket-test-noop"}
    proc = subprocess.run(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "search attributes not registered" in proc.stderr
    assert "--name RequestState --type Keyword" in proc.stderr


def test_secrets_come_from_the_environment_only() -> None:
    reference = default_reference()
    endpoints = platform_endpoints(
        reference,
        {"DOCKET_SECRET_FACEBOOK": "fb-secret", "DOCKET_PLATFORM_URL_FACEBOOK": "http://x"},
    )
    assert endpoints["facebook"].secret == b"fb-secret"
    assert endpoints["facebook"].base_url == "http://x"
    assert endpoints["youtube"].secret == b""  # probes still work; API calls fail clearly
    assert "fb-secret" not in repr(endpoints["facebook"])
    assert "tiktok" in endpoints  # no API: needs no secret
