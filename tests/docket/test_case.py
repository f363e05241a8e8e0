"""The pure Case end to end, without Temporal: fixed datetimes, planned then committed."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from audit.chain import entry_hash, genesis_hash
from docket.case import Case, CommandRejected, Planned, RequestInput, notices_for
from docket.lifecycle import Outcome, Role, State
from docket.models import (
    SYSTEM_ACTOR,
    Acknowledge,
    Actor,
    Approve,
    Close,
    Command,
    DecideAppeal,
    Escalate,
    FileAppeal,
    ItemEffect,
    ProvideInfo,
    Reject,
    Renotify,
    ReportEffect,
    RequestInfo,
    Withdraw,
)
from docket.reference import ReferenceData, default_reference
from docket.validation import fingerprint, validate_order, workflow_id_for
from docket.verification import INCONCLUSIVE, Evidence, Observation

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T0 = datetime(2017, 4, 26, 3, 0, tzinfo=UTC)  # 10:00 in Hanoi, an hour after issue
H = timedelta(hours=1)
REF: ReferenceData = default_reference()

MAKER = REF.actor("nguyen.van.an")
APPROVER = REF.actor("tran.thi.binh")
LIAISON = REF.actor("liaison.facebook")
REVIEWER = REF.actor("pham.thi.dung")
OWNER = REF.actor("hoang.minh.uploader")
OPERATOR = REF.actor("ops.on.call")


def load_order(name: str, **changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    raw.update(changes)
    return raw


def make_request(
    raw: dict[str, Any], vantages: tuple[str, ...] = ("control", "VN"), submitted_by: Actor = MAKER
) -> RequestInput:
    order = validate_order(raw, REF, now=datetime(2026, 11, 29, tzinfo=UTC))
    return RequestInput(
        request_id=workflow_id_for(order.authority, order.reference),
        order=order,
        submitted_by=submitted_by,
        fingerprint=fingerprint(order),
        authority=REF.authorities[order.authority],
        platform=REF.platforms[order.platform],
        policy=REF.sla_policies[order.sla_policy],
        legal_bases=tuple(REF.legal_bases[c.basis] for c in order.legal_bases),
        categories=tuple(REF.categories[c] for c in order.categories),
        vantages=vantages,
    )


def fb_request(**changes: Any) -> RequestInput:
    return make_request(load_order("seed/mic-facebook-2017.json", **changes))


def evidence(case: Case, item_id: str, seen: Observation, vantage: str, at: datetime) -> Evidence:
    url = case.facts.items[item_id].url
    return Evidence(
        item_id=item_id,
        vantage=vantage,
        url=url,
        observation=seen,
        inconclusive=seen in INCONCLUSIVE,
        status_code=200,
        final_url=url,
        body_sha256="0" * 64,
        marker=f"test:{seen.value}",
        probed_at=at,
        markers_version="facebook-2026-10",
    )


class Driver:
    """Drives a case the way the workflow does: plan, then commit."""

    def __init__(self, request: RequestInput) -> None:
        self.case = Case(request)
        self.now = T0
        self.planned: list[Planned] = []

    def state(self) -> State:
        """The current state (a call, so that mypy does not narrow it across commands)."""
        return self.case.current

    def at(self, delta: timedelta) -> Driver:
        self.now = self.now + delta
        return self

    def _commit(self, planned: Planned) -> Planned:
        self.case.commit(planned)
        self.planned.append(planned)
        return planned

    def submit(self) -> Planned:
        return self._commit(self.case.plan_submission(self.now, []))

    def command(self, command: Command) -> Planned:
        return self._commit(self.case.plan_command(command, self.now))

    def system(self, trigger: str, **kwargs: Any) -> Planned:
        return self._commit(
            self.case.plan_system(
                trigger, self.now, reason=f"test {trigger}", actor=SYSTEM_ACTOR, **kwargs
            )
        )

    def deliver(self, receipt_delay: timedelta = timedelta(minutes=5)) -> Planned:
        return self.system(
            "delivered",
            change={
                "ticket": "FB-T-1",
                "sent_at": self.now,
                "received_at": self.now + receipt_delay,
            },
        )

    def to_awaiting_ack(self) -> Driver:
        self.submit()
        self.at(H).command(Approve(actor=APPROVER, reason="Đủ căn cứ pháp lý, đồng ý gửi."))
        self.deliver()
        return self

    def report(self, *effects: ItemEffect, actor: Actor = LIAISON) -> Planned:
        return self.command(
            ReportEffect(actor=actor, reason="Reviewed under local law", effects=effects)
        )

    def verify(self, seen: dict[str, dict[str, Observation]]) -> Planned:
        probes = [
            evidence(self.case, item_id, obs, vantage, self.now)
            for item_id, by_vantage in seen.items()
            for vantage, obs in by_vantage.items()
        ]
        return self.system("verified", evidence=probes)


def removed(item_id: str) -> ItemEffect:
    return ItemEffect(item_id=item_id, effect="removed_globally", platform_ref=f"ref-{item_id}")


def declined(item_id: str) -> ItemEffect:
    return ItemEffect(
        item_id=item_id, effect="declined", reason="Does not violate local law or our policies"
    )


def restricted(item_id: str) -> ItemEffect:
    return ItemEffect(item_id=item_id, effect="restricted", restricted_in=("VN",))


GONE = {"control": Observation.REMOVED, "VN": Observation.REMOVED}
UP = {"control": Observation.AVAILABLE, "VN": Observation.AVAILABLE}
UP_CONTROL = {"control": Observation.AVAILABLE}
GEO = {"control": Observation.AVAILABLE, "VN": Observation.GEO_RESTRICTED}
ITEMS = ("fb-1", "fb-2", "fb-3", "fb-4", "fb-5")


def all_removed(d: Driver) -> None:
    d.report(*(removed(i) for i in ITEMS))
    d.verify({i: GONE for i in ITEMS})


def snapshot(case: Case) -> tuple[Any, ...]:
    return (
        copy.deepcopy(case.facts),
        case.state,
        case.outcome,
        case.chain,
        json.dumps(case.timeline, sort_keys=True),
    )


# --- submission and approval ---------------------------------------------------------------


def test_submission_entry() -> None:
    d = Driver(fb_request())
    planned = d.submit()
    case = d.case
    assert case.current is State.PENDING_APPROVAL
    entry = planned.entry
    assert entry["event"]["action"] == "submit"
    assert entry["event"]["sequence"] == 1
    assert entry["event"]["id"] == "req-mic-1475-btttt-ptth-ttdt:1"
    assert entry["event"]["reason"].startswith("Các tài khoản và bài viết dưới đây mạo danh")
    assert entry["docket"]["from_state"] is None
    assert entry["docket"]["to_state"] == "pending_approval"
    request = entry["docket"]["request"]
    assert request["authority"] == "mic"
    assert request["authority_name"] == "Bộ Thông tin và Truyền thông"
    assert request["sla_policy"] == "VN-C38-2016"
    assert request["issued_at"] == "2017-04-26T02:00:00.000000Z"
    assert request["legal_bases"][0] == {
        "basis": "vn-c38-2016",
        "instrument": "Thông tư 38/2016/TT-BTTTT",
        "article": "Điều 5 khoản 1",
    }
    assert [i["item_id"] for i in entry["docket"]["items"]] == list(ITEMS)
    assert entry["user"] == {"id": "nguyen.van.an", "roles": ["officer"]}
    assert planned.receipt(case.request_id).from_state == "none"
    assert case.facts.due_at is None
    assert case.outcome is None


def test_case_must_be_submitted_first() -> None:
    case = Case(fb_request())
    with pytest.raises(RuntimeError, match="has not been submitted"):
        case.plan_command(Approve(actor=APPROVER, reason="ok go"), T0)


def test_maker_cannot_approve_own_request_four_eyes() -> None:
    d = Driver(fb_request())
    d.submit()
    maker_approver = Actor(
        id="nguyen.van.an",
        roles=(Role.OFFICER, Role.APPROVER),
        organization="Bộ Thông tin và Truyền thông",
    )
    before = snapshot(d.case)
    with pytest.raises(CommandRejected) as info:
        d.case.plan_command(Approve(actor=maker_approver, reason="Tự phê duyệt"), d.now)
    assert str(info.value) == (
        "nguyen.van.an made this request and cannot approve it; another approver must "
        "(four-eyes rule) (state is 'pending_approval'; allowed now: approve, reject, withdraw)"
    )
    assert info.value.state is State.PENDING_APPROVAL
    assert snapshot(d.case) == before


def test_submitter_cannot_approve_an_order_filed_in_another_officers_name() -> None:
    both = REF.actor("le.van.cuong")  # officer and approver
    d = Driver(make_request(load_order("seed/mic-facebook-2017.json"), submitted_by=both))
    d.submit()
    with pytest.raises(CommandRejected, match="four-eyes"):
        d.case.plan_command(Approve(actor=both, reason="Tự phê duyệt"), d.now)


def test_approve_by_another_approver() -> None:
    d = Driver(fb_request())
    d.submit()
    planned = d.at(H).command(Approve(actor=APPROVER, reason="Đủ căn cứ pháp lý"))
    assert d.state() is State.DELIVERING
    assert d.case.facts.approver_id == "tran.thi.binh"
    receipt = planned.receipt(d.case.request_id)
    assert (receipt.trigger, receipt.from_state, receipt.state, receipt.sequence) == (
        "approve",
        "pending_approval",
        "delivering",
        2,
    )
    assert receipt.hash == d.case.chain.head_hash


def test_wrong_role_is_refused_with_roles_and_allowed_triggers() -> None:
    d = Driver(fb_request())
    d.submit()
    with pytest.raises(CommandRejected) as info:
        d.case.plan_command(Approve(actor=LIAISON, reason="looks fine"), d.now)
    assert str(info.value) == (
        "liaison.facebook (platform_liaison) may not approve; it needs one of the roles: "
        "approver (state is 'pending_approval'; allowed now: approve, reject, withdraw; "
        "for roles platform_liaison: nothing)"
    )


def test_reject_closes_as_rejected() -> None:
    d = Driver(fb_request())
    d.submit()
    planned = d.command(Reject(actor=APPROVER, reason="Thiếu căn cứ pháp lý cụ thể"))
    assert d.case.closed
    assert d.case.outcome is Outcome.REJECTED
    assert planned.entry["docket"]["data"]["outcome"] == "rejected"
    assert set(planned.entry["docket"]["data"]["item_outcomes"].values()) == {"no_response"}


# --- the SLA clock -------------------------------------------------------------------------


def test_delivered_sets_due_from_receipt_c38_24h() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    facts = d.case.facts
    assert d.state() is State.AWAITING_ACK
    assert facts.sent_at == T0 + H
    assert facts.received_at == T0 + H + timedelta(minutes=5)
    assert facts.due_at == facts.received_at + timedelta(hours=24)
    assert d.planned[-1].entry["docket"]["data"]["due_at"] == "2017-04-27T04:05:00.000000Z"


def test_sla_expired_second_notice_then_unresponsive_then_escalate() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    received = d.case.facts.received_at
    assert received is not None
    d.now = received + timedelta(hours=24)
    d.system("sla_expired")
    assert d.state() is State.SECOND_NOTICE
    assert d.case.facts.sla_breached
    assert d.case.facts.due_at == d.now + timedelta(hours=24)
    d.at(timedelta(hours=24)).system("sla_expired")
    assert d.state() is State.UNRESPONSIVE
    assert d.case.facts.due_at is None
    d.at(H).command(Escalate(actor=MAKER, reason="Áp dụng biện pháp kỹ thuật ngăn chặn"))
    assert d.case.outcome is Outcome.UNRESPONSIVE
    assert set(d.case.item_outcomes().values()) == {"no_response"}


def test_d147_has_no_second_notice() -> None:
    raw = load_order("other/mst-tiktok-2025.json")
    d = Driver(make_request(raw)).to_awaiting_ack()
    d.at(timedelta(hours=25)).system("sla_expired")
    assert d.state() is State.UNRESPONSIVE


def test_emergency_policy_is_six_hours() -> None:
    d = Driver(make_request(load_order("other/a05-emergency.json"))).to_awaiting_ack()
    assert d.case.facts.due_at == d.case.facts.received_at + timedelta(hours=6)  # type: ignore[operator]


def test_eu_dsa_art9_has_no_due_time() -> None:
    d = Driver(make_request(load_order("other/eu-dsa-order.json"))).to_awaiting_ack()
    assert d.state() is State.AWAITING_ACK
    assert d.case.facts.due_at is None
    assert "due_at" not in (d.planned[-1].entry["docket"].get("data") or {})
    d.at(H).command(Acknowledge(actor=LIAISON, reason="Received"))
    assert d.case.facts.due_at is None


def test_late_acknowledgment_after_unresponsive() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    d.at(timedelta(hours=25)).system("sla_expired")
    d.at(timedelta(hours=24)).system("sla_expired")
    d.at(H).command(Acknowledge(actor=LIAISON, reason="Sorry, received"))
    assert d.state() is State.ACKNOWLEDGED
    assert d.case.facts.sla_breached


def test_acknowledge_starts_effect_clock_from_receipt() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    platform_time = T0 + 2 * H
    d.at(3 * H).command(
        Acknowledge(actor=LIAISON, reason="Received", acknowledged_at=platform_time)
    )
    facts = d.case.facts
    assert facts.acknowledged_at == platform_time
    assert facts.due_at == facts.received_at + timedelta(hours=24)  # type: ignore[operator]
    d.at(timedelta(hours=24)).system("sla_expired")
    assert d.state() is State.OVERDUE
    assert d.case.facts.due_at is None


def test_info_requested_pauses_the_clock() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    d.at(H).command(Acknowledge(actor=LIAISON, reason="Received"))
    due = d.case.facts.due_at
    assert due is not None
    d.at(H).command(
        RequestInfo(actor=LIAISON, reason="Need the decision", question="Which provision?")
    )
    assert d.state() is State.INFO_REQUESTED
    assert d.case.facts.due_at == due
    assert d.case.facts.info_question == "Which provision?"
    d.at(timedelta(hours=30)).command(
        ProvideInfo(actor=MAKER, reason="Trả lời", answer="Điều 5 khoản 1 Nghị định 72/2013")
    )
    assert d.state() is State.ACKNOWLEDGED
    assert d.case.facts.due_at == due + timedelta(hours=30)
    assert d.case.facts.info_question is None


def test_info_requested_while_overdue_resumes_overdue() -> None:
    """The paused clock had run out: after the answer the effect is due at once."""
    d = Driver(fb_request()).to_awaiting_ack()
    d.at(H).command(Acknowledge(actor=LIAISON, reason="Received"))
    d.at(timedelta(hours=24)).system("sla_expired")
    assert d.state() is State.OVERDUE
    d.at(H).command(RequestInfo(actor=LIAISON, reason="Need more", question="Which account?"))
    d.at(H).command(ProvideInfo(actor=MAKER, reason="Trả lời", answer="Tài khoản fb-1"))
    assert d.state() is State.ACKNOWLEDGED
    assert d.case.facts.due_at == d.now
    d.system("sla_expired")
    assert d.state() is State.OVERDUE


# --- platform decisions and verification ---------------------------------------------------


def test_partial_effects_keep_acknowledged_then_all_decided_verifying() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    d.at(H).report(removed("fb-1"), removed("fb-2"))
    assert d.state() is State.ACKNOWLEDGED
    assert d.case.facts.acknowledged_at == d.now  # an effect implies receipt
    d.at(H).report(removed("fb-3"))
    assert d.state() is State.ACKNOWLEDGED
    assert not d.case.facts.all_items_decided()
    planned = d.at(H).report(restricted("fb-4"), declined("fb-5"))
    assert d.state() is State.VERIFYING
    assert [i["item_id"] for i in planned.entry["docket"]["items"]] == ["fb-4", "fb-5"]
    assert planned.entry["docket"]["items"][0]["restricted_in"] == ["VN"]
    assert d.case.facts.due_at is None


def test_needs_more_info_is_not_a_decision() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    d.report(*(removed(i) for i in ITEMS[:4]), ItemEffect(item_id="fb-5", effect="needs_more_info"))
    assert d.state() is State.ACKNOWLEDGED
    assert d.case.item_outcomes()["fb-5"] == "no_response"


def test_effect_for_unknown_or_decided_item_is_refused() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    d.report(removed("fb-1"))
    before = snapshot(d.case)
    with pytest.raises(CommandRejected) as info:
        d.case.plan_command(
            ReportEffect(actor=LIAISON, reason="x" * 5, effects=(removed("fb-9"),)), d.now
        )
    assert info.value.reason == (
        "effects[0].item_id: unknown item 'fb-9'; items: fb-1, fb-2, fb-3, fb-4, fb-5"
    )
    with pytest.raises(CommandRejected) as info:
        d.case.plan_command(
            ReportEffect(actor=LIAISON, reason="again", effects=(declined("fb-1"),)), d.now
        )
    assert info.value.reason == (
        "effects[0]: item 'fb-1' was already decided (removed_globally by liaison.facebook)"
    )
    assert snapshot(d.case) == before


def test_verified_with_disagreement_is_disputed() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    all_removed_but_one = [removed(i) for i in ITEMS]
    d.report(*all_removed_but_one)
    planned = d.verify({**{i: GONE for i in ITEMS[:4]}, "fb-5": UP})
    assert d.state() is State.DISPUTED
    data = planned.entry["docket"]["data"]
    assert data["disagreements"] == [
        {
            "item_id": "fb-5",
            "claim": "removed_globally",
            "observations": {"control": "available", "VN": "available"},
        }
    ]
    assert data["verification"]["fb-1"] == "confirmed"
    assert d.case.item_outcomes()["fb-5"] == "still_available"
    # the claim is kept next to the observation, never overwritten
    assert d.case.facts.items["fb-5"].effect == "removed_globally"
    d.command(Close(actor=OPERATOR, reason="Platform claim contradicted; closing on record"))
    assert d.case.outcome is Outcome.DISPUTED


def test_renotify_resets_only_disputed_items() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    d.report(*(removed(i) for i in ITEMS))
    d.verify({**{i: GONE for i in ITEMS[:4]}, "fb-5": UP})
    planned = d.at(H).command(Renotify(actor=MAKER, reason="Nội dung vẫn còn"))
    assert planned.entry["docket"]["data"]["items"] == ["fb-5"]
    # the re-notice names the disputed item (never an empty list meaning "everything")
    [notice] = notices_for(planned, d.case.request_id, ticket=d.case.facts.ticket)
    assert (notice.kind, notice.items) == ("renotify", ["fb-5"])
    assert d.state() is State.ACKNOWLEDGED
    assert d.case.facts.due_at == d.now + timedelta(hours=24)
    assert d.case.facts.items["fb-5"].claim is None
    assert d.case.facts.items["fb-1"].effect == "removed_globally"
    d.report(removed("fb-5"))
    assert d.state() is State.VERIFYING


def test_restriction_seen_from_control_only_is_not_a_disagreement() -> None:
    """Content restricted in VN is expected to be visible from outside VN: inconclusive."""
    d = Driver(make_request(load_order("seed/mic-facebook-2017.json"), vantages=("control",)))
    d.to_awaiting_ack()
    d.report(*(removed(i) for i in ITEMS[:3]), restricted("fb-4"), removed("fb-5"))
    gone = {"control": Observation.REMOVED}
    d.verify({**dict.fromkeys(("fb-1", "fb-2", "fb-3", "fb-5"), gone), "fb-4": UP_CONTROL})
    assert d.state() is State.MONITORING
    assert d.case.facts.items["fb-4"].verification(("control",)) == "unverified"
    assert d.case.item_outcomes()["fb-4"] == "restricted"


def test_restriction_confirmed_from_inside() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    d.report(*(removed(i) for i in ITEMS[:3]), restricted("fb-4"), removed("fb-5"))
    d.verify({**{i: GONE for i in ("fb-1", "fb-2", "fb-3", "fb-5")}, "fb-4": GEO})
    assert d.state() is State.MONITORING
    assert d.case.facts.items["fb-4"].verification(("control", "VN")) == "confirmed"


def test_monitoring_closes_complied() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    all_removed(d)
    assert d.state() is State.MONITORING
    d.at(timedelta(days=1)).system(
        "recheck", evidence=[evidence(d.case, "fb-1", Observation.REMOVED, "VN", d.now)]
    )
    assert d.state() is State.MONITORING
    assert d.case.facts.rechecks_done == 1
    planned = d.at(timedelta(days=30)).system("monitoring_complete")
    assert d.case.outcome is Outcome.COMPLIED
    assert planned.entry["docket"]["data"]["item_outcomes"] == dict.fromkeys(
        ITEMS, "removed_globally"
    )


def test_monitoring_closes_partially_complied() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    d.report(*(removed(i) for i in ITEMS[:4]), declined("fb-5"))
    d.verify({i: GONE for i in ITEMS[:4]} | {"fb-5": UP})
    assert d.state() is State.MONITORING  # a decline that is visible is no disagreement
    d.at(timedelta(days=30)).system("monitoring_complete")
    assert d.case.outcome is Outcome.PARTIALLY_COMPLIED
    assert d.case.item_outcomes()["fb-5"] == "declined"


def test_content_that_comes_back_is_disputed() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    all_removed(d)
    d.at(timedelta(days=7)).system(
        "recheck", evidence=[evidence(d.case, "fb-2", Observation.AVAILABLE, "VN", d.now)]
    )
    assert d.state() is State.DISPUTED


def test_everything_declined_then_window_closes() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    d.report(*(declined(i) for i in ITEMS))
    d.verify({i: UP for i in ITEMS})
    assert d.state() is State.DECLINED
    d.at(timedelta(days=30)).system("appeal_window_closed")
    assert d.case.outcome is Outcome.DECLINED
    assert set(d.case.item_outcomes().values()) == {"declined"}


# --- appeals -------------------------------------------------------------------------------


def test_appeal_against_removal_reversed_reinstating_closed() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    all_removed(d)
    filed = d.at(timedelta(days=2)).command(
        FileAppeal(
            actor=OWNER,
            reason="Bài viết phản ánh sự thật",
            appellant_type="content_owner",
            target_items=("fb-4",),
            grounds="Nội dung là ý kiến cá nhân, không vu khống.",
        )
    )
    assert d.state() is State.APPEALED
    appeal = filed.entry["docket"]["appeal"]
    assert appeal["against"] == "removal"
    assert appeal["appeal_id"] == "req-mic-1475-btttt-ptth-ttdt-appeal-1"
    d.at(timedelta(days=5)).command(
        DecideAppeal(actor=REVIEWER, reason="Opinion, not defamation", outcome="reversed")
    )
    assert d.state() is State.REINSTATING
    assert d.case.facts.appeals[0].reversed_items == ("fb-4",)
    d.at(H).system(
        "reinstated", evidence=[evidence(d.case, "fb-4", Observation.AVAILABLE, "VN", d.now)]
    )
    assert d.case.outcome is Outcome.REVERSED_ON_APPEAL
    outcomes = d.case.item_outcomes()
    assert outcomes["fb-4"] == "reinstated"
    assert outcomes["fb-1"] == "removed_globally"


def test_appeal_upheld_returns_to_monitoring() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    all_removed(d)
    d.command(
        FileAppeal(
            actor=LIAISON,
            reason="Platform appeal",
            appellant_type="platform",
            target_items=("fb-1", "fb-2"),
            grounds="Parody accounts",
        )
    )
    d.command(DecideAppeal(actor=REVIEWER, reason="Not parody", outcome="upheld"))
    assert d.state() is State.MONITORING


def test_appeal_against_decline_by_authority_reversed() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    d.report(*(declined(i) for i in ITEMS))
    d.verify({i: UP for i in ITEMS})
    assert d.state() is State.DECLINED
    with pytest.raises(CommandRejected) as info:
        d.case.plan_command(
            FileAppeal(
                actor=OWNER,
                reason="I also want it gone",
                appellant_type="content_owner",
                target_items=("fb-5",),
                grounds="none",
            ),
            d.now,
        )
    assert info.value.reason == (
        "appellant_type: a content_owner cannot appeal a decline; allowed: authority"
    )
    d.at(H).command(
        FileAppeal(
            actor=MAKER,
            reason="Khiếu nại quyết định từ chối",
            appellant_type="authority",
            target_items=("fb-3", "fb-5"),
            grounds="Nội dung kích động bạo lực rõ ràng.",
        )
    )
    d.at(timedelta(days=3)).command(
        DecideAppeal(
            actor=REVIEWER,
            reason="Incitement is clear; false information is not",
            outcome="partially_reversed",
            reversed_items=("fb-3",),
        )
    )
    assert d.state() is State.ACKNOWLEDGED
    assert d.case.facts.items["fb-3"].claim is None
    assert d.case.facts.items["fb-5"].effect == "declined"
    assert d.case.facts.due_at == d.now + timedelta(hours=24)
    d.report(removed("fb-3"))
    assert d.state() is State.VERIFYING


def test_appeal_upheld_decline_stands() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    d.report(*(declined(i) for i in ITEMS))
    d.verify({i: UP for i in ITEMS})
    d.command(
        FileAppeal(
            actor=MAKER,
            reason="Khiếu nại",
            appellant_type="authority",
            target_items=("fb-1",),
            grounds="Mạo danh rõ ràng",
        )
    )
    d.command(DecideAppeal(actor=REVIEWER, reason="Decline stands", outcome="upheld"))
    assert d.state() is State.DECLINED


@pytest.mark.parametrize("who", ["maker", "approver", "appellant", "decider"])
def test_decide_appeal_never_by_someone_involved(who: str) -> None:
    everything = (Role.OFFICER, Role.APPROVER, Role.APPEAL_REVIEWER, Role.APPELLANT)
    ids = {
        "maker": "nguyen.van.an",
        "approver": "tran.thi.binh",
        "appellant": "hoang.minh.uploader",
        "decider": "liaison.facebook",
    }
    conflicted = Actor(id=ids[who], roles=(*everything, Role.PLATFORM_LIAISON), organization="X")
    d = Driver(fb_request()).to_awaiting_ack()
    all_removed(d)
    d.command(
        FileAppeal(
            actor=OWNER,
            reason="appeal",
            appellant_type="content_owner",
            target_items=("fb-4",),
            grounds="Ý kiến cá nhân",
        )
    )
    before = snapshot(d.case)
    with pytest.raises(CommandRejected) as info:
        d.case.plan_command(
            DecideAppeal(actor=conflicted, reason="mine", outcome="reversed"), d.now
        )
    assert info.value.reason == (
        f"{ids[who]} took part in the decision under appeal (maker, approver, appellant or "
        "platform decider) and cannot review it"
    )
    assert snapshot(d.case) == before


def test_appeal_target_must_have_a_decision() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    d.report(*(removed(i) for i in ITEMS[:4]), declined("fb-5"))
    d.verify({i: GONE for i in ITEMS[:4]} | {"fb-5": UP})
    with pytest.raises(CommandRejected) as info:
        d.case.plan_command(
            FileAppeal(
                actor=MAKER,
                reason="mixed",
                appellant_type="authority",
                target_items=("fb-1", "fb-5"),
                grounds="both",
            ),
            d.now,
        )
    assert info.value.reason == "target_items: appeal removals and declines separately"


# --- withdrawal, the chain, rejected commands ----------------------------------------------


def test_withdraw_after_delivery_waits_until_the_platform_is_told() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    planned = d.command(Withdraw(actor=MAKER, reason="Rút yêu cầu"))
    assert d.state() is State.WITHDRAWING and d.case.outcome is None
    # the withdrawal notice goes out after its entry, naming the request's ticket
    [notice] = notices_for(planned, d.case.request_id, ticket=d.case.facts.ticket)
    assert notice.kind == "withdrawal"
    # a refusal of the notice is recorded and the request stays open ...
    problem = {"kind": "PlatformRejected", "call": "withdrawal notice", "message": "HTTP 404"}
    d.system("platform_problem", data={"problem": problem})
    assert d.state() is State.WITHDRAWING
    assert d.case.facts.platform_problem == problem
    # ... until the platform accepts it, or the authority closes it with the refusal on record
    d.system("withdrawal_sent")
    assert d.state() is State.CLOSED and d.case.outcome is Outcome.WITHDRAWN


def test_withdraw_without_delivery_closes_at_once() -> None:
    d = Driver(fb_request())
    d.submit()
    d.command(Withdraw(actor=MAKER, reason="Rút yêu cầu"))
    assert d.state() is State.CLOSED and d.case.outcome is Outcome.WITHDRAWN


def test_a_refused_withdrawal_can_be_closed_by_the_authority() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    d.command(Withdraw(actor=MAKER, reason="Rút yêu cầu"))
    d.command(Close(actor=MAKER, reason="The platform says the ticket is unknown; closing"))
    assert d.state() is State.CLOSED and d.case.outcome is Outcome.WITHDRAWN


def test_requests_started_before_withdraw_at_once() -> None:
    d = Driver(fb_request())
    d.case = Case(d.case.request, legacy=True)
    d.to_awaiting_ack()
    d.command(Withdraw(actor=MAKER, reason="Rút yêu cầu"))
    assert d.state() is State.CLOSED and d.case.outcome is Outcome.WITHDRAWN


def test_delivery_failed_then_retry() -> None:
    d = Driver(fb_request())
    d.submit()
    d.command(Approve(actor=APPROVER, reason="ok, send"))
    d.system("delivery_failed", change={"delivery_error": "503 from platform"})
    assert d.state() is State.DELIVERY_FAILED
    assert d.case.facts.delivery_error == "503 from platform"


def test_chain_links_and_sequences() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    d.at(H).report(removed("fb-1"))
    d.at(H).report(*(removed(i) for i in ITEMS[1:]))
    d.at(H).verify({i: GONE for i in ITEMS})
    d.at(timedelta(days=30)).system("monitoring_complete")
    timeline = d.case.timeline
    assert [e["event"]["sequence"] for e in timeline] == list(range(1, len(timeline) + 1))
    assert timeline[0]["prev_hash"] == genesis_hash(d.case.request_id)
    for prev, entry in itertools.pairwise(timeline):
        assert entry["prev_hash"] == prev["hash"]
    for entry in timeline:
        body = {k: v for k, v in entry.items() if k not in ("prev_hash", "hash")}
        assert entry_hash(entry["prev_hash"], body) == entry["hash"]
        assert entry["event"]["id"] == f"{d.case.request_id}:{entry['event']['sequence']}"
    assert d.case.chain.sequence == len(timeline)
    assert d.case.chain.head_hash == timeline[-1]["hash"]
    states = [(e["docket"]["from_state"], e["docket"]["to_state"]) for e in timeline]
    assert states == [
        (None, "pending_approval"),
        ("pending_approval", "delivering"),
        ("delivering", "awaiting_ack"),
        ("awaiting_ack", "acknowledged"),
        ("acknowledged", "verifying"),
        ("verifying", "monitoring"),
        ("monitoring", "closed"),
    ]


def test_planning_alone_changes_nothing() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    before = snapshot(d.case)
    d.case.plan_command(Acknowledge(actor=LIAISON, reason="Received"), d.now)
    d.case.plan_system("sla_expired", d.now, reason="x", actor=SYSTEM_ACTOR)
    assert snapshot(d.case) == before


@pytest.mark.parametrize(
    "command",
    [
        Approve(actor=APPROVER, reason="approve again"),
        Escalate(actor=MAKER, reason="too early"),
        ProvideInfo(actor=MAKER, reason="unasked", answer="x"),
        DecideAppeal(actor=REVIEWER, reason="no appeal", outcome="upheld"),
        Acknowledge(actor=MAKER, reason="not the platform"),
        ReportEffect(actor=OWNER, reason="not the platform", effects=(removed("fb-1"),)),
    ],
    ids=lambda c: c.trigger,
)
def test_rejected_command_changes_nothing(command: Command) -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    before = snapshot(d.case)
    with pytest.raises(CommandRejected) as info:
        d.case.plan_command(command, d.now)
    assert "state is 'awaiting_ack'; allowed now: acknowledge, report_effect, withdraw" in str(
        info.value
    )
    assert snapshot(d.case) == before


def test_system_trigger_in_wrong_state_is_refused() -> None:
    d = Driver(fb_request())
    d.submit()
    with pytest.raises(CommandRejected) as info:
        d.case.plan_system("delivered", d.now, reason="x", actor=SYSTEM_ACTOR)
    assert str(info.value) == (
        "'delivered' is not allowed in state 'pending_approval'; allowed now: approve, reject, "
        "withdraw (state is 'pending_approval'; allowed now: approve, reject, withdraw)"
    )


def test_closed_accepts_nothing() -> None:
    d = Driver(fb_request())
    d.submit()
    d.command(Withdraw(actor=MAKER, reason="Rút"))
    with pytest.raises(CommandRejected) as info:
        d.case.plan_command(Withdraw(actor=MAKER, reason="again"), d.now)
    assert str(info.value) == (
        "'withdraw' is not allowed in state 'closed' (state is 'closed'; allowed now: nothing)"
    )


# --- several transitions planned in a row (one platform answer) ----------------------------


def test_a_fork_plans_in_a_row_and_leaves_the_case_as_it_was() -> None:
    d = Driver(fb_request()).to_awaiting_ack()
    case = d.case
    before = snapshot(case)
    twin = case.fork()
    ack = twin.plan_command(Acknowledge(actor=LIAISON, reason="Received"), d.now)
    twin.commit(ack)
    effect = twin.plan_command(
        ReportEffect(actor=LIAISON, reason="Done", effects=tuple(removed(i) for i in ITEMS)),
        d.now,
    )
    twin.commit(effect)
    assert snapshot(case) == before  # nothing reaches the case before it commits
    assert effect.from_state is State.ACKNOWLEDGED and effect.to_state is State.VERIFYING
    assert effect.entry["prev_hash"] == ack.entry["hash"]
    for planned in (ack, effect):  # committed in order, the case ends where the twin did
        case.commit(planned)
    assert snapshot(case) == snapshot(twin)
