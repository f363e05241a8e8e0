"""What the platform activities make of a platform's answers: per-item tolerance, typed
failures the workflow can record, signed answers, and requests checked before sending.

A real HTTP server on loopback answers whatever a test scripts (optionally signed with the
contract's response signature), so every answer here crossed a socket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.platform import PlatformActivities, PlatformEndpoint
from docket.models import ItemEffect
from docket.platform_protocol import Notice, PlatformFailure, PollResult
from docket.signing import SIGNATURE_HEADER, signed_response_headers
from platform_sim.scenarios import markers_for
from platform_sim.server import PlatformSimulator
from platform_sim.testing import sample_order

SECRET = b"answers-secret"
env = ActivityEnvironment()


@dataclass
class Script:
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    sign: bool = True
    sign_with: bytes = SECRET
    fixed_headers: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)


class _Scripted(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        script = self.server.script
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        script.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(script.status)
        self.send_header("Content-Type", script.content_type)
        self.send_header("Content-Length", str(len(script.body)))
        for name, value in script.fixed_headers.items():
            self.send_header(name, value)
        signature = self.headers.get(SIGNATURE_HEADER)
        if script.sign and signature:
            for name, value in signed_response_headers(
                script.sign_with, signature, script.body, _now()
            ).items():
                self.send_header(name, value)
        self.end_headers()
        self.wfile.write(script.body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _now() -> int:
    return int(time.time())


class _Server(ThreadingHTTPServer):
    script: Script


@pytest.fixture
def platform() -> Iterator[tuple[str, Script]]:
    server = _Server(("127.0.0.1", 0), _Scripted)
    server.script = Script()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/fb", server.script
    server.shutdown()
    server.server_close()


def acts_for(base: str, *, require_signed: bool = False) -> PlatformActivities:
    endpoint = PlatformEndpoint(
        base, SECRET, markers_for("facebook"), require_signed_responses=require_signed
    )
    return PlatformActivities({"facebook": endpoint})


@pytest.fixture
async def acts(platform: tuple[str, Script]) -> AsyncIterator[PlatformActivities]:
    a = acts_for(platform[0])
    yield a
    await a.aclose()


def item(item_id: str, effect: str | None, **extra: Any) -> dict[str, Any]:
    return {"item_id": item_id, "effect": effect, **extra}


def answer(*items: dict[str, Any], status: str = "decided", **extra: Any) -> bytes:
    return orjson.dumps(
        {
            "ticket": "FB-1",
            "status": status,
            "acknowledged_at": "2026-11-29T08:00:00Z",
            "items": list(items),
            **extra,
        }
    )


async def poll(acts: PlatformActivities) -> PollResult:
    result: PollResult = await env.run(acts.poll_platform, "facebook", "FB-1")
    return result


async def failure(fn: Any, *args: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await env.run(fn, *args)
    return info.value


async def test_a_malformed_item_does_not_poison_the_others(
    platform: tuple[str, Script], acts: PlatformActivities
) -> None:
    """The issue's case: a declined item with reason null next to valid effects."""
    _, script = platform
    script.body = answer(
        item("item-1", "removed_globally", effect_at="2026-11-29T09:00:00+07:00"),
        item("item-2", "declined", reason=None),
        item("item-3", "restricted", restricted_in=["VN"]),
        item("item-4", "not_found"),
    )
    result = await poll(acts)
    assert [i.item_id for i in result.items] == ["item-1", "item-3", "item-4"]
    assert result.items[0].effect_at is not None
    assert result.items[0].effect_at.isoformat() == "2026-11-29T02:00:00+00:00"
    assert [(m.index, m.item_id, m.path) for m in result.malformed_items] == [
        (1, "item-2", "items[1].reason")
    ]
    assert "declined" in result.malformed_items[0].message
    assert result.authenticated == "hmac-sha256"
    for effect in result.items:  # what the workflow builds from them never raises
        ItemEffect.from_platform(effect)


@pytest.mark.parametrize(
    ("bad", "path", "words"),
    [
        (item("item-2", "restricted", restricted_in=[]), "items[1].restricted_in", "countries"),
        (
            item("item-2", "declined", restricted_in=["VN"], reason="abc"),
            "items[1].restricted_in",
            "empty",
        ),
        (item("item-2", "needs_more_info"), "items[1].question", "required"),
        (
            item("item-2", "removed_globally", effect_at="2026-11-29T08:00:00"),
            "items[1].effect_at",
            "zone",
        ),
        (item("item-2", "declined", reason="ok\u202eevil"), "items[1].reason", "U+202E"),
        (item("item-2", "declined", reason="  a  "), "items[1].reason", "at least 3"),
        (item("item-2", "declined", reason="x" * 4001), "items[1].reason", "4,000"),
        (item("item-2", "gone"), "items[1].effect", "removed_globally"),
        (item("ITEM 2", "removed_globally"), "items[1].item_id", "item_id"),
        (
            item("item-2", "removed_globally", uploader_notified="yes"),
            "items[1].uploader_notified",
            "boolean",
        ),
        (item("item-2", "restricted", restricted_in=["vn"]), "items[1].restricted_in", "ISO"),
        ({"effect": "removed_globally"}, "items[1].item_id", "required"),
        ("item-2", "items[1]", "object"),
        (item("item-1", "declined", reason="duplicate report"), "items[1].item_id", "twice"),
    ],
)
async def test_each_kind_of_malformed_item_is_named(
    platform: tuple[str, Script],
    acts: PlatformActivities,
    bad: Any,
    path: str,
    words: str,
) -> None:
    _, script = platform
    script.body = answer(item("item-1", "removed_globally"), bad)
    result = await poll(acts)
    assert [i.item_id for i in result.items] == ["item-1"]
    assert result.malformed_items, "the bad item must be reported"
    first = result.malformed_items[0]
    assert first.index == 1
    assert first.path == path, first
    assert words.lower() in first.message.lower(), first.message
    assert "\u202e" not in first.message  # messages are escaped, never raw hostile text


async def test_needs_more_info_carries_its_question(
    platform: tuple[str, Script], acts: PlatformActivities
) -> None:
    _, script = platform
    question = "Which decision of the authority covers item 2?"
    script.body = answer(
        item("item-1", None),
        item("item-2", "needs_more_info", question=question),
        status="acknowledged",
    )
    result = await poll(acts)
    assert result.malformed_items == []
    assert result.items[1].effect == "needs_more_info"
    assert result.items[1].question == question


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (orjson.dumps({"ticket": "FB-1", "status": "decided"}), "items: required"),
        (answer(status="gone"), "status"),
        (answer(acknowledged_at="2026-11-29 08:00"), "acknowledged_at"),
        (answer(status="info_requested"), "info_request"),
        (orjson.dumps({"ticket": "FB-2", "status": "received", "items": []}), "FB-2"),
        (answer(*[item(f"i-{n}", None) for n in range(501)]), "at most 500"),
    ],
)
async def test_a_malformed_envelope_refuses_the_answer_with_details(
    platform: tuple[str, Script], acts: PlatformActivities, body: bytes, words: str
) -> None:
    _, script = platform
    script.body = body
    err = await failure(acts.poll_platform, "facebook", "FB-1")
    assert err.type == "MalformedResponse"
    assert err.non_retryable  # the workflow records it; the next poll asks again
    assert words in str(err), str(err)
    details = PlatformFailure.model_validate(err.details[0])
    assert (details.kind, details.method, details.http_status) == ("MalformedResponse", "GET", 200)


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (404, "PlatformRejected", False),
        (410, "PlatformRejected", False),
        (401, "SignatureRejected", False),
        (503, "PlatformUnavailable", True),
    ],
)
async def test_a_refused_poll_carries_status_and_the_platforms_message(
    platform: tuple[str, Script], acts: PlatformActivities, status: int, kind: str, retryable: bool
) -> None:
    _, script = platform
    script.status = status
    script.body = orjson.dumps({"error": "unknown ticket 'FB-1'\x1b[31m"})
    err = await failure(acts.poll_platform, "facebook", "FB-1")
    assert err.type == kind
    assert err.non_retryable is not retryable
    details = PlatformFailure.model_validate(err.details[0])
    assert details.http_status == status
    assert details.platform_error == "unknown ticket 'FB-1'\\x1b[31m"  # escaped, kept
    assert details.path == "/v1/requests/FB-1"


async def test_a_refused_notice_carries_status_and_message(
    platform: tuple[str, Script], acts: PlatformActivities
) -> None:
    _, script = platform
    script.status = 404
    script.body = orjson.dumps({"error": "unknown ticket 'FB-1'"})
    notice = Notice(kind="withdrawal", request_id="req-x", message="withdrawn", notice_id="n-1")
    err = await failure(acts.send_notice, "facebook", "FB-1", notice)
    assert (err.type, err.non_retryable) == ("PlatformRejected", True)
    details = PlatformFailure.model_validate(err.details[0])
    assert (details.method, details.http_status) == ("POST", 404)
    assert details.platform_error == "unknown ticket 'FB-1'"


async def test_answers_are_authenticated_when_signed(platform: tuple[str, Script]) -> None:
    base, script = platform
    script.status, script.body = (
        201,
        orjson.dumps({"ticket": "FB-1", "received_at": "2026-11-29T08:00:00Z"}),
    )
    order = sample_order("req-auth", ["http://h/fb/content/a"])
    acts = acts_for(base, require_signed=True)
    try:
        receipt = await env.run(acts.deliver_order, "facebook", order)
        assert (receipt.authenticated, receipt.http_status) == ("hmac-sha256", 201)
        # An answer signed with another key (forged, or meant for someone else): refused.
        script.sign_with = b"someone-else"
        err = await failure(acts.deliver_order, "facebook", order)
        assert err.type == "ResponseNotAuthenticated" and not err.non_retryable
        assert "signature mismatch" in str(err)
        # Unsigned, where signatures are required: refused too, retryable.
        script.sign = False
        err = await failure(acts.deliver_order, "facebook", order)
        assert err.type == "ResponseNotAuthenticated" and "not signed" in str(err)
        # An unsigned refusal is not trusted as a refusal either.
        script.status, script.body = 422, orjson.dumps({"error": "forged refusal"})
        err = await failure(acts.deliver_order, "facebook", order)
        assert err.type == "ResponseNotAuthenticated"
    finally:
        await acts.aclose()
    optional = acts_for(base)
    try:
        script.status = 201
        script.body = orjson.dumps({"ticket": "FB-1", "received_at": "2026-11-29T08:00:00Z"})
        receipt = await env.run(optional.deliver_order, "facebook", order)
        assert receipt.authenticated is None  # accepted, recorded as not authenticated
    finally:
        await optional.aclose()


async def test_a_signed_answer_cannot_be_replayed_for_another_request(
    platform: tuple[str, Script], acts: PlatformActivities
) -> None:
    """The response signature covers the request's signature: a recorded (validly signed)
    answer to one request does not authenticate as the answer to another."""
    _, script = platform
    script.status = 201
    script.body = orjson.dumps({"ticket": "FB-1", "received_at": "2026-11-29T08:00:00Z"})
    first = await env.run(
        acts.deliver_order, "facebook", sample_order("req-one", ["http://h/fb/content/a"])
    )
    assert first.authenticated == "hmac-sha256"
    recorded = script.requests[-1]["headers"][SIGNATURE_HEADER]
    # An attacker replays that answer, with its valid signature headers, to the next request.
    script.sign = False
    script.fixed_headers = signed_response_headers(SECRET, recorded, script.body, _now())
    err = await failure(
        acts.deliver_order, "facebook", sample_order("req-two", ["http://h/fb/content/b"])
    )
    assert err.type == "ResponseNotAuthenticated"
    assert "signature mismatch" in str(err)


async def test_requests_that_break_the_contract_are_never_sent(
    platform: tuple[str, Script], acts: PlatformActivities
) -> None:
    """Built in Python, a wire model keeps its lenient historic checks; the client checks the
    whole contract before sending and fails permanently, naming the field."""
    _, script = platform
    order = sample_order("req-bidi", ["http://h/fb/content/a"])
    bad_item = order.items[0].model_copy(update={"reason": "Looks fine \u202eeno neddih"})
    bad = order.model_copy(update={"items": [bad_item]})
    err = await failure(acts.deliver_order, "facebook", bad)
    assert (err.type, err.non_retryable) == ("ContractViolation", True)
    assert "items[0].reason" in str(err) and "U+202E" in str(err)
    assert script.requests == []  # nothing left the worker


async def test_the_simulators_answers_are_all_authenticated() -> None:
    with PlatformSimulator(secrets={"facebook": SECRET}) as sim:
        endpoint = PlatformEndpoint(
            sim.base_url("facebook"), SECRET, markers_for("facebook"), require_signed_responses=True
        )
        acts = PlatformActivities({"facebook": endpoint})
        try:
            url = sim.content_url("facebook", "moreinfo--q")
            receipt = await env.run(
                acts.deliver_order, "facebook", sample_order("req-sim-auth", [url])
            )
            sim.advance(5)
            status = await env.run(acts.poll_platform, "facebook", receipt.ticket)
            assert status.authenticated == "hmac-sha256"
            assert status.items[0].effect == "needs_more_info"
            assert status.items[0].question
            notice = Notice(kind="renotify", request_id="req-sim-auth", notice_id="n-auth")
            result = await env.run(acts.send_notice, "facebook", receipt.ticket, notice)
            assert (result.authenticated, result.http_status) == ("hmac-sha256", 202)
            err = await failure(acts.poll_platform, "facebook", "NOPE")
            assert err.type == "PlatformRejected"
            assert err.details[0]["authenticated"] == "hmac-sha256"  # a signed refusal
        finally:
            await acts.aclose()


def test_docket_orders_are_valid_wire_orders() -> None:
    """Every order Docket's models accept is one the contract accepts (sent unchanged)."""
    from platform_check.contract import check_body

    order = sample_order("req-x", ["https://www.facebook.com/p/1"])
    assert check_body("OrderPayload", order.model_dump(mode="json")) == []
