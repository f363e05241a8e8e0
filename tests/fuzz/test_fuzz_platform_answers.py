"""Malformed platform answers fed to the activities' parsers (httpx.MockTransport, no sockets).

Whatever a platform answers (any status, content type, body: truncated, oversized, deeply
nested, control characters, mixed scripts, wrong types), an API activity returns a valid model
or raises one of the documented ApplicationError types, and what it returns can always be
turned into the workflow's commands (so a platform's answer can never fail a workflow task).
A probe never raises: every answer becomes evidence.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.platform import PlatformActivities, PlatformEndpoint
from docket.models import SYSTEM_ACTOR, Acknowledge, ItemEffect, RequestInfo
from docket.platform_protocol import Notice
from docket.verification import Evidence
from platform_sim.scenarios import markers_for
from platform_sim.testing import sample_order

DOCUMENTED = {
    "PlatformUnavailable",
    "RateLimited",
    "MalformedResponse",
    "SignatureRejected",
    "IdempotencyConflict",
    "PlatformRejected",
}
NASTY = st.sampled_from(
    ["", "ok", "\r\n", "a\x00b", "x" * 5000, "Gỡ bỏ\u2028nội dung", "ещё 删除", "\ud7ff", "  "]
)
TEXT = st.one_of(st.text(max_size=60), NASTY)
DATE = st.one_of(
    st.sampled_from(["2026-11-29T08:00:00Z", "2026-11-29T08:00:00", "yesterday", "9999-99-99"]),
    st.datetimes().map(lambda d: d.isoformat()),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
EFFECT = st.fixed_dictionaries(
    {
        "item_id": st.one_of(st.just("i1"), TEXT),
        "effect": st.sampled_from(
            [
                None,
                "removed_globally",
                "restricted",
                "declined",
                "needs_more_info",
                "not_found",
                "already_removed",
                "gone",
            ]
        ),
    },
    optional={
        "restricted_in": st.lists(st.one_of(st.just("VN"), TEXT), max_size=3),
        "reason": st.one_of(st.none(), TEXT),
        "effect_at": st.one_of(st.none(), DATE),
        "platform_ref": st.one_of(st.none(), TEXT),
        "uploader_notified": st.one_of(st.booleans(), JSON),
    },
)
STATUS = st.fixed_dictionaries(
    {
        "ticket": st.one_of(st.just("FA-1"), TEXT),
        "status": st.sampled_from(["received", "acknowledged", "info_requested", "decided", "x"]),
    },
    optional={
        "acknowledged_at": st.one_of(st.none(), DATE),
        "info_request": st.one_of(st.none(), TEXT),
        "items": st.lists(EFFECT, max_size=3),
    },
)
TICKET = st.fixed_dictionaries(
    {"ticket": st.one_of(st.just("FA-1"), TEXT), "received_at": DATE},
)
BODY = st.one_of(
    JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.sampled_from(
        [b"", b'{"ticket": "FA-1', b"[" * 3000 + b"]" * 3000, b'{"a":' * 3000, b"\xff\xfe{}"]
    ),
)
CONTENT_TYPE = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/html", "", "APPLICATION/JSON"]
)
STATUS_CODE = st.sampled_from(
    [200, 200, 200, 201, 202, 204, 301, 400, 401, 404, 409, 429, 500, 503]
)

env = ActivityEnvironment()


def activities(status: int, ctype: str, body: bytes, headers: dict[str, str]) -> PlatformActivities:
    def handler(request: httpx.Request) -> httpx.Response:
        out = {"Content-Type": ctype, **headers} if ctype else dict(headers)
        return httpx.Response(status, content=body, headers=out)

    transport = httpx.MockTransport(handler)
    endpoint = PlatformEndpoint("http://platform.test/fb", b"secret", markers_for("facebook"))
    return PlatformActivities(
        {"facebook": endpoint},
        http=httpx.AsyncClient(transport=transport),
        probe_http=httpx.AsyncClient(transport=transport),
    )


def commands_from(status: Any) -> None:
    """What the workflow builds from a poll (AuthorityRequest._commands_from): must not raise."""
    via = f"reported through the facebook API (ticket {status.ticket})"
    if status.acknowledged_at:
        Acknowledge(actor=SYSTEM_ACTOR, reason=via, acknowledged_at=status.acknowledged_at)
    for e in status.items:
        if e.effect not in (None, "needs_more_info"):
            ItemEffect(
                item_id=e.item_id,
                effect=e.effect,
                restricted_in=tuple(e.restricted_in),
                reason=e.reason,
                effect_at=e.effect_at,
                platform_ref=e.platform_ref,
                uploader_notified=e.uploader_notified,
            )
    if status.info_request:
        RequestInfo(actor=SYSTEM_ACTOR, reason=via, question=status.info_request)


def run(coro: Any) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


async def call(acts: PlatformActivities, kind: str) -> Any:
    try:
        if kind == "deliver":
            order = sample_order("req-fuzz-1", ["http://platform.test/fb/content/x"])
            return await env.run(acts.deliver_order, "facebook", order)
        if kind == "poll":
            return await env.run(acts.poll_platform, "facebook", "FA-1")
        notice = Notice(kind="renotify", request_id="req-fuzz-1", message="again", items=[])
        return await env.run(acts.send_notice, "facebook", "FA-1", notice)
    finally:
        await acts.aclose()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["deliver", "poll", "notice"]),
    code=STATUS_CODE,
    ctype=CONTENT_TYPE,
    body=st.one_of(
        BODY,
        STATUS.map(lambda v: json.dumps(v).encode()),
        TICKET.map(lambda v: json.dumps(v).encode()),
    ),
    retry_after=st.sampled_from([None, "1", "-5", "soon", "99999"]),
)
def test_api_answers_are_parsed_or_refused_with_a_documented_error(
    kind: str, code: int, ctype: str, body: bytes, retry_after: str | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    try:
        result = run(call(activities(code, ctype, body, headers), kind))
    except ApplicationError as exc:
        assert exc.type in DOCUMENTED, exc
        if exc.next_retry_delay is not None:
            assert 0 <= exc.next_retry_delay.total_seconds() <= 300
        return
    assert 200 <= code <= 299
    if kind == "poll":
        commands_from(result)
    if kind == "deliver":
        assert 1 <= len(result.ticket) <= 100 and result.ticket.isprintable()


@settings(max_examples=60, deadline=None)
@given(status=STATUS)
def test_a_recorded_poll_always_becomes_valid_commands(status: dict[str, Any]) -> None:
    status["ticket"] = "FA-1"
    body = json.dumps(status).encode()
    try:
        result = run(call(activities(200, "application/json", body, {}), "poll"))
    except ApplicationError as exc:
        assert exc.type == "MalformedResponse", exc
        return
    commands_from(result)


@settings(max_examples=60, deadline=None)
@given(
    code=STATUS_CODE,
    ctype=st.sampled_from(["text/html; charset=utf-8", "application/json", "", "image/png"]),
    body=st.one_of(
        st.binary(max_size=300),
        TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.sampled_from([b"x" * (3 * 1024 * 1024), "Video không còn nữa".encode()]),
    ),
)
def test_probes_never_raise(code: int, ctype: str, body: bytes) -> None:
    acts = activities(code, ctype, body, {"Location": "http://platform.test/fb/login"})

    async def probe() -> Evidence:
        try:
            return await env.run(
                acts.probe_item, "facebook", "i1", "http://platform.test/fb/content/x", "VN"
            )
        finally:
            await acts.aclose()

    evidence = run(probe())
    assert evidence.body_bytes <= 2 * 1024 * 1024
    assert evidence.item_id == "i1" and evidence.vantage == "VN"
