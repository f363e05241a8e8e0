"""Replay the committed histories (made by tests/histories/record.py) against today's
AuthorityRequest, with the worker's own sandbox runner: a change that would break running
workflows (different commands for the same history) fails here.

Three sets: tests/histories/*.json were recorded before the local audit write (every entry by
a regular activity), tests/histories/local-audit/*.json after it (`LOCAL_AUDIT_PATCH`), and
tests/histories/one-write-per-poll/*.json after a poll's transitions were written together
(`ONE_WRITE_PER_POLL_PATCH`). Both later sets have a `prompt` path, whose first poll reports
the acknowledgment and the decision at once: two writes before the patch, one after."""

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

from docket import temporal_names as names
from docket.case import RequestResult
from docket.worker_setup import CompileOnceFinder, CompileOnceLoader, workflow_runner
from workflows import AuthorityRequest
from workflows.authority_request import LOCAL_AUDIT_PATCH, ONE_WRITE_PER_POLL_PATCH

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
LOCAL_AUDIT = HISTORIES / "local-audit"
ONE_WRITE = HISTORIES / "one-write-per-poll"
EXPECTED = ("appeal_reversed", "comply", "disputed", "unresponsive")
SETS = {
    "before-local-audit": (HISTORIES, EXPECTED),
    "local-audit": (LOCAL_AUDIT, (*EXPECTED, "prompt")),
    "one-write-per-poll": (ONE_WRITE, (*EXPECTED, "prompt")),
}
ALL = [(d, name) for d, names_ in SETS.values() for name in names_]


def load(name: str, directory: Path = HISTORIES) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{name}", (directory / f"{name}.json").read_text())


def audit_markers(directory: Path, name: str) -> tuple[set[str], list[int]]:
    """(the patches marked, how many entries each local write_audit_entries wrote)."""
    events = json.loads((directory / f"{name}.json").read_text())["events"]
    patches: set[str] = set()
    writes: list[int] = []
    for e in events:
        if e["eventType"] != "EVENT_TYPE_MARKER_RECORDED":
            continue
        m = e["markerRecordedEventAttributes"]
        decoded = {
            key: [json.loads(base64.b64decode(p.get("data", "")) or "null") for p in d["payloads"]]
            for key, d in m["details"].items()
        }
        if m["markerName"] == "core_patch":
            patches.add(decoded["patch-data"][0]["id"])
        elif (
            m["markerName"] == "core_local_activity"
            and decoded["data"][0]["activity_type"] == "write_audit_entries"
        ):
            writes.append(len(decoded["result"][0]))
    return patches, writes


def replayer(*workflows: type) -> Replayer:
    return Replayer(
        workflows=list(workflows) or [AuthorityRequest],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(sandboxed=True),  # exactly what build_worker uses
    )


@pytest.mark.parametrize(("directory", "expected"), SETS.values(), ids=SETS.keys())
def test_the_main_paths_are_recorded(directory: Path, expected: tuple[str, ...]) -> None:
    assert sorted(p.stem for p in directory.glob("*.json")) == sorted(expected)
    for name in expected:
        events = json.loads((directory / f"{name}.json").read_text())["events"]
        assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED", name


@pytest.mark.parametrize("name", EXPECTED)
def test_each_set_records_its_audit_write(name: str) -> None:
    assert audit_markers(HISTORIES, name) == (set(), [])
    for directory in (LOCAL_AUDIT, ONE_WRITE):
        patches, writes = audit_markers(directory, name)
        assert LOCAL_AUDIT_PATCH in patches and len(writes) >= 3, (directory, patches, writes)
        assert set(writes) == {1}  # no poll of these paths reported two things at once


def test_before_the_patch_a_polls_two_transitions_were_two_writes() -> None:
    """Recorded with the code of commit c47e393: a request in flight then must still replay,
    so the batching must stay behind its patch (this replay fails without it)."""
    patches, writes = audit_markers(LOCAL_AUDIT, "prompt")
    assert patches == {LOCAL_AUDIT_PATCH}
    assert set(writes) == {1} and len(writes) == 8, writes


def test_the_latest_set_records_one_write_for_a_polls_two_transitions() -> None:
    patches, writes = audit_markers(ONE_WRITE, "prompt")
    assert patches == {LOCAL_AUDIT_PATCH, ONE_WRITE_PER_POLL_PATCH}
    assert writes.count(2) == 1 and set(writes) == {1, 2}, writes


@pytest.mark.parametrize(("directory", "name"), ALL, ids=[f"{d.name}/{n}" for d, n in ALL])
async def test_history_replays(directory: Path, name: str) -> None:
    result = await replayer().replay_workflow(load(name, directory))
    assert result.replay_failure is None


async def test_the_sandbox_imports_the_workflow_module_through_the_compile_once_finder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found: list[tuple[str, type]] = []
    find_spec = CompileOnceFinder.find_spec

    def spy(self: CompileOnceFinder, fullname: str, path: Any, target: Any = None) -> Any:
        spec = find_spec(self, fullname, path, target)
        if spec is not None:
            found.append((fullname, type(spec.loader)))
        return spec

    monkeypatch.setattr(CompileOnceFinder, "find_spec", spy)
    result = await replayer().replay_workflow(load("comply", ONE_WRITE))
    assert result.replay_failure is None
    assert ("workflows.authority_request", CompileOnceLoader) in found, found


@workflow.defn(name=names.WORKFLOW_NAME)
class SkipsTheBaseline(AuthorityRequest):
    """A 'harmless' change: no baseline probe before the submission entry."""

    @workflow.run
    async def run(self, *start: Any) -> RequestResult:
        return await super().run(*start)

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
