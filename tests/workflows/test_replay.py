"""Replay the committed histories (tests/histories/*.json, made by tests/histories/record.py)
against today's AuthorityRequest, with the worker's own sandbox runner: a change that would
break running workflows (different commands for the same history) fails here."""

from __future__ import annotations

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

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
EXPECTED = ("appeal_reversed", "comply", "disputed", "unresponsive")


def load(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{name}", (HISTORIES / f"{name}.json").read_text())


def replayer(*workflows: type) -> Replayer:
    return Replayer(
        workflows=list(workflows) or [AuthorityRequest],
        data_converter=pydantic_data_converter,
        # exactly what worker.build_worker runs workflows with
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
    )


def test_the_main_paths_are_recorded() -> None:
    assert sorted(p.stem for p in HISTORIES.glob("*.json")) == sorted(EXPECTED)
    for name in EXPECTED:
        events = json.loads((HISTORIES / f"{name}.json").read_text())["events"]
        assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED", name


@pytest.mark.parametrize("name", EXPECTED)
async def test_history_replays(name: str) -> None:
    result = await replayer().replay_workflow(load(name))
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
