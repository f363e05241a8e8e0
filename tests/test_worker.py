"""The worker: refuses to start, with the command to fix it, when search attributes are missing;
reads secrets from the environment only; compiles each workflow module once per process."""

from __future__ import annotations

import dataclasses
import importlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from docket_harness import identities
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import PayloadCodec
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from docket.reference import default_reference
from docket.temporal_names import SEARCH_ATTRIBUTES
from docket.worker_setup import (
    WORKFLOW_PACKAGES,
    CompileOnceFinder,
    CompileOnceLoader,
    ContextFreeSandboxedRunner,
    WorkerSetupError,
    check_search_attributes,
    platform_endpoints,
    remember_missing_modules,
    workflow_runner,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.integration
async def test_check_names_every_missing_attribute_and_the_fix(bare_client: Client) -> None:
    """On a namespace without Docket's search attributes (a cluster nobody prepared)."""
    with pytest.raises(WorkerSetupError) as exc:
        await check_search_attributes(bare_client)
    message = str(exc.value)
    for key in SEARCH_ATTRIBUTES:
        assert key.name in message
    assert (
        f"temporal operator search-attribute create --namespace {bare_client.namespace} "
        "--name Categories --type KeywordList" in message
    )


@pytest.mark.integration
async def test_worker_process_exits_2_with_the_fix(bare_client: Client, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": bare_client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": bare_client.namespace,
        "DOCKET_AUDIT_DIR": str(tmp_path / "audit"),
        "DOCKET_TRUST_FILE": str(identities().trust_file),
    }
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


def test_worker_refuses_to_start_without_trust_roots() -> None:
    """No trust file, no worker: it could not check a single signed command."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKET_")}
    env["TEMPORAL_ADDRESS"] = "127.0.0.1:1"  # never reached: the check comes first
    proc = subprocess.run(
        [sys.executable, "worker.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "DOCKET_TRUST_FILE is not set" in proc.stderr


def test_worker_names_a_broken_trust_file(tmp_path: Path) -> None:
    broken = tmp_path / "trust.toml"
    broken.write_text("[[organization]]\nid = 42\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKET_")}
    env.update(TEMPORAL_ADDRESS="127.0.0.1:1", DOCKET_TRUST_FILE=str(broken))
    proc = subprocess.run(
        [sys.executable, "worker.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert str(broken) in proc.stderr


def test_worker_waits_for_an_unreachable_server_and_stops_cleanly(tmp_path: Path) -> None:
    """A worker started before Temporal is up does not crash-loop: it logs, waits with
    backoff, and still stops at once (exit 0) when told to."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKET_")}
    env.update(
        TEMPORAL_ADDRESS="127.0.0.1:1",  # nothing listens on port 1
        DOCKET_TRUST_FILE=str(identities().trust_file),
        DOCKET_AUDIT_DIR=str(tmp_path / "audit"),
        DOCKET_LOG_FORMAT="json",
    )
    proc = subprocess.Popen(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        waits: list[str] = []
        for line in proc.stdout:  # the first two warnings: it retried, and is still alive
            if "temporal unreachable; retrying" in line:
                waits.append(line)
                if len(waits) == 2:
                    break
        assert len(waits) == 2, "the worker stopped instead of waiting"
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


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


def test_a_workflow_module_is_compiled_once_per_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox imports the workflow module afresh for every run; without bytecode files
    (PYTHONDONTWRITEBYTECODE) each import compiled the source again."""
    package = tmp_path / "wfpkg_compile_once"
    package.mkdir()
    module = package / "__init__.py"
    module.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    finder = CompileOnceFinder(["wfpkg_compile_once"])
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    compiled: list[str] = []
    real = importlib.machinery.SourceFileLoader.source_to_code

    def counting(self: object, data: bytes, path: str, **kwargs: int) -> object:
        compiled.append(path)
        return real(self, data, path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.machinery.SourceFileLoader, "source_to_code", counting)

    def fresh_import() -> int:
        sys.modules.pop("wfpkg_compile_once", None)
        imported = importlib.import_module("wfpkg_compile_once")
        assert isinstance(imported.__spec__.loader, CompileOnceLoader)  # type: ignore[union-attr]
        return int(imported.VALUE)

    assert [fresh_import() for _ in range(3)] == [1, 1, 1]
    assert compiled == [str(module)]  # three imports, one compile
    module.write_text("VALUE = 2\n")  # an edited source is compiled again, not served stale
    assert fresh_import() == 2
    assert compiled == [str(module), str(module)]
    sys.modules.pop("wfpkg_compile_once", None)


def test_the_sandboxed_runner_installs_one_finder_for_the_workflow_modules() -> None:
    runners = [workflow_runner(sandboxed=True) for _ in range(2)]
    assert all(isinstance(r, SandboxedWorkflowRunner) for r in runners)
    finders = [f for f in sys.meta_path if isinstance(f, CompileOnceFinder)]
    assert [f.packages for f in finders].count(frozenset(WORKFLOW_PACKAGES)) == 1


class _Codec(PayloadCodec):
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


def test_payload_contexts_are_skipped_only_when_nothing_uses_them() -> None:
    """Without a codec or external storage (Docket's converter) the sandboxed instances answer
    the SDK's per-payload context questions themselves; with a codec, which may act per
    activity, the SDK's own sandboxed runner asks the workflow as usual."""
    assert isinstance(workflow_runner(), ContextFreeSandboxedRunner)
    assert isinstance(
        workflow_runner(data_converter=pydantic_data_converter), ContextFreeSandboxedRunner
    )
    with_codec = dataclasses.replace(pydantic_data_converter, payload_codec=_Codec())
    runner = workflow_runner(data_converter=with_codec)
    assert isinstance(runner, SandboxedWorkflowRunner)
    assert not isinstance(runner, ContextFreeSandboxedRunner)


def test_a_missing_optional_module_is_looked_for_once() -> None:
    """An absent module is recorded as absent (its import then fails at once, as before, but
    without searching sys.path again); an installed one is left alone."""
    absent = "docket_test_no_such_module"
    try:
        assert remember_missing_modules((absent, "json")) == [absent]
        assert sys.modules[absent] is None
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(absent)
        assert remember_missing_modules((absent,)) == []  # already recorded
    finally:
        sys.modules.pop(absent, None)
