"""Replay the committed histories (made by tests/histories/record.py) against today's
AuthorityRequest, with the worker's own sandbox runner: a change that would break running
workflows (different commands for the same history) fails here, and so does a replay that
plans a different audit entry than the history's write carried (`audit_replay`).

Six sets: tests/histories/*.json were recorded before the local audit write (every entry by
a regular activity), tests/histories/local-audit/*.json after it (`LOCAL_AUDIT_PATCH`),
tests/histories/one-write-per-poll/*.json after a poll's transitions were written together
(`ONE_WRITE_PER_POLL_PATCH`), tests/histories/clock-from-history/*.json after no entry's
time was read from the activation that hands a local activity's result over
(`CLOCK_FROM_HISTORY_PATCH`), tests/histories/trust-boundary/*.json after the workflow
admitted signed submissions itself (`TRUST_BOUNDARY_PATCH`), and
tests/histories/fewer-events/*.json after one patch marker came to stand for all of those and
the command barrier's timer (`COMMAND_BARRIER_TIMER_PATCH`), and unchanged search attributes
stopped being upserted (`FEWER_EVENTS_PATCH`). The later sets
have a `prompt` path, whose first poll reports the acknowledgment and the decision at once:
two writes before the one-write patch, one after. tests/histories/replay-divergence/ holds
histories whose local writes' results reached the workflow in a later task than the one that
recorded them (a query was answered meanwhile): two recorded before the clock patch, whose
replay plans different entries, and one after it, whose replay plans the same."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from audit_replay import check_replay, writes_handed_over_late
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from docket import temporal_names as names
from docket.case import RequestResult
from docket.worker_setup import CompileOnceFinder, CompileOnceLoader, workflow_runner
from workflows import AuthorityRequest
from workflows.authority_request import (
    CLOCK_FROM_HISTORY_PATCH,
    FEWER_EVENTS_PATCH,
    LOCAL_AUDIT_PATCH,
    ONE_WRITE_PER_POLL_PATCH,
    TRUST_BOUNDARY_PATCH,
)

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
LOCAL_AUDIT = HISTORIES / "local-audit"
ONE_WRITE = HISTORIES / "one-write-per-poll"
CLOCK = HISTORIES / "clock-from-history"
TRUST = HISTORIES / "trust-boundary"
FEWER = HISTORIES / "fewer-events"
DIVERGENCE = HISTORIES / "replay-divergence"
EXPECTED = ("appeal_reversed", "comply", "disputed", "unresponsive")
SETS = {
    "before-local-audit": (HISTORIES, EXPECTED),
    "local-audit": (LOCAL_AUDIT, (*EXPECTED, "prompt")),
    "one-write-per-poll": (ONE_WRITE, (*EXPECTED, "prompt")),
    "clock-from-history": (CLOCK, (*EXPECTED, "prompt")),
    "trust-boundary": (TRUST, (*EXPECTED, "prompt")),
    "fewer-events": (FEWER, (*EXPECTED, "prompt")),
}
ALL = [(d, name) for d, names_ in SETS.values() for name in names_]


def load(name: str, directory: Path = HISTORIES) -> WorkflowHistory:
    """A committed history under its own workflow id: a signed submission names the request
    it was signed for, and the workflow refuses it under any other id."""
    text = (directory / f"{name}.json").read_text()
    return WorkflowHistory.from_json(recorded_workflow_id(text) or f"replay-{name}", text)


def recorded_workflow_id(text: str) -> str | None:
    """The request id a history's signed start input was signed for (None before signing)."""
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    data = json.loads(base64.b64decode(started["input"]["payloads"][0]["data"]))
    if not isinstance(data, dict) or "statement" not in data:
        return None
    request_id: str = json.loads(data["statement"])["request_id"]
    return request_id


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
    for directory in (LOCAL_AUDIT, ONE_WRITE, CLOCK, TRUST):
        patches, writes = audit_markers(directory, name)
        assert LOCAL_AUDIT_PATCH in patches and len(writes) >= 3, (directory, patches, writes)
        assert set(writes) == {1}  # no poll of these paths reported two things at once


def test_before_the_patch_a_polls_two_transitions_were_two_writes() -> None:
    """Recorded with the code of commit c47e393: a request in flight then must still replay,
    so the batching must stay behind its patch (this replay fails without it)."""
    patches, writes = audit_markers(LOCAL_AUDIT, "prompt")
    assert patches == {LOCAL_AUDIT_PATCH}
    assert set(writes) == {1} and len(writes) == 8, writes


def test_the_later_sets_record_one_write_for_a_polls_two_transitions() -> None:
    patches, writes = audit_markers(ONE_WRITE, "prompt")
    assert patches == {LOCAL_AUDIT_PATCH, ONE_WRITE_PER_POLL_PATCH}
    assert writes.count(2) == 1 and set(writes) == {1, 2}, writes
    patches, writes = audit_markers(CLOCK, "prompt")
    assert patches == {LOCAL_AUDIT_PATCH, ONE_WRITE_PER_POLL_PATCH, CLOCK_FROM_HISTORY_PATCH}
    assert writes.count(2) == 1 and set(writes) == {1, 2}, writes


@pytest.mark.parametrize("name", (*EXPECTED, "prompt"))
def test_the_trust_boundary_set_holds_signed_submissions_and_commands(name: str) -> None:
    """Recorded after `trust-boundary`: the workflow admitted a signed submission itself
    (load_deployment) and took every command signed; today's code replays these requests
    entry for entry (a request running now looks like them)."""
    patches, _ = audit_markers(TRUST, name)
    assert TRUST_BOUNDARY_PATCH in patches and CLOCK_FROM_HISTORY_PATCH in patches
    events = json.loads((TRUST / f"{name}.json").read_text())["events"]
    scheduled = [
        e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for e in events
        if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    ]
    assert scheduled[0] == "load_deployment"
    accepted = [
        e for e in events if e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"
    ]
    assert accepted  # every scenario approves, signed
    for update in accepted:
        args = update["workflowExecutionUpdateAcceptedEventAttributes"]["acceptedRequest"]
        payload = json.loads(base64.b64decode(args["input"]["args"]["payloads"][0]["data"]))
        assert set(payload) == {"statement", "signature"}


@pytest.mark.parametrize("name", (*EXPECTED, "prompt"))
def test_the_fewer_events_set_records_one_patch_and_no_idle_upsert(name: str) -> None:
    """Recorded after `fewer-events`: one patch marker stands for every earlier change, a
    start whose fingerprint memo is right keeps it, and every search attribute upsert
    changes a value (a re-check, which keeps the state, upserts nothing)."""
    patches, writes = audit_markers(FEWER, name)
    assert patches == {FEWER_EVENTS_PATCH} and len(writes) >= 3, (patches, writes)
    events = json.loads((FEWER / f"{name}.json").read_text())["events"]
    memos = [
        set(e["workflowPropertiesModifiedEventAttributes"]["upsertedMemo"]["fields"])
        for e in events
        if e["eventType"] == "EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED"
    ]
    assert memos == [{"audit_anchor", "outcome"}], memos  # the anchor at close, nothing else
    values: dict[str, Any] = {}
    for e in events:
        if e["eventType"] != "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES":
            continue
        fields = e["upsertWorkflowSearchAttributesEventAttributes"]["searchAttributes"]
        upserted = {
            key: json.loads(base64.b64decode(p.get("data", "")) or "null")
            for key, p in fields["indexedFields"].items()
        }
        assert any(values.get(k, "<unset>") != v for k, v in upserted.items()), upserted
        values.update(upserted)


def command_barriers(directory: Path, name: str) -> tuple[int, int]:
    """(barrier local activities, barrier timers) of a recorded history: how each command that
    came while the main loop waited for an activity or a timer let the main loop record first."""
    events = json.loads((directory / f"{name}.json").read_text())["events"]
    local = timers = 0
    for e in events:
        if e["eventType"] == "EVENT_TYPE_TIMER_STARTED":
            summary = e.get("userMetadata", {}).get("summary", {}).get("data", "")
            timers += "main loop" in base64.b64decode(summary).decode()
        elif e["eventType"] == "EVENT_TYPE_MARKER_RECORDED":
            m = e["markerRecordedEventAttributes"]
            if m["markerName"] == "core_local_activity":
                data = json.loads(base64.b64decode(m["details"]["data"]["payloads"][0]["data"]))
                local += data["activity_type"] == "audit_order_barrier"
    return local, timers


@pytest.mark.parametrize("name", ("appeal_reversed", "unresponsive"))
def test_the_fewer_events_set_waits_for_the_main_loop_behind_a_timer(name: str) -> None:
    """`fewer-events` stands for `command-barrier-timer` too: in the paths where a command came
    while a poll or a timer was pending, the earlier set waited behind a local activity, the
    fewer-events set behind a timer (and both replay: test_history_replays)."""
    assert command_barriers(TRUST, name) == (1, 0)
    assert command_barriers(FEWER, name) == (0, 1)


@pytest.mark.parametrize("name", EXPECTED)
def test_the_clock_set_is_recorded_after_the_clock_patch(name: str) -> None:
    patches, _ = audit_markers(CLOCK, name)
    assert patches == {LOCAL_AUDIT_PATCH, CLOCK_FROM_HISTORY_PATCH}
    for directory in (HISTORIES, LOCAL_AUDIT, ONE_WRITE):
        assert CLOCK_FROM_HISTORY_PATCH not in audit_markers(directory, name)[0]


@pytest.mark.parametrize(("directory", "name"), ALL, ids=[f"{d.name}/{n}" for d, n in ALL])
async def test_history_replays(directory: Path, name: str) -> None:
    result = await replayer().replay_workflow(load(name, directory))
    assert result.replay_failure is None


@pytest.mark.parametrize(("directory", "name"), ALL, ids=[f"{d.name}/{n}" for d, n in ALL])
async def test_history_replays_without_the_sandbox(directory: Path, name: str) -> None:
    """What a worker with DOCKET_WORKFLOW_SANDBOX=off runs (docs/operations.md) replays
    every recorded history too."""
    unsandboxed = Replayer(
        workflows=[AuthorityRequest],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(sandboxed=False),
    )
    result = await unsandboxed.replay_workflow(load(name, directory))
    assert result.replay_failure is None


@pytest.mark.parametrize(("directory", "name"), ALL, ids=[f"{d.name}/{n}" for d, n in ALL])
async def test_replay_plans_every_entry_the_history_wrote(directory: Path, name: str) -> None:
    """Each replayed audit write carries the entries (same sequence, id and hash) of the
    write at the same place in the history, and the replayed timeline is all of them."""
    check = await check_replay(load(name, directory))
    assert check.problems == []
    assert check.timeline is not None and len(check.timeline) == check.entries_checked >= 6


@pytest.mark.parametrize("name", ["appeal_before_fix", "comply_before_fix"])
async def test_a_replay_that_plans_another_entry_is_caught(name: str) -> None:
    """Recorded before `CLOCK_FROM_HISTORY_PATCH` (appeal: the integration scenarios as they
    ran; comply: queries answered slowly while its local writes ran), so they replay today as
    they did then. The local write of #5 reached the workflow in the task after the one that
    recorded it; `verified` (#6) was stamped with that task's start, replay stamps it with the
    write's completion time. Temporal's replay sees nothing wrong (same commands); the audit
    check does, and the timeline query answered by this replay differs from entry #6 on (the
    failure of test_receipts_match_the_audit_log: list index 5)."""
    history = load(name, DIVERGENCE)
    assert 5 in await writes_handed_over_late(history)
    check = await check_replay(history)
    assert check.replay_failure is None
    first, last = check.problems[0], check.problems[-1]
    assert "replayed #6" in first and "replayed entry: verified at" in first, first
    assert last.endswith("from entry #6"), last


async def test_after_the_clock_patch_a_write_handed_over_late_replays_the_same() -> None:
    """Recorded with the clock patch under the condition that broke the histories above
    (queries answered slowly while local writes ran): the results of the writes of
    `verified` and both `recheck`s reached the workflow a task late, and replay plans every
    entry the history wrote. The times now come from entries: `verified` is stamped when the
    case entered `verifying`, and the monitoring window closes 5 s (TEST-FAST's appeal window)
    after `verified`."""
    history = load("comply_after_fix", DIVERGENCE)
    assert CLOCK_FROM_HISTORY_PATCH in audit_markers(DIVERGENCE, "comply_after_fix")[0]
    assert {6, 7, 8} <= set(await writes_handed_over_late(history))
    check = await check_replay(history)
    assert check.problems == []
    assert check.timeline is not None
    at = {e["event"]["action"]: datetime.fromisoformat(e["@timestamp"]) for e in check.timeline}
    assert at["verified"] == at["report_effect"]
    assert at["monitoring_complete"] - at["verified"] == timedelta(seconds=5)


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

    async def _probe(
        self, items: Any, vantages: Any, *, baseline: bool = False, **kwargs: Any
    ) -> Any:
        if baseline:
            return []
        return await super()._probe(items, vantages, baseline=baseline, **kwargs)


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
