"""Replay the committed histories (made by tests/histories/record.py) against today's
AuthorityRequest, with the worker's own sandbox runner: a change that would break running
workflows (different commands for the same history) fails here.

Two sets: tests/histories/*.json were recorded before the local audit write (every entry by a
regular activity), tests/histories/local-audit/*.json after it (`LOCAL_AUDIT_PATCH`)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from docket import temporal_names as names
from docket.case import RequestInput, RequestResult
from worker import PASSTHROUGH
from workflows import AuthorityRequest
from workflows.authority_request import LOCAL_AUDIT_PATCH

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
LOCAL_AUDIT = HISTORIES / "local-audit"
EXPECTED = ("appeal_reversed", "comply", "disputed", "unresponsive")
SETS = {"before-local-audit": HISTORIES, "local-audit": LOCAL_AUDIT}


def load(name: str, directory: Path = HISTORIES) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{name}", (directory / f"{name}.json").read_text())


def local_audit_writes(directory: Path, name: str) -> tuple[bool, int]:
    """(the patch marker is there, how many local write_audit_entries markers)."""
    events = json.loads((directory / f"{name}.json").read_text())["events"]
    markers = [
        e["markerRecordedEventAttributes"]
        for e in events
        if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED"
    ]
    patched = local = 0
    for m in markers:
        data = " ".join(
            base64.b64decode(p.get("data", "")).decode()
            for d in m["details"].values()
            for p in d["payloads"]
        )
        patched += m["markerName"] == "core_patch" and LOCAL_AUDIT_PATCH in data
        local += m["markerName"] == "core_local_activity" and "write_audit_entries" in data
    return bool(patched), local


def replayer(*workflows: type) -> Replayer:
    return Replayer(
        workflows=list(workflows) or [AuthorityRequest],
        data_converter=pydantic_data_converter,
        # exactly what worker.build_worker runs workflows with
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
    )


@pytest.mark.parametrize("directory", SETS.values(), ids=SETS.keys())
def test_the_main_paths_are_recorded(directory: Path) -> None:
    assert sorted(p.stem for p in directory.glob("*.json")) == sorted(EXPECTED)
    for name in EXPECTED:
        events = json.loads((directory / f"{name}.json").read_text())["events"]
        assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED", name


@pytest.mark.parametrize("name", EXPECTED)
def test_each_set_records_its_audit_write(name: str) -> None:
    assert local_audit_writes(HISTORIES, name) == (False, 0)
    patched, local = local_audit_writes(LOCAL_AUDIT, name)
    assert patched and local >= 3, (patched, local)


@pytest.mark.parametrize("directory", SETS.values(), ids=SETS.keys())
@pytest.mark.parametrize("name", EXPECTED)
async def test_history_replays(name: str, directory: Path) -> None:
    result = await replayer().replay_workflow(load(name, directory))
    assert result.replay_failure is None


@workflow.defn(name=names.WORKFLOW_NAME)
class SkipsTheBaseline(AuthorityRequest):
    """A 'harmless' change: no baseline probe before the submission entry."""

    @workflow.run
    async def run(self, request: RequestInput) -> RequestResult:
        return await super().run(request)

    async def _probe(self, items: Any, vantages: Any, *, baseline: bool = False) -> Any:
        if baseline:
            return []
        return await super()._probe(items, vantages, baseline=baseline)


async def test_a_nondeterministic_change_fails_replay() -> None:
    """The replay tests have teeth: a changed command sequence is caught."""
    changed = Replayer(
        workflows=[SkipsTheBaseline],
        data_converter=pydantic_data_converter,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    result = await changed.replay_workflow(load("comply"), raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
