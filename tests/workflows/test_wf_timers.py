"""Every timer path of AuthorityRequest on the time-skipping test server, with the real worker
and activities against the platform simulator.

Real policies (VN-C38-2016: 24 h, second notice 24 h, effect 24 h, re-checks +1d/+7d/+30d,
appeal window 30 d; EU-DSA-ART9: no clock, appeal window 183 d): the test server skips the
time. Polling is switched off (a 400-day poll interval) so no activity depends on wall time;
the platform acts through the CLI-style Updates of its liaison, and the simulator's clock is
moved forward with the test server's so its decisions (content really removed) keep up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from docket_harness import (
    CNAM_APPROVER,
    CNAM_OFFICER,
    actions,
    actor,
    audit_entries,
    endpoints,
    fast_reference,
    is_running,
    issue,
    liaison,
    make_order,
    path,
    running_worker,
    search_attributes,
    submit,
    wait_for,
)
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from audit.entry import AuditAnchor
from audit.report import build_report
from audit.verify import verify_paths
from docket import client as docket
from docket import temporal_names as names
from docket.case import RequestResult
from docket.models import (
    Acknowledge,
    Approve,
    Close,
    Command,
    Escalate,
    ItemEffect,
    ProvideInfo,
    Receipt,
    ReportEffect,
    RequestInfo,
    Withdraw,
)
from docket.reference import ReferenceData
from platform_sim.server import PlatformSimulator

pytestmark = pytest.mark.integration

NO_POLLING = timedelta(days=400)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
# Activities (probes, audit writes) run in real time while the test server holds its clock.
SLACK = timedelta(minutes=2)


@dataclass
class Run:
    """One test's stack: client, simulator, audit directory."""

    env: WorkflowEnvironment
    sim: PlatformSimulator
    reference: ReferenceData
    audit_dir: Path
    tag: str
    started: list[str]

    @property
    def client(self) -> Client:
        return self.env.client

    async def sync_sim_clock(self) -> None:
        """Move the simulator's clock up to the test server's (it only moves forward)."""
        now = (await self.env.get_current_time()).timestamp()
        behind = now - self.sim.engine.clock.now()
        if behind > 0:
            self.sim.advance(behind)

    async def submit(self, slugs: list[str], **order: Any) -> str:
        submitted_by = order.pop("submitted_by", None)
        built = make_order(
            self.sim,
            f"TS-{self.tag}-{len(self.started)}",
            [f"{s}-{self.tag}" for s in slugs],
            reference=self.reference,
            **order,
        )
        rid = await submit(
            self.client,
            built,
            self.reference,
            submitted_by=submitted_by,
            now=await self.env.get_current_time(),
        )
        self.started.append(rid)
        await wait_for(self.client, rid, state="pending_approval")
        return rid

    async def issue(self, rid: str, cmd: Command) -> Receipt:
        """Send `cmd` signed at the test server's time (it runs ahead of the wall clock)."""
        return await issue(self.client, rid, cmd, now=await self.env.get_current_time())

    async def approve(self, rid: str, approver: str = "tran.thi.binh") -> dict[str, Any]:
        await self.sync_sim_clock()
        await self.issue(
            rid, Approve(actor=actor(approver), reason="Checked against the legal basis")
        )
        return await wait_for(self.client, rid, state="awaiting_ack")

    async def sleep(self, duration: timedelta) -> None:
        await self.env.sleep(duration)

    async def finish(self, rid: str, step: timedelta = 5 * DAY) -> RequestResult:
        """Skip time until the run closes, then its result. (A handle from
        get_workflow_handle does not unlock time skipping while awaiting its result.)"""
        for _ in range(200):
            if not await is_running(self.client, rid):
                break
            await self.env.sleep(step)
        return await docket.result(self.client, rid)

    async def search_attributes(self, rid: str) -> dict[str, Any]:
        return await search_attributes(self.client, rid)

    async def history(self, rid: str) -> WorkflowHistory:
        return await self.client.get_workflow_handle(rid).fetch_history()

    async def timeline(self, rid: str) -> list[dict[str, Any]]:
        return await docket.timeline(self.client, rid)


@pytest.fixture
async def run(
    ts_env: WorkflowEnvironment,
    ts_simulator: PlatformSimulator,
    reference: ReferenceData,
    sim_secrets: dict[str, str],
    tmp_path: Path,
) -> AsyncIterator[Run]:
    audit_dir = tmp_path / "audit"
    r = Run(ts_env, ts_simulator, reference, audit_dir, uuid.uuid4().hex[:8], [])
    # The platform is never polled: these tests drive its answers themselves.
    quiet = fast_reference(reference, poll_interval=NO_POLLING)
    platforms = endpoints(ts_simulator, quiet, sim_secrets)
    async with running_worker(ts_env.client, platforms, audit_dir, reference=quiet):
        try:
            yield r
        finally:  # a failed test must not leave timers that fire into the next one
            for rid in r.started:
                if await is_running(ts_env.client, rid):
                    await ts_env.client.get_workflow_handle(rid).terminate("test ended")


def timers(history: WorkflowHistory) -> list[tuple[str, timedelta]]:
    """(summary, duration) of every timer the workflow started, in order."""
    out = []
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_TIMER_STARTED:
            continue
        summary = ""
        if event.HasField("user_metadata") and event.user_metadata.HasField("summary"):
            summary = pydantic_data_converter.payload_converter.from_payload(
                event.user_metadata.summary, str
            )
        timeout = event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        out.append((summary, timeout))
    return out


def fired_timers(history: WorkflowHistory) -> int:
    return sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED)


def ts(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(entry["@timestamp"]).replace("Z", "+00:00"))


def entry(timeline: list[dict[str, Any]], action: str, n: int = 0) -> dict[str, Any]:
    return [e for e in timeline if e["event"]["action"] == action][n]


def near(value: timedelta, expected: timedelta) -> bool:
    return expected - SLACK <= value <= expected + SLACK


def notices(sim: PlatformSimulator, kind: str) -> int:
    counts: dict[str, int] = sim.stats()["platforms"].get("facebook", {}).get("notices", {})
    return counts.get(kind, 0)


def removed(item_id: str, effect: str = "removed_globally", **kw: Any) -> ItemEffect:
    return ItemEffect(item_id=item_id, effect=effect, **kw)


async def report_effect(r: Run, rid: str, *effects: ItemEffect) -> None:
    await r.issue(
        rid,
        ReportEffect(
            actor=liaison("facebook"),
            reason="Decision of the legal removals team",
            effects=effects,
        ),
    )


async def test_no_answer_second_notice_then_unresponsive(run: Run) -> None:
    """(a) VN-C38: 24 h silence -> second notice (sent to the platform) -> 24 h -> unresponsive."""
    r = run
    rid = await r.submit(["ignore--silent"], policy="VN-C38-2016")
    status = await r.approve(rid)
    received = datetime.fromisoformat(
        entry(await r.timeline(rid), "delivered")["docket"]["data"]["received_at"].replace(
            "Z", "+00:00"
        )
    )
    first_due = datetime.fromisoformat(status["due_at"].replace("Z", "+00:00"))
    assert first_due - received == 24 * HOUR
    sa = await r.search_attributes(rid)
    assert sa.get(names.DUE_AT.name) == first_due
    assert sa.get(names.SLA_BREACHED.name) is False
    sent_before = notices(r.sim, "second_notice")

    await r.sleep(23 * HOUR)  # not yet
    assert (await docket.status(r.client, rid))["state"] == "awaiting_ack"
    assert notices(r.sim, "second_notice") == sent_before

    await r.sleep(2 * HOUR)
    status = await wait_for(r.client, rid, state="second_notice")
    assert status["sla_breached"] is True
    second_due = datetime.fromisoformat(status["due_at"].replace("Z", "+00:00"))
    assert near(second_due - first_due, 24 * HOUR)
    sa = await r.search_attributes(rid)
    assert sa.get(names.REQUEST_STATE.name) == "second_notice"
    assert sa.get(names.SLA_BREACHED.name) is True
    assert sa.get(names.DUE_AT.name) == second_due
    # the second notice really reached the platform (once), after its audit entry
    await wait_for(r.client, rid, action="sla_expired")
    for _ in range(50):
        if notices(r.sim, "second_notice") > sent_before:
            break
        await r.sleep(timedelta(seconds=1))
    assert notices(r.sim, "second_notice") == sent_before + 1

    await r.sleep(25 * HOUR)
    status = await wait_for(r.client, rid, state="unresponsive")
    assert status["sla_breached"] is True
    sa = await r.search_attributes(rid)
    assert sa.get(names.REQUEST_STATE.name) == "unresponsive"
    assert sa.get(names.DUE_AT.name) is None  # no clock runs once unresponsive

    await r.issue(
        rid,
        Escalate(actor=actor("tran.thi.binh"), reason="No answer after the second notice"),
    )
    result = await r.finish(rid)
    assert (result.state, result.outcome) == ("closed", "unresponsive")
    assert result.item_outcomes == {"i1": "no_response"}
    timeline = await r.timeline(rid)
    assert path(timeline) == [
        "pending_approval",
        "delivering",
        "awaiting_ack",
        "second_notice",
        "unresponsive",
        "closed",
    ]
    assert [
        e["docket"]["data"]["timer"] for e in timeline if e["event"]["action"] == "sla_expired"
    ] == [
        "respond",
        "second_notice",
    ]
    labelled = [(s, d) for s, d in timers(await r.history(rid)) if s.startswith("SLA")]
    assert [s for s, _ in labelled] == ["SLA: respond", "SLA: second notice"]
    assert all(near(d, 24 * HOUR) for _, d in labelled), labelled
    sa = await r.search_attributes(rid)
    assert sa.get(names.OUTCOME.name) == "unresponsive"
    assert sa.get(names.REQUEST_STATE.name) == "closed"


async def test_effect_within_sla_verified_monitored_and_closed_complied(run: Run) -> None:
    """(b) ack, effect within the SLA -> verifying -> monitoring -> re-checks at +1d/+7d/+30d
    -> closed complied; nothing breached."""
    r = run
    rid = await r.submit(["remove.410--gone", "remove.451--blocked"], policy="VN-C38-2016")
    await r.approve(rid)
    receipt = await r.issue(
        rid,
        Acknowledge(actor=liaison("facebook"), reason="Received; under review"),
    )
    assert receipt.state == "acknowledged"
    r.sim.advance(5)  # the platform acts: the simulator removes the content
    await r.sleep(3 * HOUR)
    await report_effect(r, rid, removed("i1"), removed("i2"))
    status = await wait_for(r.client, rid, state="monitoring")
    assert status["sla_breached"] is False
    assert status["due_at"] is None
    assert [i["verification"] for i in status["items"]] == ["confirmed", "confirmed"]
    sa = await r.search_attributes(rid)
    assert sa.get(names.REQUEST_STATE.name) == "monitoring"
    assert sa.get(names.DUE_AT.name) is None

    await r.sleep(DAY + HOUR)
    await wait_for(r.client, rid, action="recheck")
    assert actions(await r.timeline(rid)).count("recheck") == 1

    result = await r.finish(rid)  # skips through the rest
    assert (result.state, result.outcome) == ("closed", "complied")
    assert result.item_outcomes == {"i1": "removed_globally", "i2": "removed_globally"}
    timeline = await r.timeline(rid)
    assert path(timeline) == [
        "pending_approval",
        "delivering",
        "awaiting_ack",
        "acknowledged",
        "verifying",
        "monitoring",
        "monitoring",
        "monitoring",
        "monitoring",
        "closed",
    ]
    verified = ts(entry(timeline, "verified"))
    rechecks = [ts(e) - verified for e in timeline if e["event"]["action"] == "recheck"]
    assert len(rechecks) == 3
    for got, want in zip(rechecks, (DAY, 7 * DAY, 30 * DAY), strict=True):
        assert near(got, want), rechecks
    assert near(ts(entry(timeline, "monitoring_complete")) - verified, 30 * DAY)
    assert all(e["docket"]["data"]["disagreements"] == [] for e in timeline[-4:-1])
    started = timers(await r.history(rid))
    rechecked = [(s, d) for s, d in started if s.startswith("re-check")]
    assert [s for s, _ in rechecked] == ["re-check 1", "re-check 2", "re-check 3"]
    for (_, got), want in zip(rechecked, (DAY, 6 * DAY, 23 * DAY), strict=True):
        assert near(got, want), rechecked
    assert "SLA: effect" in [s for s, _ in started]  # armed while acknowledged, then cancelled
    sa = await r.search_attributes(rid)
    assert sa.get(names.OUTCOME.name) == "complied"
    assert sa.get(names.SLA_BREACHED.name) is False
    # the log on disk is the timeline, and verifies against the result's anchor
    assert [e["hash"] for e in audit_entries(r.audit_dir, rid)] == [e["hash"] for e in timeline]
    verdict = verify_paths(
        [r.audit_dir], anchors=[AuditAnchor(rid, result.audit_count, result.audit_head)]
    )
    assert verdict.ok, verdict.findings


async def test_acknowledged_without_effect_goes_overdue(run: Run) -> None:
    """(c) acknowledged, then no effect within 24 h of receipt -> overdue, SLA breached."""
    r = run
    rid = await r.submit(["remove--never-acted-on"], policy="VN-C38-2016")
    await r.approve(rid)
    await r.issue(rid, Acknowledge(actor=liaison("facebook"), reason="Received"))
    status = await wait_for(r.client, rid, state="acknowledged")
    timeline = await r.timeline(rid)
    received = entry(timeline, "delivered")["docket"]["data"]["received_at"]
    due = datetime.fromisoformat(status["due_at"].replace("Z", "+00:00"))
    assert due - datetime.fromisoformat(received.replace("Z", "+00:00")) == 24 * HOUR
    assert status["sla_breached"] is False

    await r.sleep(25 * HOUR)
    status = await wait_for(r.client, rid, state="overdue")
    assert status["sla_breached"] is True
    sa = await r.search_attributes(rid)
    assert sa.get(names.REQUEST_STATE.name) == "overdue"
    assert sa.get(names.SLA_BREACHED.name) is True
    expired = entry(await r.timeline(rid), "sla_expired")
    assert expired["docket"]["data"]["timer"] == "effect"
    assert expired["docket"]["from_state"] == "acknowledged"
    effect_timers = [d for s, d in timers(await r.history(rid)) if s == "SLA: effect"]
    assert len(effect_timers) == 1 and near(effect_timers[0], 24 * HOUR), effect_timers

    await r.issue(
        rid,
        Escalate(actor=actor("tran.thi.binh"), reason="Acknowledged but nothing done"),
    )
    result = await r.finish(rid)
    assert (result.state, result.outcome) == ("closed", "unresponsive")


async def test_recheck_finds_content_back_disputed(run: Run) -> None:
    """(d) verified gone, then the +1d re-check sees it back (simulator `resurface`) -> disputed."""
    r = run
    rid = await r.submit(["remove.resurface--comes-back"], policy="VN-C38-2016")
    await r.approve(rid)
    r.sim.advance(5)
    await report_effect(r, rid, removed("i1"))
    status = await wait_for(r.client, rid, state="monitoring")
    assert status["items"][0]["verification"] == "confirmed"

    await r.sleep(DAY + HOUR)
    status = await wait_for(r.client, rid, state="disputed")
    assert status["items"][0]["verification"] == "contradicted"
    assert status["items"][0]["outcome"] == "still_available"
    timeline = await r.timeline(rid)
    recheck = entry(timeline, "recheck")
    assert recheck["docket"]["to_state"] == "disputed"
    assert [d["item_id"] for d in recheck["docket"]["data"]["disagreements"]] == ["i1"]
    assert near(ts(recheck) - ts(entry(timeline, "verified")), DAY)
    assert (await r.search_attributes(rid)).get(names.REQUEST_STATE.name) == "disputed"

    await r.issue(
        rid,
        Close(actor=actor("ops.on.call"), reason="Closed with the disagreement on record"),
    )
    result = await r.finish(rid)
    assert (result.state, result.outcome) == ("closed", "disputed")
    assert result.item_outcomes == {"i1": "still_available"}


async def test_declined_then_appeal_window_closes_it(run: Run) -> None:
    """(e) declined with reasons -> declined; nobody appeals for 30 d -> closed declined."""
    r = run
    rid = await r.submit(["decline--lawful-speech"], policy="VN-C38-2016")
    await r.approve(rid)
    await report_effect(
        r, rid, removed("i1", "declined", reason="Lawful reporting on a public official")
    )
    status = await wait_for(r.client, rid, state="declined")
    assert status["sla_breached"] is False
    assert status["items"][0]["outcome"] == "declined"

    await r.sleep(29 * DAY)
    assert (await docket.status(r.client, rid))["state"] == "declined"
    result = await r.finish(rid)
    assert (result.state, result.outcome) == ("closed", "declined")
    assert result.item_outcomes == {"i1": "declined"}  # never merged with "no response"
    timeline = await r.timeline(rid)
    assert actions(timeline)[-1] == "appeal_window_closed"
    assert near(ts(timeline[-1]) - ts(entry(timeline, "verified")), 30 * DAY)
    window = [d for s, d in timers(await r.history(rid)) if s == "appeal window ends"]
    assert len(window) == 1 and near(window[0], 30 * DAY)
    assert (await r.search_attributes(rid)).get(names.OUTCOME.name) == "declined"


async def test_dsa_article_9_has_no_deadline_but_counts_in_medians(run: Run) -> None:
    """(f) EU-DSA-ART9: no clock (DueAt unset, never breached) however long the platform takes;
    its response times still count in the transparency report's medians."""
    r = run
    rid = await r.submit(
        ["remove.410--counterfeit-insulin"],
        policy="EU-DSA-ART9",
        authority="ie-cnam",
        officer=CNAM_OFFICER.id,
        submitted_by=CNAM_OFFICER,
        basis="eu-dsa-2022",
        scope=("IE",),
        category="false_information",
    )
    status = await r.approve(rid, CNAM_APPROVER)  # the Irish regulator's own approver
    assert status["due_at"] is None
    sa = await r.search_attributes(rid)
    assert sa.get(names.DUE_AT.name) is None
    assert sa.get(names.LEGAL_BASIS.name) == "eu-dsa-2022"

    await r.sleep(3 * DAY)
    status = await docket.status(r.client, rid)
    assert (status["state"], status["sla_breached"]) == ("awaiting_ack", False)
    await r.issue(rid, Acknowledge(actor=liaison("facebook"), reason="Received"))
    status = await wait_for(r.client, rid, state="acknowledged")
    assert status["due_at"] is None
    r.sim.advance(5)
    await r.sleep(2 * DAY)
    await report_effect(r, rid, removed("i1"))
    status = await wait_for(r.client, rid, state="monitoring")
    assert status["sla_breached"] is False
    result = await r.finish(rid)
    assert (result.state, result.outcome) == ("closed", "complied")
    timeline = await r.timeline(rid)
    assert "sla_expired" not in actions(timeline)
    assert not any(s.startswith("SLA") for s, _ in timers(await r.history(rid)))
    sa = await r.search_attributes(rid)
    assert sa.get(names.DUE_AT.name) is None
    assert sa.get(names.SLA_BREACHED.name) is False
    assert near(ts(timeline[-1]) - ts(entry(timeline, "verified")), 183 * DAY)

    report = build_report(
        [r.audit_dir], datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    )
    assert report["sla"]["requests_excluded_no_clock"] == 1
    assert report["sla"]["requests_counted"] == 0
    send_to_ack = report["durations"]["send_to_ack"]
    receipt_to_effect = report["durations"]["receipt_to_effect"]
    assert send_to_ack["n"] == 1
    assert send_to_ack["median_seconds"] >= (3 * DAY).total_seconds()
    assert receipt_to_effect["n"] == 1
    assert receipt_to_effect["median_seconds"] >= (5 * DAY).total_seconds()


async def test_a_notice_the_platform_refuses_does_not_fail_the_run(run: Run) -> None:
    """The liaison asks for information by hand (not through the API), so the platform's API
    answers the `info_provided` notice with 422. The transitions stand and the run goes on
    (before the fix the ActivityError failed the whole workflow: the request was lost)."""
    r = run
    rid = await r.submit(["ignore--asked-by-hand"], policy="VN-C38-2016")
    await r.approve(rid)
    await r.issue(rid, Acknowledge(actor=liaison("facebook"), reason="Received"))
    await r.issue(
        rid,
        RequestInfo(actor=liaison("facebook"), reason="By e-mail", question="Which article?"),
    )
    receipt = await r.issue(
        rid,
        ProvideInfo(actor=actor("nguyen.van.an"), reason="Answered", answer="Art. 5(1)(a)"),
    )
    assert receipt.state == "acknowledged"
    history = await r.history(rid)
    for _ in range(100):  # the notice activity runs after the receipt
        failed = [
            e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
        ]
        if failed:
            break
        await asyncio.sleep(0.1)
        history = await r.history(rid)
    assert failed, "the platform should have refused the info_provided notice"
    assert (
        "no information was requested"
        in failed[0].activity_task_failed_event_attributes.failure.message
    )
    assert await is_running(r.client, rid)
    await r.issue(rid, Withdraw(actor=actor("nguyen.van.an"), reason="Resolved by phone"))
    result = await r.finish(rid)
    assert (result.state, result.outcome) == ("closed", "withdrawn")
