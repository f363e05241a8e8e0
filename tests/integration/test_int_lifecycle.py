"""The full lifecycle for every simulator scenario, on the real dev server with the real worker
and the platform simulator over loopback; then listing, secrets, receipts and the audit log
over all of those runs.

The scenarios run concurrently (one task each, started by the module's `runs` fixture) so the
module takes about as long as its slowest scenario; each test awaits its own run and checks it.
The platform acts by itself (the worker polls it every second); humans act through the same
`docket.client.send_command` a script uses. Clocks: the TEST-FAST policy (8 s to respond, 8 s
after the second notice, 12 s to give effect, re-checks +1 s/+2 s, appeal window 5 s).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from audit_replay import check_replay
from docket_harness import (
    SCENARIOS,
    Driver,
    Run,
    Stack,
    actions,
    audit_entries,
    decoded_text,
    path,
    search_attributes,
)

from audit.entry import AuditAnchor
from audit.reconcile import local_audit_writes
from audit.verify import verify_paths
from docket import client as docket

pytestmark = [pytest.mark.integration, pytest.mark.slow(30)]

RUN_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def tag() -> str:
    return uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
async def runs(dev_stack: Stack, tag: str) -> AsyncIterator[dict[str, asyncio.Task[Run]]]:
    """Every scenario, started at once on the session's event loop."""
    driver = Driver(dev_stack, tag)
    tasks = {
        name: asyncio.create_task(scenario(driver), name=name)
        for name, scenario in SCENARIOS.items()
    }
    yield tasks
    for task in tasks.values():
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)


async def finished(runs: dict[str, asyncio.Task[Run]], name: str) -> Run:
    return await asyncio.wait_for(asyncio.shield(runs[name]), RUN_TIMEOUT)


def closed(run: Run) -> tuple[str | None, str | None]:
    assert run.result is not None
    return run.result.state, run.result.outcome


def evidence(
    timeline: list[dict[str, Any]], action: str = "verified"
) -> dict[tuple[str, str], Any]:
    """(item, vantage) -> evidence of the first `action` entry."""
    entry = next(e for e in timeline if e["event"]["action"] == action)
    return {(ev["item_id"], ev["vantage"]): ev for ev in entry["docket"]["evidence"]}


def platform_ack(timeline: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in timeline if e["event"]["action"] == "acknowledge")


# --- each scenario -------------------------------------------------------------------------


async def test_comply_full_lifecycle(runs: dict[str, asyncio.Task[Run]]) -> None:
    run = await finished(runs, "comply")
    assert closed(run) == ("closed", "complied")
    assert run.result is not None and run.result.item_outcomes == {"i1": "removed_globally"}
    assert path(run.timeline) == [
        "pending_approval",
        "delivering",
        "awaiting_ack",
        "acknowledged",
        "verifying",
        "monitoring",
        "monitoring",
        "monitoring",
        "closed",
    ]
    assert actions(run.timeline)[-3:] == ["recheck", "recheck", "monitoring_complete"]
    # the platform's own answers came from polling its API, as the platform's actor
    assert platform_ack(run.timeline)["user"]["id"] == "platform:facebook"
    assert run.seen["closed"]["sla_breached"] is False
    assert {ev["observation"] for ev in evidence(run.timeline).values()} == {"removed"}


async def test_one_poll_reporting_ack_and_effect_is_one_write(
    runs: dict[str, asyncio.Task[Run]], dev_stack: Stack
) -> None:
    run = await finished(runs, "prompt")
    assert closed(run) == ("closed", "complied")
    ack, effect = (
        next(e for e in run.timeline if e["event"]["action"] == a)
        for a in ("acknowledge", "report_effect")
    )
    assert effect["event"]["sequence"] == ack["event"]["sequence"] + 1
    assert effect["prev_hash"] == ack["hash"]
    # stamped with the time the main loop asked the platform: the same for both
    assert effect["@timestamp"] == ack["@timestamp"]
    history = await dev_stack.client.get_workflow_handle(run.rid).fetch_history()
    converter = dev_stack.client.data_converter
    writes = [w for ev in history.events for w in await local_audit_writes(converter, ev)]
    by_marker: dict[int, list[int]] = {}
    for w in writes:
        by_marker.setdefault(w.scheduled_event_id, []).append(w.sequence)
    pair = [ack["event"]["sequence"], effect["event"]["sequence"]]
    assert pair in by_marker.values(), by_marker  # one local activity wrote both
    assert all(len(seqs) == 1 for seqs in by_marker.values() if seqs != pair)
    # and the log holds both, once each, chained
    logged = audit_entries(dev_stack.audit_dir, run.rid)
    assert [e["event"]["sequence"] for e in logged] == list(range(1, len(logged) + 1))


async def test_partial_compliance(runs: dict[str, asyncio.Task[Run]]) -> None:
    run = await finished(runs, "partial")
    assert closed(run) == ("closed", "partially_complied")
    assert run.result is not None
    assert run.result.item_outcomes == {"i1": "removed_globally", "i2": "declined"}
    effects = next(e for e in run.timeline if e["event"]["action"] == "report_effect")
    declined = [i for i in effects["docket"]["items"] if i["effect"] == "declined"]
    assert declined and declined[0]["reason"]  # a decline carries its reasons


async def test_decline_closes_when_the_appeal_window_ends(
    runs: dict[str, asyncio.Task[Run]],
) -> None:
    run = await finished(runs, "decline")
    assert closed(run) == ("closed", "declined")
    assert run.result is not None and run.result.item_outcomes == {"i1": "declined"}
    assert actions(run.timeline)[-2:] == ["verified", "appeal_window_closed"]
    assert run.seen["declined"]["items"][0]["verification"] == "not_applicable"


async def test_ignored_request_is_escalated(
    runs: dict[str, asyncio.Task[Run]], dev_stack: Stack
) -> None:
    run = await finished(runs, "ignore")
    assert closed(run) == ("closed", "unresponsive")
    assert run.result is not None and run.result.item_outcomes == {"i1": "no_response"}
    assert path(run.timeline)[2:] == ["awaiting_ack", "second_notice", "unresponsive", "closed"]
    assert run.seen["second_notice"]["sla_breached"] is True
    assert run.receipts[-1].outcome == "unresponsive"
    ticket = run.seen["closed"]["ticket"]
    kinds = [r.kind for _, r in dev_stack.sim.engine._tickets[ticket].notices.values()]
    assert kinds == ["second_notice"]


async def test_slow_ack_arrives_after_the_second_notice(
    runs: dict[str, asyncio.Task[Run]],
) -> None:
    run = await finished(runs, "slow_ack")
    assert closed(run) == ("closed", "complied")
    states = path(run.timeline)
    assert states[2:5] == ["awaiting_ack", "second_notice", "acknowledged"]
    assert run.seen["closed"]["sla_breached"] is True  # late, yet complied: both recorded
    assert platform_ack(run.timeline)["docket"]["from_state"] == "second_notice"


async def test_flaky_platform_delivery_is_retried_once_delivered(
    runs: dict[str, asyncio.Task[Run]], dev_stack: Stack
) -> None:
    run = await finished(runs, "flaky")
    assert closed(run) == ("closed", "complied")
    stats = dev_stack.sim.stats()["platforms"]["facebook"]
    assert stats["delivery_attempts"][run.rid] == 3  # two 503s, then the ticket
    assert stats["deliveries"][run.rid] == 1
    assert actions(run.timeline).count("delivered") == 1
    assert "delivery_failed" not in actions(run.timeline)


async def test_platform_asks_for_information(runs: dict[str, asyncio.Task[Run]]) -> None:
    run = await finished(runs, "info")
    assert closed(run) == ("closed", "complied")
    asked = run.seen["info_requested"]
    assert asked["info_question"]
    states = path(run.timeline)
    assert states.index("info_requested") < states.index("verifying")
    provided = next(e for e in run.timeline if e["event"]["action"] == "provide_info")
    assert (provided["docket"]["from_state"], provided["docket"]["to_state"]) == (
        "info_requested",
        "acknowledged",
    )
    assert run.receipts[-1].trigger == "provide_info"


async def test_removal_views_and_the_login_wall(runs: dict[str, asyncio.Task[Run]]) -> None:
    run = await finished(runs, "views")
    # every item claimed gone, but a 404 and a login wall prove nothing: never "complied"
    assert closed(run) == ("closed", "complied_unverified")
    seen = evidence(run.timeline)
    observed = {item: seen[(item, "VN")]["observation"] for item, _ in seen}
    assert observed == {
        "i1": "not_found",  # 404: inconclusive (a login-only post also answers 404)
        "i2": "removed",  # 410
        "i3": "legally_blocked",  # 451
        "i4": "removed",  # 200 with the "content isn't available" page
        "i5": "login_wall",  # 302 to a login page
        "i6": "geo_restricted",  # restricted in VN
    }
    assert seen[("i3", "VN")]["blocked_by"]  # the 451's Link rel="blocked-by"
    assert seen[("i6", "control")]["observation"] == "available"  # restriction, not removal
    verification = {i["item_id"]: i["verification"] for i in run.seen["monitoring"]["items"]}
    assert verification == {
        "i1": "unverified",
        "i2": "confirmed",
        "i3": "confirmed",
        "i4": "confirmed",
        "i5": "unverified",  # a login wall never counts as removed
        "i6": "confirmed",
    }
    # the closing entry and the result say which removals were never confirmed
    closing = run.timeline[-1]["docket"]["data"]
    assert closing["unverified"] == ["i1", "i5"]
    assert closing["item_verification"] == verification
    assert run.result is not None
    assert run.result.item_verification == verification
    assert all(ev["observation"] != "removed" for k, ev in seen.items() if k[0] == "i5")


async def test_geo_block_is_not_a_global_removal(runs: dict[str, asyncio.Task[Run]]) -> None:
    run = await finished(runs, "geo_only")
    assert closed(run) == ("closed", "disputed")
    seen = evidence(run.timeline)
    assert seen[("i1", "VN")]["observation"] == "geo_restricted"
    assert seen[("i1", "control")]["observation"] == "available"
    assert run.result is not None and run.result.item_outcomes == {"i1": "still_available"}


async def test_liar_is_disputed_then_renotified(
    runs: dict[str, asyncio.Task[Run]], dev_stack: Stack
) -> None:
    run = await finished(runs, "liar")
    assert closed(run) == ("closed", "complied")
    states = path(run.timeline)
    at = states.index("disputed")
    assert states[at + 1] == "acknowledged"  # renotify
    assert states[at + 2 :].count("verifying") == 1 and "monitoring" in states[at:]
    disputed = run.timeline[at]
    assert [d["item_id"] for d in disputed["docket"]["data"]["disagreements"]] == ["i1"]
    assert run.seen["disputed"]["items"][0]["outcome"] == "still_available"
    assert run.timeline[at + 1]["user"]["id"] == "ops.on.call"
    ticket = run.seen["closed"]["ticket"]
    kinds = [r.kind for _, r in dev_stack.sim.engine._tickets[ticket].notices.values()]
    assert kinds == ["renotify"]


async def test_resurfaced_content_is_disputed(runs: dict[str, asyncio.Task[Run]]) -> None:
    run = await finished(runs, "resurface")
    assert closed(run) == ("closed", "disputed")
    recheck = next(e for e in run.timeline if e["event"]["action"] == "recheck")
    assert recheck["docket"]["to_state"] == "disputed"
    assert run.seen["monitoring"]["items"][0]["verification"] == "confirmed"
    assert run.result is not None and run.result.item_outcomes == {"i1": "still_available"}


async def test_appeal_reversed_and_reinstated(
    runs: dict[str, asyncio.Task[Run]], dev_stack: Stack
) -> None:
    run = await finished(runs, "appeal")
    assert closed(run) == ("closed", "reversed_on_appeal")
    assert run.result is not None and run.result.item_outcomes == {"i1": "reinstated"}
    assert path(run.timeline)[-4:] == ["monitoring", "appealed", "reinstating", "closed"]
    reinstated = run.timeline[-1]
    assert reinstated["event"]["action"] == "reinstated"
    assert {ev["observation"] for ev in reinstated["docket"]["evidence"]} == {"available"}
    ticket = run.seen["closed"]["ticket"]
    kinds = [r.kind for _, r in dev_stack.sim.engine._tickets[ticket].notices.values()]
    assert kinds == ["reinstatement"]


async def test_wrong_secret_ends_in_delivery_failed(
    runs: dict[str, asyncio.Task[Run]], dev_stack: Stack
) -> None:
    run = await finished(runs, "delivery_failed")
    assert closed(run) == ("closed", "withdrawn")
    failed = run.seen["delivery_failed"]
    assert failed["ticket"] is None
    assert "bad signature" in failed["delivery_error"]
    logged = audit_entries(dev_stack.audit_dir, run.rid)
    entry = next(e for e in logged if e["event"]["action"] == "delivery_failed")
    assert "bad signature" in entry["event"]["reason"]
    assert "bad signature" in entry["docket"]["data"]["error"]
    stats = dev_stack.sim.stats()["platforms"]
    assert stats["youtube"]["signature_rejections"] >= 1
    assert run.rid not in stats["youtube"].get("deliveries", {})  # SignatureRejected: no retry


# --- across all runs -----------------------------------------------------------------------


async def all_runs(runs: dict[str, asyncio.Task[Run]]) -> dict[str, Run]:
    return {name: await finished(runs, name) for name in runs}


async def test_listing_by_search_attributes(
    runs: dict[str, asyncio.Task[Run]], dev_stack: Stack
) -> None:
    done = await all_runs(runs)
    ids = {name: run.rid for name, run in done.items()}
    client = dev_stack.client

    async def listed(**query: Any) -> dict[str, docket.Listed]:
        text = docket.list_query(**query)
        return {row.request_id: row async for row in docket.list_requests(client, text)}

    async def eventually(want: set[str], absent: set[str], **query: Any) -> dict[str, Any]:
        for _ in range(50):  # visibility is eventually consistent
            got = await listed(**query)
            if want <= set(got) and not absent & set(got):
                return got
            await asyncio.sleep(0.2)
        raise AssertionError(f"{query}: want {want}, absent {absent}, got {sorted(got)}")

    breached = {ids["ignore"], ids["slow_ack"]}
    on_time = {ids["comply"], ids["partial"], ids["views"]}
    rows = await eventually(breached, on_time, breached=True, authority="mst")
    assert all(row.sla_breached for row in rows.values())
    rows = await eventually(on_time, breached, breached=False, state="closed")
    assert [rows[ids[n]].outcome for n in ("comply", "partial", "views")] == [
        "complied",
        "partially_complied",
        "complied_unverified",
    ]
    youtube = {ids["delivery_failed"]}
    facebook = set(ids.values()) - youtube
    rows = await eventually(youtube, facebook, platform="youtube")
    assert rows[ids["delivery_failed"]].outcome == "withdrawn"
    rows = await eventually(facebook, youtube, platform="facebook", authority="mst", state="closed")
    assert not any(row.running for row in rows.values())
    assert all(row.state == "closed" for row in rows.values())
    with pytest.raises(docket.BadInput):
        docket.list_query(state="closed' OR WorkflowId != '")


async def test_no_secret_in_histories_memos_search_attributes_or_audit_log(
    runs: dict[str, asyncio.Task[Run]], dev_stack: Stack
) -> None:
    done = await all_runs(runs)
    client = dev_stack.client
    texts: list[str] = []
    for run in done.values():
        handle = client.get_workflow_handle(run.rid)
        history = await handle.fetch_history()
        texts.append(decoded_text(history.to_json()))
        description = await handle.describe()
        texts.append(json.dumps(await description.memo(), default=str))
        texts.append(json.dumps(await search_attributes(client, run.rid), default=str))
        texts.append(json.dumps(await docket.status(client, run.rid)))
    log = b"".join(p.read_bytes() for p in sorted(dev_stack.audit_dir.rglob("*.jsonl")))
    texts.append(log.decode("utf-8"))
    everything = "\n".join(texts)
    # the scan sees inside payloads (they are base64 in a history's JSON)
    assert "test)." in everything and done["comply"].rid in everything
    assert "Bài viết phản ánh sự việc có thật" in everything  # an appeal's grounds, decoded
    for secret in dev_stack.all_secrets:
        assert secret not in everything
        assert secret.encode().hex() not in everything


async def test_receipts_match_the_audit_log(
    runs: dict[str, asyncio.Task[Run]], dev_stack: Stack
) -> None:
    done = await all_runs(runs)
    checked = 0
    for run in done.values():
        logged = {e["event"]["sequence"]: e for e in audit_entries(dev_stack.audit_dir, run.rid)}
        for receipt in run.receipts:
            entry = logged[receipt.sequence]
            assert receipt.hash == entry["hash"]
            assert receipt.state == entry["docket"]["to_state"]
            assert receipt.trigger == entry["event"]["action"]
            assert entry["event"]["id"] == f"{run.rid}:{receipt.sequence}"
            checked += 1
        # and the log holds exactly the timeline the workflow reports
        assert [e["hash"] for e in logged.values()] == [e["hash"] for e in run.timeline]
    assert checked >= len(done) + 8  # every approve, and each scenario's human commands


async def test_replay_plans_every_entry_each_history_wrote(
    runs: dict[str, asyncio.Task[Run]], dev_stack: Stack
) -> None:
    """Every run's history, replayed by the worker's own runner, plans each audit entry its
    writes carried (regular activity inputs, local activity markers), in the same writes:
    what a closed request's `timeline` query (answered by such a replay) returns is its log."""
    done = await all_runs(runs)
    for run in done.values():
        history = await dev_stack.client.get_workflow_handle(run.rid).fetch_history()
        check = await check_replay(history)
        assert check.problems == [], (run.rid, check.problems)
        assert check.entries_checked == len(run.timeline), run.rid


async def test_audit_log_verifies_against_the_results(
    runs: dict[str, asyncio.Task[Run]], dev_stack: Stack
) -> None:
    done = await all_runs(runs)
    anchors = []
    for run in done.values():
        assert run.result is not None
        anchors.append(AuditAnchor(run.rid, run.result.audit_count, run.result.audit_head))
        assert run.result.audit_count == len(run.timeline)
    verdict = verify_paths([dev_stack.audit_dir], anchors=anchors, anchors_are_prefixes=False)
    assert verdict.ok, [f.render() for f in verdict.findings]
    # the check has teeth: an anchor the log does not match is a finding
    wrong = AuditAnchor(anchors[0].chain_id, anchors[0].count + 1, anchors[0].head_hash)
    verdict = verify_paths([dev_stack.audit_dir], anchors=[wrong])
    assert "anchor_mismatch" in verdict.by_code()
